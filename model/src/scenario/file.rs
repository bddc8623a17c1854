//! The file form of a scenario: the TOML grammar as serde types, every optional field as the
//! file may write it, every reference a name with its place in the file (for errors that name
//! `file:line:column`). Nothing downstream reads these: [`super::resolve`] turns them into a
//! [`super::Plan`] once.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

pub use super::values::{
    Check, CutShape, DiskErrno, DiskOp, DiskSpec, Extras, MachineOptions, Preset, ProbeKind,
    RegistryConfig, Select, Signal, UnitStyle,
};

/// A name that refers to something else in the scenario, with its place in the file.
pub type Ref = Spanned<String>;

/// Makes a [`Ref`] that has no place in a file (used by the builder).
pub fn reference(name: impl Into<String>) -> Ref {
    Spanned::new(0..0, name.into())
}

/// One replayable experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name; used in labels, report paths and the suite table.
    pub name: String,
    /// The postmortem this replays (file stem in `shared/postmortems/`), if any.
    #[serde(default)]
    pub incident: Option<String>,
    /// `as-it-was`, `remediated`, or a name of your own.
    #[serde(default = "default_variant")]
    pub variant: String,
    /// What the postmortem says happened (or what this variant is meant to show).
    #[serde(default)]
    pub summary: String,
    /// How long probes observe the system, counted from when they start.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Seed for every random choice; a fresh one is drawn and printed when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    pub topology: Topology,
    #[serde(default, rename = "probe")]
    pub probes: Vec<Probe>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    #[serde(default, rename = "expect")]
    pub expectations: Vec<Expectation>,
}

fn default_variant() -> String {
    "as-it-was".into()
}

/// The system under test: the services to bring up, in order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// A Compose file (relative to the scenario file) whose services join the topology, before
    /// the `[[topology.service]]` tables (see [`super::compose`]); or several, each laid over
    /// the ones before as `docker compose -f a.yml -f b.yml` does
    /// (`compose = ["compose.yaml", "compose.override.yaml"]`).
    #[serde(default)]
    pub compose: Option<ComposeFiles>,
    /// Places every Compose service on the replicas of this `machine` service: replica i of
    /// each on its i-th machine (a Compose volume declared a disk is then a volume of the
    /// machine's engine).
    #[serde(default)]
    pub compose_machines: Option<Ref>,
    /// Where `compose_machines` puts a Compose service instead of replica i on machine i: by
    /// service, its machines (one per replica), e.g. `compose_placement = { etcd2 = ["m2"] }`
    /// (`aftershock audit` spreads a cluster's members and services sharing a port).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compose_placement: BTreeMap<String, Vec<String>>,
    /// Named volumes of Compose services made disks that can lose power, as `x-aftershock: {
    /// disk }` on the volume would (`aftershock audit` writes these): by service,
    /// `compose_disks = { db = { volume = "pgdata", size_mb = 256 } }` (`lossy = true`: under
    /// lossyfs).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compose_disks: BTreeMap<String, ComposeDisk>,
    /// Compose services whose declared disk (`x-aftershock: { disk }` on a volume) is made
    /// lossy for this run, lossyfs between the service and its disk as `lossy: true` would
    /// put it (what sick-disk faults need): `compose_lossy = ["db"]` (`aftershock audit`
    /// writes it for a slow disk under a disk the file declares without `lossy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose_lossy: Vec<String>,
    /// Memory limits (MiB) given to Compose services that the file leaves without one (memory =
    /// memory+swap, as `mem_limit` would): `compose_memory = { cache = 256 }` (`aftershock
    /// audit` writes these for the leak of a cache in front of a database).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compose_memory: BTreeMap<String, u64>,
    /// The `compose` files' profiles to start (`docker compose --profile`; `"*"`: all):
    /// `compose_profiles = ["debug"]`. None given: services without `profiles` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose_profiles: Vec<String>,
    /// Env files (relative to the scenario file) read in place of the Compose project's
    /// `.env` (`docker compose --env-file`): `compose_env_files = ["test.env"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose_env_files: Vec<String>,
    #[serde(default, rename = "service")]
    pub services: Vec<Service>,
    /// Engines that exist already (`[[topology.machine]]`), by URL: services are placed on
    /// them with `machine = "name"`.
    #[serde(default, rename = "machine")]
    pub machines: Vec<MachineDecl>,
    /// The values of the `compose` file's top-level `secrets`, brought in with its services
    /// (never read from or written to a scenario file).
    #[serde(skip)]
    pub compose_secrets: Vec<String>,
    /// What the Compose file says that the run does not act on, or not wholly (set when the
    /// file is brought in; a scenario file cannot write it).
    #[serde(skip)]
    pub notes: Vec<super::values::Note>,
}

