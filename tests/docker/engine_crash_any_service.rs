//! The engine-crash archetype (clearbit 2016) on a service that is not a preset: the project's
//! memcached image as a generic service with `restart = "always"`, placed on a Docker-in-Docker
//! machine (`machine = "m"`), whose dockerd is SIGKILLed under it — without and with
//! live-restore. Needs a Docker engine; without one these tests fail and say so.

use aftershock_model::timeline::EventKind;
use aftershock_tests::{run_scenario, scenario_at};

/// The engine events of the placed service's container (by its replica name).
fn cache_events(report: &aftershock::Report) -> Vec<String> {
    report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Container { container, action } if container == "cache" => {
                Some(action.clone())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_live_restore_the_restart_policy_brings_the_service_back() {
    let report = run_scenario(&scenario_at(
        "scenarios/examples/engine-crash-own-service-as-it-was.toml",
    ))
    .await;
    let events = cache_events(&report);
    println!("cache's container on the machine: {events:?}");
    assert!(
        events.iter().filter(|a| *a == "start").count() >= 2,
        "started again by its policy: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_live_restore_the_service_never_stops() {
    let report = run_scenario(&scenario_at(
        "scenarios/examples/engine-crash-own-service-live-restore.toml",
    ))
    .await;
    let events = cache_events(&report);
    println!("cache's container on the machine: {events:?}");
    assert!(!events.iter().any(|a| a.starts_with("die")), "{events:?}");
}
