//! The harness's own errors: things that went wrong in the harness or its environment,
//! never a verdict about the system under test (those are `check::Verdict`s). The engine's
//! own errors are `engine::EngineError`s, wrapped here (`HarnessError::engine`, the adapter of
//! every engine operation, lives with them: only `engine/` names the Docker client).

use crate::engine::EngineError;
use crate::scenario::ScenarioError;
use std::time::Duration;

/// Why a run could not start, or what went wrong in the harness or its environment (never
/// a verdict about the system under test: that is a [`crate::Verdict`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The engine could not be reached or refused an operation (`engine::EngineError`).
    #[error(transparent)]
    Engine(#[from] EngineError),

    /// A project image (or a service's `build:`) could not be built.
    #[error("building image `{image}` failed: {message}")]
    ImageBuild {
        /// The image's tag.
        image: String,
        /// What the build said.
        message: String,
    },

    /// An image the run needs is not in the engine.
    #[error(
        "image `{image}` is missing; build it with `aftershock images build` (or `make images`)"
    )]
    ImageMissing {
        /// The image's tag.
        image: String,
    },

    #[error("service `{service}`: image `{image}` is not in the local engine and no registry serves it ({pull}); build it there (`docker build -t {image} …`), give the service a `build:`, or use one of the project's images by name ({known})", known = crate::engine::images::SERVICE_IMAGES.join(", "))]
    /// A service's image is neither in the engine nor served by a registry.
    UnknownImage {
        /// The service that names it.
        service: String,
        /// The image as the service names it.
        image: String,
        /// Why the pull failed.
        pull: String,
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
        /// What its last readiness check said.
        last: String,
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

pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