/// `compose = "a.yml"` or `compose = ["a.yml", "b.yml"]`: the Compose files, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeFiles(pub Vec<String>);

impl ComposeFiles {
    /// One file.
    pub fn one(path: &str) -> Self {
        ComposeFiles(vec![path.into()])
    }
}

impl Serialize for ComposeFiles {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ComposeFiles {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        match Form::deserialize(d) {
            Ok(Form::One(f)) => Ok(ComposeFiles(vec![f])),
            Ok(Form::Many(files)) if !files.is_empty() => Ok(ComposeFiles(files)),
            _ => Err(serde::de::Error::custom(
                "`compose` is a Compose file's path or a list of them (`[\"compose.yaml\", \"compose.override.yaml\"]`)",
            )),
        }
    }
}

/// A Compose service's named volume made a disk (`[topology] compose_disks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeDisk {
    /// The volume's name in the Compose file.
    pub volume: String,
    pub size_mb: u64,
    /// lossyfs between the container and the disk (what sick-disk faults need).
    #[serde(default)]
    pub lossy: bool,
}

/// A machine given by the URL of its Docker engine: another host (or a Docker-in-Docker
/// container) the run does not start. Services placed on it run with its network (host
/// networking) and are reached at its `address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineDecl {
    /// Its name in the scenario (`east`), what a service's `machine` names.
    pub name: String,
    /// `unix:///path`, `tcp://host:port`, `https://host:port` (with `tls`) or
    /// `ssh://[user@]host[:port]`.
    pub url: String,
    /// Where the harness and the other machines reach what runs on it (default: the URL's host;
    /// required for `unix://`).
    #[serde(default)]
    pub address: Option<String>,
    /// For `https://`: a directory with `ca.pem`, `cert.pem` and `key.pem` (as
    /// `DOCKER_CERT_PATH`), relative to the scenario file.
    #[serde(default)]
    pub tls: Option<String>,
    /// For `ssh://`: the private key to log in with (default: the ssh agent's or ~/.ssh's).
    #[serde(default)]
    pub ssh_key: Option<String>,
    /// For a plain `tcp://` engine that is not on loopback: `true` accepts it without TLS
    /// (whoever reaches it controls that engine); the run's header and report say so in red.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// A service's `machine` key: the options of a `machine` service (a table), or the machines
/// a service runs on (a name, or one name per replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MachineField {
    Options(MachineOptions),
    On(Vec<String>),
}

