//! The engine "restarts" mid-run, as the harness sees it, without touching the shared host's
//! dockerd (other engineers' runs would die with it): this test process talks to the engine
//! through a socket proxy of its own (`DOCKER_HOST`), and the proxy goes away for 2 s — every
//! connection reset, the socket gone, then back. The event stream breaks, the engine does not
//! answer, then does: the run's verdicts are UNKNOWN, naming the restart, and nothing is left.
//! (What a real restart adds — the containers dying with it — is the container check's part,
//! tested in `honest_exits.rs` by a kill from outside.)

use aftershock::admin;
use aftershock::Verdict;
use aftershock::{Check, Expect, Experiment, Probe, Service};
use aftershock_model::timeline::{Cause, EventKind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// A unix-socket proxy to the real engine that can go away for a while.
struct Proxy {
    path: PathBuf,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    fn start(path: PathBuf) -> Proxy {
        let proxy = Proxy {
            path,
            tasks: Arc::default(),
        };
        proxy.listen();
        proxy
    }

    fn listen(&self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).expect("bind the proxy socket");
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let conn = tokio::spawn(async move {
                    if let Ok(mut engine) = UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Resets every connection, removes the socket, and listens again after `down`.
    async fn restart(&self, down: Duration) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.path);
        tokio::time::sleep(down).await;
        self.listen();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_restart_mid_run_makes_the_verdicts_unknown_naming_it() {
    let socket = std::env::temp_dir().join(format!("aftershock-proxy-{}.sock", std::process::id()));
    let proxy = Proxy::start(socket.clone());
    // This test binary runs this one test: the variable is this process's alone.
    std::env::set_var("DOCKER_HOST", format!("unix://{}", socket.display()));
    let secs = Duration::from_secs;
    let mut x = Experiment::new("engine-restart", secs(12)).seed(5);
    let c = x.service(
        Service::generic("c", "memcached")
            .command(&["-m", "8"])
            .ready(Check::Tcp(11211), secs(90)),
    );
    let port = x.probe(Probe::tcp("port", &c, 11211).on(c.replica(0)));
    x.expect(Expect::never_fails(&port));
    let plan = x.plan().unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let options = aftershock::RunOptions::default();
    let run = aftershock::run(&plan, &options);
    let restart = async {
        // Once the run has its container (bring-up is under a second), into the observation.
        let docker = admin::connect().await.unwrap();
        let me = format!("{}@", std::process::id());
        loop {
            let owners = admin::leftovers(&docker, None).await.unwrap().owners;
            if owners.values().any(|(pid, _)| pid.starts_with(&me)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(secs(5)).await;
        proxy.restart(secs(2)).await;
    };
    let (report, ()) = tokio::join!(run, restart);
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    aftershock_tests::show(&report);
    println!("wall time {:.1}s", started.elapsed().as_secs_f64());
    let engine_events: Vec<&str> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Unplanned {
                cause: Cause::Engine,
                detail,
                ..
            } => Some(detail.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(engine_events.len(), 1, "{engine_events:?}");
    assert!(
        engine_events[0].starts_with("the engine restarted (no answer for "),
        "{engine_events:?}"
    );
    match &report.outcomes[0].verdict {
        Verdict::Unknown { reason } => assert!(
            reason.starts_with("the engine restarted")
                && reason.ends_with("not part of the scenario"),
            "{reason}"
        ),
        other => panic!("never-fails should be unknown, naming the restart: {other:?}"),
    }
    assert!(!report.passed(), "the CLI exits 1");
    let docker = admin::connect().await.unwrap();
    let left = admin::leftovers(&docker, Some(&report.run_id))
        .await
        .unwrap()
        .count();
    assert!(left.is_empty(), "run {} left {left:?}", report.run_id);
    let _ = std::fs::remove_file(&socket);
}
