//! Cut: chosen replicas of a service cut from chosen others only (`cut_shape.rs` says who from
//! whom), by DROP rules in the receivers' own network namespaces (`engine::cut`); heal: every
//! rule the fault tagged, deleted. Verified from each side: a TCP connection from inside every
//! replica's namespace to every other replica — each cut pair gets no answer within
//! [`CONNECT_WITHIN`] while every other pair answers (a refusal counts: it comes from the peer);
//! after the heal, every pair answers and no tagged rule is left.

use super::common::applied;
use super::cut_shape::{edges, Edge};
use super::{Action, Cx, Look, Stage, Step, Unseen};
use crate::engine::cut::{self, Reached};
use crate::error::Result;
use crate::scenario::file::CutShape;
use crate::timeline::now;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long a connection waits for an answer before it counts as cut. A handshake between two
/// containers of one bridge takes well under a millisecond (tens on this loaded host); a
/// dropped SYN is first sent again after 1 s, so waiting longer proves nothing more.
pub const CONNECT_WITHIN: Duration = Duration::from_millis(900);

/// Cuts the selected replicas from others.
pub(crate) struct Cut {
    pub shape: CutShape,
    pub peers: Vec<String>,
    pub one_way: bool,
    pub port: u16,
    /// The edges applied (decided when applying: the selection and the seed are known then).
    pub edges: Mutex<Vec<Edge>>,
}

impl Action for Cut {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            let since = now();
            let replicas = self.involved(cx);
            let planned = edges(
                self.shape,
                &replicas,
                cx.targets,
                &self.peers,
                self.one_way,
                cx.seed,
            );
            if planned.is_empty() {
                return Err(cx.failed("the cut's shape cuts no pair of replicas"));
            }
            *self.edges.lock().unwrap_or_else(|e| e.into_inner()) = planned.clone();
            let pids = self.pids(cx).await?;
            for (from, to) in &planned {
                // A two-way cut drops every packet; a one-way cut only `from`'s own connections.
                let one_way = self.one_way && !planned.contains(&(to.clone(), from.clone()));
                let rule = cut::rule(&cx.cluster.addresses[from], one_way, &tag(cx));
                cut::set(pids[to], &rule, true)
                    .await
                    .map_err(|e| cx.failed(e.to_string()))?;
            }
            let how = format!(
                "iptables DROP in the receivers' namespaces ({})",
                words(&planned)
            );
            applied(cx, since, &how);
            Ok(())
        })
    }

    fn undo<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            for r in &self.involved(cx) {
                let status = cx.cluster.engine.status(r).await?;
                if !status.running {
                    continue; // a stopped container's namespace, and its rules, are gone
                }
                for listed in cut::listed(status.pid, &tag(cx))
                    .await
                    .map_err(|e| cx.failed(e.to_string()))?
                {
                    let rule: Vec<String> = listed
                        .split_whitespace()
                        .skip(2)
                        .map(String::from)
                        .collect();
                    cut::set(status.pid, &rule, false)
                        .await
                        .map_err(|e| cx.failed(e.to_string()))?;
                }
            }
            Ok(())
        })
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(async move {
            // The matrix is the service's, not one replica's: measured for the first target.
            if cx.targets.first().map(String::as_str) != Some(r) {
                return Ok(format!("see {}", cx.targets[0]));
            }
            let cut_now = match stage {
                Stage::Applied => self.edges.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                Stage::Healed => vec![],
            };
            self.matrix(cx, &cut_now).await
        })
    }
}

impl Cut {
    /// Every replica of the service, and the `peers` of other services (a group of separate
    /// services): who is cut, verified and healed.
    fn involved(&self, cx: &Cx<'_>) -> Vec<String> {
        let mut all = cx.cluster.plan.service(cx.fault.target).replicas.clone();
        all.extend(
            self.peers
                .iter()
                .filter(|p| !all.contains(p))
                .cloned()
                .collect::<Vec<_>>(),
        );
        all
    }

