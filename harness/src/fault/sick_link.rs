//! Sick link: the selected replicas' incoming TCP connections on a port made sick with
//! Toxiproxy's toxics (`engine::sick_link`: the `sicklink` proxy in each replica's network
//! namespace, and a REDIRECT of the port to it); heal: the rule deleted, the proxy stopped
//! (connections made through it are closed with it). Only connections arriving from outside
//! the container are redirected; those established before the rule would keep their way, so
//! they are reset when it is applied (`ss -K`, counted in `fault-applied`): their clients
//! come back through the proxy, as pooled clients (a probe's HTTP client) must.
//!
//! Verified from the harness's (the host's) namespace by exchanges through the port — an
//! HTTP/1.0 GET of the service's ready path when its ready check is HTTP on that port, else
//! a connection that sends nothing and closes its write side: timed before applying (the
//! plain round trip), after applying (each toxic must show: held at least `latency − jitter`
//! per stream it covers, silent under `timeout`, cut at `limit_data`, its end `slow_close`
//! late, no faster than `bandwidth`; `reset_peer` on an idle connection: an RST after its
//! time) and after the heal (no rule left, the proxy gone, an answer in less than the
//! latency). The round trips go on the timeline as `<fault>/round-trip-{before,applied,
//! healed}-<replica>` and the reset as `<fault>/reset-after-<replica>`, in ms.

use super::common::applied;
use super::{Action, Cx, Look, Stage, Step, Unseen};
use crate::engine::sick_link::{self as link, Ended, Exchange, Proxy};
use crate::scenario::toxics::{LinkStream, Toxic};
use crate::scenario::Check;
use crate::timeline::{now, EventKind};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Makes the targets' connections on `port` sick.
pub(crate) struct SickLink {
    port: u16,
    stream: LinkStream,
    toxics: Vec<Toxic>,
    proxies: tokio::sync::Mutex<BTreeMap<String, Proxy>>,
}

impl SickLink {
    pub fn new(port: u16, stream: LinkStream, toxics: Vec<Toxic>) -> Self {
        SickLink {
            port,
            stream,
            toxics,
            proxies: Default::default(),
        }
    }
}

impl Action for SickLink {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            for r in cx.targets {
                let before = self.exchange(cx, r, false).await;
                self.record(cx, r, "before", &before);
            }
            let since = now();
            let binary = crate::engine::images::host_binary("sicklink", &cx.cluster.output)
                .await
                .map_err(|e| cx.failed(e.to_string()))?;
            let mut args = vec!["--stream".into(), self.stream.name().into()];
            args.extend(["--seed".into(), cx.seed.to_string()]);
            args.extend(self.toxics.iter().flat_map(|t| t.args()));
            let mut reset = 0;
            for r in cx.targets {
                let pid = self.pid(cx, r).await?;
                let upstream = self.address(cx, r).map_err(|e| cx.failed(e))?;
                let proxy = link::start(&binary, pid, upstream, &args)
                    .await
                    .map_err(|e| cx.failed(e.to_string()))?;
                let rule = link::rule(self.port, proxy.port, &tag(cx));
                self.proxies.lock().await.insert(r.clone(), proxy);
                link::set(pid, &rule, true)
                    .await
                    .map_err(|e| cx.failed(e.to_string()))?;
                let own = upstream.ip().to_string();
                reset += link::reset_established(pid, self.port, &own)
                    .await
                    .map_err(|e| cx.failed(e.to_string()))?;
            }
            let names: Vec<&str> = self.toxics.iter().map(Toxic::name).collect();
            let how = format!(
                "port {} redirected to the sicklink proxy in the namespace ({} on {}); {reset} connections established before reset (ss -K), to come back through it",
                self.port,
                names.join(", "),
                self.stream.name()
            );
            applied(cx, since, &how);
            Ok(())
        })
    }

    fn undo<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            for r in cx.targets {
                let status = cx.cluster.engine.status(r).await?;
                if status.running {
                    let listed = link::listed(status.pid, &tag(cx))
                        .await
                        .map_err(|e| cx.failed(e.to_string()))?;
                    for rule in listed {
                        let rule: Vec<String> =
                            rule.split_whitespace().skip(2).map(String::from).collect();
                        link::set(status.pid, &rule, false)
                            .await
                            .map_err(|e| cx.failed(e.to_string()))?;
                    }
                }
                if let Some(proxy) = self.proxies.lock().await.remove(r) {
                    proxy.stop().await;
                }
            }
            Ok(())
        })
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(async move {
            let pid = self.pid(cx, r).await.map_err(|e| e.to_string())?;
            let rules = link::listed(pid, &tag(cx))
                .await
                .map_err(|e| e.to_string())?;
            let proxy_runs = match self.proxies.lock().await.get_mut(r) {
                Some(p) => p.alive(),
                None => false,
            };
            let e = self.exchange(cx, r, false).await;
            self.record(cx, r, stage.name(), &e);
            let mut seen = vec![format!("through :{}: {}", self.port, e.words())];
            let mut wrong = vec![];
            if stage == Stage::Applied {
                if rules.len() != 1 || !proxy_runs {
                    wrong.push(format!(
                        "{} redirect rules, proxy running: {proxy_runs}",
                        rules.len()
                    ));
                }
                self.judge(&e, &mut wrong);
                if let Some(after) = self.reset_after() {
                    let idle = self.exchange(cx, r, true).await;
                    self.reset_seen(cx, r, after, &idle, &mut wrong);
                    seen.push(format!("idle connection: {}", idle.words()));
                }
            } else {
                if !rules.is_empty() || proxy_runs {
                    wrong.push(format!(
                        "{} redirect rules left, proxy running: {proxy_runs}",
                        rules.len()
                    ));
                }
                if matches!(e.ended, Ended::Silent | Ended::Failed(_)) || e.took >= self.held() {
                    wrong.push("not back to a plain round trip".into());
                }
            }
            let seen = seen.join("; ");
            if wrong.is_empty() {
                Ok(seen)
            } else {
                Err(Unseen::Shows(format!("{}; {seen}", wrong.join(", "))))
            }
        })
    }
}

