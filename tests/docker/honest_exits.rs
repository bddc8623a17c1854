//! Honest verdicts and clean exits, whatever the environment does (issue 12):
//! - a container of a running scenario killed from outside (`docker kill`, not a fault): the
//!   verdicts whose window it overlaps are UNKNOWN, naming it; the fault's own kills are not;
//! - a run that finds the run lock taken says at once whom it waits for; `--no-wait` exits 2
//!   at once; Ctrl-C while waiting exits 130;
//! - the harness SIGKILLed mid-run of a lossy power cut: its watchdog removes every container,
//!   network, volume, loop device, FUSE mount and lossyfs process of the run within 10 s
//!   (three times, each time-to-clean printed).

use aftershock::admin::{self, Holder, RunLock};
use aftershock::Verdict;
use aftershock::{Check, Expect, Experiment, Fault, Probe, Select, Service};
use aftershock_model::timeline::{Cause, EventKind};
use aftershock_tests::{signal, start_cli, start_cli_run, wait_exit};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The run of `scenario` that this process started, once it has containers: found by the
/// scenario's label and this process's pid (the other tests of this binary run beside it, and
/// another process may run the same scenario). The run may first wait its turn for the
/// machine-wide run lock, as long as the CLI's runs may (30 minutes).
async fn my_run(scenario: &str) -> String {
    let me = format!("{}@", std::process::id());
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let out = Command::new("docker")
            .args(["ps", "-a", "--filter"])
            .arg(format!("label=aftershock.scenario={scenario}"))
            .args([
                "--format",
                "{{.Label \"aftershock.run\"}} {{.Label \"aftershock.pid\"}}",
            ])
            .output()
            .expect("docker ps");
        let listed = String::from_utf8_lossy(&out.stdout).to_string();
        let run = listed.lines().find_map(|line| {
            let (run, pid) = line.split_once(' ')?;
            pid.starts_with(&me).then(|| run.to_string())
        });
        if let Some(run) = run {
            return run;
        }
        assert!(Instant::now() < deadline, "this test's run never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The container names of a run (by its label), as `docker ps` shows them.
fn container_names(run: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "--filter", &format!("label=aftershock.run={run}")])
        .args(["--format", "{{.Names}}"])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_killed_from_outside_makes_the_verdicts_it_touches_unknown() {
    let secs = Duration::from_secs;
    let mut x = Experiment::new("killed-from-outside", secs(12)).seed(3);
    let c = x.service(
        Service::generic("c", "memcached")
            .replicas(2)
            .command(&["-m", "8"])
            .ready(Check::Tcp(11211), secs(90)),
    );
    let port = x.probe(Probe::tcp("c1-port", &c, 11211).on(c.replica(0)));
    // The fault's own kill (of c2, early) is explained; the outside kill (of c1) is not.
    let kill = x.fault(
        Fault::restart("restart-c2", &c, secs(1))
            .at(secs(1))
            .select(Select::Named(vec![c.replica(1).to_string()])),
    );
    x.expect(Expect::never_fails(&port));
    x.expect(Expect::completes_within(&kill, secs(10)));
    let plan = x.plan().unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let killer = tokio::spawn(async {
        let run = my_run("killed-from-outside").await;
        // Bring-up of memcached takes well under a second; the observation is 12 s long.
        tokio::time::sleep(Duration::from_secs(7)).await;
        let c1 = container_names(&run)
            .into_iter()
            .find(|n| n.ends_with("-c1"))
            .expect("c1 runs");
        let killed = Command::new("docker").args(["kill", &c1]).status().unwrap();
        assert!(killed.success(), "docker kill {c1}");
    });
    let report = aftershock::run(&plan, &aftershock::RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    killer.await.unwrap();
    aftershock_tests::show(&report);
    println!("wall time {:.1}s", started.elapsed().as_secs_f64());
    let unplanned: Vec<(String, String)> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Unplanned {
                cause: Cause::Container,
                subject,
                detail,
                ..
            } => Some((subject.clone(), detail.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(unplanned.len(), 1, "only the outside kill: {unplanned:?}");
    assert_eq!(unplanned[0].0, "c1");
    match &report.outcomes[0].verdict {
        // The first unplanned event in its window names it: the kill, or — when the host
        // starved the harness first (seen in CI: a sample 516 ms late at +6.3 s) — that lag,
        // an UNKNOWN as well; the kill is recorded either way (asserted above).
        Verdict::Unknown { reason } => assert!(
            (reason.starts_with("container `c1` was killed")
                || reason.starts_with("the harness fell behind"))
                && reason.ends_with("not part of the scenario"),
            "{reason}"
        ),
        other => panic!("never-fails should be unknown, naming the kill: {other:?}"),
    }
    assert_eq!(
        report.outcomes[1].verdict,
        Verdict::Pass,
        "the fault ended before the outside kill: its verdict stands"
    );
}

/// Holds the run lock as a made-up run, as long as the returned lock lives.
async fn hold_the_lock() -> (RunLock, Holder) {
    let me = Holder::me("holder-of-the-test", "a test holding the lock");
    let held = admin::take_run_lock(&me).await.unwrap();
    (held, me)
}

fn a_scenario() -> PathBuf {
    aftershock_tests::root().join("scenarios/zookeeper-quorum-remediated.toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_run_says_whom_it_waits_for_and_no_wait_refuses() {
    aftershock_tests::cli_binary(); // built before the clock starts
    let (held, me) = hold_the_lock().await;
    let started = Instant::now();
    let (mut child, lines) = start_cli(&[OsStr::new("run"), a_scenario().as_os_str()]);
    let said = lines
        .iter()
        .find(|l| l.contains("waiting for run holder-of-the-test"))
        .expect("the waiting run names the holder");
    let within = started.elapsed();
    println!(
        "said whom it waits for after {:.2}s: {said}",
        within.as_secs_f64()
    );
    assert!(within < Duration::from_secs(2), "took {within:?}");
    let pid = format!("pid {}", me.pid);
    assert!(
        said.contains("scenario a test holding the lock") && said.contains(&pid),
        "{said}"
    );
    assert!(
        said.contains("Ctrl-C stops waiting") && said.contains("--no-wait"),
        "{said}"
    );
    signal(&child, "-INT");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "Ctrl-C while waiting");

    let started = Instant::now();
    let (mut child, lines) = start_cli(&[
        OsStr::new("run"),
        OsStr::new("--no-wait"),
        a_scenario().as_os_str(),
    ]);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let refused = started.elapsed();
    let text: Vec<String> =
        std::iter::from_fn(|| lines.next_within(Duration::from_millis(200))).collect();
    println!(
        "--no-wait exited {:?} after {:.2}s",
        status.code(),
        refused.as_secs_f64()
    );
    assert_eq!(status.code(), Some(2));
    assert!(refused < Duration::from_secs(2), "took {refused:?}");
    let text = text.join("\n");
    assert!(
        text.contains("the machine is busy: run holder-of-the-test"),
        "{text}"
    );
    drop(held);
}

/// What of `run` is still on the host: labelled engine resources, mounts under its directory,
/// loop devices of its images, lossyfs processes over its disks.
async fn what_is_left(run: &str, run_dir: &Path) -> Vec<String> {
    let docker = admin::connect().await.unwrap();
    let labelled = admin::leftovers(&docker, Some(run)).await.unwrap().count();
    let mut left = vec![];
    if !labelled.is_empty() {
        left.push(format!("{labelled:?}"));
    }
    let disks = admin::disks_dir(run_dir);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let under = run_dir.display().to_string();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&under))
            .map(|l| format!("mount {l}")),
    );
    left.extend(
        admin::fuse_mounts(&disks)
            .iter()
            .map(|m| format!("fuse {}", m.display())),
    );
    left.extend(
        admin::lossyfs_processes(&disks)
            .iter()
            .map(|p| format!("lossyfs pid {p}")),
    );
    let loops = Command::new("losetup").arg("-a").output().unwrap();
    let loops = String::from_utf8_lossy(&loops.stdout).to_string();
    left.extend(
        loops
            .lines()
            .filter(|l| l.contains(run))
            .map(|l| format!("loop {l}")),
    );
    left
}

/// One SIGKILL of the CLI mid-run of the lossy power cut; returns the time to clean.
async fn killed_mid_power_cut() -> Duration {
    let file = aftershock_tests::root().join("scenarios/datastore-power-cut-remediated.toml");
    let (mut child, run) = start_cli_run(&file);
    let deadline = Instant::now() + Duration::from_secs(300);
    let run_dir = loop {
        if let Some(dir) = admin::registered_run_dir(&run) {
            if !admin::fuse_mounts(&admin::disks_dir(&dir)).is_empty()
                && !container_names(&run).is_empty()
            {
                break dir;
            }
        }
        assert!(
            Instant::now() < deadline,
            "run {run} never had its lossy disk and container"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(4)).await; // into the observation
    let before = what_is_left(&run, &run_dir).await;
    assert!(
        !aftershock_tests::watchdogs_of(&run).is_empty(),
        "run {run} has no watchdog"
    );
    signal(&child, "-KILL");
    let killed = Instant::now();
    wait_exit(&mut child, Duration::from_secs(5));
    loop {
        let left = what_is_left(&run, &run_dir).await;
        if left.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "10 s after the SIGKILL run {run} still has {left:?} (before: {before:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = killed.elapsed();
    println!(
        "run {run}: had {} things, all removed {:.2}s after the SIGKILL",
        before.len(),
        took.as_secs_f64()
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_harness_leaves_nothing_of_a_lossy_power_cut_within_10_s() {
    let mut times = vec![];
    for _ in 0..3 {
        times.push(killed_mid_power_cut().await.as_secs_f64());
    }
    println!("time to clean after SIGKILL, 3 runs: {times:.2?} s");
    assert!(times.iter().all(|t| *t < 10.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_scenario_on_a_host_without_fuse_is_refused_before_anything_starts() {
    let plan = renamed("datastore-power-cut-remediated", "refused-no-fuse");
    let mut host = aftershock::HostFacts::probe(&plan).await;
    host.fuse = false;
    let options = aftershock::RunOptions::default().host(host);
    let started = Instant::now();
    let Err(refused) = aftershock::run(&plan, &options).await else {
        panic!("a lossy scenario ran on a host without FUSE");
    };
    println!(
        "refused in {:.2}s: {refused}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        matches!(&refused, aftershock::Error::Preflight { missing } if missing.len() == 1 && missing[0].starts_with("FUSE (/dev/fuse), for service `store`'s disk (lossy = true): ")),
        "{refused}"
    );
    nothing_of(&plan);
}

/// A refused run's plan, renamed `name` so that what it might have created is told apart
/// from the runs of the same scenario beside it (other tests of this binary, other processes).
fn renamed(scenario: &str, name: &str) -> aftershock::Plan {
    let mut plan = aftershock_tests::scenario(scenario);
    plan.name = format!("{name}-{}", std::process::id());
    plan
}

/// Before the lock, the reaper, the images and the bring-up: nothing of the refused run
/// (by its scenario's label) exists.
fn nothing_of(plan: &aftershock::Plan) {
    let label = format!("label=aftershock.scenario={}", plan.name);
    for what in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"],
        &["volume", "ls", "-q"],
    ] {
        let out = Command::new("docker")
            .args(what)
            .args(["--filter", &label])
            .output()
            .expect("docker CLI");
        let listed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(listed.is_empty(), "`docker {what:?}` finds {listed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_would_fill_the_disk_is_refused_before_anything_starts() {
    use aftershock::{Room, Writes};
    let plan = renamed("daemon-restart-remediated", "refused-full-disk");
    let mut host = aftershock::HostFacts::probe(&plan).await;
    let output = std::env::temp_dir();
    let mut room = Room::measure(Writes::Output, &output).unwrap();
    println!(
        "{} has {:.1} GiB free",
        output.display(),
        room.free_bytes as f64 / (1u64 << 30) as f64
    );
    room.free_bytes = 300 << 20;
    // The engine's data root on the same file system: its three machines' volumes count too.
    let engine = Room {
        writes: Writes::Engine,
        path: "/var/lib/docker".into(),
        ..room.clone()
    };
    host.rooms = vec![room, engine];
    let options = aftershock::RunOptions::default()
        .host(host)
        .output_dir(output.clone());
    let started = Instant::now();
    let Err(refused) = aftershock::run(&plan, &options).await else {
        panic!("a run with 300 MiB of disk left started three machines");
    };
    println!(
        "refused in {:.2}s: {refused}",
        started.elapsed().as_secs_f64()
    );
    let expected = format!(
        "free disk space on {} and /var/lib/docker (0.3 GiB free; this run writes about 4.5 GiB there",
        output.display()
    );
    assert!(
        matches!(&refused, aftershock::Error::Preflight { missing } if missing.len() == 1 && missing[0].starts_with(&expected)),
        "{refused}"
    );
    nothing_of(&plan);
}
