//! A three-member etcd 3.4 cluster (Debian bookworm's etcd-server, built on aftershock's base
//! image) written in the builder through the public API only: each member's flags from
//! `{replica}`, a leader check (etcd's `etcd_server_is_leader` metric), a follower restarted
//! by `Select::Followers`, and a write probe whose HTTP body puts record `{n}` through etcd's
//! JSON gateway (`/v3/kv/put`).
//!
//! What etcd promises with one of three members down: the other two keep a quorum, so writes
//! through a live member keep being acknowledged (an election only when the leader goes, see
//! ENGINEERING-NOTES "etcd 3.4, one of three members killed"), no acknowledged write is lost,
//! and the member rejoins once started.
//!
//! Needs a Docker engine. Reports land under this crate's `target/aftershock/<run id>/`.

use aftershock::EventKind;
use aftershock::{
    Check, Expect, Experiment, Fault, LeaderCheck, Probe, RunExperiment, RunOptions, Select,
    Service,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const IMAGE: &str = "own-crate/etcd:latest";
const CLIENT: u16 = 2379;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Builds the etcd image on aftershock's base image (etcd-server from the base image's Debian
/// sources).
async fn etcd_image() -> String {
    let base = aftershock::base_image(&RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("etcd");
    let built = std::process::Command::new("docker")
        .args(["build", "-q", "--build-arg", &format!("BASE={base}"), "-t", IMAGE])
        .arg(&dir)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run the docker CLI");
    assert!(
        built.status.success(),
        "docker build of {IMAGE}: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    IMAGE.to_string()
}

/// Every member's flags: its own name and URLs from `{replica}`, the same initial cluster.
fn member(image: &str) -> Service {
    let cluster = (1..=3)
        .map(|i| format!("etcd{i}=http://etcd{i}:2380"))
        .collect::<Vec<_>>()
        .join(",");
    Service::generic("etcd", image)
        .replicas(3)
        .command(&[
            "--name", "{replica}",
            "--data-dir", "/var/lib/etcd/{replica}",
            "--listen-client-urls", "http://0.0.0.0:2379",
            "--advertise-client-urls", "http://{replica}:2379",
            "--listen-peer-urls", "http://0.0.0.0:2380",
            "--initial-advertise-peer-urls", "http://{replica}:2380",
            "--initial-cluster", &cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", "aftershock-etcd",
        ])
        .ready(Check::Http { port: CLIENT, path: "/health".into(), status: Some(200) }, secs(60))
        .leader(LeaderCheck::http(CLIENT, "/metrics").contains("etcd_server_is_leader 1"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_restarts_and_writes_through_the_others_keep_being_acknowledged() {
    let image = etcd_image().await;
    let started = Instant::now();
    let mut x = Experiment::new("etcd-follower-restart", secs(20)).seed(3);
    let etcd = x.service(member(&image));
    // One write probe through each member, each with its own key prefix (`wa/`, `wb/`, `wc/`:
    // three bytes, so the key's base64 is the prefix's followed by the number's).
    let writes: Vec<_> = [("d2Ev", "wa/"), ("d2Iv", "wb/"), ("d2Mv", "wc/")]
        .iter()
        .zip(etcd.replicas())
        .map(|((key64, prefix), r)| {
            let body = format!(r#"{{"key": "{key64}{{n_base64}}", "value": "{{n_base64}}"}}"#);
            x.probe(
                Probe::write_http(&format!("writes-{r}"), &etcd, CLIENT, "/v3/kv/put", "")
                    .method("POST")
                    .body(&body)
                    .read_command(&["etcdctl", "get", prefix, "--prefix", "--keys-only"])
                    .on(&r)
                    .timeout(Duration::from_millis(800)),
            )
        })
        .collect();
    let health: Vec<_> = etcd
        .replicas()
        .iter()
        .map(|r| x.probe(Probe::http(&format!("health-{r}"), &etcd, CLIENT, "/health").on(r)))
        .collect();
    let down = x.fault(
        Fault::restart("follower-down", &etcd, secs(5))
            .at(secs(5))
            .select(Select::Followers(1)),
    );
    x.expect(Expect::fault_verified(&down));
    for w in &writes {
        x.expect(Expect::no_lost_writes(w));
        x.expect(Expect::recovers_within(w, &down, secs(10)));
    }
    x.expect(Expect::restarted_within(&down, secs(8)));
    for h in &health {
        x.expect(Expect::recovers_within(h, &down, secs(10)));
    }
    let report = x.run().await.unwrap_or_else(|e| panic!("{e}"));
    println!("{}", report.table());
    report.assert_passed();

    // Which follower went down, and what the writes through etcd1 saw meanwhile.
    let window = |kind: &str| {
        report.timeline.iter().find_map(|e| match &e.kind {
            EventKind::FaultApplied { targets, .. } if kind == "applied" => Some((e.at, targets.clone())),
            EventKind::FaultHealed { targets, .. } if kind == "healed" => Some((e.at, targets.clone())),
            _ => None,
        })
    };
    let (applied, killed) = window("applied").expect("the fault was applied");
    let (healed, _) = window("healed").expect("the fault was healed");
    let during = |probe: &str| -> (usize, usize) {
        let oks: Vec<bool> = report
            .timeline
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Sample { probe: p, ok, .. } if p == probe && e.at >= applied && e.at <= healed => Some(*ok),
                _ => None,
            })
            .collect();
        (oks.iter().filter(|ok| !**ok).count(), oks.len())
    };
    println!(
        "etcd-follower-restart: {} in {:.1}s; follower down: {killed:?}",
        report.verdict.label(),
        started.elapsed().as_secs_f64()
    );
    for r in etcd.replicas() {
        let (failed, of) = during(&format!("writes-{r}"));
        println!("  writes through {r} while the follower was down: {failed} of {of} failed");
        assert!(of > 0, "writes through {r} were sampled while the follower was down");
        if !killed.iter().any(|k| k == r.name()) {
            assert_eq!(failed, 0, "a quorum of two acknowledges every write through a live member ({r})");
        }
    }
}
