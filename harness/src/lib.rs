//! aftershock: replays real outages against real containers and tells you, with measured
//! timings, whether they would happen to your architecture. See ARCHITECTURE.md for the map.
//!
//! The public API is small: describe an [`Experiment`] (or [`load`] a scenario file) into a
//! [`Plan`], [`run`] it, read the [`Report`].
//!
//! ```no_run
//! use aftershock::{Check, Expect, Experiment, Fault, Probe, RunExperiment, Service};
//! use std::time::Duration;
//! # async fn demo() -> Result<(), aftershock::Error> {
//! let secs = Duration::from_secs;
//! let mut x = Experiment::new("cache-restart", secs(10)).seed(7);
//! let cache = x.service(
//!     Service::generic("cache", "memcached")
//!         .replicas(2)
//!         .ready(Check::Tcp(11211), secs(30)),
//! );
//! let port = x.probe(Probe::tcp("port", &cache, 11211).on(cache.replica(0)));
//! let kill = x.fault(Fault::restart("kill", &cache, secs(3)).at(secs(2)));
//! x.expect(Expect::fault_verified(&kill));
//! x.expect(Expect::recovers_within(&port, &kill, secs(5)));
//! x.run().await?.assert_passed();
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod admin;
mod bench;
mod cluster;
mod engine;
mod error;
mod fault;
mod lock;
mod mounts;
mod output;
mod probe;
mod progress;
mod report;
mod run;
mod services;

// The model (aftershock-model): describing and checking, no runtime. Its modules are reached
// here under the same names, so `crate::scenario::…` means the same inside this crate. A user
// who needs more of the model than the facade below names depends on `aftershock-model`.
use aftershock_model::{check, scenario, timeline, units};

pub use check::timing::{FaultTiming, TargetDown};
pub use check::{Outcome, Verdict};
pub use engine::host::{Cgroup, Facts as HostFacts, Room, Writes};
pub use engine::EngineError;
pub use error::HarnessError as Error;
pub use mounts::UnsafeMount;
pub use progress::{Progress, ProgressEvent};
pub use report::{InsecureMachine, Measured, Report, Written};
pub use run::{base_image, run, RunExperiment, RunOptions};
pub use scenario::builder::{
    Expect, Experiment, Fault, FaultRef, Machine, Probe, ProbeRef, ReplicaArg, ReplicaRef, Service,
    ServiceRef,
};
pub use scenario::file::{ExpectationKind, FaultKind};
pub use scenario::toxics::{LinkStream, Toxics};
pub use scenario::{
    load, parse, Check, CutShape, DiskErrno, DiskOp, LeaderCheck, MachineOptions, Plan, Preset,
    ScenarioError, Select, Signal,
};
pub use timeline::{Cause, Event, EventKind, Metric, Nanos, Stage};
