//! Probes: observers that sample the system at a fixed rate (10 Hz by default) until the
//! observation ends. Every sample — ok or not, its latency, its error — goes to the timeline.
//! One loop ([`sample_until`]) drives every kind; a kind only says how to take one sample.
//! The exception is the open-loop [`load`] probe, which must not wait for one request before
//! sending the next: it has its own loop and writes 1-second windows instead of samples.

pub mod consul;
pub mod datastore;
mod ledger;
pub mod load;
pub mod postgres;
pub mod registry;
pub mod zookeeper;

use crate::error::{HarnessError, Result};

use crate::engine::inner::Inner;
use crate::engine::RunEngine;
use crate::scenario::{Check, Probe, ProbeKind, Scenario};
use crate::services::generic::Checker;
use crate::services::{machine, toy_api, Addresses};
use crate::timeline::{now, EventKind, Timeline};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// One kind of observation.
pub trait Sampler: Send {
    /// Takes sample number `seq`: `Ok(detail)` when the system answered as it should.
    fn sample(&mut self, seq: u64) -> impl Future<Output = Result<Option<String>, String>> + Send;
}

/// Samples at the probe's interval until `until`; returns the sampler (with what it learnt).
pub async fn sample_until<S: Sampler>(
    probe: &Probe,
    mut sampler: S,
    until: Instant,
    timeline: &Timeline,
) -> S {
    let mut seq = 0u64;
    let mut next = Instant::now();
    while Instant::now() < until {
        let at = now();
        let started = Instant::now();
        let result = tokio::time::timeout(probe.timeout, sampler.sample(seq))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", probe.timeout)));
        let latency = started.elapsed().as_nanos() as i64;
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(e) => (false, Some(e)),
        };
        timeline.push(crate::timeline::Event {
            at,
            kind: EventKind::Sample {
                probe: probe.name.clone(),
                ok,
                latency,
                detail,
            },
        });
        seq += 1;
        next += probe.interval;
        let now = Instant::now();
        if next < now {
            next = now; // fell behind: sample again at once, never in a burst
        }
        tokio::time::sleep_until(next.into()).await;
    }
    sampler
}

/// A running probe; `finish` waits for it and does its end-of-run read-back, if any.
pub enum Running {
    Plain(JoinHandle<()>),
    Writes(JoinHandle<zookeeper::Writer>),
    Appends(JoinHandle<datastore::Appender>),
    Inserts(JoinHandle<postgres::Inserter>),
}

impl Running {
    pub async fn finish(self, timeline: &Timeline) {
        match self {
            Running::Plain(h) => {
                let _ = h.await;
            }
            Running::Writes(h) => {
                if let Ok(writer) = h.await {
                    writer.read_back(timeline).await;
                }
            }
            Running::Appends(h) => {
                if let Ok(appender) = h.await {
                    appender.read_back(timeline).await;
                }
            }
            Running::Inserts(h) => {
                if let Ok(inserter) = h.await {
                    inserter.read_back(timeline).await;
                }
            }
        }
    }
}

/// The address of the first replica a probe targets.
fn target_ip(scenario: &Scenario, probe: &Probe, addresses: &Addresses) -> String {
    let service = scenario
        .service(probe.target.get_ref())
        .expect("validated: probe target exists");
    addresses[&Scenario::replica_names(service)[0]].clone()
}

/// What probes do before the observation starts: a `load` probe with `prime` reads every key
/// once (a warm cache). Recorded as a measurement; a failure is a harness error.
pub async fn prepare_all(
    scenario: &Scenario,
    addresses: &Addresses,
    timeline: &Timeline,
) -> Result<()> {
    for p in scenario
        .probes
        .iter()
        .filter(|p| p.kind == ProbeKind::Load && p.prime)
    {
        let took = load::prime(p, &target_ip(scenario, p, addresses))
            .await
            .map_err(|message| HarnessError::NotReady {
                service: p.target.get_ref().clone(),
                timeout: p.timeout,
                last: message,
            })?;
        timeline.record(EventKind::Measurement {
            name: format!("{}/prime", p.name),
            value: took.as_secs_f64(),
            unit: "s".into(),
            what: format!(
                "reading each of the {} keys once before the observation",
                p.keys.unwrap_or(0)
            ),
        });
    }
    Ok(())
}

/// Runs a sampler without read-back as a task.
fn plain<S: Sampler + 'static>(probe: Probe, sampler: S, until: Instant, t: Timeline) -> Running {
    Running::Plain(tokio::spawn(async move {
        sample_until(&probe, sampler, until, &t).await;
    }))
}

