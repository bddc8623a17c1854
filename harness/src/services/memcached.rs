//! The memcached preset: one cache node per replica (port 11211), ready when it answers
//! `version`. Its image also carries the leak agent that `leak` faults run inside it.

use super::{Addresses, ServiceError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const PORT: u16 = crate::scenario::Preset::Memcached.port();
/// Where the leak agent lives in the memcached image.
pub const LEAK_AGENT: &str = "/usr/local/bin/leak-agent";

/// Asks one node for its version (the memcached text protocol).
pub async fn version(ip: &str, timeout: Duration) -> Result<String, ServiceError> {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect((ip, PORT))
            .await
            .map_err(ServiceError::io("connect"))?;
        s.write_all(b"version\r\n")
            .await
            .map_err(ServiceError::io("write"))?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.map_err(ServiceError::io("read"))?;
        let answer = String::from_utf8_lossy(&buf[..n]).trim().to_string();
        match answer.strip_prefix("VERSION ") {
            Some(v) => Ok(v.to_string()),
            None => Err(ServiceError::Unexpected { answer }),
        }
    };
    tokio::time::timeout(timeout, ask)
        .await
        .unwrap_or(Err(ServiceError::Timeout))
}

/// Ready when every replica answers `version`.
pub async fn ready(replicas: &[String], addresses: &Addresses) -> Result<(), ServiceError> {
    for r in replicas {
        version(&addresses[r], Duration::from_millis(500))
            .await
            .map_err(ServiceError::at(r))?;
    }
    Ok(())
}
