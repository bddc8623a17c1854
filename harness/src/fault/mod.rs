//! The nemesis: carries out the scenario's fault schedule against a live [`Cluster`].
//!
//! Faults are data (`scenario::Fault`); this module executes them. Each fault is applied at
//! its time, records `fault-applied` with the replicas it hit and what it measured (exit skew,
//! `die`-event spread, OOM counters and victim), and is **always** healed — after `down_for`, at the end of the
//! observation, or at once when something went wrong — recording `fault-healed`. The kinds
//! whose action has a `verify` (kill, restart, pause, stop, partition, machine-partition,
//! netem: `plan::FaultKindName::verified`) are also verified on the system after applying and
//! after healing (`fault-verified`, `common.rs`).
//!
//! Each kind of fault is one [`Action`] in a file of its own: how it is applied, what undoing
//! it needs beyond starting what is down, how it shows on a replica (verification) and what
//! to inspect after the heal. The nemesis here does the rest for every kind: selection, the
//! replica locks, the wait until the heal, the heal itself and the records.

mod clock;
mod common;
mod cut;
mod cut_shape;
pub mod daemon_crash;
mod disk;
mod kill;
mod leak;
mod machine_partition;
mod netem;
mod partition;
mod pause;
mod power_cut;
mod rolling;
mod select;
mod sick_link;
mod stop;

use crate::cluster::Cluster;
use crate::error::{HarnessError, Result};
use crate::scenario::plan::{Fault, FaultKind, Placement};
use crate::timeline::{EventKind, Metric};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub use crate::timeline::Stage;
pub use select::resolve;

/// How long before its instant a fault is prepared: its targets selected and locked, and (for
/// the kinds that arm, kills) their processes looked up, so applying is one step at the instant.
/// A second: an engine busy starting fifty containers answers an inspect in hundreds of ms.
pub const ARM_AHEAD: Duration = Duration::from_secs(1);

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
                let at = start + fault.at;
                tokio::time::sleep_until(at.checked_sub(ARM_AHEAD).unwrap_or(at).into()).await;
                carry_out(&cluster, &fault, rng, at, until, &locks).await
            })
        })
        .collect()
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

/// A future of a fault step.
pub(crate) type Step<'a, T = ()> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// What one look at a replica saw: Ok(what shows the stage) or why it does not show.
pub(crate) type Look<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<String, Unseen>> + Send + 'a>>;

/// Why one look at a replica did not show the stage it was asked about.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unseen {
    /// The replica was looked at and shows something else: what.
    #[error("{0}")]
    Shows(String),
    /// The look itself failed: the engine did not answer or refused.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// A command in the replica's network namespace failed.
    #[error(transparent)]
    Netns(#[from] crate::engine::netns::NetnsError),
    /// The harness could not prepare the look (a helper image on a machine).
    #[error(transparent)]
    Harness(#[from] Box<HarnessError>),
    /// The fault's mechanism cannot reach the replica's process (a static or Go binary past
    /// libfaketime): what was seen. The harness cannot tell what the fault would have done.
    #[error("{0}")]
    Unreachable(String),
    /// The look could not measure finely enough to tell (a clock read whose error bound is
    /// wider than what separates the wanted value from the budget): what was read.
    #[error("{0}")]
    Imprecise(String),
}

impl Unseen {
    /// Whether this says the harness could not tell, rather than that the system showed
    /// something else.
    pub(crate) fn undecided(&self) -> bool {
        match self {
            Unseen::Shows(_) => false,
            Unseen::Engine(_)
            | Unseen::Netns(_)
            | Unseen::Harness(_)
            | Unseen::Unreachable(_)
            | Unseen::Imprecise(_) => true,
        }
    }
}

impl From<String> for Unseen {
    fn from(seen: String) -> Self {
        Unseen::Shows(seen)
    }
}

impl From<&str> for Unseen {
    fn from(seen: &str) -> Self {
        Unseen::Shows(seen.to_string())
    }
}

impl From<HarnessError> for Unseen {
    fn from(e: HarnessError) -> Self {
        Unseen::Harness(Box::new(e))
    }
}

/// What a fault step works on.
pub(crate) struct Cx<'a> {
    pub cluster: &'a Cluster,
    pub fault: &'a Fault,
    pub targets: &'a [String],
    /// From the fault's own generator (a torn write's prefix).
    pub seed: u64,
    /// The fault's instant, for an action that [`Action::arms`] (the others are applied at it).
    pub at: Option<Instant>,
}

