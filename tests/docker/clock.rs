//! Clock faults against real containers: a memcached replica's wall clock moved 30 s forward,
//! another's an hour back, through the libfaketime preloaded at bring-up — each offset read
//! inside the container within the 10 ms budget (with its error bound) while the host's clock
//! did not move, then 0 again after the heal; and a Go binary (the registry image's
//! docker-registry), which reads the clock past libc, is shown unaffected: its verification
//! fails and says why, never a silent success.

use aftershock::{Check, Expect, Experiment, Fault, Select, Service};
use std::time::Duration;

use aftershock_tests::verified;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_s_clock_moves_forward_and_back_and_a_go_binary_is_not_fooled() {
    let secs = Duration::from_secs;
    let mut x = Experiment::new("clock", secs(6)).seed(1);
    let c = x.service(
        Service::generic("c", "memcached")
            .replicas(2)
            .command(&["-m", "8"])
            .ready(Check::Tcp(11211), secs(90)),
    );
    let reg = x.service(Service::generic("reg", "registry").ready(Check::Tcp(5000), secs(90)));
    let one = |r: &str| Select::Named(vec![r.to_string()]);
    let forward = x.fault(
        Fault::clock("forward", &c, "+30s")
            .select(one("c1"))
            .at(secs(1))
            .down_for(secs(2)),
    );
    let back = x.fault(
        Fault::clock("back", &c, "-1h")
            .select(one("c2"))
            .at(secs(1))
            .down_for(secs(2)),
    );
    x.fault(
        Fault::clock("go", &reg, "+30s")
            .at(secs(1))
            .down_for(secs(2)),
    );
    x.expect(Expect::fault_verified(&forward));
    x.expect(Expect::fault_verified(&back));
    let scenario = x.plan().unwrap_or_else(|e| panic!("{e}"));
    let report = aftershock_tests::run_scenario(&scenario).await;

    for (name, r, want) in [("forward", "c1", 30_000.0), ("back", "c2", -3_600_000.0)] {
        for (stage, want) in [("applied", want), ("healed", 0.0)] {
            let (ok, detail) = verified(&report, name, stage);
            assert!(ok, "{name} {stage}: {detail}");
            assert!(detail.contains("host's clock moved"), "{detail}");
            let measured = report
                .measurements
                .iter()
                .find(|m| m.name == format!("{name}/offset-{stage}-{r}"))
                .unwrap_or_else(|| panic!("no offset measured for {name} {stage}"));
            assert!(
                (measured.value - want).abs() <= 10.0,
                "{name} {stage}: {}",
                measured.value
            );
        }
    }
    let (ok, detail) = verified(&report, "go", "applied");
    assert!(!ok, "a Go binary's clock cannot have moved: {detail}");
    assert!(
        detail.contains("Go binary") || detail.contains("no libfaketime"),
        "{detail}"
    );
    let passed = report
        .outcomes
        .iter()
        .all(|o| o.verdict == aftershock::Verdict::Pass);
    assert!(passed, "{:?}", report.outcomes);
}