/// A generic check (tcp, http, exec) is a sampler like any other.
impl Sampler for Checker {
    async fn sample(&mut self, _seq: u64) -> Result<Option<String>, String> {
        self.once().await
    }
}

/// What a `tcp`, `http` or `exec` probe checks.
fn generic_check(p: &Probe) -> Check {
    match p.kind {
        ProbeKind::Tcp => Check::Tcp(p.port.unwrap_or_default()),
        ProbeKind::Exec => Check::Exec(p.command.clone()),
        _ => Check::Http {
            port: p.port.unwrap_or(toy_api::PORT),
            path: p.path.clone().unwrap_or_else(|| "/".into()),
            status: p.status,
        },
    }
}

/// Starts every probe of the scenario; they stop by themselves after `observe`. Random
/// choices (the load probe's keys) come from `seed`.
pub fn start_all(
    engine: &RunEngine,
    scenario: &Scenario,
    addresses: &Addresses,
    timeline: &Timeline,
    observe: Duration,
    seed: u64,
) -> Vec<Running> {
    let until = Instant::now() + observe;
    scenario
        .probes
        .iter()
        .map(|p| {
            let service = scenario
                .service(p.target.get_ref())
                .expect("validated: probe target exists");
            let replicas = Scenario::replica_names(service);
            let (p, t, a) = (p.clone(), timeline.clone(), addresses.clone());
            match p.kind {
                ProbeKind::ZookeeperWrite => Running::Writes(tokio::spawn(async move {
                    let w = zookeeper::Writer::new(&p.name, &replicas, &a, p.timeout);
                    sample_until(&p, w, until, &t).await
                })),
                ProbeKind::DatastoreAppend => Running::Appends(tokio::spawn(async move {
                    let w = datastore::Appender::new(&p.name, &a[&replicas[0]], p.record_bytes);
                    sample_until(&p, w, until, &t).await
                })),
                ProbeKind::PostgresInsert => Running::Inserts(tokio::spawn(async move {
                    let w = postgres::Inserter::new(&p.name, &a[&replicas[0]], p.timeout);
                    sample_until(&p, w, until, &t).await
                })),
                ProbeKind::ZookeeperMode => Running::Plain(tokio::spawn(async move {
                    let m = zookeeper::Modes::new(replicas, a, p.timeout);
                    sample_until(&p, m, until, &t).await;
                })),
                ProbeKind::Load => {
                    let ip = target_ip(scenario, &p, &a);
                    Running::Plain(tokio::spawn(load::run(p, ip, seed, until, t)))
                }
                ProbeKind::ConsulKv => {
                    let kv = consul::Kv {
                        ips: replicas.iter().map(|r| a[r].clone()).collect(),
                        key: p.key.clone().unwrap_or_else(|| machine::TEST_KEY.into()),
                        expected: machine::TEST_VALUE.into(),
                        timeout: p.timeout,
                    };
                    plain(p, kv, until, t)
                }
                ProbeKind::ConsulLeader => {
                    let ips = replicas.iter().map(|r| a[r].clone()).collect();
                    let timeout = p.timeout;
                    plain(p, consul::Leader { ips, timeout }, until, t)
                }
                ProbeKind::Registry => {
                    let address = machine::registry_address(service, &a);
                    let timeout = p.timeout;
                    plain(p, registry::V2 { address, timeout }, until, t)
                }
                ProbeKind::RegistryPull => {
                    let on = p.on.as_ref().map_or_else(
                        || replicas.last().cloned().unwrap_or_default(),
                        |o| o.get_ref().clone(),
                    );
                    let inner = match Inner::connect(&on, &a[&on], p.timeout) {
                        Ok(i) => i,
                        Err(e) => {
                            t.note(format!("probe {}: {e}", p.name));
                            return Running::Plain(tokio::spawn(async {}));
                        }
                    };
                    let pp = registry::PushPull {
                        inner,
                        registry: machine::registry_address(service, &a),
                        push_each: p.push,
                        pushed: None,
                    };
                    plain(p, pp, until, t)
                }
                ProbeKind::Http | ProbeKind::Tcp | ProbeKind::Exec => {
                    let replica = p.on.as_ref().map_or(&replicas[0], |o| o.get_ref());
                    let check = generic_check(&p);
                    let c = Checker::new(engine, check, replica, &a[replica], p.timeout);
                    plain(p, c, until, t)
                }
            }
        })
        .collect()
}
