//! Stop: `docker stop` (SIGTERM, SIGKILL after 2 s); heal: start. Verified by the engine.

use super::common::{on_each, running};
use super::{Action, Cx, Look, Stage, Step};

/// Stops the targets.
pub(crate) struct Stop;

impl Action for Stop {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        let engine = &cx.cluster.engine;
        let how = "docker stop (SIGTERM, SIGKILL after 2 s)";
        Box::pin(on_each(cx, how, |r| engine.stop(r, 2)))
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(async move {
            let status = cx.cluster.engine.status(r).await?;
            running(&status, stage == Stage::Healed)
        })
    }
}
