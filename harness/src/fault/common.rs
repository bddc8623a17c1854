//! The common faults on any service — `pause`, `stop`, `partition`, `netem` (kill and restart
//! are in `mod.rs`) — and the verification of every one of them on the system itself, once
//! after applying and once after healing, each recorded as a `fault-verified` event:
//!
//! - kill, restart, stop: the engine says the container is not running / running again;
//! - pause: the engine says paused *and* the kernel's freezer says `FROZEN` (then thawed);
//! - partition: the replica is off the run's network and a TCP handshake from the harness gets
//!   no answer; after the heal it answers again (a refusal counts: it comes from the replica);
//! - netem: a delay is a netem qdisc, a loss an iptables random-drop rule, both in the
//!   replica's network namespace: `tc qdisc show` / `iptables -S` list them (then no longer),
//!   and TCP handshakes from the harness, measured before, during and after, show the delay in
//!   their round trip and the loss in how many get no answer (then neither).
//!
//! A verification polls for up to [`VERIFY_WITHIN`]: the engine reaps a killed container, a
//! reconnected one needs an ARP exchange.

use super::measure;
use crate::cluster::Cluster;
use crate::engine::{netns, Status};
use crate::error::{HarnessError, Result};
use crate::scenario::plan::{Fault, FaultKind};
use crate::services::generic::reach;
use crate::timeline::{now, Event, EventKind};
use std::time::{Duration, Instant};

/// The longest a verification waits for the system to show the fault (or the heal).
pub const VERIFY_WITHIN: Duration = Duration::from_secs(5);
/// TCP handshakes per measurement of round trip and loss.
const HANDSHAKES: usize = 10;

/// Which side of a fault a verification checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Applied,
    Healed,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Applied => "applied",
            Stage::Healed => "healed",
        }
    }
}

fn failed(fault: &Fault, message: String) -> HarnessError {
    HarnessError::Fault {
        fault: fault.name.clone(),
        message,
    }
}

/// Applies a pause, stop, partition or netem to every target and records `fault-applied`.
pub async fn apply(cluster: &Cluster, fault: &Fault, targets: &[String]) -> Result<()> {
    let since = now();
    let engine = &cluster.engine;
    let mut details = vec![];
    for r in targets {
        match fault.kind {
            FaultKind::Pause { .. } => engine.pause(r).await?,
            FaultKind::Stop { .. } => engine.stop(r, 2).await?,
            FaultKind::Partition { .. } => engine.disconnect(r).await?,
            FaultKind::Netem { .. } => {
                handshakes(cluster, fault, r, "before").await;
                let dev = shape(cluster, fault, r, true).await?;
                details.push(format!("{r}: {dev}"));
            }
            _ => unreachable!("only the common faults are applied here"),
        }
    }
    let how = match fault.kind {
        FaultKind::Pause { .. } => "docker pause (cgroup freezer)".to_string(),
        FaultKind::Stop { .. } => "docker stop (SIGTERM, SIGKILL after 2 s)".to_string(),
        FaultKind::Partition { .. } => "disconnected from the run's network".to_string(),
        _ => format!("{} ({})", netem_words(fault), details.join(", ")),
    };
    cluster.timeline.push(Event {
        at: since,
        kind: EventKind::FaultApplied {
            fault: fault.name.clone(),
            targets: targets.to_vec(),
            detail: format!("{how}: {}", targets.join(", ")),
        },
    });
    Ok(())
}

