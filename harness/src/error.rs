//! The harness's own errors: things that went wrong in the harness or its environment,
//! never a verdict about the system under test (those are `check::Verdict`s). The engine's
//! own errors are `engine::EngineError`s (built and named only in `engine/`, which does not
//! know this type), wrapped here as `HarnessError::Engine`.

use crate::engine::EngineError;
use crate::scenario::ScenarioError;
use crate::services::ServiceError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The engine could not be reached or refused an operation (`engine::EngineError`).
    #[error(transparent)]
    Engine(#[from] EngineError),

    #[error("service `{service}`: image `{image}` is not in the local engine and no registry serves it ({pull}); build it there (`docker build -t {image} …`), give the service a `build:`, or use one of the project's images by name ({known})", known = crate::engine::images::SERVICE_IMAGES.join(", "))]
    UnknownImage {
        service: String,
        image: String,
        /// Why the pull failed.
        #[source]
        pull: Box<EngineError>,
    },

    #[error(transparent)]
    Scenario(#[from] ScenarioError),

    #[error("service `{service}` was not ready within {timeout:?}: {last}")]
    NotReady {
        service: String,
        timeout: Duration,
        /// What the last check saw.
        #[source]
        last: Box<ServiceError>,
    },

    #[error("fault `{fault}`: {message}")]
    Fault { fault: String, message: String },

    #[error("this host lacks what the scenario needs (nothing was started):\n{}", missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Preflight { missing: Vec<String> },

    #[error("the machine is busy: {holder} holds the run lock {} (timed runs never overlap); without --no-wait this run would wait for it", lock.display())]
    Busy {
        lock: std::path::PathBuf,
        holder: String,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl HarnessError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| HarnessError::Io { context, source }
    }
}

impl HarnessError {
    /// Whether the engine did not answer at all (no connection, a timeout): it was down, so
    /// the operation observed nothing about its container.
    pub fn engine_silent(&self) -> bool {
        matches!(self, HarnessError::Engine(e) if e.silent())
    }
}

pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
