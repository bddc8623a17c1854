//! Which engine and host a run ran on (the report's `platform`, logged at the run's start): the
//! engine's product and version, the API versions it offers and the one the client negotiated,
//! its cgroup version and driver, the kernel. The README's platform matrix is made of these.
//!
//! The client negotiates (`engine::connect`, `remote::connect`, `inner::Inner::wait_up`): it
//! speaks the lower of bollard's API version and the engine's, never a pinned 1.41.

use super::Docker;
use bollard::ClientVersion;
use serde::{Deserialize, Serialize};

/// The engine and host of a run, as the engine describes them (empty strings: it did not say).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Platform {
    /// The engine's product and version: `Docker Engine 26.1.5`, `Podman Engine 5.4.2`.
    pub engine: String,
    /// The newest Engine API version it offers (`1.45`).
    pub api: String,
    /// The oldest it accepts (`1.24`).
    pub min_api: String,
    /// The version this client negotiated: the lower of its own and the engine's.
    pub negotiated: String,
    /// The host's cgroup version as the engine sees it: `1` or `2`.
    pub cgroup: String,
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: String,
    /// The kernel the engine runs on.
    pub kernel: String,
}

impl Platform {
    /// One line: "Docker Engine 26.1.5 (API 1.45, min 1.24; negotiated 1.45), cgroup v1
    /// (cgroupfs), kernel 6.1.0-28-amd64".
    pub fn words(&self) -> String {
        format!(
            "{} (API {}, min {}; negotiated {}), cgroup v{} ({}), kernel {}",
            self.engine,
            self.api,
            self.min_api,
            self.negotiated,
            self.cgroup,
            self.cgroup_driver,
            self.kernel
        )
    }
}

/// `docker` speaking the lower of its own API version and the engine's (`GET /version`). The
/// request carries no version prefix above what the engine offers (bollard 0.21 sends none):
/// an engine older than bollard, like 20.10 (1.41), answers it.
pub async fn negotiate(docker: Docker) -> Result<Docker, bollard::errors::Error> {
    docker.negotiate_version().await
}

/// A client version as the API writes it (`1.45`).
pub fn api_text(v: &ClientVersion) -> String {
    format!("{}.{}", v.major_version, v.minor_version)
}

/// Reads what `docker` (already negotiated) says of itself; what it does not say stays empty.
pub async fn read(docker: &Docker) -> Platform {
    let version = docker.version().await.ok().unwrap_or_default();
    let info = docker.info().await.ok().unwrap_or_default();
    // Docker names its engine in Components ("Engine"); Podman's compat API ("Podman Engine").
    let product = (version.components.as_deref().unwrap_or_default().first())
        .map(|c| c.name.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("Engine");
    let product = match product {
        "Engine" => "Docker Engine",
        other => other,
    };
    Platform {
        engine: format!("{product} {}", version.version.unwrap_or_default()),
        api: version.api_version.unwrap_or_default(),
        min_api: version.min_api_version.unwrap_or_default(),
        negotiated: api_text(&docker.client_version()),
        cgroup: info
            .cgroup_version
            .map(|v| v.to_string())
            .unwrap_or_default(),
        cgroup_driver: info
            .cgroup_driver
            .map(|d| d.to_string())
            .unwrap_or_default(),
        kernel: (version.kernel_version.or(info.kernel_version)).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
