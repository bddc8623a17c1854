//! Shared helpers of the docker-backed tests: loading the project's scenario files, counting
//! what runs left behind, and building the CLI binary for the tests that drive it.

use aftershock::engine::{self, cleanup};
use aftershock::scenario::{self, Scenario};
use std::path::{Path, PathBuf};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads `scenarios/<name>.toml`.
pub fn scenario(name: &str) -> Scenario {
    let path = root().join("scenarios").join(format!("{name}.toml"));
    scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
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