impl<'de> Deserialize<'de> for MachineField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = MachineField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a machine's name, a list of names (one per replica), or a table of a machine service's options")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MachineField, E> {
                Ok(MachineField::On(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<MachineField, A::Error> {
                let names =
                    Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(MachineField::On(names))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<MachineField, A::Error> {
                let options =
                    MachineOptions::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(MachineField::Options(options))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A service: one or more replicas on the run's own network, described generically (`image`,
/// `command`, `env`, `volumes`, limits, a `ready` check) or by a built-in `preset`, which
/// supplies the image, the environment its protocol needs and its readiness.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique name; replicas are called `<name>1`, `<name>2`, ... (one replica: `<name>`).
    pub name: String,
    /// A built-in kind of service; absent for a service described by `image`.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// The image: one of the project's images by name (`postgres`, `memcached`, … — the
    /// directories of `images/`, built by the harness) or a tag present in the local engine
    /// (`name:tag`). Default: the preset's image.
    #[serde(default)]
    pub image: Option<String>,
    /// Replaces the image's entrypoint. In `entrypoint`, `command` and the values of `env`,
    /// `{replica}` is replaced by each replica's name (`etcd2`) and `{index}` by its number,
    /// counted from 1 as in the name (`2`; a service of one replica: `1`).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default = "one")]
    pub replicas: usize,
    /// Extra environment for every replica.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Services this one talks to; they are started first (e.g. the toy API uses `zk`).
    #[serde(default)]
    pub uses: Vec<Ref>,
    /// Of `uses`, those this service starts after once they have started rather than once they
    /// are ready (set by the Compose front end from `depends_on`; a scenario file cannot say it).
    #[serde(skip)]
    pub uses_started: Vec<Ref>,
    /// A disk that can lose power (ext4 on a loop device), mounted in every replica.
    #[serde(default)]
    pub disk: Option<DiskSpec>,
    /// Memory limit of each replica in MiB; memory+swap is the same, so a leak ends in an
    /// OOM kill, not in swapping.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// `oom_score_adj` of each replica's main process, 0 to 1000 (this engine refuses
    /// negative values): how the kernel's OOM killer ranks it.
    #[serde(default)]
    pub oom_score_adj: Option<i64>,
    /// The command (the image's CMD: the arguments of its entrypoint; memcached:
    /// `["-m", "128"]`). `args` is another name for it.
    #[serde(default, alias = "args")]
    pub command: Vec<String>,
    /// Named volumes, `"name:/path"`: created for each replica with the run's labels (so
    /// teardown removes them), kept across restarts of the replica.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// CPU limit of each replica, in CPUs (`0.5`).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// When a replica is ready (default: the preset's check, or the container is running).
    #[serde(default)]
    pub ready: Option<ReadyCheck>,
    /// For the `machine` preset: how its units are run (`[topology.service.machine]`). For
    /// any other service: the machine it runs on (`machine = "m1"`, a replica of a `machine`
    /// service or a `[[topology.machine]]`), or one per replica (`["m1", "m2", "m3"]`).
    #[serde(default)]
    pub machine: Option<MachineField>,
    /// Containers something else started (testcontainers, a Compose project), by id or name:
    /// one replica each, acted on and observed but never created or removed by the run.
    #[serde(default)]
    pub attach: Vec<String>,
    /// Build the image from a Dockerfile with the classic builder instead of naming one
    /// (`build = { context = "app" }`, relative to the scenario file). `FROM
    /// aftershock/base:latest` builds on the project's base image.
    #[serde(default)]
    pub build: Option<BuildSpec>,
    /// What the engine does when a replica's main process exits: `no` (default), `always`,
    /// `unless-stopped`, `on-failure` or `on-failure:N` (Compose's `restart:`).
    #[serde(default)]
    pub restart: Option<String>,
    /// More DNS names of every replica on the run's network (a Compose service's own name and
    /// its network aliases).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The user the replicas' processes run as (`name`, `uid` or `uid:gid`; default: the image's).
    #[serde(default)]
    pub user: Option<String>,
    /// The working directory of the replicas' processes (default: the image's).
    #[serde(default)]
    pub working_dir: Option<String>,
    /// How to ask a replica whether it leads (a service without a preset that knows): what
    /// `select = "leader"` and `{ followers = N }` need. `leader = { http = 2379, path =
    /// "/metrics", contains = "etcd_server_is_leader 1" }` or `leader = { exec = [...] }`.
    #[serde(default)]
    pub leader: Option<LeaderCheck>,
    /// What only a Compose file says (set by the Compose front end; a scenario file cannot).
    #[serde(skip)]
    pub extras: Extras,
}

/// How to ask one replica "do you lead?": exactly one of `exec` (exit 0: it leads) or `http`
/// (the answer has `status`, default any 2xx, and contains `contains`, if given). `{replica}`
/// and `{index}` are replaced as in the service's command. Asked of every replica at once;
/// the one that says yes leads (none or several: no leader now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderCheck {
    /// A command run inside the replica; exit 0 means it leads.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    /// An HTTP port of the replica to ask.
    #[serde(default)]
    pub http: Option<u16>,
    /// The request's path (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// The request's method (default GET; POST when there is a `body`).
    #[serde(default)]
    pub method: Option<String>,
    /// The request's body (JSON for etcd's gateway: `"{}"`).
    #[serde(default)]
    pub body: Option<String>,
    /// The status that means "I lead" (default: any 2xx).
    #[serde(default)]
    pub status: Option<u16>,
    /// Text the answer (exec: its output; http: its body) must contain to mean "I lead".
    #[serde(default)]
    pub contains: Option<String>,
    /// The longest wait for one replica's answer (default 1 s).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl LeaderCheck {
    /// A command run inside each replica; exit 0 (and `contains`, if set) means it leads.
    pub fn exec(command: &[&str]) -> Self {
        let mut c = Self::empty();
        c.exec = Some(command.iter().map(|c| c.to_string()).collect());
        c
    }

    /// An HTTP GET of `path` on `port` of each replica; a 2xx (and `contains`) means it leads.
    pub fn http(port: u16, path: &str) -> Self {
        let mut c = Self::empty();
        (c.http, c.path) = (Some(port), Some(path.into()));
        c
    }

    /// The request's method and body (etcd: `POST` with `{}`).
    pub fn request(mut self, method: &str, body: &str) -> Self {
        (self.method, self.body) = (Some(method.into()), Some(body.into()));
        self
    }

    /// The status that means "I lead" (default any 2xx).
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Text the answer must contain to mean "I lead".
    pub fn contains(mut self, text: &str) -> Self {
        self.contains = Some(text.into());
        self
    }

    /// The longest wait for one replica's answer (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn empty() -> Self {
        LeaderCheck {
            exec: None,
            http: None,
            path: None,
            method: None,
            body: None,
            status: None,
            contains: None,
            timeout: None,
        }
    }
}

/// An image built from a directory with a Dockerfile (the classic builder, no BuildKit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// The build context: a directory, relative to the scenario (or Compose) file.
    pub context: String,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// Build arguments (`ARG`s).
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// The stage of a multi-stage Dockerfile to build (default: the last).
    #[serde(default)]
    pub target: Option<String>,
}

