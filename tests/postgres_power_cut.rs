//! The same real power cut on a datastore no one here wrote: PostgreSQL 15, twenty cuts during
//! autocommit inserts. With fsync=on and synchronous_commit=on no committed row may be lost;
//! with fsync=off at least one cut must lose rows — if it never did, the fault would be wrong.

use aftershock::engine::{self, cleanup};
use aftershock::RunOptions;
use aftershock_tests::{scenario, show};

async fn run_and_check(name: &str) {
    let report = aftershock::run(&scenario(name), &RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("the run could not start: {e}"));
    show(&report);
    let docker = engine::connect().await.expect("engine");
    let left = cleanup::list_labelled(&docker, Some(&report.run_id))
        .await
        .expect("list");
    assert!(
        left.count().is_empty(),
        "run {} left {:?}",
        report.run_id,
        left.count()
    );
    let loops = std::process::Command::new("losetup")
        .arg("-a")
        .output()
        .unwrap();
    let loops = String::from_utf8_lossy(&loops.stdout);
    assert!(
        !loops.contains(&report.run_id),
        "a loop device is still attached: {loops}"
    );
    let cuts = report
        .timeline
        .iter()
        .filter(|e| matches!(&e.kind, aftershock::timeline::EventKind::FaultHealed { fault, .. } if fault.starts_with("cut-")))
        .count();
    assert_eq!(cuts, 20, "twenty cuts, each healed");
    assert!(report.passed(), "{name}: {:?}", report.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_on_loses_no_committed_row_in_twenty_cuts() {
    run_and_check("postgres-power-cut-fsync-on").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_off_loses_committed_rows() {
    run_and_check("postgres-power-cut-fsync-off").await;
}
