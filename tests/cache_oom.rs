//! The clerk-2017-03 cache incident, replayed against real memcached and PostgreSQL
//! containers: as it was (a leak OOM-kills the only memcached; the API queues on the database)
//! and remediated (two mirrored nodes; the same leak kills one). Needs a Docker engine.

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

/// The kernel's victim as the run recorded it.
fn victim(report: &Report) -> Option<String> {
    report.timeline.iter().find_map(|e| match &e.kind {
        EventKind::OomKill { process, .. } => Some(process.clone()),
        _ => None,
    })
}

fn has_oom_event(report: &Report) -> bool {
    report
        .timeline
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Container { action, .. } if action == "oom"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_it_was_the_leak_kills_the_only_cache_and_the_database_queues() {
    let report = run_and_check("cache-oom-as-it-was").await;
    assert!(
        has_oom_event(&report),
        "the engine's oom event is on the timeline"
    );
    assert_eq!(victim(&report).as_deref(), Some("memcached"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediated_a_mirrored_cache_keeps_p99_within_5x_and_fails_nothing() {
    let report = run_and_check("cache-oom-remediated").await;
    assert!(
        has_oom_event(&report),
        "the engine's oom event is on the timeline"
    );
    assert_eq!(victim(&report).as_deref(), Some("memcached"));
}
