//! The `leak` fault: the leaking monitoring agent of the clerk 2017-03 postmortem, run inside
//! any replica with a memory limit (Engine API exec; memory+swap equals memory). The memcached
//! image carries the agent; into any other container a statically linked build of it is
//! copied first (the engine's archive upload, as `/leak-agent`), so no tool of the image is
//! needed.
//!
//! The agent sets its own `oom_score_adj` to 0, below the 1..1000 the service's main process
//! inherits from the scenario, and memcached also holds the warm cache: both make the kernel
//! pick memcached. What the kernel did is recorded from three sources, none trusted alone:
//! the engine's `oom` event (by the event recorder), the cgroup's `oom_kill` counter (polled
//! every 5 ms while the leak runs) and the kernel log's "Killed process" line, which names the
//! victim ([`EventKind::OomKill`]). Without that line (no `/dev/kmsg` to read) the victim is
//! the process that died by SIGKILL together with a sign of the OOM killer — the engine's
//! event, the counter's rise or `State.OOMKilled` ([`decide`]): an engine that sends no `oom`
//! event (Podman's compat stream) is judged on the kernel's counter, never failed for it.
//!
//! On a replica placed on a machine the cgroup, `/proc` and the kernel log are the machine's,
//! not this host's: there the fault knows only what the machine's engine says — the `oom`
//! event on its stream and the container's death — and names the main process by the
//! engine's `Path`; the agent is left to die with the container or the heal's restart.

use super::{Action, Cx, Step};
use crate::cluster::Cluster;
use crate::engine::{images, oom, Route};
use crate::error::{HarnessError, Result};
use crate::scenario::plan::Fault;
use crate::scenario::Preset;
use crate::services::memcached::LEAK_AGENT;
use crate::timeline::{now, Event, EventKind, Metric};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(5);
/// How often a machine's engine is asked about a placed replica.
const ENGINE_POLL: Duration = Duration::from_millis(50);

/// The leak agent in the one selected replica until the kernel's OOM killer acts; the
/// replica's death is healed (started again) by the nemesis after `down_for`.
pub(crate) struct Leak {
    pub mib_per_s: u32,
    /// The longest wait for the OOM kill (then the agent is stopped and the fault healed).
    pub oom_timeout: Duration,
}

impl Action for Leak {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(self.leak(cx.cluster, cx.fault, &cx.targets[0]))
    }
}

/// The replica's main process before the leak: its host pid, command name and cgroup.
struct Main {
    pid: i64,
    command: String,
    /// The file of its cgroup's OOM counters on this host (None: on a machine).
    counters: Option<std::path::PathBuf>,
}

impl Leak {
    /// Starts the agent in `replica` and returns once the kernel acted (or `oom_timeout`
    /// passed, then the agent is stopped).
    async fn leak(&self, cluster: &Cluster, fault: &Fault, replica: &str) -> Result<()> {
        let route = cluster.engine.route(replica);
        let (_, pid, id) = cluster.engine.state(replica).await?;
        let command = match route {
            Route::Machine(_) => cluster.engine.main_command(replica).await?,
            Route::Host => std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default(),
        };
        let counters = match route {
            // Unseen counters would read as "the container stopped": UNKNOWN, never FAIL.
            Route::Host => Some(oom::counters_file(&id, pid).ok_or_else(|| HarnessError::Fault {
                fault: fault.name.clone(),
                message: format!("no memory cgroup of {replica} (container {id}, pid {pid}) found under /sys/fs/cgroup: the OOM kill could not be watched"),
            })?),
            Route::Machine(_) => None,
        };
        let main = Main {
            pid,
            command,
            counters,
        };
        let before = (main.counters.as_deref())
            .and_then(oom::counters_at)
            .unwrap_or_default();
        let since = now();
        let agent = self.start(cluster, fault, replica, &main, &route).await?;
        let (last, gone) = match route {
            Route::Host => self.watch(cluster, fault, &main, before).await,
            Route::Machine(_) => (before, self.watch_engine(cluster, replica, since).await),
        };
        let main_process = (main.pid, main.command.as_str());
        let seen = Seen {
            since,
            counter: main
                .counters
                .as_ref()
                .map(|_| (before.oom_kill, last.oom_kill)),
        };
        let victim = victim(cluster, replica, main_process, &agent, &route, seen).await?;
        if victim.is_none() {
            cluster.timeline.note(format!(
                "{}: no OOM kill within {:?} (cgroup oom_kill {} → {}); stopping the agent",
                fault.name, self.oom_timeout, before.oom_kill, last.oom_kill
            ));
        }
        stop(cluster, fault, replica, agent, gone, &route).await;
        Ok(())
    }

