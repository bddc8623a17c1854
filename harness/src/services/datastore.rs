//! The datastore preset: the toy API's append-only log (`datastore serve`) on TCP 7000, with
//! its data on a disk that can lose power. After a restart the harness asks it what recovery
//! found and runs its integrity checker inside the container.

use super::{Addresses, ServiceError};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const PORT: u16 = crate::scenario::Preset::Datastore.port();

/// A line-protocol connection to one datastore.
pub struct Connection {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Connection {
    pub async fn open(ip: &str) -> Result<Self, ServiceError> {
        let stream = TcpStream::connect((ip, PORT))
            .await
            .map_err(ServiceError::io("connect"))?;
        stream
            .set_nodelay(true)
            .map_err(ServiceError::io("set TCP_NODELAY"))?;
        let (r, writer) = stream.into_split();
        Ok(Connection {
            reader: BufReader::new(r),
            writer,
        })
    }

    /// Sends one request line and reads one answer line.
    pub async fn ask(&mut self, request: &str) -> Result<String, ServiceError> {
        self.writer
            .write_all(format!("{request}\n").as_bytes())
            .await
            .map_err(ServiceError::io("send"))?;
        self.line().await
    }

    pub async fn line(&mut self) -> Result<String, ServiceError> {
        let mut line = String::new();
        match self.reader.read_line(&mut line).await {
            Ok(0) => Err(ServiceError::Closed),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(ServiceError::io("read")(e)),
        }
    }

    /// Every record's payload, in log order.
    pub async fn dump(&mut self) -> Result<Vec<String>, ServiceError> {
        let mut first = self.ask("dump").await?;
        let mut out = vec![];
        for _ in 0..10_000_000 {
            if first == "end" {
                return Ok(out);
            }
            if let Some(e) = first.strip_prefix("err ") {
                return Err(ServiceError::Said(e.to_string()));
            }
            out.push(first);
            first = self.line().await?;
        }
        Err(ServiceError::Said("dump did not end".into()))
    }
}

/// `stats` of one replica as JSON.
pub async fn stats(ip: &str, timeout: Duration) -> Result<serde_json::Value, ServiceError> {
    let ask = async {
        let answer = Connection::open(ip).await?.ask("stats").await?;
        serde_json::from_str(&answer).map_err(|source| ServiceError::Json {
            what: "stats",
            source,
            answer,
        })
    };
    tokio::time::timeout(timeout, ask)
        .await
        .unwrap_or(Err(ServiceError::Timeout))
}

/// Ready when every replica answers `stats`.
pub async fn ready(replicas: &[String], addresses: &Addresses) -> Result<(), ServiceError> {
    for r in replicas {
        stats(&addresses[r], Duration::from_millis(500))
            .await
            .map_err(ServiceError::at(r))?;
    }
    Ok(())
}