/// Undoes a pause, partition or netem (a stopped replica is started by the common heal).
pub async fn undo(cluster: &Cluster, fault: &Fault, targets: &[String]) -> Result<()> {
    let engine = &cluster.engine;
    for r in targets {
        let status = engine.status(r).await?;
        match fault.kind {
            FaultKind::Pause { .. } if status.paused => engine.unpause(r).await?,
            FaultKind::Partition { .. } if !status.networks.contains(&engine.network_name()) => {
                engine.reconnect(r, &cluster.addresses[r]).await?
            }
            FaultKind::Netem { .. } if status.running => {
                shape(cluster, fault, r, false).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Adds (or removes) a netem fault's delay and loss in replica `r`'s network namespace;
/// returns the interface.
async fn shape(cluster: &Cluster, fault: &Fault, r: &str, add: bool) -> Result<String> {
    let (pid, dev) = netns_of(cluster, fault, r).await?;
    let delayed = match netem(fault).0 {
        Some(delay) if add => netns::add_delay(pid, &dev, delay).await,
        Some(_) => netns::delete_qdisc(pid, &dev).await,
        None => Ok(()),
    };
    delayed.map_err(|e| failed(fault, e))?;
    if let Some(percent) = netem(fault).1 {
        let action = if add { "-I" } else { "-D" };
        netns::loss(pid, action, percent)
            .await
            .map_err(|e| failed(fault, e))?;
    }
    Ok(dev)
}

/// Verifies on every target that the fault took effect (or was healed) and records one
/// `fault-verified` event with what was seen. Never fails the run: a fault that did not take
/// effect is the expectation `fault-verified`'s failure, judged from the timeline.
pub async fn verify(cluster: &Cluster, fault: &Fault, targets: &[String], stage: Stage) {
    let mut ok = true;
    let mut seen = vec![];
    for r in targets {
        let deadline = Instant::now() + VERIFY_WITHIN;
        let started = Instant::now();
        let (passed, detail) = loop {
            let (passed, detail) = match one(cluster, fault, r, stage).await {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            if passed || Instant::now() > deadline {
                break (passed, detail);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let after = started.elapsed().as_secs_f64();
        ok &= passed;
        seen.push(format!("{r}: {detail} (+{after:.2}s)"));
    }
    cluster.timeline.record(EventKind::FaultVerified {
        fault: fault.name.clone(),
        stage: stage.name().into(),
        ok,
        detail: seen.join("; "),
    });
}

/// One attempt at verifying `stage` of the fault on replica `r`: Ok(what shows it) or
/// Err(what was seen instead).
async fn one(
    cluster: &Cluster,
    fault: &Fault,
    r: &str,
    stage: Stage,
) -> std::result::Result<String, String> {
    let status = cluster.engine.status(r).await.map_err(|e| e.to_string())?;
    let applied = stage == Stage::Applied;
    match fault.kind {
        FaultKind::Kill { .. } | FaultKind::Restart { .. } | FaultKind::Stop { .. } => running(&status, !applied),
        FaultKind::Pause { .. } => {
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
                Err(words)
            }
        }
        FaultKind::Partition { .. } => {
            let on = status.networks.contains(&cluster.engine.network_name());
            let answer = reach(
                &cluster.addresses[r],
                port(fault),
                Duration::from_secs(1),
            )
            .await;
            match (applied, on, answer) {
                (true, false, Err(e)) => Ok(format!("off the network; {e}")),
                (false, true, Ok(t)) => Ok(format!(
                    "back on the network, answered in {:.2} ms",
                    t.as_secs_f64() * 1e3
                )),
                (_, on, Ok(t)) => Err(format!(
                    "on the network: {on}; answered in {:.2} ms",
                    t.as_secs_f64() * 1e3
                )),
                (_, on, Err(e)) => Err(format!("on the network: {on}; {e}")),
            }
        }
        FaultKind::Netem { .. } => {
            let (pid, dev) = netns_of(cluster, fault, r)
                .await
                .map_err(|e| e.to_string())?;
            let mut seen = vec![];
            if netem(fault).0.is_some() {
                let qdisc = netns::qdisc(pid, &dev).await?;
                if qdisc.contains("netem") != applied {
                    return Err(format!("tc qdisc show dev {dev}: {qdisc}"));
                }
                seen.push(qdisc.lines().next().unwrap_or_default().to_string());
            }
            if netem(fault).1.is_some() {
                let rules = netns::loss_rules(pid).await?;
                if rules.len() == 2 * usize::from(applied) {
                    seen.push(format!("{} random-drop rules", rules.len()));
                } else {
                    return Err(format!("iptables random-drop rules: {rules:?}"));
                }
            }
            let label = if applied { "during" } else { "after" };
            let (rtt, lost) = handshakes(cluster, fault, r, label).await;
            let rtt_words = rtt.map_or("no handshake answered".into(), |ms| {
                format!("round trip {ms:.1} ms")
            });
            seen.push(format!("{rtt_words}, {lost:.0}% of handshakes lost"));
            // The delay shows in the round trip (80 % of it, for timer slack), a loss of a
            // fifth or more in the handshakes; after the heal neither does.
            let delay_ms = netem(fault).0.map(|d| d.as_secs_f64() * 1e3);
            let delayed = match (delay_ms, rtt) {
                (Some(d), Some(ms)) if applied => ms >= 0.8 * d,
                (Some(d), Some(ms)) => ms < 0.5 * d,
                (Some(_), None) => false,
                (None, _) => true,
            };
            let lossy = match netem(fault).1 {
                Some(p) if applied && p >= 20.0 => lost > 0.0,
                Some(_) if !applied => lost == 0.0,
                _ => true,
            };
            let words = seen.join("; ");
            if delayed && lossy {
                Ok(words)
            } else {
                Err(words)
            }
        }
        _ => Ok("not verified for this kind".into()),
    }
}

fn running(status: &Status, want: bool) -> std::result::Result<String, String> {
    let words = format!(
        "engine: running={} paused={}",
        status.running, status.paused
    );
    if status.running == want && !status.paused {
        Ok(words)
    } else {
        Err(words)
    }
}

/// The port verifications connect to (resolved: the fault's `port`, else the service's
/// `ready` port, else 1 — closed: the replica's kernel refuses, which proves it answers).
fn port(fault: &Fault) -> u16 {
    match fault.kind {
        FaultKind::Partition { port, .. } | FaultKind::Netem { port, .. } => port,
        _ => 1,
    }
}

/// A netem fault's delay and loss (none for other kinds).
fn netem(fault: &Fault) -> (Option<Duration>, Option<f64>) {
    match fault.kind {
        FaultKind::Netem { delay, loss_percent, .. } => (delay, loss_percent),
        _ => (None, None),
    }
}

/// TCP handshakes from the harness to replica `r` ([`HANDSHAKES`] of them, each given
/// 300 ms plus twice the delay): the median round trip of those answered (ms) and the share
/// without an answer (%), both recorded as measurements `<fault>/rtt-<label>-<r>` and
/// `<fault>/loss-<label>-<r>`.
async fn handshakes(cluster: &Cluster, fault: &Fault, r: &str, label: &str) -> (Option<f64>, f64) {
    let timeout = Duration::from_millis(300) + netem(fault).0.unwrap_or_default() * 2;
    let mut times = vec![];
    for _ in 0..HANDSHAKES {
        if let Ok(t) = reach(&cluster.addresses[r], port(fault), timeout).await {
            times.push(t.as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let rtt = times.get(times.len() / 2).copied();
    let lost = 100.0 * (HANDSHAKES - times.len()) as f64 / HANDSHAKES as f64;
    if let Some(ms) = rtt {
        let what = format!("{r}'s TCP handshake round trip {label} the fault (median)");
        measure(cluster, fault, &format!("rtt-{label}-{r}"), ms, &what);
    }
    cluster.timeline.record(EventKind::Measurement {
        name: format!("{}/loss-{label}-{r}", fault.name),
        value: lost,
        unit: "%".into(),
        what: format!(
            "share of {HANDSHAKES} TCP handshakes to {r} {label} the fault without an answer"
        ),
    });
    (rtt, lost)
}

/// The PID of a replica's main process and the interface holding its address.
async fn netns_of(cluster: &Cluster, fault: &Fault, r: &str) -> Result<(i64, String)> {
    let status = cluster.engine.status(r).await?;
    if !status.running {
        return Err(failed(fault, format!("{r} is not running")));
    }
    let dev = netns::interface(status.pid, &cluster.addresses[r])
        .await
        .map_err(|e| failed(fault, e))?;
    Ok((status.pid, dev))
}

fn netem_words(fault: &Fault) -> String {
    let mut words = vec![];
    if let Some(d) = netem(fault).0 {
        words.push(format!("tc netem delay {}", humantime::format_duration(d)));
    }
    if let Some(l) = netem(fault).1 {
        words.push(format!("iptables random drop of {l}%"));
    }
    words.join(" ")
}