    /// The host PIDs of every replica involved (each must be running).
    async fn pids(&self, cx: &Cx<'_>) -> Result<BTreeMap<String, i64>> {
        let mut pids = BTreeMap::new();
        for r in &self.involved(cx) {
            let status = cx.cluster.engine.status(r).await?;
            if !status.running || status.pid == 0 {
                return Err(cx.failed(format!("{r} is not running on this host")));
            }
            pids.insert(r.clone(), status.pid);
        }
        Ok(pids)
    }

    /// Connections from every replica to every other; Ok when exactly the pairs `cut_now` get
    /// no answer and every receiver holds its rules (none after the heal).
    async fn matrix(&self, cx: &Cx<'_>, cut_now: &[Edge]) -> std::result::Result<String, Unseen> {
        let pids = self.pids(cx).await.map_err(|e| e.to_string())?;
        let pairs: Vec<(&String, &String)> = pids
            .keys()
            .flat_map(|a| pids.keys().filter(move |b| *b != a).map(move |b| (a, b)))
            .collect();
        let tries = pairs.iter().map(|(a, b)| {
            cut::connect_from(
                pids[*a],
                &cx.cluster.addresses[*b],
                self.port,
                CONNECT_WITHIN,
            )
        });
        let reached = futures_util::future::join_all(tries).await;
        let (mut wrong, mut silent, mut slowest) = (vec![], vec![], Duration::ZERO);
        for ((a, b), got) in pairs.iter().zip(reached) {
            let expect_cut = cut_now.contains(&((*a).clone(), (*b).clone()));
            match got.map_err(|e| e.to_string())? {
                Reached::Silent if expect_cut => silent.push(format!("{a}→{b}")),
                Reached::Silent => wrong.push(format!("{a}→{b} got no answer")),
                Reached::Answered(t) if expect_cut => {
                    wrong.push(format!("{a}→{b} answered in {:.1} ms", ms(t)))
                }
                Reached::Answered(t) => slowest = slowest.max(t),
            }
        }
        let rules = self.rules_held(cx, &pids, cut_now).await?;
        let answered = pairs.len() - silent.len() - wrong.len();
        let seen = format!(
            "no answer within {:.0} ms: {}; {answered} other pairs answered (slowest {:.1} ms); {rules}",
            ms(CONNECT_WITHIN),
            if silent.is_empty() { "none".into() } else { silent.join(", ") },
            ms(slowest)
        );
        if wrong.is_empty() {
            Ok(seen)
        } else {
            Err(format!("{}; {seen}", wrong.join(", ")).into())
        }
    }

    /// Whether each receiver lists as many of the fault's rules as `cut_now` puts there.
    async fn rules_held(
        &self,
        cx: &Cx<'_>,
        pids: &BTreeMap<String, i64>,
        cut_now: &[Edge],
    ) -> std::result::Result<String, Unseen> {
        let mut total = 0;
        for (r, pid) in pids {
            let held = cut::listed(*pid, &tag(cx))
                .await
                .map_err(|e| e.to_string())?;
            let want = cut_now.iter().filter(|(_, to)| to == r).count();
            if held.len() != want {
                return Err(
                    format!("{r} holds {} cut rules, not {want}: {held:?}", held.len()).into(),
                );
            }
            total += want;
        }
        Ok(format!("{total} DROP rules listed"))
    }
}

/// The comment that tags this fault's rules.
fn tag(cx: &Cx<'_>) -> String {
    rule_tag("cut", cx)
}

/// The comment that tags the firewall rules of a fault of `kind` (`aftershock-<kind>-<name>`:
/// letters, digits, `-` and `_` of its name).
pub(super) fn rule_tag(kind: &str, cx: &Cx<'_>) -> String {
    let name: String = cx
        .fault
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("aftershock-{kind}-{name}")
}

/// `a ↛ b, b ↛ a, …`
fn words(edges: &[Edge]) -> String {
    let pairs: Vec<String> = edges.iter().map(|(a, b)| format!("{a} ↛ {b}")).collect();
    pairs.join(", ")
}

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1e3
}
