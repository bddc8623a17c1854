//! The clerk-2017-07 power cut, replayed for real on an ext4-on-loop disk: as it was (the
//! datastore acknowledges before fsync: acknowledged writes are lost) and remediated (fsync
//! before the acknowledgement: nothing acknowledged is lost). Afterwards no container, mount
//! or loop device of the run is left (checked by `run_passing`).

use aftershock_tests::run_passing;

async fn run_and_check(name: &str) {
    let report = run_passing(name).await;
    for expected in [
        "power-cut/restart-to-serving",
        "store/check-gbps-1-thread",
        "store/check-gbps-all-cores",
    ] {
        assert!(
            report.measurements.iter().any(|m| m.name == expected),
            "{expected} was not measured"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_it_was_buffered_acknowledgements_are_lost_in_a_power_cut() {
    run_and_check("datastore-power-cut-as-it-was").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediated_fsync_before_acknowledging_loses_nothing() {
    run_and_check("datastore-power-cut-remediated").await;
}
