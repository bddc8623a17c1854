//! The common faults on any service — `pause`, `stop`, `partition`, `netem` (kill and restart
//! are in `mod.rs`) — and the verification of every one of them on the system itself, once
//! after applying and once after healing, each recorded as a `fault-verified` event:
//!
//! - kill, restart, stop: the engine says the container is not running / running again;
//! - pause: the engine says paused *and* the kernel's freezer says `FROZEN` (then thawed);
//! - partition: the replica is off the run's network and a TCP handshake from the harness gets
//!   no answer; after the heal it answers again (a refusal counts: it comes from the replica);
//! - netem: `tc qdisc show` lists the netem qdisc (then no longer), and the handshake's round
//!   trip, measured before, during and after, grows by the delay (then shrinks back).
//!
//! A verification polls for up to [`VERIFY_WITHIN`]: the engine reaps a killed container, a
//! reconnected one needs an ARP exchange.

use super::measure;
use crate::cluster::Cluster;
use crate::engine::{netns, Status};
use crate::error::{HarnessError, Result};
use crate::scenario::{Check, Fault, FaultKind};
use crate::services::generic::reach;
use crate::timeline::{now, Event, EventKind};
use std::time::{Duration, Instant};

/// The longest a verification waits for the system to show the fault (or the heal).
pub const VERIFY_WITHIN: Duration = Duration::from_secs(5);
/// Round trips measured per estimate (their median counts).
const ROUND_TRIPS: usize = 5;

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
            FaultKind::Pause => engine.pause(r).await?,
            FaultKind::Stop => engine.stop(r, 2).await?,
            FaultKind::Partition => engine.disconnect(r).await?,
            FaultKind::Netem => {
                let before = round_trip(cluster, fault, r).await;
                if let Some(ms) = before {
                    let what = format!("{r}'s TCP handshake round trip before the netem (median)");
                    measure(cluster, fault, &format!("rtt-before-{r}"), ms, &what);
                }
                let (pid, dev) = netns_of(cluster, fault, r).await?;
                netns::add_netem(pid, &dev, fault.delay, fault.loss_percent)
                    .await
                    .map_err(|e| failed(fault, e))?;
                details.push(format!("{r}: netem on {dev}"));
            }
            _ => unreachable!("only the common faults are applied here"),
        }
    }
    let how = match fault.kind {
        FaultKind::Pause => "docker pause (cgroup freezer)".to_string(),
        FaultKind::Stop => "docker stop (SIGTERM, SIGKILL after 2 s)".to_string(),
        FaultKind::Partition => "disconnected from the run's network".to_string(),
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
            FaultKind::Pause if status.paused => engine.unpause(r).await?,
            FaultKind::Partition if !status.networks.contains(&engine.network_name()) => {
                engine.reconnect(r, &cluster.addresses[r]).await?
            }
            FaultKind::Netem if status.running => {
                let (pid, dev) = netns_of(cluster, fault, r).await?;
                netns::delete_qdisc(pid, &dev)
                    .await
                    .map_err(|e| failed(fault, e))?;
            }
            _ => {}
        }
    }
    Ok(())
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
        FaultKind::Kill | FaultKind::Restart | FaultKind::Stop => running(&status, !applied),
        FaultKind::Pause => {
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
        FaultKind::Partition => {
            let on = status.networks.contains(&cluster.engine.network_name());
            let answer = reach(
                &cluster.addresses[r],
                port(cluster, fault),
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
        FaultKind::Netem => {
            let (pid, dev) = netns_of(cluster, fault, r)
                .await
                .map_err(|e| e.to_string())?;
            let qdisc = netns::qdisc(pid, &dev).await?;
            if qdisc.contains("netem") != applied {
                return Err(format!("tc qdisc show dev {dev}: {qdisc}"));
            }
            let rtt = round_trip(cluster, fault, r).await;
            let label = if applied { "during" } else { "after" };
            if let Some(ms) = rtt {
                let what = format!("{r}'s TCP handshake round trip {label} the netem (median)");
                measure(cluster, fault, &format!("rtt-{label}-{r}"), ms, &what);
            }
            let delay_ms = fault.delay.map(|d| d.as_secs_f64() * 1e3);
            let rtt_words = rtt.map_or("no round trip measured".into(), |ms| {
                format!("round trip {ms:.1} ms")
            });
            let words = format!("{}; {rtt_words}", qdisc.lines().next().unwrap_or_default());
            // The delay shows in the round trip (80 % of it, for timer slack), then is gone.
            let delayed = match (delay_ms, rtt) {
                (Some(d), Some(ms)) if applied => ms >= 0.8 * d,
                (Some(d), Some(ms)) => ms < 0.5 * d,
                (Some(_), None) => false,
                (None, _) => true,
            };
            if delayed {
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

/// The port verifications connect to: the fault's `port`, else the service's `ready` port,
/// else 1 (closed: the replica's kernel refuses, which proves it answers).
fn port(cluster: &Cluster, fault: &Fault) -> u16 {
    let ready = cluster
        .scenario
        .service(fault.target.get_ref())
        .and_then(|s| s.ready.as_ref())
        .and_then(|r| r.check().ok());
    let ready_port = match ready {
        Some(Check::Tcp(p)) | Some(Check::Http { port: p, .. }) => Some(p),
        _ => None,
    };
    fault.port.or(ready_port).unwrap_or(1)
}

/// The median TCP handshake round trip (ms) from the harness to replica `r`, if any answered.
async fn round_trip(cluster: &Cluster, fault: &Fault, r: &str) -> Option<f64> {
    let timeout = Duration::from_secs(2) + fault.delay.unwrap_or_default() * 2;
    let mut times = vec![];
    for _ in 0..ROUND_TRIPS {
        if let Ok(t) = reach(&cluster.addresses[r], port(cluster, fault), timeout).await {
            times.push(t.as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied()
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
    let mut words = vec!["tc netem".to_string()];
    if let Some(d) = fault.delay {
        words.push(format!("delay {}", humantime::format_duration(d)));
    }
    if let Some(l) = fault.loss_percent {
        words.push(format!("loss {l}%"));
    }
    words.join(" ")
}
