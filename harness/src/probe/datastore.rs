//! The datastore append probe: one record per sample (its payload is the sample number), and
//! at the end a read-back of the log in order — which acknowledged records survived a cut.

use super::ledger::Ledger;
use super::Sampler;
use crate::services::datastore::Connection;
use crate::timeline::Timeline;

pub struct Appender {
    ledger: Ledger,
    ip: String,
    connection: Option<Connection>,
}

impl Appender {
    pub fn new(name: &str, ip: &str) -> Self {
        Appender {
            ledger: Ledger::new(name),
            ip: ip.into(),
            connection: None,
        }
    }

    /// After the run: the log's records in order, as sample numbers.
    pub async fn read_back(self, timeline: &Timeline) {
        let ip = self.ip;
        self.ledger
            .read_back(timeline, || async {
                let records = Connection::open(&ip).await?.dump().await?;
                records
                    .iter()
                    .map(|r| {
                        r.parse::<u64>()
                            .map_err(|_| format!("a record that was never written: {r:?}"))
                    })
                    .collect()
            })
            .await;
    }
}

impl Sampler for Appender {
    async fn sample(&mut self, seq: u64) -> Result<Option<String>, String> {
        if self.ledger.abandoned() {
            self.connection = None;
        }
        if self.connection.is_none() {
            // Not connected: nothing is sent, so this write is neither acknowledged nor in doubt.
            self.connection = Some(Connection::open(&self.ip).await?);
        }
        let conn = self.connection.as_mut().expect("set above");
        self.ledger.sending(seq);
        let answer = conn.ask(&format!("append {seq}")).await;
        let outcome = match answer {
            Ok(a) if a.starts_with("ok ") => Ok(()),
            Ok(a) => Err(a),
            Err(e) => {
                self.connection = None;
                Err(e)
            }
        };
        self.ledger.settle(seq, outcome)
    }
}
