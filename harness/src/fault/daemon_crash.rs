//! The daemon-crash fault: SIGKILL of each selected machine's dockerd, one machine after another
//! `gap` apart (the journald fix of 2016 restarted dockerd on every machine in quick succession).
//! The machine's init brings dockerd back; the fault measures each engine's unavailability window
//! (from the kill to the first `/_ping` that answers) and is healed when every engine answers.
//!
//! Its target is a machine service (the selected machines), or a service placed on machines
//! (the machines of the selected replicas). A machine of the run is killed through the host's
//! engine (an exec in its container); a machine known by URL through its own engine alone: a
//! helper container in the machine's PID namespace sends the SIGKILL (`engine::machine_tool`).

use super::{Action, Cx, Step};
use crate::cluster::Cluster;
use crate::engine::inner::Inner;
use crate::engine::machine_tool::{self, HOST_ROOT};
use crate::error::{HarnessError, Result};
use crate::scenario::plan::{Fault, Machine, MachineEngine};
use crate::timeline::{now, Event, EventKind, Metric, Nanos};
use std::time::{Duration, Instant};

/// The longest an engine may take to come back before the heal gives up.
const BACK_WITHIN: Duration = Duration::from_secs(120);
/// How dockerd is killed inside the machine (the pid file dockerd writes).
const KILL: &str = "kill -KILL $(cat /var/run/docker.pid)";

/// SIGKILL of each selected machine's dockerd, `gap` apart; their init brings it back. It
/// heals itself: healed when every engine answers again.
pub(crate) struct DaemonCrash {
    pub gap: Duration,
}

impl Action for DaemonCrash {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(carry_out(cx.cluster, cx.fault, cx.targets, self.gap))
    }

    fn heals_itself(&self) -> bool {
        true
    }
}

/// Crashes every target's dockerd in turn, measures and heals; records applied and healed.
async fn carry_out(
    cluster: &Cluster,
    fault: &Fault,
    targets: &[String],
    gap: Duration,
) -> Result<()> {
    let machines = machines_of(cluster, targets);
    let names: Vec<String> = machines.iter().map(|m| m.name.clone()).collect();
    // The crash reaches whatever runs on those machines: their replicas are its targets too.
    let replicas = names
        .iter()
        .filter(|m| cluster.plan.service_of(m).is_some());
    let mut reached: Vec<String> = replicas.cloned().collect();
    reached.extend(cluster.plan.services.iter().flat_map(|s| {
        s.replicas
            .iter()
            .zip(&s.placement)
            .filter(|(_, m)| machines.iter().any(|c| c.id == **m))
            .map(|(r, _)| r.clone())
    }));
    let targets = &names;
    cluster.timeline.record(EventKind::FaultApplied {
        fault: fault.name.clone(),
        targets: reached.clone(),
        detail: format!(
            "SIGKILL of dockerd on {} in turn, {} apart",
            targets.join(", "),
            humantime::format_duration(gap)
        ),
    });
    let start = Instant::now();
    let crashes = machines.iter().enumerate().map(|(i, m)| async move {
        tokio::time::sleep_until((start + gap * i as u32).into()).await;
        crash(cluster, fault, m).await
    });
    let crashed = futures_util::future::join_all(crashes).await;
    // The heal: every engine answers again (the init restarts dockerd; this verifies it).
    let mut missing = vec![];
    for m in &machines {
        let back = match engine_of(cluster, m).await {
            Ok(inner) => inner.wait_up(BACK_WITHIN).await.is_ok(),
            Err(_) => false,
        };
        if !back {
            missing.push(m.name.clone());
        }
    }
    let detail = if missing.is_empty() {
        format!("every engine answers again ({})", targets.join(", "))
    } else {
        format!(
            "engines still down after {BACK_WITHIN:?}: {}",
            missing.join(", ")
        )
    };
    cluster.timeline.record(EventKind::FaultHealed {
        fault: fault.name.clone(),
        targets: reached,
        detail,
    });
    for r in crashed {
        r?;
    }
    if !missing.is_empty() {
        return Err(HarnessError::Fault {
            fault: fault.name.clone(),
            message: format!("dockerd did not come back on {}", missing.join(", ")),
        });
    }
    Ok(())
}

