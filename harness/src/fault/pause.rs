//! Pause: the cgroup freezer (`docker pause`); heal: thaw. Verified by the engine (paused) and
//! the kernel's freezer state (`FROZEN`, then thawed).

use super::common::on_each;
use super::{Action, Cx, Look, Stage, Step, Unseen};
use crate::engine::{netns, Route};

/// Freezes the targets.
pub(crate) struct Pause;

impl Action for Pause {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        let engine = &cx.cluster.engine;
        Box::pin(on_each(cx, "docker pause (cgroup freezer)", |r| {
            engine.pause(r)
        }))
    }

    fn undo<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            for r in cx.targets {
                if cx.cluster.engine.status(r).await?.paused {
                    cx.cluster.engine.unpause(r).await?;
                }
            }
            Ok(())
        })
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(async move {
            let status = cx.cluster.engine.status(r).await?;
            let applied = stage == Stage::Applied;
            if let Route::Machine(_) = cx.cluster.engine.route(r) {
                // On a machine: its engine's word (its kernel is not this host's to read).
                let words = format!("machine's engine: paused={}", status.paused);
                return if status.running && status.paused == applied {
                    Ok(words)
                } else {
                    Err(Unseen::Shows(words))
                };
            }
            let freezer = netns::freezer_state(status.pid);
            let frozen = matches!(freezer.as_deref(), Some("FROZEN" | "1"));
            let words = format!(
                "engine: paused={}, kernel freezer: {}",
                status.paused,
                freezer.as_deref().unwrap_or("unreadable")
            );
            if status.running && status.paused == applied && frozen == applied {
                Ok(words)
            } else {
                Err(Unseen::Shows(words))
            }
        })
    }
}
