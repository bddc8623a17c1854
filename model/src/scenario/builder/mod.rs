//! The Rust front end: an [`Experiment`] built in code, resolved into the same [`Plan`] a
//! scenario file gives (the builder writes the file form, and one resolver reads both).
//!
//! `service`, `probe` and `fault` return typed handles, and every later part takes a handle,
//! not a name: a reference to something that was never added cannot be written, and a handle
//! of another experiment is refused when the plan is made.
//!
//! ```
//! use aftershock_model::scenario::builder::{Expect, Experiment, Fault, Probe, Service};
//! use aftershock_model::scenario::{Preset, Select};
//! use std::time::Duration;
//! let secs = Duration::from_secs;
//! let mut x = Experiment::new("five-node-zk", secs(30)).seed(7);
//! let zk = x.service(Service::preset("zk", Preset::Zookeeper).replicas(5));
//! let writes = x.probe(Probe::zookeeper_write("writes", &zk));
//! let chef = x.fault(Fault::restart("chef", &zk, secs(12)).at(secs(5)).select(Select::Followers(2)));
//! x.expect(Expect::recovers_within(&writes, &chef, secs(20)));
//! x.expect(Expect::no_lost_writes(&writes));
//! let plan = x.plan().unwrap();
//! assert_eq!(plan.services[0].replicas, ["zk1", "zk2", "zk3", "zk4", "zk5"]);
//! // with the runtime (`aftershock`): x.run().await?.assert_passed();   (needs a Docker engine)
//! ```

#[cfg(test)]
mod coverage;
mod expect;
mod fault;
mod places;
mod probe;
mod service;
#[cfg(test)]
mod tests;

pub use expect::Expect;
pub use fault::Fault;
pub use probe::Probe;
pub use service::Service;

use super::error::ScenarioError;
use super::file::{self, Ref};
use super::load::resolve_built;
use super::Plan;
use places::{located, respan, Places};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which experiment a handle belongs to.
type Token = u64;

fn new_token() -> Token {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A service added to an experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    name: String,
    replicas: Vec<String>,
    token: Token,
}

impl ServiceRef {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its `i`-th replica (0-based): `zk1` for `i = 0` of `zk` with three replicas. Panics
    /// when the service has no such replica.
    #[track_caller]
    pub fn replica(&self, i: usize) -> ReplicaRef {
        let Some(name) = self.replicas.get(i) else {
            panic!(
                "service `{}` has {} replicas: there is no replica {i} (0-based)",
                self.name,
                self.replicas.len()
            );
        };
        ReplicaRef {
            name: name.clone(),
            service: self.name.clone(),
            token: self.token,
        }
    }
    /// Every replica, in order.
    pub fn replicas(&self) -> Vec<ReplicaRef> {
        (0..self.replicas.len()).map(|i| self.replica(i)).collect()
    }
}

/// One replica of a service added to an experiment ([`ServiceRef::replica`]): what a probe's
/// [`Probe::on`] observes and a fault's `Select::named` hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRef {
    name: String,
    service: String,
    token: Token,
}

impl ReplicaRef {
    /// The replica's name (`etcd2`): its host name on the run's network.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The name of its service.
    pub fn service(&self) -> &str {
        &self.service
    }
}

impl std::fmt::Display for ReplicaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}
impl AsRef<str> for ReplicaRef {
    fn as_ref(&self) -> &str {
        &self.name
    }
}
impl From<ReplicaRef> for String {
    fn from(r: ReplicaRef) -> String {
        r.name
    }
}
impl From<&ReplicaRef> for String {
    fn from(r: &ReplicaRef) -> String {
        r.name.clone()
    }
}

/// A replica as a builder method takes it: a [`ReplicaRef`] (checked to belong to the same
/// experiment when the plan is made) or a name.
#[derive(Debug, Clone)]
pub struct ReplicaArg {
    name: String,
    handle: Option<Handle>,
}

impl From<&ReplicaRef> for ReplicaArg {
    fn from(r: &ReplicaRef) -> Self {
        ReplicaArg {
            name: r.name.clone(),
            handle: Some(Handle {
                name: r.name.clone(),
                token: r.token,
            }),
        }
    }
}
impl From<ReplicaRef> for ReplicaArg {
    fn from(r: ReplicaRef) -> Self {
        ReplicaArg::from(&r)
    }
}
impl From<&str> for ReplicaArg {
    fn from(name: &str) -> Self {
        ReplicaArg {
            name: name.into(),
            handle: None,
        }
    }
}
impl From<String> for ReplicaArg {
    fn from(name: String) -> Self {
        ReplicaArg { name, handle: None }
    }
}

/// A probe added to an experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRef {
    name: String,
    token: Token,
}

/// A fault added to an experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRef {
    name: String,
    token: Token,
}

/// A handle as the file form's reference, remembering which experiment it came from.
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    name: String,
    token: Token,
}

