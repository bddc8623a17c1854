//! The generic checks — a TCP connect, an HTTP status, a command exec'd in the replica — that
//! a service's `ready` check and the `tcp`/`http`/`exec` probes share: one [`Checker`] takes
//! one attempt; bring-up polls it with a deadline, a probe samples it at its interval.

use super::{Miss, ServiceError};
use crate::engine::RunEngine;
use crate::scenario::Check;
use std::time::Duration;

/// An HTTP client whose every request is bounded by `timeout` (no TLS: the run's own network).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("an HTTP client without TLS always builds")
}

/// Runs `cmd` in `replica` to its end: its exit code and output, or why it could not run
/// (`Miss::Unobserved` when the replica's engine did not answer: nothing was seen).
pub async fn exec(
    engine: &RunEngine,
    replica: &str,
    cmd: &[String],
) -> Result<(i64, String), Miss> {
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    engine.exec_to_end(replica, &cmd).await.map_err(|e| {
        if e.silent() {
            Miss::Unobserved(e.to_string())
        } else {
            Miss::Failed(e.to_string())
        }
    })
}

/// One check against one replica, reusable (its HTTP client keeps connections).
pub struct Checker {
    engine: RunEngine,
    check: Check,
    replica: String,
    ip: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl Checker {
    /// `timeout` bounds one connect or request (an exec runs to its end).
    pub fn new(
        engine: &RunEngine,
        check: Check,
        replica: &str,
        ip: &str,
        timeout: Duration,
    ) -> Self {
        let client = http_client(timeout);
        Self {
            engine: engine.clone(),
            check,
            replica: replica.into(),
            ip: ip.into(),
            client,
            timeout,
        }
    }

    /// One attempt: `Ok(detail)` when it passed (an exec's output), else what was seen.
    pub async fn once(&self) -> Result<Option<String>, Miss> {
        match &self.check {
            Check::Tcp(port) => Ok(connect(&self.ip, *port, self.timeout).await.map(|_| None)?),
            Check::Http { port, path, status } => {
                let url = format!("http://{}:{port}{path}", self.ip);
                let response = self.client.get(&url).send().await.map_err(short)?;
                let got = response.status();
                let body = super::whole(&response.text().await.unwrap_or_default());
                let ok = match status {
                    Some(s) => got.as_u16() == *s,
                    None => got.is_success(),
                };
                if ok {
                    Ok(None)
                } else {
                    Err(format!("{}: {body}", got.as_u16()).into())
                }
            }
            Check::Exec(cmd) => {
                let (code, output) = exec(&self.engine, &self.replica, cmd).await?;
                if code == 0 {
                    // A success's output is what was observed: its first 160 characters.
                    let output: String = output.trim().chars().take(160).collect();
                    Ok((!output.is_empty()).then_some(output))
                } else {
                    // A failure's whole text (etcdctl's first warning is not its error).
                    Err(format!("exit {code}: {}", super::whole(&output)).into())
                }
            }
        }
    }
}

/// An HTTP client's error in a word or two: `timeout`, `connection refused`, else its text.
pub fn short(e: reqwest::Error) -> String {
    super::error::short_text(&e)
}

/// A TCP connection to `ip:port` accepted within `timeout`; how long the handshake took.
pub async fn connect(ip: &str, port: u16, timeout: Duration) -> Result<Duration, ServiceError> {
    handshake(ip, port, timeout, false).await
}

/// Whether `ip` answers on the network: a TCP handshake to `port` that is accepted *or
/// refused* (a reset comes from the replica's kernel) within `timeout`; how long the answer
/// took, or what happened instead (no answer, no route).
pub async fn reach(ip: &str, port: u16, timeout: Duration) -> Result<Duration, ServiceError> {
    handshake(ip, port, timeout, true).await
}

async fn handshake(
    ip: &str,
    port: u16,
    timeout: Duration,
    refused_answers: bool,
) -> Result<Duration, ServiceError> {
    let started = std::time::Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port))).await {
        Ok(Ok(_)) => Ok(started.elapsed()),
        Ok(Err(e)) if refused_answers && e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Ok(started.elapsed())
        }
        Ok(Err(source)) => Err(ServiceError::Connect {
            to: format!("{ip}:{port}"),
            source,
        }),
        Err(_) => Err(ServiceError::ConnectTimeout {
            to: format!("{ip}:{port}"),
            within: timeout,
        }),
    }
}

/// Ready when every replica's container has exited 0 (a one-shot job others wait on).
pub async fn completed(engine: &RunEngine, replicas: &[String]) -> Result<(), ServiceError> {
    let looks = replicas.iter().map(|r| async move {
        let at = ServiceError::at(r);
        let status = engine.status(r).await.map_err(|e| at(e.into()))?;
        match (status.running, status.exit_code) {
            (true, _) | (false, None) => Err(ServiceError::at(r)(ServiceError::StillRunning)),
            (false, Some(0)) => Ok(()),
            (false, Some(code)) => Err(ServiceError::at(r)(ServiceError::JobFailed(code))),
        }
    });
    futures_util::future::join_all(looks)
        .await
        .into_iter()
        .collect()
}

/// Ready when every replica's container is running (a generic service without `ready`).
pub async fn running(engine: &RunEngine, replicas: &[String]) -> Result<(), ServiceError> {
    let looks = replicas.iter().map(|r| async move {
        let status = engine
            .status(r)
            .await
            .map_err(|e| ServiceError::at(r)(e.into()))?;
        match status.running {
            true => Ok(()),
            false => Err(ServiceError::at(r)(ServiceError::NotRunning)),
        }
    });
    futures_util::future::join_all(looks)
        .await
        .into_iter()
        .collect()
}