/// The machines a crash takes down: the targets themselves (replicas of a machine service) or
/// the machines the targeted replicas are placed on, each once, in the targets' order.
fn machines_of<'a>(cluster: &'a Cluster, targets: &[String]) -> Vec<&'a Machine> {
    let plan = &cluster.plan;
    let mut machines: Vec<&Machine> = vec![];
    for t in targets {
        let m = plan
            .placement(t)
            .or_else(|| plan.machines.iter().find(|m| &m.name == t));
        if let Some(m) = m.filter(|m| !machines.iter().any(|o| o.id == m.id)) {
            machines.push(m);
        }
    }
    machines
}

/// A client of machine `m`'s engine.
async fn engine_of(cluster: &Cluster, m: &Machine) -> Result<Inner> {
    match &m.engine {
        MachineEngine::Started(_) => cluster.inner(&m.name),
        MachineEngine::Url { .. } => Ok(Inner {
            machine: m.name.clone(),
            docker: cluster.machine_engine(m).await?,
        }),
    }
}

/// Sends the SIGKILL to machine `m`'s dockerd: an exec in a machine of the run, a helper in
/// the machine's PID namespace on a machine known by URL (it goes down with the daemon).
async fn kill(cluster: &Cluster, fault: &Fault, m: &Machine) -> Result<()> {
    let (code, output) = match &m.engine {
        MachineEngine::Started(_) => {
            cluster
                .engine
                .exec_to_end(&m.name, &["sh", "-c", KILL])
                .await?
        }
        MachineEngine::Url { .. } => {
            let (docker, image) = cluster.helper_image(m).await?;
            let args = ["host", HOST_ROOT, "/bin/sh", "-c", KILL].map(String::from);
            machine_tool::start_on_host(&cluster.engine, &m.name, &docker, &image, &args).await?;
            (0, String::new())
        }
    };
    if code != 0 {
        return Err(HarnessError::Fault {
            fault: fault.name.clone(),
            message: format!(
                "killing dockerd on {} failed (exit {code}): {output}",
                m.name
            ),
        });
    }
    Ok(())
}

/// Kills one machine's dockerd and measures until its API answers again.
async fn crash(cluster: &Cluster, fault: &Fault, m: &Machine) -> Result<()> {
    let machine = m.name.as_str();
    let inner = engine_of(cluster, m).await?;
    let killed_at: Nanos = now();
    kill(cluster, fault, m).await?;
    let started = Instant::now();
    // The old daemon must be gone before its return is timed (a helper's kill is not synchronous).
    let mut gone = false;
    while !gone && started.elapsed() < Duration::from_secs(5) {
        gone = !inner.ping(Duration::from_millis(200)).await;
        if !gone {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    if !gone {
        return Err(HarnessError::Fault {
            fault: fault.name.clone(),
            message: format!("dockerd on {machine} still answers 5 s after its SIGKILL"),
        });
    }
    let back = inner.wait_up(BACK_WITHIN).await;
    let down = started.elapsed();
    let what = match &back {
        Ok(_) => format!(
            "{machine}'s Engine API unavailable from the SIGKILL of dockerd until /_ping answered ({:.2}s)",
            down.as_secs_f64()
        ),
        Err(_) => format!("{machine}'s Engine API did not come back within {BACK_WITHIN:?}"),
    };
    cluster.timeline.push(Event {
        at: killed_at,
        kind: EventKind::Measurement {
            name: Metric::EngineDowntime.of(&fault.name, Some(machine)),
            value: down.as_secs_f64() * 1e3,
            unit: "ms".into(),
            what,
        },
    });
    Ok(back.map(|_| ())?)
}