impl Cx<'_> {
    /// A harness error of this fault.
    pub fn failed(&self, message: impl Into<String>) -> HarnessError {
        HarnessError::Fault {
            fault: self.fault.name.clone(),
            message: message.into(),
        }
    }
}

/// One kind of fault. The extension point of the nemesis: a new kind is a file with one of
/// these, a variant of `plan::FaultKind`, and a line in [`action`] (ARCHITECTURE.md lists
/// the other places the compiler then asks for).
pub(crate) trait Action: Send + Sync {
    /// Applies the fault to `cx.targets` and records `fault-applied` with what it measured.
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a>;

    /// Undoes what starting the targets again cannot: thaw, reconnect, remount.
    fn undo<'a>(&'a self, _cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async { Ok(()) })
    }

    /// One look at replica `r`: does it show the fault (`Stage::Applied`) or the heal?
    fn verify<'a>(&'a self, _cx: &'a Cx<'a>, _r: &'a str, _stage: Stage) -> Look<'a> {
        Box::pin(async { Ok("not verified for this kind".to_string()) })
    }

    /// After the heal, timed from the start: what came back.
    fn inspect<'a>(&'a self, _cx: &'a Cx<'a>, _started: Instant) -> Step<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Whether `apply` takes the fault's instant and prepares before it (`Cx::at`); the
    /// nemesis otherwise waits for the instant and then applies.
    fn arms(&self) -> bool {
        false
    }

    /// Whether the targets stay down until the heal (false: the action heals as it goes).
    fn holds(&self) -> bool {
        true
    }

    /// Whether the action records its own heal (the nemesis then neither waits nor starts).
    fn heals_itself(&self) -> bool {
        false
    }
}

/// The action of a kind of fault on a service placed as `placement` says.
fn action(kind: &FaultKind, placement: Placement) -> Box<dyn Action> {
    match kind {
        FaultKind::Kill { signal, .. } | FaultKind::Restart { signal, .. } => {
            Box::new(kill::Kill { signal: *signal })
        }
        FaultKind::RollingRestart {
            signal,
            rejoin_timeout,
        } => Box::new(rolling::RollingRestart {
            signal: *signal,
            rejoin_timeout: *rejoin_timeout,
        }),
        FaultKind::PowerCut { tear, .. } => Box::new(power_cut::PowerCut { tear: *tear }),
        FaultKind::Leak {
            mib_per_s,
            oom_timeout,
            ..
        } => Box::new(leak::Leak {
            mib_per_s: *mib_per_s,
            oom_timeout: *oom_timeout,
        }),
        FaultKind::DaemonCrash { gap } => Box::new(daemon_crash::DaemonCrash { gap: *gap }),
        FaultKind::Pause { .. } => Box::new(pause::Pause),
        FaultKind::Stop { .. } => Box::new(stop::Stop),
        FaultKind::Partition { port, .. } => Box::new(partition::Partition { port: *port }),
        FaultKind::MachinePartition { port, .. } => Box::new(machine_partition::MachinePartition {
            port: *port,
            loss_percent: None,
        }),
        // On machines, netem's loss is the machines' own firewalls dropping a share.
        FaultKind::Netem {
            loss_percent, port, ..
        } if matches!(placement, Placement::Machine(_)) => {
            Box::new(machine_partition::MachinePartition {
                port: *port,
                loss_percent: *loss_percent,
            })
        }
        FaultKind::Netem {
            delay,
            loss_percent,
            port,
            ..
        } => Box::new(netem::Netem {
            delay: *delay,
            loss_percent: *loss_percent,
            port: *port,
        }),
        FaultKind::Cut {
            shape,
            peers,
            one_way,
            port,
            ..
        } => Box::new(cut::Cut {
            shape: *shape,
            peers: peers.clone(),
            one_way: *one_way,
            port: *port,
            edges: Default::default(),
        }),
        k @ FaultKind::Clock { .. } => Box::new(clock::Clock::of(k)),
        FaultKind::SickLink {
            port,
            stream,
            toxics,
            ..
        } => Box::new(sick_link::SickLink::new(*port, *stream, toxics.clone())),
        FaultKind::DiskLatency { latency, ops, .. } => disk::latency(*latency, ops),
        FaultKind::DiskError {
            errno,
            percent,
            ops,
            forget_writes,
            ..
        } => disk::error(*errno, *percent, ops, *forget_writes),
        FaultKind::DiskFull { room_bytes, .. } => disk::full(*room_bytes),
    }
}

