//! Probes for the builder: one constructor per kind, each taking the service it observes.

use super::{Handle, ServiceRef};
use crate::scenario::file::{self, ProbeKind as K};
use std::time::Duration;

/// A probe to add to an [`super::Experiment`].
#[derive(Debug, Clone)]
pub struct Probe {
    pub(super) file: file::Probe,
    pub(super) target: Handle,
    /// The replica handle `on` names, if given by handle.
    pub(super) on: Option<Handle>,
}

impl Probe {
    /// A probe of `kind` on `target`, every option at its default.
    pub fn new(name: &str, kind: K, target: &ServiceRef) -> Self {
        Probe {
            file: file::Probe::new(name, kind, file::reference(target.name())),
            target: target.into(),
            on: None,
        }
    }

    /// A TCP connection to `port`; ok when accepted.
    pub fn tcp(name: &str, target: &ServiceRef, port: u16) -> Self {
        let mut p = Self::new(name, K::Tcp, target);
        p.file.port = Some(port);
        p
    }

    /// HTTP GET `path` on `port`; ok on any 2xx (see [`Probe::status`]).
    pub fn http(name: &str, target: &ServiceRef, port: u16, path: &str) -> Self {
        let mut p = Self::new(name, K::Http, target);
        (p.file.port, p.file.path) = (Some(port), Some(path.into()));
        p
    }

    /// A command run inside the replica; ok on exit 0.
    pub fn exec(name: &str, target: &ServiceRef, command: &[&str]) -> Self {
        let mut p = Self::new(name, K::Exec, target);
        p.file.command = command.iter().map(|c| c.to_string()).collect();
        p
    }

    /// A new znode per sample; reads back which acknowledged ones exist.
    pub fn zookeeper_write(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::ZookeeperWrite, target)
    }

    /// memcached's `set` and `get` of a key per sample (on the first replica; see
    /// [`Probe::on`]).
    pub fn memcached_set(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::MemcachedSet, target)
    }

    /// One record per sample appended to our datastore (padded to `record_bytes`); reads back
    /// what survived, in which order.
    pub fn datastore_append(name: &str, target: &ServiceRef, record_bytes: Option<usize>) -> Self {
        let mut p = Self::new(name, K::DatastoreAppend, target);
        p.file.record_bytes = record_bytes;
        p
    }

    /// One row per sample into PostgreSQL; reads back which acknowledged rows exist.
    pub fn postgres_insert(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::PostgresInsert, target)
    }

    /// Open-loop HTTP load of `rate` requests per second on `path`.
    pub fn load(name: &str, target: &ServiceRef, path: &str, rate: u32) -> Self {
        let mut p = Self::new(name, K::Load, target);
        (p.file.path, p.file.rate) = (Some(path.into()), Some(rate));
        p
    }

    /// A write probe whose record `{n}` is written by a command run in the replica (exit 0
    /// acknowledges) and read back by `read` (every whole number in its output is a record
    /// present). `{replica}` and `{index}` are the observed replica's (see [`Probe::on`]).
    pub fn write_exec(name: &str, target: &ServiceRef, write: &[&str], read: &[&str]) -> Self {
        let mut p = Self::new(name, K::Write, target);
        p.file.write = write.iter().map(|w| w.to_string()).collect();
        p.file.read = read.iter().map(|r| r.to_string()).collect();
        p
    }

    /// A write probe over HTTP: record `{n}` written by a request to `path` on `port` (PUT
    /// by default, see [`Probe::method`] and [`Probe::body`]; a 2xx acknowledges), read back
    /// by a GET of `read_path` (every whole number in the answer is a record present).
    pub fn write_http(
        name: &str,
        target: &ServiceRef,
        port: u16,
        path: &str,
        read_path: &str,
    ) -> Self {
        let mut p = Self::new(name, K::Write, target);
        (p.file.port, p.file.path) = (Some(port), Some(path.into()));
        p.file.read_path = Some(read_path.into());
        p
    }

    /// An HTTP write probe reads the records back with this command exec'd in the replica
    /// instead of a GET of its read path (pass `""` as the read path).
    pub fn read_command(mut self, read: &[&str]) -> Self {
        self.file.read = read.iter().map(|r| r.to_string()).collect();
        self.file.read_path = None;
        self
    }

    /// The method of an HTTP write probe's request (default PUT).
    pub fn method(mut self, method: &str) -> Self {
        self.file.method = Some(method.into());
        self
    }

    /// The body of an HTTP write probe's request (`{n}`, `{replica}`, `{index}` replaced).
    pub fn body(mut self, body: &str) -> Self {
        self.file.body = Some(body.into());
        self
    }

    /// The path of an `http`, `load` or HTTP write probe.
    pub fn path(mut self, path: &str) -> Self {
        self.file.path = Some(path.into());
        self
    }

    /// Asks every ZooKeeper member for its mode; ok when one says leader.
    pub fn zookeeper_mode(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::ZookeeperMode, target)
    }

    /// consul KV GET on the machines; ok while it holds the value written before the fault.
    pub fn consul_kv(name: &str, machines: &ServiceRef) -> Self {
        Self::new(name, K::ConsulKv, machines)
    }

    /// The consul key of a `consul_kv` probe (default: the key written before the fault).
    pub fn key(mut self, key: &str) -> Self {
        self.file.key = Some(key.into());
        self
    }

    /// consul's `/v1/status/leader` on every machine; ok when one knows a leader.
    pub fn consul_leader(name: &str, machines: &ServiceRef) -> Self {
        Self::new(name, K::ConsulLeader, machines)
    }

    /// The registry's `/v2/` on the machines; ok on 200.
    pub fn registry(name: &str, machines: &ServiceRef) -> Self {
        Self::new(name, K::Registry, machines)
    }

    /// A real `docker pull` through the registry by a machine's engine (see [`Probe::on`]).
    pub fn registry_pull(name: &str, machines: &ServiceRef) -> Self {
        Self::new(name, K::RegistryPull, machines)
    }

    /// A registry pull pushes a new tag before every pull.
    pub fn push(mut self, push: bool) -> Self {
        self.file.push = push;
        self
    }

    /// The key space of a load's `{key}` (1..=keys); `prime` reads each key once first.
    pub fn keys(mut self, keys: u32, prime: bool) -> Self {
        (self.file.keys, self.file.prime) = (Some(keys), prime);
        self
    }

    /// A load's warm-up: the same load before the observation until the target is steady,
    /// for at most `longest` (not steady by then: the run is unknown).
    pub fn warm_up(mut self, longest: std::time::Duration) -> Self {
        self.file.warm_up = Some(longest);
        self
    }

    /// The replica observed (tcp, http, exec, write; default: the first), the member a
    /// zookeeper-write writes through, or the machine that pulls: a handle
    /// ([`super::ServiceRef::replica`]) or a name.
    pub fn on(mut self, replica: impl Into<super::ReplicaArg>) -> Self {
        let replica = replica.into();
        self.file.on = Some(file::reference(&replica.name));
        self.on = replica.handle;
        self
    }

    /// A zookeeper-write's other services of the same ensemble (a cluster written as separate
    /// services): the client connects through any of their replicas too.
    pub fn members(mut self, services: &[&ServiceRef]) -> Self {
        self.file.members = services.iter().map(|s| file::reference(s.name())).collect();
        self
    }

    /// The HTTP status that counts as ok.
    pub fn status(mut self, status: u16) -> Self {
        self.file.status = Some(status);
        self
    }

    /// Time between samples (default 100 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.file.interval = interval;
        self
    }

    /// The longest wait for one sample (default 500 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.file.timeout = timeout;
        self
    }
}
