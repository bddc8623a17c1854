//! The memcached side of the item store: one client per node (the memcache crate has no
//! failover), every call on the blocking pool with tight timeouts, and a per-node breaker:
//! a node that failed is skipped for `retry_after`, so a dead node costs one timeout per
//! `retry_after`, not one per request.
//!
//! `single` mode reads and writes the one node. `mirrored` mode writes every node and reads
//! the key's preferred node first, then the others, on a miss, an error or a timeout — and
//! when the preferred node has not answered within the hedge delay (a node stalling under
//! memory pressure answers late rather than not at all), the next is asked too; a hit
//! on a later node is written back to the nodes that missed (read repair), so a restarted,
//! empty node refills from its mirror instead of from the database.

use futures_util::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::settings::CacheMode;

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Found on this node.
    Hit { node: String, value: Vec<u8> },
    /// No node had it (or no node was reachable: `errors` says how many failed).
    Miss { errors: usize },
}

struct Node {
    addr: String,
    client: Mutex<Option<Arc<memcache::Client>>>,
    down_until: Mutex<Option<Instant>>,
}

/// The memcached nodes of the item store.
#[derive(Clone)]
pub struct Cache {
    nodes: Arc<Vec<Node>>,
    mode: CacheMode,
    timeout: Duration,
    retry_after: Duration,
    /// Mirrored reads: how long the preferred node may take before the next is asked too.
    hedge: Duration,
}

/// A node's index and its answer to a read, boxed so that two reads can race.
type NodeRead = Pin<Box<dyn Future<Output = (usize, Result<Option<Vec<u8>>, String>)> + Send>>;

impl Cache {
    pub fn new(
        nodes: &[String],
        mode: CacheMode,
        timeout: Duration,
        retry_after: Duration,
        hedge: Duration,
    ) -> Self {
        let nodes = nodes
            .iter()
            .map(|addr| Node {
                addr: addr.clone(),
                client: Mutex::new(None),
                down_until: Mutex::new(None),
            })
            .collect();
        Cache {
            nodes: Arc::new(nodes),
            mode,
            timeout,
            retry_after,
            hedge,
        }
    }

