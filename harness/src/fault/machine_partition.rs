//! Machine partition: the machines of the selected replicas are cut off from every other
//! machine of the run, both ways, by their own firewalls — iptables DROP rules for the other
//! machines' addresses (INPUT from, OUTPUT to), put there by a helper container through the
//! machine's engine (`engine::machine_tool`). The harness still reaches every machine, so the
//! probes watch both sides. Heal: the same rules deleted. Verified from the cut machine: a TCP
//! connection to a replica on the other side fails during the cut and succeeds after.
//!
//! The same rules with iptables' `statistic` match drop only a share of the packets: that is
//! what a `netem` fault with `loss_percent` does to a service placed on machines (verified by
//! the rules the machine's firewall lists: a lossy link still connects, now and then).

use super::common::applied;
use super::{Action, Cx, Look, Stage, Step, Unseen};
use crate::engine::machine_tool::{self, HOST_ROOT};
use crate::error::Result;
use crate::scenario::plan::Machine;
use std::time::Duration;

/// How long one helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// Cuts the targets' machines off the others, or drops a share of what crosses.
pub(crate) struct MachinePartition {
    /// The port verification connects to on the other side.
    pub port: u16,
    /// Drop this share (%) of the packets at random; None: every packet (a partition).
    pub loss_percent: Option<f64>,
}

impl MachinePartition {
    /// The cut side's machines and the other side's addresses.
    fn sides<'a>(&self, cx: &'a Cx<'a>) -> (Vec<&'a Machine>, Vec<String>) {
        let plan = &cx.cluster.plan;
        let cut: Vec<&Machine> = cx
            .targets
            .iter()
            .filter_map(|r| plan.placement(r))
            .collect();
        let mut others: Vec<String> = plan
            .machines
            .iter()
            .filter(|m| !cut.iter().any(|c| c.id == m.id))
            .map(|m| cx.cluster.machine_address(m))
            .collect();
        others.sort();
        others.dedup();
        (cut, others)
    }

    /// The match and target of every rule: `-j DROP`, or a random share of it.
    fn verdict(&self) -> String {
        match self.loss_percent {
            Some(percent) => crate::engine::netns::loss_rule(percent).join(" "),
            None => "-j DROP".into(),
        }
    }

    /// Adds (`-I`) or deletes (`-D`) the DROP rules on every cut machine.
    async fn rules(&self, cx: &Cx<'_>, op: &str) -> Result<()> {
        let (cut, others) = self.sides(cx);
        let verdict = self.verdict();
        let mut script = vec![];
        for a in &others {
            script.push(format!("iptables -w {op} INPUT -s {a} {verdict}"));
            script.push(format!("iptables -w {op} OUTPUT -d {a} {verdict}"));
        }
        // Deleting tolerates a rule that is not there (a failed apply, a second heal).
        let sep = if op == "-D" { "; " } else { " && " };
        for m in cut {
            let (docker, image) = cx.cluster.helper_image(m).await?;
            let args = ["host", HOST_ROOT, "/bin/sh", "-c", &script.join(sep)].map(String::from);
            let (code, out) = machine_tool::run(
                &cx.cluster.engine,
                &m.name,
                &docker,
                &image,
                &args,
                HELPER_TIMEOUT,
            )
            .await?;
            if code != 0 && op == "-I" {
                return Err(cx.failed(format!(
                    "iptables on machine {} exited {code}: {out}",
                    m.name
                )));
            }
        }
        Ok(())
    }
}

impl Action for MachinePartition {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            let since = crate::timeline::now();
            self.rules(cx, "-I").await?;
            let (cut, others) = self.sides(cx);
            let names: Vec<&str> = cut.iter().map(|m| m.name.as_str()).collect();
            let how = match self.loss_percent {
                None => "cut off from",
                Some(_) => "drop a share of their packets to and from",
            };
            let how = format!(
                "machine(s) {} {how} {} by their firewalls{}",
                names.join(", "),
                others.join(", "),
                self.loss_percent
                    .map(|p| format!(" ({p}% at random)"))
                    .unwrap_or_default()
            );
            applied(cx, since, &how);
            Ok(())
        })
    }

    fn undo<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(self.rules(cx, "-D"))
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        if self.loss_percent.is_some() {
            return Box::pin(self.listed(cx, r, stage));
        }
        Box::pin(async move {
            let plan = &cx.cluster.plan;
            let m = plan.placement(r).ok_or("not on a machine")?;
            let service = plan.service_of(r).ok_or("no service")?;
            let peer = service
                .replicas
                .iter()
                .find(|p| !cx.targets.contains(p))
                .ok_or("no replica on the other side to connect to")?;
            let to = format!("{}:{}", cx.cluster.addresses[peer], self.port);
            let (docker, image) = cx.cluster.helper_image(m).await?;
            let args = ["connect", &to, "1000"].map(String::from);
            let run = machine_tool::run(
                &cx.cluster.engine,
                &m.name,
                &docker,
                &image,
                &args,
                HELPER_TIMEOUT,
            );
            let (code, out) = run.await?;
            let seen = format!("from machine {} to {peer} ({to}): {out}", m.name);
            // A refusal comes from the peer's machine: it is reachable.
            let reached = code == 0 || out.contains("refused");
            match (stage == Stage::Applied, reached) {
                (true, false) | (false, true) => Ok(seen),
                _ => Err(Unseen::Shows(seen)),
            }
        })
    }
}

impl MachinePartition {
    /// The random-drop rules replica `r`'s machine lists: two per other machine while the
    /// fault holds, none after.
    async fn listed(
        &self,
        cx: &Cx<'_>,
        r: &str,
        stage: Stage,
    ) -> std::result::Result<String, Unseen> {
        let m = cx.cluster.plan.placement(r).ok_or("not on a machine")?;
        let (_, others) = self.sides(cx);
        let (docker, image) = cx.cluster.helper_image(m).await?;
        let args = ["host", HOST_ROOT, "iptables", "-w", "-S"].map(String::from);
        let run = machine_tool::run(
            &cx.cluster.engine,
            &m.name,
            &docker,
            &image,
            &args,
            HELPER_TIMEOUT,
        );
        let (code, out) = run.await?;
        if code != 0 {
            return Err(format!("iptables -S on machine {} exited {code}: {out}", m.name).into());
        }
        let lossy = out
            .lines()
            .filter(|l| l.contains("statistic") && l.contains("DROP"))
            .count();
        let expected = if stage == Stage::Applied {
            2 * others.len()
        } else {
            0
        };
        let seen = format!("machine {} lists {lossy} random-drop rules", m.name);
        if lossy == expected {
            Ok(seen)
        } else {
            Err(format!("{seen}, not {expected}").into())
        }
    }
}