impl SickLink {
    async fn pid(&self, cx: &Cx<'_>, r: &str) -> crate::error::Result<i64> {
        let status = cx.cluster.engine.status(r).await?;
        if !status.running || status.pid == 0 {
            return Err(cx.failed(format!("{r} is not running on this host")));
        }
        Ok(status.pid)
    }

    fn address(&self, cx: &Cx<'_>, r: &str) -> Result<SocketAddr, String> {
        let ip = cx
            .cluster
            .addresses
            .get(r)
            .map(String::as_str)
            .unwrap_or("");
        format!("{ip}:{}", self.port)
            .parse()
            .map_err(|_| format!("{r} has no address on the run's network ({ip:?})"))
    }

    /// One exchange through the port from the host's namespace: the service's HTTP ready
    /// request when it has one on this port (`idle`: nothing sent, nothing closed).
    async fn exchange(&self, cx: &Cx<'_>, r: &str, idle: bool) -> Exchange {
        let to = match self.address(cx, r) {
            Ok(to) => to,
            Err(e) => {
                let ended = Ended::Failed(e);
                return Exchange {
                    bytes: 0,
                    first_byte: None,
                    took: Duration::ZERO,
                    ended,
                };
            }
        };
        let svc = cx.cluster.plan.service(cx.fault.target);
        let request = match svc.ready.as_ref().map(|r| &r.check) {
            _ if idle => Some(String::new()),
            Some(Check::Http { port, path, .. }) if *port == self.port => {
                Some(format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", to.ip()))
            }
            _ => None,
        };
        link::exchange(to, request.as_deref().map(str::as_bytes), self.window()).await
    }

    /// How long an exchange may take under the toxics: what they hold, and 2 s more.
    fn window(&self) -> Duration {
        let latency = Some(self.held()).filter(|h| *h != Duration::MAX);
        let mut held = latency.unwrap_or_default() * 2;
        for t in &self.toxics {
            held += match t {
                Toxic::Timeout { after } => *after,
                Toxic::ResetPeer { after } => *after,
                Toxic::SlowClose { delay } => *delay,
                _ => Duration::ZERO,
            };
        }
        (held + Duration::from_secs(2)).min(Duration::from_secs(15))
    }

    /// The least time the latency holds an exchange: latency − jitter on each stream it covers.
    fn held(&self) -> Duration {
        let streams = if self.stream == LinkStream::Both {
            2
        } else {
            1
        };
        self.toxics
            .iter()
            .find_map(|t| match t {
                Toxic::Latency { latency, jitter } => Some((*latency - *jitter) * streams),
                _ => None,
            })
            .unwrap_or(Duration::MAX)
    }

    fn reset_after(&self) -> Option<Duration> {
        self.toxics.iter().find_map(|t| match t {
            Toxic::ResetPeer { after } => Some(*after),
            _ => None,
        })
    }

    /// What each toxic must show in an exchange through it.
    fn judge(&self, e: &Exchange, wrong: &mut Vec<String>) {
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        for t in &self.toxics {
            let problem = match t {
                Toxic::Latency { .. } if e.took < self.held() => {
                    format!(
                        "held {:.1} ms, less than the latency's {:.1} ms",
                        ms(&e.took),
                        ms(&self.held())
                    )
                }
                Toxic::Timeout { .. } if e.bytes > 0 => {
                    format!("{} B came through a timeout", e.bytes)
                }
                Toxic::Timeout { after } if e.ended != Ended::Silent && e.took < *after => {
                    format!(
                        "ended after {:.1} ms, before the timeout's {:.1} ms",
                        ms(&e.took),
                        ms(after)
                    )
                }
                Toxic::LimitData { bytes } if e.bytes as u64 > *bytes => {
                    format!("{} B came through a limit of {bytes} B", e.bytes)
                }
                Toxic::SlowClose { delay } if e.ended == Ended::Eof && e.took < *delay => {
                    format!(
                        "closed after {:.1} ms, before the slow close's {:.1} ms",
                        ms(&e.took),
                        ms(delay)
                    )
                }
                Toxic::Bandwidth { kb_per_s }
                    if e.bytes as f64 / e.took.as_secs_f64().max(1e-3)
                        > *kb_per_s as f64 * 1000.0 * 1.5
                        && e.bytes as u64 > *kb_per_s as u64 * 100 =>
                {
                    format!(
                        "{} B in {:.1} ms: faster than {kb_per_s} kB/s",
                        e.bytes,
                        ms(&e.took)
                    )
                }
                _ => continue,
            };
            wrong.push(format!("{}: {problem}", t.name()));
        }
    }

    /// Whether an idle connection was reset after `after` (recorded as a measurement).
    fn reset_seen(
        &self,
        cx: &Cx<'_>,
        r: &str,
        after: Duration,
        e: &Exchange,
        wrong: &mut Vec<String>,
    ) {
        if e.ended != Ended::Reset {
            wrong.push(format!(
                "reset_peer: an idle connection was not reset ({})",
                e.words()
            ));
            return;
        }
        measure(
            cx,
            &format!("reset-after-{r}"),
            e.took,
            "an idle connection's time to its reset",
        );
        if e.took + Duration::from_millis(5) < after {
            wrong.push(format!(
                "reset_peer: reset after {:?}, before {after:?}",
                e.took
            ));
        }
    }

    fn record(&self, cx: &Cx<'_>, r: &str, stage: &str, e: &Exchange) {
        let when = match stage {
            "before" => "before the fault",
            "applied" => "the fault on",
            _ => "the fault healed",
        };
        let what = format!(
            "an exchange through port {} of {r} from the host ({when}): {}",
            self.port,
            e.words()
        );
        measure(cx, &format!("round-trip-{stage}-{r}"), e.took, &what);
    }
}

fn measure(cx: &Cx<'_>, name: &str, took: Duration, what: &str) {
    cx.cluster.timeline.record(EventKind::Measurement {
        name: format!("{}/{name}", cx.fault.name),
        value: took.as_secs_f64() * 1e3,
        unit: "ms".into(),
        what: what.into(),
    });
}

/// The comment that tags this fault's rules (letters, digits, `-` and `_` of its name).
fn tag(cx: &Cx<'_>) -> String {
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
    format!("aftershock-sick-{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(bytes: usize, took_ms: u64, ended: Ended) -> Exchange {
        let took = Duration::from_millis(took_ms);
        Exchange {
            bytes,
            first_byte: (bytes > 0).then_some(took),
            took,
            ended,
        }
    }

    /// What `toxics` on `stream` find wrong with an exchange.
    fn wrong(stream: LinkStream, toxics: &[Toxic], e: &Exchange) -> Vec<String> {
        let link = SickLink::new(80, stream, toxics.to_vec());
        let mut wrong = vec![];
        link.judge(e, &mut wrong);
        wrong
    }

    #[test]
    fn each_toxic_must_show_in_the_exchange() {
        let ms = Duration::from_millis;
        let latency = Toxic::Latency {
            latency: ms(300),
            jitter: ms(50),
        };
        let down = LinkStream::Downstream;
        assert!(wrong(down, &[latency], &exchange(9, 260, Ended::Eof)).is_empty());
        assert_eq!(
            wrong(down, &[latency], &exchange(9, 240, Ended::Eof)).len(),
            1
        );
        let both = wrong(LinkStream::Both, &[latency], &exchange(9, 400, Ended::Eof));
        assert!(both[0].contains("500.0 ms"), "{both:?}");
        let timeout = Toxic::Timeout { after: ms(500) };
        assert!(wrong(down, &[timeout], &exchange(0, 2000, Ended::Silent)).is_empty());
        assert!(wrong(down, &[timeout], &exchange(0, 510, Ended::Eof)).is_empty());
        assert_eq!(
            wrong(down, &[timeout], &exchange(3, 510, Ended::Eof)).len(),
            1
        );
        assert_eq!(
            wrong(down, &[timeout], &exchange(0, 10, Ended::Eof)).len(),
            1
        );
        let limit = Toxic::LimitData { bytes: 100 };
        assert!(wrong(down, &[limit], &exchange(100, 1, Ended::Eof)).is_empty());
        assert_eq!(
            wrong(down, &[limit], &exchange(101, 1, Ended::Eof)).len(),
            1
        );
        let close = Toxic::SlowClose { delay: ms(300) };
        assert_eq!(wrong(down, &[close], &exchange(5, 20, Ended::Eof)).len(), 1);
        let rate = Toxic::Bandwidth { kb_per_s: 10 };
        assert!(wrong(down, &[rate], &exchange(10_000, 1000, Ended::Eof)).is_empty());
        assert_eq!(
            wrong(down, &[rate], &exchange(10_000, 100, Ended::Eof)).len(),
            1
        );
    }

    #[test]
    fn the_window_covers_what_the_toxics_hold() {
        let ms = Duration::from_millis;
        let link = SickLink::new(
            80,
            LinkStream::Both,
            vec![Toxic::ResetPeer { after: ms(500) }],
        );
        assert_eq!(link.held(), Duration::MAX, "no latency: nothing held");
        assert_eq!(link.window(), ms(2500));
    }
}
