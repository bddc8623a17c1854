//! ZooKeeper probes: the write probe (one new znode per sample, then a read-back of which
//! acknowledged writes survived) and the mode probe (`srvr` on every member).

use super::ledger::Ledger;
use super::{Miss, Sampler};
use crate::services::zookeeper::{self as preset, connect, connect_string, persistent};
use crate::services::{Addresses, ServiceError};
use crate::timeline::Timeline;
use std::time::{Duration, Instant};
use zookeeper_client as zk;

/// Where the write probes create their znodes: `<WRITES_PATH>/<probe>/w-<seq>`.
pub const WRITES_PATH: &str = "/aftershock/writes";

/// Creates `/aftershock/writes/w-<seq>` per sample with a client that behaves well: it
/// replaces an expired session, so it measures the ensemble, not itself.
pub struct Writer {
    ledger: Ledger,
    /// This probe's own directory (two write probes never collide).
    path: String,
    cluster: String,
    timeout: Duration,
    client: Option<zk::Client>,
}

impl Writer {
    pub fn new(name: &str, replicas: &[String], addresses: &Addresses, timeout: Duration) -> Self {
        Self {
            ledger: Ledger::new(name),
            path: format!("{WRITES_PATH}/{name}"),
            cluster: connect_string(replicas, addresses),
            timeout,
            client: None,
        }
    }

    async fn client(&mut self) -> Result<&zk::Client, ServiceError> {
        let usable = self.client.as_ref().is_some_and(|c| {
            !matches!(
                c.state(),
                zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed
            )
        });
        if !usable {
            self.client = None;
            let c = connect(&self.cluster, self.timeout).await?;
            match c.mkdir(&self.path, &persistent()).await {
                Ok(()) | Err(zk::Error::NodeExists) => {}
                Err(source) => {
                    return Err(ServiceError::Zookeeper {
                        op: format!("mkdir {}", self.path),
                        source,
                    })
                }
            }
            self.client = Some(c);
        }
        Ok(self.client.as_ref().expect("set above"))
    }
}

impl Sampler for Writer {
    /// After the run: lists what exists (with a fresh session) and records the read-back.
    async fn read_back(self, timeline: &Timeline) {
        let (cluster, timeout, path) = (self.cluster, self.timeout, self.path);
        self.ledger
            .read_back(timeline, || async {
                let c = connect(&cluster, timeout.max(Duration::from_secs(2))).await?;
                let children =
                    c.list_children(&path)
                        .await
                        .map_err(|source| ServiceError::Zookeeper {
                            op: format!("list {path}"),
                            source,
                        })?;
                let mut present: Vec<u64> = children
                    .iter()
                    .filter_map(|c| c.strip_prefix("w-").and_then(|n| n.parse().ok()))
                    .collect();
                present.sort_unstable();
                Ok::<_, ServiceError>(present)
            })
            .await;
    }

    /// Creates this sample's znode. Like a well-behaved application (Curator's retry loop),
    /// a write whose connection broke is retried within the sample's timeout — the client
    /// moves to another server — and `NodeExists` on a retry means the first attempt landed.
    async fn sample(&mut self, seq: u64) -> Result<Option<String>, Miss> {
        let deadline = Instant::now() + self.timeout;
        self.client().await?;
        let path = format!("{}/w-{seq:010}", self.path);
        self.ledger.sending(seq);
        let client = self.client.as_ref().expect("connected above");
        let mut error = zk::Error::Timeout;
        for attempt in 0..RETRIES {
            let left = deadline.saturating_duration_since(Instant::now());
            let write = client.create(&path, seq.to_string().as_bytes(), &persistent());
            error = match tokio::time::timeout(left, write).await {
                Ok(Ok(_)) => return self.ledger.settle(seq, Ok(())),
                Ok(Err(zk::Error::NodeExists)) if attempt > 0 => {
                    return self.ledger.settle(seq, Ok(()))
                }
                Ok(Err(e)) => e,
                Err(_) => zk::Error::Timeout,
            };
            let connection_broke =
                matches!(error, zk::Error::ConnectionLoss | zk::Error::Custom(_));
            if !connection_broke || Instant::now() >= deadline {
                break;
            }
        }
        if error == zk::Error::SessionExpired {
            self.client = None;
        }
        self.ledger.settle(seq, Err(error.to_string().into()))
    }
}

/// How many times one write is tried when its connection broke.
const RETRIES: u32 = 3;

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
    async fn sample(&mut self, _seq: u64) -> Result<Option<String>, Miss> {
        let modes = preset::modes(&self.replicas, &self.addresses, self.timeout).await;
        let text = modes
            .iter()
            .map(|(r, m)| format!("{r}={}", m.as_deref().unwrap_or("down")))
            .collect::<Vec<_>>()
            .join(" ");
        if modes.iter().any(|(_, m)| m.as_deref() == Some("leader")) {
            Ok(Some(text))
        } else {
            Err(Miss::Failed(text))
        }
    }
}
