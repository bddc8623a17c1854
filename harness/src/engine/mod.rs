//! The engine layer: the only module that talks to Docker (through bollard).
//!
//! Everything a run creates — network, containers, volumes — carries the labels
//! `aftershock.run=<run id>` and `aftershock.scenario=<name>` (plus the owning process), so
//! teardown, the reaper of dead runs and `aftershock clean` find it by label alone.
//! Probes reach containers at their address on the run's own network.

pub(crate) mod bin_cache;
pub mod cleanup;
pub mod cut;
pub mod disk;
mod error;
pub mod events;
pub mod faketime;
pub mod host;
pub mod images;
pub mod inner;
pub mod lossy;
pub mod machine_tool;
mod netchurn;
pub mod netns;
pub mod oom;
pub mod owner;
pub mod platform;
pub mod raw;
pub mod remote;
pub mod sick_link;
pub mod signal;
pub mod state;
pub mod taskstats;
pub mod tls;
pub mod user_images;
pub mod watchdog;

pub use error::EngineError;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, ExecConfig, HostConfig,
    HostConfigCgroupnsModeEnum, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    LogsOptionsBuilder, StopContainerOptionsBuilder,
};
use error::Result;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The client of a Docker engine. Other modules hold and pass it; only `engine/` calls it.
pub type Docker = bollard::Docker;

pub const LABEL_RUN: &str = "aftershock.run";
pub const LABEL_SCENARIO: &str = "aftershock.scenario";
pub const LABEL_PID: &str = "aftershock.pid";
pub const LABEL_HOST: &str = "aftershock.host";

/// Connects to the local engine (DOCKER_HOST or the default socket) and checks it answers.
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_local_defaults().map_err(EngineError::unreachable)?;
    let docker = platform::negotiate(docker)
        .await
        .map_err(EngineError::unreachable)?;
    docker.ping().await.map_err(EngineError::unreachable)?;
    Ok(docker)
}

/// Whether the local engine holds an image of this name or tag.
pub async fn has_image(docker: &Docker, image: &str) -> Result<bool> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(EngineError::refused(format!("inspect image {image}"))(e)),
    }
}

/// An image's own health check (its Dockerfile's `HEALTHCHECK`): the test as the engine
/// keeps it (`["CMD-SHELL", "…"]`) and its timing; None when the image has none.
pub async fn image_healthcheck(
    docker: &Docker,
    image: &str,
) -> Result<Option<(Vec<String>, crate::scenario::compose::HealthTimes)>> {
    let inspect = (docker.inspect_image(image).await)
        .map_err(EngineError::refused(format!("inspect image {image}")))?;
    let Some(h) = inspect.config.and_then(|c| c.healthcheck) else {
        return Ok(None);
    };
    let Some(test) = h.test.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    // Nanoseconds; 0 means the engine's default.
    let time = |ns: Option<i64>| {
        let ns = ns.and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0);
        ns.map(std::time::Duration::from_nanos)
    };
    let times = crate::scenario::compose::HealthTimes {
        interval: time(h.interval),
        timeout: time(h.timeout),
        start_period: time(h.start_period),
        start_interval: time(h.start_interval),
        retries: h.retries.and_then(|r| u32::try_from(r).ok()).unwrap_or(0),
    };
    Ok(Some((test, times)))
}

/// The engine's version (`20.10.24`).
pub async fn version(docker: &Docker) -> Result<String> {
    let v = docker
        .version()
        .await
        .map_err(EngineError::refused("read the engine's version"))?;
    Ok(v.version.unwrap_or_default())
}

/// How many containers run on the engine now (any, not only a run's).
pub async fn running_containers(docker: &Docker) -> Result<usize> {
    let list = docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
        .map_err(EngineError::refused("list containers"))?;
    Ok(list.len())
}

/// This machine's host name (part of the labels: the reaper only judges runs of this host).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The Compose file's networks a replica joins: (the file's name, its aliases there).
pub type Joins = Vec<(String, Vec<String>)>;

