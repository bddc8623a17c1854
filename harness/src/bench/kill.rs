//! Simultaneous kills of N containers by three methods, on the same containers: the harness's
//! pidfds, concurrent Engine API kills, and one `docker kill` command. Every method's exits are
//! measured the same way (pidfds and the kernel's exit records, polled on a SCHED_FIFO thread
//! that is waiting before anything is signalled). The signals' spread is the harness's own
//! for pidfds, and the spread of the engine's `kill` events for the other two; the `die`
//! events' spread is the engine's for all three. The same containers then serve [`timing`].

use super::{timing, Options, Stats};
use crate::cluster::{new_run_id, Cluster};
use crate::engine::cleanup::RunGuard;
use crate::engine::{images::ImageSet, raw, signal, Docker, RunEngine};
use crate::error::{HarnessError, Result};
use crate::scenario::plan::Plan;
use crate::timeline::{now, Nanos, Timeline};
use crate::{Experiment, Fault, Select, Service, Signal};
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

/// The memcached command of every bench container (an 8 MB cache).
pub(super) const COMMAND: [&str; 2] = ["-m", "8"];

/// memcached's port: listening on it is what "started" means for a kill target.
const PORT: u16 = 11211;

/// The kill targets and the fault-apply section's plan: `names` (containers already running)
/// attached as the replicas of one service, with one restart fault per replica.
fn plan(names: &[String], options: &Options) -> Result<Plan> {
    let mut x = Experiment::new("bench", Duration::from_secs(60)).seed(1);
    let mc = x.service(Service::attach("mc", names));
    let spacing = timing::spacing(options);
    for i in 0..names.len() {
        let at = timing::FIRST + spacing * i as u32;
        x.fault(
            Fault::restart(&format!("f{i}"), &mc, Duration::from_millis(200))
                .at(at)
                .select(Select::Named(vec![mc.replica(i).to_string()])),
        );
    }
    x.plan()
        .map_err(|e| HarnessError::io("the bench's plan")(std::io::Error::other(e)))
}

/// Starts the kill targets — `docker run -d --network none`, with the run's labels: killing
/// needs no network, and fifty containers of one network that exit and start together again
/// and again are what makes Docker 20.10 lose a network's endpoint count (moby#42119, see
/// `cleanup.rs`) — then attaches them to a cluster, measures every kill and the fault-apply
/// latency on them, and removes them (whatever happened).
pub(super) async fn run(
    docker: &Docker,
    images: &ImageSet,
    options: &Options,
) -> Result<(Vec<KillRow>, timing::Latency)> {
    let n = options.kill_sizes().into_iter().max().unwrap_or(2);
    let run_id = new_run_id();
    let guard = RunGuard::new(docker.clone(), &run_id);
    let engine = RunEngine::new(docker.clone(), &run_id, "bench");
    let measured = on_isolated(&engine, images, n, options).await;
    guard.teardown().await?;
    measured
}

async fn on_isolated(
    engine: &RunEngine,
    images: &ImageSet,
    n: usize,
    options: &Options,
) -> Result<(Vec<KillRow>, timing::Latency)> {
    let (image, command) = (images.tag("memcached")?, COMMAND.map(String::from));
    let replicas: Vec<String> = (1..=n).map(|i| format!("mc{i}")).collect();
    let names: Vec<String> = replicas.iter().map(|r| engine.container_name(r)).collect();
    let runs = replicas
        .iter()
        .map(|r| raw::run_detached(engine, r, None, image, &command));
    for started in futures_util::future::join_all(runs).await {
        started?;
    }
    let plan = plan(&names, options)?;
    let output = crate::output::default_root();
    let docker = engine.docker.clone();
    let cluster = Cluster::up(
        &output,
        docker,
        &engine.run_id,
        &plan,
        images,
        Timeline::new(),
    );
    let cluster = Arc::new(cluster.await?);
    let all = cluster.plan.services[0].replicas.clone();
    let measured = match listening(&cluster, &all).await {
        Ok(()) => measure(&cluster, options).await,
        Err(e) => Err(e),
    };
    let cluster = Arc::into_inner(cluster).expect("every task on the cluster has ended");
    cluster.down().await?;
    measured
}

async fn measure(
    cluster: &Arc<Cluster>,
    options: &Options,
) -> Result<(Vec<KillRow>, timing::Latency)> {
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
                tracing::info!(
                    "bench: kill of {n} by {how:?} measured in {:.1}s",
                    started.elapsed().as_secs_f64()
                );
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
    Ok((rows.collect(), fault_apply))
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

/// How far ahead of its instant the harness's kill is armed (pidfds opened, targets hurried).
const ARM_AHEAD: Duration = Duration::from_millis(100);

/// Kills `targets` by `how` and measures it.
async fn kill_once(cluster: &Cluster, targets: &[String], how: How) -> Result<One> {
    let since = now();
    if how == How::Pidfd {
        // As a run's kill fault: armed, at an instant a little ahead.
        let at = std::time::Instant::now() + ARM_AHEAD;
        let k = cluster
            .kill_together_at(targets, Signal::Kill, Some(at))
            .await?;
        let ms = |ns: Option<Nanos>| ns.map(|n| n as f64 / 1e6);
        let die = cluster.die_event_spread(targets, since).await;
        return Ok((
            ms(k.exit_skew).unwrap_or(f64::NAN),
            ms(k.signal_spread),
            die,
        ));
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
        _ => raw::kill(&cluster.engine, targets, "KILL")
            .await
            .map_err(Into::into),
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
    let kills = targets
        .iter()
        .map(|r| cluster.engine.api_kill(r, "SIGKILL"));
    let killed: std::result::Result<(), crate::engine::EngineError> =
        futures_util::future::join_all(kills)
            .await
            .into_iter()
            .collect();
    Ok(killed?)
}

/// Starts the killed targets again and waits until each listens.
async fn restart(cluster: &Cluster, targets: &[String]) -> Result<()> {
    cluster.start_stopped(targets).await?;
    listening(cluster, targets).await
}

/// Waits (up to 120 s) until every target's memcached listens on its port — read from the
/// process's own network namespace on the host (`/proc/<pid>/net/tcp`), as the containers have
/// no network to connect through. A target killed before it has started its threads would be
/// a different process to kill.
pub(super) async fn listening(cluster: &Cluster, targets: &[String]) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut waiting = targets.to_vec();
    while !waiting.is_empty() {
        let looks = waiting.iter().map(|r| cluster.engine.state(r));
        let states = futures_util::future::join_all(looks).await;
        let mut still = vec![];
        for (r, state) in waiting.iter().zip(states) {
            let (running, pid, _) = state?;
            if !(running && listens(pid, PORT)) {
                still.push(r.clone());
            }
        }
        waiting = still;
        if !waiting.is_empty() && std::time::Instant::now() > deadline {
            let what = format!(
                "{} not listening on {PORT} within 120 s",
                waiting.join(", ")
            );
            return Err(HarnessError::io(what)(std::io::Error::other("not started")));
        }
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// Whether process `pid` has a TCP socket listening on `port` in its network namespace.
fn listens(pid: i64, port: u16) -> bool {
    let local = format!(":{port:04X}");
    ["tcp", "tcp6"].iter().any(|f| {
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
        table.lines().skip(1).any(|l| {
            let mut fields = l.split_whitespace();
            let address = fields.nth(1).unwrap_or_default();
            // The state is the fourth field; 0A is LISTEN.
            address.ends_with(&local) && fields.nth(1) == Some("0A")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_of_this_process_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listens(std::process::id() as i64, port));
        drop(l);
        assert!(!listens(std::process::id() as i64, port));
    }
}
