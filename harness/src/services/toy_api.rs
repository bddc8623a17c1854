//! The toy API preset: our own HTTP service (crate `toy-api`). It reads its real-time
//! configuration from the ZooKeeper service it `uses` (if any) and serves items from the
//! PostgreSQL service it `uses` through the memcached services it `uses` (if any).

use super::zookeeper::{CLIENT_PORT, CONFIG_PATH};
use super::{memcached, postgres, Addresses, ServiceError};
use crate::scenario::plan::{Plan, Service};
use crate::scenario::Preset;
use std::time::Duration;

pub const PORT: u16 = crate::scenario::Preset::ToyApi.port();

/// `name:port,…` of every replica of the used services of a preset (by their names on the
/// run's network).
fn members(plan: &Plan, service: &Service, preset: Preset, port: u16) -> Vec<String> {
    service
        .uses
        .iter()
        .map(|u| plan.service(*u))
        .filter(|s| s.is(preset))
        .flat_map(|s| s.replicas.iter())
        .map(|r| format!("{r}:{port}"))
        .collect()
}

/// Environment of each replica: the services it uses, by their names on the run's network.
/// Two or more memcached nodes make a mirrored cache (`TOY_CACHE_MODE`, the scenario's `env`
/// may say otherwise).
pub fn env(plan: &Plan, service: &Service) -> Vec<String> {
    let zk = members(plan, service, Preset::Zookeeper, CLIENT_PORT);
    let pg = members(plan, service, Preset::Postgres, postgres::PORT);
    let mc = members(plan, service, Preset::Memcached, memcached::PORT);
    let mut env = vec![format!("TOY_LISTEN=0.0.0.0:{PORT}")];
    if !zk.is_empty() {
        env.push(format!("TOY_ZK={}", zk.join(",")));
        env.push(format!("TOY_CONFIG_PATH={CONFIG_PATH}"));
    }
    if let Some(pg) = pg.first() {
        env.push(format!("TOY_PG={pg}"));
    }
    if !mc.is_empty() {
        let mode = if mc.len() > 1 { "mirrored" } else { "single" };
        env.push(format!("TOY_MEMCACHED={}", mc.join(",")));
        env.push(format!("TOY_CACHE_MODE={mode}"));
    }
    env
}

/// The base URL of a replica.
pub fn url(ip: &str, path: &str) -> String {
    format!("http://{ip}:{PORT}{path}")
}

/// Ready when every replica answers `/healthz` and, when it reads its configuration from
/// ZooKeeper, `/realtime` with 200: observation never starts on a half-started API.
pub async fn ready(
    replicas: &[String],
    addresses: &Addresses,
    zookeeper: bool,
) -> std::result::Result<(), ServiceError> {
    answers_ok(replicas, addresses, "/healthz").await?;
    if zookeeper {
        answers_ok(replicas, addresses, "/realtime").await?;
    }
    Ok(())
}

async fn answers_ok(
    replicas: &[String],
    addresses: &Addresses,
    path: &str,
) -> std::result::Result<(), ServiceError> {
    let client = super::generic::http_client(Duration::from_millis(500));
    for r in replicas {
        let status = client
            .get(url(&addresses[r], path))
            .send()
            .await
            .map_err(|e| ServiceError::at(r)(e.into()))?
            .status();
        if !status.is_success() {
            let path = path.to_string();
            return Err(ServiceError::at(r)(ServiceError::Path { path, status }));
        }
    }
    Ok(())
}
