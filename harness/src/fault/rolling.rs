//! The rolling restart: one replica at a time, the leader last, each waiting to rejoin (its
//! `ready` check) before the next; each rejoin is measured. It heals as it goes.

use super::{measure, Action, Cx, Step};
use crate::error::Result;
use crate::scenario::Signal;
use crate::timeline::{EventKind, Metric};
use std::time::{Duration, Instant};

/// Restarts the targets in turn.
pub(crate) struct RollingRestart {
    pub signal: Signal,
    pub rejoin_timeout: Duration,
}

impl Action for RollingRestart {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(rolling_restart(cx, self.signal, self.rejoin_timeout))
    }

    fn holds(&self) -> bool {
        false
    }
}

/// Restarts the targets one at a time, the leader last, waiting for each to rejoin.
async fn rolling_restart(cx: &Cx<'_>, signal: Signal, rejoin_timeout: Duration) -> Result<()> {
    let (cluster, fault, targets) = (cx.cluster, cx.fault, cx.targets);
    let service = cluster.plan.service(fault.target);
    let leader =
        crate::services::leader(&cluster.engine, &cluster.plan, service, &cluster.addresses)
            .await
            .ok();
    let mut order: Vec<String> = targets
        .iter()
        .filter(|t| Some(*t) != leader.as_ref())
        .cloned()
        .collect();
    order.extend(
        targets
            .iter()
            .filter(|t| Some(*t) == leader.as_ref())
            .cloned(),
    );
    cluster.timeline.record(EventKind::FaultApplied {
        fault: fault.name.clone(),
        targets: order.clone(),
        detail: format!(
            "rolling restart in order {}, each must rejoin before the next",
            order.join(" → ")
        ),
    });
    for replica in &order {
        let one = std::slice::from_ref(replica);
        let killed_at = Instant::now();
        cluster.kill_together(one, signal).await?;
        cluster.start_stopped(one).await?;
        let waited = cluster
            .wait_ready(service, one, rejoin_timeout)
            .await
            .map_err(|e| cx.failed(format!("{replica} did not rejoin: {e}")))?;
        cluster.timeline.note(format!(
            "{}: {replica} restarted and rejoined in {:.2}s",
            fault.name,
            killed_at.elapsed().as_secs_f64()
        ));
        measure(
            cluster,
            fault,
            Metric::Rejoin,
            Some(replica),
            waited.as_secs_f64() * 1e3,
            "from start to rejoined the ensemble",
        );
    }
    Ok(())
}