    /// The node order for `key`: its preferred node first (a stable hash), then the others.
    fn order(&self, key: &str) -> Vec<usize> {
        let n = self.nodes.len();
        let first = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) as usize
            % n.max(1);
        (0..n).map(|i| (first + i) % n).collect()
    }

    /// Whether node `i` may be tried now: it is not marked down, or its retry time has come
    /// and this caller claimed the one trial (everyone else keeps skipping it meanwhile).
    fn may_try(&self, i: usize) -> bool {
        let mut until = self.nodes[i]
            .down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match *until {
            None => true,
            Some(u) if Instant::now() >= u => {
                *until = Some(Instant::now() + self.retry_after);
                true
            }
            Some(_) => false,
        }
    }

    fn mark(&self, i: usize, failed: bool) {
        if failed {
            warn!(node = %self.nodes[i].addr, "memcached failed; skipping it for {:?}", self.retry_after);
            *self.nodes[i]
                .client
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
        }
        let mut until = self.nodes[i]
            .down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *until = failed.then(|| Instant::now() + self.retry_after);
    }

    /// The node's client, connecting on first use (and after a failure dropped it).
    fn client(&self, i: usize) -> Result<Arc<memcache::Client>, String> {
        let node = &self.nodes[i];
        let mut slot = node.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let secs = self.timeout.as_secs_f64();
        let url = format!("memcache://{}?timeout={secs}&tcp_nodelay=true", node.addr);
        let client = memcache::Client::builder()
            .add_server(url.as_str())
            .and_then(|b| {
                b.with_max_pool_size(64)
                    .with_min_idle_conns(1)
                    .with_connection_timeout(self.timeout)
                    .build()
            })
            .map_err(|e| format!("connect {}: {e}", node.addr))?;
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Runs one blocking memcached operation on node `i`. The node's breaker is updated by
    /// the blocking task itself, so it happens even when the caller stopped waiting (a hedged
    /// read that the other node answered first). The socket timeouts bound the blocking call;
    /// the caller waits at most three timeouts.
    async fn call<T: Send + 'static>(
        &self,
        i: usize,
        op: impl FnOnce(&memcache::Client) -> Result<T, memcache::MemcacheError> + Send + 'static,
    ) -> Result<T, String> {
        let this = self.clone();
        let blocking = tokio::task::spawn_blocking(move || {
            let result = this
                .client(i)
                .and_then(|client| op(&client).map_err(|e| e.to_string()));
            this.mark(i, result.is_err());
            result
        });
        match tokio::time::timeout(self.timeout * 3, blocking).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(format!("memcached task failed: {e}")),
            Err(_) => {
                self.mark(i, true);
                Err(format!("no answer within {:?}", self.timeout * 3))
            }
        }
    }

    /// One node's answer to a read, as a boxed future (so two can race).
    fn read(&self, i: usize, key: &str) -> NodeRead {
        let (this, k) = (self.clone(), key.to_owned());
        Box::pin(async move { (i, this.call(i, move |c| c.get::<Vec<u8>>(&k)).await) })
    }

    /// The next node of `order` that may be tried now; the ones skipped count as errors.
    fn next_node(
        &self,
        order: &mut impl Iterator<Item = usize>,
        errors: &mut usize,
    ) -> Option<usize> {
        for i in order.by_ref() {
            if self.may_try(i) {
                return Some(i);
            }
            *errors += 1;
        }
        None
    }

    /// Reads `key`. Single mode: the one node, unless it is marked down. Mirrored mode: the
    /// key's preferred node first; when it has not answered within `hedge`, the next node is
    /// asked too (the first stays asked) and the first hit wins; a miss, an error or a timeout
    /// moves on to the next node.
    pub async fn get(&self, key: &str) -> Lookup {
        let mut errors = 0;
        let mut missed = vec![];
        let nodes = match self.mode {
            CacheMode::Single => 1,
            CacheMode::Mirrored => self.nodes.len(),
        };
        let mut order = self.order(key).into_iter().take(nodes);
        let mut running = FuturesUnordered::new();
        if let Some(i) = self.next_node(&mut order, &mut errors) {
            running.push(self.read(i, key));
        }
        while !running.is_empty() {
            let hedge = self.mode == CacheMode::Mirrored && running.len() == 1;
            tokio::select! {
                Some((i, result)) = running.next() => match result {
                    Ok(Some(value)) => {
                        if !missed.is_empty() {
                            self.repair(key, &value, missed);
                        }
                        return Lookup::Hit {
                            node: self.nodes[i].addr.clone(),
                            value,
                        };
                    }
                    Ok(None) => missed.push(i),
                    Err(_) => errors += 1,
                },
                () = tokio::time::sleep(self.hedge), if hedge => {}
            }
            // Either a node answered without a hit, or the only one asked is slow: ask the next.
            if running.len() < 2 {
                if let Some(j) = self.next_node(&mut order, &mut errors) {
                    running.push(self.read(j, key));
                }
            }
        }
        Lookup::Miss { errors }
    }

    /// Writes the value back to the nodes that missed it, in the background.
    fn repair(&self, key: &str, value: &[u8], nodes: Vec<usize>) {
        let this = self.clone();
        let (key, value) = (key.to_owned(), value.to_vec());
        tokio::spawn(async move { this.set_on(&key, &value, nodes).await });
    }

    /// Writes `key` to every node that is not marked down (all nodes in mirrored mode).
    pub async fn set(&self, key: &str, value: &[u8]) {
        let nodes: Vec<usize> = (0..self.nodes.len()).collect();
        self.set_on(key, value, nodes).await;
    }

    async fn set_on(&self, key: &str, value: &[u8], nodes: Vec<usize>) {
        let writes = nodes.into_iter().filter(|i| self.may_try(*i)).map(|i| {
            let (k, v) = (key.to_owned(), value.to_vec());
            async move {
                if let Err(e) = self.call(i, move |c| c.set(&k, v.as_slice(), 0)).await {
                    debug!(node = %self.nodes[i].addr, error = %e, "set failed");
                }
            }
        });
        futures_util::future::join_all(writes).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(n: usize, mode: CacheMode) -> Cache {
        let nodes: Vec<String> = (0..n).map(|i| format!("127.0.0.1:{}", 1 + i)).collect();
        Cache::new(
            &nodes,
            mode,
            Duration::from_millis(50),
            Duration::from_secs(5),
            Duration::from_millis(10),
        )
    }

    #[test]
    fn every_node_is_in_the_order_once() {
        let c = cache(3, CacheMode::Mirrored);
        for key in ["item:1", "item:2", "item:300"] {
            let mut o = c.order(key);
            o.sort();
            assert_eq!(o, vec![0, 1, 2]);
        }
        let firsts: std::collections::BTreeSet<usize> =
            (1..50).map(|i| c.order(&format!("item:{i}"))[0]).collect();
        assert!(firsts.len() > 1, "keys spread over the nodes");
    }

    #[tokio::test]
    async fn an_unreachable_node_is_a_miss_and_is_skipped_afterwards() {
        // Port 1 on 127.0.0.1 refuses at once: an error, not a hang.
        let c = cache(1, CacheMode::Single);
        assert_eq!(c.get("item:1").await, Lookup::Miss { errors: 1 });
        assert!(!c.may_try(0), "marked down");
        let started = Instant::now();
        assert_eq!(c.get("item:1").await, Lookup::Miss { errors: 1 });
        assert!(
            started.elapsed() < Duration::from_millis(20),
            "skipped, not tried"
        );
    }

    #[tokio::test]
    async fn mirrored_reads_try_every_node_once() {
        let c = cache(2, CacheMode::Mirrored);
        assert_eq!(c.get("item:7").await, Lookup::Miss { errors: 2 });
        assert!(!c.may_try(0) && !c.may_try(1), "both marked down");
        assert_eq!(c.get("item:7").await, Lookup::Miss { errors: 2 });
    }
}
