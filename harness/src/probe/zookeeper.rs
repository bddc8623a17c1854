//! ZooKeeper probes: the write probe (one new znode per sample, then a read-back of which
//! acknowledged writes survived) and the mode probe (`srvr` on every member).

use super::Sampler;
use crate::services::zookeeper::{self as preset, connect, connect_string, persistent};
use crate::services::Addresses;
use crate::timeline::{EventKind, Timeline};
use std::time::{Duration, Instant};
use zookeeper_client as zk;

/// Where the write probe creates its znodes.
pub const WRITES_PATH: &str = "/aftershock/writes";

/// Creates `/aftershock/writes/w-<seq>` per sample with a client that behaves well: it
/// replaces an expired session, so it measures the ensemble, not itself.
pub struct Writer {
    name: String,
    cluster: String,
    timeout: Duration,
    client: Option<zk::Client>,
    acknowledged: Vec<u64>,
    indeterminate: Vec<u64>,
}

impl Writer {
    pub fn new(name: &str, replicas: &[String], addresses: &Addresses, timeout: Duration) -> Self {
        Self {
            name: name.into(),
            cluster: connect_string(replicas, addresses),
            timeout,
            client: None,
            acknowledged: vec![],
            indeterminate: vec![],
        }
    }

    async fn client(&mut self) -> Result<&zk::Client, String> {
        let usable = self.client.as_ref().is_some_and(|c| {
            !matches!(
                c.state(),
                zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed
            )
        });
        if !usable {
            self.client = None;
            let c = connect(&self.cluster, self.timeout).await?;
            match c.mkdir(WRITES_PATH, &persistent()).await {
                Ok(()) | Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(format!("mkdir {WRITES_PATH}: {e}")),
            }
            self.client = Some(c);
        }
        Ok(self.client.as_ref().expect("set above"))
    }

    /// After the run: lists what exists and records the read-back (retrying up to 30 s).
    pub async fn read_back(mut self, timeline: &Timeline) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            self.client = None;
            let listed = match self.client().await {
                Ok(c) => c
                    .list_children(WRITES_PATH)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match listed {
                Ok(children) => {
                    let mut present: Vec<u64> = children
                        .iter()
                        .filter_map(|c| c.strip_prefix("w-").and_then(|n| n.parse().ok()))
                        .collect();
                    present.sort_unstable();
                    timeline.record(EventKind::ReadBack {
                        probe: self.name.clone(),
                        acknowledged: self.acknowledged,
                        indeterminate: self.indeterminate,
                        present,
                    });
                    return;
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        timeline.note(format!(
            "read-back of {} failed for 30 s: {last}",
            self.name
        ));
    }
}

impl Sampler for Writer {
    async fn sample(&mut self, seq: u64) -> Result<Option<String>, String> {
        let timeout = self.timeout;
        let client = self.client().await?;
        let path = format!("{WRITES_PATH}/w-{seq:010}");
        let write = client.create(&path, seq.to_string().as_bytes(), &persistent());
        // Anything but a clear success may or may not have been applied: indeterminate.
        let result = tokio::time::timeout(timeout, write).await;
        match result {
            Ok(Ok(_)) => {
                self.acknowledged.push(seq);
                Ok(None)
            }
            Ok(Err(e)) => {
                self.indeterminate.push(seq);
                if e == zk::Error::SessionExpired {
                    self.client = None;
                }
                Err(e.to_string())
            }
            Err(_) => {
                self.indeterminate.push(seq);
                Err("timeout".into())
            }
        }
    }
}

/// Asks every member for its mode; ok when one of them says `leader`.
/// (A leader that lost its followers says so for up to syncLimit × tickTime: quorum is
/// judged by the write probe, this one shows the roles.)
pub struct Modes {
    replicas: Vec<String>,
    addresses: Addresses,
    timeout: Duration,
}

impl Modes {
    pub fn new(replicas: Vec<String>, addresses: Addresses, timeout: Duration) -> Self {
        Self {
            replicas,
            addresses,
            timeout,
        }
    }
}

impl Sampler for Modes {
    async fn sample(&mut self, _seq: u64) -> Result<Option<String>, String> {
        let modes = preset::modes(&self.replicas, &self.addresses, self.timeout).await;
        let text = modes
            .iter()
            .map(|(r, m)| format!("{r}={}", m.as_deref().unwrap_or("down")))
            .collect::<Vec<_>>()
            .join(" ");
        if modes.iter().any(|(_, m)| m.as_deref() == Some("leader")) {
            Ok(Some(text))
        } else {
            Err(text)
        }
    }
}