impl Handle {
    fn reference(&self) -> Ref {
        file::reference(&self.name)
    }
}

impl From<&ServiceRef> for Handle {
    fn from(r: &ServiceRef) -> Self {
        Handle {
            name: r.name.clone(),
            token: r.token,
        }
    }
}
impl From<&ProbeRef> for Handle {
    fn from(r: &ProbeRef) -> Self {
        Handle {
            name: r.name.clone(),
            token: r.token,
        }
    }
}
impl From<&FaultRef> for Handle {
    fn from(r: &FaultRef) -> Self {
        Handle {
            name: r.name.clone(),
            token: r.token,
        }
    }
}

/// An experiment described in code: the Rust form of a scenario file.
#[derive(Debug, Clone)]
pub struct Experiment {
    file: file::Scenario,
    token: Token,
    /// Handles of other experiments that were passed in, and where (refused by
    /// [`Experiment::plan`]).
    foreign: Vec<(String, &'static Location<'static>)>,
    /// Where each part was added (for errors at the caller's line).
    places: Places,
}

impl Experiment {
    /// An experiment called `name` whose probes observe for `duration`.
    pub fn new(name: &str, duration: Duration) -> Self {
        Experiment {
            file: file::Scenario::new(name, duration),
            token: new_token(),
            foreign: vec![],
            places: Places::default(),
        }
    }

    /// Fixes the seed of every random choice (else one is drawn and printed per run).
    pub fn seed(mut self, seed: u64) -> Self {
        self.file.seed = Some(seed);
        self
    }

    /// `as-it-was`, `remediated`, or a name of your own.
    pub fn variant(mut self, variant: &str) -> Self {
        self.file.variant = variant.into();
        self
    }

    /// The postmortem this replays (a file stem in `postmortems/`).
    pub fn incident(mut self, incident: &str) -> Self {
        self.file.incident = Some(incident.into());
        self
    }

    /// What this experiment shows, in the report's words.
    pub fn summary(mut self, summary: &str) -> Self {
        self.file.summary = summary.into();
        self
    }

    /// Brings in the services of a Compose file (relative to the current directory) before
    /// the experiment's own, as a scenario's `topology.compose` does.
    pub fn compose(mut self, path: &str) -> Self {
        self.file.topology.compose = Some(file::ComposeFiles::one(path));
        self
    }

    /// Places every Compose service on the replicas of this `machine` service (replica i of
    /// each on its i-th machine), as `topology.compose_machines` does.
    pub fn compose_machines(&mut self, machines: &ServiceRef) {
        self.file.topology.compose_machines = Some(file::reference(machines.name()));
    }

    /// Makes the named volume `volume` of Compose service `service` a disk of `size_mb` that
    /// can lose power, as `topology.compose_disks` does.
    pub fn compose_disk(&mut self, service: &str, volume: &str, size_mb: u64) {
        let disk = file::ComposeDisk {
            volume: volume.into(),
            size_mb,
            lossy: false,
        };
        self.file
            .topology
            .compose_disks
            .insert(service.into(), disk);
    }

    /// Makes the disk Compose service `service` declares (`x-aftershock: { disk }`) lossy for
    /// this run, as `topology.compose_lossy` does.
    pub fn compose_lossy(&mut self, service: &str) {
        self.file.topology.compose_lossy.push(service.into());
    }

    /// Puts Compose service `service` on these machines of `compose_machines` (one per
    /// replica) instead of replica i on machine i, as `topology.compose_placement` does.
    pub fn compose_place(&mut self, service: &str, machines: &[&str]) {
        let on = machines.iter().map(|m| m.to_string()).collect();
        self.file
            .topology
            .compose_placement
            .insert(service.into(), on);
    }

    /// Gives Compose service `service` a memory limit of `mib` MiB (memory = memory+swap), as
    /// `topology.compose_memory` does.
    pub fn compose_memory(&mut self, service: &str, mib: u64) {
        self.file
            .topology
            .compose_memory
            .insert(service.into(), mib);
    }

    /// Starts the services of the Compose profile `profile` too (`"*"`: every profile), as
    /// `topology.compose_profiles` (`docker compose --profile`) does.
    pub fn compose_profile(&mut self, profile: &str) {
        self.file.topology.compose_profiles.push(profile.into());
    }

    /// Reads the env file at `path` (relative to where the plan is resolved) in place of the
    /// Compose project's `.env`, as `topology.compose_env_files` (`--env-file`) does.
    pub fn compose_env_file(&mut self, path: &str) {
        self.file.topology.compose_env_files.push(path.into());
    }

    fn check(&mut self, what: &str, handles: &[&Handle], at: &'static Location<'static>) {
        for h in handles.iter().filter(|h| h.token != self.token) {
            let problem = format!("{what} refers to `{}` of another experiment", h.name);
            self.foreign.push((problem, at));
        }
    }

