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

// The project's own tests reach the internals through the `internals` feature; a user's
// crate sees only the API below.
macro_rules! internal {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[cfg(feature = "internals")]
            pub mod $name;
            $(#[$doc])*
            #[cfg(not(feature = "internals"))]
            #[allow(dead_code)]
            mod $name;
        )*
    };
}

internal!(bench, cluster, engine, error, fault, lock, output, probe, run, services);

pub mod progress;
pub mod report;

// The model (aftershock-model): describing and checking, no runtime. Its modules are reached
// here under the same names, so `crate::scenario::…` means the same inside this crate.
pub use aftershock_model::{audit, check, scenario, timeline, units};

pub use check::Verdict;
pub use error::HarnessError as Error;
pub use progress::{Progress, ProgressEvent};
pub use report::Report;
pub use run::{base_image, run, RunExperiment, RunOptions};
pub use scenario::builder::{
    Expect, Experiment, Fault, FaultRef, Machine, Probe, ProbeRef, Service, ServiceRef,
};
pub use scenario::{
    load, parse, Check, CutShape, MachineOptions, Plan, Preset, ScenarioError, Select, Signal,
};