impl BuildSpec {
    /// The Dockerfile in `context` (a directory), no build arguments.
    pub fn context(context: &str) -> Self {
        BuildSpec {
            context: context.into(),
            dockerfile: None,
            args: BTreeMap::new(),
            target: None,
        }
    }
    /// Another Dockerfile, relative to the context.
    pub fn dockerfile(mut self, dockerfile: &str) -> Self {
        self.dockerfile = Some(dockerfile.into());
        self
    }
    /// A build argument (`ARG`).
    pub fn arg(mut self, key: &str, value: &str) -> Self {
        self.args.insert(key.into(), value.into());
        self
    }
}

/// When a replica counts as ready: exactly one of `tcp`, `http` or `exec`, polled (every
/// 100 ms, each attempt bounded) until it passes or `timeout` runs out.
/// `ready = { tcp = 5432 }`, `ready = { http = 8080, path = "/healthz" }`,
/// `ready = { exec = ["pg_isready"], timeout = "60s" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyCheck {
    /// A TCP port that accepts a connection.
    #[serde(default)]
    pub tcp: Option<u16>,
    /// An HTTP port whose `path` answers `status` (default: any 2xx).
    #[serde(default)]
    pub http: Option<u16>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    /// A command run inside the replica that exits 0.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    /// The longest wait for the whole service.
    #[serde(default = "default_ready_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Time between two attempts (default 100 ms; a Compose health check's `interval`).
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Deadline of one attempt (default 1 s; a Compose health check's `timeout`).
    #[serde(default, with = "humantime_serde")]
    pub attempt_timeout: Option<Duration>,
}

fn default_ready_timeout() -> Duration {
    Duration::from_secs(90)
}

