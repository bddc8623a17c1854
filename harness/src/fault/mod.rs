//! The nemesis: carries out the scenario's fault schedule against a live [`Cluster`].
//!
//! Faults are data (`scenario::Fault`); this module executes them. Each fault is applied at
//! its time, records `fault-applied` with the replicas it hit and what it measured (exit skew,
//! `die`-event spread, OOM counters and victim), and is **always** healed — after `down_for`, at the end of the
//! observation, or at once when something went wrong — recording `fault-healed`. The common
//! faults (kill, restart, pause, stop, partition, netem; `common.rs`) are also verified on the
//! system after applying and after healing (`fault-verified`).

mod common;
pub mod daemon_crash;
mod leak;
mod power_cut;
mod select;

use crate::cluster::Cluster;
use crate::error::{HarnessError, Result};
use crate::scenario::plan::{Fault, FaultKind, Plan};
use crate::scenario::Signal;
use crate::timeline::{now, EventKind};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub use select::resolve;

/// Starts one task per fault; each sleeps until its time, applies and heals. `until` is the
/// end of the observation (when faults without `down_for` are healed).
pub fn start_all(
    cluster: &Arc<Cluster>,
    start: Instant,
    until: Instant,
    seed: u64,
) -> Vec<JoinHandle<Result<()>>> {
    let locks = ReplicaLocks::default();
    cluster
        .plan
        .faults
        .iter()
        .enumerate()
        .map(|(i, fault)| {
            let cluster = cluster.clone();
            let fault = fault.clone();
            let rng = generator(seed, i);
            let locks = locks.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until((start + fault.at).into()).await;
                carry_out(&cluster, &fault, rng, until, &locks).await
            })
        })
        .collect()
}

/// What the host must offer for the scenario's faults, checked before anything starts: a
/// `netem` delay needs the kernel's netem qdisc.
pub async fn preflight(plan: &Plan) -> Result<()> {
    let delayed = plan.faults.iter().find(|f| {
        matches!(
            f.kind,
            FaultKind::Netem {
                delay: Some(_),
                ..
            }
        )
    });
    if let Some(f) = delayed {
        if !crate::engine::netns::netem_available().await {
            return Err(HarnessError::Fault {
                fault: f.name.clone(),
                message: "a `delay` needs the kernel's netem qdisc (CONFIG_NET_SCH_NETEM), which this host's kernel lacks (`tc qdisc add … netem` says \"Specified qdisc kind is unknown\"); `loss_percent` works without it (iptables in the replica's namespace)".into(),
            });
        }
    }
    Ok(())
}

/// The generator of the `index`-th fault of a run: every random choice of that fault (which
/// replicas) comes from it, so the same seed replays the same schedule. Each fault has its own
/// ChaCha stream of the run's seed (seed 9's second fault does not repeat seed 10's first).
pub fn generator(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// One lock per replica. A fault holds the locks of the replicas it hits from applying until it
/// has healed (and inspected them), so a later fault on the same replica waits for it instead
/// of acting on a container that is still starting. (Found the hard way: a power cut that froze
/// PostgreSQL while the previous cut's heal was exec'ing into it left `runc exec` frozen
/// forever under the cgroup v1 freezer, and the engine with it.)
#[derive(Clone, Default)]
pub struct ReplicaLocks(Arc<std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl ReplicaLocks {
    /// Waits for the locks of `replicas` (in name order, so two faults never deadlock).
    pub async fn hold(&self, replicas: &[String]) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let locks: Vec<_> = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let names: BTreeSet<&String> = replicas.iter().collect();
            names
                .into_iter()
                .map(|r| map.entry(r.clone()).or_default().clone())
                .collect()
        };
        let mut held = Vec::with_capacity(locks.len());
        for lock in locks {
            held.push(lock.lock_owned().await);
        }
        held
    }
}

/// Applies one fault and heals it; the heal runs even when applying failed.
pub async fn carry_out(
    cluster: &Cluster,
    fault: &Fault,
    mut rng: ChaCha8Rng,
    until: Instant,
    locks: &ReplicaLocks,
) -> Result<()> {
    let service = cluster.plan.service(fault.target);
    let targets = resolve(&fault.select, service, &cluster.addresses, &mut rng)
        .await
        .map_err(|message| HarnessError::Fault {
            fault: fault.name.clone(),
            message,
        })?;
    let waiting = Instant::now();
    let _held = locks.hold(&targets).await;
    if waiting.elapsed() > Duration::from_millis(5) {
        cluster.timeline.note(format!(
            "{}: waited {:.2}s for an earlier fault on {} to heal",
            fault.name,
            waiting.elapsed().as_secs_f64(),
            targets.join(", ")
        ));
    }
    if let FaultKind::DaemonCrash { gap } = fault.kind {
        // Applies, measures and heals by itself (its heal is the engines' return).
        return daemon_crash::carry_out(cluster, fault, &targets, gap).await;
    }
    let applied = apply(cluster, fault, &targets, &mut rng).await;
    if applied.is_ok() && fault.kind.verified() {
        common::verify(cluster, fault, &targets, common::Stage::Applied).await;
    }
    if applied.is_ok() && !matches!(fault.kind, FaultKind::RollingRestart { .. }) {
        let heal_at = match fault.kind.down_for() {
            Some(d) => Instant::now() + d,
            None => until,
        };
        tokio::time::sleep_until(heal_at.into()).await;
    }
    let started = Instant::now();
    let healed = heal(cluster, fault, &targets, &applied).await;
    if healed.is_ok() && fault.kind.verified() {
        common::verify(cluster, fault, &targets, common::Stage::Healed).await;
    }
    applied?;
    healed?;
    if matches!(fault.kind, FaultKind::PowerCut { .. }) {
        power_cut::inspect(cluster, fault, &targets, started).await?;
    }
    Ok(())
}

