//! Sick disks against real containers, on lossy disks (lossyfs between the container and its
//! ext4-on-loop disk), each fault measured from inside the container with its own tools:
//! - the `datastore-slow-fsync` example: the datastore's fsyncs wait 800 ms for 4 s — the fsync timed
//!   inside takes >= 800 ms during and is fast before and after, appends miss their deadline
//!   and recover;
//! - on memcached replicas: fsync answering EIO (the fsyncgate shape), a full disk answering
//!   ENOSPC, and half of the writes answering EIO (seeded) — each seen inside with its errno
//!   and share, nothing failing after the heal, lossyfs's count of what it failed on the
//!   timeline.

use aftershock::{Check, DiskErrno, DiskOp, EventKind, Expect, Experiment, Fault, Select, Service};
use std::time::Duration;

fn measured(report: &aftershock::Report, name: &str) -> f64 {
    let all: Vec<f64> = report
        .measurements
        .iter()
        .filter(|m| m.name == name)
        .map(|m| m.value)
        .collect();
    *all.last()
        .unwrap_or_else(|| panic!("{name} was not measured"))
}

/// Every `fault-verified` event of `fault`: (stage, ok, detail).
fn verifications(report: &aftershock::Report, fault: &str) -> Vec<(String, bool, String)> {
    let seen: Vec<_> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FaultVerified {
                fault: f,
                stage,
                ok,
                detail,
                ..
            } if f == fault => Some((stage.name().to_string(), *ok, detail.clone())),
            _ => None,
        })
        .collect();
    println!("{fault}: {seen:#?}");
    assert_eq!(seen.len(), 2, "{fault}: applied and healed verified");
    assert!(seen.iter().all(|(_, ok, _)| *ok), "{fault}: {seen:?}");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_fsync_is_measured_inside_and_appends_miss_their_deadline() {
    let plan = aftershock_tests::scenario_at("scenarios/examples/datastore-slow-fsync.toml");
    let report = aftershock_tests::run_scenario(&plan).await;
    verifications(&report, "slow-fsync");
    let [before, during, after] = ["before", "during", "after"]
        .map(|stage| measured(&report, &format!("slow-fsync/fsync-{stage}-store")));
    println!("fsync inside: before {before:.1} ms, during {during:.1} ms, after {after:.1} ms");
    assert!(during >= 800.0, "during {during}");
    assert!(
        before < 400.0 && after < 400.0,
        "before {before}, after {after}"
    );
    // Writes were not delayed; lossyfs counts what it delayed (the datastore's fsyncs too).
    assert!(measured(&report, "slow-fsync/write-during-store") < 400.0);
    assert!(measured(&report, "slow-fsync/delayed-store") >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_full_disks_answer_their_errno_inside_and_heal() {
    let secs = Duration::from_secs;
    let mut x = Experiment::new("disk-errors", secs(10)).seed(3);
    let c = x.service(
        Service::generic("c", "memcached")
            .command(&["-m", "8"])
            .disk(16, "/data", true)
            .ready(Check::Tcp(11211), secs(90)),
    );
    let all = Select::All;
    let faults = [
        Fault::disk_error("fsync-eio", &c, DiskErrno::Eio)
            .ops(&[DiskOp::Fsync])
            .at(secs(1)),
        Fault::disk_full("full", &c).at(secs(4)),
        Fault::disk_error("half-writes", &c, DiskErrno::Eio)
            .ops(&[DiskOp::Write])
            .percent(50.0)
            .at(secs(7)),
    ];
    for f in faults {
        let f = x.fault(f.select(all.clone()).down_for(secs(2)));
        x.expect(Expect::fault_verified(&f));
    }
    let plan = x.plan().unwrap_or_else(|e| panic!("{e}"));
    let report = aftershock_tests::run_scenario(&plan).await;

    let applied = &verifications(&report, "fsync-eio")[0].2;
    assert!(applied.contains("Input/output error"), "{applied}");
    assert!(applied.contains("write failed 0 of"), "{applied}");
    assert_eq!(measured(&report, "fsync-eio/failed-fsync-during-c"), 100.0);
    let applied = &verifications(&report, "full")[0].2;
    assert!(applied.contains("No space left on device"), "{applied}");
    assert_eq!(measured(&report, "full/failed-write-during-c"), 100.0);
    verifications(&report, "half-writes");
    let share = measured(&report, "half-writes/failed-write-during-c");
    assert!(share > 0.0 && share < 100.0, "half the writes: {share} %");
    for fault in ["fsync-eio", "full", "half-writes"] {
        assert!(
            measured(&report, &format!("{fault}/failed-c")) >= 1.0,
            "{fault}"
        );
    }
}

/// PostgreSQL's 2018 "fsyncgate" as it was: failed fsyncs forget their writes, the datastore
/// retries until one succeeds and acknowledges — acknowledged appends are lost, no client saw
/// an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsyncgate_as_it_was_a_retried_fsync_loses_acknowledged_appends() {
    let report = aftershock_tests::run_passing("datastore-fsync-error-as-it-was").await;
    let forgotten = measured(&report, "fsync-eio/forgotten-store");
    println!("forgotten by failed fsyncs: {forgotten} bytes");
    assert!(forgotten > 0.0);
}

/// Remediated as PostgreSQL did: the datastore exits on a failed fsync and recovers at start —
/// nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsyncgate_remediated_exiting_on_a_failed_fsync_loses_nothing() {
    let report = aftershock_tests::run_passing("datastore-fsync-error-remediated").await;
    assert!(measured(&report, "fsync-eio/failed-store") >= 1.0);
}
