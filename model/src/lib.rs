//! aftershock's model: DESCRIBE and CHECK, with no runtime and no engine (no tokio, no
//! bollard — Cargo enforces it). A scenario file (and its Compose file) or the builder
//! resolves into one typed [`scenario::Plan`]; a run's events form a [`timeline::Timeline`];
//! the checkers are pure functions of that frozen timeline. The runtime (`aftershock`)
//! executes a plan; the CLI (`aftershock-cli`) is the binary. See ARCHITECTURE.md.

pub mod audit;
pub mod check;
pub mod scenario;
pub mod timeline;
pub mod units;
