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
        mode_of(&out)
    };
    tokio::time::timeout(timeout, ask)
        .await
        .unwrap_or(Err(ServiceError::Timeout))
}

/// The mode in a `srvr` answer; a member out of quorum (in an election, or cut off) answers
/// without one, "This ZooKeeper instance is not currently serving requests": `not serving`.
fn mode_of(answer: &str) -> std::result::Result<String, ServiceError> {
    if answer.contains("not currently serving requests") {
        return Ok(NOT_SERVING.into());
    }
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(|m| m.trim().to_string())
        .ok_or_else(|| ServiceError::Unexpected {
            answer: answer.lines().next().unwrap_or("").to_string(),
        })
}

/// The mode of a member that answers `srvr` but is in no quorum.
pub const NOT_SERVING: &str = "not serving";

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

#[cfg(test)]
mod tests {
    #[test]
    fn a_member_in_an_election_answers_not_serving_and_a_follower_its_mode() {
        let follower = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.5/3\nMode: follower\nNode count: 5\n";
        assert_eq!(super::mode_of(follower).unwrap(), "follower");
        let looking = "This ZooKeeper instance is not currently serving requests\n";
        assert_eq!(super::mode_of(looking).unwrap(), super::NOT_SERVING);
        assert!(super::mode_of("garbage\n").is_err());
    }
}
