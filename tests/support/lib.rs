//! Shared helpers of the docker-backed tests: loading the project's scenario files, counting
//! what runs left behind, and building the CLI binary for the tests that drive it.

pub mod knock;

use aftershock::admin;
use aftershock_model::scenario::{self, Plan as Scenario};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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
pub async fn leftovers() -> admin::Removed {
    let docker = admin::connect()
        .await
        .unwrap_or_else(|e| panic!("these tests need a Docker engine: {e}"));
    admin::leftovers(&docker, None)
        .await
        .expect("list labelled resources")
        .count()
}

/// Builds the `aftershock` binary (of `aftershock-cli`: this package's tests cannot name it) and
/// returns its path. Built for the whole workspace, as `cargo test` at the root builds: the
/// same features of every dependency, so nothing is compiled twice (`-p aftershock-cli` alone
/// unifies fewer features and rebuilt about seventy crates in a fresh clone).
///
/// Without the variables `cargo test` sets for the test process (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_*`, …): a build script that reruns when one changes (ring's) would otherwise
/// make this build and the shell's rebuild ring, rustls, bollard, the runtime and the CLI in
/// turn (30 s to minutes each time).
pub fn cli_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo_test = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref());
        if set_by_cargo_test {
            command.env_remove(name.as_ref());
        }
    }
    let status = command
        .current_dir(root())
        .args(["build", "--quiet", "--workspace", "--bin", "aftershock"])
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
pub fn show(report: &aftershock::Report) -> &aftershock::Report {
    println!("{}", report.table());
    report
}

/// Asserts a path exists (a report file, a chart).
pub fn assert_file(path: &Path) {
    assert!(path.is_file(), "{} should exist", path.display());
}

/// Runs the scenario `scenarios/<name>.toml` against real containers and checks what every
/// incident test needs (see [`run_scenario`]).
pub async fn run_passing(name: &str) -> aftershock::Report {
    run_scenario(&scenario(name)).await
}

/// Runs a scenario against real containers and checks: the run started, its table is printed,
/// its report files exist, it left nothing behind (no labelled container, network or volume,
/// no mounted disk, no loop device, no lossyfs mount or process) and every expectation passed.
/// Returns the report for the test's own assertions.
///
/// An UNKNOWN verdict (the harness could not tell: the machine stalled, an engine went silent)
/// is asked once more, as a user's CI would, and printed; a FAIL never is. A second UNKNOWN
/// fails the test.
pub async fn run_scenario(scenario: &Scenario) -> aftershock::Report {
    let first = run_once(scenario).await;
    if let aftershock::Verdict::Unknown { reason } = &first.verdict {
        println!(
            "{}: UNKNOWN ({reason}) in run {}: running it once more",
            scenario.name, first.run_id
        );
        let second = run_once(scenario).await;
        assert!(
            second.passed(),
            "{}: {:?} twice",
            scenario.name,
            second.verdict
        );
        return second;
    }
    assert!(first.passed(), "{}: {:?}", scenario.name, first.verdict);
    first
}

/// One run of [`run_scenario`], with every check but the verdict's (for a run whose verdict
/// is expected to be FAIL).
pub async fn run_once(scenario: &Scenario) -> aftershock::Report {
    let report = aftershock::run(scenario, &aftershock::RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("the run could not start: {e}"));
    show(&report);
    for file in ["report.json", "report.html", "junit.xml"] {
        assert_file(&report.dir().join(file));
    }
    let docker = admin::connect().await.expect("engine");
    let left = admin::leftovers(&docker, Some(&report.run_id))
        .await
        .expect("list labelled resources")
        .count();
    let kept = report.kept_networks;
    if kept > 0
        && left
            == (admin::Removed {
                networks: kept,
                ..Default::default()
            })
    {
        // What the engine refused although nothing was attached (moby#42119), and the report
        // says so: not the harness's leftover.
        println!(
            "run {}: the engine kept {kept} network(s) with nothing attached (moby#42119), as its report says",
            report.run_id
        );
    } else {
        assert!(left.is_empty(), "run {} left {left:?}", report.run_id);
    }
    let disks = admin::disks_dir(&report.dir());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    assert!(
        !mounts.contains(&disks.display().to_string()),
        "a disk of {} is still mounted",
        report.run_id
    );
    let fuse = admin::fuse_mounts(&disks);
    assert!(
        fuse.is_empty(),
        "a lossyfs mount of {} is left: {fuse:?}",
        report.run_id
    );
    let lossyfs = admin::lossyfs_processes(&disks);
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
    report
}

/// Starts `aftershock run FILE` and returns the child and its run id (read from stderr).
pub fn start_cli_run(file: &Path) -> (Child, String) {
    let (child, lines) = start_cli(&[std::ffi::OsStr::new("run"), file.as_os_str()]);
    let run = lines
        .iter()
        .find_map(|line| {
            let rest = line.split("(run ").nth(1)?;
            Some(rest.split(',').next().unwrap_or_default().to_string())
        })
        .expect("the CLI should print its run id");
    (child, run)
}

/// Starts the CLI with `args`; its stderr lines arrive on the returned receiver (and are
/// echoed, `[child] …`). The iterator of [`Lines`] waits up to 30 minutes for each line (a
/// run may wait that long for the machine-wide run lock while other runs go first).
pub fn start_cli(args: &[&std::ffi::OsStr]) -> (Child, Lines) {
    let mut child = Command::new(cli_binary())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the aftershock CLI");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[child] {line}");
            let _ = tx.send(line);
        }
    });
    (child, Lines(rx))
}

/// A child's stderr, line by line.
pub struct Lines(pub std::sync::mpsc::Receiver<String>);

impl Lines {
    /// The next line within `within`, None when none came (or the child closed stderr).
    pub fn next_within(&self, within: Duration) -> Option<String> {
        self.0.recv_timeout(within).ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::from_fn(|| self.next_within(Duration::from_secs(1800)))
    }
}

/// Sends `sig` (`-INT`, `-KILL`) to a child.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Waits for a child's exit, killing it and failing after `within`.
pub fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the CLI did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pids of the watchdog processes of `run` (`aftershock watchdog --run <run> …`).
pub fn watchdogs_of(run: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.windows(3)
                .any(|w| w[0] == b"watchdog" && w[1] == b"--run" && w[2] == run.as_bytes())
        })
        .collect()
}

/// The verification of fault `name` at `stage` (`applied`, `healed`) on the run's timeline:
/// (passed, what it saw). Panics when the fault was not verified at that stage at all.
pub fn verified(report: &aftershock::Report, name: &str, stage: &str) -> (bool, String) {
    let found = report.timeline.iter().find_map(|e| match &e.kind {
        aftershock::EventKind::FaultVerified {
            fault,
            stage: s,
            ok,
            detail,
            ..
        } if fault == name && s.name() == stage => Some((*ok, detail.clone())),
        _ => None,
    });
    let found = found.unwrap_or_else(|| panic!("{name} {stage}: not verified at all"));
    println!("{name} {stage}: {found:?}");
    found
}
