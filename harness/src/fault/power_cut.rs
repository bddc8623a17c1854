//! The power cut: what a machine losing power does to a service's disk, for real.
//!
//! Freeze the container (`docker pause`: the cgroup freezer stops every process at once, so
//! nothing is written between the cut and the kill) → shut the file system down without
//! flushing its journal (`FS_IOC_SHUTDOWN` + `NOLOGFLUSH`: un-fsynced data and renames are
//! gone) → kill. The power comes back in [`restore`]: mount again (the journal replays) →
//! start → measure restart-to-serving → ask the service what it recovered and check it.
//!
//! On a `lossy` disk (lossyfs between the container and the disk, `engine::lossy`) lossyfs
//! loses first, deterministically, and acknowledges what it dropped: `lose` after the freeze,
//! or with `tear` a torn write — armed *before* the freeze, because a durable writer has
//! nothing un-fsynced between its writes and a frozen one never fsyncs: lossyfs fails the
//! next fsync that carries writes (the power fails while the disk writes them), keeps a
//! seeded prefix of whole sectors and answers EIO from then on. The steps above follow. On
//! restore lossyfs is stopped before the disk is mounted again and started after.

use super::{measure, Action, Cx, Step};
use crate::cluster::Cluster;
use crate::error::{HarnessError, Result};
use crate::scenario::plan::Fault;
use crate::scenario::Preset;
use crate::timeline::{now, Event, EventKind, Metric};
use std::time::{Duration, Instant};

/// Cuts the targets' power, one after another; the power comes back at the heal.
pub(crate) struct PowerCut {
    /// On a lossy disk: the sector size of the torn write in flight.
    pub tear: Option<u64>,
}

impl Action for PowerCut {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            for (i, r) in cx.targets.iter().enumerate() {
                let seed = cx.seed.wrapping_add(i as u64);
                cut_one(cx.cluster, cx.fault, r, self.tear.map(|t| (seed, t))).await?;
            }
            Ok(())
        })
    }

    fn undo<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(restore(cx.cluster, cx.fault, cx.targets))
    }

    fn inspect<'a>(&'a self, cx: &'a Cx<'a>, started: Instant) -> Step<'a> {
        Box::pin(inspect(cx.cluster, cx.fault, cx.targets, started))
    }
}

fn no_disk(fault: &Fault, replica: &str) -> HarnessError {
    HarnessError::Fault {
        fault: fault.name.clone(),
        message: format!("{replica} has no disk to cut"),
    }
}

/// Cuts the power of one replica; `tear`: (seed, sector size) of a torn write on a lossy disk.
async fn cut_one(
    cluster: &Cluster,
    fault: &Fault,
    r: &str,
    tear: Option<(u64, u64)>,
) -> Result<()> {
    let disk = cluster.disks.get(r).ok_or_else(|| no_disk(fault, r))?;
    let at = now();
    let lossy = cluster.lossy.get(r).cloned();
    let mut lost = None;
    if let (Some(l), Some((seed, sector))) = (&lossy, tear) {
        lost = Some(lossy_command(l, format!("tear {seed} {sector} 3000")).await?);
    }
    let started = Instant::now();
    cluster.engine.pause(r).await?;
    let paused = started.elapsed();
    if let (Some(l), None) = (&lossy, &lost) {
        lost = Some(lossy_command(l, "lose".into()).await?);
    }
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
    let mut detail = format!(
        "froze {r} in {:.1} ms, cut its disk's power (FS_IOC_SHUTDOWN, NOLOGFLUSH) in {:.1} ms, killed it",
        paused.as_secs_f64() * 1e3,
        cut.as_secs_f64() * 1e3
    );
    if let Some(answer) = &lost {
        detail = format!("lossyfs: {answer}; then {detail}");
    }
    cluster.timeline.push(Event {
        at,
        kind: EventKind::FaultApplied {
            fault: fault.name.clone(),
            targets: vec![r.to_string()],
            detail,
        },
    });
    if let Some(answer) = &lost {
        record_loss(cluster, r, answer);
    }
    Ok(())
}

/// A wait for the old file system this long or longer is noted on the timeline.
const HELD: Duration = Duration::from_millis(20);

