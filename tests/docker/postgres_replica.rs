//! The example of a user's own architecture (`scenarios/examples/postgres-replica.toml`): a
//! PostgreSQL primary and streaming replica built only from generic services, probes and
//! faults. It must pass as a whole, and the report must show each fault's verification and
//! the replica catching up after its partition.

use aftershock_model::timeline::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_and_its_replica_survive_a_kill_and_a_partition() {
    let scenario = aftershock_tests::scenario_at("scenarios/examples/postgres-replica.toml");
    assert!(
        scenario
            .services
            .iter()
            .all(|s| s.kind == aftershock_model::scenario::plan::ServiceKind::Generic),
        "the example must use generic services only"
    );
    let report = aftershock_tests::run_scenario(&scenario).await;
    let verified = report
        .timeline
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::FaultVerified { ok: true, .. }))
        .count();
    assert_eq!(verified, 4, "both faults verified, applied and healed");
    // The replica really replicated: its lag probe answered with a lag before the partition.
    let lags: Vec<f64> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Sample {
                probe,
                ok: true,
                detail: Some(d),
                ..
            } if probe == "replica-lag" => d.parse().ok(),
            _ => None,
        })
        .collect();
    assert!(lags.len() > 10, "replica lag samples: {lags:?}");
    assert!(lags.iter().all(|l| *l < 1.0));
    let catch_up = report
        .outcomes
        .iter()
        .find(|o| o.title.contains("catches up"))
        .and_then(|o| o.measured_seconds)
        .expect("the catch-up expectation measured a time");
    println!("replica caught up {catch_up:.2}s after the partition healed");
}