impl ReadyCheck {
    /// The file form of one check with `timeout` (and the default polling).
    pub fn of(check: Check, timeout: Duration) -> Self {
        let mut r = ReadyCheck {
            tcp: None,
            http: None,
            path: None,
            status: None,
            exec: None,
            timeout,
            interval: None,
            attempt_timeout: None,
        };
        match check {
            Check::Tcp(port) => r.tcp = Some(port),
            Check::Http { port, path, status } => {
                (r.http, r.path, r.status) = (Some(port), Some(path), status)
            }
            Check::Exec(cmd) => r.exec = Some(cmd),
        }
        r
    }

    /// The check this describes; an error when it is not exactly one of tcp/http/exec.
    pub fn check(&self) -> Result<Check, NotOneCheck> {
        let http = self.http.map(|port| Check::Http {
            port,
            path: self.path.clone().unwrap_or_else(|| "/".into()),
            status: self.status,
        });
        let all: Vec<Check> = [
            self.tcp.map(Check::Tcp),
            http,
            self.exec.clone().map(Check::Exec),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[Check; 1]>::try_from(all) {
            Ok([one]) => Ok(one),
            Err(_) => Err(NotOneCheck),
        }
    }
}

/// A `ready` table with none or several of `tcp`, `http` and `exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`ready` needs exactly one of `tcp`, `http` or `exec`")]
pub struct NotOneCheck;

impl Default for Service {
    /// Every field as a file that leaves it out (serde's defaults; the name empty).
    fn default() -> Self {
        Service {
            name: String::new(),
            preset: None,
            image: None,
            entrypoint: None,
            replicas: one(),
            env: BTreeMap::new(),
            uses: vec![],
            uses_started: vec![],
            disk: None,
            memory_mib: None,
            oom_score_adj: None,
            command: vec![],
            volumes: vec![],
            cpus: None,
            ready: None,
            machine: None,
            attach: vec![],
            build: None,
            restart: None,
            aliases: vec![],
            user: None,
            working_dir: None,
            leader: None,
            extras: Extras::default(),
        }
    }
}

impl Service {
    /// A service with only a name: every other field as a file that leaves it out.
    pub fn named(name: &str) -> Self {
        Service {
            name: name.into(),
            ..Service::default()
        }
    }

    /// The image asked for: `image`, else the preset's.
    pub fn image_name(&self) -> Option<&str> {
        self.image.as_deref().or(self.preset.map(Preset::image))
    }

    /// Whether this service is of the given preset.
    pub fn is(&self, preset: Preset) -> bool {
        self.preset == Some(preset)
    }
}

fn one() -> usize {
    1
}

/// An observer that samples the system at a fixed interval; every sample goes to the timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub name: String,
    pub kind: ProbeKind,
    /// The service observed.
    pub target: Ref,
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Deadline of one sample; a sample that takes longer fails.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Path for `http` and `load` probes.
    #[serde(default)]
    pub path: Option<String>,
    /// Port of `http` (default 8080) and `tcp` probes.
    #[serde(default)]
    pub port: Option<u16>,
    /// `http`: the expected status (default: any 2xx).
    #[serde(default)]
    pub status: Option<u16>,
    /// `exec`: the command run inside the replica.
    #[serde(default)]
    pub command: Vec<String>,
    /// `load`: requests per second.
    #[serde(default)]
    pub rate: Option<u32>,
    /// `load`: the key space, 1..=keys.
    #[serde(default)]
    pub keys: Option<u32>,
    /// `load`: read every key once before the observation starts (a warm cache).
    #[serde(default)]
    pub prime: bool,
    /// `load`: before the observation, the same load runs until the target is steady (its
    /// hit ratio, p99 and error rate alike for 3 s), for at most this long; not steady by
    /// then, the run is unknown. The baseline is then a warm one.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub warm_up: Option<Duration>,
    /// The consul key of `consul-kv` probes (default: the key written before the fault).
    #[serde(default)]
    pub key: Option<String>,
    /// For `registry-pull`: the machine whose engine pushes and pulls (default: the last);
    /// for `tcp`, `http` and `exec`: the replica observed (default: the first); for
    /// `zookeeper-write`: the one member written through (default: any).
    #[serde(default)]
    pub on: Option<Ref>,
    /// For `registry-pull`: push a new tag before every pull (else push once, then only pull).
    #[serde(default)]
    pub push: bool,
    /// For `write`: the command that writes record `{n}` inside the replica.
    #[serde(default)]
    pub write: Vec<String>,
    /// For `write`: the command that prints the records present (also with an HTTP write,
    /// instead of `read_path`).
    #[serde(default)]
    pub read: Vec<String>,
    /// For an HTTP `write` probe: the method of the write request (default PUT).
    #[serde(default)]
    pub method: Option<String>,
    /// For an HTTP `write` probe: the write request's body (`{n}` replaced, `{n_base64}` by
    /// the base64 of the number's digits: etcd's JSON gateway carries keys as base64).
    #[serde(default)]
    pub body: Option<String>,
    /// For an HTTP `write` probe: the path whose GET lists the records present.
    #[serde(default)]
    pub read_path: Option<String>,
    /// For `datastore-append`: pad each record's payload to this many bytes (`<n> xxx…`), so
    /// that a record spans several sectors and a power cut can tear it.
    #[serde(default)]
    pub record_bytes: Option<usize>,
    /// For `zookeeper-write`: other services whose replicas are members of the same ensemble
    /// (a cluster written as separate services, `zoo1`..`zoo3`): the client connects to any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Ref>,
}

