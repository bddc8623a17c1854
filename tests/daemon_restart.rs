//! The clearbit-2016-06 Docker daemon restart, replayed on three Docker-in-Docker machines with
//! real dockerds: as it was (KV lost, registry down), remediated (everything recovers, timed) and
//! with live-restore (nothing notices). Needs a Docker engine; without one these tests fail and
//! say so.

use aftershock::engine::{self, cleanup};
use aftershock::report::Report;
use aftershock::timeline::EventKind;
use aftershock::RunOptions;
use aftershock_tests::{scenario, show};

async fn run_and_check(name: &str) -> Report {
    let report = aftershock::run(&scenario(name), &RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("the run could not start: {e}"));
    show(&report);
    aftershock_tests::assert_file(&report.dir().join("report.json"));
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
    assert!(!report.outcomes.is_empty());
    assert!(report.passed(), "{}: {:?}", name, report.verdict);
    report
}

/// Whether the timeline shows real daemons: each machine's init logged dockerd's SIGKILL exit.
fn dockerd_was_killed_on_every_machine(report: &Report) -> bool {
    let killed: std::collections::BTreeSet<&str> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Unit {
                machine,
                unit,
                state,
                detail,
            } if unit == "dockerd" && state == "exited" && detail.contains("signal 9") => {
                Some(machine.as_str())
            }
            _ => None,
        })
        .collect();
    killed.len() == 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_it_was_loses_the_kv_data_and_the_registry() {
    let report = run_and_check("daemon-restart-as-it-was").await;
    assert!(dockerd_was_killed_on_every_machine(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediated_recovers_kv_leader_and_deploys() {
    let report = run_and_check("daemon-restart-remediated").await;
    assert!(dockerd_was_killed_on_every_machine(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_restore_keeps_every_container_running() {
    let report = run_and_check("daemon-restart-live-restore").await;
    assert!(dockerd_was_killed_on_every_machine(&report));
}