/// What one container of a run looks like; built by `services`, created here.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// The replica's name in the scenario (`zk1`): its host name and DNS alias on the network.
    pub replica: String,
    pub image: String,
    pub env: Vec<String>,
    /// Replaces the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Its fixed address on the run's network.
    pub ip: String,
    /// Host directories bind-mounted into it (`/host/path:/container/path`).
    pub binds: Vec<String>,
    /// Memory limit in bytes; memory+swap is set to the same value, so exceeding it ends in
    /// the kernel's OOM killer, never in swapping.
    pub memory: Option<i64>,
    /// CPU limit in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// The main process's `oom_score_adj` (positive only: this engine refuses negative ones).
    pub oom_score_adj: Option<i64>,
    /// Extra privileges (Docker-in-Docker machines); None: the engine's defaults.
    pub privileges: Option<Privileges>,
    /// Named volumes `(suffix, mount point)`: created as `<container>-<suffix>` with the run's
    /// labels, so teardown removes them.
    pub volumes: Vec<(String, String)>,
    /// Named volumes `(suffix, mount point)` shared by every container that names them:
    /// created once as `<run prefix>-shared-<suffix>` with the run's labels.
    pub shared_volumes: Vec<(String, String)>,
    /// The engine's restart policy: `always`, `unless-stopped`, `on-failure[:N]` (None: no).
    pub restart: Option<String>,
    /// More DNS names on the run's network, besides the replica's own.
    pub aliases: Vec<String>,
    /// The user its processes run as, and their working directory (None: the image's).
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// `name:address` entries of its `/etc/hosts`: how a replica placed on a machine (the
    /// machine's network, not the run's) reaches the others by name.
    pub extra_hosts: Vec<String>,
    /// The Compose file's networks it joins besides the run's (see
    /// [`RunEngine::create_file_network`]), with its aliases on each (its name besides).
    pub networks: Joins,
    /// The signal `docker stop` sends first, and how long it waits (None: the engine's).
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
}

/// What a container needs beyond the defaults to run an engine of its own.
#[derive(Debug, Clone, Default)]
pub struct Privileges {
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    /// A private cgroup namespace.
    pub private_cgroupns: bool,
    /// No masked or read-only paths in /proc and /sys (the CLI's `systempaths=unconfined`).
    pub unmasked_paths: bool,
    pub device_cgroup_rules: Vec<String>,
    /// tmpfs mounts: path → options.
    pub tmpfs: HashMap<String, String>,
}

impl Privileges {
    /// Docker-in-Docker as it works on this kind of machine (see ENGINEERING-NOTES): no
    /// `--privileged` (refused: the VM has no CAP_SYS_RESOURCE), but every other capability,
    /// no seccomp/apparmor/masked paths, every device, its own cgroup namespace, tmpfs /run.
    pub fn docker_in_docker() -> Self {
        Self {
            cap_add: vec!["ALL".into()],
            cap_drop: vec!["SYS_RESOURCE".into()],
            security_opt: ["seccomp=unconfined", "apparmor=unconfined"]
                .map(String::from)
                .to_vec(),
            private_cgroupns: true,
            unmasked_paths: true,
            device_cgroup_rules: vec!["a *:* rwm".into()],
            tmpfs: HashMap::from([("/run".to_string(), "rw,exec".to_string())]),
        }
    }
}

