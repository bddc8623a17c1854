//! Faults for the builder: one constructor per kind, each taking the service it hits.

use super::{Handle, ServiceRef};
use crate::scenario::file::{self, CutShape, DiskErrno, DiskOp, FaultKind as K, Select, Signal};
use crate::scenario::toxics::Toxics;
use std::time::Duration;

/// A fault to add to an [`super::Experiment`]. Applied `at` (default: at once) after the
/// probes start, to the replicas `select` names (default: one, chosen with the seed).
#[derive(Debug, Clone)]
pub struct Fault {
    pub(super) file: file::Fault,
    pub(super) target: Handle,
}

impl Fault {
    /// A fault of `kind` on `target`, every option at its default.
    pub fn new(name: &str, kind: K, target: &ServiceRef) -> Self {
        Fault {
            file: file::Fault::new(name, kind, file::reference(target.name())),
            target: target.into(),
        }
    }

    /// Signal the selected replicas at one instant (pidfds); they stay down until healed.
    pub fn kill(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::Kill, target)
    }

    /// Kill, then start again after `down_for`.
    pub fn restart(name: &str, target: &ServiceRef, down_for: Duration) -> Self {
        Self::new(name, K::Restart, target).down_for(down_for)
    }

    /// Restart one replica at a time, each rejoining before the next (the leader last).
    pub fn rolling_restart(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::RollingRestart, target)
    }

    /// `docker stop`; heal: start.
    pub fn stop(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::Stop, target)
    }

    /// The machines of the selected replicas (placed on machines) cut off from the run's other
    /// machines by their firewalls; heal: the rules deleted.
    pub fn machine_partition(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::MachinePartition, target)
    }

    /// The cgroup freezer; heal: thaw.
    pub fn pause(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::Pause, target)
    }

    /// Off the run's network; heal: back with the same address.
    pub fn partition(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::Partition, target)
    }

    /// Drop `loss_percent` of the replicas' packets (and delay them, see [`Fault::delay`]).
    pub fn netem(name: &str, target: &ServiceRef, loss_percent: f64) -> Self {
        let mut f = Self::new(name, K::Netem, target);
        f.file.loss_percent = Some(loss_percent);
        f
    }

    /// Cut the selected replicas from the service's other replicas (or `peers`, or in the shape
    /// [`Fault::shape`] says) in their own network namespaces; heal: the rules deleted.
    pub fn cut(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::Cut, target)
    }

    /// A cut's shape: the selected from `peers`, a bridge, a ring of majorities.
    pub fn shape(mut self, shape: CutShape) -> Self {
        self.file.shape = Some(shape);
        self
    }

    /// The replicas a cut of shape `isolate` cuts the selected ones from.
    pub fn peers(mut self, peers: &[&str]) -> Self {
        self.file.peers = Some(peers.iter().map(|p| p.to_string()).collect());
        self
    }

    /// A cut drops only what the selected side sends of its own accord (one-way).
    pub fn one_way(mut self) -> Self {
        self.file.one_way = Some(true);
        self
    }

    /// Move the selected replicas' wall clock by `offset` (`"+30s"`, `"-1h"`) through
    /// libfaketime; heal: back to the host's time.
    pub fn clock(name: &str, target: &ServiceRef, offset: &str) -> Self {
        let mut f = Self::new(name, K::Clock, target);
        f.file.offset = Some(offset.to_string());
        f
    }

    /// A clock fault strobes: its offset for `period`, the host's time for as long, again.
    pub fn strobe(mut self, period: Duration) -> Self {
        self.file.strobe = Some(period);
        self
    }

    /// Make the selected replicas' incoming TCP connections on the fault's port (default: the
    /// ready port) sick with `toxics` (Toxiproxy's), through a proxy in their network
    /// namespace; heal: the redirect deleted, the proxy stopped.
    pub fn sick_link(name: &str, target: &ServiceRef, toxics: Toxics) -> Self {
        let mut f = Self::new(name, K::SickLink, target);
        f.file.toxics = Some(toxics);
        f
    }

    /// A slow disk (on a `lossy` disk): every read, write and fsync waits `latency` first
    /// (only some of them: [`Fault::ops`]); heal: no delay.
    pub fn disk_latency(name: &str, target: &ServiceRef, latency: Duration) -> Self {
        let mut f = Self::new(name, K::DiskLatency, target);
        f.file.latency = Some(latency);
        f
    }

    /// A failing disk (on a `lossy` disk): writes and fsyncs answer `errno` (only some
    /// operations: [`Fault::ops`]; a share of them: [`Fault::percent`]); heal: no errors.
    pub fn disk_error(name: &str, target: &ServiceRef, errno: DiskErrno) -> Self {
        let mut f = Self::new(name, K::DiskError, target);
        f.file.errno = Some(errno);
        f
    }

    /// A full disk (on a `lossy` disk): every write answers ENOSPC (after
    /// [`Fault::room_bytes`] more); heal: room again.
    pub fn disk_full(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::DiskFull, target)
    }

    /// The operations a disk-latency or disk-error fault hits.
    pub fn ops(mut self, ops: &[DiskOp]) -> Self {
        self.file.ops = Some(ops.to_vec());
        self
    }

    /// The share of the operations a disk-error fault fails, in percent.
    pub fn percent(mut self, percent: f64) -> Self {
        self.file.percent = Some(percent);
        self
    }

    /// A disk-error fault's failed fsyncs forget the writes they were to flush (fsyncgate).
    pub fn forget_writes(mut self) -> Self {
        self.file.forget_writes = Some(true);
        self
    }

    /// The bytes a disk-full fault's disk still takes before it answers ENOSPC.
    pub fn room_bytes(mut self, bytes: u64) -> Self {
        self.file.room_bytes = Some(bytes);
        self
    }

    /// Freeze, shut the disk down without flushing, kill; heal: remount and start.
    pub fn power_cut(name: &str, target: &ServiceRef) -> Self {
        Self::new(name, K::PowerCut, target)
    }

    /// The leak agent in a memcached replica until the OOM killer acts; down `down_for` after.
    pub fn leak(name: &str, target: &ServiceRef, down_for: Duration) -> Self {
        Self::new(name, K::Leak, target).down_for(down_for)
    }

    /// SIGKILL the dockerd of each selected machine (`machines`: a machine service), or of the
    /// machines the selected replicas of a service placed on machines run on; `gap` apart.
    pub fn daemon_crash(name: &str, machines: &ServiceRef, gap: Duration) -> Self {
        let mut f = Self::new(name, K::DaemonCrash, machines);
        f.file.gap = Some(gap);
        f
    }

    /// When, counted from the start of the probes.
    pub fn at(mut self, at: Duration) -> Self {
        self.file.at = at;
        self
    }

    pub fn select(mut self, select: Select) -> Self {
        self.file.select = select;
        self
    }

    /// How long the replicas stay down before the heal (default: to the end).
    pub fn down_for(mut self, down_for: Duration) -> Self {
        self.file.down_for = Some(down_for);
        self
    }

    /// The signal of a kill, restart or rolling restart (default SIGKILL).
    pub fn signal(mut self, signal: Signal) -> Self {
        self.file.signal = signal;
        self
    }

    /// The delay a netem fault adds (needs the kernel's netem qdisc).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.file.delay = Some(delay);
        self
    }

    /// The port a partition's or netem's verification connects to.
    pub fn port(mut self, port: u16) -> Self {
        self.file.port = Some(port);
        self
    }

    /// A power cut on a lossy disk tears the write in flight at sectors of `bytes` (512, 4096).
    pub fn tear(mut self, bytes: u64) -> Self {
        self.file.tear = Some(if bytes == 4096 {
            "4KiB".into()
        } else {
            format!("{bytes}B")
        });
        self
    }

    /// A rolling restart's longest wait for one replica to rejoin, or a leak's for the OOM
    /// kill (default 30 s).
    pub fn rejoin_timeout(mut self, timeout: Duration) -> Self {
        self.file.rejoin_timeout = timeout;
        self
    }

    /// How fast a leak allocates, MiB per second (default 32).
    pub fn leak_rate(mut self, mib_per_s: u32) -> Self {
        self.file.leak_mib_per_s = Some(mib_per_s);
        self
    }
}
