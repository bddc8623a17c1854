//! Bring-up to ready and teardown of N generic containers (memcached, an 8 MB cache): the
//! harness (`Cluster::up` — network, containers, readiness; `Cluster::down` — teardown by
//! label) against what a user would type: `docker network create`, N `docker run -d` at once,
//! a TCP connect to each until it answers; `docker rm -f` of them all, `docker network rm`.

use super::{timing, Options, Stats};
use crate::cluster::{new_run_id, Cluster};
use crate::engine::cleanup::RunGuard;
use crate::engine::{images::ImageSet, raw, Docker, RunEngine};
use crate::error::{HarnessError, Result};
use crate::scenario::plan::Plan;
use crate::timeline::Timeline;
use crate::{Check, Experiment, Probe, Service};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One size: seconds to ready and to gone, the harness's and raw docker's, over the
/// repetitions, and the ratios of their medians (harness / raw).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleRow {
    pub n: usize,
    pub up_s: Option<Stats>,
    pub raw_up_s: Option<Stats>,
    pub down_s: Option<Stats>,
    pub raw_down_s: Option<Stats>,
    pub up_ratio: f64,
    pub down_ratio: f64,
}

use super::kill::COMMAND;
const PORT: u16 = 11211;

/// Every size, harness then raw docker, each repetition; the probe-lag figure is taken on the
/// harness's cluster of the first size between its bring-up and its teardown (untimed).
pub(super) async fn run(
    docker: &Docker,
    images: &ImageSet,
    options: &Options,
) -> Result<(Vec<LifecycleRow>, timing::Latency)> {
    let (mut rows, mut lags) = (vec![], vec![]);
    for (i, n) in options.lifecycle_sizes().into_iter().enumerate() {
        let mut seen: [Vec<f64>; 4] = Default::default();
        for rep in 0..options.reps {
            let probes = (i == 0).then_some((options, rep));
            let (up, down, lag) = harness(docker, images, n, probes).await?;
            lags.extend(lag);
            let (raw_up, raw_down) = raw_docker(docker, images.tag("memcached")?, n).await?;
            for (v, x) in seen.iter_mut().zip([up, raw_up, down, raw_down]) {
                v.push(x);
            }
        }
        let [up, raw_up, down, raw_down] = seen.map(Stats::of);
        rows.push(LifecycleRow {
            n,
            up_ratio: super::ratio(up, raw_up),
            down_ratio: super::ratio(down, raw_down),
            up_s: up,
            raw_up_s: raw_up,
            down_s: down,
            raw_down_s: raw_down,
        });
    }
    Ok((rows, timing::Latency::of(options.probes().0, &lags)))
}

/// The harness's plan of `n` replicas; with [`Options::probes`] `tcp` probes at 10 Hz on them
/// when `probes`.
fn plan(n: usize, probes: Option<&Options>) -> Result<Plan> {
    let mut x = Experiment::new("bench-up", Duration::from_secs(1));
    let mc = x.service(
        Service::generic("mc", "memcached")
            .replicas(n)
            .command(&COMMAND)
            .ready(Check::Tcp(PORT), Duration::from_secs(120)),
    );
    for i in 0..probes.map_or(0, |o| o.probes().0) {
        x.probe(
            Probe::tcp(&format!("p{i}"), &mc, PORT)
                .on(mc.replica(i % n))
                .interval(Duration::from_millis(100)),
        );
    }
    x.plan()
        .map_err(|e| HarnessError::io("the bench's plan")(std::io::Error::other(e)))
}

/// The harness: seconds from nothing to every replica ready, and from there to nothing; and
/// in between, when asked (the options and the repetition), the probes' lateness (ms).
async fn harness(
    docker: &Docker,
    images: &ImageSet,
    n: usize,
    probes: Option<(&Options, usize)>,
) -> Result<(f64, f64, Option<Vec<f64>>)> {
    let plan = plan(n, probes.map(|p| p.0))?;
    let started = Instant::now();
    let output = crate::output::default_root();
    let cluster = Cluster::up(
        &output,
        docker.clone(),
        &new_run_id(),
        &plan,
        images,
        Timeline::new(),
    )
    .await?;
    let up = started.elapsed().as_secs_f64();
    let lag = match probes {
        Some((options, rep)) => Some(timing::probe_lag(&cluster, options, rep).await),
        None => None,
    };
    let started = Instant::now();
    cluster.down().await?;
    Ok((up, started.elapsed().as_secs_f64(), lag))
}

/// Raw docker, the same image and command; a guard removes whatever is left by label.
async fn raw_docker(docker: &Docker, image: &str, n: usize) -> Result<(f64, f64)> {
    let run_id = new_run_id();
    let engine = RunEngine::new(docker.clone(), &run_id, "bench-raw");
    let guard = RunGuard::new(docker.clone(), &run_id);
    let command: Vec<String> = COMMAND.map(String::from).to_vec();
    let started = Instant::now();
    let prefix = raw::network_create(&engine).await?;
    let ips: Vec<String> = (0..n).map(|i| format!("{prefix}.{}", 10 + i)).collect();
    let names: Vec<String> = (1..=n).map(|i| format!("mc{i}")).collect();
    let runs = ips
        .iter()
        .zip(&names)
        .map(|(ip, name)| raw::run_detached(&engine, name, Some(ip), image, &command));
    let ids = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .collect::<std::result::Result<Vec<String>, crate::engine::EngineError>>()?;
    let answers = ips.iter().map(|ip| answers(ip));
    for a in futures_util::future::join_all(answers).await {
        a?;
    }
    let up = started.elapsed().as_secs_f64();
    let started = Instant::now();
    raw::remove_forced(&ids).await?;
    raw::network_remove(&engine).await?;
    let down = started.elapsed().as_secs_f64();
    guard.teardown().await?;
    Ok((up, down))
}

/// Waits (up to 120 s) until `ip` accepts on the port.
async fn answers(ip: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let connect = tokio::net::TcpStream::connect((ip, PORT));
        match tokio::time::timeout(Duration::from_secs(1), connect).await {
            Ok(Ok(_)) => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(HarnessError::io(format!("connect to {ip}:{PORT}"))(
                    std::io::Error::other("no answer within 120 s"),
                ))
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
