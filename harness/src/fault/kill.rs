//! Kill and restart: signal the selected replicas at one instant (pidfds at the processes, the
//! exits measured from the kernel's records); a restart starts them again after `down_for`
//! (the nemesis's heal). Verified by the engine: not running, then running again.

use super::common::running;
use super::{measure, Action, Cx, Look, Stage, Step};
use crate::error::Result;
use crate::scenario::Signal;
use crate::timeline::{now, EventKind, Metric};

/// Signals the targets together.
pub(crate) struct Kill {
    pub signal: Signal,
}

impl Action for Kill {
    fn arms(&self) -> bool {
        true
    }

    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(kill(cx, self.signal))
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(async move {
            let status = cx.cluster.engine.status(r).await?;
            running(&status, stage == Stage::Healed)
        })
    }
}

async fn kill(cx: &Cx<'_>, signal: Signal) -> Result<()> {
    let (cluster, fault, targets) = (cx.cluster, cx.fault, cx.targets);
    let since = now();
    let report = cluster.kill_together_at(targets, signal, cx.at).await?;
    // Applied when the first signal left (the nemesis prepared it ahead of its instant).
    let applied = report.signalled_at.unwrap_or(since);
    let how = if report.direct {
        "pidfd at the processes"
    } else {
        "Engine API (remote engine)"
    };
    cluster.timeline.push(crate::timeline::Event {
        at: applied,
        kind: EventKind::FaultApplied {
            fault: fault.name.clone(),
            targets: targets.to_vec(),
            detail: format!("{} to {} via {how}", signal.name(), targets.join(", ")),
        },
    });
    if let Some(skew) = report.exit_skew {
        let what = if report.direct {
            "spread of the killed processes' exits, polled on their pidfds"
        } else {
            "spread of the killed containers' exits as their engines recorded them (State.FinishedAt)"
        };
        measure(
            cluster,
            fault,
            Metric::ExitSkew,
            None,
            skew as f64 / 1e6,
            what,
        );
    }
    if let Some(spread) = report.signal_spread {
        measure(
            cluster,
            fault,
            Metric::SignalSpread,
            None,
            spread as f64 / 1e6,
            "time between the first and the last signal sent",
        );
    }
    if targets.len() > 1 {
        if let Some(spread) = cluster.die_event_spread(targets, since).await {
            measure(
                cluster,
                fault,
                Metric::DieEventSpread,
                None,
                spread,
                "spread of the engine's `die` events (the engine serialises them)",
            );
        }
    }
    Ok(())
}
