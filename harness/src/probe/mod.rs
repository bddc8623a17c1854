//! Probes: observers that sample the system at a fixed rate (10 Hz by default) until the
//! observation ends. Every sample — ok or not, its latency, its error — goes to the timeline.
//! One loop ([`sample_until`]) drives every kind; a kind only says how to take one sample.
//! The exception is the open-loop [`load`] probe, which must not wait for one request before
//! sending the next: it has its own loop and writes 1-second windows instead of samples.

pub mod consul;
pub mod datastore;
mod ledger;
pub mod load;
pub mod memcached;
pub mod postgres;
pub mod registry;
pub mod write;
pub mod zookeeper;

use crate::error::{HarnessError, Result};
use crate::services::ServiceError;
pub use crate::services::{whole, Miss};

use crate::engine::inner::Inner;
use crate::engine::RunEngine;
use crate::scenario::plan::{Plan, Probe, ProbeKind};
use crate::services::generic::Checker;
use crate::services::{machine, Addresses};
use crate::timeline::{now, EventKind, Timeline};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// One kind of observation: the extension point of this module. A kind says how to take one
/// sample and, for write probes, what to read back at the end; [`sample_until`] does the rest.
pub trait Sampler: Send {
    /// Takes sample number `seq`: `Ok(detail)` when the system answered as it should.
    fn sample(&mut self, seq: u64) -> impl Future<Output = Result<Option<String>, Miss>> + Send;

    /// After the observation and every heal: what survived (a write probe's ledger against
    /// what the system holds), onto the timeline. Default: nothing.
    fn read_back(self, timeline: &Timeline) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        let _ = timeline;
        async {}
    }
}

/// When a probe samples: from `first` (its phase) until `until`, at its interval.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub first: Instant,
    pub until: Instant,
}

/// How far apart the probes' phases are: the `i`-th probe of a plan first samples `i` ms after
/// the observation starts (modulo its interval). Probes started together would otherwise wake
/// on the same timer tick, every tick: a hundred of them queue behind each other on the
/// runtime's workers, and the last one samples milliseconds late.
pub const PHASE_STEP: Duration = Duration::from_millis(1);

impl Window {
    /// The window of the `index`-th probe, sampling every `interval` from `start` to `until`.
    pub fn of(index: usize, interval: Duration, start: Instant, until: Instant) -> Window {
        let step = PHASE_STEP.as_nanos() as u64;
        let phase = (step * index as u64) % (interval.as_nanos() as u64).max(1);
        Window {
            first: start + Duration::from_nanos(phase),
            until,
        }
    }
}

/// Samples at the probe's interval from the window's first instant until its end; returns the
/// sampler (with what it learnt).
pub async fn sample_until<S: Sampler>(
    probe: &Probe,
    mut sampler: S,
    window: Window,
    timeline: &Timeline,
) -> S {
    let (mut seq, until) = (0u64, window.until);
    let mut next = window.first;
    tokio::time::sleep_until(next.into()).await;
    let mut lag = Lag::default();
    while Instant::now() < until {
        let at = now();
        let started = Instant::now();
        let late = started.saturating_duration_since(next).as_nanos() as i64;
        let result = tokio::time::timeout(probe.timeout, sampler.sample(seq))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", probe.timeout).into()));
        let latency = started.elapsed().as_nanos() as i64;
        let kind = match result {
            Ok(detail) => sample(probe, true, latency, detail, late),
            Err(Miss::Failed(e)) => sample(probe, false, latency, Some(e), late),
            Err(Miss::Unobserved(why)) => EventKind::Unobserved {
                probe: probe.name.clone(),
                replica: observed_replica(probe),
                detail: why,
            },
        };
        timeline.push(crate::timeline::Event { at, kind });
        seq += 1;
        next += probe.interval;
        let now = Instant::now();
        if next < now {
            next = now; // fell behind: sample again at once, never in a burst
        }
        tokio::time::sleep_until(next.into()).await;
        lag.woke(next.elapsed(), &probe.name, timeline);
    }
    lag.summary(&probe.name, seq, timeline);
    sampler
}

