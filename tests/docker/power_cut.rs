//! The clerk-2017-07 power cut, replayed for real on an ext4-on-loop disk: as it was (the
//! datastore acknowledges before fsync: acknowledged writes are lost) and remediated (fsync
//! before the acknowledgement, on a lossyfs disk whose cut tears the write in flight: the
//! torn tail is truncated, nothing acknowledged is lost). Afterwards no container, mount, loop
//! device or lossyfs process of the run is left (checked by `run_passing`).

use aftershock_tests::run_passing;

async fn run_and_check(name: &str) -> aftershock::Report {
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
    report
}

fn measured(report: &aftershock::Report, name: &str) -> f64 {
    report
        .measurements
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} was not measured"))
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_it_was_buffered_acknowledgements_are_lost_in_a_power_cut() {
    run_and_check("datastore-power-cut-as-it-was").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediated_fsync_before_acknowledging_loses_nothing() {
    let report = run_and_check("datastore-power-cut-remediated").await;
    // The only un-fsynced write was the record in flight: what survived of it is the torn
    // tail recovery truncated, byte for byte.
    let kept = measured(&report, "store/lossyfs-kept_bytes");
    assert!(kept >= 512.0 && kept % 512.0 == 0.0, "kept {kept}");
    assert_eq!(measured(&report, "store/truncated_bytes"), kept);
}
