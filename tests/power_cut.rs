//! The clerk-2017-07 power cut, replayed for real on an ext4-on-loop disk: as it was (the
//! datastore acknowledges before fsync: acknowledged writes are lost) and remediated (fsync
//! before the acknowledgement: nothing acknowledged is lost). Afterwards no container, mount
//! or loop device of the run is left.

use aftershock::engine::{self, cleanup, disk};
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
    let disks = disk::disks_dir(&report.run_id);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(&disks.display().to_string()),
        "a disk of {} is still mounted",
        report.run_id
    );
    let loops = std::process::Command::new("losetup")
        .arg("-a")
        .output()
        .unwrap();
    let loops = String::from_utf8_lossy(&loops.stdout);
    assert!(
        !loops.contains(&report.run_id),
        "a loop device of {} is still attached: {loops}",
        report.run_id
    );
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
    assert!(report.passed(), "{name}: {:?}", report.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_it_was_buffered_acknowledgements_are_lost_in_a_power_cut() {
    run_and_check("datastore-power-cut-as-it-was").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediated_fsync_before_acknowledging_loses_nothing() {
    run_and_check("datastore-power-cut-remediated").await;
}
