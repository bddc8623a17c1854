//! Simultaneous kills of N containers by three methods, on the same containers: the harness's
//! pidfds, concurrent Engine API kills, and one `docker kill` command. Every method's exits are
//! measured the same way (pidfds and the kernel's exit records, polled on a SCHED_FIFO thread
//! that is waiting before anything is signalled). The signals' spread is the harness's own
//! for pidfds, and the spread of the engine's `kill` events for the other two; the `die`
//! events' spread is the engine's for all three. The same containers then serve [`timing`].

use super::{timing, Options, Stats};
use crate::cluster::{new_run_id, Cluster};
use crate::engine::{images::ImageSet, raw, signal, Docker};
use crate::error::{HarnessError, Result};
use crate::scenario::plan::Plan;
use crate::timeline::{now, Nanos, Timeline};
use crate::{Check, Experiment, Fault, Probe, Select, Service, Signal};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// One group size, the three methods side by side (ms, over the repetitions).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KillRow {
    pub n: usize,
    pub pidfd: Method,
    pub api: Method,
    pub cli: Method,
}

/// What one method achieved (ms).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Method {
    pub exit_spread_ms: Option<Stats>,
    pub signal_spread_ms: Option<Stats>,
    pub die_spread_ms: Option<Stats>,
}

/// How the group is killed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum How {
    Pidfd,
    Api,
    Cli,
}

const HOWS: [How; 3] = [How::Pidfd, How::Api, How::Cli];

/// One kill: exits', signals' and `die` events' spreads (ms).
type One = (f64, Option<f64>, Option<f64>);

/// The containers every kill and timing figure uses (memcached, an 8 MB cache, ready when its
/// port accepts), with the timing section's faults and probes.
fn plan(n: usize, options: &Options) -> Result<Plan> {
    let mut x = Experiment::new("bench", Duration::from_secs(60)).seed(1);
    let mc = x.service(
        Service::generic("mc", "memcached")
            .replicas(n)
            .command(&["-m", "8"])
            .ready(Check::Tcp(11211), Duration::from_secs(120)),
    );
    let spacing = timing::spacing(options);
    for i in 0..n {
        let at = timing::FIRST + spacing * i as u32;
        x.fault(
            Fault::restart(&format!("f{i}"), &mc, Duration::from_millis(200))
                .at(at)
                .select(Select::Named(vec![mc.replica(i).to_string()])),
        );
    }
    for i in 0..options.probes().0 {
        x.probe(
            Probe::tcp(&format!("p{i}"), &mc, 11211)
                .on(mc.replica(i % n))
                .interval(Duration::from_millis(100)),
        );
    }
    x.plan().map_err(|e| HarnessError::io("the bench's plan")(std::io::Error::other(e)))
}

/// Brings the containers up, measures every kill and the timing section on them, tears down.
pub(super) async fn run(
    docker: &Docker,
    images: &ImageSet,
    options: &Options,
) -> Result<(Vec<KillRow>, timing::Latency, timing::Latency)> {
    let n = options.kill_sizes().into_iter().max().unwrap_or(2);
    let plan = plan(n, options)?;
    let run_id = new_run_id();
    let output = crate::output::default_root();
    let cluster = Cluster::up(&output, docker.clone(), &run_id, &plan, images, Timeline::new());
    let cluster = Arc::new(cluster.await?);
    let measured = measure(&cluster, options).await;
    let cluster = Arc::into_inner(cluster).expect("every task on the cluster has ended");
    cluster.down().await?;
    measured
}