/// How long past its instant a fault on a `Leader` / `Followers` selection waits for an
/// election in progress (×`$AFTERSHOCK_READY_SCALE`, like bring-up waits): ZooKeeper elects in
/// under a second on a healthy host; three JVMs starved by an emulated VM lost and regained
/// their leader in seconds.
pub const ELECTION: Duration = Duration::from_secs(5);

/// The leader of `fault`'s target, asked again every 250 ms while none is known, until `by`.
/// A wait is noted on the timeline (the fault then applies late, and says so); none by `by` is
/// the last answer, with how long it was asked.
async fn elected(
    cluster: &Cluster,
    fault: &Fault,
    by: Instant,
) -> std::result::Result<String, crate::services::LeaderError> {
    let service = cluster.plan.service(fault.target);
    let asked = Instant::now();
    loop {
        let now =
            crate::services::leader(&cluster.engine, &cluster.plan, service, &cluster.addresses)
                .await;
        let waited = asked.elapsed().as_secs_f64();
        match now {
            Ok(leader) if waited > 1.0 => {
                cluster.timeline.note(format!(
                    "{}: `{}` had no leader for {waited:.1}s (an election); {leader} leads",
                    fault.name, service.name
                ));
                return Ok(leader);
            }
            Err(e @ crate::services::LeaderError::NoWay { .. }) => return Err(e),
            Err(e) if Instant::now() >= by => {
                return Err(crate::services::LeaderError::NoneWithin {
                    waited: asked.elapsed(),
                    busy: crate::engine::host::busy(),
                    last: Box::new(e),
                })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            done => return done,
        }
    }
}

/// Applies one fault and heals it; the heal runs even when applying failed.
pub async fn carry_out(
    cluster: &Cluster,
    fault: &Fault,
    mut rng: ChaCha8Rng,
    at: Instant,
    until: Instant,
    locks: &ReplicaLocks,
) -> Result<()> {
    let service = cluster.plan.service(fault.target);
    let leader = elected(
        cluster,
        fault,
        at + ELECTION.mul_f64(crate::services::ready_scale()),
    );
    let targets = resolve(&fault.select, service, leader, &mut rng)
        .await
        .map_err(|e| HarnessError::Fault {
            fault: fault.name.clone(),
            message: e.to_string(),
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
    let action = action(&fault.kind, service.runs_on());
    let seed = rand::Rng::gen(&mut rng);
    if !action.arms() {
        tokio::time::sleep_until(at.into()).await;
    }
    let cx = Cx {
        cluster,
        fault,
        targets: &targets,
        seed,
        at: action.arms().then_some(at),
    };
    let applied = action.apply(&cx).await;
    if action.heals_itself() {
        return applied;
    }
    if applied.is_ok() && fault.kind.verified() {
        common::verify(&cx, action.as_ref(), Stage::Applied).await;
    }
    if applied.is_ok() && action.holds() {
        let heal_at = match fault.kind.down_for() {
            Some(d) => Instant::now() + d,
            None => until,
        };
        tokio::time::sleep_until(heal_at.into()).await;
    }
    let started = Instant::now();
    let healed = heal(&cx, action.as_ref()).await;
    if healed.is_ok() && fault.kind.verified() {
        common::verify(&cx, action.as_ref(), Stage::Healed).await;
    }
    applied?;
    healed?;
    action.inspect(&cx, started).await
}

/// Undoes what a start cannot, starts what is down, and records `fault-healed` — whether or
/// not applying worked.
async fn heal(cx: &Cx<'_>, action: &dyn Action) -> Result<()> {
    let healed = match action.undo(cx).await {
        Ok(()) => cx.cluster.start_stopped(cx.targets).await,
        Err(e) => Err(e),
    };
    let detail = match &healed {
        Ok(started) if started.is_empty() => "all targets were already running".to_string(),
        Ok(started) => format!("started {}", started.join(", ")),
        Err(e) => format!("heal failed: {e}"),
    };
    cx.cluster.timeline.record(EventKind::FaultHealed {
        fault: cx.fault.name.clone(),
        targets: cx.targets.to_vec(),
        detail,
    });
    healed.map(|_| ())
}

/// Records what fault `fault` measured: `metric` (once per `each` machine or replica, if
/// given), a time in ms.
pub(crate) fn measure(
    cluster: &Cluster,
    fault: &Fault,
    metric: Metric,
    each: Option<&str>,
    value_ms: f64,
    words: &str,
) {
    cluster.timeline.record(EventKind::Measurement {
        name: metric.of(&fault.name, each),
        value: value_ms,
        unit: "ms".into(),
        what: words.into(),
    });
}
