//! Shared helpers of the docker-backed tests: loading the project's scenario files, counting
//! what runs left behind, and building the CLI binary for the tests that drive it.

use aftershock::engine::{self, cleanup};
use aftershock::scenario::{self, Plan as Scenario};
use std::path::{Path, PathBuf};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads `scenarios/<name>.toml`.
pub fn scenario(name: &str) -> Scenario {
    scenario_at(&format!("scenarios/{name}.toml"))
}

/// Loads the scenario file at `path`, relative to the project root.
pub fn scenario_at(path: &str) -> Scenario {
    scenario::load(&root().join(path)).unwrap_or_else(|e| panic!("{e}"))
}

/// Containers, networks and volumes with an `aftershock.run` label, of any run.
pub async fn leftovers() -> cleanup::Removed {
    let docker = engine::connect()
        .await
        .unwrap_or_else(|e| panic!("these tests need a Docker engine: {e}"));
    cleanup::list_labelled(&docker, None)
        .await
        .expect("list labelled resources")
        .count()
}

/// Builds the `aftershock` binary (the tests of this package cannot name it directly) and
/// returns its path.
pub fn cli_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(root())
        .args([
            "build",
            "--quiet",
            "-p",
            "aftershock",
            "--bin",
            "aftershock",
        ])
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the aftershock binary failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("debug").join("aftershock")
}

/// Prints a report's table (so `cargo test -- --nocapture` shows every measured value) and
/// returns it.
pub fn show(report: &aftershock::report::Report) -> &aftershock::report::Report {
    println!("{}", report.table());
    report
}

/// Asserts a path exists (a report file, a chart).
pub fn assert_file(path: &Path) {
    assert!(path.is_file(), "{} should exist", path.display());
}

/// Runs the scenario `scenarios/<name>.toml` against real containers and checks what every
/// incident test needs (see [`run_scenario`]).
pub async fn run_passing(name: &str) -> aftershock::report::Report {
    run_scenario(&scenario(name)).await
}

/// Runs a scenario against real containers and checks: the run started, its table is printed,
/// its report files exist, it left nothing behind (no labelled container, network or volume,
/// no mounted disk, no loop device, no lossyfs mount or process) and every expectation passed.
/// Returns the report for the test's own assertions.
pub async fn run_scenario(scenario: &Scenario) -> aftershock::report::Report {
    let name = &scenario.name;
    let report = aftershock::run(scenario, &aftershock::RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("the run could not start: {e}"));
    show(&report);
    for file in ["report.json", "report.html", "junit.xml"] {
        assert_file(&report.dir().join(file));
    }
    let docker = engine::connect().await.expect("engine");
    let left = cleanup::list_labelled(&docker, Some(&report.run_id))
        .await
        .expect("list labelled resources")
        .count();
    assert!(left.is_empty(), "run {} left {left:?}", report.run_id);
    let disks = aftershock::engine::disk::disks_dir(&report.dir());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    assert!(
        !mounts.contains(&disks.display().to_string()),
        "a disk of {} is still mounted",
        report.run_id
    );
    let fuse = aftershock::engine::lossy::fuse_mounts(&disks);
    assert!(
        fuse.is_empty(),
        "a lossyfs mount of {} is left: {fuse:?}",
        report.run_id
    );
    let lossyfs = aftershock::engine::lossy::processes(&disks);
    assert!(
        lossyfs.is_empty(),
        "a lossyfs process of {} is still running: pids {lossyfs:?}",
        report.run_id
    );
    let loops = std::process::Command::new("losetup").arg("-a").output();
    let loops = loops
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    assert!(
        !loops.contains(&report.run_id),
        "a loop device of {} is still attached: {loops}",
        report.run_id
    );
    assert!(!report.outcomes.is_empty());
    assert!(report.passed(), "{name}: {:?}", report.verdict);
    report
}
