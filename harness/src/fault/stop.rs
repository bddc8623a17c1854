//! Stop: `docker stop` (SIGTERM, SIGKILL after 2 s); heal: start. Verified by the engine.

use super::common::{applied, running};
use super::{Action, Cx, Look, Stage, Step};
use crate::timeline::now;

/// Stops the targets.
pub(crate) struct Stop;

impl Action for Stop {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            let since = now();
            for r in cx.targets {
                cx.cluster.engine.stop(r, 2).await?;
            }
            applied(cx, since, "docker stop (SIGTERM, SIGKILL after 2 s)");
            Ok(())
        })
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(async move {
            let status = cx.cluster.engine.status(r).await.map_err(|e| e.to_string())?;
            running(&status, stage == Stage::Healed)
        })
    }
}
