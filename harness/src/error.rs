//! The harness's own errors: things that went wrong in the harness or its environment,
//! never a verdict about the system under test (those are `check::Verdict`s). The engine's
//! own errors are `engine::EngineError`s (built and named only in `engine/`, which does not
//! know this type), wrapped here as `HarnessError::Engine`.

use crate::engine::EngineError;
use crate::scenario::ScenarioError;
use crate::services::ServiceError;
use std::time::Duration;

/// Why a run could not start, or what went wrong in the harness or its environment (never
/// a verdict about the system under test: that is a [`crate::Verdict`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The engine could not be reached or refused an operation (`engine::EngineError`).
    #[error(transparent)]
    Engine(#[from] EngineError),

    #[error("service `{service}`: image `{image}` is not in the local engine and no registry serves it ({pull}); build it there (`docker build -t {image} …`), give the service a `build:`, or use one of the project's images by name ({known})", known = crate::engine::images::SERVICE_IMAGES.join(", "))]
    /// A service's image is neither in the engine nor served by a registry.
    UnknownImage {
        /// The service that names it.
        service: String,
        /// The image as the service names it.
        image: String,
        /// Why the pull failed.
        #[source]
        pull: Box<EngineError>,
    },

    /// The scenario is not valid (file, Compose file or builder).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),

    /// A service did not pass its readiness check in time.
    #[error("service `{service}` was not ready within {timeout:?}: {last}")]
    NotReady {
        /// The service.
        service: String,
        /// How long it was given.
        timeout: Duration,
        /// What the last check saw.
        #[source]
        last: Box<ServiceError>,
    },

    /// A fault could not be applied or healed.
    #[error("fault `{fault}`: {message}")]
    Fault {
        /// The fault's name.
        fault: String,
        /// What went wrong.
        message: String,
    },

    /// The host lacks what the scenario's faults need; nothing was started.
    #[error("this host lacks what the scenario needs (nothing was started):\n{}", missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Preflight {
        /// Each missing capability, with what needs it and how to get it.
        missing: Vec<String>,
    },

    /// Another run holds the machine-wide run lock and the run was told not to wait
    /// ([`crate::RunOptions::no_wait`]).
    #[error("the machine is busy: {holder} holds the run lock {} (timed runs never overlap); without --no-wait this run would wait for it", lock.display())]
    Busy {
        /// The run lock's path.
        lock: std::path::PathBuf,
        /// Who holds it, in words (run, scenario, pid, since when).
        holder: String,
    },

    /// The Compose file plans, but a run cannot take it as it is (a missing `env_file`, an
    /// unset required variable); nothing was started.
    #[error("the Compose file cannot run as it is (nothing was started):\n{}", reasons.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n"))]
    Unrunnable {
        /// Each problem: where, what, and how to fix it.
        reasons: Vec<String>,
    },

    /// A service waits for another to be healthy by the image's own health check, and the
    /// image has none; nothing was started.
    #[error("{at}: service `{waiter}` waits for `{service}` to be healthy, but neither the Compose file nor `{service}`'s image `{image}` has a health check (nothing was started); give `{service}` a `healthcheck:` in the file, or wait with `condition: service_started`")]
    NoHealthCheck {
        /// `file:line` of the wait.
        at: String,
        /// The service that waits.
        waiter: String,
        /// The service waited for.
        service: String,
        /// Its image.
        image: String,
    },

    /// A Compose file's host path (a bind mount, a secret, a config) is not safe to mount.
    #[error("service `{service}`: {source}")]
    UnsafeMount {
        /// The service that mounts it.
        service: String,
        /// What is wrong with the path.
        source: crate::mounts::UnsafeMount,
    },

    /// A file or process operation of the harness failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl HarnessError {
    /// The `map_err` adapter of file operations: `.map_err(HarnessError::io("create dir"))`.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
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