async fn measure(
    cluster: &Arc<Cluster>,
    options: &Options,
) -> Result<(Vec<KillRow>, timing::Latency, timing::Latency)> {
    let sizes = options.kill_sizes();
    let all = cluster.plan.services[0].replicas.clone();
    // By size, by method: one value per repetition.
    let mut seen: Vec<[Vec<One>; 3]> = sizes.iter().map(|_| Default::default()).collect();
    for _ in 0..options.reps {
        for (h, how) in HOWS.iter().enumerate() {
            // Groups side by side while they fit (one restart for them all), then from the start.
            let mut down: Vec<String> = vec![];
            for (s, &n) in sizes.iter().enumerate() {
                if down.len() + n > all.len() {
                    restart(cluster, &down).await?;
                    down.clear();
                }
                let targets = all[down.len()..down.len() + n].to_vec();
                let started = std::time::Instant::now();
                seen[s][h].push(kill_once(cluster, &targets, *how).await?);
                tracing::info!("bench: kill of {n} by {how:?} measured in {:.1}s", started.elapsed().as_secs_f64());
                down.extend(targets);
            }
            restart(cluster, &down).await?;
        }
    }
    let rows = sizes.iter().zip(seen).map(|(&n, [p, a, c])| KillRow {
        n,
        pidfd: method(&p),
        api: method(&a),
        cli: method(&c),
    });
    let fault_apply = timing::fault_apply(cluster, options).await?;
    let probe_lag = timing::probe_lag(cluster, options).await?;
    Ok((rows.collect(), fault_apply, probe_lag))
}

fn method(ones: &[One]) -> Method {
    Method {
        exit_spread_ms: Stats::of(ones.iter().map(|o| o.0)),
        signal_spread_ms: Stats::of(ones.iter().filter_map(|o| o.1)),
        die_spread_ms: Stats::of(ones.iter().filter_map(|o| o.2)),
    }
}

fn spread(times: &[Nanos]) -> f64 {
    let (min, max) = (times.iter().min(), times.iter().max());
    min.zip(max).map_or(f64::NAN, |(a, b)| (b - a) as f64 / 1e6)
}

/// Kills `targets` by `how` and measures it.
async fn kill_once(cluster: &Cluster, targets: &[String], how: How) -> Result<One> {
    let since = now();
    if how == How::Pidfd {
        let k = cluster.kill_together(targets, Signal::Kill).await?;
        let ms = |ns: Option<Nanos>| ns.map(|n| n as f64 / 1e6);
        let die = cluster.die_event_spread(targets, since).await;
        return Ok((ms(k.exit_skew).unwrap_or(f64::NAN), ms(k.signal_spread), die));
    }
    let looks = targets.iter().map(|r| cluster.engine.state(r));
    let mut pids = vec![];
    for look in futures_util::future::join_all(looks).await {
        pids.push(look?.1 as i32);
    }
    let (ready, polling) = tokio::sync::oneshot::channel();
    let watcher = tokio::task::spawn_blocking(move || {
        signal::watch_exits(&pids, Duration::from_secs(20), move || {
            let _ = ready.send(());
        })
    });
    let _ = polling.await;
    let since = now();
    let killed = match how {
        How::Api => api_kill(cluster, targets).await,
        _ => raw::kill(&cluster.engine, targets, "KILL").await,
    };
    let exits = watcher.await.expect("exit watcher panicked");
    killed?;
    let (reaped, exited) = exits.map_err(HarnessError::io("watch the containers' exits"))?;
    let signals = cluster.event_spread(targets, since, "kill").await;
    let die = cluster.die_event_spread(targets, since).await;
    Ok((spread(exited.as_deref().unwrap_or(&reaped)), signals, die))
}

/// Every target's kill through the Engine API at once.
async fn api_kill(cluster: &Cluster, targets: &[String]) -> Result<()> {
    let kills = targets.iter().map(|r| cluster.engine.api_kill(r, "SIGKILL"));
    futures_util::future::join_all(kills).await.into_iter().collect()
}

/// Starts the killed targets again and waits until they are ready.
async fn restart(cluster: &Cluster, targets: &[String]) -> Result<()> {
    cluster.start_stopped(targets).await?;
    let service = &cluster.plan.services[0];
    cluster
        .wait_ready(service, targets, Duration::from_secs(120))
        .await
        .map(|_| ())
}