fn sample(probe: &Probe, ok: bool, latency: i64, detail: Option<String>, late: i64) -> EventKind {
    EventKind::Sample {
        probe: probe.name.clone(),
        ok,
        latency,
        detail,
        late: Some(late),
    }
}

/// The addresses of a machine service's replicas (its machines), in order.
fn machines(service: &crate::scenario::plan::Service, a: &Addresses) -> Vec<String> {
    service.replicas.iter().map(|r| a[r].clone()).collect()
}

/// The replica a probe looks at through its engine (an exec), when it names one.
fn observed_replica(probe: &Probe) -> String {
    match &probe.kind {
        ProbeKind::Check { replica, .. } | ProbeKind::Write { replica, .. } => replica.clone(),
        ProbeKind::ZookeeperWrite { .. }
        | ProbeKind::ZookeeperMode
        | ProbeKind::DatastoreAppend { .. }
        | ProbeKind::PostgresInsert
        | ProbeKind::Load(_)
        | ProbeKind::ConsulKv { .. }
        | ProbeKind::ConsulLeader
        | ProbeKind::Registry
        | ProbeKind::RegistryPull { .. }
        | ProbeKind::MemcachedSet { .. } => String::new(),
    }
}

/// How late a probe's loop may wake before the run's verdicts cannot trust it: 250 ms.
/// Samples are 100 ms apart and "recovered" means 5 good ones in a row, so a 250 ms stall
/// hides more than two samples and half of that proof; budgets are whole seconds, and a stall
/// of a quarter of one is a quarter-second error in a measured time. An idle host wakes the
/// loop within 1–2 ms, a busy 2-core one (a cargo build at nice 19) within tens of ms: what
/// is beyond 250 ms is the host starving the harness, not the system being slow.
pub const LAG_BOUND: Duration = Duration::from_millis(250);

/// The loop's scheduling lag: how late each sample starts against its schedule (the time the
/// probe asked to wake), not how long a sample takes (that is the system's latency).
#[derive(Default)]
struct Lag {
    max: Duration,
}

impl Lag {
    /// One wake-up `late` after its schedule; over [`LAG_BOUND`] it is an unplanned event.
    fn woke(&mut self, late: Duration, probe: &str, timeline: &Timeline) {
        self.max = self.max.max(late);
        if late <= LAG_BOUND {
            return;
        }
        let lasted = late.as_nanos() as i64;
        timeline.push(crate::timeline::Event {
            at: now() - lasted,
            kind: EventKind::Unplanned {
                cause: crate::timeline::Cause::Lag,
                subject: probe.to_string(),
                lasted,
                detail: format!(
                    "the harness fell behind: probe `{probe}` started a sample {} ms late (bound {} ms; the host starved it of CPU)",
                    late.as_millis(),
                    LAG_BOUND.as_millis()
                ),
            },
        });
    }

    fn summary(&self, probe: &str, samples: u64, timeline: &Timeline) {
        timeline.note(format!(
            "probe `{probe}`: {samples} samples, scheduling lag at most {:.1} ms (bound {} ms)",
            self.max.as_secs_f64() * 1e3,
            LAG_BOUND.as_millis()
        ));
    }
}

/// What a finished sampler still has to do: its read-back.
type ReadBack = Box<dyn FnOnce(Timeline) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A running probe; `finish` waits for it and does its end-of-run read-back, if any.
pub struct Running(JoinHandle<Option<ReadBack>>);

impl Running {
    pub async fn finish(self, timeline: &Timeline) {
        if let Ok(Some(read_back)) = self.0.await {
            read_back(timeline.clone()).await;
        }
    }
}

/// Runs a sampler as a task until `until`; its read-back waits for [`Running::finish`].
fn spawn<S: Sampler + 'static>(probe: Probe, sampler: S, until: Window, t: Timeline) -> Running {
    Running(tokio::spawn(async move {
        let sampler = sample_until(&probe, sampler, until, &t).await;
        let read_back: ReadBack =
            Box::new(move |t: Timeline| Box::pin(async move { sampler.read_back(&t).await }));
        Some(read_back)
    }))
}

/// A task with nothing to read back (the open-loop load, a probe that could not start).
fn task(f: impl Future<Output = ()> + Send + 'static) -> Running {
    Running(tokio::spawn(async move {
        f.await;
        None
    }))
}

