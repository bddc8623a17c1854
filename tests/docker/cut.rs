//! Partitions between chosen peers, against real containers (the project's memcached image):
//! on three replicas, `c1` cut from `c2` only (both ways), then `c1`'s messages to `c2` cut one
//! way; on four others, a ring of majorities; then a service of one replica cut from two of
//! another service's (a group of separate services, as Compose writes a cluster). Each cut must be verified from inside every
//! replica's network namespace — exactly the cut pairs get no answer, every other pair answers
//! — and after its heal every pair must answer again with no rule left.

use aftershock::{Check, CutShape, Expect, Experiment, Fault, Select, Service};
use std::time::Duration;

const PORT: u16 = 11211;

/// The verification's words for stage `stage` of fault `name`, which must have passed.
fn verified(report: &aftershock::Report, name: &str, stage: &str) -> String {
    let (ok, detail) = aftershock_tests::verified(report, name, stage);
    assert!(ok, "{name} {stage} failed: {detail}");
    detail
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_between_chosen_peers_take_effect_one_way_too_and_heal() {
    let secs = Duration::from_secs;
    let mut x = Experiment::new("cut", secs(9)).seed(3);
    let service = |name: &str, n| {
        Service::generic(name, "memcached")
            .replicas(n)
            .command(&["-m", "8"])
            .ready(Check::Tcp(PORT), secs(90))
    };
    let c = x.service(service("c", 3));
    let ring = x.service(service("r", 4));
    let lone = x.service(service("m", 1));
    let named = |r: &str| Select::Named(vec![r.to_string()]);
    let faults = [
        Fault::cut("two-way", &c)
            .select(named("c1"))
            .peers(&["c2"])
            .at(secs(1)),
        Fault::cut("one-way", &c)
            .select(named("c1"))
            .peers(&["c2"])
            .one_way()
            .at(secs(5)),
        (Fault::cut("ring", &ring).shape(CutShape::MajoritiesRing))
            .select(Select::All)
            .at(secs(1)),
        Fault::cut("group", &lone)
            .select(Select::All)
            .peers(&["r1", "r2"])
            .at(secs(5)),
    ];
    for f in faults {
        let f = x.fault(f.down_for(secs(2)));
        x.expect(Expect::fault_verified(&f));
    }
    let scenario = x.plan().unwrap_or_else(|e| panic!("{e}"));
    let report = aftershock_tests::run_scenario(&scenario).await;

    // Both ways: c1 and c2 do not hear each other; c3 hears both, and both hear it.
    let two = verified(&report, "two-way", "applied");
    assert!(two.contains("c1→c2, c2→c1;"), "{two}");
    assert!(two.contains("4 other pairs answered"), "{two}");
    // One way: c1's connections to c2 get no answer; c2's to c1 do.
    let one = verified(&report, "one-way", "applied");
    assert!(one.contains("no answer within 900 ms: c1→c2;"), "{one}");
    assert!(one.contains("5 other pairs answered"), "{one}");
    // Four in a ring: each is cut from the one opposite it, both ways (4 pairs of 12).
    let ring = verified(&report, "ring", "applied");
    assert!(ring.contains("8 other pairs answered"), "{ring}");
    // Across services: m is cut from r1 and r2 both ways; r1 and r2 still hear each other.
    let group = verified(&report, "group", "applied");
    assert!(
        group.contains("m→r1, m→r2, r1→m, r2→m;") && group.contains("2 other pairs answered"),
        "{group}"
    );
    for name in ["two-way", "one-way", "ring", "group"] {
        let healed = verified(&report, name, "healed");
        assert!(
            healed.contains("no answer within 900 ms: none;"),
            "{healed}"
        );
        assert!(healed.contains("0 DROP rules listed"), "{healed}");
    }
    aftershock_tests::show(&report).assert_passed();
}
