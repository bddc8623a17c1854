//! The same real power cut on a datastore no one here wrote: PostgreSQL 15, twenty cuts during
//! autocommit inserts. With fsync=on and synchronous_commit=on no committed row may be lost;
//! with fsync=off at least one cut must lose rows — if it never did, the fault would be wrong.

use aftershock_model::timeline::EventKind;
use aftershock_tests::run_passing;

async fn run_and_check(name: &str) {
    let report = run_passing(name).await;
    let cuts = report
        .timeline
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::FaultHealed { fault, .. } if fault.starts_with("cut-")))
        .count();
    assert_eq!(cuts, 20, "twenty cuts, each healed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_on_loses_no_committed_row_in_twenty_cuts() {
    run_and_check("postgres-power-cut-fsync-on").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_off_loses_committed_rows() {
    run_and_check("postgres-power-cut-fsync-off").await;
}
