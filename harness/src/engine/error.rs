//! The engine layer's errors: no engine answered, it refused an operation, an image could not
//! be built or found, a host tool failed. Each keeps its source (bollard's error, the I/O
//! error); every function of `engine/` returns them, and outside `engine/` they travel as
//! `HarnessError::Engine`, so no other module names a bollard type and `engine/` never names
//! the harness's own error (the layer below does not know the one above).

use crate::scenario::engine_url::EngineUrlError;
use std::time::Duration;

/// What went wrong between the harness and a Docker engine (or the host tools beside it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No engine answered: no socket, a wrong `DOCKER_HOST`, a failed version negotiation or ping.
    #[error("cannot reach the Docker engine ({source}). Start one: as root `apt-get install -y docker.io && dockerd >/tmp/dockerd.log 2>&1 &`, or point DOCKER_HOST at a running engine")]
    Unreachable {
        /// The client's error.
        #[source]
        source: bollard::errors::Error,
    },

    /// A machine's engine, given by URL, did not answer (or could not be connected to at all).
    #[error("machine `{machine}`: no Docker engine answers at {url} ({detail}). Check that the engine runs and listens there (`docker -H {url} info`), or fix the machine's `url`")]
    MachineUnreachable {
        /// The machine's name in the scenario.
        machine: String,
        /// Its engine's URL.
        url: String,
        /// What the client said.
        detail: String,
    },

    /// A machine's engine URL (as the watchdog was handed it) does not parse.
    #[error("machine engine URL: {0}")]
    Url(#[from] EngineUrlError),

    /// The engine answered and refused `action` ("start container as-1a2b3c4d-zk1").
    #[error("the Docker engine refused to {action}: {source}")]
    Refused {
        /// What the harness asked for.
        action: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },

    /// The engine ran `action` (a push, a pull) and reported it failed, in its own words.
    #[error("{action}: {message}")]
    Reported {
        /// What the engine was asked to do.
        action: String,
        /// What it reported.
        message: String,
    },

    /// An image (the project's, a scenario's `build:`, the engine inside a machine) did not build.
    #[error("building image `{image}` failed: {message}")]
    ImageBuild {
        /// The image's tag.
        image: String,
        /// What the build said.
        message: String,
    },

    /// An image a container needs is not in the engine.
    #[error(
        "image `{image}` is missing; build it with `aftershock images build` (or `make images`)"
    )]
    ImageMissing {
        /// The image's tag.
        image: String,
    },

    /// Something the engine layer waits for (a machine's inner engine, a helper container) did
    /// not come within its deadline.
    #[error("{what} was not ready within {timeout:?}: {last}")]
    TimedOut {
        /// What was waited for.
        what: String,
        /// How long.
        timeout: Duration,
        /// What the last look saw.
        last: String,
    },

    /// A directory for shared or temporary state is unsafe to write into (a link, another
    /// user's, writable by others).
    #[error(transparent)]
    UnsafeDir(#[from] super::state::UnsafeDirError),

    /// The run's certificates for its machines' engines could not be made or written.
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),

    /// A host operation beside the engine (a disk image, a FUSE mount, the docker CLI) failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The engine layer's result.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    /// The `map_err` adapter of every engine operation:
    /// `.map_err(EngineError::refused(format!("start container {name}")))?`.
    pub(crate) fn refused(
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> Self {
        let action = action.into();
        move |source| EngineError::Refused { action, source }
    }

    /// The `map_err` adapter of a host I/O operation: `.map_err(EngineError::io("mount …"))?`.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| EngineError::Io { context, source }
    }

    /// Whether the engine did not answer at all (no connection, a timeout): it was down, so
    /// the operation observed nothing about its container.
    pub fn silent(&self) -> bool {
        use bollard::errors::Error as B;
        let source = match self {
            EngineError::Refused { source, .. } | EngineError::Unreachable { source } => source,
            _ => return false,
        };
        matches!(
            source,
            B::HyperLegacyError { .. } | B::RequestTimeoutError | B::IOError { .. }
        )
    }

    /// The engine could not be reached at all.
    pub(crate) fn unreachable(source: bollard::errors::Error) -> Self {
        EngineError::Unreachable { source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal() -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message: "conflict".into(),
        }
    }

    #[test]
    fn a_refusal_names_the_action_and_the_engine_s_answer() {
        let e = EngineError::refused("start container as-1-zk1")(refusal());
        let text = e.to_string();
        assert!(
            text.starts_with("the Docker engine refused to start container as-1-zk1: "),
            "{text}"
        );
        assert!(text.contains("conflict"), "{text}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "bollard's error is the source"
        );
    }

    #[test]
    fn an_unreachable_engine_says_how_to_start_one() {
        let text = EngineError::unreachable(refusal()).to_string();
        assert!(
            text.starts_with("cannot reach the Docker engine ("),
            "{text}"
        );
        assert!(text.contains("Start one: as root `apt-get install -y docker.io && dockerd"));
        assert!(
            text.contains("or point DOCKER_HOST at a running engine"),
            "{text}"
        );
    }
}