/// The address of the first replica a probe targets.
fn target_ip(plan: &Plan, probe: &Probe, addresses: &Addresses) -> String {
    addresses[&plan.service(probe.target).replicas[0]].clone()
}

/// What probes do before the observation starts: a `load` probe with `prime` reads every key
/// once (a warm cache), one with `warm_up` runs its load until the target is steady
/// ([`warm_up`]). Recorded as measurements; a failure is a harness error.
pub async fn prepare_all(
    plan: &Plan,
    addresses: &Addresses,
    timeline: &Timeline,
    seed: u64,
) -> Result<()> {
    for p in &plan.probes {
        let ProbeKind::Load(load) = &p.kind else {
            continue;
        };
        let ip = target_ip(plan, p, addresses);
        let not_ready = |timeout, last| HarnessError::NotReady {
            service: plan.service(p.target).name.clone(),
            timeout,
            last: Box::new(last),
        };
        if load.prime {
            let took = load::prime(p, load, &ip)
                .await
                .map_err(|e| not_ready(p.timeout, e))?;
            timeline.record(EventKind::Measurement {
                name: format!("{}/prime", p.name),
                value: took.as_secs_f64(),
                unit: "s".into(),
                what: format!(
                    "reading each of the {} keys once before the observation",
                    load.keys.unwrap_or(0)
                ),
            });
        }
        if let Some(longest) = load.warm_up {
            warm_up(p, load, &ip, seed, longest, timeline)
                .await
                .map_err(|e| not_ready(longest, e))?;
        }
    }
    Ok(())
}

/// A load probe's warm-up ([`load::warm_up`]): its time and last windows to the timeline;
/// not steady within `longest`, an error saying what the last windows looked like.
async fn warm_up(
    p: &Probe,
    load: &crate::scenario::plan::Load,
    ip: &str,
    seed: u64,
    longest: Duration,
    timeline: &Timeline,
) -> std::result::Result<(), ServiceError> {
    // Not the observation's sequence of keys: a seed of its own.
    let w = load::warm_up(p, load, ip, seed ^ 0x5741_524d, longest).await;
    let shown: Vec<String> = w
        .windows
        .iter()
        .map(|(p99, hits)| format!("{p99:.0} ms/{hits:.0}%"))
        .collect();
    let seen = format!(
        "{} req/s for {:.1}s; each second's p99/hit ratio: {}",
        load.rate,
        w.took.as_secs_f64(),
        shown.join(", ")
    );
    match w.steady.filter(crate::check::Steady::holds) {
        Some(steady) => {
            timeline.record(EventKind::Measurement {
                name: format!("{}/warm-up", p.name),
                value: w.took.as_secs_f64(),
                unit: "s".into(),
                what: format!(
                    "the same load before the observation until steady ({steady}); {seen}"
                ),
            });
            Ok(())
        }
        None => {
            let last = w
                .steady
                .map_or("fewer than 3 whole seconds".into(), |s| s.to_string());
            Err(ServiceError::Said(format!(
                "not steady under its load within {longest:?} (last: {last}; {seen}): lower the load's `rate` or raise `warm_up`"
            )))
        }
    }
}

/// A generic check (tcp, http, exec) is a sampler like any other.
impl Sampler for Checker {
    async fn sample(&mut self, _seq: u64) -> Result<Option<String>, Miss> {
        self.once().await
    }
}

/// Starts every probe of the plan; they stop by themselves after `observe`. Random choices
/// (the load probe's keys) come from `seed`.
pub fn start_all(
    engine: &RunEngine,
    plan: &Plan,
    addresses: &Addresses,
    timeline: &Timeline,
    observe: Duration,
    seed: u64,
) -> Vec<Running> {
    let start = Instant::now();
    let end = start + observe;
    let probes = plan.probes.iter().enumerate();
    let windows = probes.map(|(i, p)| (p, Window::of(i, p.interval, start, end)));
    let started = windows.map(|(p, until)| {
        Start {
            engine,
            plan,
            addresses,
            timeline,
            until,
            seed,
        }
        .start(p)
    });
    started.collect()
}

