//! The plain values both the file form and the plan hold (a check, a disk, a machine's
//! options, the presets, the file's probe kinds, a selection, a signal, a cut's shape): below
//! both, so the plan does not depend on the file form's module nor the file form on the plan's
//! values. `file` re-exports them under their old paths.

use super::kinds;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use strum::{EnumIter, EnumString, EnumVariantNames, IntoStaticStr};

/// One check of a `ReadyCheck` or of a generic probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Check {
    /// Connects to this port.
    Tcp(u16),
    /// GETs `path` on this port; ok on `status` (None: any 2xx).
    Http {
        port: u16,
        path: String,
        status: Option<u16>,
    },
    /// Runs this command inside the replica; ok on exit 0.
    Exec(Vec<String>),
}

impl Preset {
    /// The project image (directory of `images/`) a preset runs.
    pub fn image(self) -> &'static str {
        match self {
            Preset::Zookeeper => "zookeeper",
            Preset::ToyApi => "toy-api",
            Preset::Datastore => "datastore",
            Preset::Memcached => "memcached",
            Preset::Postgres => "postgres",
            Preset::Machine => "machine",
        }
    }

    /// The port its protocol answers on (a machine: its engine's).
    pub const fn port(self) -> u16 {
        match self {
            Preset::Zookeeper => 2181,
            Preset::ToyApi => 8080,
            Preset::Datastore => 7000,
            Preset::Memcached => 11211,
            Preset::Postgres => 5432,
            Preset::Machine => 2376,
        }
    }
}

/// A replica's own disk: `disk = { size_mb = 256, path = "/data" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    pub size_mb: u64,
    /// Where it is mounted inside the container.
    pub path: String,
    /// Put lossyfs (our FUSE file system, see `lossyfs/`) between the container and the disk:
    /// un-fsynced writes and entry operations stay in memory, so a power cut loses exactly
    /// them and can tear the last writes (`tear` on the `power-cut` fault).
    #[serde(default)]
    pub lossy: bool,
}

/// What only a Compose file says of a service (the scenario grammar has no keys for it):
/// host files mounted, the file's networks it joins, how it is stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extras {
    /// Host files and directories mounted in every replica (bind mounts, `secrets`,
    /// `configs`): inside the project directory, checked again when the run starts.
    pub mounts: Vec<Mount>,
    /// The file's networks the service joins, besides the run's own (which every service is
    /// on, so the harness reaches every replica), with its aliases on each.
    pub networks: Vec<NetworkJoin>,
    /// The signal `docker stop` (and a `stop` fault) sends first (`stop_signal`).
    pub stop_signal: Option<String>,
    /// How long a stop waits before SIGKILL (`stop_grace_period`; None: the fault's default).
    pub stop_grace: Option<Duration>,
    /// Named volumes the file mounts in more than one service `(name, path in the container)`:
    /// one per run, mounted by every replica of every service that names it (as Compose
    /// shares them), where the per-replica ones are each replica's own.
    pub shared_volumes: Vec<(String, String)>,
    /// Ready by its image's own health check: a service waits for this one to be healthy
    /// (`condition: service_healthy`) and the file gives it none. The run reads the image's
    /// `HEALTHCHECK` before bring-up and refuses if it has none.
    pub image_health: Option<ImageHealth>,
    /// A one-shot job others wait on to complete (`condition: service_completed_successfully`:
    /// a migration, an init): started before them, ready once every replica has exited 0; not
    /// what the run observes (the audit plans no probe or fault for it).
    pub runs_once: bool,
}

/// Where a wait on an image's own health check is written, for the run's refusal when the
/// image has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageHealth {
    /// `file:line` of the first `depends_on` entry that waits for it to be healthy.
    pub at: String,
    /// The service that waits.
    pub waiter: String,
}

/// A host path mounted in a replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Absolute, inside `project`.
    pub source: std::path::PathBuf,
    /// The path inside the container.
    pub target: String,
    pub read_only: bool,
    /// The directory of the Compose file: `source` must stay inside it.
    pub project: std::path::PathBuf,
}

/// A network of the Compose file a service joins, and the service's aliases on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkJoin {
    /// As the file names it (the run's network for it is named after it).
    pub name: String,
    pub aliases: Vec<String>,
}

/// How a machine's init starts its units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitStyle {
    /// `docker run --rm --name X …` as is (clearbit, 2016).
    #[default]
    DockerRunRm,
    /// `docker rm -f X` first, then `docker run --rm --name X …` (their remedy).
    RmThenRun,
}

