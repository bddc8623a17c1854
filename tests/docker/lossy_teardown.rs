//! The reaper's part for lossyfs, without Docker: a lossyfs left running over a run's disks
//! directory (its harness died) is stopped and its FUSE mount removed by the disk teardown
//! that `aftershock clean`, the reaper and every run's teardown use.

use aftershock::admin;
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_orphaned_lossyfs_and_its_mount_are_reaped() {
    let output = admin::output_root();
    // A release build (a fresh clone has none yet) loads the machine: not beside another
    // test's timed run.
    let lock = admin::exclusive().await.unwrap();
    let binary = admin::host_binary("lossyfs", &output)
        .await
        .expect("build lossyfs");
    drop(lock);
    let run_dir = output.join(format!("lossy-teardown-{}", std::process::id()));
    let disks = run_dir.join("disks");
    let (backing, mount) = (disks.join("store"), disks.join("store.lossy"));
    std::fs::create_dir_all(&backing).unwrap();
    std::fs::create_dir_all(&mount).unwrap();
    // Started as the harness starts it, then left behind: nobody will wait for it.
    let mut child = Command::new(&binary)
        .arg("--backing")
        .arg(&backing)
        .arg("--mount")
        .arg(&mount)
        .arg("--control")
        .arg(disks.join("store.lossyfs.sock"))
        .spawn()
        .expect("start lossyfs");
    std::fs::write(disks.join("store.lossyfs.pid"), child.id().to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin::fuse_mounts(&disks).is_empty() {
        assert!(Instant::now() < deadline, "lossyfs did not mount");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(mount.join("file"), b"in the mount").unwrap();
    assert_eq!(admin::lossyfs_processes(&disks), vec![child.id() as i32]);

    let problems = admin::destroy_disks(&run_dir);

    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        admin::fuse_mounts(&disks).is_empty(),
        "the FUSE mount is left"
    );
    assert!(
        admin::lossyfs_processes(&disks).is_empty(),
        "lossyfs still runs"
    );
    assert!(!mount.exists() && !disks.join("store.lossyfs.pid").exists());
    assert!(
        child.wait().expect("reap").code().is_some(),
        "exited by itself on SIGTERM"
    );
    let _ = std::fs::remove_dir_all(&run_dir);
}
