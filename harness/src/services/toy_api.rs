//! The toy API preset: our own HTTP service (crate `toy-api`) that reads its real-time
//! configuration from the ZooKeeper service it `uses`.

use super::zookeeper::{CLIENT_PORT, CONFIG_PATH};
use super::Addresses;
use crate::scenario::{Preset, Scenario, Service};
use std::time::Duration;

pub const PORT: u16 = 8080;

/// Environment of each replica: the ZooKeeper members by their names on the run's network.
pub fn env(scenario: &Scenario, service: &Service) -> Vec<String> {
    let zk = service
        .uses
        .iter()
        .filter_map(|u| scenario.service(u.get_ref()))
        .find(|s| s.preset == Preset::Zookeeper)
        .map(|s| {
            Scenario::replica_names(s)
                .iter()
                .map(|r| format!("{r}:{CLIENT_PORT}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    vec![
        format!("TOY_ZK={zk}"),
        format!("TOY_CONFIG_PATH={CONFIG_PATH}"),
        format!("TOY_LISTEN=0.0.0.0:{PORT}"),
    ]
}

/// The base URL of a replica.
pub fn url(ip: &str, path: &str) -> String {
    format!("http://{ip}:{PORT}{path}")
}

/// Ready when every replica answers `/healthz` and — it reads its configuration from
/// ZooKeeper — `/realtime` with 200, so observation never starts on a half-started API.
pub async fn ready(replicas: &[String], addresses: &Addresses) -> std::result::Result<(), String> {
    for path in ["/healthz", "/realtime"] {
        answers_ok(replicas, addresses, path).await?;
    }
    Ok(())
}

async fn answers_ok(
    replicas: &[String],
    addresses: &Addresses,
    path: &str,
) -> std::result::Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .map_err(|e| e.to_string())?;
    for r in replicas {
        let status = client
            .get(url(&addresses[r], path))
            .send()
            .await
            .map_err(|e| format!("{r}: {e}"))?
            .status();
        if !status.is_success() {
            return Err(format!("{r}: {path} answered {status}"));
        }
    }
    Ok(())
}