    /// On a machine: waits until its engine reports the replica's `oom` event or its death,
    /// or time runs out; returns whether the container is gone.
    async fn watch_engine(
        &self,
        cluster: &Cluster,
        replica: &str,
        since: crate::timeline::Nanos,
    ) -> bool {
        let deadline = Instant::now() + self.oom_timeout;
        while Instant::now() < deadline {
            let oom = cluster
                .timeline
                .container_event(replica, "oom", since)
                .is_some();
            let running = cluster
                .engine
                .state(replica)
                .await
                .map(|s| s.0)
                .unwrap_or(false);
            if oom || !running {
                return !running;
            }
            tokio::time::sleep(ENGINE_POLL).await;
        }
        false
    }

    /// Execs the agent in the replica and records `fault-applied`.
    async fn start(
        &self,
        cluster: &Cluster,
        fault: &Fault,
        replica: &str,
        main: &Main,
        route: &Route,
    ) -> Result<oom::Exec> {
        let service = cluster.plan.service(fault.target);
        let limit = service.memory_mib.unwrap_or(0);
        let rate = self.mib_per_s;
        let path = if service.is(Preset::Memcached) {
            LEAK_AGENT.to_string()
        } else {
            copy_agent(cluster, fault, replica).await?
        };
        let cmd: Vec<String> = [
            path.as_str(),
            "--rate-mib",
            &rate.to_string(),
            "--chunk-mib",
            &rate.clamp(1, 4).to_string(),
            "--max-mib",
            &(limit * 2).to_string(),
            "--oom-score-adj",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let started = now();
        let agent = cluster.engine.exec(replica, &cmd).await?;
        let (host, main_pid) = match route {
            Route::Machine(_) => ("its machine's pid", String::new()),
            Route::Host => ("host pid", format!(" (host pid {})", main.pid)),
        };
        cluster.timeline.push(Event {
            at: started,
            kind: EventKind::FaultApplied {
                fault: fault.name.clone(),
                targets: vec![replica.to_string()],
                detail: format!(
                    "leak-agent ({host} {}, oom_score_adj 0) leaks {rate} MiB/s inside {replica}; memory = memory+swap = {limit} MiB; main process {}{main_pid} oom_score_adj {}",
                    agent.pid,
                    main.command,
                    service.oom_score_adj.unwrap_or(0)
                ),
            },
        });
        Ok(agent)
    }

    /// Watches the cgroup until the OOM killer acts, the cgroup goes (the container died) or
    /// time runs out; returns the last counters and whether the cgroup went.
    async fn watch(
        &self,
        cluster: &Cluster,
        fault: &Fault,
        main: &Main,
        before: oom::OomCounters,
    ) -> (oom::OomCounters, bool) {
        let deadline = Instant::now() + self.oom_timeout;
        let mut last = before;
        while Instant::now() < deadline {
            let Some(c) = main.counters.as_deref().and_then(oom::counters_at) else {
                return (last, true);
            };
            if c.oom_kill > last.oom_kill {
                cluster.timeline.record(EventKind::Measurement {
                    name: Metric::OomKills.of(&fault.name, None),
                    value: c.oom_kill as f64,
                    unit: "kills".into(),
                    what: "the cgroup's oom_kill counter (memory.oom_control), polled every 5 ms"
                        .into(),
                });
                return (c, false);
            }
            last = c;
            tokio::time::sleep(POLL).await;
        }
        (last, false)
    }
}

/// Copies the static leak agent into a replica whose image does not carry it; its path there.
async fn copy_agent(cluster: &Cluster, fault: &Fault, replica: &str) -> Result<String> {
    let started = Instant::now();
    let binary = images::static_binary("leak-agent", &cluster.output).await?;
    cluster
        .engine
        .upload(replica, &binary, "/", "leak-agent")
        .await?;
    cluster.timeline.note(format!(
        "{}: copied the static leak-agent into {replica} as /leak-agent in {:.2}s",
        fault.name,
        started.elapsed().as_secs_f64()
    ));
    Ok("/leak-agent".into())
}

/// Whatever happened, the agent must not outlive the fault: kills it and notes its last
/// word and what the engine says.
async fn stop(
    cluster: &Cluster,
    fault: &Fault,
    replica: &str,
    agent: oom::Exec,
    gone: bool,
    route: &Route,
) {
    // On a machine the PID is the machine's: the agent dies with its container or the heal.
    let here = matches!(route, Route::Host);
    if here && agent.pid > 0 && std::fs::metadata(format!("/proc/{}", agent.pid)).is_ok() {
        // SAFETY: kill(2) on a PID the engine reported for our exec; no memory is involved.
        unsafe { libc::kill(agent.pid as i32, libc::SIGKILL) };
    }
    let output = tokio::time::timeout(Duration::from_secs(2), agent.output)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    if let Some(last_line) = output.iter().rev().find(|l| l.contains("MiB after")) {
        cluster
            .timeline
            .note(format!("{}: agent's last word: {last_line}", fault.name));
    }
    let flag = cluster
        .engine
        .oom_killed_flag(replica)
        .await
        .unwrap_or(false);
    let during = match (route, gone) {
        (Route::Host, true) => "cgroup disappeared (container stopped)",
        (Route::Host, false) => "cgroup still present",
        (Route::Machine(_), true) => "container stopped (its engine's word)",
        (Route::Machine(_), false) => "container still running (its engine's word)",
    };
    cluster.timeline.note(format!(
        "{}: {during} during the leak; State.OOMKilled = {flag} (set late and sticky: evidence only)",
        fault.name
    ));
}

/// How long after the leak's watch ended the victim is looked for: the kernel log's line
/// comes at once, the engine's account of the death may take seconds on a starved machine.
const VICTIM_WAIT: Duration = Duration::from_secs(5);

/// What the leak's watch saw: when it started, and the cgroup's oom_kill counter before the
/// leak and at its last read (None: not watched, a replica on a machine).
#[derive(Clone, Copy)]
struct Seen {
    since: crate::timeline::Nanos,
    counter: Option<(u64, u64)>,
}

/// Who the OOM killer killed: the kernel log's line for the main process or the agent, else
/// what the engine says with the cgroup's counter (see [`decide`]), asked until
/// [`VICTIM_WAIT`] passes. On a machine only the engine's word counts.
async fn victim(
    cluster: &Cluster,
    replica: &str,
    main: (i64, &str),
    agent: &oom::Exec,
    route: &Route,
    seen: Seen,
) -> Result<Option<String>> {
    let deadline = Instant::now() + VICTIM_WAIT;
    loop {
        let kernel = match route {
            Route::Host => kernel_victim(cluster, replica, main.0, agent),
            Route::Machine(_) => None,
        };
        if kernel.is_some() {
            return Ok(kernel);
        }
        let engine = engine_victim(cluster, replica, main, agent, seen, route).await?;
        if engine.is_some() || Instant::now() > deadline {
            return Ok(engine);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The kernel log's "Killed process" line for the main process or the agent, recorded.
fn kernel_victim(
    cluster: &Cluster,
    replica: &str,
    main_pid: i64,
    agent: &oom::Exec,
) -> Option<String> {
    let ours = |k: &oom::KernelKill| k.pid == main_pid || (agent.pid > 0 && k.pid == agent.pid);
    let k = oom::kernel_kills().into_iter().find(|k| ours(k))?;
    cluster.timeline.record(EventKind::OomKill {
        container: replica.to_string(),
        process: k.command.clone(),
        pid: k.pid,
        evidence: format!("kernel log: {}", k.line),
    });
    Some(k.command)
}

/// The engine's account with the cgroup's counter ([`decide`]), recorded when it names the
/// victim: the main process (the container's) or the agent (its exec's).
async fn engine_victim(
    cluster: &Cluster,
    replica: &str,
    (main_pid, main_command): (i64, &str),
    agent: &oom::Exec,
    seen: Seen,
    route: &Route,
) -> Result<Option<String>> {
    let status = cluster.engine.status(replica).await?;
    let agent_exit = cluster.engine.exec_exit_code(replica, &agent.id).await?;
    // Read after the agent's exit: a main process that took the agent with it is dying by then.
    let main_gone = matches!(route, Route::Host) && process_gone(main_pid);
    let evidence = Evidence {
        oom_event: (cluster.timeline)
            .container_event(replica, "oom", seen.since)
            .is_some(),
        counter: seen.counter,
        running: status.running,
        main_gone,
        main_exit: status.exit_code,
        oom_killed_flag: cluster.engine.oom_killed_flag(replica).await?,
        agent_exit,
    };
    let Some((who, words)) = decide(&evidence) else {
        return Ok(None);
    };
    let (process, pid) = match who {
        Victim::Main => (main_command.to_string(), main_pid),
        Victim::Agent => ("leak-agent".to_string(), agent.pid),
    };
    cluster.timeline.record(EventKind::OomKill {
        container: replica.to_string(),
        process: process.clone(),
        pid,
        evidence: words,
    });
    Ok(Some(process))
}

/// Whether process `pid` of this host is dead or dying: gone from `/proc`, a zombie, or
/// exiting (`PF_EXITING`: a PID namespace's first process waits there for the others to be
/// killed). 0: unknown, not gone.
fn process_gone(pid: i64) -> bool {
    const PF_EXITING: u64 = 0x4;
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // After the command's closing parenthesis: state, ppid, pgrp, session, tty, tpgid, flags.
    let fields: Vec<&str> = (stat.rsplit_once(')').map_or("", |(_, rest)| rest))
        .split_whitespace()
        .collect();
    let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
    matches!(fields.first(), Some(&("Z" | "X"))) || flags & PF_EXITING != 0
}

/// What the engine and the cgroup say after a leak, as evidence of an OOM kill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Evidence {
    /// The engine sent an `oom` event for the container since the leak started.
    oom_event: bool,
    /// The cgroup's oom_kill counter before the leak and at its last read (None: not watched).
    counter: Option<(u64, u64)>,
    /// The container still runs (its engine's word, which may lag its main process's death).
    running: bool,
    /// Its main process is dead on this host (`/proc`: gone, or a zombie); false on a machine.
    main_gone: bool,
    /// Its main process's last exit code (`State.ExitCode`).
    main_exit: Option<i64>,
    /// `State.OOMKilled` (set late and sticky: evidence beside another, never alone).
    oom_killed_flag: bool,
    /// The agent's exit code once its exec ended.
    agent_exit: Option<i64>,
}

/// Whose death an OOM kill explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    /// The container's main process.
    Main,
    /// The leak agent (the exec).
    Agent,
}

/// Who the OOM killer killed, and the evidence in words, when the evidence names a victim: a
/// process SIGKILLed (exit 137) — the container's main one with the container stopped, or the
/// agent with the container still running — together with a sign that the kernel's OOM killer
/// acted in its cgroup: the engine's `oom` event, the cgroup's counter rising (an engine that
/// sends no event: Podman's compat stream), or `State.OOMKilled` (for the main process).
/// None: no SIGKILL, or no sign of the OOM killer (a SIGKILL alone may be anyone's).
fn decide(e: &Evidence) -> Option<(Victim, String)> {
    let rose = e.counter.filter(|(before, last)| last > before);
    let mut signs: Vec<String> = vec![];
    if e.oom_event {
        signs.push("the engine's oom event".into());
    }
    if let Some((before, last)) = rose {
        signs.push(format!(
            "a rise of the cgroup's oom_kill counter ({before} → {last})"
        ));
    }
    let kernel_signs = signs.len();
    if e.oom_killed_flag && !e.running {
        signs.push("State.OOMKilled true".into());
    }
    let signs = signs.join(" and ");
    if !e.running && e.main_exit == Some(137) && !signs.is_empty() {
        let words =
            format!("the container's main process died by SIGKILL (exit 137), with {signs}");
        return Some((Victim::Main, words));
    }
    // The agent also dies by SIGKILL when the main process dies (the PID namespace's end).
    if e.running && !e.main_gone && e.agent_exit == Some(137) && kernel_signs > 0 {
        let words = format!(
            "the agent died by SIGKILL (exit 137) while the container kept running, with {signs}"
        );
        return Some((Victim::Agent, words));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn podman_v1() -> Evidence {
        Evidence {
            counter: Some((0, 1)),
            main_exit: Some(137),
            oom_killed_flag: true,
            ..Evidence::default()
        }
    }

    #[test]
    fn the_main_process_killed_without_the_engine_s_event() {
        let (who, words) = decide(&podman_v1()).unwrap();
        assert_eq!(who, Victim::Main);
        assert_eq!(
            words,
            "the container's main process died by SIGKILL (exit 137), with a rise of the cgroup's oom_kill counter (0 → 1) and State.OOMKilled true"
        );
        // The counter alone with the SIGKILL is enough; so is the flag (the cgroup gone
        // before the counter's rise was read).
        let counter_only = Evidence {
            oom_killed_flag: false,
            ..podman_v1()
        };
        assert_eq!(decide(&counter_only).map(|d| d.0), Some(Victim::Main));
        let flag_only = Evidence {
            counter: Some((0, 0)),
            ..podman_v1()
        };
        assert_eq!(decide(&flag_only).map(|d| d.0), Some(Victim::Main));
        // Docker's event with the death, as before.
        let docker = Evidence {
            oom_event: true,
            counter: None,
            oom_killed_flag: false,
            ..podman_v1()
        };
        let (who, words) = decide(&docker).unwrap();
        assert_eq!(who, Victim::Main);
        assert!(words.ends_with("with the engine's oom event"), "{words}");
    }

    #[test]
    fn the_agent_killed_while_the_container_runs() {
        let agent = Evidence {
            running: true,
            main_exit: None,
            agent_exit: Some(137),
            ..podman_v1()
        };
        let (who, words) = decide(&agent).unwrap();
        assert_eq!(who, Victim::Agent);
        assert!(!words.contains("OOMKilled"), "{words}");
        // The main process dead, its engine not yet aware (Podman): the agent died with it
        // (the PID namespace's end), not of the OOM killer.
        let with_main = Evidence {
            main_gone: true,
            ..agent
        };
        assert_eq!(decide(&with_main), None);
        // Docker 26 sets the flag while the container runs: not a sign for the agent alone.
        let flag = Evidence {
            counter: Some((0, 0)),
            ..agent
        };
        assert_eq!(decide(&flag), None);
    }

    #[test]
    fn a_process_is_gone_when_proc_says_so() {
        assert!(!process_gone(std::process::id() as i64));
        assert!(!process_gone(0), "unknown is not gone");
        assert!(process_gone(i32::MAX as i64));
    }

    #[test]
    fn no_victim_without_both_a_sigkill_and_a_sign_of_the_oom_killer() {
        // The counter rose, the container still runs, the agent not (yet) dead: unknown.
        let running = Evidence {
            running: true,
            main_exit: None,
            ..podman_v1()
        };
        assert_eq!(decide(&running), None);
        // A SIGKILL with no sign of the OOM killer may be anyone's.
        let killed = Evidence {
            main_exit: Some(137),
            ..Evidence::default()
        };
        assert_eq!(decide(&killed), None);
        // The OOM killer acted but the main process exited otherwise.
        let exited = Evidence {
            main_exit: Some(1),
            ..podman_v1()
        };
        assert_eq!(decide(&exited), None);
        assert_eq!(decide(&Evidence::default()), None);
    }
}
