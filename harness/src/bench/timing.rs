//! The harness's own timing: how late a fault is applied against its scheduled instant (the
//! nemesis, `restart` faults on single replicas, one after another: on the kill section's
//! containers), and how late probes sample against their schedule (many `tcp` probes at 10 Hz
//! at once: on the bring-up section's cluster of ten, between its bring-up and teardown).

use super::{quantile, Options, Stats};
use crate::cluster::Cluster;
use crate::error::{HarnessError, Result};
use crate::timeline::{now, EventKind};
use crate::{fault, probe};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When the first fault is scheduled, after the nemesis starts (its arming time and a little).
pub(super) const FIRST: Duration = Duration::from_millis(1100);

/// Time between two faults' instants.
pub(super) fn spacing(options: &Options) -> Duration {
    Duration::from_millis(if options.quick { 100 } else { 40 })
}

/// A lateness (ms): each repetition's p50, p99 and max, over the repetitions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    /// Faults applied, or probes sampling, per repetition.
    pub count: usize,
    /// Values per repetition (faults applied, samples taken).
    pub values: usize,
    pub p50_ms: Option<Stats>,
    pub p99_ms: Option<Stats>,
    pub max_ms: Option<Stats>,
}

impl Latency {
    pub(super) fn of(count: usize, reps: &[Vec<f64>]) -> Latency {
        let over = |q: f64| Stats::of(reps.iter().map(|v| quantile(v, q)));
        Latency {
            count,
            values: reps.iter().map(Vec::len).min().unwrap_or(0),
            p50_ms: over(0.5),
            p99_ms: over(0.99),
            max_ms: over(1.0),
        }
    }
}

/// The nemesis carries out the plan's faults (one per replica, one after another) in batches
/// until [`Options::faults`] have been applied; each one's lateness is the time from its
/// scheduled instant to its `fault-applied` event (the first signal sent). A batch starts when
/// the previous one has healed: a fault that waits for an earlier one on the same replica is
/// late by design (the replica locks), not by the harness's lag.
pub(super) async fn fault_apply(cluster: &Arc<Cluster>, options: &Options) -> Result<Latency> {
    let batches = options.faults().div_ceil(cluster.plan.faults.len().max(1));
    let mut reps = vec![];
    for rep in 0..options.reps {
        let started = Instant::now();
        let mut late = vec![];
        for batch in 0..batches {
            late.extend(one_batch(cluster, (rep * batches + batch) as u64).await?);
        }
        tracing::info!(
            "bench: {} faults in {:.1}s",
            late.len(),
            started.elapsed().as_secs_f64()
        );
        reps.push(late);
    }
    Ok(Latency::of(options.faults(), &reps))
}

/// Every fault of the plan once; their lateness (ms).
async fn one_batch(cluster: &Arc<Cluster>, seed: u64) -> Result<Vec<f64>> {
    let (start, start_ns) = (Instant::now(), now());
    let last = cluster
        .plan
        .faults
        .iter()
        .map(|f| f.at)
        .max()
        .unwrap_or_default();
    let until = start + last + Duration::from_secs(1);
    for task in fault::start_all(cluster, start, until, seed) {
        task.await
            .map_err(|e| HarnessError::io("a fault task")(std::io::Error::other(e)))??;
    }
    let events = cluster.timeline.events();
    let late = cluster.plan.faults.iter().filter_map(|f| {
        let scheduled = start_ns + f.at.as_nanos() as i64;
        events.iter().find_map(|e| match &e.kind {
            EventKind::FaultApplied { fault, .. } if *fault == f.name && e.at >= start_ns => {
                Some((e.at - scheduled) as f64 / 1e6)
            }
            _ => None,
        })
    });
    Ok(late.collect())
}

/// The plan's probes sample together for a few seconds ([`Options::probes`]); each sample's
/// lateness against its probe's schedule (ms).
pub(super) async fn probe_lag(cluster: &Cluster, options: &Options, rep: usize) -> Vec<f64> {
    let (_, secs) = options.probes();
    let since = now();
    let t = &cluster.timeline;
    let observe = Duration::from_secs(secs);
    let running = probe::start_all(
        &cluster.engine,
        &cluster.plan,
        &cluster.addresses,
        t,
        observe,
        rep as u64,
    );
    for p in running {
        p.finish(t).await;
    }
    let late = t.events().into_iter().filter_map(|e| match e.kind {
        EventKind::Sample { late: Some(l), .. } if e.at >= since => Some(l as f64 / 1e6),
        _ => None,
    });
    late.collect()
}
