//! A whole run's cost beyond its observation: wall time (connect, lock, reap, images, bring-up,
//! probes' preparation, heals and read-backs after the observation, teardown, checks, the
//! report) minus the scenario's duration — for the ZooKeeper pair (`--quick`: a one-container
//! run of one second).

use super::{Options, Stats};
use crate::engine::images;
use crate::error::{HarnessError, Result};
use crate::scenario::plan::Plan;
use crate::{Check, Experiment, Probe, RunOptions, Service};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One scenario's runs (s).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverheadRow {
    pub scenario: String,
    pub observation_s: f64,
    pub wall_s: Option<Stats>,
    pub overhead_s: Option<Stats>,
    /// Of the overhead: bring-up to ready (the services' own start-up is most of it)…
    pub bring_up_s: Option<Stats>,
    /// …teardown after the observation (and the heals and read-backs before it)…
    pub after_s: Option<Stats>,
    /// …and the rest: connect, reap, images, checks, the report files.
    pub rest_s: Option<Stats>,
}

/// A run's wall time split: (bring-up, after the observation, the rest) in s.
fn split(report: &crate::Report, wall: f64, observation: f64) -> (f64, f64, f64) {
    let note = |text: &str| {
        report.timeline.iter().find_map(|e| match &e.kind {
            crate::timeline::EventKind::Note { text: t } if t == text => Some(e.at),
            _ => None,
        })
    };
    let s = |ns: i64| ns as f64 / 1e9;
    let starts = note("observation starts").unwrap_or(report.started_at);
    let bring_up = s(starts - report.started_at);
    let after = s(report.finished_at - starts) - observation;
    (bring_up, after, wall - observation - bring_up - after)
}

/// The ZooKeeper pair, as files.
const PAIR: [&str; 2] = [
    "scenarios/zookeeper-quorum-as-it-was.toml",
    "scenarios/zookeeper-quorum-remediated.toml",
];

fn plans(options: &Options) -> Result<Vec<Plan>> {
    if options.quick {
        let mut x = Experiment::new("bench-overhead", Duration::from_secs(1)).seed(1);
        let mc = x.service(
            Service::generic("mc", "memcached")
                .command(&["-m", "8"])
                .ready(Check::Tcp(11211), Duration::from_secs(60)),
        );
        // A probe, so the observation lasts its second.
        x.probe(Probe::tcp("port", &mc, 11211));
        return Ok(vec![x.plan().map_err(|e| {
            HarnessError::io("the bench's plan")(std::io::Error::other(e))
        })?]);
    }
    PAIR.iter()
        .map(|f| {
            crate::scenario::load(&images::project_root().join(f))
                .map_err(|e| HarnessError::io(format!("load {f}"))(std::io::Error::other(e)))
        })
        .collect()
}

/// Runs each scenario `overhead_runs` times under the bench's run lock.
pub(super) async fn run(options: &Options, lock: &crate::lock::Held) -> Result<Vec<OverheadRow>> {
    let run_options = RunOptions {
        output_dir: Some(options.output.clone()),
        ..Default::default()
    };
    let mut rows = vec![];
    for plan in plans(options)? {
        let observation_s = plan.duration.as_secs_f64();
        let (mut walls, mut parts) = (vec![], vec![]);
        for _ in 0..options.overhead_runs.max(1) {
            let started = Instant::now();
            let report = crate::run::run_holding(&plan, &run_options, lock).await?;
            let wall = started.elapsed().as_secs_f64();
            walls.push(wall);
            parts.push(split(&report, wall, observation_s));
        }
        rows.push(OverheadRow {
            scenario: plan.name.clone(),
            observation_s,
            wall_s: Stats::of(walls.iter().copied()),
            overhead_s: Stats::of(walls.iter().map(|w| w - observation_s)),
            bring_up_s: Stats::of(parts.iter().map(|p| p.0)),
            after_s: Stats::of(parts.iter().map(|p| p.1)),
            rest_s: Stats::of(parts.iter().map(|p| p.2)),
        });
    }
    Ok(rows)
}
