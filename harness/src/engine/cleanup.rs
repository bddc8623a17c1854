//! Teardown by label: a run's own resources, the leftovers of dead runs, or everything.
//!
//! Cleanup never trusts in-memory handles alone (testcontainers' drop-based cleanup is best
//! effort): it lists what carries `aftershock.run` labels and removes it. [`RunGuard`] makes
//! teardown happen on every path — success, failure, panic and a dropped (Ctrl-C) future.

use super::{hostname, LABEL_HOST, LABEL_PID, LABEL_RUN};
use crate::error::{HarnessError, Result};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;
use std::collections::{BTreeMap, HashMap};

/// What a cleanup removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
    /// Loop-device disks unmounted and detached (see `engine::disk`).
    pub disks: usize,
}

impl Removed {
    pub fn is_empty(&self) -> bool {
        *self == Removed::default()
    }
}

/// The identity of this process as written into the `aftershock.pid` label: `<pid>@<start time>`,
/// so a recycled PID is not mistaken for a live run.
pub fn process_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime) counts after the command, which is in parentheses.
    let after = stat.rsplit_once(')')?.1;
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid}@{start}"))
}

/// Whether the process of an identity from [`process_identity`] still runs (a zombie, dead
/// but not yet waited for by its parent, does not).
pub(crate) fn alive(identity: &str) -> bool {
    let pid = identity
        .split('@')
        .next()
        .and_then(|p| p.parse::<u32>().ok());
    let Some(pid) = pid else {
        return false;
    };
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, a)| a.trim_start().chars().next());
        matches!(state, Some(Some('Z' | 'X')))
    });
    !zombie && process_identity(pid).as_deref() == Some(identity)
}

fn filter(key: &str, value: Option<&str>) -> HashMap<String, Vec<String>> {
    let label = match value {
        Some(v) => format!("{key}={v}"),
        None => key.to_string(),
    };
    HashMap::from([("label".to_string(), vec![label])])
}

/// The ids of every container, network and volume whose `aftershock.run` label is `run`
/// (or any value when `run` is None).
pub struct Labelled {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// The owner of each run found: `aftershock.pid` (process identity) and `aftershock.host`.
    pub owners: BTreeMap<String, (String, String)>,
}

impl Labelled {
    pub fn count(&self) -> Removed {
        Removed {
            containers: self.containers.len(),
            networks: self.networks.len(),
            volumes: self.volumes.len(),
            disks: 0,
        }
    }
}

/// Lists what carries the run label (all runs when `run` is None).
pub async fn list_labelled(docker: &Docker, run: Option<&str>) -> Result<Labelled> {
    let f = filter(LABEL_RUN, run);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&f)
                .build(),
        ))
        .await
        .map_err(HarnessError::engine("list containers"))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .map_err(HarnessError::engine("list networks"))?;
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .map_err(HarnessError::engine("list volumes"))?;
    let mut owners = BTreeMap::new();
    let label_sets = containers
        .iter()
        .filter_map(|c| c.labels.as_ref())
        .chain(networks.iter().filter_map(|n| n.labels.as_ref()))
        .chain(volumes.volumes.iter().flatten().map(|v| &v.labels));
    for labels in label_sets {
        if let Some(run) = labels.get(LABEL_RUN) {
            let pid = labels.get(LABEL_PID).cloned().unwrap_or_default();
            let host = labels.get(LABEL_HOST).cloned().unwrap_or_default();
            owners.insert(run.clone(), (pid, host));
        }
    }
    Ok(Labelled {
        containers: containers.into_iter().filter_map(|c| c.id).collect(),
        networks: networks.into_iter().filter_map(|n| n.id).collect(),
        volumes: volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect(),
        owners,
    })
}

/// Removes every container, network and volume whose `aftershock.run` label is `run` (or any
/// value when `run` is None).
pub async fn remove_labelled(docker: &Docker, run: Option<&str>) -> Result<Removed> {
    let found = list_labelled(docker, run).await?;
    let force = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    for id in &found.containers {
        match docker.remove_container(id, Some(force.clone())).await {
            Ok(()) => {}
            Err(e) if e.to_string().contains("No such container") => {}
            Err(e) => return Err(HarnessError::engine(format!("remove container {id}"))(e)),
        }
    }
    for id in &found.networks {
        docker
            .remove_network(id)
            .await
            .map_err(HarnessError::engine(format!("remove network {id}")))?;
    }
    for name in &found.volumes {
        docker
            .remove_volume(
                name,
                Some(RemoveVolumeOptionsBuilder::default().force(true).build()),
            )
            .await
            .map_err(HarnessError::engine(format!("remove volume {name}")))?;
    }
    Ok(found.count())
}