/// Brings the power back: mounts each disk again (the journal replays). Called before the
/// containers start.
async fn restore(cluster: &Cluster, fault: &Fault, targets: &[String]) -> Result<()> {
    for r in targets {
        let disk = cluster
            .disks
            .get(r)
            .ok_or_else(|| no_disk(fault, r))?
            .clone();
        let lossy = cluster.lossy.get(r).cloned();
        let took = tokio::task::spawn_blocking(move || {
            // lossyfs holds the disk's files: it stops first and starts again on the new mount.
            if let Some(l) = &lossy {
                if let Some(problem) = l.stop().into_iter().next() {
                    return Err(HarnessError::io("stop lossyfs")(std::io::Error::other(
                        problem,
                    )));
                }
            }
            let took = disk.remount()?;
            if let Some(l) = &lossy {
                l.start()?;
            }
            Ok(took)
        })
        .await
        .expect("remount thread")?;
        let (took, released) = took;
        if released >= HELD {
            cluster.timeline.note(format!(
                "{}: {r}'s shut-down file system was still held by another mount {:.0} ms after its unmount; the remount waited for it",
                fault.name,
                released.as_secs_f64() * 1e3
            ));
        }
        measure(
            cluster,
            fault,
            Metric::Remount,
            Some(r),
            took.as_secs_f64() * 1e3,
            "unmount and mount again: the journal replays",
        );
    }
    Ok(())
}

/// After the start: how long until the service served again, what it recovered, and its
/// checker's verdict and throughput (1 thread, every core).
async fn inspect(
    cluster: &Cluster,
    fault: &Fault,
    targets: &[String],
    started: Instant,
) -> Result<()> {
    let service = cluster.plan.service(fault.target);
    let serving = cluster
        .wait_ready(service, targets, Duration::from_secs(60))
        .await?;
    let _ = serving;
    measure(
        cluster,
        fault,
        Metric::RestartToServing,
        None,
        started.elapsed().as_secs_f64() * 1e3,
        "from start after the power came back to answering again",
    );
    if !service.is(Preset::Datastore) {
        // The recovery report and the checker below are our datastore's own.
        return Ok(());
    }
    for r in targets {
        recovery(cluster, r).await;
        checker(cluster, r).await?;
    }
    Ok(())
}

/// What our datastore says it recovered at start.
async fn recovery(cluster: &Cluster, r: &str) {
    let stats = crate::services::datastore::stats(&cluster.addresses[r], Duration::from_secs(2));
    let Ok(stats) = stats.await else {
        return;
    };
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

/// Our datastore's checker: its throughput on a 64 MiB log on the same disk, then the
/// integrity check of the real log (1 thread, every core).
async fn checker(cluster: &Cluster, r: &str) -> Result<()> {
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
        if let (Some(s), Some(gbps)) = (report["seconds"].as_f64(), report["gb_per_s"].as_f64()) {
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
    Ok(())
}

/// Sends a command to a lossyfs and waits for its acknowledgement.
async fn lossy_command(
    lossy: &std::sync::Arc<crate::engine::lossy::Lossy>,
    line: String,
) -> Result<String> {
    let l = lossy.clone();
    let answer = tokio::task::spawn_blocking(move || l.command(&line))
        .await
        .expect("lossyfs thread");
    Ok(answer?)
}

/// Puts what lossyfs said it kept and dropped (`key=N` words of its answer) on the timeline.
fn record_loss(cluster: &Cluster, replica: &str, answer: &str) {
    let number = |key: &str| {
        answer
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse::<f64>().ok())
    };
    for (key, unit, words) in [
        (
            "kept_bytes",
            "bytes",
            "un-fsynced bytes that reached the disk in the cut (a torn write's prefix)",
        ),
        ("dropped_bytes", "bytes", "un-fsynced bytes lost in the cut"),
        (
            "undone_ops",
            "ops",
            "un-fsynced entry operations (create, rename, unlink) undone in the cut",
        ),
    ] {
        if let Some(v) = number(key) {
            measure_unit(cluster, &format!("{replica}/lossyfs-{key}"), v, unit, words);
        }
    }
}

fn measure_unit(cluster: &Cluster, name: &str, value: f64, unit: &str, what: &str) {
    cluster.timeline.record(EventKind::Measurement {
        name: name.into(),
        value,
        unit: unit.into(),
        what: what.into(),
    });
}
