//! The resolved experiment: what every later layer works from. Made once by
//! [`super::resolve`] from a scenario file or the Rust builder; every kind of service, probe,
//! fault and expectation is a variant holding exactly its own fields, and every reference is an
//! id into the plan, so nothing downstream looks a name up or re-checks what a kind needs.

use super::kinds;
use super::toxics;
use super::values::{
    self, Check, DiskErrno, DiskOp, DiskSpec, Extras, MachineOptions, Preset, Select, Signal,
};
use serde::Serialize;
use std::time::Duration;
use strum::{EnumDiscriminants, EnumIter, EnumString, EnumVariantNames, IntoStaticStr};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub struct $name(pub(crate) usize);
    };
}

id!(
    /// A service of the plan (its index in [`Plan::services`]).
    ServiceId
);
id!(
    /// A probe of the plan (its index in [`Plan::probes`]).
    ProbeId
);
id!(
    /// A fault of the plan (its index in [`Plan::faults`]).
    FaultId
);
id!(
    /// A machine of the plan (its index in [`Plan::machines`]).
    MachineId
);

/// One replayable experiment, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    pub incident: Option<String>,
    pub variant: String,
    pub summary: String,
    /// How long probes observe the system, counted from when they start.
    pub duration: Duration,
    /// The seed the scenario fixes, if any.
    pub seed: Option<u64>,
    /// In bring-up order (a service's `uses` come before it).
    pub services: Vec<Service>,
    pub probes: Vec<Probe>,
    pub faults: Vec<Fault>,
    pub expectations: Vec<Expectation>,
    /// The engines services may be placed on: every replica of a `machine` service, then the
    /// `[[topology.machine]]`s given by URL.
    pub machines: Vec<Machine>,
    /// Values never to be shown besides the services' environments: the Compose file's
    /// `secrets` (not serialised).
    #[serde(skip)]
    pub secrets: Vec<String>,
    /// What the Compose file says that the run does not act on, or not wholly, and why (in
    /// the file's order): printed by `validate` and `run`, kept in the report.
    pub notes: Vec<super::values::Note>,
}

/// A Docker engine of its own that services can be placed on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    pub id: MachineId,
    /// A replica name of a `machine` service (`m1`) or a `[[topology.machine]]`'s name.
    pub name: String,
    pub engine: MachineEngine,
}

/// How the harness reaches a machine's engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum MachineEngine {
    /// A Docker-in-Docker machine the run starts (a replica of this `machine` service): its
    /// engine at `https://<its address>:2376` (the run's client certificate) once it is up.
    Started(ServiceId),
    /// An engine that exists already; what runs on it is reached at `address`.
    Url {
        url: super::engine_url::EngineUrl,
        address: String,
        /// A plain `tcp://` engine off loopback, accepted by the file's `insecure = true`.
        insecure: bool,
    },
}

