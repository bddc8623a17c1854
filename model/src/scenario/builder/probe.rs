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
        let kind_name = serde_json::to_value(kind).unwrap_or_default();
        let source = format!("name = \"\"\nkind = {}\ntarget = \"\"", kind_name);
        let mut file: file::Probe = toml::from_str(&source).expect("a minimal probe parses");
        file.name = name.into();
        file.target = file::reference(target.name());
        Probe {
            file,
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

    /// The key space of a load's `{key}` (1..=keys); `prime` reads each key once first.
    pub fn keys(mut self, keys: u32, prime: bool) -> Self {
        (self.file.keys, self.file.prime) = (Some(keys), prime);
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
