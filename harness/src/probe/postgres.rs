//! The PostgreSQL insert probe: one autocommit `INSERT` per sample (acknowledged = the commit
//! returned), and at the end a read-back of which acknowledged rows survived.

use super::ledger::Ledger;
use super::{Miss, Sampler};
use crate::services::postgres::PORT;
use crate::services::ServiceError;
use crate::timeline::Timeline;
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

const TABLE: &str = "CREATE TABLE IF NOT EXISTS aftershock_writes (id bigint PRIMARY KEY)";

pub struct Inserter {
    ledger: Ledger,
    dsn: String,
    client: Option<(Client, tokio::task::JoinHandle<()>)>,
}

async fn connect(dsn: &str) -> Result<(Client, tokio::task::JoinHandle<()>), ServiceError> {
    let postgres = |op| move |source| ServiceError::Postgres { op, source };
    let (client, connection) = tokio_postgres::connect(dsn, NoTls)
        .await
        .map_err(postgres("connect"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    // Also after a cut that lost the table itself (fsync=off): the probe keeps writing.
    client
        .simple_query(TABLE)
        .await
        .map_err(postgres("create table"))?;
    Ok((client, driver))
}

impl Inserter {
    pub fn new(name: &str, ip: &str, timeout: Duration) -> Self {
        let dsn = format!(
            "host={ip} port={PORT} user=postgres dbname=aftershock connect_timeout={}",
            timeout.as_secs().max(1)
        );
        Inserter {
            ledger: Ledger::new(name),
            dsn,
            client: None,
        }
    }
}

impl Sampler for Inserter {
    /// After the run: every row's id, in order.
    async fn read_back(self, timeline: &Timeline) {
        let dsn = self.dsn;
        self.ledger
            .read_back(timeline, || async {
                let (client, driver) = connect(&dsn).await?;
                let rows = client
                    .query("SELECT id FROM aftershock_writes ORDER BY id", &[])
                    .await
                    .map_err(|source| ServiceError::Postgres {
                        op: "select",
                        source,
                    });
                driver.abort();
                Ok::<_, ServiceError>(rows?.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
            })
            .await;
    }

    async fn sample(&mut self, seq: u64) -> Result<Option<String>, Miss> {
        if self.ledger.abandoned() {
            if let Some((_, driver)) = self.client.take() {
                driver.abort();
            }
        }
        if self.client.is_none() {
            // Not connected: nothing is sent, so this write is neither acknowledged nor in doubt.
            self.client = Some(connect(&self.dsn).await?);
        }
        let (client, _) = self.client.as_ref().expect("set above");
        self.ledger.sending(seq);
        let outcome = client
            .execute(
                "INSERT INTO aftershock_writes (id) VALUES ($1)",
                &[&(seq as i64)],
            )
            .await
            .map(|_| ())
            .map_err(|e| Miss::Failed(e.to_string()));
        if outcome.is_err() {
            if let Some((_, driver)) = self.client.take() {
                driver.abort();
            }
        }
        self.ledger.settle(seq, outcome)
    }
}
