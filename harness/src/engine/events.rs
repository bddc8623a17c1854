//! The recorder: follows the engine's event stream for one run's containers and writes each
//! event (start, die, kill, oom, health) to the timeline with the engine's own nanosecond time.

use super::{RunEngine, LABEL_RUN};
use crate::timeline::{Event, EventKind, Timeline};
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use std::collections::HashMap;
use tokio::task::JoinHandle;

/// Starts recording the run's own containers (by label); the returned task runs until
/// aborted (the run aborts it at teardown).
pub fn record(engine: &RunEngine, timeline: Timeline) -> JoinHandle<()> {
    let label = ("label".to_string(), vec![format!("{LABEL_RUN}={}", engine.run_id)]);
    record_matching(engine, label, timeline)
}

/// Starts recording the containers attached to the run (by name).
pub fn record_attached(engine: &RunEngine, timeline: Timeline) -> JoinHandle<()> {
    let names = ("container".to_string(), engine.attached_containers());
    record_matching(engine, names, timeline)
}

fn record_matching(
    engine: &RunEngine,
    filter: (String, Vec<String>),
    timeline: Timeline,
) -> JoinHandle<()> {
    let engine = engine.clone();
    tokio::spawn(async move {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            filter,
        ]);
        let since = (crate::timeline::now() / 1_000_000_000 - 1).to_string();
        let options = EventsOptionsBuilder::default()
            .since(&since)
            .filters(&filters)
            .build();
        let mut stream = engine.docker.events(Some(options));
        while let Some(item) = stream.next().await {
            let Ok(message) = item else {
                timeline.note(
                    "the engine's event stream broke; container events after this are missing",
                );
                break;
            };
            let action = message.action.unwrap_or_default();
            if action.starts_with("exec_") || action == "attach" || action == "resize" {
                continue;
            }
            let attributes = message.actor.and_then(|a| a.attributes).unwrap_or_default();
            let name = attributes.get("name").cloned().unwrap_or_default();
            let container = engine.replica_of(&name).unwrap_or(name);
            let action = match (action.as_str(), attributes.get("exitCode")) {
                ("die", Some(code)) => format!("die (exit {code})"),
                _ => action,
            };
            timeline.push(Event {
                at: message.time_nano.unwrap_or_else(crate::timeline::now),
                kind: EventKind::Container { container, action },
            });
        }
    })
}
