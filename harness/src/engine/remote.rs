//! Machines' engines by URL (`unix://`, `tcp://`, `https://` with client certificates,
//! `ssh://`): one bollard client each, and the check before a run that each answers. A
//! Docker-in-Docker machine the run started is reached the same way (`https://<ip>:2376`, with
//! the run's client certificate), so nothing placed on a machine goes through the host's engine.

use super::error::{EngineError, Result};
use super::Docker;
use crate::scenario::engine_url::EngineUrl;
use bollard::ClientVersion;
use std::time::Duration;

/// The API version a machine's client starts from: bollard's own; [`connect`] lowers it to the
/// engine's (`platform::negotiate`).
pub const API: &ClientVersion = bollard::API_DEFAULT_VERSION;

/// The longest one request to a machine's engine may take (a `docker load` of a large image).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// A client for `machine`'s engine at `url` (it does not check that it answers).
pub fn client(machine: &str, url: &EngineUrl) -> Result<Docker> {
    let secs = REQUEST_TIMEOUT.as_secs();
    let text = url.to_string();
    let connected = match url {
        EngineUrl::Unix(path) => Docker::connect_with_unix(&path.to_string_lossy(), secs, API),
        EngineUrl::Tcp { .. } => Docker::connect_with_http(&text, secs, API),
        EngineUrl::Https { certs, .. } => Docker::connect_with_ssl(
            &text,
            &certs.join("key.pem"),
            &certs.join("cert.pem"),
            &certs.join("ca.pem"),
            secs,
            API,
        ),
        EngineUrl::Ssh { key, .. } => Docker::connect_with_ssh(
            &text,
            secs,
            API,
            key.as_ref().map(|k| k.to_string_lossy().into_owned()),
        ),
    };
    connected.map_err(|e| unreachable(machine, url, e.to_string()))
}

/// Connects to `machine`'s engine and checks that it answers `/_ping` within `timeout`.
pub async fn connect(machine: &str, url: &EngineUrl, timeout: Duration) -> Result<Docker> {
    let docker = client(machine, url)?;
    match tokio::time::timeout(timeout, docker.ping()).await {
        Ok(Ok(_)) => super::platform::negotiate(docker)
            .await
            .map_err(|e| unreachable(machine, url, format!("negotiate the API version: {e}"))),
        Ok(Err(e)) => Err(unreachable(machine, url, e.to_string())),
        Err(_) => Err(unreachable(
            machine,
            url,
            format!("no answer within {:.1} s", timeout.as_secs_f64()),
        )),
    }
}

fn unreachable(machine: &str, url: &EngineUrl, detail: String) -> EngineError {
    EngineError::MachineUnreachable {
        machine: machine.into(),
        url: url.to_string(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_ssh_url_reaches_bollard_s_ssh_connector() {
        // No SSH server here: the client is made by bollard's SSH transport (its address is
        // what `docker -H ssh://…` gives), and asking it anything fails in the SSH layer,
        // never as a TCP or HTTP error, naming the machine and the URL.
        let url = EngineUrl::parse("ssh://nobody@127.0.0.1:1", None, None).unwrap();
        let docker = client("east", &url).unwrap();
        assert!(format!("{docker:?}").contains("Ssh"), "{docker:?}");
        let e = connect("east", &url, Duration::from_secs(5))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("machine `east`: no Docker engine answers at ssh://nobody@127.0.0.1:1 ("),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_tcp_url_that_does_not_answer_is_named_with_its_machine() {
        let url = EngineUrl::parse("tcp://127.0.0.1:1", None, None).unwrap();
        let e = connect("m2", &url, Duration::from_secs(2))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("machine `m2`: no Docker engine answers at tcp://127.0.0.1:1 ("),
            "{e}"
        );
        assert!(e.contains("docker -H tcp://127.0.0.1:1 info"), "{e}");
    }
}