impl Plan {
    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[id.0]
    }
    pub fn probe(&self, id: ProbeId) -> &Probe {
        &self.probes[id.0]
    }
    pub fn fault(&self, id: FaultId) -> &Fault {
        &self.faults[id.0]
    }
    pub fn machine(&self, id: MachineId) -> &Machine {
        &self.machines[id.0]
    }
    /// The machines reached over plain HTTP off loopback (`insecure = true`): their names
    /// and URLs, for the run's header and report.
    pub fn insecure_machines(&self) -> Vec<(String, String)> {
        self.machines
            .iter()
            .filter_map(|m| match &m.engine {
                MachineEngine::Url {
                    url,
                    insecure: true,
                    ..
                } => Some((m.name.clone(), url.to_string())),
                _ => None,
            })
            .collect()
    }
    /// Where `replica` runs (Local for a name that is no replica).
    pub fn placement_of(&self, replica: &str) -> Placement {
        let Some(s) = self.service_of(replica) else {
            return Placement::Local;
        };
        let i = s.replicas.iter().position(|r| r == replica).unwrap_or(0);
        s.placement_of(i)
    }
    /// The machine `replica` is placed on (None: the run's own engine and network).
    pub fn placement(&self, replica: &str) -> Option<&Machine> {
        let s = self.service_of(replica)?;
        let i = s.replicas.iter().position(|r| r == replica)?;
        s.placement.get(i).map(|m| self.machine(*m))
    }
    /// The service that owns `replica`.
    pub fn service_of(&self, replica: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.replicas.iter().any(|r| r == replica))
    }
    /// Every replica of every service, in bring-up order.
    pub fn replicas(&self) -> impl Iterator<Item = &String> {
        self.services.iter().flat_map(|s| s.replicas.iter())
    }
    /// The project images (directories of `images/`) the plan runs, machines' units included.
    pub fn project_images(&self) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        for s in &self.services {
            if let ServiceKind::Machine(_) = &s.kind {
                names.extend(["machine".to_string(), "machine-unit".to_string()]);
            } else if let Image::Project(name) = &s.image {
                names.insert(name.clone());
            }
        }
        // The machines' helper runs machine-unit's init.
        if self.faults.iter().any(|f| self.needs_helpers(f)) {
            names.insert("machine-unit".to_string());
        }
        names
    }
    /// Whether fault `f` acts on machines through helper containers (`engine::machine_tool`):
    /// a partition or a lossy link between machines, an engine crash on a machine known by URL.
    pub fn needs_helpers(&self, f: &Fault) -> bool {
        let placement = &self.service(f.target).placement;
        let by_url = placement
            .iter()
            .any(|m| matches!(self.machine(*m).engine, MachineEngine::Url { .. }));
        use FaultKind::*;
        match f.kind {
            MachinePartition { .. } => true,
            Netem { .. } => !placement.is_empty(),
            DaemonCrash { .. } => by_url,
            Kill { .. }
            | Restart { .. }
            | RollingRestart { .. }
            | PowerCut { .. }
            | Leak { .. } => false,
            Pause { .. } | Stop { .. } | Partition { .. } | Cut { .. } | Clock { .. } => false,
            SickLink { .. } => false,
            DiskLatency { .. } | DiskError { .. } | DiskFull { .. } => false,
        }
    }
}

/// What a service is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ServiceKind {
    /// Described only by its image, command, environment and `ready` check.
    Generic,
    /// A built-in kind that supplies its image, environment and readiness (never `Machine`).
    Preset(Preset),
    /// Docker-in-Docker hosts with their units (the `machine` preset).
    Machine(MachineOptions),
    /// Containers that something else started (testcontainers, a Compose project): attached by
    /// id, acted on and observed, never created or removed by the run.
    Attached(Vec<String>),
}

/// The image a service runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Image {
    /// One of the project's images, by its directory in `images/`: built by the harness.
    Project(String),
    /// A `name:tag` the local engine holds.
    Local(String),
    /// Built from a directory with a Dockerfile (classic builder), tagged by a hash of the
    /// context: `aftershock-build/<service>:<hash>`.
    Build {
        context: std::path::PathBuf,
        dockerfile: String,
        args: Vec<(String, String)>,
        /// The stage to build (None: the last).
        target: Option<String>,
    },
    /// No image of ours: attached containers.
    None,
}

/// What the engine does when a replica's main process exits (Compose's `restart:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum Restart {
    /// Nothing: the replica stays down until a heal starts it (the default).
    #[default]
    No,
    Always,
    UnlessStopped,
    /// Restarted after a non-zero exit, at most this many times (None: no limit).
    OnFailure(Option<u32>),
}

impl Restart {
    /// `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`.
    pub fn parse(policy: &str) -> Result<Restart, UnknownRestart> {
        Ok(match policy {
            "no" => Restart::No,
            "always" => Restart::Always,
            "unless-stopped" => Restart::UnlessStopped,
            "on-failure" => Restart::OnFailure(None),
            other => match other.strip_prefix("on-failure:").map(str::parse) {
                Some(Ok(n)) => Restart::OnFailure(Some(n)),
                _ => return Err(UnknownRestart(other.to_string())),
            },
        })
    }
}

/// A `restart` policy that is none of those [`Restart::parse`] knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("restart `{0}` must be one of no, always, unless-stopped, on-failure[:N]")]
pub struct UnknownRestart(pub String);

/// When a replica is ready: one check, polled until it passes or `timeout` runs out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ready {
    #[serde(skip)]
    pub check: Check,
    pub timeout: Duration,
    /// Time between two attempts.
    pub interval: Duration,
    /// Deadline of one attempt.
    pub attempt_timeout: Duration,
}