/// Where the registry unit reads its configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistryConfig {
    /// From consul's key/value store at start (2016): no consul, no registry.
    #[default]
    Consul,
    /// A file in the registry's image (the remedy).
    Local,
}

/// The options of a `machine` service (Docker-in-Docker hosts with consul and a registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineOptions {
    #[serde(default)]
    pub unit_style: UnitStyle,
    /// consul's data directory (and the registry's storage) on the machine's disk instead of
    /// inside the unit's `--rm` container.
    #[serde(default)]
    pub persistent_data: bool,
    #[serde(default)]
    pub registry_config: RegistryConfig,
    /// dockerd `--live-restore`: containers keep running while the daemon is down.
    #[serde(default)]
    pub live_restore: bool,
    /// Units run with `--rm` (default). Turn it off with live-restore: dockerd 20.10 kills and
    /// removes `--rm` containers when it restores, live-restore or not (moby/moby#46308, fixed
    /// in 24.0).
    #[serde(default = "default_true")]
    pub auto_remove: bool,
    /// Adds a `canary` unit run by a docker client speaking this API version (e.g. "1.24",
    /// whose CLI removes `--rm` containers itself): shows the stale-name conflict where it exists.
    #[serde(default)]
    pub canary_client_api: Option<String>,
    /// Adds two containers left to the engine, `--restart always` and `--restart unless-stopped`,
    /// to record what the engine does with them after a crash.
    #[serde(default)]
    pub policy_canaries: bool,
    /// systemd's `RestartSec`: delay before dockerd or a unit is restarted after it exits.
    #[serde(default = "default_restart_sec", with = "humantime_serde")]
    pub restart_sec: Duration,
    /// The clearbit units (consul everywhere, the registry on the first machine). `false`: a
    /// bare engine, for services of your own placed on the machines.
    #[serde(default = "default_true")]
    pub units: bool,
}

fn default_true() -> bool {
    true
}

fn default_restart_sec() -> Duration {
    Duration::from_secs(2)
}

impl Default for MachineOptions {
    fn default() -> Self {
        Self {
            unit_style: UnitStyle::default(),
            persistent_data: false,
            registry_config: RegistryConfig::default(),
            live_restore: false,
            auto_remove: true,
            canary_client_api: None,
            policy_canaries: false,
            restart_sec: default_restart_sec(),
            units: true,
        }
    }
}

/// The built-in kinds of service.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumVariantNames, EnumIter,
)]
#[strum(serialize_all = "kebab-case")]
pub enum Preset {
    /// A ZooKeeper 3.8 ensemble (one member per replica).
    Zookeeper,
    /// The project's toy HTTP API: the real-time configuration from the ZooKeeper it `uses`,
    /// items from the PostgreSQL it `uses` through the memcached nodes it `uses`.
    ToyApi,
    /// The toy API's datastore: an append-only CRC32C log served on TCP (crate `datastore`);
    /// `DS_MODE=durable|buffered` in `env`; needs a `disk` at `/data`.
    Datastore,
    /// memcached 1.6 (with the leak agent of the clerk 2017-03 scenarios on board).
    Memcached,
    /// PostgreSQL 15, database `aftershock`, trust authentication.
    Postgres,
    /// A host of its own: a Docker-in-Docker container running dockerd and our init, with a
    /// consul server unit on every machine and the registry unit on the first.
    Machine,
}