/// What starting a probe needs.
struct Start<'a> {
    engine: &'a RunEngine,
    plan: &'a Plan,
    addresses: &'a Addresses,
    timeline: &'a Timeline,
    until: Window,
    seed: u64,
}

impl Start<'_> {
    /// Starts one probe as a task.
    fn start(&self, p: &Probe) -> Running {
        let service = self.plan.service(p.target);
        let replicas = service.replicas.clone();
        let (until, t, a) = (self.until, self.timeline.clone(), self.addresses.clone());
        let p = p.clone();
        let timeout = p.timeout;
        match p.kind.clone() {
            ProbeKind::ZookeeperWrite { on, members } => {
                let members = on.map_or_else(|| [replicas, members].concat(), |r| vec![r]);
                let w = zookeeper::Writer::new(&p.name, &members, &a, p.timeout);
                spawn(p, w, until, t)
            }
            ProbeKind::DatastoreAppend { record_bytes } => {
                let w = datastore::Appender::new(&p.name, &a[&replicas[0]], record_bytes);
                spawn(p, w, until, t)
            }
            ProbeKind::PostgresInsert => {
                let w = postgres::Inserter::new(&p.name, &a[&replicas[0]], p.timeout);
                spawn(p, w, until, t)
            }
            ProbeKind::MemcachedSet { replica } => {
                let s = memcached::Setter::new(&p.name, &a[&replica], p.timeout);
                spawn(p, s, until, t)
            }
            ProbeKind::ZookeeperMode => {
                let m = zookeeper::Modes::new(replicas, a, p.timeout);
                spawn(p, m, until, t)
            }
            ProbeKind::Load(load) => {
                let ip = target_ip(self.plan, &p, &a);
                task(load::run(p, load, ip, self.seed, until.until, t))
            }
            ProbeKind::Write { replica, via } => {
                let ip = &a[&replica];
                let w = write::Writer::new(&p.name, self.engine, &replica, ip, via, p.timeout);
                spawn(p, w, until, t)
            }
            ProbeKind::Check { replica, check } => {
                let c = Checker::new(self.engine, check, &replica, &a[&replica], p.timeout);
                spawn(p, c, until, t)
            }
            ProbeKind::ConsulKv { key } => {
                let (ips, expected) = (machines(service, &a), machine::TEST_VALUE.into());
                spawn(
                    p,
                    consul::Kv {
                        ips,
                        key,
                        expected,
                        timeout,
                    },
                    until,
                    t,
                )
            }
            ProbeKind::ConsulLeader => {
                let ips = machines(service, &a);
                spawn(p, consul::Leader { ips, timeout }, until, t)
            }
            ProbeKind::Registry => {
                let address = machine::registry_address(service, &a);
                spawn(p, registry::V2 { address, timeout }, until, t)
            }
            ProbeKind::RegistryPull { on, push } => self.registry_pull(p, service, &on, push),
        }
    }

    /// A real pull (and push) through the registry of a machine service, by machine `on`.
    fn registry_pull(
        &self,
        p: Probe,
        service: &crate::scenario::plan::Service,
        on: &str,
        push: bool,
    ) -> Running {
        let (until, t, a) = (self.until, self.timeline.clone(), self.addresses);
        let inner = match Inner::connect(on, &a[on], self.engine.tls.as_ref(), p.timeout) {
            Ok(i) => i,
            Err(e) => {
                t.note(format!("probe {}: {e}", p.name));
                return task(async {});
            }
        };
        let pp = registry::PushPull {
            inner,
            registry: machine::registry_address(service, a),
            push_each: push,
            pushed: None,
        };
        spawn(p, pp, until, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_sample_a_phase_step_apart_within_their_interval() {
        let (start, end) = (Instant::now(), Instant::now() + Duration::from_secs(4));
        let every = Duration::from_millis(100);
        let phase = |i| Window::of(i, every, start, end).first - start;
        assert_eq!(phase(0), Duration::ZERO);
        assert_eq!(phase(3), Duration::from_millis(3));
        assert_eq!(phase(150), Duration::from_millis(50));
        assert_eq!(Window::of(7, every, start, end).until, end);
    }
}
