//! Netem: delay (`tc qdisc … netem`, needs the kernel's netem qdisc) and/or drop at random
//! (an iptables `statistic` rule) the replica's packets, in its network namespace (`nsenter`
//! from the host); heal: delete both. Verified by `tc qdisc show` / `iptables -S` and by TCP
//! handshakes measured before, during and after (round trip, share lost).

use super::common::{applied, handshakes};
use super::{Action, Cx, Look, Stage, Step, Unseen};
use crate::engine::netns;
use crate::error::Result;
use crate::timeline::now;
use std::time::Duration;

/// Delays and/or drops the targets' packets.
pub(crate) struct Netem {
    pub delay: Option<Duration>,
    pub loss_percent: Option<f64>,
    /// The port the handshakes connect to.
    pub port: u16,
}

impl Action for Netem {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            let since = now();
            let mut details = vec![];
            for r in cx.targets {
                handshakes(cx, r, self.port, self.delay, "before").await;
                let dev = self.shape(cx, r, true).await?;
                details.push(format!("{r}: {dev}"));
            }
            applied(
                cx,
                since,
                &format!("{} ({})", self.words(), details.join(", ")),
            );
            Ok(())
        })
    }

    fn undo<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            for r in cx.targets {
                if cx.cluster.engine.status(r).await?.running {
                    self.shape(cx, r, false).await?;
                }
            }
            Ok(())
        })
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(self.look(cx, r, stage == Stage::Applied))
    }
}

impl Netem {
    fn words(&self) -> String {
        let mut words = vec![];
        if let Some(d) = self.delay {
            words.push(format!("tc netem delay {}", humantime::format_duration(d)));
        }
        if let Some(l) = self.loss_percent {
            words.push(format!("iptables random drop of {l}%"));
        }
        words.join(" ")
    }

    /// Adds (or removes) the delay and loss in replica `r`'s network namespace; returns the
    /// interface.
    async fn shape(&self, cx: &Cx<'_>, r: &str, add: bool) -> Result<String> {
        let (pid, dev) = netns_of(cx, r)
            .await
            .map_err(|e| cx.failed(e.to_string()))?;
        let delayed = match self.delay {
            Some(delay) if add => netns::add_delay(pid, &dev, delay).await,
            Some(_) => netns::delete_qdisc(pid, &dev).await,
            None => Ok(()),
        };
        delayed.map_err(|e| cx.failed(e.to_string()))?;
        if let Some(percent) = self.loss_percent {
            let action = if add { "-I" } else { "-D" };
            netns::loss(pid, action, percent)
                .await
                .map_err(|e| cx.failed(e.to_string()))?;
        }
        Ok(dev)
    }

    /// What the namespace holds and what handshakes see, during (`applied`) or after.
    async fn look(
        &self,
        cx: &Cx<'_>,
        r: &str,
        applied: bool,
    ) -> std::result::Result<String, Unseen> {
        let (pid, dev) = netns_of(cx, r).await?;
        let mut seen = vec![];
        if self.delay.is_some() {
            let qdisc = netns::qdisc(pid, &dev).await?;
            if qdisc.contains("netem") != applied {
                return Err(format!("tc qdisc show dev {dev}: {qdisc}").into());
            }
            seen.push(qdisc.lines().next().unwrap_or_default().to_string());
        }
        if self.loss_percent.is_some() {
            let rules = netns::loss_rules(pid).await?;
            if rules.len() != 2 * usize::from(applied) {
                return Err(format!("iptables random-drop rules: {rules:?}").into());
            }
            seen.push(format!("{} random-drop rules", rules.len()));
        }
        let label = if applied { "during" } else { "after" };
        let (rtt, lost) = handshakes(cx, r, self.port, self.delay, label).await;
        let rtt_words = rtt.map_or("no handshake answered".into(), |ms| {
            format!("round trip {ms:.1} ms")
        });
        seen.push(format!("{rtt_words}, {lost:.0}% of handshakes lost"));
        // The delay shows in the round trip (80 % of it, for timer slack), a loss of a fifth
        // or more in the handshakes; after the heal neither does.
        let delayed = match (self.delay.map(|d| d.as_secs_f64() * 1e3), rtt) {
            (Some(d), Some(ms)) if applied => ms >= 0.8 * d,
            (Some(d), Some(ms)) => ms < 0.5 * d,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let lossy = match self.loss_percent {
            Some(p) if applied && p >= 20.0 => lost > 0.0,
            Some(_) if !applied => lost == 0.0,
            _ => true,
        };
        let words = seen.join("; ");
        if delayed && lossy {
            Ok(words)
        } else {
            Err(words.into())
        }
    }
}

/// The PID of a replica's main process and the interface holding its address.
async fn netns_of(cx: &Cx<'_>, r: &str) -> std::result::Result<(i64, String), Unseen> {
    let status = cx.cluster.engine.status(r).await?;
    if !status.running {
        return Err(format!("{r} is not running").into());
    }
    let dev = netns::interface(status.pid, &cx.cluster.addresses[r]).await?;
    Ok((status.pid, dev))
}