    /// Adds a service; its replicas start in the order services are added.
    #[track_caller]
    pub fn service(&mut self, service: Service) -> ServiceRef {
        let at = Location::caller();
        let uses: Vec<Handle> = service.uses.clone();
        self.check(
            &format!("service `{}`", service.file.name),
            &uses.iter().collect::<Vec<_>>(),
            at,
        );
        let span = self.places.add(&service.file.name, at);
        let mut s = service.file;
        s.uses = uses.iter().map(Handle::reference).collect();
        s.uses.iter_mut().for_each(|u| respan(u, &span));
        let replicas = file::Scenario::replica_names(&s);
        let handle = ServiceRef {
            name: s.name.clone(),
            replicas,
            token: self.token,
        };
        self.file.topology.services.push(s);
        handle
    }

    /// Adds a machine that exists already, by its engine's URL (`https://` with certificates,
    /// `ssh://root@host`, `unix:///var/run/docker.sock` with `address`, or plain `tcp://` on
    /// loopback — elsewhere only with [`Machine::insecure`]): services are placed on it with
    /// [`Service::on_machines`].
    #[track_caller]
    pub fn machine(&mut self, machine: Machine) {
        self.places.add(&machine.0.name, Location::caller());
        self.file.topology.machines.push(machine.0);
    }

    /// Adds a probe.
    #[track_caller]
    pub fn probe(&mut self, mut probe: Probe) -> ProbeRef {
        let at = Location::caller();
        let handles: Vec<&Handle> = std::iter::once(&probe.target).chain(&probe.on).collect();
        self.check(&format!("probe `{}`", probe.file.name), &handles, at);
        let span = self.places.add(&probe.file.name, at);
        respan(&mut probe.file.target, &span);
        probe.file.on.iter_mut().for_each(|on| respan(on, &span));
        let handle = ProbeRef {
            name: probe.file.name.clone(),
            token: self.token,
        };
        self.file.probes.push(probe.file);
        handle
    }

    /// Adds a fault to the schedule.
    #[track_caller]
    pub fn fault(&mut self, mut fault: Fault) -> FaultRef {
        let at = Location::caller();
        self.check(
            &format!("fault `{}`", fault.file.name),
            &[&fault.target],
            at,
        );
        let span = self.places.add(&fault.file.name, at);
        respan(&mut fault.file.target, &span);
        let handle = FaultRef {
            name: fault.file.name.clone(),
            token: self.token,
        };
        self.file.faults.push(fault.file);
        handle
    }

    /// Adds an expectation.
    #[track_caller]
    pub fn expect(&mut self, mut expectation: Expect) {
        let at = Location::caller();
        let handles: Vec<&Handle> = expectation.handles().collect();
        self.check("an expectation", &handles, at);
        let span = self.places.add("", at);
        let e = &mut expectation.file;
        e.probe
            .iter_mut()
            .chain(e.fault.iter_mut())
            .for_each(|r| respan(r, &span));
        self.file.expectations.push(expectation.file);
    }

    /// Resolves the experiment into the plan a run executes (the same a scenario file gives).
    /// A problem names the line of the caller's code that added the part it is about (else
    /// this call's), as `file:line:column`.
    #[track_caller]
    pub fn plan(&self) -> Result<Plan, ScenarioError> {
        let here = Location::caller();
        if let Some((message, at)) = self.foreign.first() {
            let (file, line, column) = located(at);
            return Err(ScenarioError::At {
                file,
                line,
                column,
                message: message.clone(),
            });
        }
        resolve_built(&self.file, |anchor| self.places.locate(anchor, here))
    }

    /// The experiment as a scenario file (TOML), to save and re-run with the CLI.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.file).unwrap_or_default()
    }
}

/// A machine that exists already, for [`Experiment::machine`].
#[derive(Debug, Clone)]
pub struct Machine(file::MachineDecl);

impl Machine {
    /// The engine at `url`; what runs on it is reached at the URL's host.
    pub fn url(name: &str, url: &str) -> Self {
        Machine(file::MachineDecl {
            name: name.into(),
            url: url.into(),
            address: None,
            tls: None,
            ssh_key: None,
            insecure: false,
        })
    }
    /// Where what runs on it is reached (needed for `unix://`).
    pub fn address(mut self, address: &str) -> Self {
        self.0.address = Some(address.into());
        self
    }
    /// For `https://`: the directory with `ca.pem`, `cert.pem`, `key.pem`.
    pub fn tls(mut self, dir: &str) -> Self {
        self.0.tls = Some(dir.into());
        self
    }
    /// For `ssh://`: the private key.
    pub fn ssh_key(mut self, path: &str) -> Self {
        self.0.ssh_key = Some(path.into());
        self
    }
    /// For a plain `tcp://` engine off loopback: accept it without TLS (whoever reaches it
    /// controls that engine; the run's header and report say so).
    pub fn insecure(mut self) -> Self {
        self.0.insecure = true;
        self
    }
}
