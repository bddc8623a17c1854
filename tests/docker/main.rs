//! The docker-backed tests, as one test binary (one compile and one link of the runtime
//! instead of one per file). Each module was a test file of its own; run one with
//! `cargo test --workspace --test docker -- MODULE::` (e.g. `-- audit::`).
//!
//! The tests of this binary run in parallel threads: every timed run takes the machine-wide
//! run lock (`/tmp/aftershock/run.lock`), so only what measures nothing overlaps (parsing,
//! planning, refusals, the CLI's start, waiting for the lock). What would load the machine
//! outside a run (starting the multi-machine fleet, building a release binary) takes the lock
//! too. A test finds its own containers by its scenario's name, never by this process's pid
//! (other tests of this process run beside it). Tests that point `DOCKER_HOST` elsewhere
//! (`engine_restart`, `no_engine`) stay binaries of their own: the variable is process-wide.

mod audit;
mod audit_examples;
mod bench;
mod bringup;
mod cache_oom;
mod clock;
mod compose;
mod cut;
mod daemon_restart;
mod disk_faults;
mod engine_crash_any_service;
mod generic_faults;
mod honest_exits;
mod lossy_teardown;
mod multi_machine;
mod partial_partition;
mod postgres_power_cut;
mod postgres_replica;
mod power_cut;
mod pull;
mod scale;
mod sick_link;
mod teardown;
mod zookeeper_quorum;