/// A service of the topology.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub id: ServiceId,
    pub name: String,
    /// Replica names in order (`zk1`, `zk2`, … or just `api`; attached: the containers' names).
    pub replicas: Vec<String>,
    pub kind: ServiceKind,
    pub image: Image,
    pub entrypoint: Option<Vec<String>>,
    pub command: Vec<String>,
    /// `KEY=value` for every replica.
    pub env: Vec<String>,
    /// Named volumes (name, path in the container).
    pub volumes: Vec<(String, String)>,
    pub memory_mib: Option<u64>,
    pub cpus: Option<f64>,
    pub oom_score_adj: Option<i64>,
    /// The services this one starts after: each ready first, or only started if it is in
    /// `uses_started`.
    pub uses: Vec<ServiceId>,
    /// Of `uses`, those this service waits for only to have started (Compose's `depends_on`
    /// without a condition or with `service_started`).
    pub uses_started: Vec<ServiceId>,
    pub disk: Option<DiskSpec>,
    /// The service's own `ready` check (None: the preset's, else "running").
    pub ready: Option<Ready>,
    pub restart: Restart,
    /// More DNS names of every replica on the run's network.
    pub aliases: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// The machine of each replica, in replica order; empty: the run's own engine.
    pub placement: Vec<MachineId>,
    /// What each replica runs, in replica order: `entrypoint`, `command` and `env` above with
    /// `{replica}` and `{index}` replaced (those above are as written).
    pub per_replica: Vec<ReplicaValues>,
    /// How to ask a replica whether it leads (None: only a preset that knows can say).
    pub leader: Option<LeaderCheck>,
    /// Host mounts, the file's networks, how it stops (a Compose file's).
    pub extras: Extras,
}

/// One replica's own entrypoint, command and environment (`{replica}`, `{index}` replaced).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaValues {
    pub entrypoint: Option<Vec<String>>,
    pub command: Vec<String>,
    /// `KEY=value`.
    pub env: Vec<String>,
}

/// How to ask each replica whether it leads; the one that says yes is the leader.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderCheck {
    /// One question per replica, in replica order (`{replica}`, `{index}` replaced).
    pub per_replica: Vec<LeaderAsk>,
    /// Text the answer must contain to mean "I lead" (besides exit 0 or the status).
    pub contains: Option<String>,
    /// The longest wait for one replica's answer.
    pub timeout: Duration,
}

/// The question a [`LeaderCheck`] asks one replica.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum LeaderAsk {
    /// A command run inside the replica; exit 0 means it leads.
    Exec(Vec<String>),
    /// An HTTP request to the replica; `status` (None: any 2xx) means it leads.
    Http {
        port: u16,
        method: String,
        path: String,
        body: Option<String>,
        status: Option<u16>,
    },
}

/// Where a replica runs: on the run's own engine (this host, its kernel the harness's
/// witness), or on a machine's engine (that engine the only witness). A service is placed
/// whole or not at all (the resolver sees to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On the run's own engine and network.
    Local,
    /// On a machine's engine, with the machine's network.
    Machine(MachineId),
}

impl Service {
    /// Where replica `i` runs.
    pub fn placement_of(&self, i: usize) -> Placement {
        self.placement
            .get(i)
            .map_or(Placement::Local, |m| Placement::Machine(*m))
    }
    /// Where the service runs: its first replica's placement (placed whole or not at all).
    pub fn runs_on(&self) -> Placement {
        self.placement_of(0)
    }
    /// Whether this service is of `preset` (machines count as `Preset::Machine`).
    pub fn is(&self, preset: Preset) -> bool {
        self.preset() == Some(preset)
    }
    /// The preset, if any (machines: `Preset::Machine`).
    pub fn preset(&self) -> Option<Preset> {
        match &self.kind {
            ServiceKind::Preset(p) => Some(*p),
            ServiceKind::Machine(_) => Some(Preset::Machine),
            ServiceKind::Generic | ServiceKind::Attached(_) => None,
        }
    }
    /// Whether the run can ask who leads: a `leader` check, or a preset that elects one.
    pub fn knows_leader(&self) -> bool {
        let preset_knows = match self.preset() {
            Some(Preset::Zookeeper) => true,
            Some(
                Preset::ToyApi
                | Preset::Datastore
                | Preset::Memcached
                | Preset::Postgres
                | Preset::Machine,
            )
            | None => false,
        };
        self.leader.is_some() || preset_knows
    }
    /// The port the service's `ready` check talks to, if it talks to one.
    pub fn ready_port(&self) -> Option<u16> {
        match self.ready.as_ref().map(|r| &r.check) {
            Some(Check::Tcp(p)) | Some(Check::Http { port: p, .. }) => Some(*p),
            Some(Check::Exec(_)) | None => None,
        }
    }
}

