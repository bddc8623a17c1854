//! Services for the builder: generic, preset, machines, or containers attached by id.

use super::Handle;
use crate::scenario::file::{
    self, BuildSpec, Check, DiskSpec, LeaderCheck, MachineOptions, Preset, ReadyCheck,
};
use std::time::Duration;

/// A service to add to an [`super::Experiment`].
#[derive(Debug, Clone)]
pub struct Service {
    pub(super) file: file::Service,
    pub(super) uses: Vec<Handle>,
}

impl Service {
    fn new(name: &str) -> Self {
        Service {
            file: file::Service::named(name),
            uses: vec![],
        }
    }

    /// A service described by its image: one of the project's images by name (`postgres`,
    /// `memcached`, …) or a `name:tag` the local engine holds.
    pub fn generic(name: &str, image: &str) -> Self {
        let mut s = Self::new(name);
        s.file.image = Some(image.into());
        s
    }

    /// A built-in kind of service (its image, environment and readiness come with it).
    pub fn preset(name: &str, preset: Preset) -> Self {
        let mut s = Self::new(name);
        s.file.preset = Some(preset);
        s
    }

    /// `replicas` Docker-in-Docker machines with these options.
    pub fn machines(name: &str, replicas: usize, options: MachineOptions) -> Self {
        let mut s = Self::preset(name, Preset::Machine).replicas(replicas);
        s.file.machine = Some(file::MachineField::Options(options));
        s
    }

    /// Containers something else started (e.g. testcontainers-rs), by id or name, one replica
    /// each: faults and probes act on them; the run never creates or removes them.
    pub fn attach<S: AsRef<str>>(name: &str, containers: &[S]) -> Self {
        let mut s = Self::new(name);
        s.file.attach = containers.iter().map(|c| c.as_ref().to_string()).collect();
        s
    }

    /// Places the replicas on machines, one each in order (a `machine` service's replica
    /// names, or the names of [`super::Experiment::machine`]s): they run on that machine's
    /// engine with its network and are reached at its address.
    pub fn on_machines(mut self, machines: &[&str]) -> Self {
        self.file.machine = Some(file::MachineField::On(
            machines.iter().map(|m| m.to_string()).collect(),
        ));
        self
    }

    pub fn replicas(mut self, replicas: usize) -> Self {
        self.file.replicas = replicas;
        self
    }

    /// The command (the arguments of the image's entrypoint). In the command, the entrypoint
    /// and environment values, `{replica}` is each replica's name (`etcd2`) and `{index}` its
    /// number, counted from 1 as in the name: `.command(&["etcd", "--name", "{replica}"])`.
    pub fn command(mut self, command: &[&str]) -> Self {
        self.file.command = command.iter().map(|c| c.to_string()).collect();
        self
    }

    pub fn entrypoint(mut self, entrypoint: &[&str]) -> Self {
        self.file.entrypoint = Some(entrypoint.iter().map(|c| c.to_string()).collect());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.file.env.insert(key.into(), value.into());
        self
    }

    /// A named volume, created for each replica with the run's labels.
    pub fn volume(mut self, name: &str, path: &str) -> Self {
        self.file.volumes.push(format!("{name}:{path}"));
        self
    }

    /// Memory limit of each replica in MiB (memory+swap the same: a leak ends in an OOM kill).
    pub fn memory_mib(mut self, mib: u64) -> Self {
        self.file.memory_mib = Some(mib);
        self
    }

    /// `oom_score_adj` of each replica's main process, 0 to 1000.
    pub fn oom_score_adj(mut self, adj: i64) -> Self {
        self.file.oom_score_adj = Some(adj);
        self
    }

    pub fn cpus(mut self, cpus: f64) -> Self {
        self.file.cpus = Some(cpus);
        self
    }

    /// When a replica is ready, polled every 100 ms for at most `timeout`.
    pub fn ready(mut self, check: Check, timeout: Duration) -> Self {
        self.file.ready = Some(ReadyCheck::of(check, timeout));
        self
    }

    /// A disk that can lose power (ext4 on a loop device; `lossy`: lossyfs over it).
    pub fn disk(mut self, size_mb: u64, path: &str, lossy: bool) -> Self {
        self.file.disk = Some(DiskSpec {
            size_mb,
            path: path.into(),
            lossy,
        });
        self
    }

    /// How to ask a replica whether it leads, for `Select::Leader` and `Select::Followers`:
    /// `LeaderCheck::http(2379, "/metrics").contains("etcd_server_is_leader 1")`.
    pub fn leader(mut self, check: LeaderCheck) -> Self {
        self.file.leader = Some(check);
        self
    }

    /// How often a `ready` check is tried (default 100 ms) and the deadline of one attempt
    /// (default 1 s). Call after [`Service::ready`].
    pub fn ready_polling(mut self, interval: Duration, attempt_timeout: Duration) -> Self {
        if let Some(ready) = &mut self.file.ready {
            (ready.interval, ready.attempt_timeout) = (Some(interval), Some(attempt_timeout));
        }
        self
    }

    /// Builds the image from a Dockerfile (the classic builder) instead of naming one; the
    /// context is relative to the current directory.
    pub fn build(mut self, build: BuildSpec) -> Self {
        self.file.build = Some(build);
        self
    }

    /// What the engine does when a replica's main process exits: `no` (default), `always`,
    /// `unless-stopped`, `on-failure` or `on-failure:N` (checked when the plan is made).
    pub fn restart(mut self, policy: &str) -> Self {
        self.file.restart = Some(policy.into());
        self
    }

    /// One more DNS name of every replica on the run's network.
    pub fn alias(mut self, alias: &str) -> Self {
        self.file.aliases.push(alias.into());
        self
    }

    /// The user the replicas' processes run as (`name`, `uid` or `uid:gid`).
    pub fn user(mut self, user: &str) -> Self {
        self.file.user = Some(user.into());
        self
    }

    /// The working directory of the replicas' processes.
    pub fn working_dir(mut self, dir: &str) -> Self {
        self.file.working_dir = Some(dir.into());
        self
    }

    /// A service this one talks to (the toy API's ZooKeeper, PostgreSQL, memcached).
    pub fn uses(mut self, other: &super::ServiceRef) -> Self {
        self.uses.push(other.into());
        self
    }
}
