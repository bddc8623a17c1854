//! `aftershock bench`: how precise and how costly the harness is, side by side with what a
//! user would do without it, measured on this machine. Nothing here prints: [`run`] returns a
//! [`Bench`], which the CLI shows as a table ([`Bench::table`]) or JSON.
//!
//! Sections, each repeated and given as min/median/max over the repetitions:
//! - [`kill`]: N containers SIGKILLed at one instant — pidfds (the harness), concurrent
//!   Engine API kills, the `docker kill` CLI — on the same containers: the exits' spread (the
//!   kernel's exit records), the signals' spread and the engine's `die`-event spread;
//! - [`lifecycle`]: bring-up to ready and teardown of N generic containers against raw
//!   `docker run -d` / `docker rm -f` of the same image and command;
//! - [`timing`]: fault-apply latency (scheduled instant → signal sent) over many faults, and
//!   the probes' scheduling lag;
//! - [`overhead`]: a whole run's wall time minus its observation, for the ZooKeeper pair.
//!
//! The bench holds the machine-wide run lock throughout (it is a timed run), and everything it
//! creates carries run labels and is torn down on every path.

pub mod compose;
mod kill;
mod lifecycle;
mod overhead;
mod table;
mod timing;

use crate::engine::{self, cleanup, images};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

pub use table::{ratio, Target};

/// What to measure, how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// Repetitions of every figure (the ZooKeeper pair runs once per repetition up to
    /// [`Options::overhead_runs`]).
    pub reps: usize,
    /// Small and fast: N ≤ 10, fewer faults and probes, a one-container run for the overhead.
    pub quick: bool,
    /// Runs of each ZooKeeper scenario for the overhead (each is a whole 22–40 s run).
    pub overhead_runs: usize,
    /// Where the overhead runs write their reports.
    pub output: PathBuf,
}

impl Options {
    /// The group sizes killed at once.
    pub fn kill_sizes(&self) -> Vec<usize> {
        match self.quick {
            true => vec![2, 3, 10],
            false => vec![2, 3, 10, 50],
        }
    }

    /// The sizes brought up and torn down.
    pub fn lifecycle_sizes(&self) -> Vec<usize> {
        match self.quick {
            true => vec![10],
            false => vec![10, 50],
        }
    }

    /// How many faults the apply-latency figure is taken over.
    pub fn faults(&self) -> usize {
        if self.quick {
            20
        } else {
            100
        }
    }

    /// How many probes sample at 10 Hz, and for how long (s).
    pub fn probes(&self) -> (usize, u64) {
        if self.quick {
            (20, 2)
        } else {
            (100, 4)
        }
    }
}

/// A figure over the repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// How many values (repetitions) it is taken over.
    pub n: usize,
}

impl Stats {
    /// Of the finite values among `values`; None when there is none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n % 2 {
            1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Some(Stats {
            min: v[0],
            median,
            max: v[n - 1],
            n,
        })
    }
}

/// The `q`-quantile (0..=1) of `values` (nearest rank); NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Everything `aftershock bench` measured: read it as a table ([`Bench::table`]), against its
/// targets ([`Bench::targets`]) or as JSON (it serialises).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bench {
    pub(crate) machine: Machine,
    pub(crate) reps: usize,
    pub(crate) quick: bool,
    /// The bench's own wall time (s), lock wait excluded.
    pub(crate) took_s: f64,
    pub(crate) kill: Vec<kill::KillRow>,
    pub(crate) lifecycle: Vec<lifecycle::LifecycleRow>,
    pub(crate) fault_apply: timing::Latency,
    pub(crate) probe_lag: timing::Latency,
    pub(crate) overhead: Vec<overhead::OverheadRow>,
}

/// Where it was measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub kernel: String,
    pub engine: String,
    /// The 1-minute load average when the bench started (others' work on a shared machine).
    pub load_before: f64,
    /// Containers running that were not the bench's when it started.
    pub other_containers: usize,
    /// Seconds waited for the run lock (another timed run held it).
    pub lock_wait_s: f64,
}

/// Runs every section. Takes the run lock (waits while another timed run holds it); every
/// resource it creates is removed before it returns, whatever happened.
pub async fn run(options: &Options) -> Result<Bench> {
    let docker = engine::connect().await?;
    let waiting = Instant::now();
    let lock = crate::run::exclusive().await?;
    let lock_wait_s = waiting.elapsed().as_secs_f64();
    let started = Instant::now();
    cleanup::reap_dead_runs(&docker).await?;
    let machine = machine(&docker, lock_wait_s).await;
    let mut needed = vec!["memcached"];
    if !options.quick {
        needed.extend(["zookeeper", "toy-api"]);
    }
    let images = images::ensure(&docker, &images::needed_for(needed), &options.output).await?;
    let section = Instant::now();
    let (kill, fault_apply) = kill::run(&docker, &images, options).await?;
    let took = |s: Instant| s.elapsed().as_secs_f64();
    tracing::info!("bench: kills and faults in {:.1}s", took(section));
    let section = Instant::now();
    let (lifecycle, probe_lag) = lifecycle::run(&docker, &images, options).await?;
    tracing::info!(
        "bench: bring-up, probes and teardown in {:.1}s",
        took(section)
    );
    let section = Instant::now();
    let overhead = overhead::run(options, &lock).await?;
    tracing::info!("bench: per-run overhead in {:.1}s", took(section));
    drop(lock);
    Ok(Bench {
        machine,
        reps: options.reps,
        quick: options.quick,
        took_s: started.elapsed().as_secs_f64(),
        kill,
        lifecycle,
        fault_apply,
        probe_lag,
        overhead,
    })
}

async fn machine(docker: &engine::Docker, lock_wait_s: f64) -> Machine {
    let load_before = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel,
        engine: engine::version(docker).await.unwrap_or_default(),
        load_before,
        other_containers: engine::running_containers(docker).await.unwrap_or(0),
        lock_wait_s,
    }
}

impl Bench {
    /// Problems that make the bench incomplete: a section missing, a figure that is not a
    /// finite number. Empty when complete.
    pub fn problems(&self) -> Vec<String> {
        let json = serde_json::to_value(self).unwrap_or_default();
        let mut problems = vec![];
        for section in ["kill", "lifecycle", "overhead"] {
            if json[section].as_array().is_none_or(|a| a.is_empty()) {
                problems.push(format!("section `{section}` is empty"));
            }
        }
        walk(&json, "", &mut problems);
        problems
    }
}

/// Every number under `v` finite (JSON has no NaN: serde writes null).
fn walk(v: &serde_json::Value, path: &str, problems: &mut Vec<String>) {
    match v {
        serde_json::Value::Null => problems.push(format!("{path} is missing")),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, &format!("{path}[{i}]"), problems);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                walk(x, &format!("{path}.{k}"), problems);
            }
        }
        serde_json::Value::Number(n) if n.as_f64().is_none_or(|f| !f.is_finite()) => {
            problems.push(format!("{path} is not finite"))
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_min_median_max_of_the_finite_values() {
        let s = Stats::of([3.0, 1.0, f64::NAN, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 2.0, 3.0, 3));
        assert_eq!(Stats::of([1.0, 2.0]).unwrap().median, 1.5);
        assert!(Stats::of([f64::INFINITY]).is_none());
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
