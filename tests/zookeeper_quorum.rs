//! The realtime-2016-06 ZooKeeper quorum incident, replayed against a real 3-node ensemble:
//! as it was (two nodes restarted at the same instant) and remediated (a serialised restart).
//! Needs a Docker engine; without one these tests fail and say so.

use aftershock::engine::{self, cleanup};
use aftershock::RunOptions;
use aftershock_tests::{scenario, show};

async fn run_and_check(name: &str) {
    let report = aftershock::run(&scenario(name), &RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("the run could not start: {e}"));
    show(&report);
    for file in ["report.json", "report.html", "junit.xml"] {
        aftershock_tests::assert_file(&report.dir().join(file));
    }
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_it_was_two_simultaneous_restarts_lose_quorum_and_need_a_cold_start() {
    run_and_check("zookeeper-quorum-as-it-was").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediated_serialised_restarts_never_lose_a_write() {
    run_and_check("zookeeper-quorum-remediated").await;
}