/// An observer of the system.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub id: ProbeId,
    pub name: String,
    pub target: ServiceId,
    pub interval: Duration,
    pub timeout: Duration,
    pub kind: ProbeKind,
}

/// What a probe does, with exactly what that needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ProbeKind {
    /// Creates a znode per sample; reads back which acknowledged ones exist. `on`: through
    /// that member only (a side of a partition), else through any of the target's replicas
    /// and `members` (the replicas of the other services of one ensemble).
    ZookeeperWrite {
        on: Option<String>,
        members: Vec<String>,
    },
    /// Asks every member for its mode; ok when one is leader.
    ZookeeperMode,
    /// Appends a record per sample (padded to `record_bytes`); reads back what survived.
    DatastoreAppend { record_bytes: Option<usize> },
    /// Inserts a row per sample; reads back which acknowledged rows survived.
    PostgresInsert,
    /// A generic check (tcp, http, exec) on one replica.
    Check { replica: String, check: Check },
    /// Open-loop HTTP load.
    Load(Load),
    /// consul KV GET of `key` on the machines.
    ConsulKv { key: String },
    /// consul's leader on the machines.
    ConsulLeader,
    /// The registry's `/v2/`.
    Registry,
    /// A real `docker pull` (and push) through the registry by machine `on`.
    RegistryPull { on: String, push: bool },
    /// Writes record `{n}` per sample through templates; reads back which survived.
    Write { replica: String, via: WriteVia },
    /// memcached's `set` then `get` of a key per sample, on one replica.
    MemcachedSet { replica: String },
}

/// How a generic write probe writes and reads back (`{n}`: the record's number).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum WriteVia {
    /// Commands exec'd in the replica: exit 0 acknowledges; `read` prints what is present.
    Exec {
        write: Vec<String>,
        read: Vec<String>,
    },
    /// HTTP requests to the replica: a 2xx acknowledges; a GET of `read_path` lists what is
    /// present, or (when `read` is not empty) that command exec'd in the replica.
    Http {
        port: u16,
        method: String,
        path: String,
        body: Option<String>,
        read_path: String,
        read: Vec<String>,
    },
}

impl ProbeKind {
    /// The kind as a file names it (`kind = "…"`).
    pub fn file_kind(&self) -> values::ProbeKind {
        use values::ProbeKind as K;
        match self {
            ProbeKind::ZookeeperWrite { .. } => K::ZookeeperWrite,
            ProbeKind::MemcachedSet { .. } => K::MemcachedSet,
            ProbeKind::ZookeeperMode => K::ZookeeperMode,
            ProbeKind::DatastoreAppend { .. } => K::DatastoreAppend,
            ProbeKind::PostgresInsert => K::PostgresInsert,
            ProbeKind::Check { check, .. } => match check {
                Check::Tcp(_) => K::Tcp,
                Check::Http { .. } => K::Http,
                Check::Exec(_) => K::Exec,
            },
            ProbeKind::Load(_) => K::Load,
            ProbeKind::ConsulKv { .. } => K::ConsulKv,
            ProbeKind::ConsulLeader => K::ConsulLeader,
            ProbeKind::Registry => K::Registry,
            ProbeKind::RegistryPull { .. } => K::RegistryPull,
            ProbeKind::Write { .. } => K::Write,
        }
    }

    /// Whether the probe keeps a ledger of writes and reads it back at the end.
    pub fn writes(&self) -> bool {
        self.file_kind().writes()
    }
}

/// An open-loop load: GET `path` (`{key}` replaced by a seeded key in 1..=`keys`) at `rate`/s.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    pub path: String,
    /// The HTTP port (default 8080, the toy API's).
    pub port: u16,
    pub rate: u32,
    pub keys: Option<u32>,
    /// Read every key once before the observation starts.
    pub prime: bool,
    /// Run the same load before the observation until the target is steady, at most this
    /// long ([`crate::check::steady`]).
    pub warm_up: Option<std::time::Duration>,
}

/// A fault in the schedule.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub id: FaultId,
    pub name: String,
    /// When, counted from the start of the probes.
    pub at: Duration,
    pub target: ServiceId,
    pub select: Select,
    pub kind: FaultKind,
}

