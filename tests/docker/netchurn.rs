//! moby#42119 on this engine, through the harness's own path: cycles of fifty memcached
//! replicas on one run network brought up to ready (`Cluster::up`, the bench's `bench-up`) and
//! torn down (`Cluster::down`); counts the networks the engine keeps ("has active endpoints"
//! with nothing attached). Ignored: it churns the shared engine, and a kept network stays
//! until the engine restarts. On 2026-12-02 it kept none in 40 cycles on a quiet machine and
//! 2 of 10 with two CPU-bound loops (`sh -c 'while :; do :; done'`) beside it.
//!
//! `cargo test --test netchurn -- --ignored --nocapture`; `NETCHURN_CYCLES` (default 20),
//! `NETCHURN_N` (default 50), `NETCHURN_VARIANT`: `down` (teardown as it is), `stop` (every
//! replica stopped first), `disconnect` (every replica disconnected from the network first),
//! `remove` (every replica removed by the test first); `NETCHURN_PARALLEL` of them at once
//! (default 100).

use aftershock::cluster::{new_run_id, Cluster};
use aftershock::engine::{self, cleanup, images};
use aftershock::timeline::Timeline;
use aftershock::{Check, Experiment, Service};
use std::time::{Duration, Instant};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

fn plan(n: usize) -> aftershock::Plan {
    let mut x = Experiment::new("netchurn", Duration::from_secs(1));
    x.service(
        Service::generic("mc", "memcached")
            .replicas(n)
            .command(&["-m", "8"])
            .ready(Check::Tcp(11211), Duration::from_secs(120)),
    );
    x.plan().expect("plan")
}

/// What the variant does before teardown.
async fn before_down(cluster: &Cluster, variant: &str) {
    let docker = &cluster.engine.docker;
    let network = &cluster.engine.network_name();
    let names: Vec<String> = cluster.plan.services[0]
        .replicas
        .iter()
        .map(|r| cluster.engine.container_name(r))
        .collect();
    let each = names.iter().map(|name| async move {
        match variant {
            "stop" => {
                let o = bollard::query_parameters::StopContainerOptionsBuilder::default()
                    .t(1)
                    .build();
                let _ = docker.stop_container(name, Some(o)).await;
            }
            "remove" => {
                let o = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .build();
                let _ = docker.remove_container(name, Some(o)).await;
            }
            "disconnect" => {
                let r = bollard::models::NetworkDisconnectRequest {
                    container: name.clone(),
                    force: Some(true),
                };
                let _ = docker.disconnect_network(network, r).await;
            }
            _ => {}
        }
    });
    let parallel: usize = env("NETCHURN_PARALLEL", "100").parse().unwrap();
    let done: Vec<()> = futures_util::StreamExt::collect(
        futures_util::StreamExt::buffer_unordered(futures_util::stream::iter(each), parallel),
    )
    .await;
    drop(done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "churns the shared engine; a kept network stays until it restarts"]
async fn networks_the_engine_keeps_over_cycles() {
    let cycles: usize = env("NETCHURN_CYCLES", "20").parse().unwrap();
    let n: usize = env("NETCHURN_N", "50").parse().unwrap();
    let variant = env("NETCHURN_VARIANT", "down");
    let docker = engine::connect().await.expect("engine");
    let _lock = aftershock::run::exclusive().await.expect("run lock");
    let output = aftershock::output::default_root();
    let imgs = images::ensure(&docker, &images::needed_for(["memcached"]), &output)
        .await
        .expect("images");
    let (mut kept, mut ups, mut downs) = (vec![], vec![], vec![]);
    for c in 1..=cycles {
        let run = new_run_id();
        let started = Instant::now();
        let cluster = Cluster::up(
            &output,
            docker.clone(),
            &run,
            &plan(n),
            &imgs,
            Timeline::new(),
        )
        .await
        .expect("bring-up");
        ups.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        before_down(&cluster, &variant).await;
        let removed = cluster.down().await.expect("teardown");
        downs.push(started.elapsed().as_secs_f64());
        let left = cleanup::list_labelled(&docker, Some(&run)).await.unwrap();
        println!(
            "cycle {c}: up {:.2}s down {:.2}s, networks removed {}, left {:?}",
            ups[c - 1],
            downs[c - 1],
            removed.networks,
            left.networks
        );
        kept.extend(left.networks);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "RESULT variant={variant} n={n} cycles={cycles} kept={} mean_up_s={:.2} mean_down_s={:.2} kept_ids={kept:?}",
        kept.len(),
        mean(&ups),
        mean(&downs)
    );
}
