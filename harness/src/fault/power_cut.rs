//! The power cut: what a machine losing power does to a service's disk, for real.
//!
//! Freeze the container (`docker pause`: the cgroup freezer stops every process at once, so
//! nothing is written between the cut and the kill) → shut the file system down without
//! flushing its journal (`FS_IOC_SHUTDOWN` + `NOLOGFLUSH`: un-fsynced data and renames are
//! gone) → kill. The power comes back in [`restore`]: mount again (the journal replays) →
//! start → measure restart-to-serving → ask the service what it recovered and check it.

use super::measure;
use crate::cluster::Cluster;
use crate::error::{HarnessError, Result};
use crate::scenario::{Fault, Preset};
use crate::timeline::{now, Event, EventKind};
use std::time::{Duration, Instant};

fn no_disk(fault: &Fault, replica: &str) -> HarnessError {
    HarnessError::Fault {
        fault: fault.name.clone(),
        message: format!("{replica} has no disk to cut"),
    }
}

/// Cuts the power of each target, one after another.
pub async fn cut(cluster: &Cluster, fault: &Fault, targets: &[String]) -> Result<()> {
    for r in targets {
        let disk = cluster.disks.get(r).ok_or_else(|| no_disk(fault, r))?;
        let at = now();
        let started = Instant::now();
        cluster.engine.pause(r).await?;
        let paused = started.elapsed();
        let disk_ = disk.clone();
        let cut = tokio::task::spawn_blocking(move || disk_.cut())
            .await
            .expect("cut thread")?;
        cluster.engine.api_kill(r, "SIGKILL").await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster.engine.state(r).await?.0 {
            if Instant::now() > deadline {
                return Err(HarnessError::Fault {
                    fault: fault.name.clone(),
                    message: format!("{r} still runs 10 s after the kill"),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cluster.timeline.push(Event {
            at,
            kind: EventKind::FaultApplied {
                fault: fault.name.clone(),
                targets: vec![r.clone()],
                detail: format!(
                    "froze {r} in {:.1} ms, cut its disk's power (FS_IOC_SHUTDOWN, NOLOGFLUSH) in {:.1} ms, killed it",
                    paused.as_secs_f64() * 1e3,
                    cut.as_secs_f64() * 1e3
                ),
            },
        });
    }
    Ok(())
}

/// Brings the power back: mounts each disk again (the journal replays). Called before the
/// containers start.
pub async fn restore(cluster: &Cluster, fault: &Fault, targets: &[String]) -> Result<()> {
    for r in targets {
        let disk = cluster
            .disks
            .get(r)
            .ok_or_else(|| no_disk(fault, r))?
            .clone();
        let took = tokio::task::spawn_blocking(move || disk.remount())
            .await
            .expect("remount thread")?;
        measure(
            cluster,
            fault,
            &format!("{r}/remount"),
            took.as_secs_f64() * 1e3,
            "unmount and mount again: the journal replays",
        );
    }
    Ok(())
}

/// After the start: how long until the service served again, what it recovered, and its
/// checker's verdict and throughput (1 thread, every core).
pub async fn inspect(
    cluster: &Cluster,
    fault: &Fault,
    targets: &[String],
    started: Instant,
) -> Result<()> {
    let service = cluster.service(fault.target.get_ref())?;
    let serving = cluster
        .wait_ready(service, targets, Duration::from_secs(60))
        .await?;
    let _ = serving;
    measure(
        cluster,
        fault,
        "restart-to-serving",
        started.elapsed().as_secs_f64() * 1e3,
        "from start after the power came back to answering again",
    );
    if service.preset != Preset::Datastore {
        // The recovery report and the checker below are our datastore's own.
        return Ok(());
    }
    for r in targets {
        let stats =
            crate::services::datastore::stats(&cluster.addresses[r], Duration::from_secs(2)).await;
        if let Ok(stats) = stats {
            for (key, unit, words) in [
                (
                    "recovered_records",
                    "records",
                    "valid records found at start",
                ),
                ("truncated_bytes", "bytes", "torn tail truncated at start"),
                ("recovery_ms", "ms", "time to open and recover the log"),
            ] {
                if let Some(v) = stats[key].as_f64() {
                    measure_unit(cluster, &format!("{r}/{key}"), v, unit, words);
                }
            }
            let corrupt = if stats["corrupt"].is_null() { 0.0 } else { 1.0 };
            measure_unit(
                cluster,
                &format!("{r}/corrupt"),
                corrupt,
                "flag",
                "bad records before valid data found at start",
            );
        }
        // The checker's speed on a log of real size: 64 MiB written on the same disk.
        let (_, out) = cluster
            .engine
            .exec_to_end(r, &["datastore", "bench", "/data", "--mb", "64"])
            .await?;
        for (line, label) in out.lines().zip(["1-thread", "all-cores"]) {
            let bench: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if let Some(gbps) = bench["gb_per_s"].as_f64() {
                measure_unit(
                    cluster,
                    &format!("{r}/check-gbps-{label}"),
                    gbps,
                    "GB/s",
                    &format!(
                        "checker throughput on a 64 MiB log, {} thread(s)",
                        bench["threads"]
                    ),
                );
            }
        }
        for (threads, label) in [("1", "1-thread"), ("0", "all-cores")] {
            let (code, out) = cluster
                .engine
                .exec_to_end(
                    r,
                    &["datastore", "check", "/data/log", "--threads", threads],
                )
                .await?;
            let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
            if let (Some(s), Some(gbps)) = (report["seconds"].as_f64(), report["gb_per_s"].as_f64())
            {
                measure_unit(
                    cluster,
                    &format!("{r}/check-{label}"),
                    s * 1e3,
                    "ms",
                    &format!(
                        "integrity check (exit {code}) of {} bytes at {gbps:.3} GB/s",
                        report["bytes"]
                    ),
                );
            }
        }
    }
    Ok(())
}

fn measure_unit(cluster: &Cluster, name: &str, value: f64, unit: &str, what: &str) {
    cluster.timeline.record(EventKind::Measurement {
        name: name.into(),
        value,
        unit: unit.into(),
        what: what.into(),
    });
}
