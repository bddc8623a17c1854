//! The memcached probe: a key stored per sample (`set`) and read back at once (`get`), in
//! memcached's text protocol: the cache answers as a cache, not only by accepting TCP.

use super::{Miss, Sampler};
use crate::services::memcached::PORT;
use crate::services::ServiceError;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `set aftershock/<probe>/<seq>` then `get` of it on one replica, a connection per sample.
pub struct Setter {
    key: String,
    ip: String,
    timeout: Duration,
}

impl Setter {
    pub fn new(name: &str, ip: &str, timeout: Duration) -> Self {
        Self {
            key: format!("aftershock/{name}"),
            ip: ip.to_string(),
            timeout,
        }
    }

    /// Stores `value` under the probe's key and reads it back.
    async fn round_trip(&self, value: &str) -> Result<(), ServiceError> {
        let mut s = TcpStream::connect((self.ip.as_str(), PORT))
            .await
            .map_err(ServiceError::io("connect"))?;
        let key = &self.key;
        let ask = format!("set {key} 0 60 {}\r\n{value}\r\nget {key}\r\n", value.len());
        s.write_all(ask.as_bytes())
            .await
            .map_err(ServiceError::io("write"))?;
        let expected = format!(
            "STORED\r\nVALUE {key} 0 {}\r\n{value}\r\nEND\r\n",
            value.len()
        );
        let mut answer = Vec::with_capacity(expected.len());
        let mut buf = [0u8; 256];
        while answer.len() < expected.len() {
            let n = s.read(&mut buf).await.map_err(ServiceError::io("read"))?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        if answer == expected.as_bytes() {
            Ok(())
        } else {
            let answer = String::from_utf8_lossy(&answer).trim().to_string();
            Err(ServiceError::Unexpected { answer })
        }
    }
}

impl Sampler for Setter {
    async fn sample(&mut self, seq: u64) -> Result<Option<String>, Miss> {
        let value = seq.to_string();
        tokio::time::timeout(self.timeout, self.round_trip(&value))
            .await
            .unwrap_or(Err(ServiceError::Timeout))
            .map(|()| None)
            .map_err(Miss::from)
    }
}