/// What a probe talks to and how.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumVariantNames, EnumIter,
)]
#[strum(serialize_all = "kebab-case")]
pub enum ProbeKind {
    /// Creates a new znode per sample; at the end reads back which acknowledged ones exist.
    ZookeeperWrite,
    /// Asks every member for its mode (`srvr`); ok when some member says leader.
    ZookeeperMode,
    /// HTTP GET `path` on `port` of the service (default 8080, the toy API's); ok on
    /// `status` (default any 2xx).
    Http,
    /// A TCP connection to `port`; ok when it is accepted.
    Tcp,
    /// Runs `command` inside the replica (`docker exec`); ok on exit 0. Its output is the
    /// sample's detail (trimmed; a success's first 160 characters, a failure's whole text).
    Exec,
    /// Appends one record per sample to a datastore; at the end reads back which
    /// acknowledged records survived, and in which order.
    DatastoreAppend,
    /// Inserts one row per sample into PostgreSQL (autocommit: acknowledged = committed); at
    /// the end reads back which acknowledged rows survived.
    PostgresInsert,
    /// Open-loop HTTP load: GET `path` (`{key}` replaced by a seeded random key in 1..=`keys`)
    /// at a fixed `rate`, latency measured from each request's intended send time; per
    /// 1-second window: HdrHistogram p50/p99/max, the cache hit ratio, errors.
    Load,
    /// consul KV GET of `key` on the machines (first that answers); ok when it holds the value
    /// written before the fault, fails with "key absent" when consul answers 404.
    ConsulKv,
    /// consul `/v1/status/leader` on every machine; ok when one of them knows a leader.
    ConsulLeader,
    /// The registry's `/v2/` endpoint; ok on 200.
    Registry,
    /// A real `docker pull` (and with `push = true` first a `docker push`) of a tiny image
    /// through the registry, by the engine of machine `on`.
    RegistryPull,
    /// A write probe for any service, from templates where `{n}` is the record's number: the
    /// commands `write` and `read` exec'd in the replica, or an HTTP request (`method`, default
    /// PUT, to `port` and `path`, with `body`) and a GET of `read_path`. Exit 0 or a 2xx is an
    /// acknowledgement; the read-back's output lists the records present (every whole number in
    /// it). Feeds the same ledger and `no-lost-writes` check as the other write probes.
    Write,
    /// memcached's own text protocol on 11211: `set` of a key per sample, then `get` of it;
    /// ok when the cache gives back what was stored (it answers its protocol, not only TCP).
    MemcachedSet,
}

impl ProbeKind {
    /// Whether the probe keeps a ledger of writes and reads it back at the end (what
    /// `no-lost-writes`, `loses-writes` and `ordered-prefix` judge).
    pub fn writes(self) -> bool {
        use ProbeKind::*;
        match self {
            ZookeeperWrite | DatastoreAppend | PostgresInsert | Write => true,
            ZookeeperMode | Http | Tcp | Exec | Load | ConsulKv | ConsulLeader | Registry
            | RegistryPull | MemcachedSet => false,
        }
    }

    /// Whether it speaks to any service through what the scenario gives it (a port, a
    /// command, templates), and so takes `port` and `command`.
    pub fn generic(self) -> bool {
        use ProbeKind::*;
        match self {
            Http | Tcp | Exec | Write => true,
            ZookeeperWrite | ZookeeperMode | DatastoreAppend | PostgresInsert | Load | ConsulKv
            | ConsulLeader | Registry | RegistryPull | MemcachedSet => false,
        }
    }

    /// Whether it takes `on`: the one replica it observes or goes through (a registry-pull
    /// probe: the machine that pulls).
    pub fn takes_on(self) -> bool {
        use ProbeKind::*;
        match self {
            Http | Tcp | Exec | Write | ZookeeperWrite | RegistryPull | MemcachedSet => true,
            ZookeeperMode | DatastoreAppend | PostgresInsert | Load | ConsulKv | ConsulLeader
            | Registry => false,
        }
    }
}

/// Which replicas of a service a fault hits. Resolved at the moment the fault is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Select {
    /// One replica chosen with the run's seed.
    One,
    /// Every replica.
    All,
    /// The current leader (asked of the service).
    Leader,
    /// The largest group that still leaves a majority: (n-1)/2 replicas.
    Minority,
    /// The smallest majority: n/2+1 replicas.
    Majority,
    /// N replicas chosen with the run's seed.
    Count(usize),
    /// N replicas that are not the leader.
    Followers(usize),
    /// These replicas by name.
    Named(Vec<String>),
}

impl Select {
    /// These replicas: handles (`etcd.replica(1)`) or names.
    pub fn named<R: Into<String>>(replicas: impl IntoIterator<Item = R>) -> Select {
        Select::Named(replicas.into_iter().map(Into::into).collect())
    }
}

/// Which signal a kill delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    #[serde(rename = "KILL")]
    Kill,
    #[serde(rename = "TERM")]
    Term,
    #[serde(rename = "INT")]
    Int,
    #[serde(rename = "QUIT")]
    Quit,
}

impl Signal {
    pub fn number(self) -> i32 {
        match self {
            Signal::Kill => libc::SIGKILL,
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Quit => libc::SIGQUIT,
        }
    }

    /// `SIGKILL`, `SIGTERM`, …
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "SIGKILL",
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
            Signal::Quit => "SIGQUIT",
        }
    }
}

