//! The generic write probe: any service's writes through templates — a command exec'd in the
//! replica or an HTTP request, `{n}` replaced by the record's number — kept in the same
//! [`Ledger`] as the ZooKeeper, datastore and PostgreSQL probes, and read back at the end by
//! the `read` template (every whole number of its output is a record present).

use super::ledger::Ledger;
use super::{Miss, Sampler};
use crate::engine::RunEngine;
use crate::scenario::plan::WriteVia;
use crate::services::generic::short;
use crate::timeline::Timeline;
use std::time::Duration;

pub struct Writer {
    ledger: Ledger,
    engine: RunEngine,
    replica: String,
    ip: String,
    via: WriteVia,
    client: reqwest::Client,
}

impl Writer {
    pub fn new(
        name: &str,
        engine: &RunEngine,
        replica: &str,
        ip: &str,
        via: WriteVia,
        timeout: Duration,
    ) -> Self {
        let client = crate::services::generic::http_client(timeout);
        Writer {
            ledger: Ledger::new(name),
            engine: engine.clone(),
            replica: replica.into(),
            ip: ip.into(),
            via,
            client,
        }
    }

    /// Writes record `n`: `Ok` on exit 0 / a 2xx.
    async fn write(&self, n: u64) -> Result<(), Miss> {
        let fill = |t: &str| {
            t.replace("{n}", &n.to_string())
                .replace("{n_base64}", &base64(n.to_string().as_bytes()))
        };
        match &self.via {
            WriteVia::Exec { write, .. } => {
                let cmd: Vec<String> = write.iter().map(|w| fill(w)).collect();
                self.exec(&cmd).await.map(|_| ())
            }
            WriteVia::Http {
                port,
                method,
                path,
                body,
                ..
            } => {
                let url = format!("http://{}:{port}{}", self.ip, fill(path));
                let method = reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|e| format!("method {method}: {e}"))?;
                let mut request = self.client.request(method, &url);
                if let Some(body) = body {
                    request = request.body(fill(body));
                }
                let response = request.send().await.map_err(short)?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    let text = response.text().await.unwrap_or_default();
                    Err(format!("{}: {}", status.as_u16(), super::whole(&text)).into())
                }
            }
        }
    }

    /// What the read template prints (or the read path answers).
    async fn read(&self) -> Result<String, Miss> {
        match &self.via {
            WriteVia::Exec { read, .. } => self.exec(read).await,
            WriteVia::Http { read, .. } if !read.is_empty() => self.exec(read).await,
            WriteVia::Http {
                port, read_path, ..
            } => {
                let url = format!("http://{}:{port}{read_path}", self.ip);
                let response = self.client.get(&url).send().await.map_err(short)?;
                let status = response.status();
                let text = response.text().await.map_err(short)?;
                if status.is_success() {
                    Ok(text)
                } else {
                    Err(format!("{}: {}", status.as_u16(), super::whole(&text)).into())
                }
            }
        }
    }

    async fn exec(&self, cmd: &[String]) -> Result<String, Miss> {
        let (code, output) =
            crate::services::generic::exec(&self.engine, &self.replica, cmd).await?;
        if code == 0 {
            Ok(output)
        } else {
            Err(format!("exit {code}: {}", super::whole(&output)).into())
        }
    }
}

/// Standard base64 with padding (`{n_base64}`: APIs that carry bytes as base64, like etcd's
/// JSON gateway).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            let c = ABC[(v >> (18 - 6 * i) & 63) as usize] as char;
            out.push(if i <= chunk.len() { c } else { '=' });
        }
    }
    out
}

/// Every whole number in `text`: the records a read-back lists.
pub fn records(text: &str) -> Vec<u64> {
    let mut found: Vec<u64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

impl Sampler for Writer {
    async fn sample(&mut self, seq: u64) -> Result<Option<String>, Miss> {
        self.ledger.sending(seq);
        let outcome = self.write(seq).await;
        self.ledger.settle(seq, outcome)
    }

    async fn read_back(self, timeline: &Timeline) {
        let Writer { ledger, .. } = self;
        let me = &Writer {
            ledger: Ledger::default(),
            ..self
        };
        ledger
            .read_back(timeline, || async {
                me.read()
                    .await
                    .map(|t| records(&t))
                    .map_err(|m| m.to_string())
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::records;

    #[test]
    fn n_base64_is_standard_base64_of_the_number() {
        assert_eq!(super::base64(b"7"), "Nw==");
        assert_eq!(super::base64(b"12"), "MTI=");
        assert_eq!(super::base64(b"123"), "MTIz");
        assert_eq!(super::base64(b"w/1234"), "dy8xMjM0");
    }

    #[test]
    fn a_read_back_lists_every_whole_number() {
        assert_eq!(records("3\n1\n2\n2\n"), vec![1, 2, 3]);
        assert_eq!(records("[{\"n\":4},{\"n\":10}]"), vec![4, 10]);
        assert!(records("none").is_empty());
    }
}
