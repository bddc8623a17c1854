//! The PostgreSQL side of the item store: a bounded pool of `pool` connections (a semaphore
//! plus idle connections, connected lazily, dropped when they fail) and one query whose cost
//! is fixed inside the database (`pg_sleep`), so the 2-core machine's CPU does not set it.
//! When more queries are offered than the pool can serve, callers wait for a permit: that
//! queue is how a 9 ms API becomes a seconds-long one once the cache is gone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_postgres::{Client, NoTls, Statement};
use tracing::warn;

/// The item query: a payload of `$2` × 32 bytes, after `$3` seconds spent in the database.
const ITEM_QUERY: &str = "SELECT repeat(md5($1::text), $2::int) FROM pg_sleep($3::float8)";

struct Conn {
    client: Client,
    item: Statement,
}

/// What one query cost the caller.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Time spent waiting for a connection of the pool.
    pub waited: Duration,
    /// Time spent on the query itself.
    pub query: Duration,
}

#[derive(Clone)]
pub struct Db {
    dsn: String,
    permits: Arc<Semaphore>,
    idle: Arc<Mutex<Vec<Conn>>>,
    waiting: Arc<AtomicUsize>,
    query_cost: Duration,
    value_bytes: usize,
}

impl Db {
    /// `addr` is `host:port`; user postgres, database aftershock, no password (trust).
    pub fn new(addr: &str, pool: usize, query_cost: Duration, value_bytes: usize) -> Self {
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "5432"));
        Db {
            dsn: format!(
                "host={host} port={port} user=postgres dbname=aftershock connect_timeout=5"
            ),
            permits: Arc::new(Semaphore::new(pool)),
            idle: Arc::new(Mutex::new(vec![])),
            waiting: Arc::new(AtomicUsize::new(0)),
            query_cost,
            value_bytes,
        }
    }

    /// Callers waiting for a connection right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    async fn connect(&self) -> Result<Conn, String> {
        let (client, connection) = tokio_postgres::connect(&self.dsn, NoTls)
            .await
            .map_err(|e| format!("connect to postgres: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                warn!(error = %e, "postgres connection ended");
            }
        });
        let item = client
            .prepare(ITEM_QUERY)
            .await
            .map_err(|e| format!("prepare: {e}"))?;
        Ok(Conn { client, item })
    }

    /// Reads item `id` from the database, waiting for a pooled connection first.
    pub async fn item(&self, id: u32) -> Result<(Vec<u8>, Cost), String> {
        let asked = Instant::now();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _permit = permit.map_err(|e| format!("pool closed: {e}"))?;
        let waited = asked.elapsed();
        let started = Instant::now();
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) if !c.client.is_closed() => c,
            _ => self.connect().await?,
        };
        let repeat = (self.value_bytes / 32).max(1) as i32;
        let row = conn
            .client
            .query_one(
                &conn.item,
                &[&id.to_string(), &repeat, &self.query_cost.as_secs_f64()],
            )
            .await
            .map_err(|e| format!("item query: {e}"))?;
        let payload: String = row.get(0);
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        Ok((
            payload.into_bytes(),
            Cost {
                waited,
                query: started.elapsed(),
            },
        ))
    }
}