/// How a `cut` fault splits its service's replicas (Jepsen's partition shapes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutShape {
    /// The selected replicas (`select`: one, the leader, named, …) cut from `peers` (default:
    /// every other replica); the others still reach each other.
    #[default]
    Isolate,
    /// The selected replica (exactly one) is a bridge: the others, split into two halves with
    /// the run's seed, are cut from the other half; the bridge reaches both halves.
    Bridge,
    /// Every replica (`select = "all"`, at least 4) in a ring of seeded order reaches its
    /// nearest neighbours: each sees a majority, no two the same one.
    MajoritiesRing,
}

kinds::named!(Preset);

kinds::named!(ProbeKind);

/// A kind of disk operation a `disk-latency` or `disk-error` fault hits (`ops = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskOp {
    /// Reads of file data.
    Read,
    /// Writes of file data.
    Write,
    /// `fsync`, `fdatasync` and a directory's fsync: the flush to the disk (dm-delay's flush
    /// class; the operation PostgreSQL's checkpoints and every durable commit wait for).
    Fsync,
}

impl DiskOp {
    /// The name a file and lossyfs's control socket use.
    pub fn name(self) -> &'static str {
        match self {
            DiskOp::Read => "read",
            DiskOp::Write => "write",
            DiskOp::Fsync => "fsync",
        }
    }
}

/// The operations a disk fault hits, in order, each once: what lossyfs reads
/// (`read,write,fsync`).
pub fn disk_ops_word(ops: &[DiskOp]) -> String {
    let mut ops = ops.to_vec();
    ops.sort();
    ops.dedup();
    let names: Vec<&str> = ops.iter().map(|o| o.name()).collect();
    names.join(",")
}

/// The error a `disk-error` fault answers (`errno = "EIO"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskErrno {
    /// Input/output error: a failing medium (the default; PostgreSQL's "fsyncgate").
    #[default]
    #[serde(rename = "EIO")]
    Eio,
    /// No space left on device.
    #[serde(rename = "ENOSPC")]
    Enospc,
    /// Read-only file system: what ext4 with `errors=remount-ro` answers after an error.
    #[serde(rename = "EROFS")]
    Erofs,
}

impl DiskErrno {
    /// `EIO`, `ENOSPC`, `EROFS`.
    pub fn name(self) -> &'static str {
        match self {
            DiskErrno::Eio => "EIO",
            DiskErrno::Enospc => "ENOSPC",
            DiskErrno::Erofs => "EROFS",
        }
    }

    /// What `strerror` says for it (how a program inside reports it).
    pub fn message(self) -> &'static str {
        match self {
            DiskErrno::Eio => "Input/output error",
            DiskErrno::Enospc => "No space left on device",
            DiskErrno::Erofs => "Read-only file system",
        }
    }
}

/// A key of the Compose file accepted and not acted on (or not wholly), where it is and why:
/// shown with the plan (`aftershock audit --plan-only`, `validate`, `run`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub file: String,
    pub line: usize,
    /// The key's path (`services.web.ports`).
    pub key: String,
    pub reason: String,
    /// The key is ignored as a whole (else: honoured, and this says how or what is not).
    pub ignored: bool,
    /// The file plans, but a run refuses it until this is fixed (a missing `env_file`, an
    /// unset required variable): planning goes on, a run without the values would be a wrong
    /// experiment ([`Note::blocking`] lists them; the runtime refuses before anything starts).
    pub blocks_run: bool,
}

impl Note {
    /// The notes a run refuses to start with (each a warning of the plan).
    pub fn blocking(notes: &[Note]) -> impl Iterator<Item = &Note> {
        notes.iter().filter(|n| n.blocks_run)
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (file, line, reason) = (&self.file, self.line, &self.reason);
        let service = self
            .key
            .strip_prefix("services.")
            .and_then(|k| k.split_once('.'));
        let (within, key) = match service {
            Some((service, key)) => (format!("service `{service}`: "), key),
            None => (String::new(), self.key.as_str()),
        };
        match (self.ignored, self.blocks_run) {
            (true, _) => write!(f, "{file}:{line}: {within}ignored: `{key}` ({reason})"),
            (false, true) => write!(f, "{file}:{line}: {within}warning: `{key}`: {reason}"),
            (false, false) => write!(f, "{file}:{line}: {within}`{key}`: {reason}"),
        }
    }
}
