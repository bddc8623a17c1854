//! DESCRIBE: what an experiment is, with no I/O besides reading a file.
//!
//! Two front ends, one result. A scenario file (TOML, [`file`]) or the Rust builder
//! ([`builder::Experiment`]) is resolved once ([`resolve`]) into a typed [`Plan`]: services,
//! probes, faults and expectations as enum variants holding exactly their own fields, every
//! reference an id. Errors name `file:line:column` (or `<builder>`).

pub mod builder;
pub mod compose;
pub mod engine_url;
mod error;
pub mod file;
pub(crate) mod kinds;
mod load;
pub mod overlap;
pub mod plan;
pub(crate) mod resolve;
pub mod toxics;
pub mod values;

pub use error::ScenarioError;
pub use file::{
    BuildSpec, Check, CutShape, DiskErrno, DiskOp, DiskSpec, LeaderCheck, MachineOptions, Preset,
    RegistryConfig, Select, Signal, UnitStyle,
};
pub use load::{load, load_compose, load_composes, parse};
pub use plan::Plan;

/// The project's service images, by the name of their directory in `images/`.
pub const PROJECT_IMAGES: &[&str] = &[
    "zookeeper",
    "consul",
    "memcached",
    "registry",
    "postgres",
    "toy-api",
    "datastore",
    "machine",
    "machine-unit",
];

/// The consul key the machine scenarios write before the fault and look for afterwards.
pub const CONSUL_TEST_KEY: &str = "aftershock/deploy/config";

/// The most containers one run may have.
pub const MAX_CONTAINERS: usize = 100;
