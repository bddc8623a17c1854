//! What the common faults share: recording `fault-applied` for a per-replica action, the
//! verification loop every verified fault goes through (once after applying, once after
//! healing, each a `fault-verified` event), the engine-state check, and TCP handshakes
//! measured from the harness.
//!
//! A verification polls for up to [`VERIFY_WITHIN`]: the engine reaps a killed container, a
//! reconnected one needs an ARP exchange.

use super::{measure, Action, Cx, Unseen};
use crate::engine::Status;
use crate::error::{HarnessError, Result};
use crate::services::generic::reach;
use crate::timeline::{Event, EventKind, Metric, Nanos, Stage};
use std::time::{Duration, Instant};

/// The longest a verification waits for the system to show the fault (or the heal).
pub const VERIFY_WITHIN: Duration = Duration::from_secs(5);
/// TCP handshakes per measurement of round trip and loss.
const HANDSHAKES: usize = 10;

/// Records `fault-applied` at `since`: `how`, on every target.
pub(super) fn applied(cx: &Cx<'_>, since: Nanos, how: &str) {
    cx.cluster.timeline.push(Event {
        at: since,
        kind: EventKind::FaultApplied {
            fault: cx.fault.name.clone(),
            targets: cx.targets.to_vec(),
            detail: format!("{how}: {}", cx.targets.join(", ")),
        },
    });
}

/// Applies `act` to every target in turn and records `fault-applied` (`how`) from the moment
/// the first began.
pub(super) async fn on_each<'a, F, Fut, E>(cx: &'a Cx<'a>, how: &str, act: F) -> Result<()>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), E>>,
    HarnessError: From<E>,
{
    let since = crate::timeline::now();
    for r in cx.targets {
        act(r).await?;
    }
    applied(cx, since, how);
    Ok(())
}

/// Verifies on every target that the fault took effect (or was healed) and records one
/// `fault-verified` event with what was seen. Never fails the run: a fault that did not take
/// effect is the expectation `fault-verified`'s failure, judged from the timeline.
pub(super) async fn verify(cx: &Cx<'_>, action: &dyn Action, stage: Stage) {
    let (mut ok, mut undecided) = (true, false);
    let mut seen = vec![];
    for r in cx.targets {
        let deadline = Instant::now() + VERIFY_WITHIN;
        let started = Instant::now();
        let (passed, unsure, detail) = loop {
            let (passed, unsure, detail) = match action.verify(cx, r, stage).await {
                Ok(d) => (true, false, d),
                Err(d) => (false, d.undecided(), d.to_string()),
            };
            if passed || Instant::now() > deadline {
                break (passed, unsure, detail);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let after = started.elapsed().as_secs_f64();
        ok &= passed;
        undecided |= unsure;
        seen.push(format!("{r}: {detail} (+{after:.2}s)"));
    }
    cx.cluster.timeline.record(EventKind::FaultVerified {
        fault: cx.fault.name.clone(),
        stage,
        ok,
        undecided: !ok && undecided,
        detail: seen.join("; "),
    });
}

/// Ok when the engine says the container runs (`want`) and is not paused.
pub(super) fn running(status: &Status, want: bool) -> std::result::Result<String, Unseen> {
    let words = format!(
        "engine: running={} paused={}",
        status.running, status.paused
    );
    if status.running == want && !status.paused {
        Ok(words)
    } else {
        Err(Unseen::Shows(words))
    }
}

/// TCP handshakes from the harness to replica `r` on `port` ([`HANDSHAKES`] of them, each
/// given 300 ms plus twice `delay`): the median round trip of those answered (ms) and the
/// share without an answer (%), both recorded as measurements `<fault>/rtt-<label>-<r>` and
/// `<fault>/loss-<label>-<r>`.
pub(super) async fn handshakes(
    cx: &Cx<'_>,
    r: &str,
    port: u16,
    delay: Option<Duration>,
    label: &str,
) -> (Option<f64>, f64) {
    let timeout = Duration::from_millis(300) + delay.unwrap_or_default() * 2;
    let mut times = vec![];
    for _ in 0..HANDSHAKES {
        if let Ok(t) = reach(&cx.cluster.addresses[r], port, timeout).await {
            times.push(t.as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let rtt = times.get(times.len() / 2).copied();
    let lost = 100.0 * (HANDSHAKES - times.len()) as f64 / HANDSHAKES as f64;
    if let Some(ms) = rtt {
        let what = format!("{r}'s TCP handshake round trip {label} the fault (median)");
        let each = format!("{label}-{r}");
        measure(cx.cluster, cx.fault, Metric::Rtt, Some(&each), ms, &what);
    }
    cx.cluster.timeline.record(EventKind::Measurement {
        name: Metric::Loss.of(&cx.fault.name, Some(&format!("{label}-{r}"))),
        value: lost,
        unit: "%".into(),
        what: format!(
            "share of {HANDSHAKES} TCP handshakes to {r} {label} the fault without an answer"
        ),
    });
    (rtt, lost)
}
