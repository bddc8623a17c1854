//! aftershock: replays real outages against real containers and checks recovery behaviour
//! and timings. See ARCHITECTURE.md for the map.

pub mod check;
pub mod cluster;
pub mod engine;
pub mod error;
pub mod fault;
pub mod odds;
pub mod output;
pub mod probe;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod services;
pub mod timeline;

pub use run::{run, RunOptions};
