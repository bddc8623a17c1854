//! The datastore append probe: one record per sample (its payload is the sample number,
//! padded to `record_bytes` when set), and at the end a read-back of the log in order — which
//! acknowledged records survived a cut.

use super::ledger::Ledger;
use super::{Miss, Sampler};
use crate::services::datastore::Connection;
use crate::services::ServiceError;
use crate::timeline::Timeline;

pub struct Appender {
    ledger: Ledger,
    ip: String,
    connection: Option<Connection>,
    record_bytes: usize,
}

impl Appender {
    pub fn new(name: &str, ip: &str, record_bytes: Option<usize>) -> Self {
        Appender {
            ledger: Ledger::new(name),
            ip: ip.into(),
            connection: None,
            record_bytes: record_bytes.unwrap_or(0),
        }
    }
}

impl Sampler for Appender {
    /// After the run: the log's records in order, as sample numbers.
    async fn read_back(self, timeline: &Timeline) {
        let ip = self.ip;
        self.ledger
            .read_back(timeline, || async {
                let records = Connection::open(&ip).await?.dump().await?;
                records
                    .iter()
                    .map(|r| {
                        r.split(' ')
                            .next()
                            .unwrap_or_default()
                            .parse::<u64>()
                            .map_err(|_| {
                                ServiceError::Said(format!(
                                    "a record that was never written: {r:?}"
                                ))
                            })
                    })
                    .collect()
            })
            .await;
    }

    async fn sample(&mut self, seq: u64) -> Result<Option<String>, Miss> {
        if self.ledger.abandoned() {
            self.connection = None;
        }
        if self.connection.is_none() {
            // Not connected: nothing is sent, so this write is neither acknowledged nor in doubt.
            self.connection = Some(Connection::open(&self.ip).await?);
        }
        let conn = self.connection.as_mut().expect("set above");
        self.ledger.sending(seq);
        let mut payload = seq.to_string();
        if payload.len() + 1 < self.record_bytes {
            payload.push(' ');
            payload.extend(std::iter::repeat_n('x', self.record_bytes - payload.len()));
        }
        let answer = conn.ask(&format!("append {payload}")).await;
        let outcome = match answer {
            Ok(a) if a.starts_with("ok ") => Ok(()),
            Ok(a) => Err(a.into()),
            Err(e) => {
                self.connection = None;
                Err(e.into())
            }
        };
        self.ledger.settle(seq, outcome)
    }
}