/// What a fault does, with exactly what that needs. `down_for: None` heals at the end of the
/// observation. Its kinds without their data are [`FaultKindName`], the file's
/// `kind = "…"` (`file::FaultKind`): their names are these variants' in kebab-case.
#[derive(Debug, Clone, PartialEq, Serialize, EnumDiscriminants)]
#[strum_discriminants(
    name(FaultKindName),
    derive(Hash, IntoStaticStr, EnumString, EnumVariantNames, EnumIter),
    strum(serialize_all = "kebab-case")
)]
pub enum FaultKind {
    /// Signal the selected replicas at the same instant; they stay down until healed
    /// (after `down_for`, or at the end of the run).
    Kill {
        signal: Signal,
        down_for: Option<Duration>,
    },
    /// Like `kill`, then start them all again after `down_for`.
    Restart { signal: Signal, down_for: Duration },
    /// Restart the selected replicas one at a time, waiting for each to rejoin before the next.
    RollingRestart {
        signal: Signal,
        rejoin_timeout: Duration,
    },
    /// Cut the power of the selected replicas' disks: freeze, shut the file system down
    /// without flushing, kill; after `down_for`, mount again (the journal replays) and start.
    PowerCut {
        down_for: Option<Duration>,
        /// Sector size of a torn write (512 or 4096 bytes), on a lossy disk.
        tear: Option<u64>,
    },
    /// Run the leak agent inside the selected replica (it allocates and touches
    /// `leak_mib_per_s`) until the kernel's OOM killer acts; the replica stays down for
    /// `down_for` after it died, then is started again (the heal).
    Leak {
        mib_per_s: u32,
        down_for: Duration,
        /// The longest wait for the OOM kill.
        oom_timeout: Duration,
    },
    /// SIGKILL the dockerd of each selected machine, one after another `gap` apart; their init
    /// brings it back. Healed when every engine answers again.
    DaemonCrash { gap: Duration },
    /// Freeze the selected replicas (the cgroup freezer, `docker pause`); heal: unpause.
    /// Verified by the engine's state and the kernel's freezer state.
    Pause { down_for: Option<Duration> },
    /// Stop the selected replicas (`docker stop`: SIGTERM, SIGKILL after 2 s); heal: start.
    Stop { down_for: Option<Duration> },
    /// Cut the selected replicas off the run's network (`docker network disconnect`): no
    /// other replica, and not the harness, reaches them; heal: connect again with the same
    /// address and name. Verified by connection attempts that fail during and succeed after.
    Partition {
        down_for: Option<Duration>,
        /// The port verification connects to.
        port: u16,
    },
    /// Cut the machines of the selected replicas (placed with `machine = …`) off from every
    /// other machine of the run, both ways, with iptables rules on each cut machine (put there
    /// through its engine); the harness still reaches every machine. Heal: delete the rules.
    /// Verified by connections from a cut machine to a replica on the other side (`port`).
    MachinePartition {
        down_for: Option<Duration>,
        /// The port verification connects to, from the cut side to the other.
        port: u16,
    },
    /// Delay (`delay`: `tc qdisc … netem`, needs the kernel's netem qdisc) and/or drop at
    /// random (`loss_percent`: an iptables `statistic` rule) the selected replicas' packets, in
    /// their network namespace (`nsenter` from the host); heal: delete both. Verified by
    /// `tc qdisc show` / `iptables -S` and by TCP handshakes measured before, during and after
    /// (round trip, share lost).
    Netem {
        down_for: Option<Duration>,
        delay: Option<Duration>,
        loss_percent: Option<f64>,
        port: u16,
    },
    /// Cut chosen replicas of the service from chosen others only, in their own network
    /// namespaces (iptables DROP rules by source address, `nsenter` from the host): `shape`
    /// says who is cut from whom (the selected replicas from `peers`, a bridge, a ring of
    /// majorities); `one_way` cuts only what the cut side sends of its own accord (its
    /// connections to the others time out, theirs to it still answer). Heal: delete the rules.
    /// Verified by TCP connections from inside every replica's namespace to every other
    /// replica (`port`): each cut pair gets no answer, every other pair answers; after the
    /// heal, every pair answers.
    Cut {
        down_for: Option<Duration>,
        shape: values::CutShape,
        /// For `isolate`: the replicas the selected ones are cut from (empty: all the others).
        peers: Vec<String>,
        one_way: bool,
        port: u16,
    },
    /// Move the selected replicas' wall clock by `offset_ms` (forward, or back when negative)
    /// without touching the host's: libfaketime (in the project's base image) is preloaded
    /// into the containers of every service a clock fault targets at bring-up, reading its
    /// offset from a file the fault rewrites (the monotonic clocks are left alone). Heal: the
    /// offset back to 0. Verified by the container's clock read inside (`date`, through the
    /// preload) against its unfaked one on either side: within [`CLOCK_BUDGET_MS`] of the
    /// offset, with the container's monotonic clock (Perl's `clock_gettime`, where the image
    /// has Perl) measured not moved, and by the service's own process having the library
    /// mapped (a static or Go binary bypasses it: the verification fails and says so).
    Clock {
        down_for: Option<Duration>,
        offset_ms: i64,
        /// Strobing: `offset_ms` for this long, then 0 for as long, until the heal; verified
        /// by reads inside the container that see both.
        strobe: Option<Duration>,
    },
    /// Make the selected replicas' incoming TCP connections on `port` sick with `toxics`
    /// (Toxiproxy's: latency with jitter, bandwidth, slicer, limit_data, timeout, reset_peer,
    /// slow_close) on the `stream` they name: a proxy (the project's `sicklink`) started by
    /// the harness in the replica's network namespace, and an iptables `REDIRECT` of new
    /// connections arriving from outside the container to it (a client inside the container,
    /// on loopback, is not redirected); connections established before are reset (`ss -K`)
    /// so their clients come back through it. Heal: the rule deleted and the proxy stopped
    /// (the connections made through it are closed). Verified by exchanges through the port from
    /// the host's namespace, timed: the toxics seen (held at least the latency, reset, silent,
    /// cut short), and back to the plain round trip after the heal.
    SickLink {
        down_for: Option<Duration>,
        port: u16,
        stream: toxics::LinkStream,
        toxics: Vec<toxics::Toxic>,
    },
    /// A slow disk: every operation of `ops` on the selected replicas' `lossy = true` disk
    /// waits `latency` before lossyfs serves it (dm-delay's read / write / flush classes;
    /// `ops = ["fsync"]` alone is a disk whose flushes crawl: a saturated network volume, a
    /// dying SSD). Other operations go on meanwhile. Heal: no delay (waiting operations are
    /// served at once). Verified inside the container: a 4 KiB write, its fsync and a read
    /// timed with the container's own clock before, during and after; each hit operation
    /// takes at least `latency` during, and less than half of it after.
    DiskLatency {
        down_for: Option<Duration>,
        latency: Duration,
        ops: Vec<DiskOp>,
    },
    /// A failing disk: `percent` of the operations of `ops` on the selected replicas'
    /// `lossy = true` disk (drawn from the fault's seed) answer `errno` (chaos-mesh's IOChaos
    /// `fault`, dm-flakey's `error_writes`; an fsync answering EIO is PostgreSQL's 2018
    /// "fsyncgate"). Heal: no errors. Verified inside: writes and fsyncs of a small file answer
    /// `errno` during (the share measured), and succeed after.
    DiskError {
        down_for: Option<Duration>,
        errno: DiskErrno,
        percent: f64,
        ops: Vec<DiskOp>,
        /// A failed fsync forgets the writes it was to flush (Linux marks the pages clean):
        /// a retried fsync succeeds and they never reach the disk.
        forget_writes: bool,
    },
    /// A full disk: the selected replicas' `lossy = true` disk takes `room_bytes` more written
    /// bytes, then every write answers ENOSPC (reads, fsyncs and metadata still work). Heal:
    /// room again. Verified inside: a write past the room answers ENOSPC during and succeeds after.
    DiskFull {
        down_for: Option<Duration>,
        room_bytes: u64,
    },
}

