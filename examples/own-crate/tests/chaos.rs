//! Chaos tests of "our" service — a registry image of our own, not one of aftershock's
//! presets — from `cargo test`, through aftershock's public API only:
//!
//! - two replicas brought up by aftershock: one is restarted, the other must keep answering,
//!   the restarted one must come back within budget;
//! - a container this test started with testcontainers-rs, attached to an experiment by id:
//!   aftershock kills it, verifies it went down, starts it and sees it answer again.
//!
//! Needs a Docker engine (as root: `bash ../../scripts/ensure-docker.sh`). Reports land under
//! this crate's `target/aftershock/<run id>/`.

use aftershock::{
    Check, Expect, Experiment, Fault, Probe, RunExperiment, RunOptions, Select, Service,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testcontainers::runners::AsyncRunner;
use testcontainers::GenericImage;

const IMAGE: &str = "own-crate/registry";
const TAG: &str = "latest";
const PORT: u16 = 5000;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Builds our image on aftershock's base image (built from Debian packages on first use).
async fn our_image() -> String {
    let base = aftershock::base_image(&RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("image");
    let image = format!("{IMAGE}:{TAG}");
    let built = std::process::Command::new("docker")
        .args(["build", "-q", "--build-arg", &format!("BASE={base}"), "-t", &image])
        .arg(&dir)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run the docker CLI");
    assert!(
        built.status.success(),
        "docker build of {image}: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    image
}

/// The reports of a run must be under this crate's target directory, not aftershock's tree.
fn assert_in_our_target(report: &aftershock::Report) {
    let ours = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(ours, PathBuf::from);
    let dir = report.dir();
    assert!(
        dir.starts_with(&target),
        "{} is not under {}",
        dir.display(),
        target.display()
    );
    assert!(dir.join("report.html").is_file(), "{}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_registry_restarts_and_the_other_keeps_serving() {
    let image = our_image().await;
    let started = Instant::now();
    let mut x = Experiment::new("own-registry-restart", secs(12)).seed(11);
    let registry = x.service(
        Service::generic("registry", &image)
            .replicas(2)
            .ready(Check::Http { port: PORT, path: "/v2/".into(), status: Some(200) }, secs(60)),
    );
    let first = x.probe(Probe::http("first", &registry, PORT, "/v2/").on(registry.replica(0)));
    let second = x.probe(Probe::http("second", &registry, PORT, "/v2/").on(registry.replica(1)));
    let restart = x.fault(
        Fault::restart("restart-first", &registry, secs(3))
            .at(secs(3))
            .select(Select::Named(vec![registry.replica(0).into()])),
    );
    x.expect(Expect::fault_verified(&restart));
    x.expect(Expect::fails_during(&first, &restart, secs(2)));
    x.expect(Expect::recovers_within(&first, &restart, secs(5)));
    x.expect(Expect::never_fails(&second));
    let report = x.run().await.unwrap_or_else(|e| panic!("{e}"));
    report.assert_passed();
    assert_in_our_target(&report);
    println!(
        "own-registry-restart: {} in {:.1}s",
        report.verdict.label(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_testcontainers_container_is_killed_and_comes_back() {
    let image = our_image().await;
    let _ = image;
    let started = Instant::now();
    let container = GenericImage::new(IMAGE, TAG)
        .start()
        .await
        .unwrap_or_else(|e| panic!("testcontainers could not start {IMAGE}:{TAG}: {e}"));
    let mut x = Experiment::new("own-testcontainer-kill", secs(10)).seed(5);
    let ours = x.service(
        Service::attach("ours", &[container.id()])
            .ready(Check::Tcp(PORT), secs(30)),
    );
    let port = x.probe(Probe::tcp("port", &ours, PORT));
    let kill = x.fault(Fault::restart("kill", &ours, secs(2)).at(secs(3)));
    x.expect(Expect::fault_verified(&kill));
    x.expect(Expect::fails_during(&port, &kill, secs(1)));
    x.expect(Expect::recovers_within(&port, &kill, secs(5)));
    let report = x.run().await.unwrap_or_else(|e| panic!("{e}"));
    report.assert_passed();
    assert_in_our_target(&report);
    // aftershock started it again and left it to its owner: testcontainers removes it on drop.
    assert!(container.is_running().await.unwrap_or(false), "the attached container must run again");
    println!(
        "own-testcontainer-kill: {} in {:.1}s",
        report.verdict.label(),
        started.elapsed().as_secs_f64()
    );
}