impl Probe {
    /// A probe of `kind` on `target`, every other field as a file that leaves it out.
    pub fn new(name: &str, kind: ProbeKind, target: Ref) -> Self {
        Probe {
            name: name.into(),
            kind,
            target,
            interval: default_interval(),
            timeout: default_timeout(),
            path: None,
            port: None,
            status: None,
            command: vec![],
            rate: None,
            keys: None,
            prime: false,
            warm_up: None,
            key: None,
            on: None,
            push: false,
            write: vec![],
            read: vec![],
            method: None,
            body: None,
            read_path: None,
            record_bytes: None,
            members: vec![],
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_millis(100)
}
fn default_timeout() -> Duration {
    Duration::from_millis(500)
}

/// What the nemesis does: the plan's [`super::plan::FaultKind`] without its data (the
/// variants, their names in files and their documentation are declared there, once).
pub use super::plan::FaultKindName as FaultKind;

/// A fault in the schedule: data, carried out by the runtime's nemesis (`aftershock::fault`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub name: String,
    pub kind: FaultKind,
    /// When, counted from the start of the probes.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// The service hit.
    pub target: Ref,
    #[serde(default = "default_select")]
    pub select: Select,
    #[serde(default = "default_signal")]
    pub signal: Signal,
    /// How long the replicas stay down before they are started again.
    #[serde(default, with = "humantime_serde")]
    pub down_for: Option<Duration>,
    /// For `rolling-restart`: the longest wait for one replica to rejoin; for `leak`: the
    /// longest wait for the OOM kill (then the leak is stopped and healed anyway).
    #[serde(default = "default_rejoin", with = "humantime_serde")]
    pub rejoin_timeout: Duration,
    /// For `leak`: how fast the agent leaks, MiB per second.
    #[serde(default)]
    pub leak_mib_per_s: Option<u32>,
    /// For `daemon-crash`: time between one machine's crash and the next one's.
    #[serde(default, with = "humantime_serde")]
    pub gap: Option<Duration>,
    /// For `netem`: the delay added to every packet the replicas send.
    #[serde(default, with = "humantime_serde")]
    pub delay: Option<Duration>,
    /// For `netem`: the share of packets dropped, in percent.
    #[serde(default)]
    pub loss_percent: Option<f64>,
    /// The port the verification of `partition` and `netem` connects to (default: the
    /// service's `ready` port; a refused connection counts as reaching the replica).
    #[serde(default)]
    pub port: Option<u16>,
    /// For `power-cut` on a `lossy` disk: the power fails while the disk writes the last
    /// writes, and a seeded prefix of them survives, in whole sectors of this size (`"512B"`
    /// or `"4KiB"`): a torn write. Without it the cut loses every un-fsynced write whole.
    #[serde(default)]
    pub tear: Option<String>,
    /// For `cut`: who is cut from whom (default `isolate`).
    #[serde(default)]
    pub shape: Option<CutShape>,
    /// For `cut` with `shape = "isolate"`: the replicas the selected ones are cut from
    /// (default: every other replica of the service).
    #[serde(default)]
    pub peers: Option<Vec<String>>,
    /// For `cut`: only what the cut side sends of its own accord is dropped (its connections
    /// to the others time out; theirs to it, and its answers, pass). Default: both ways.
    #[serde(default)]
    pub one_way: Option<bool>,
    /// For `clock`: how far the wall clock moves, `"+30s"` forward or `"-1h"` back.
    #[serde(default)]
    pub offset: Option<String>,
    /// For `clock`: the clock strobes — `offset` for this long, then the host's time for as
    /// long, and again, until the heal.
    #[serde(default, with = "humantime_serde")]
    pub strobe: Option<Duration>,
    /// For `sick-link`: the toxics of the connections (`toxics = { latency = "300ms" }`).
    #[serde(default)]
    pub toxics: Option<super::toxics::Toxics>,
    /// For `disk-latency` and `disk-error`: the operations hit, of `read`, `write`, `fsync`
    /// (default: all three for latency; `write` and `fsync` for errors).
    #[serde(default)]
    pub ops: Option<Vec<DiskOp>>,
    /// For `disk-latency`: how long each operation waits before the disk serves it.
    #[serde(default, with = "humantime_serde")]
    pub latency: Option<Duration>,
    /// For `disk-error`: what the failing operations answer, `EIO` (default), `ENOSPC` or `EROFS`.
    #[serde(default)]
    pub errno: Option<DiskErrno>,
    /// For `disk-error`: the share of the operations that fail, in percent (default 100).
    #[serde(default)]
    pub percent: Option<f64>,
    /// For `disk-error` on `fsync`: a failed fsync forgets the writes it was to flush (Linux
    /// marks the pages clean after a failed writeback: a retried fsync succeeds and the data
    /// never reaches the disk — PostgreSQL's 2018 "fsyncgate"). Default false: they stay
    /// pending, and a later fsync may still make them durable.
    #[serde(default)]
    pub forget_writes: Option<bool>,
    /// For `disk-full`: how many bytes more the disk takes before every write answers ENOSPC
    /// (default 0: full at once).
    #[serde(default)]
    pub room_bytes: Option<u64>,
}

impl Fault {
    /// A fault of `kind` on `target` at the start of the probes, every other field as a file
    /// that leaves it out.
    pub fn new(name: &str, kind: FaultKind, target: Ref) -> Self {
        Fault {
            name: name.into(),
            kind,
            at: Duration::ZERO,
            target,
            select: default_select(),
            signal: default_signal(),
            down_for: None,
            rejoin_timeout: default_rejoin(),
            leak_mib_per_s: None,
            gap: None,
            delay: None,
            loss_percent: None,
            port: None,
            tear: None,
            shape: None,
            peers: None,
            one_way: None,
            offset: None,
            strobe: None,
            toxics: None,
            ops: None,
            latency: None,
            errno: None,
            percent: None,
            room_bytes: None,
            forget_writes: None,
        }
    }