/// How far a clock fault's measured offset may be from the requested one, in ms.
pub const CLOCK_BUDGET_MS: f64 = 10.0;

impl FaultKind {
    /// How long the targets stay down before the heal (None: until the observation ends).
    pub fn down_for(&self) -> Option<Duration> {
        use FaultKind::*;
        match self {
            Kill { down_for, .. }
            | PowerCut { down_for, .. }
            | Pause { down_for }
            | Stop { down_for }
            | Partition { down_for, .. }
            | MachinePartition { down_for, .. }
            | Netem { down_for, .. }
            | Cut { down_for, .. }
            | Clock { down_for, .. }
            | SickLink { down_for, .. } => *down_for,
            DiskLatency { down_for, .. }
            | DiskError { down_for, .. }
            | DiskFull { down_for, .. } => *down_for,
            Restart { down_for, .. } | Leak { down_for, .. } => Some(*down_for),
            RollingRestart { .. } | DaemonCrash { .. } => None,
        }
    }

    /// Whether the nemesis verifies this fault on the system ([`FaultKindName::verified`]).
    pub fn verified(&self) -> bool {
        FaultKindName::from(self).verified()
    }

    /// The file's name of the kind (`kill`, `power-cut`, …).
    pub fn name(&self) -> &'static str {
        FaultKindName::from(self).name()
    }
}

