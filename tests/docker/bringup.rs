//! Bring-up as Compose does it, against real containers: three members that each become
//! healthy only once the other two answer (a quorum written as separate services) are started
//! together and come up; a cache that `depends_on` m1 `service_healthy` starts only once m1 is
//! ready; a client with a plain `depends_on` starts once the cache has started, before the cache
//! is ready.

use aftershock_model::timeline::{EventKind, Nanos};
use aftershock_tests::{run_scenario, scenario_at};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_that_need_each_other_come_up_and_depends_on_conditions_are_kept() {
    aftershock::base_image(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = scenario_at("tests/fixtures/bringup/mesh.toml");
    let id = |name: &str| {
        let s = plan.services.iter().find(|s| s.name == name);
        s.unwrap_or_else(|| panic!("no service {name}")).id
    };
    let service = |name: &str| plan.service(id(name));
    assert_eq!(service("cache").uses, vec![id("m1")]);
    assert!(service("cache").uses_started.is_empty(), "service_healthy");
    assert_eq!(service("client").uses_started, vec![id("cache")]);

    let started = Instant::now();
    let report = run_scenario(&plan).await;
    println!("run took {:.1}s", started.elapsed().as_secs_f64());
    let first = |wanted: &dyn Fn(&EventKind) -> bool| -> Nanos {
        let e = report.timeline.iter().find(|e| wanted(&e.kind));
        e.map(|e| e.at).expect("the event is on the timeline")
    };
    let start = |replica: &'static str| {
        first(&move |k| {
            matches!(k, EventKind::Container { container, action }
                if container == replica && action == "start")
        })
    };
    let ready = |name: &'static str| {
        let prefix = format!("service {name} ready ");
        first(&move |k| matches!(k, EventKind::Note { text } if text.starts_with(&prefix)))
    };
    let secs = |a: Nanos, b: Nanos| (a as f64 - b as f64) / 1e9;
    let m1 = ready("m1");
    println!(
        "members started {:.2}s apart; m1 ready {:.2}s after it started",
        secs(start("m3").max(start("m2")), start("m1").min(start("m2"))),
        secs(m1, start("m1"))
    );
    for member in ["m2", "m3"] {
        assert!(
            start(member) < m1,
            "{member} started only after m1 was ready"
        );
    }
    assert!(
        start("cache") > m1,
        "the cache started before m1 was healthy"
    );
    assert!(
        start("client") < ready("cache"),
        "the client (plain depends_on) started only once the cache was ready"
    );
}