/// Applies the fault to its targets, by kind.
async fn apply(
    cluster: &Cluster,
    fault: &Fault,
    targets: &[String],
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    match fault.kind {
        FaultKind::Kill { signal, .. } | FaultKind::Restart { signal, .. } => {
            kill(cluster, fault, signal, targets).await
        }
        FaultKind::RollingRestart {
            signal,
            rejoin_timeout,
        } => rolling_restart(cluster, fault, signal, rejoin_timeout, targets).await,
        FaultKind::PowerCut { tear, .. } => {
            let seed = rand::Rng::gen(rng);
            power_cut::cut(cluster, fault, targets, seed, tear).await
        }
        FaultKind::Leak {
            mib_per_s,
            oom_timeout,
            ..
        } => leak::apply(cluster, fault, &targets[0], mib_per_s, oom_timeout).await,
        FaultKind::Pause { .. }
        | FaultKind::Stop { .. }
        | FaultKind::Partition { .. }
        | FaultKind::Netem { .. } => common::apply(cluster, fault, targets).await,
        FaultKind::DaemonCrash { .. } => Ok(()),
    }
}

/// Undoes what a start cannot (thaw, reconnect, remount), starts what is down, and records
/// `fault-healed` — whether or not applying worked.
async fn heal(
    cluster: &Cluster,
    fault: &Fault,
    targets: &[String],
    applied: &Result<()>,
) -> Result<Vec<String>> {
    let restored = match fault.kind {
        FaultKind::PowerCut { .. } => power_cut::restore(cluster, fault, targets).await,
        FaultKind::Pause { .. } | FaultKind::Partition { .. } | FaultKind::Netem { .. } => {
            common::undo(cluster, fault, targets).await
        }
        _ => Ok(()),
    };
    let healed = match restored {
        Ok(()) => cluster.start_stopped(targets).await,
        Err(e) => Err(e),
    };
    let detail = match (applied, &healed) {
        (_, Ok(started)) if started.is_empty() => "all targets were already running".to_string(),
        (_, Ok(started)) => format!("started {}", started.join(", ")),
        (_, Err(e)) => format!("heal failed: {e}"),
    };
    cluster.timeline.record(EventKind::FaultHealed {
        fault: fault.name.clone(),
        targets: targets.to_vec(),
        detail,
    });
    healed
}

pub(crate) fn measure(cluster: &Cluster, fault: &Fault, what: &str, value_ms: f64, words: &str) {
    cluster.timeline.record(EventKind::Measurement {
        name: format!("{}/{what}", fault.name),
        value: value_ms,
        unit: "ms".into(),
        what: words.into(),
    });
}

async fn kill(cluster: &Cluster, fault: &Fault, signal: Signal, targets: &[String]) -> Result<()> {
    let since = now();
    let report = cluster.kill_together(targets, signal).await?;
    let how = if report.direct {
        "pidfd at the processes"
    } else {
        "Engine API (remote engine)"
    };
    cluster.timeline.push(crate::timeline::Event {
        at: since,
        kind: EventKind::FaultApplied {
            fault: fault.name.clone(),
            targets: targets.to_vec(),
            detail: format!(
                "{} to {} via {how}",
                signal.name(),
                targets.join(", ")
            ),
        },
    });
    if let Some(skew) = report.exit_skew {
        measure(
            cluster,
            fault,
            "exit-skew",
            skew as f64 / 1e6,
            "spread of the killed processes' exits, polled on their pidfds",
        );
    }
    if let Some(spread) = report.signal_spread {
        measure(
            cluster,
            fault,
            "signal-spread",
            spread as f64 / 1e6,
            "time between the first and the last signal sent",
        );
    }
    if targets.len() > 1 {
        if let Some(spread) = cluster.die_event_spread(targets, since).await {
            measure(
                cluster,
                fault,
                "die-event-spread",
                spread,
                "spread of the engine's `die` events (the engine serialises them)",
            );
        }
    }
    Ok(())
}

/// Restarts the targets one at a time, the leader last, waiting for each to rejoin.
async fn rolling_restart(
    cluster: &Cluster,
    fault: &Fault,
    signal: Signal,
    rejoin_timeout: Duration,
    targets: &[String],
) -> Result<()> {
    let service = cluster.plan.service(fault.target);
    let leader = crate::services::leader(service, &cluster.addresses).await;
    let mut order: Vec<String> = targets
        .iter()
        .filter(|t| Some(*t) != leader.as_ref())
        .cloned()
        .collect();
    order.extend(
        targets
            .iter()
            .filter(|t| Some(*t) == leader.as_ref())
            .cloned(),
    );
    cluster.timeline.record(EventKind::FaultApplied {
        fault: fault.name.clone(),
        targets: order.clone(),
        detail: format!(
            "rolling restart in order {}, each must rejoin before the next",
            order.join(" → ")
        ),
    });
    for replica in &order {
        let one = std::slice::from_ref(replica);
        let killed_at = Instant::now();
        cluster.kill_together(one, signal).await?;
        cluster.start_stopped(one).await?;
        let waited = cluster
            .wait_ready(service, one, rejoin_timeout)
            .await
            .map_err(|e| HarnessError::Fault {
                fault: fault.name.clone(),
                message: format!("{replica} did not rejoin: {e}"),
            })?;
        cluster.timeline.note(format!(
            "{}: {replica} restarted and rejoined in {:.2}s",
            fault.name,
            killed_at.elapsed().as_secs_f64()
        ));
        measure(
            cluster,
            fault,
            &format!("rejoin-{replica}"),
            waited.as_secs_f64() * 1e3,
            "from start to rejoined the ensemble",
        );
    }
    Ok(())
}
