//! The `docker` CLI, as a user would run it: the baseline that `aftershock bench` measures the
//! harness against (`docker run -d`, `docker rm -f`, `docker kill`). Everything it creates
//! carries the run's labels, so teardown by label finds it like anything else of a run.

use super::error::{EngineError, Result};
use super::RunEngine;
use tokio::process::Command;

/// Runs `docker <args>`; its standard output, or an error with its standard error.
async fn docker(args: &[String]) -> Result<String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .await
        .map_err(EngineError::io("run the docker CLI"))?;
    if !out.status.success() {
        return Err(EngineError::io(format!("docker {}", args.join(" ")))(
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `--label k=v` for each of the run's labels.
fn labels(engine: &RunEngine) -> Vec<String> {
    engine
        .labels()
        .into_iter()
        .flat_map(|(k, v)| ["--label".to_string(), format!("{k}={v}")])
        .collect()
}

/// `docker network create` of the run's network (a /24 of its own, as the harness makes);
/// returns the first three octets of its subnet.
pub async fn network_create(engine: &RunEngine) -> Result<String> {
    let mut last = None;
    for attempt in 0..32u32 {
        let prefix = format!("172.29.{}", (std::process::id() + attempt * 37) % 250 + 2);
        let mut args = vec!["network".to_string(), "create".into()];
        args.extend(labels(engine));
        args.extend([
            "--subnet".into(),
            format!("{prefix}.0/24"),
            engine.network_name(),
        ]);
        match docker(&args).await {
            Ok(_) => return Ok(prefix),
            Err(e) if e.to_string().contains("overlap") => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// `docker run -d` of one replica on the run's network at `ip` — or, without an address, on
/// no network at all (`--network none`: only a loopback); returns the container id.
pub async fn run_detached(
    engine: &RunEngine,
    replica: &str,
    ip: Option<&str>,
    image: &str,
    command: &[String],
) -> Result<String> {
    let mut args = vec!["run".to_string(), "-d".into()];
    args.extend(labels(engine));
    args.extend(["--name".into(), engine.container_name(replica)]);
    match ip {
        Some(ip) => args.extend([
            "--network".into(),
            engine.network_name(),
            "--ip".into(),
            ip.into(),
        ]),
        None => args.extend(["--network".into(), "none".into()]),
    }
    args.push(image.into());
    args.extend(command.iter().cloned());
    docker(&args).await
}

/// `docker rm -f` of the given containers (one command, as a user would type it).
pub async fn remove_forced(containers: &[String]) -> Result<()> {
    let mut args = vec!["rm".to_string(), "-f".into()];
    args.extend(containers.iter().cloned());
    docker(&args).await.map(|_| ())
}

/// `docker network rm` of the run's network.
pub async fn network_remove(engine: &RunEngine) -> Result<()> {
    docker(&["network".into(), "rm".into(), engine.network_name()])
        .await
        .map(|_| ())
}

/// `docker kill -s <signal>` of the given replicas' containers (one command).
pub async fn kill(engine: &RunEngine, replicas: &[String], signal: &str) -> Result<()> {
    let mut args = vec!["kill".to_string(), "-s".into(), signal.into()];
    args.extend(replicas.iter().map(|r| engine.container_name(r)));
    docker(&args).await.map(|_| ())
}
