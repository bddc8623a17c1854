//! consul probes (HTTP API, reqwest + serde): the KV probe (does the key written before the fault
//! still hold its value?) and the leader probe (does some server know a leader?).

use super::{Miss, Sampler};
use crate::services::machine::{consul_leader, kv_get};
use std::time::Duration;

/// Reads `key` from the first machine whose consul answers; ok when it holds `expected`.
/// Fails with "key absent" when a consul answers 404: the key is gone, not unreachable.
pub struct Kv {
    pub ips: Vec<String>,
    pub key: String,
    pub expected: String,
    pub timeout: Duration,
}

impl Sampler for Kv {
    async fn sample(&mut self, _seq: u64) -> Result<Option<String>, Miss> {
        let per = self.timeout / self.ips.len().max(1) as u32;
        let mut errors = vec![];
        for ip in &self.ips {
            match kv_get(ip, &self.key, per).await {
                Ok(Some(v)) if v == self.expected => return Ok(None),
                Ok(Some(v)) => return Err(format!("key holds another value: {v:?}").into()),
                Ok(None) => return Err(format!("key absent (consul at {ip} answered 404)").into()),
                Err(e) => errors.push(format!("{ip}: {e}")),
            }
        }
        Err(format!("no consul answered: {}", errors.join("; ")).into())
    }
}

/// Asks every server for the leader; ok when one knows it.
pub struct Leader {
    pub ips: Vec<String>,
    pub timeout: Duration,
}

impl Sampler for Leader {
    async fn sample(&mut self, _seq: u64) -> Result<Option<String>, Miss> {
        let timeout = self.timeout;
        let asks = self
            .ips
            .iter()
            .map(|ip| async move { (ip, consul_leader(ip, timeout).await) });
        let answers = futures_util::future::join_all(asks).await;
        if let Some((_, Ok(leader))) = answers.iter().find(|(_, a)| a.is_ok()) {
            return Ok(Some(format!("leader {leader}")));
        }
        Err(answers
            .iter()
            .filter_map(|(ip, a)| Some(format!("{ip}: {}", a.as_ref().err()?)))
            .collect::<Vec<_>>()
            .join("; ")
            .into())
    }
}