/// The engine as one run sees it: the client plus the run's identity and network.
#[derive(Clone)]
pub struct RunEngine {
    pub docker: Docker,
    pub run_id: String,
    pub scenario: String,
    /// Prefix of every container and network name of this run (`as-1a2b3c4d`).
    pub prefix: String,
    /// An exec that is starting holds this for reading, a pause for writing: under the cgroup
    /// v1 freezer, a `runc exec` whose process is frozen before it has started never returns
    /// and wedges the engine for that container. So no pause lands while an exec starts.
    starting_execs: Arc<tokio::sync::RwLock<()>>,
    /// Containers started by something else and attached to the run, by replica name.
    attached: Arc<std::sync::RwLock<std::collections::BTreeMap<String, String>>>,
    /// The engines of replicas placed on machines, by replica name (the others: `docker`).
    machines: Arc<std::sync::RwLock<std::collections::BTreeMap<String, Docker>>>,
    /// The run's certificates when it starts machines (`tls::make`): their dockerds answer
    /// only the client certificate in `client`.
    pub tls: Option<tls::RunTls>,
    /// The Compose file's networks each replica joined, with its aliases there, by replica
    /// name: a partition takes it off them too.
    file_networks: Arc<std::sync::RwLock<std::collections::BTreeMap<String, Joins>>>,
}

/// How the runtime reaches a replica, and who can witness what happens to it: the routing of
/// the plan's `Placement`, decided once at bring-up ([`RunEngine::place`]).
#[derive(Debug, Clone)]
pub enum Route {
    /// On this host: the host's engine, and this kernel's evidence (`/proc`, cgroups, the
    /// kernel log, pidfds).
    Host,
    /// On a machine: that machine's engine, the only witness (its kernel, PIDs and cgroups
    /// are not this host's).
    Machine(Docker),
}

impl RunEngine {
    pub fn new(docker: Docker, run_id: &str, scenario: &str) -> Self {
        let short = run_id.rsplit('-').next().unwrap_or(run_id);
        Self {
            docker,
            run_id: run_id.into(),
            scenario: scenario.into(),
            prefix: format!("as-{short}"),
            starting_execs: Arc::default(),
            attached: Arc::default(),
            machines: Arc::default(),
            tls: None,
            file_networks: Arc::default(),
        }
    }

    /// Routes everything about `replica` to a machine's engine from now on.
    pub fn place(&self, replica: &str, machine: Docker) {
        self.machines
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(replica.to_string(), machine);
    }

    /// How `replica` is reached: on this host, or through its machine's engine.
    pub fn route(&self, replica: &str) -> Route {
        let machines = self.machines.read().unwrap_or_else(|e| e.into_inner());
        machines
            .get(replica)
            .map_or(Route::Host, |d| Route::Machine(d.clone()))
    }

    /// The engine that runs `replica`: its machine's, else the host's.
    pub fn client(&self, replica: &str) -> Docker {
        match self.route(replica) {
            Route::Host => self.docker.clone(),
            Route::Machine(docker) => docker,
        }
    }

