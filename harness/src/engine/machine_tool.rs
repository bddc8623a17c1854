//! One-off helper containers on a machine's engine, for what has to happen on the machine
//! itself rather than in a container of the run: its firewall (a partition between machines),
//! connection attempts from it, and the SIGKILL of its dockerd (an engine crash). The helper runs `machine-init` from the small
//! `machine-unit` image with the machine's network and its root file system at `/host`
//! (`machine-init host /host iptables …`), so it needs nothing but the machine's engine — a
//! remote host is reached the same way as a Docker-in-Docker one.

use super::error::{EngineError, Result};
use super::{Docker, RunEngine};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use std::time::Duration;

/// Where the machine's root file system is in the helper.
pub const HOST_ROOT: &str = "/host";
const MACHINE_INIT: &str = "/usr/local/bin/machine-init";

/// Runs `machine-init <args>` in a helper on `docker` (machine `machine`) and waits for it
/// (at most `timeout`); returns its exit code and output. The helper carries the run's labels
/// and is removed whatever happens.
pub async fn run(
    run: &RunEngine,
    machine: &str,
    docker: &Docker,
    image: &str,
    args: &[String],
    timeout: Duration,
) -> Result<(i64, String)> {
    let name = create(run, machine, docker, image, args, false).await?;
    let outcome = tokio::time::timeout(timeout, wait(docker, &name)).await;
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(&name, Some(remove)).await;
    match outcome {
        Ok(r) => r,
        Err(_) => Err(EngineError::TimedOut {
            what: format!("machine {machine}'s helper {args:?}"),
            timeout,
            last: "still running".into(),
        }),
    }
}

/// Starts `machine-init <args>` in a helper that also sees the machine's processes (its PID
/// namespace) and does not wait for it: for what takes the machine's engine down with it (a
/// SIGKILL of its dockerd). The exited helper keeps the run's labels; teardown removes it.
pub async fn start_on_host(
    run: &RunEngine,
    machine: &str,
    docker: &Docker,
    image: &str,
    args: &[String],
) -> Result<()> {
    let name = create(run, machine, docker, image, args, true).await?;
    match docker.start_container(&name, None).await {
        Ok(()) => Ok(()),
        // A helper that takes the engine down (it kills dockerd) may do so before the engine
        // answers its start: no answer is expected then, and the caller checks the effect
        // (the engine's `/_ping`). A refusal the engine did send is an error.
        Err(e) if no_answer(&e) => {
            tracing::debug!("helper {name} on {machine} started, no answer from its engine: {e}");
            Ok(())
        }
        Err(e) => Err(EngineError::refused(format!(
            "start helper {name} on {machine}"
        ))(e)),
    }
}

/// Whether a request got no answer at all (the connection broke or timed out), as opposed to
/// an answer that refused it.
fn no_answer(e: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        e,
        E::HyperLegacyError { .. }
            | E::HyperResponseError { .. }
            | E::RequestTimeoutError
            | E::IOError { .. }
    )
}

/// Creates a helper with the machine's network and root file system (and PID namespace when
/// `host_pids`); returns its name.
async fn create(
    run: &RunEngine,
    machine: &str,
    docker: &Docker,
    image: &str,
    args: &[String],
    host_pids: bool,
) -> Result<String> {
    let name = format!(
        "{}-tool-{machine}-{:08x}",
        run.prefix,
        rand::random::<u32>()
    );
    let mut cmd = vec![MACHINE_INIT.to_string()];
    cmd.extend(args.iter().cloned());
    let body = ContainerCreateBody {
        image: Some(image.into()),
        entrypoint: Some(cmd),
        labels: Some(run.labels()),
        host_config: Some(HostConfig {
            network_mode: Some("host".into()),
            pid_mode: host_pids.then(|| "host".into()),
            binds: Some(vec![format!("/:{HOST_ROOT}")]),
            cap_add: Some(
                ["NET_ADMIN", "NET_RAW", "SYS_CHROOT"]
                    .map(String::from)
                    .to_vec(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(EngineError::refused(format!(
            "create helper {name} on {machine}"
        )))?;
    Ok(name)
}

async fn wait(docker: &Docker, name: &str) -> Result<(i64, String)> {
    docker
        .start_container(name, None)
        .await
        .map_err(EngineError::refused(format!("start helper {name}")))?;
    let options = WaitContainerOptionsBuilder::default().build();
    let mut waits = docker.wait_container(name, Some(options));
    let code = match waits.next().await {
        Some(Ok(r)) => r.status_code,
        // A non-zero exit comes as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(EngineError::refused(format!("wait for helper {name}"))(e)),
        None => -1,
    };
    let logs = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(name, Some(logs));
    let mut output = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        output.push_str(&chunk.to_string());
    }
    Ok((code, output.trim().to_string()))
}
