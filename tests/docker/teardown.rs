//! Teardown on every path: a failing run, a run interrupted with Ctrl-C, and a run whose
//! process was killed outright (the next run reaps it). Afterwards nothing of those runs is
//! left: no container, network or volume with their `aftershock.run` label.

use aftershock::admin;
use aftershock::RunOptions;
use aftershock::Verdict;
use aftershock_model::scenario;
use aftershock_tests::{signal, start_cli_run, wait_exit};
use std::time::{Duration, Instant};

/// One standalone ZooKeeper whose only member is killed: the never-fails expectation fails.
const FAILING: &str = r#"
name = "teardown-failing"
duration = "6s"

[[topology.service]]
name = "zk"
preset = "zookeeper"

[[probe]]
name = "writes"
kind = "zookeeper-write"
target = "zk"

[[fault]]
name = "kill-it"
kind = "kill"
at = "1s"
target = "zk"
select = "all"
down_for = "2s"

[[expect]]
kind = "never-fails"
probe = "writes"
"#;

async fn left_by(run: &str) -> admin::Removed {
    let docker = admin::connect().await.unwrap_or_else(|e| panic!("{e}"));
    admin::leftovers(&docker, Some(run)).await.unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_leaves_nothing() {
    let s = scenario::parse("failing.toml", FAILING).unwrap();
    let report = aftershock::run(&s, &RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", report.table());
    assert!(
        matches!(report.verdict, Verdict::Fail { .. }),
        "{:?}",
        report.verdict
    );
    assert!(left_by(&report.run_id).await.is_empty());
}

/// Waits until the run has containers (bring-up is under way).
async fn wait_for_containers(run: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while left_by(run).await.containers == 0 {
        assert!(
            Instant::now() < deadline,
            "run {run} never created a container"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Signals the watchdog of `run` (found by its command line).
fn signal_watchdog_of(run: &str, sig: &str) {
    let pids = aftershock_tests::watchdogs_of(run);
    assert!(!pids.is_empty(), "run {run} has no watchdog");
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status();
    }
}

fn scenario_file() -> std::path::PathBuf {
    aftershock_tests::root()
        .join("scenarios")
        .join("zookeeper-quorum-remediated.toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_tears_the_run_down() {
    let (mut child, run) = start_cli_run(&scenario_file());
    wait_for_containers(&run).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal(&child, "-INT");
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(130),
        "an interrupted run exits 130 after its teardown"
    );
    let left = left_by(&run).await;
    assert!(left.is_empty(), "interrupted run {run} left {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_reaped_by_the_next_run() {
    let (mut child, run) = start_cli_run(&scenario_file());
    wait_for_containers(&run).await;
    // Its watchdog would remove the run within seconds: stopped first (it is this test's),
    // the run is left for the next run's reaper, the way of a host without a watchdog.
    signal_watchdog_of(&run, "-KILL");
    signal(&child, "-KILL");
    wait_exit(&mut child, Duration::from_secs(10));
    assert!(
        !left_by(&run).await.is_empty(),
        "a SIGKILLed run cannot clean up: something must be left to reap"
    );
    let s = scenario::parse("failing.toml", FAILING).unwrap();
    let report = aftershock::run(&s, &RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let left = left_by(&run).await;
    assert!(
        left.is_empty(),
        "the next run ({}) should have reaped {run}: {left:?}",
        report.run_id
    );
    assert!(left_by(&report.run_id).await.is_empty());
}