/// Removes everything of one run: labelled engine resources, then its disks.
pub async fn remove_run(docker: &Docker, run: &str) -> Result<Removed> {
    let mut removed = remove_labelled(docker, Some(run)).await?;
    removed.disks = remove_disks(run);
    Ok(removed)
}

/// Unmounts and detaches a run's disks (found through the machine-wide registry, whatever the
/// run's output root); returns how many there were.
fn remove_disks(run: &str) -> usize {
    super::disk::registered(run).map_or(0, |dir| destroy_disks(run, &dir))
}

fn destroy_disks(run: &str, run_dir: &std::path::Path) -> usize {
    let before = super::disk::count(run_dir);
    for problem in super::disk::destroy_all(run_dir) {
        tracing::warn!(run, %problem, "disk cleanup of run {run}: {problem}");
    }
    before
}

/// Removes every run's leftovers: labelled engine resources and every registered run's disks.
pub async fn remove_everything(docker: &Docker) -> Result<Removed> {
    let mut removed = remove_labelled(docker, None).await?;
    for (run, run_dir) in super::disk::registered_runs() {
        removed.disks += destroy_disks(&run, &run_dir);
    }
    Ok(removed)
}

/// Removes what runs of this host left behind when their process is gone (killed, Ctrl-C'd
/// before teardown finished). Runs of live processes are left alone.
pub async fn reap_dead_runs(docker: &Docker) -> Result<Removed> {
    let owners = list_labelled(docker, None).await?.owners;
    let me = hostname();
    let mut total = Removed::default();
    for (run, (pid, host)) in owners {
        if host == me && !alive(&pid) {
            tracing::info!(run, "reaping the leftovers of a dead run");
            // One run that cannot be removed (another reaper at it, an engine quirk) does not
            // keep the others: it is reported, and the next reaper tries again.
            let r = match remove_run(docker, &run).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(run, error = %e, "reaping run {run}: {e}");
                    continue;
                }
            };
            total.containers += r.containers;
            total.networks += r.networks;
            total.volumes += r.volumes;
            total.disks += r.disks;
        }
    }
    // Disks (and lossyfs mounts) of dead runs whose engine resources are already gone, from
    // any checkout on this machine.
    for (run, run_dir) in super::disk::dead_runs() {
        tracing::info!(run, "reaping the disks of a dead run");
        total.disks += destroy_disks(&run, &run_dir);
    }
    Ok(total)
}

/// Tears a run down when dropped, unless [`RunGuard::teardown`] already did. Drop runs the
/// removal on a thread of its own, so it works from a panic or a cancelled future.
pub struct RunGuard {
    docker: Docker,
    run_id: String,
    armed: bool,
}

impl RunGuard {
    pub fn new(docker: Docker, run_id: &str) -> Self {
        Self {
            docker,
            run_id: run_id.into(),
            armed: true,
        }
    }

    /// Removes the run's resources now.
    pub async fn teardown(mut self) -> Result<Removed> {
        self.armed = false;
        remove_run(&self.docker, &self.run_id).await
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let docker = self.docker.clone();
        let run = self.run_id.clone();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => match rt.block_on(remove_run(&docker, &run)) {
                    Ok(r) => tracing::info!(
                        run,
                        containers = r.containers,
                        networks = r.networks,
                        volumes = r.volumes,
                        disks = r.disks,
                        "tore down run {run} after an early exit ({} containers, {} networks, {} volumes, {} disks)",
                        r.containers, r.networks, r.volumes, r.disks
                    ),
                    Err(e) => tracing::warn!(run, error = %e, "teardown of run {run} failed: {e}; run `aftershock clean`"),
                },
                Err(e) => tracing::warn!(run, error = %e, "no runtime for teardown of {run}: {e}; run `aftershock clean`"),
            }
        });
        let _ = handle.join();
    }
}