    /// The sector size of `tear` in bytes (None when absent or not `512B`/`4KiB`).
    pub fn tear_bytes(&self) -> Option<u64> {
        match self.tear.as_deref()? {
            "512B" | "512" => Some(512),
            "4KiB" | "4096B" | "4096" => Some(4096),
            _ => None,
        }
    }
}

fn default_select() -> Select {
    Select::One
}
fn default_signal() -> Signal {
    Signal::Kill
}
fn default_rejoin() -> Duration {
    Duration::from_secs(30)
}

/// How an expectation judges the timeline: the plan's [`super::plan::Expect`] without its
/// data (the variants, their names in files and their documentation are declared there, once).
pub use super::plan::ExpectationKind;

/// An invariant with a budget: what the checkers judge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub kind: ExpectationKind,
    /// What this expectation means, in the words of the report.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub probe: Option<Ref>,
    #[serde(default)]
    pub fault: Option<Ref>,
    /// The longest allowed time (recovers-within, simultaneous, completes-within).
    #[serde(default, with = "humantime_serde")]
    pub budget: Option<Duration>,
    /// The shortest required time (fails-during, stays-down).
    #[serde(default, with = "humantime_serde")]
    pub min: Option<Duration>,
    /// For `measurement`: the measurement's name (`<fault>/<what>` or `<replica>/<what>`);
    /// for `measured-within`: the name prefix of the fault's measurements ("engine-downtime").
    #[serde(default)]
    pub measurement: Option<String>,
    /// For `measurement`: the largest allowed value.
    #[serde(default)]
    pub at_most: Option<f64>,
    /// For `measurement`: the smallest required value.
    #[serde(default)]
    pub at_least: Option<f64>,
    /// The process the OOM killer must pick (oom-kill-within), by command name.
    #[serde(default)]
    pub victim: Option<String>,
    /// A latency ratio to the baseline p99 (latency-rises: at least; latency-stays-within and
    /// warm-up-within: at most; warm-up default 2).
    #[serde(default)]
    pub ratio: Option<f64>,
    /// warm-up-within: the hit ratio that counts as warm, as a fraction of the baseline's
    /// (default 0.9).
    #[serde(default)]
    pub hit_fraction: Option<f64>,
    /// Text a failure detail or a unit state must contain (ends-failing, unit-reaches).
    #[serde(default)]
    pub matching: Option<String>,
    /// A machine unit's name (unit-reaches).
    #[serde(default)]
    pub unit: Option<String>,
}

