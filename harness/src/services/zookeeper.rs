//! The ZooKeeper 3.8 preset: environment for the image, the `srvr` four-letter word, the
//! client connection and the configuration znode the toy API reads.

use super::{Addresses, ServiceError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zookeeper_client as zk;

pub const CLIENT_PORT: u16 = crate::scenario::Preset::Zookeeper.port();
/// The znode holding the toy API's real-time configuration.
pub const CONFIG_PATH: &str = "/aftershock/realtime";
/// ZooKeeper session timeout used by the harness's own clients (as in the notes: 6 s).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// Environment of each member (see images/zookeeper).
pub fn env(replicas: &[String]) -> Vec<Vec<String>> {
    let servers = replicas.join(",");
    (1..=replicas.len())
        .map(|i| vec![format!("ZK_MYID={i}"), format!("ZK_SERVERS={servers}")])
        .collect()
}

/// `ip:2181,ip:2181,...` for the harness's clients (addresses on the run's network).
pub fn connect_string(replicas: &[String], addresses: &Addresses) -> String {
    replicas
        .iter()
        .map(|r| format!("{}:{CLIENT_PORT}", addresses[r]))
        .collect::<Vec<_>>()
        .join(",")
}

/// Asks one member for its mode (`leader`, `follower`, `standalone`) with `srvr`.
pub async fn mode(ip: &str, timeout: Duration) -> std::result::Result<String, ServiceError> {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect((ip, CLIENT_PORT))
            .await
            .map_err(ServiceError::io("connect"))?;
        s.write_all(b"srvr")
            .await
            .map_err(ServiceError::io("write"))?;
        let mut out = String::new();
        s.read_to_string(&mut out)
            .await
            .map_err(ServiceError::io("read"))?;
        out.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
            .ok_or_else(|| ServiceError::Unexpected {
                answer: out.lines().next().unwrap_or("").to_string(),
            })
    };
    tokio::time::timeout(timeout, ask)
        .await
        .unwrap_or(Err(ServiceError::Timeout))
}

/// Every member's mode, asked concurrently (`None`: did not answer).
pub async fn modes(
    replicas: &[String],
    addresses: &Addresses,
    timeout: Duration,
) -> Vec<(String, Option<String>)> {
    let asks = replicas
        .iter()
        .map(|r| async move { (r.clone(), mode(&addresses[r], timeout).await.ok()) });
    futures_util::future::join_all(asks).await
}

/// Ready when every given member answers and the ensemble has exactly one leader (a single
/// member runs standalone).
/// `all` are every member of the ensemble, `replicas` the ones that must be in it now.
pub async fn ensemble_ready(
    all: &[String],
    replicas: &[String],
    addresses: &Addresses,
) -> std::result::Result<(), ServiceError> {
    let modes = modes(all, addresses, Duration::from_millis(500)).await;
    let leaders = modes
        .iter()
        .filter(|(_, m)| matches!(m.as_deref(), Some("leader" | "standalone")))
        .count();
    let missing: Vec<String> = modes
        .iter()
        .filter(|(r, m)| {
            replicas.contains(r)
                && !matches!(m.as_deref(), Some("leader" | "follower" | "standalone"))
        })
        .map(|(r, _)| r.clone())
        .collect();
    if leaders == 1 && missing.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Ensemble {
            leaders,
            missing,
            modes,
        })
    }
}

/// Opens a new session.
pub async fn connect(
    cluster: &str,
    timeout: Duration,
) -> std::result::Result<zk::Client, ServiceError> {
    let connect = zk::Client::connector()
        .with_session_timeout(SESSION_TIMEOUT)
        .with_connection_timeout(timeout)
        .connect(cluster);
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(source)) => Err(ServiceError::Zookeeper {
            op: "connect".into(),
            source,
        }),
        Err(_) => Err(ServiceError::at("connect")(ServiceError::Timeout)),
    }
}

pub fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// Creates the toy API's configuration znode (idempotent).
pub async fn seed_config(cluster: &str) -> std::result::Result<(), ServiceError> {
    let client = connect(cluster, Duration::from_secs(5)).await?;
    client
        .mkdir("/aftershock", &persistent())
        .await
        .map_err(|source| ServiceError::Zookeeper {
            op: "mkdir /aftershock".into(),
            source,
        })?;
    match client
        .create(CONFIG_PATH, b"pipeline=on", &persistent())
        .await
    {
        Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
        Err(source) => Err(ServiceError::Zookeeper {
            op: format!("create {CONFIG_PATH}"),
            source,
        }),
    }
}
