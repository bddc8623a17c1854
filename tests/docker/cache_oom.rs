//! The clerk-2017-03 cache incident, replayed against real memcached and PostgreSQL
//! containers: as it was (a leak OOM-kills the only memcached; the API queues on the database)
//! and remediated (two mirrored nodes; the same leak kills one). Needs a Docker engine.

use aftershock::Report;
use aftershock_model::timeline::EventKind;
use aftershock_tests::run_passing;

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
    let report = run_passing("cache-oom-as-it-was").await;
    assert!(
        has_oom_event(&report),
        "the engine's oom event is on the timeline"
    );
    assert_eq!(victim(&report).as_deref(), Some("memcached"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediated_a_mirrored_cache_keeps_p99_within_5x_and_fails_nothing() {
    let report = run_passing("cache-oom-remediated").await;
    assert!(
        has_oom_event(&report),
        "the engine's oom event is on the timeline"
    );
    assert_eq!(victim(&report).as_deref(), Some("memcached"));
}
