//! What went wrong talking to a service under test ([`ServiceError`]: one variant per kind of
//! operation, the client's error kept as the source), and why one check attempt saw nothing
//! good ([`Miss`]), with the failure text kept [`whole`]. Below `probe/`, which samples through
//! these clients: a miss of a probe is a miss of the check it runs.

use crate::engine::EngineError;
use std::time::Duration;

/// The most characters of a failure's text a sample keeps (a bound on memory, far above any
/// error message or command output a probe sees).
pub const FAILURE_TEXT: usize = 64 * 1024;

/// A failure's text as a sample keeps it: trimmed, whole up to [`FAILURE_TEXT`] characters
/// (report.json holds it; the table may shorten it).
pub fn whole(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(FAILURE_TEXT) {
        None => text.to_string(),
        Some((cut, _)) => format!(
            "{}… ({} more characters)",
            &text[..cut],
            text[cut..].chars().count()
        ),
    }
}

/// Why a client of a service (a readiness check, a set-up step, a leader query) got no good
/// answer. The text is what bring-up reports as "not ready: …".
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A socket operation (`connect`, `send`, `read`, `write`) failed.
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A TCP connect to `to` failed.
    #[error("connect {to}: {source}")]
    Connect {
        to: String,
        #[source]
        source: std::io::Error,
    },
    /// A TCP connect to `to` got no answer in time.
    #[error("connect {to}: no answer within {within:?}")]
    ConnectTimeout { to: String, within: Duration },
    /// No answer within the deadline.
    #[error("timeout")]
    Timeout,
    /// The peer closed the connection before it answered.
    #[error("connection closed")]
    Closed,
    /// An HTTP request failed: `timeout`, `connection refused`, else the client's text.
    #[error("{}", short_text(source))]
    Http {
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP answer with an unwanted status (`body`: what came with it, maybe empty).
    #[error("{status}{}{body}", if body.is_empty() { "" } else { ": " })]
    Status { status: u16, body: String },
    /// An HTTP path answered an unwanted status.
    #[error("{path} answered {status}")]
    Path {
        path: String,
        status: reqwest::StatusCode,
    },
    /// An answer the protocol does not allow (`VERSION …` expected, `Mode: …` missing).
    #[error("unexpected answer `{answer}`")]
    Unexpected { answer: String },
    /// The service reported an error of its own (a datastore's `err …`).
    #[error("{0}")]
    Said(String),
    /// An answer that should be JSON is not.
    #[error("{what}: {source}: {answer}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
        answer: String,
    },
    /// ZooKeeper's client failed `op`.
    #[error("{op}: {source}")]
    Zookeeper {
        op: String,
        #[source]
        source: zookeeper_client::Error,
    },
    /// PostgreSQL's client failed `op`.
    #[error("{op}: {source}")]
    Postgres {
        op: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The engine could not look at the replica (or run a command in it).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A check attempt that did not pass (the ready check of a service).
    #[error(transparent)]
    Check(#[from] Miss),
    /// The replica's container is not running.
    #[error("its container is not running")]
    NotRunning,
    /// A one-shot job's container is still running (it is ready once it has exited 0).
    #[error("still running (a one-shot job others wait on is ready once it has exited 0)")]
    StillRunning,
    /// A one-shot job's container exited with another code than 0.
    #[error("exited with code {0} (a one-shot job others wait on must exit 0; its output is in the run's logs)")]
    JobFailed(i64),
    /// The replica's main process exited and nothing restarts it: no readiness check can pass.
    #[error("its container exited with code {code} and no `restart` policy starts it again; its last lines: {lines}")]
    Exited { code: i64, lines: String },
    /// A ZooKeeper ensemble that is not whole yet.
    #[error("{leaders} leader(s); not yet in the ensemble: {missing:?} (modes {modes:?})")]
    Ensemble {
        leaders: usize,
        missing: Vec<String>,
        modes: Vec<(String, Option<String>)>,
    },
    /// A ZooKeeper ensemble where no member says it leads (an election in progress, or members
    /// that did not answer in time).
    #[error("no member leads: {}", said(modes))]
    Leaderless {
        modes: Vec<(String, Option<String>)>,
    },
    /// A consul server that knows no leader.
    #[error("no leader ({status})")]
    NoLeader { status: reqwest::StatusCode },
    /// What `who` (a replica, "m1's consul") answered.
    #[error("{who}: {source}")]
    At {
        who: String,
        #[source]
        source: Box<ServiceError>,
    },
    /// The first of several replicas that are not ready.
    #[error("{first} (and {more} more not ready)")]
    More {
        #[source]
        first: Box<ServiceError>,
        more: usize,
    },
    /// A set-up step that kept failing until its deadline: the last error, and the one before.
    #[error("{step}: {source} ({before})")]
    GaveUp {
        step: String,
        #[source]
        source: Box<ServiceError>,
        before: String,
    },
}

impl ServiceError {
    /// The `map_err` adapter naming who answered: `.map_err(ServiceError::at(r))?`.
    pub fn at(who: impl Into<String>) -> impl FnOnce(ServiceError) -> ServiceError {
        let who = who.into();
        move |e| ServiceError::At {
            who,
            source: Box::new(e),
        }
    }

    /// The `map_err` adapter of a socket operation: `.map_err(ServiceError::io("read"))?`.
    pub fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> ServiceError {
        move |source| ServiceError::Io { op, source }
    }
}

impl From<reqwest::Error> for ServiceError {
    fn from(source: reqwest::Error) -> Self {
        ServiceError::Http { source }
    }
}

/// Why a sample did not show the system answering as it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Miss {
    /// The system answered wrongly or not in time: a failed sample.
    #[error("{0}")]
    Failed(String),
    /// Nothing was observed: the engine the probe looks through (an exec) did not answer. The
    /// loop records an `unobserved` event, neither a success nor a failure of the system.
    #[error("not observed: {0}")]
    Unobserved(String),
}

impl From<String> for Miss {
    fn from(error: String) -> Self {
        Miss::Failed(error)
    }
}

impl From<ServiceError> for Miss {
    /// The system's answer (or its silence) is a failed sample; an engine that did not answer
    /// saw nothing (unobserved: a harness problem is never a failure of the system).
    fn from(error: ServiceError) -> Self {
        match &error {
            ServiceError::Check(miss) => miss.clone(),
            ServiceError::Engine(e) if e.silent() => Miss::Unobserved(error.to_string()),
            _ => Miss::Failed(error.to_string()),
        }
    }
}

/// An HTTP client's error in a word or two: `timeout`, `connection refused`, else its text.
pub(super) fn short_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection refused".into()
    } else {
        e.to_string()
    }
}

/// Each member's mode, or that it did not answer.
fn said(modes: &[(String, Option<String>)]) -> String {
    let one = |(r, m): &(String, Option<String>)| match m {
        Some(m) => format!("{r} {m}"),
        None => format!("{r} did not answer"),
    };
    modes.iter().map(one).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::{whole, FAILURE_TEXT};

    #[test]
    fn a_failure_keeps_its_whole_text() {
        let long = format!("{{\"level\":\"warn\"}} {}", "x".repeat(500)) + " the real error";
        assert!(whole(&long).ends_with("the real error"));
        let huge = "y".repeat(FAILURE_TEXT + 10);
        assert!(whole(&huge).ends_with("(10 more characters)"));
    }
}
