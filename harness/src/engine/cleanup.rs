//! Teardown by label: a run's own resources, the leftovers of dead runs, or everything.
//!
//! Cleanup never trusts in-memory handles alone (testcontainers' drop-based cleanup is best
//! effort): it lists what carries `aftershock.run` labels and removes it. [`RunGuard`] makes
//! teardown happen on every path — success, failure, panic and a dropped (Ctrl-C) future.

use super::error::{EngineError, Result};
use super::owner::alive;
use super::{hostname, LABEL_HOST, LABEL_PID, LABEL_RUN};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How many containers teardown removes at once.
const PARALLEL_REMOVALS: usize = 32;

/// How long teardown keeps asking for the removal of a network the engine refuses with "has
/// active endpoints" (see [`remove_network`]); the reaper of dead runs asks once.
const NETWORK_DEADLINE: Duration = Duration::from_secs(1);

/// What a cleanup removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Containers removed.
    pub containers: usize,
    /// Networks removed.
    pub networks: usize,
    /// Volumes removed.
    pub volumes: usize,
    /// Loop-device disks unmounted and detached (see `engine::disk`).
    pub disks: usize,
    /// Runs whose TLS keys (`<run dir>/tls`) were removed (see `engine::tls::registry`).
    pub keys: usize,
    /// Networks the engine refused to remove although nothing was attached (moby#42119, see
    /// [`remove_network`]): left, and not counted in `networks`.
    pub kept_networks: usize,
}

impl Removed {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        *self == Removed::default()
    }

    /// Counts `other` in.
    pub fn add(&mut self, other: Removed) {
        self.containers += other.containers;
        self.networks += other.networks;
        self.volumes += other.volumes;
        self.disks += other.disks;
        self.keys += other.keys;
        self.kept_networks += other.kept_networks;
    }
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
    /// Container ids.
    pub containers: Vec<String>,
    /// Network ids.
    pub networks: Vec<String>,
    /// Volume names.
    pub volumes: Vec<String>,
    /// The owner of each run found: `aftershock.pid` (process identity) and `aftershock.host`.
    pub owners: BTreeMap<String, (String, String)>,
}

