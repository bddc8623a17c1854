//! Sick links against real containers, without netem: a memcached replica's port 11211 made
//! 300 ms ± 50 ms slow on the way back (the `sicklink` proxy in its network namespace, port
//! redirected to it), and a registry's port 5000 slow by 200 ms with its idle connections
//! reset after 500 ms. Each exchange is measured through the port from the host: at least
//! the latency while the fault is on, an RST no sooner than asked, and a plain round trip
//! again after the heal, with the rule and the proxy gone.

use aftershock::{Check, EventKind, Expect, Experiment, Fault, Service, Toxics};
use std::time::Duration;

/// The verification of `name` at `stage`: (passed, what it saw).
fn verified(report: &aftershock::Report, name: &str, stage: &str) -> (bool, String) {
    let found = report.timeline.iter().find_map(|e| match &e.kind {
        EventKind::FaultVerified {
            fault,
            stage: s,
            ok,
            detail,
        } if fault == name && s.name() == stage => Some((*ok, detail.clone())),
        _ => None,
    });
    let found = found.unwrap_or_else(|| panic!("{name} {stage}: not verified at all"));
    println!("{name} {stage}: {found:?}");
    found
}

/// The last value of measurement `name` (ms).
fn measured(report: &aftershock::Report, name: &str) -> f64 {
    let m = report.measurements.iter().rev().find(|m| m.name == name);
    let value = m
        .unwrap_or_else(|| panic!("nothing measured as {name}"))
        .value;
    println!("{name}: {value:.1} ms");
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_resets_are_measured_through_the_port_and_gone_after_the_heal() {
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let mut x = Experiment::new("sick-link", secs(7)).seed(1);
    let c = x.service(
        Service::generic("c", "memcached")
            .command(&["-m", "8"])
            .ready(Check::Tcp(11211), secs(90)),
    );
    let reg = x.service(Service::generic("reg", "registry").ready(
        Check::Http {
            port: 5000,
            path: "/v2/".into(),
            status: None,
        },
        secs(90),
    ));
    let slow = Toxics {
        latency: Some(ms(300)),
        jitter: Some(ms(50)),
        ..Default::default()
    };
    let resets = Toxics {
        latency: Some(ms(200)),
        reset_peer: Some(ms(500)),
        ..Default::default()
    };
    let f1 = x.fault(
        Fault::sick_link("slow", &c, slow)
            .at(secs(1))
            .down_for(secs(3)),
    );
    let f2 = x.fault(
        Fault::sick_link("reset", &reg, resets)
            .at(secs(1))
            .down_for(secs(3)),
    );
    x.expect(Expect::fault_verified(&f1));
    x.expect(Expect::fault_verified(&f2));
    let scenario = x.plan().unwrap_or_else(|e| panic!("{e}"));
    let report = aftershock_tests::run_scenario(&scenario).await;

    for name in ["slow", "reset"] {
        for stage in ["applied", "healed"] {
            let (ok, detail) = verified(&report, name, stage);
            assert!(ok, "{name} {stage}: {detail}");
        }
    }
    assert!(measured(&report, "slow/round-trip-applied-c") >= 250.0);
    assert!(measured(&report, "slow/round-trip-healed-c") < 250.0);
    assert!(measured(&report, "reset/round-trip-applied-reg") >= 200.0);
    assert!(measured(&report, "reset/round-trip-healed-reg") < 200.0);
    let reset = measured(&report, "reset/reset-after-reg");
    assert!((495.0..1500.0).contains(&reset), "{reset}");
    let (_, detail) = verified(&report, "reset", "applied");
    assert!(detail.contains("reset by the peer"), "{detail}");
    let passed = report
        .outcomes
        .iter()
        .all(|o| o.verdict == aftershock::Verdict::Pass);
    assert!(passed, "{:?}", report.outcomes);
}
