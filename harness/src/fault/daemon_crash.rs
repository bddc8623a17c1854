//! The daemon-crash fault: SIGKILL of each selected machine's dockerd, one machine after another
//! `gap` apart (the journald fix of 2016 restarted dockerd on every machine in quick succession).
//! The machine's init brings dockerd back; the fault measures each engine's unavailability window
//! (from the kill to the first `/_ping` that answers) and is healed when every engine answers.

use super::{Action, Cx, Step};
use crate::cluster::Cluster;
use crate::error::{HarnessError, Result};
use crate::scenario::plan::Fault;
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
    // The crash reaches whatever runs on those machines: their replicas are its targets too.
    let mut reached = targets.to_vec();
    reached.extend(cluster.plan.services.iter().flat_map(|s| {
        s.replicas
            .iter()
            .zip(&s.placement)
            .filter(|(_, m)| targets.contains(&cluster.plan.machine(**m).name))
            .map(|(r, _)| r.clone())
    }));
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
    let crashes = targets.iter().enumerate().map(|(i, m)| async move {
        tokio::time::sleep_until((start + gap * i as u32).into()).await;
        crash(cluster, fault, m).await
    });
    let crashed = futures_util::future::join_all(crashes).await;
    // The heal: every engine answers again (the init restarts dockerd; this verifies it).
    let mut missing = vec![];
    for m in targets {
        let back = match cluster.inner(m) {
            Ok(inner) => inner.wait_up(BACK_WITHIN).await.is_ok(),
            Err(_) => false,
        };
        if !back {
            missing.push(m.clone());
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

/// Kills one machine's dockerd and measures until its API answers again.
async fn crash(cluster: &Cluster, fault: &Fault, machine: &str) -> Result<()> {
    let inner = cluster.inner(machine)?;
    let killed_at: Nanos = now();
    let (code, output) = cluster
        .engine
        .exec_to_end(machine, &["sh", "-c", KILL])
        .await?;
    if code != 0 {
        return Err(HarnessError::Fault {
            fault: fault.name.clone(),
            message: format!("killing dockerd on {machine} failed (exit {code}): {output}"),
        });
    }
    let started = Instant::now();
    // The kill is synchronous, but make sure the old daemon is gone before timing its return.
    while started.elapsed() < Duration::from_secs(5) && inner.ping(Duration::from_millis(200)).await
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
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
    back.map(|_| ())
}
