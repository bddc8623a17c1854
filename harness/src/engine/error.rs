//! The engine's errors: no engine answered, or it refused an operation. Each keeps bollard's
//! error as its source; outside `engine/` they travel as `HarnessError::Engine`, so no other
//! module names a bollard type.

use crate::error::HarnessError;

/// What went wrong between the harness and a Docker engine.
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

    /// The engine answered and refused `action` ("start container as-1a2b3c4d-zk1").
    #[error("the Docker engine refused to {action}: {source}")]
    Refused {
        /// What the harness asked for.
        action: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
}

impl HarnessError {
    /// The `map_err` adapter of every engine operation:
    /// `.map_err(HarnessError::engine(format!("start container {name}")))?`. Defined here and
    /// not in `error.rs`: only `engine/` names bollard.
    pub(crate) fn engine(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let action = action.into();
        move |source| EngineError::Refused { action, source }.into()
    }

    /// Whether the engine did not answer at all (no connection, a timeout): it was down, so
    /// the operation observed nothing about its container.
    pub fn engine_silent(&self) -> bool {
        use bollard::errors::Error as B;
        let source = match self {
            HarnessError::Engine(EngineError::Refused { source, .. })
            | HarnessError::Engine(EngineError::Unreachable { source }) => source,
            _ => return false,
        };
        matches!(
            source,
            B::HyperLegacyError { .. } | B::RequestTimeoutError | B::IOError { .. }
        )
    }

    /// The engine could not be reached at all.
    pub(crate) fn unreachable(source: bollard::errors::Error) -> Self {
        EngineError::Unreachable { source }.into()
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
        let e = HarnessError::engine("start container as-1-zk1")(refusal());
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
        let text = HarnessError::unreachable(refusal()).to_string();
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
