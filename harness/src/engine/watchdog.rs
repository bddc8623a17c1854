//! The watchdog: a process outside the harness that removes everything of one run when the
//! harness process dies without tearing it down (SIGKILL, a CI job's timeout, a closed laptop).
//!
//! Ryuk's idea (testcontainers), covering the host too: the run starts `<binary> watchdog
//! --run <id> --parent <pid@start time>` in a session of its own (so the terminal's Ctrl-C and
//! hang-up do not reach it). It polls the parent every [`POLL`]; once the parent is gone it
//! calls the reaper of that one run ([`cleanup::remove_run`]: containers, networks and volumes
//! by the run's label, then its loop disks, FUSE mounts and lossyfs processes through the
//! disk registry), twice, a second apart (a create the engine finished after the death). It
//! never touches another run. A run that ends normally stops its watchdog ([`Watchdog`]'s drop).

use super::cleanup::{self, Removed};
use crate::error::{HarnessError, Result};
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
    pub fn spawn(binary: &Path, run: &str, log: &Path) -> Result<Watchdog> {
        use std::os::unix::process::CommandExt;
        let parent = cleanup::process_identity(std::process::id()).unwrap_or_default();
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(HarnessError::io(format!("create {}", dir.display())))?;
        }
        let log_file = std::fs::File::create(log)
            .map_err(HarnessError::io(format!("create {}", log.display())))?;
        let mut command = Command::new(binary);
        command
            .args(["watchdog", "--run", run, "--parent", &parent])
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
        let child = command
            .spawn()
            .map_err(HarnessError::io(format!("start the watchdog {}", binary.display())))?;
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
pub async fn watch(run: &str, parent: &str) -> Result<Removed> {
    while cleanup::alive(parent) {
        tokio::time::sleep(POLL).await;
    }
    tracing::info!(run, parent, "the harness process {parent} is gone; removing run {run}");
    let docker = super::connect().await?;
    let mut removed = cleanup::remove_run(&docker, run).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = cleanup::remove_run(&docker, run).await?;
    removed.containers += again.containers;
    removed.networks += again.networks;
    removed.volumes += again.volumes;
    removed.disks += again.disks;
    Ok(removed)
}