impl Expectation {
    /// An expectation of `kind` with every optional field empty (fill in what the kind needs).
    pub fn new(kind: ExpectationKind) -> Self {
        Expectation {
            kind,
            title: None,
            probe: None,
            fault: None,
            budget: None,
            min: None,
            measurement: None,
            at_most: None,
            at_least: None,
            victim: None,
            ratio: None,
            hit_fraction: None,
            matching: None,
            unit: None,
        }
    }
}

impl Scenario {
    /// A scenario called `name` observed for `duration`, with nothing in it yet: every other
    /// field as a file that leaves it out.
    pub fn new(name: &str, duration: Duration) -> Self {
        Scenario {
            name: name.into(),
            incident: None,
            variant: default_variant(),
            summary: String::new(),
            duration,
            seed: None,
            topology: Topology::default(),
            probes: vec![],
            faults: vec![],
            expectations: vec![],
        }
    }

    /// The names of a service's replicas, in order (`zk1`, `zk2`, ... or just `api`).
    /// An attached service has one replica per container it attaches.
    pub fn replica_names(service: &Service) -> Vec<String> {
        let n = match service.attach.len() {
            0 => service.replicas,
            attached => attached,
        };
        if n == 1 {
            vec![service.name.clone()]
        } else {
            (1..=n).map(|i| format!("{}{}", service.name, i)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same value, as a file writes it.
    fn text<T: Serialize>(value: &T) -> String {
        toml::to_string(value).unwrap()
    }

    #[test]
    fn the_constructors_give_what_a_file_that_leaves_the_fields_out_gives() {
        let parsed: Scenario =
            toml::from_str("name = \"s\"\nduration = \"3s\"\n[topology]").unwrap();
        assert_eq!(
            text(&parsed),
            text(&Scenario::new("s", Duration::from_secs(3)))
        );
        let parsed: Service = toml::from_str("name = \"zk\"").unwrap();
        assert_eq!(text(&parsed), text(&Service::named("zk")));
        let probe = "name = \"p\"\nkind = \"zookeeper-write\"\ntarget = \"zk\"";
        let parsed: Probe = toml::from_str(probe).unwrap();
        let built = Probe::new("p", ProbeKind::ZookeeperWrite, reference("zk"));
        assert_eq!(text(&parsed), text(&built));
        let fault = "name = \"f\"\nkind = \"restart\"\nat = \"0s\"\ntarget = \"zk\"";
        let parsed: Fault = toml::from_str(fault).unwrap();
        let built = Fault::new("f", FaultKind::Restart, reference("zk"));
        assert_eq!(text(&parsed), text(&built));
    }
}