kinds::named!(FaultKindName);

impl FaultKindName {
    /// Whether the nemesis verifies this kind of fault on the system: that it took effect on
    /// every target, then that it healed (`fault-verified`; what `expect fault-verified`
    /// judges). The kinds whose action in the runtime's `fault/` has a `verify`.
    pub fn verified(self) -> bool {
        use FaultKindName::*;
        match self {
            Kill | Restart | Pause | Stop | Partition | MachinePartition | Netem | Cut | Clock => {
                true
            }
            SickLink => true,
            DiskLatency | DiskError | DiskFull => true,
            RollingRestart | PowerCut | Leak | DaemonCrash => false,
        }
    }
}

/// An invariant with a budget.
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    /// The report's words for it (None: made from the kind).
    pub title: Option<String>,
    pub kind: Expect,
}

/// What an expectation judges, with exactly what that needs. Its kinds without their data are
/// [`ExpectationKind`], the file's `kind = "…"`: their names are these variants' in kebab-case.
#[derive(Debug, Clone, PartialEq, Serialize, EnumDiscriminants)]
#[strum_discriminants(
    name(ExpectationKind),
    derive(Hash, IntoStaticStr, EnumString, EnumVariantNames, EnumIter),
    strum(serialize_all = "kebab-case")
)]
pub enum Expect {
    /// The probe failed without interruption for at least `min` while `fault` was in effect.
    FailsDuring {
        probe: ProbeId,
        fault: FaultId,
        min: Duration,
    },
    /// After `fault` healed, the probe succeeds again (and keeps succeeding) within `budget`.
    RecoversWithin {
        probe: ProbeId,
        fault: FaultId,
        budget: Duration,
    },
    /// The probe never failed from `fault`'s start to the end of the run (or the whole run).
    NeverFails {
        probe: ProbeId,
        fault: Option<FaultId>,
    },
    /// After `fault` healed, the probe kept failing for at least `min` (it did not recover by itself).
    StaysDown {
        probe: ProbeId,
        fault: FaultId,
        min: Duration,
    },
    /// Every acknowledged write of the probe is present at the end.
    NoLostWrites { probe: ProbeId },
    /// At least `at_least` acknowledged writes of the probe are gone at the end (the failure
    /// an as-it-was scenario demonstrates).
    LosesWrites { probe: ProbeId, at_least: f64 },
    /// The records read back are in write order with no acknowledged record missing before
    /// the last one present (the log is a prefix of what was written).
    OrderedPrefix { probe: ProbeId },
    /// The killed processes of `fault` exited within `budget` of each other.
    Simultaneous { fault: FaultId, budget: Duration },
    /// The fault (a rolling restart) finished within `budget`.
    CompletesWithin { fault: FaultId, budget: Duration },
    /// The `fault`'s target was started again within `budget` of dying (`die` → `start`).
    RestartedWithin { fault: FaultId, budget: Duration },
    /// The kernel's OOM killer acted within `budget` of the `fault` (a leak) starting, and
    /// killed the process named `victim`.
    OomKillWithin {
        fault: FaultId,
        budget: Duration,
        victim: String,
    },
    /// While the `fault`'s target was down, the `probe`'s (load) 1-s p99 rose to at least
    /// `ratio` × its baseline (the p99 before the fault).
    LatencyRises {
        probe: ProbeId,
        fault: FaultId,
        ratio: f64,
    },
    /// From the `fault` on, every 1-s p99 of the `probe` (load) stayed within `ratio` × baseline.
    LatencyStaysWithin {
        probe: ProbeId,
        fault: FaultId,
        ratio: f64,
    },
    /// After the `fault`'s target started again, the `probe` (load) was warm within `budget`:
    /// hit ratio ≥ `hit_fraction` × baseline and p99 ≤ `ratio` × baseline.
    WarmUpWithin {
        probe: ProbeId,
        fault: FaultId,
        budget: Duration,
        hit_fraction: f64,
        ratio: f64,
    },
    /// No request of the `probe` (load) failed: no 5xx, no timeout, no connection error.
    NoErrors { probe: ProbeId },
    /// The probe's last samples all fail with a detail containing `matching`: how the run ends
    /// (e.g. "key absent": consul answers, the key is gone).
    EndsFailing { probe: ProbeId, matching: String },
    /// The probe's longest outage from `fault`'s start on is at most `budget` (a leader-less
    /// window, the registry's unavailability).
    OutageWithin {
        probe: ProbeId,
        fault: FaultId,
        budget: Duration,
    },
    /// Every measurement `<fault>/<measurement>…` of the fault is at most `budget` (e.g. each
    /// machine's engine downtime).
    MeasuredWithin {
        fault: FaultId,
        budget: Duration,
        prefix: String,
    },
    /// A named measurement (`measurement`) is within `at_most` and/or at least `at_least`
    /// (numbers in the measurement's own unit).
    Measurement {
        name: String,
        at_least: Option<f64>,
        at_most: Option<f64>,
    },
    /// No container inside a machine dies from `fault`'s start on (live-restore).
    ContainersSurvive { fault: FaultId },
    /// After `fault`'s start, `unit` reaches a state containing `matching` on some machine.
    UnitReaches {
        fault: FaultId,
        unit: String,
        matching: String,
    },
    /// The `fault` was verified to have taken effect on every target and to have been healed.
    FaultVerified { fault: FaultId },
}