impl Labelled {
    /// How many of each kind there are (no disks: they are not labelled).
    pub fn count(&self) -> Removed {
        Removed {
            containers: self.containers.len(),
            networks: self.networks.len(),
            volumes: self.volumes.len(),
            disks: 0,
            keys: 0,
            kept_networks: 0,
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
        .map_err(EngineError::refused("list containers"))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .map_err(EngineError::refused("list networks"))?;
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .map_err(EngineError::refused("list volumes"))?;
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
    remove_labelled_trying(docker, run, NETWORK_DEADLINE).await
}

/// [`remove_labelled`], asking for a network's removal until `deadline` (see [`remove_network`]).
async fn remove_labelled_trying(
    docker: &Docker,
    run: Option<&str>,
    deadline: Duration,
) -> Result<Removed> {
    let found = list_labelled(docker, run).await?;
    let force = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    // In parallel (a run may have a hundred containers), a bounded number at a time.
    let removals = found.containers.iter().map(|id| {
        let force = force.clone();
        async move {
            match docker.remove_container(id, Some(force)).await {
                Ok(()) => Ok(()),
                Err(e) if e.to_string().contains("No such container") => Ok(()),
                Err(e) => Err(EngineError::refused(format!("remove container {id}"))(e)),
            }
        }
    });
    let removed: Vec<Result<()>> = futures_util::stream::iter(removals)
        .buffer_unordered(PARALLEL_REMOVALS)
        .collect()
        .await;
    removed.into_iter().collect::<Result<Vec<()>>>()?;
    let mut removed = found.count();
    for id in &found.networks {
        if !remove_network(docker, id, deadline).await? {
            removed.networks -= 1;
            removed.kept_networks += 1;
        }
    }
    for name in &found.volumes {
        docker
            .remove_volume(
                name,
                Some(RemoveVolumeOptionsBuilder::default().force(true).build()),
            )
            .await
            .map_err(EngineError::refused(format!("remove volume {name}")))?;
    }
    Ok(removed)
}

/// Removes a network; false when the engine keeps refusing with "has active endpoints" although
/// no container is attached. Docker 20.10's libnetwork can lose an endpoint count update when
/// many containers of one network exit, start or are removed at the same moment (moby#42119):
/// the network then stays until the engine restarts. That is reported, not fatal — a run (or
/// the reaper of dead runs) must not fail on what the engine cannot remove. Until `deadline` it
/// asks again every 200 ms, and force-disconnects what the network still lists (an endpoint
/// the engine kept of a removed container, moby#17217, goes that way; a lost count does not).
async fn remove_network(docker: &Docker, id: &str, deadline: Duration) -> Result<bool> {
    let until = Instant::now() + deadline;
    let mut last = None;
    // Bounded twice: by `deadline` and by the count (200 ms apart).
    for attempt in 0..100u32 {
        match docker.remove_network(id).await {
            Ok(()) => return Ok(true),
            Err(e) if e.to_string().contains("No such network") => return Ok(true),
            Err(e) if e.to_string().contains("active endpoints") => last = Some(e),
            Err(e) => return Err(EngineError::refused(format!("remove network {id}"))(e)),
        }
        if Instant::now() >= until {
            break;
        }
        if attempt == 0 {
            disconnect_listed(docker, id).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!(
        network = id,
        "the engine keeps network {id} although no container is attached ({}); it goes at the engine's next restart",
        last.map(|e| e.to_string()).unwrap_or_default()
    );
    Ok(false)
}

/// Force-disconnects every endpoint the engine still lists on a network (best effort).
async fn disconnect_listed(docker: &Docker, id: &str) {
    let Ok(network) = docker.inspect_network(id, None).await else {
        return;
    };
    for (container, endpoint) in network.containers.unwrap_or_default() {
        let request = bollard::models::NetworkDisconnectRequest {
            container: endpoint.name.unwrap_or(container),
            force: Some(true),
        };
        if let Err(e) = docker.disconnect_network(id, request).await {
            tracing::debug!(network = id, error = %e, "force disconnect on {id}: {e}");
        }
    }
}

/// Removes everything of one run: labelled engine resources, then its disks.
pub async fn remove_run(docker: &Docker, run: &str) -> Result<Removed> {
    let mut removed = remove_labelled(docker, Some(run)).await?;
    removed.disks = remove_disks(run);
    removed.keys = usize::from(super::tls::registry::remove_run(run));
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

/// Removes every run's leftovers: labelled engine resources, every registered run's disks and
/// dead runs' TLS keys.
pub async fn remove_everything(docker: &Docker) -> Result<Removed> {
    let keys = super::tls::registry::reap_dead();
    let mut removed = remove_labelled(docker, None).await?;
    for (run, run_dir) in super::disk::registered_runs() {
        removed.disks += destroy_disks(&run, &run_dir);
    }
    removed.keys = keys;
    Ok(removed)
}

/// Removes what runs of this host left behind when their process is gone (killed, Ctrl-C'd
/// before teardown finished). Runs of live processes are left alone.
pub async fn reap_dead_runs(docker: &Docker) -> Result<Removed> {
    // The TLS keys of dead runs, wherever their output roots were: first, whatever the
    // engine says.
    let keys = super::tls::registry::reap_dead();
    let owners = list_labelled(docker, None).await?.owners;
    let me = hostname();
    let mut total = Removed::default();
    let mut first_error = None;
    for (run, (pid, host)) in owners {
        if host == me && !alive(&pid) {
            tracing::info!(run, "reaping the leftovers of a dead run");
            // Once (a network the engine keeps must not slow every run), and one dead run whose
            // leftovers resist must not keep the others in place.
            let mut r = match remove_labelled_trying(docker, Some(&run), Duration::ZERO).await {
                Ok(r) => r,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            r.disks = remove_disks(&run);
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
    total.keys = keys;
    first_error.map_or(Ok(total), Err)
}

/// Tears a run down when dropped, unless [`RunGuard::teardown`] already did. Drop runs the
/// removal on a thread of its own, so it works from a panic or a cancelled future. Machines'
/// engines the run placed services on are cleaned first (by the same label).
pub struct RunGuard {
    docker: Docker,
    run_id: String,
    armed: bool,
    machines: std::sync::Arc<std::sync::Mutex<Vec<(String, Docker)>>>,
}

impl RunGuard {
    /// Arms a guard for run `run_id` on the engine `docker`.
    pub fn new(docker: Docker, run_id: &str) -> Self {
        Self {
            docker,
            run_id: run_id.into(),
            armed: true,
            machines: Default::default(),
        }
    }

    /// Adds a machine's engine to what teardown cleans.
    pub fn add_machine(&self, name: &str, docker: Docker) {
        self.machines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), docker));
    }

    /// Removes the run's resources now.
    pub async fn teardown(mut self) -> Result<Removed> {
        self.armed = false;
        let machines = self
            .machines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        remove_everywhere(&self.docker, &machines, &self.run_id).await
    }
}

/// Removes a run from its machines' engines (best effort: a machine that is gone took its
/// containers with it; what is left is reported), then from the host's.
async fn remove_everywhere(
    docker: &Docker,
    machines: &[(String, Docker)],
    run: &str,
) -> Result<Removed> {
    let mut total = Removed::default();
    for (name, engine) in machines {
        match remove_labelled(engine, Some(run)).await {
            Ok(r) => {
                total.containers += r.containers;
                total.volumes += r.volumes;
            }
            Err(e) => {
                tracing::warn!(run, machine = %name, error = %e, "teardown on machine {name}: {e}")
            }
        }
    }
    total.add(remove_run(docker, run).await?);
    Ok(total)
}

/// After an early exit (an interrupted bring-up), a create the engine was still answering can
/// land after teardown listed the run: looks again every 250 ms until the run is seen empty
/// twice in a row (2 s at most), removing what appeared.
async fn sweep_stragglers(docker: &Docker, run: &str) -> Result<Removed> {
    let mut total = Removed::default();
    let mut empty_in_a_row = 0;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = remove_labelled(docker, Some(run)).await?;
        if r.is_empty() {
            empty_in_a_row += 1;
            if empty_in_a_row == 2 {
                break;
            }
        } else {
            empty_in_a_row = 0;
            total.add(r);
        }
    }
    Ok(total)
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let docker = self.docker.clone();
        let run = self.run_id.clone();
        let machines = self
            .machines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => match rt.block_on(async {
                    let mut removed = remove_everywhere(&docker, &machines, &run).await?;
                    removed.add(sweep_stragglers(&docker, &run).await?);
                    Ok::<_, EngineError>(removed)
                }) {
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