    /// Attaches a container something else started (by id or name) as `replica`: the run acts
    /// on it and observes it, but never created it and never removes it. Returns its address
    /// (on its first network) and its engine name.
    pub async fn attach(&self, replica: &str, container: &str) -> Result<(String, String)> {
        let info = self
            .docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .map_err(EngineError::refused(format!(
                "inspect container `{container}` to attach it as `{replica}` (is it running, and on this engine?)"
            )))?;
        let name = info
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let ip = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| {
                n.into_values()
                    .find_map(|e| e.ip_address.filter(|ip| !ip.is_empty()))
            })
            .unwrap_or_default();
        self.attached
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(replica.to_string(), name.clone());
        Ok((ip, name))
    }

    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.into(), self.run_id.clone()),
            (LABEL_SCENARIO.into(), self.scenario.clone()),
            (
                LABEL_PID.into(),
                owner::process_identity(std::process::id()).unwrap_or_default(),
            ),
            (LABEL_HOST.into(), hostname()),
        ])
    }

    pub fn network_name(&self) -> String {
        self.prefix.clone()
    }

    /// The engine's name for a replica's container.
    pub fn container_name(&self, replica: &str) -> String {
        let attached = self.attached.read().unwrap_or_else(|e| e.into_inner());
        match attached.get(replica) {
            Some(name) => name.clone(),
            None => format!("{}-{replica}", self.prefix),
        }
    }

    /// The replica name of one of this run's containers (inverse of `container_name`).
    pub fn replica_of(&self, container: &str) -> Option<String> {
        let container = container.trim_start_matches('/');
        let attached = self.attached.read().unwrap_or_else(|e| e.into_inner());
        if let Some((replica, _)) = attached.iter().find(|(_, name)| *name == container) {
            return Some(replica.clone());
        }
        container
            .strip_prefix(&format!("{}-", self.prefix))
            .map(str::to_string)
    }

    /// The engine names of the attached containers.
    pub fn attached_containers(&self) -> Vec<String> {
        let attached = self.attached.read().unwrap_or_else(|e| e.into_inner());
        attached.values().cloned().collect()
    }

    /// Creates the run's own bridge network with a subnet of its own, so every replica keeps
    /// a fixed address across restarts. Returns the first three octets (`172.30.7`).
    pub async fn create_network(&self) -> Result<String> {
        let seed: u32 = self
            .run_id
            .bytes()
            .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        let mut last = None;
        for attempt in 0..32u32 {
            let prefix = format!("172.30.{}", (seed.wrapping_add(attempt * 37)) % 250 + 2);
            let request = NetworkCreateRequest {
                name: self.network_name(),
                driver: Some("bridge".into()),
                labels: Some(self.labels()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(format!("{prefix}.0/24")),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match self.docker.create_network(request).await {
                Ok(_) => return Ok(prefix),
                Err(e) if e.to_string().contains("overlap") => last = Some(e),
                Err(e) => return Err(EngineError::refused("create the run's network")(e)),
            }
        }
        Err(EngineError::refused(
            "create the run's network (every subnet tried overlaps)",
        )(last.expect("at least one attempt")))
    }

    /// The engine's name of the run's network for the Compose file's network `name`.
    pub fn file_network_name(&self, name: &str) -> String {
        format!("{}-net-{name}", self.prefix)
    }

    /// Creates the run's network for the Compose file's network `name` (a bridge with the
    /// engine's address pool, the run's labels: teardown removes it).
    pub async fn create_file_network(&self, name: &str) -> Result<()> {
        let request = NetworkCreateRequest {
            name: self.file_network_name(name),
            driver: Some("bridge".into()),
            labels: Some(self.labels()),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(EngineError::refused(format!(
                "create the network for `{name}`"
            )))
    }

    /// Joins a created replica to its Compose networks (before it starts: it sees them all
    /// from its first instruction).
    async fn join_file_networks(&self, spec: &ContainerSpec) -> Result<()> {
        if spec.networks.is_empty() || !matches!(self.route(&spec.replica), Route::Host) {
            return Ok(());
        }
        for (network, aliases) in &spec.networks {
            self.connect_file_network(&spec.replica, network, aliases)
                .await?;
        }
        self.file_networks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.replica.clone(), spec.networks.clone());
        Ok(())
    }

    async fn connect_file_network(
        &self,
        replica: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<()> {
        let name = self.container_name(replica);
        let mut names = vec![replica.to_string()];
        names.extend(aliases.iter().cloned());
        let request = NetworkConnectRequest {
            container: name.clone(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(names),
                ..Default::default()
            }),
        };
        let network = self.file_network_name(network);
        self.docker
            .connect_network(&network, request)
            .await
            .map_err(EngineError::refused(format!("connect {name} to {network}")))
    }

    /// The Compose networks `replica` joined (empty: none).
    fn file_networks_of(&self, replica: &str) -> Joins {
        let joined = self.file_networks.read().unwrap_or_else(|e| e.into_inner());
        joined.get(replica).cloned().unwrap_or_default()
    }

    /// Creates and starts a container on the run's network; no restart policy, no published ports.
    pub async fn start_new(&self, spec: &ContainerSpec) -> Result<()> {
        let name = self.container_name(&spec.replica);
        let docker = self.client(&spec.replica);
        let mut binds = spec.binds.clone();
        let own = spec.volumes.iter().map(|(s, t)| (format!("{name}-{s}"), t));
        // A shared volume: creating one that exists (another service made it) returns it.
        let shared = spec.shared_volumes.iter();
        let shared = shared.map(|(s, t)| (format!("{}-shared-{s}", self.prefix), t));
        for (volume, target) in own.chain(shared) {
            docker
                .create_volume(VolumeCreateRequest {
                    name: Some(volume.clone()),
                    labels: Some(self.labels()),
                    ..Default::default()
                })
                .await
                .map_err(EngineError::refused(format!("create volume {volume}")))?;
            binds.push(format!("{volume}:{target}"));
        }
        let body = self.create_body(spec, binds);
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        docker
            .create_container(Some(options), body)
            .await
            .map_err(|source| match &source {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                } => EngineError::ImageMissing {
                    image: spec.image.clone(),
                },
                _ => EngineError::refused(format!("create container {name}"))(source),
            })?;
        self.join_file_networks(spec).await?;
        self.start(&spec.replica).await
    }

    /// The container's configuration: on the run's network with its fixed address and names,
    /// or, placed on a machine, on the machine's network with the others' names in /etc/hosts.
    fn create_body(&self, spec: &ContainerSpec, binds: Vec<String>) -> ContainerCreateBody {
        let route = self.route(&spec.replica);
        let network = match route {
            Route::Machine(_) => "host".to_string(),
            Route::Host => self.network_name(),
        };
        // On the run's network: its own name and fixed address (placed: the machine's).
        let on_run_network = matches!(route, Route::Host);
        let mut endpoint = endpoint(&spec.replica, &spec.ip);
        if let Some(aliases) = &mut endpoint.aliases {
            aliases.extend(spec.aliases.iter().cloned());
        }
        let p = spec.privileges.clone().unwrap_or_default();
        let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
        ContainerCreateBody {
            image: Some(spec.image.clone()),
            hostname: on_run_network.then(|| spec.replica.clone()),
            env: Some(spec.env.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            labels: Some(self.labels()),
            stop_signal: spec.stop_signal.clone(),
            stop_timeout: spec.stop_timeout,
            host_config: Some(HostConfig {
                network_mode: Some(network.clone()),
                extra_hosts: some(spec.extra_hosts.clone()),
                memory: spec.memory,
                memory_swap: spec.memory,
                nano_cpus: spec.nano_cpus,
                oom_score_adj: spec.oom_score_adj,
                restart_policy: spec.restart.as_deref().map(restart_policy),
                binds: some(binds),
                cap_add: some(p.cap_add),
                cap_drop: some(p.cap_drop),
                security_opt: some(p.security_opt),
                device_cgroup_rules: some(p.device_cgroup_rules),
                cgroupns_mode: p
                    .private_cgroupns
                    .then_some(HostConfigCgroupnsModeEnum::PRIVATE),
                tmpfs: (!p.tmpfs.is_empty()).then_some(p.tmpfs),
                masked_paths: p.unmasked_paths.then(Vec::new),
                readonly_paths: p.unmasked_paths.then(Vec::new),
                ..Default::default()
            }),
            networking_config: on_run_network.then(|| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network, endpoint)])),
            }),
            ..Default::default()
        }
    }

    /// Starts an existing (stopped) container of a replica.
    pub async fn start(&self, replica: &str) -> Result<()> {
        let name = self.container_name(replica);
        self.client(replica)
            .start_container(&name, None)
            .await
            .map_err(EngineError::refused(format!("start container {name}")))
    }

    /// Kills through the Engine API (the fallback when the engine is not local).
    pub async fn api_kill(&self, replica: &str, signal: &str) -> Result<()> {
        let name = self.container_name(replica);
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.client(replica)
            .kill_container(&name, Some(options))
            .await
            .map_err(EngineError::refused(format!("kill container {name}")))
    }

    /// Freezes every process of the replica (the cgroup freezer, `docker pause`).
    pub async fn pause(&self, replica: &str) -> Result<()> {
        let name = self.container_name(replica);
        let _no_exec_starting = self.starting_execs.write().await;
        self.client(replica)
            .pause_container(&name)
            .await
            .map_err(EngineError::refused(format!("pause container {name}")))
    }

    /// Thaws a paused replica (`docker unpause`).
    pub async fn unpause(&self, replica: &str) -> Result<()> {
        let name = self.container_name(replica);
        self.client(replica)
            .unpause_container(&name)
            .await
            .map_err(EngineError::refused(format!("unpause container {name}")))
    }

    /// Stops a replica the engine's way: SIGTERM, SIGKILL after `grace_s` seconds.
    pub async fn stop(&self, replica: &str, grace_s: i32) -> Result<()> {
        let name = self.container_name(replica);
        let options = StopContainerOptionsBuilder::default().t(grace_s).build();
        self.client(replica)
            .stop_container(&name, Some(options))
            .await
            .map_err(EngineError::refused(format!("stop container {name}")))
    }

    /// Takes a replica off the run's network (a partition).
    pub async fn disconnect(&self, replica: &str) -> Result<()> {
        let name = self.container_name(replica);
        let request = NetworkDisconnectRequest {
            container: name.clone(),
            force: Some(true),
        };
        self.docker
            .disconnect_network(&self.network_name(), request)
            .await
            .map_err(EngineError::refused(format!("disconnect {name}")))?;
        for (network, _) in self.file_networks_of(replica) {
            let network = self.file_network_name(&network);
            let request = NetworkDisconnectRequest {
                container: name.clone(),
                force: Some(true),
            };
            self.docker
                .disconnect_network(&network, request)
                .await
                .map_err(EngineError::refused(format!(
                    "disconnect {name} from {network}"
                )))?;
        }
        Ok(())
    }

    /// Puts a replica back on the run's network with its fixed address and its name.
    pub async fn reconnect(&self, replica: &str, ip: &str) -> Result<()> {
        let name = self.container_name(replica);
        let request = NetworkConnectRequest {
            container: name.clone(),
            endpoint_config: Some(endpoint(replica, ip)),
        };
        self.docker
            .connect_network(&self.network_name(), request)
            .await
            .map_err(EngineError::refused(format!("reconnect {name}")))?;
        for (network, aliases) in self.file_networks_of(replica) {
            self.connect_file_network(replica, &network, &aliases)
                .await?;
        }
        Ok(())
    }

    /// Runs a command inside a replica's container and waits for it; returns its exit code and
    /// output.
    pub async fn exec_to_end(&self, replica: &str, cmd: &[&str]) -> Result<(i64, String)> {
        let name = self.container_name(replica);
        let err = || EngineError::refused(format!("exec {cmd:?} in {name}"));
        let starting = self.starting_execs.read().await;
        let docker = self.client(replica);
        let exec = docker
            .create_exec(
                &name,
                ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    ..Default::default()
                },
            )
            .await
            .map_err(err())?;
        let mut output = String::new();
        let started = docker.start_exec(&exec.id, None).await.map_err(err())?;
        self.wait_exec_started(&docker, &exec.id).await;
        drop(starting);
        if let bollard::exec::StartExecResults::Attached {
            output: mut out, ..
        } = started
        {
            while let Some(Ok(chunk)) = out.next().await {
                output.push_str(&chunk.to_string());
            }
        }
        let code = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(err())?
            .exit_code
            .unwrap_or(-1);
        Ok((code, output))
    }

    /// Waits (at most 2 s) until the engine reports the exec's process running or finished:
    /// from then on a freeze only freezes it, like any other process of the container.
    async fn wait_exec_started(&self, docker: &Docker, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match docker.inspect_exec(id).await {
                Ok(e) if e.pid.unwrap_or(0) > 0 || e.exit_code.is_some() => return,
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(_) => return,
            }
        }
    }

    /// The lines a replica's container wrote to stdout so far.
    pub async fn stdout_lines(&self, replica: &str) -> Result<Vec<String>> {
        let options = LogsOptionsBuilder::default().stdout(true).build();
        self.log_lines(replica, options).await
    }

    /// The last `n` lines a replica's container wrote, stdout and stderr.
    pub async fn last_lines(&self, replica: &str, n: usize) -> Result<Vec<String>> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&n.to_string())
            .build();
        self.log_lines(replica, options).await
    }

    async fn log_lines(
        &self,
        replica: &str,
        options: bollard::query_parameters::LogsOptions,
    ) -> Result<Vec<String>> {
        let name = self.container_name(replica);
        let docker = self.client(replica);
        let mut stream = docker.logs(&name, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(EngineError::refused(format!("read the log of {name}")))?;
            text.push_str(&chunk.to_string());
        }
        Ok(text.lines().map(str::to_string).collect())
    }

    /// The replica's state: (running, PID of its main process, full container id).
    pub async fn state(&self, replica: &str) -> Result<(bool, i64, String)> {
        let s = self.status(replica).await?;
        Ok((s.running, s.pid, s.id))
    }

    /// The replica's container as its engine describes it.
    pub(crate) async fn inspect(
        &self,
        replica: &str,
    ) -> Result<bollard::models::ContainerInspectResponse> {
        let name = self.container_name(replica);
        // Podman's compat API says `"Status": "stopped"` (no Engine API state) for the ~100 ms
        // between a container's exit and its cleanup; asked again it says `exited`.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let answer = (self.client(replica))
                .inspect_container(&name, None::<InspectContainerOptions>)
                .await;
            match answer {
                Err(bollard::errors::Error::JsonDataError { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                answer => {
                    return answer
                        .map_err(EngineError::refused(format!("inspect container {name}")))
                }
            }
        }
    }

    /// What the engine says about a replica's container.
    pub async fn status(&self, replica: &str) -> Result<Status> {
        let info = self.inspect(replica).await?;
        let state = info.state.unwrap_or_default();
        let networks = info
            .network_settings
            .and_then(|n| n.networks)
            .map(|n| n.into_keys().collect())
            .unwrap_or_default();
        // A placed replica's PID is its machine's, which means nothing on this host.
        let pid = match self.route(replica) {
            Route::Host => state.pid.unwrap_or(0),
            Route::Machine(_) => 0,
        };
        let finished_at = state
            .finished_at
            .as_deref()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as crate::timeline::Nanos)
            .filter(|ns| *ns > 0);
        Ok(Status {
            running: state.running.unwrap_or(false),
            paused: state.paused.unwrap_or(false),
            pid,
            finished_at,
            exit_code: state.exit_code,
            id: info.id.unwrap_or_default(),
            networks,
        })
    }
}

/// A container's state as the engine reports it.
#[derive(Debug, Clone)]
pub struct Status {
    pub running: bool,
    pub paused: bool,
    /// PID of its main process on the host (0 when not running, or on a machine).
    pub pid: i64,
    /// When its main process last exited, as its engine recorded it (Unix ns).
    pub finished_at: Option<crate::timeline::Nanos>,
    /// Its main process's last exit code.
    pub exit_code: Option<i64>,
    /// Full container id.
    pub id: String,
    /// The networks it is attached to.
    pub networks: Vec<String>,
}

/// A replica's place on the run's network: its name as an alias, its fixed address.
/// `always`, `unless-stopped`, `on-failure`, `on-failure:N` as the engine's policy.
fn restart_policy(policy: &str) -> RestartPolicy {
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    let name = match name {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::NO,
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: count.parse().ok(),
    }
}

fn endpoint(replica: &str, ip: &str) -> EndpointSettings {
    EndpointSettings {
        aliases: Some(vec![replica.to_string()]),
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}
