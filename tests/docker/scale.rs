//! Scale: the example scenario with fifty replicas of one service, all killed at one instant
//! (`scenarios/examples/fifty-at-once.toml`), validates, runs against real containers (brought
//! up, made ready and torn down in parallel) and records its exit skew; a hundred and one
//! containers are refused before anything starts.

use aftershock_model::timeline::EventKind;

const FILE: &str = "scenarios/examples/fifty-at-once.toml";

#[test]
fn a_hundred_and_one_containers_are_refused_before_anything_starts() {
    let text = std::fs::read_to_string(aftershock_tests::root().join(FILE)).unwrap();
    let text = text.replace("replicas = 50", "replicas = 50\n\n[[topology.service]]\nname = \"more\"\nimage = \"memcached\"\nreplicas = 51");
    let e = aftershock_model::scenario::parse("fifty.toml", &text)
        .unwrap_err()
        .to_string();
    println!("{e}");
    assert!(
        e.contains("101 containers") && e.contains("at most 100"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_replicas_killed_at_one_instant_record_their_exit_skew() {
    let plan = aftershock_tests::scenario_at(FILE);
    assert_eq!(plan.services[0].replicas.len(), 50);
    let started = std::time::Instant::now();
    let report = aftershock_tests::run_scenario(&plan).await;
    println!("run took {:.1}s", started.elapsed().as_secs_f64());
    let value = |name: &str| {
        report
            .measurements
            .iter()
            .find(|m| m.name == format!("all-at-once/{name}"))
            .map(|m| m.value)
    };
    let skew = value("exit-skew").expect("the exit skew is recorded");
    let signals = value("signal-spread").expect("the signals' spread is recorded");
    println!(
        "50 exits within {skew:.3} ms (signals {signals:.3} ms); engine `die` events {:?} ms",
        value("die-event-spread")
    );
    assert!(skew.is_finite() && skew >= 0.0);
    let dies = report
        .timeline
        .iter()
        .filter(
            |e| matches!(&e.kind, EventKind::Container { action, .. } if action.starts_with("die")),
        )
        .count();
    assert_eq!(dies, 50, "each of the fifty died once");
}