impl Expect {
    /// The probe judged, if the kind reads one.
    pub fn probe(&self) -> Option<ProbeId> {
        use Expect::*;
        match self {
            FailsDuring { probe, .. }
            | RecoversWithin { probe, .. }
            | NeverFails { probe, .. }
            | StaysDown { probe, .. }
            | NoLostWrites { probe }
            | LosesWrites { probe, .. }
            | OrderedPrefix { probe }
            | LatencyRises { probe, .. }
            | LatencyStaysWithin { probe, .. }
            | WarmUpWithin { probe, .. }
            | NoErrors { probe }
            | EndsFailing { probe, .. }
            | OutageWithin { probe, .. } => Some(*probe),
            Simultaneous { .. }
            | CompletesWithin { .. }
            | RestartedWithin { .. }
            | OomKillWithin { .. }
            | MeasuredWithin { .. }
            | Measurement { .. }
            | ContainersSurvive { .. }
            | UnitReaches { .. }
            | FaultVerified { .. } => None,
        }
    }

    /// The fault judged, if the kind reads one.
    pub fn fault(&self) -> Option<FaultId> {
        use Expect::*;
        match self {
            NeverFails { fault, .. } => *fault,
            FailsDuring { fault, .. }
            | RecoversWithin { fault, .. }
            | StaysDown { fault, .. }
            | Simultaneous { fault, .. }
            | CompletesWithin { fault, .. }
            | RestartedWithin { fault, .. }
            | OomKillWithin { fault, .. }
            | LatencyRises { fault, .. }
            | LatencyStaysWithin { fault, .. }
            | WarmUpWithin { fault, .. }
            | OutageWithin { fault, .. }
            | MeasuredWithin { fault, .. }
            | ContainersSurvive { fault }
            | UnitReaches { fault, .. }
            | FaultVerified { fault } => Some(*fault),
            NoLostWrites { .. }
            | LosesWrites { .. }
            | OrderedPrefix { .. }
            | NoErrors { .. }
            | EndsFailing { .. }
            | Measurement { .. } => None,
        }
    }

    /// The time the kind allows (a maximum) or requires (a minimum), if it is a time.
    pub fn time_budget(&self) -> Option<Duration> {
        use Expect::*;
        match self {
            FailsDuring { min, .. } | StaysDown { min, .. } => Some(*min),
            RecoversWithin { budget, .. }
            | Simultaneous { budget, .. }
            | CompletesWithin { budget, .. }
            | RestartedWithin { budget, .. }
            | OomKillWithin { budget, .. }
            | WarmUpWithin { budget, .. }
            | OutageWithin { budget, .. }
            | MeasuredWithin { budget, .. } => Some(*budget),
            NeverFails { .. }
            | NoLostWrites { .. }
            | LosesWrites { .. }
            | OrderedPrefix { .. }
            | LatencyRises { .. }
            | LatencyStaysWithin { .. }
            | NoErrors { .. }
            | EndsFailing { .. }
            | Measurement { .. }
            | ContainersSurvive { .. }
            | UnitReaches { .. }
            | FaultVerified { .. } => None,
        }
    }

    /// The kind as a file names it.
    pub fn file_kind(&self) -> ExpectationKind {
        self.into()
    }
}

kinds::named!(ExpectationKind);
