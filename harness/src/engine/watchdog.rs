//! The watchdog: a process outside the harness that removes everything of one run when the
//! harness process dies without tearing it down (SIGKILL, a CI job's timeout, a closed laptop).
//!
//! Ryuk's idea (testcontainers), covering the host too: the run starts `<binary> watchdog
//! --run <id> --parent <pid@start time>` in a session of its own (so the terminal's Ctrl-C and
//! hang-up do not reach it). It polls the parent every [`POLL`]; once the parent is gone it
//! calls the reaper of that one run ([`cleanup::remove_run`]: containers, networks and volumes
//! by the run's label, then its loop disks, FUSE mounts and lossyfs processes through the
//! disk registry), twice, a second apart (a create the engine finished after the death), and
//! the run's containers on every machine given by URL (`--machine URL`; machines the run
//! started die with their containers). It never touches another run. A run that ends normally stops its watchdog ([`Watchdog`]'s drop).

use super::cleanup::{self, Removed};
use super::error::{EngineError, Result};
use crate::scenario::engine_url::EngineUrl;
use crate::scenario::plan::{MachineEngine, Plan};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How often the watchdog looks at the parent: well inside the 10 s it has to clean.
pub const POLL: Duration = Duration::from_millis(100);

/// A running watchdog; dropping it (the run ended, cleaned up by itself) stops it.
pub struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Starts `binary watchdog --run <run> --parent <this process>` in its own session, its
    /// log in `log`.
    pub fn spawn(binary: &Path, run: &str, log: &Path, machines: &[String]) -> Result<Watchdog> {
        use std::os::unix::process::CommandExt;
        let parent = super::owner::process_identity(std::process::id()).unwrap_or_default();
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(EngineError::io(format!("create {}", dir.display())))?;
        }
        let log_file = std::fs::File::create(log)
            .map_err(EngineError::io(format!("create {}", log.display())))?;
        let mut command = Command::new(binary);
        command
            .args(["watchdog", "--run", run, "--parent", &parent])
            .args(machines.iter().flat_map(|m| ["--machine", m.as_str()]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        // SAFETY: setsid is async-signal-safe and touches no memory of this process.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = command.spawn().map_err(EngineError::io(format!(
            "start the watchdog {}",
            binary.display()
        )))?;
        Ok(Watchdog { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The watchdog's own work: waits for `parent` (a `pid@start time` identity) to die, then
/// removes everything of `run`. Returns what it removed.
pub async fn watch(run: &str, parent: &str, machines: &[String]) -> Result<Removed> {
    while super::owner::alive(parent) {
        tokio::time::sleep(POLL).await;
    }
    tracing::info!(
        run,
        parent,
        "the harness process {parent} is gone; removing run {run}"
    );
    let docker = super::connect().await?;
    let mut removed = cleanup::remove_run(&docker, run).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = cleanup::remove_run(&docker, run).await?;
    removed.containers += again.containers;
    removed.networks += again.networks;
    removed.volumes += again.volumes;
    removed.disks += again.disks;
    removed.keys += again.keys;
    for m in machines {
        let (url, certs) = match m.split_once('#') {
            Some((u, c)) => (u, Some(c.into())),
            None => (m.as_str(), None),
        };
        let cleaned = match EngineUrl::parse(url, certs, None) {
            Ok(url) => match super::remote::client("machine", &url) {
                Ok(docker) => {
                    // Clones share the version: lowered to the engine's when it says which.
                    let _ = super::platform::negotiate(docker.clone()).await;
                    cleanup::remove_labelled(&docker, Some(run)).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(EngineError::Url(e)),
        };
        match cleaned {
            Ok(r) => removed.containers += r.containers,
            Err(e) => tracing::warn!(run, machine = %m, error = %e, "machine {m}: {e}"),
        }
    }
    Ok(removed)
}

/// The `--machine` arguments for a plan: every machine given by URL (`URL#CERT_DIR` for https).
pub fn machines(plan: &Plan) -> Vec<String> {
    plan.machines
        .iter()
        .filter_map(|m| match &m.engine {
            MachineEngine::Url {
                url: u @ EngineUrl::Https { certs, .. },
                ..
            } => Some(format!("{u}#{}", certs.display())),
            MachineEngine::Url { url, .. } => Some(url.to_string()),
            MachineEngine::Started(_) => None,
        })
        .collect()
}
