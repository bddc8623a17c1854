//! Stop: `docker stop` (the service's `stop_signal`, else SIGTERM; SIGKILL after its
//! `stop_grace_period`, else 2 s); heal: start. Verified by the engine.

use super::common::{on_each, running};
use super::{Action, Cx, Look, Stage, Step};

/// Stops the targets.
pub(crate) struct Stop;

impl Action for Stop {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        let engine = &cx.cluster.engine;
        let service = cx
            .targets
            .first()
            .and_then(|r| cx.cluster.plan.service_of(r));
        let extras = service.map(|s| s.extras.clone()).unwrap_or_default();
        let grace = extras.stop_grace.map_or(2, |g| g.as_secs() as i32);
        let signal = extras.stop_signal.as_deref().unwrap_or("SIGTERM");
        let how = format!("docker stop ({signal}, SIGKILL after {grace} s)");
        Box::pin(async move { on_each(cx, &how, |r| engine.stop(r, grace)).await })
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(async move {
            let status = cx.cluster.engine.status(r).await?;
            running(&status, stage == Stage::Healed)
        })
    }
}
