//! The recorder: follows the engine's event stream for one run's containers and writes each
//! event (start, die, kill, oom, health) to the timeline with the engine's own nanosecond time.
//!
//! When the stream breaks, that is an unplanned event (`EventKind::Unplanned`, cause
//! `engine`): the recorder asks the engine until it answers again — if it did not answer at
//! once, it restarted ("the engine restarted (no answer for 2.0 s)") — and subscribes again
//! from the moment of the break, so the deaths the restart caused are on the timeline too.
//! The loop works on a [`Source`], so a test can break the stream without touching dockerd.

use super::{RunEngine, LABEL_RUN};
use crate::timeline::{now, Cause, Event, EventKind, Nanos, Timeline};
use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the recorder asks a silent engine whether it answers again.
const RETRY: Duration = Duration::from_millis(200);

/// Where container events come from: the engine, or a test's script.
pub trait Source: Send + Sync + 'static {
    /// The events from `since` (Unix ns) on; an `Err` item or the end is a break.
    fn subscribe(
        &self,
        since: Nanos,
    ) -> BoxStream<'static, Result<EventMessage, bollard::errors::Error>>;
    /// Whether the engine answers (a ping).
    fn answers(&self) -> impl Future<Output = bool> + Send;
    /// The replica a container name belongs to (the name itself when none).
    fn replica_of(&self, name: &str) -> String;
}

/// The engine, filtered to some containers.
struct Engine {
    engine: RunEngine,
    filter: (String, Vec<String>),
}

impl Source for Engine {
    fn subscribe(
        &self,
        since: Nanos,
    ) -> BoxStream<'static, Result<EventMessage, bollard::errors::Error>> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            self.filter.clone(),
        ]);
        let since = (since / 1_000_000_000 - 1).to_string();
        let options = EventsOptionsBuilder::default()
            .since(&since)
            .filters(&filters)
            .build();
        let stream = self.engine.docker.events(Some(options));
        stream.boxed()
    }

    async fn answers(&self) -> bool {
        let ping = self.engine.docker.ping();
        matches!(
            tokio::time::timeout(Duration::from_secs(1), ping).await,
            Ok(Ok(_))
        )
    }

    fn replica_of(&self, name: &str) -> String {
        self.engine
            .replica_of(name)
            .unwrap_or_else(|| name.to_string())
    }
}

/// Starts recording the run's own containers (by label); the returned task runs until
/// aborted (the run aborts it at teardown).
pub fn record(engine: &RunEngine, timeline: Timeline) -> JoinHandle<()> {
    let label = (
        "label".to_string(),
        vec![format!("{LABEL_RUN}={}", engine.run_id)],
    );
    let source = Engine {
        engine: engine.clone(),
        filter: label,
    };
    tokio::spawn(follow(source, timeline))
}

/// Starts recording the containers attached to the run (by name).
pub fn record_attached(engine: &RunEngine, timeline: Timeline) -> JoinHandle<()> {
    let names = ("container".to_string(), engine.attached_containers());
    let source = Engine {
        engine: engine.clone(),
        filter: names,
    };
    tokio::spawn(follow(source, timeline))
}

/// Records the source's events until aborted; every break is an unplanned event, after which
/// it waits for the engine and subscribes again from the break.
pub async fn follow<S: Source>(source: S, timeline: Timeline) {
    let mut since = now();
    // What was recorded, so a subscription again from a break (the engine replays from a whole
    // second before it) adds nothing twice. Not "later than the last one seen": the engine
    // stamps events before it publishes them, so events of containers that die together come
    // out of order, and such a rule lost some of fifty concurrent kills' `kill` and `die`.
    let mut seen: HashSet<(Nanos, String)> = HashSet::new();
    loop {
        let mut stream = source.subscribe(since);
        let broke = loop {
            match stream.next().await {
                Some(Ok(message)) => {
                    if let Some(event) = to_event(&source, message) {
                        if seen.insert((event.at, format!("{:?}", event.kind))) {
                            timeline.push(event);
                        }
                    }
                }
                Some(Err(e)) => break e.to_string(),
                None => break "the stream ended".to_string(),
            }
        };
        let at = now();
        let mut silent = false;
        while !source.answers().await {
            silent = true;
            tokio::time::sleep(RETRY).await;
        }
        let lasted = now() - at;
        let detail = if silent {
            format!(
                "the engine restarted (no answer for {:.1} s; its stream: {broke})",
                lasted as f64 / 1e9
            )
        } else {
            format!("the engine's event stream broke ({broke})")
        };
        timeline.push(Event {
            at,
            kind: EventKind::Unplanned {
                cause: Cause::Engine,
                subject: "engine".into(),
                lasted,
                detail,
            },
        });
        since = at;
    }
}

