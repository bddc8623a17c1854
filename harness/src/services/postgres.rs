//! The PostgreSQL 15 preset (images/postgres: database `aftershock`, user `postgres`, trust
//! authentication), ready when `SELECT 1` answers.

use super::{Addresses, ServiceError};
use std::time::Duration;

pub const PORT: u16 = crate::scenario::Preset::Postgres.port();

/// Ready when every replica accepts a connection and answers `SELECT 1`.
pub async fn ready(replicas: &[String], addresses: &Addresses) -> Result<(), ServiceError> {
    for r in replicas {
        let dsn = format!(
            "host={} port={PORT} user=postgres dbname=aftershock connect_timeout=1",
            addresses[r]
        );
        let ask = async {
            let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
                .await
                .map_err(|source| ServiceError::Postgres {
                op: "connect",
                source,
            })?;
            let driver = tokio::spawn(connection);
            let answer = client
                .simple_query("SELECT 1")
                .await
                .map(|_| ())
                .map_err(|source| ServiceError::Postgres {
                    op: "SELECT 1",
                    source,
                });
            drop(client);
            driver.abort();
            answer
        };
        tokio::time::timeout(Duration::from_secs(2), ask)
            .await
            .unwrap_or(Err(ServiceError::Timeout))
            .map_err(ServiceError::at(r))?;
    }
    Ok(())
}
