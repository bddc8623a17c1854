//! Partition: the replica leaves the run's network (`docker network disconnect`), so no other
//! replica and not the harness reaches it; heal: connect again with the same address and
//! name. Verified by the network list and a TCP handshake from the harness that gets no
//! answer, then one that does (a refusal counts: it comes from the replica).

use super::common::on_each;
use super::{Action, Cx, Look, Stage, Step, Unseen};
use crate::services::generic::reach;
use std::time::Duration;

/// Cuts the targets off the run's network.
pub(crate) struct Partition {
    /// The port verification connects to.
    pub port: u16,
}

impl Action for Partition {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        let engine = &cx.cluster.engine;
        let how = "disconnected from the run's network";
        Box::pin(on_each(cx, how, |r| engine.disconnect(r)))
    }

    fn undo<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            let engine = &cx.cluster.engine;
            for r in cx.targets {
                let status = engine.status(r).await?;
                if !status.networks.contains(&engine.network_name()) {
                    engine.reconnect(r, &cx.cluster.addresses[r]).await?;
                }
            }
            Ok(())
        })
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(async move {
            let status = cx.cluster.engine.status(r).await?;
            let on = status.networks.contains(&cx.cluster.engine.network_name());
            let answer = reach(&cx.cluster.addresses[r], self.port, Duration::from_secs(1)).await;
            let ms = |t: Duration| t.as_secs_f64() * 1e3;
            match (stage == Stage::Applied, on, answer) {
                (true, false, Err(e)) => Ok(format!("off the network; {e}")),
                (false, true, Ok(t)) => {
                    Ok(format!("back on the network, answered in {:.2} ms", ms(t)))
                }
                (_, on, Ok(t)) => Err(Unseen::Shows(format!(
                    "on the network: {on}; answered in {:.2} ms",
                    ms(t)
                ))),
                (_, on, Err(e)) => Err(Unseen::Shows(format!("on the network: {on}; {e}"))),
            }
        })
    }
}