/// A container event as the timeline holds it; `None` for the engine's noise (exec, attach).
fn to_event<S: Source>(source: &S, message: EventMessage) -> Option<Event> {
    let action = message.action.unwrap_or_default();
    if action.starts_with("exec_") || action == "attach" || action == "resize" {
        return None;
    }
    let attributes = message.actor.and_then(|a| a.attributes).unwrap_or_default();
    let name = attributes.get("name").cloned().unwrap_or_default();
    let container = source.replica_of(&name);
    let action = match (action.as_str(), attributes.get("exitCode")) {
        ("die", Some(code)) => format!("die (exit {code})"),
        _ => action,
    };
    Some(Event {
        at: message.time_nano.unwrap_or_else(now),
        kind: EventKind::Container { container, action },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    type Items = Vec<Result<EventMessage, bollard::errors::Error>>;

    /// Streams handed out in order (each then silent, or ended when its flag says so; after
    /// the last, silence), and how many pings fail before one answers.
    struct Script {
        streams: Mutex<Vec<(Items, bool)>>,
        silent_pings: AtomicUsize,
    }

    impl Source for Script {
        fn subscribe(
            &self,
            _since: Nanos,
        ) -> BoxStream<'static, Result<EventMessage, bollard::errors::Error>> {
            let mut streams = self.streams.lock().unwrap();
            if streams.is_empty() {
                return futures_util::stream::pending().boxed();
            }
            let (items, ends) = streams.remove(0);
            let items = futures_util::stream::iter(items);
            match ends {
                true => items.boxed(),
                false => items.chain(futures_util::stream::pending()).boxed(),
            }
        }
        async fn answers(&self) -> bool {
            let left = self.silent_pings.load(Ordering::SeqCst);
            if left > 0 {
                self.silent_pings.store(left - 1, Ordering::SeqCst);
            }
            left == 0
        }
        fn replica_of(&self, name: &str) -> String {
            name.trim_start_matches("as-1-").to_string()
        }
    }

    fn reset() -> bollard::errors::Error {
        bollard::errors::Error::IOError {
            err: std::io::Error::other("connection reset"),
        }
    }

    fn message(
        name: &str,
        action: &str,
        exit: Option<&str>,
        at: Nanos,
    ) -> Result<EventMessage, bollard::errors::Error> {
        let mut attributes = HashMap::from([("name".to_string(), name.to_string())]);
        if let Some(code) = exit {
            attributes.insert("exitCode".into(), code.into());
        }
        Ok(EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: None,
                attributes: Some(attributes),
            }),
            time_nano: Some(at),
            ..Default::default()
        })
    }

    async fn recorded(script: Script, wanted: usize) -> Vec<Event> {
        let timeline = Timeline::new();
        let task = tokio::spawn(follow(script, timeline.clone()));
        for _ in 0..100 {
            if timeline.events().len() >= wanted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        timeline.events()
    }

    fn unplanned(events: &[Event]) -> Vec<String> {
        let details = events.iter().filter_map(|e| match &e.kind {
            EventKind::Unplanned {
                cause: Cause::Engine,
                detail,
                ..
            } => Some(detail.clone()),
            _ => None,
        });
        details.collect()
    }

    #[tokio::test]
    async fn an_engine_that_stops_answering_restarted_and_its_replayed_deaths_are_recorded() {
        let script = Script {
            streams: Mutex::new(vec![
                (
                    vec![message("as-1-zk1", "start", None, 10), Err(reset())],
                    false,
                ),
                // Subscribed again from the break: the start is replayed (dropped), then the deaths.
                (
                    vec![
                        message("as-1-zk1", "start", None, 10),
                        message("as-1-zk1", "die", Some("137"), 20),
                        message("as-1-zk2", "exec_start", None, 21),
                    ],
                    false,
                ),
            ]),
            silent_pings: AtomicUsize::new(2),
        };
        let events = recorded(script, 3).await;
        let details = unplanned(&events);
        assert_eq!(details.len(), 1, "{events:?}");
        assert!(
            details[0].starts_with("the engine restarted (no answer for"),
            "{details:?}"
        );
        assert!(details[0].contains("connection reset"), "{details:?}");
        let containers: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Container { container, action } => Some(format!("{container} {action}")),
                _ => None,
            })
            .collect();
        assert_eq!(containers, ["zk1 start", "zk1 die (exit 137)"]);
    }

    #[tokio::test]
    async fn events_that_come_out_of_order_are_all_recorded() {
        // Two containers killed together: the engine stamps zk2's kill before zk1's die but
        // publishes it after.
        let script = Script {
            streams: Mutex::new(vec![(
                vec![
                    message("as-1-zk1", "kill", None, 10),
                    message("as-1-zk1", "die", Some("137"), 30),
                    message("as-1-zk2", "kill", None, 20),
                    message("as-1-zk2", "die", Some("137"), 40),
                ],
                false,
            )]),
            silent_pings: AtomicUsize::new(0),
        };
        let events = recorded(script, 4).await;
        let kills = events
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::Container { action, .. } if action == "kill"));
        assert_eq!(kills.count(), 2, "{events:?}");
    }

    #[tokio::test]
    async fn a_stream_that_ends_while_the_engine_answers_is_a_break_not_a_restart() {
        let script = Script {
            streams: Mutex::new(vec![(vec![message("as-1-web", "start", None, 5)], true)]),
            silent_pings: AtomicUsize::new(0),
        };
        let events = recorded(script, 2).await;
        assert_eq!(
            unplanned(&events),
            ["the engine's event stream broke (the stream ended)"]
        );
    }
}
