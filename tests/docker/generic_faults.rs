//! Every common fault kind against real containers, in one run: six replicas of a generic
//! service (the project's memcached image, ready when its port accepts), one fault each —
//! kill (SIGTERM), restart, stop, pause, partition, netem — applied together and healed
//! together. Each must be verified on the system as having taken effect and as healed
//! (`fault-verified`), the partition must cut a probe off and let it back, and the netem's
//! measured handshakes must show its loss and then none.

use aftershock::{Check, Expect, Experiment, Fault, Probe, Select, Service, Signal};
use aftershock_model::timeline::EventKind;
use std::time::Duration;

const PORT: u16 = 11211;
/// The netem fault's loss. (Its `delay` needs the kernel's netem qdisc, which the kernels of
/// this project's machines lack; the delay is verified the same way, from the round trip.)
const LOSS: f64 = 50.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_common_fault_takes_effect_and_is_healed() {
    let secs = Duration::from_secs;
    let mut x = Experiment::new("generic-faults", secs(8)).seed(7);
    let c = x.service(
        Service::generic("c", "memcached")
            .replicas(6)
            .command(&["-m", "8"])
            .ready(Check::Tcp(PORT), secs(90)),
    );
    let port = x.probe(Probe::tcp("c5-port", &c, PORT).on(c.replica(4)));
    let faults = [
        Fault::kill("kill", &c).signal(Signal::Term),
        Fault::restart("restart", &c, secs(3)),
        Fault::stop("stop", &c),
        Fault::pause("pause", &c),
        Fault::partition("partition", &c),
        Fault::netem("netem", &c, LOSS),
    ];
    let mut partition = None;
    for (i, fault) in faults.into_iter().enumerate() {
        let fault = fault
            .at(secs(2))
            .down_for(secs(3))
            .select(Select::Named(vec![c.replica(i).to_string()]));
        let f = x.fault(fault);
        x.expect(Expect::fault_verified(&f));
        if i == 4 {
            partition = Some(f);
        }
    }
    let partition = partition.expect("the fifth fault is the partition");
    x.expect(Expect::fails_during(&port, &partition, secs(2)));
    x.expect(Expect::recovers_within(&port, &partition, secs(2)));
    let scenario = x.plan().unwrap_or_else(|e| panic!("{e}"));

    let started = std::time::Instant::now();
    let report = aftershock_tests::run_scenario(&scenario).await;
    println!("run took {:.1}s", started.elapsed().as_secs_f64());

    let verified: Vec<(String, String, bool)> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FaultVerified {
                fault, stage, ok, ..
            } => Some((fault.clone(), stage.name().to_string(), *ok)),
            _ => None,
        })
        .collect();
    for name in ["kill", "restart", "stop", "pause", "partition", "netem"] {
        for stage in ["applied", "healed"] {
            assert!(
                verified.contains(&(name.into(), stage.into(), true)),
                "{name} {stage} not verified: {verified:?}"
            );
        }
    }
    let measured = |name: &str| {
        report
            .measurements
            .iter()
            .find(|m| m.name == format!("netem/{name}-c6"))
            .map(|m| m.value)
            .unwrap_or_else(|| panic!("no netem/{name}-c6 measurement"))
    };
    assert_eq!(measured("loss-before"), 0.0);
    assert!(measured("loss-during") > 0.0);
    assert_eq!(measured("loss-after"), 0.0);
}

#[tokio::test]
async fn an_image_the_engine_lacks_is_refused_before_anything_starts() {
    let mut x = Experiment::new("no-such-image", Duration::from_secs(5));
    x.service(Service::generic("svc", "aftershock-no-such-image:1"));
    let scenario = x.plan().unwrap();
    let started = std::time::Instant::now();
    let e = aftershock::run(&scenario, &aftershock::RunOptions::default())
        .await
        .map(|_| ())
        .expect_err("a run with a missing image must not start");
    let e = e.to_string();
    for words in [
        "svc",
        "aftershock-no-such-image:1",
        "docker build",
        "postgres",
    ] {
        assert!(e.contains(words), "{e:?} should mention {words:?}");
    }
    // Refused before the run lock: no wait behind another run, nothing created.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_check_that_never_passes_names_the_service_and_what_it_saw() {
    let mut x = Experiment::new("never-ready", Duration::from_secs(5));
    x.service(Service::generic("svc", "memcached").ready(Check::Tcp(1), Duration::from_secs(2)));
    let scenario = x.plan().unwrap();
    let report = aftershock::run(&scenario, &aftershock::RunOptions::default())
        .await
        .expect("the run starts; bring-up fails");
    let error = report.error.clone().expect("a harness error");
    for words in [
        "service `svc` was not ready within 2s",
        "svc: connect",
        ":1: ",
    ] {
        assert!(error.contains(words), "{error:?} should mention {words:?}");
    }
    let docker = aftershock::admin::connect().await.unwrap();
    let left = aftershock::admin::leftovers(&docker, Some(&report.run_id))
        .await
        .unwrap()
        .count();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A replica whose process exits at start (no `restart` policy) cannot become ready: the run
/// says so as soon as it sees the exit, with the exit code and the container's last lines,
/// instead of waiting out the readiness timeout (60 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_exits_at_start_is_named_with_its_last_lines_without_waiting_out_the_timeout(
) {
    let mut x = Experiment::new("exits-at-start", Duration::from_secs(5));
    x.service(
        Service::generic("svc", "memcached")
            .entrypoint(&["sh", "-c", "echo its data directory is gone >&2; exit 3"])
            .ready(Check::Tcp(11211), Duration::from_secs(60)),
    );
    let scenario = x.plan().unwrap();
    let started = std::time::Instant::now();
    let report = aftershock::run(&scenario, &aftershock::RunOptions::default())
        .await
        .expect("the run starts; bring-up fails");
    let took = started.elapsed();
    println!("refused after {:.1} s", took.as_secs_f64());
    let error = report.error.clone().expect("a harness error");
    for words in [
        "service `svc` was not ready",
        "exited with code 3",
        "its data directory is gone",
    ] {
        assert!(error.contains(words), "{error:?} should mention {words:?}");
    }
    assert!(
        took < Duration::from_secs(60),
        "waited out the 60 s readiness timeout ({took:?}) for a process that had exited"
    );
    let docker = aftershock::admin::connect().await.unwrap();
    let left = aftershock::admin::leftovers(&docker, Some(&report.run_id))
        .await
        .unwrap()
        .count();
    assert!(left.is_empty(), "left behind: {left:?}");
}
