//! Operations on the machine around the runs: what the `aftershock` command line does besides
//! running scenarios (build images, clean up, the watchdog, suites, the bench), and what this
//! project's own tests look at after a run (what is left on the engine and the host).
//!
//! A crate that only tests its architecture needs none of this: [`crate::run`] takes the run
//! lock, reaps dead runs, builds images and tears down by itself. These are for tools.
//!
//! Everything the harness creates carries an `aftershock.run` label; the cleanup here works
//! by those labels, never by in-memory handles.

use crate::engine::{self, cleanup, disk, images, lossy, owner};
use crate::error::{HarnessError, Result};
use crate::report::{self, Report};
use crate::scenario::engine_url::EngineUrl;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::bench::compose::ComposeBench;
pub use crate::bench::{Bench, Options as BenchOptions, Target as BenchTarget};
pub use crate::engine::cleanup::{Labelled as Leftovers, Removed, RunGuard};
pub use crate::engine::images::ImageSet;
pub use crate::engine::tls::RunTls;
pub use crate::engine::Docker;
pub use crate::lock::{Held as RunLock, Holder};
pub use crate::output::OutputEnv;
pub use crate::report::redact::{logged as hide_secrets, Secrets, HIDDEN};
pub use crate::report::suite;

/// Connects to the local Docker engine (`DOCKER_HOST`, else the default socket) and checks
/// that it answers.
pub async fn connect() -> Result<Docker> {
    Ok(engine::connect().await?)
}

/// A client for the Docker engine of a machine at `url`, once it answers `/_ping` within
/// `timeout` (`machine` names it in the error).
pub async fn connect_machine(machine: &str, url: &EngineUrl, timeout: Duration) -> Result<Docker> {
    Ok(engine::remote::connect(machine, url, timeout).await?)
}

/// A client for the Docker engine of a machine at `url`, without checking that it answers.
pub fn machine_client(machine: &str, url: &EngineUrl) -> Result<Docker> {
    Ok(engine::remote::client(machine, url)?)
}

/// A CA, a server certificate for `addresses` (what each engine's `dockerd --tlsverify`
/// reads: `RunTls::machine`) and a client certificate (`RunTls::client`, a machine's `tls`
/// directory), written under `<run_dir>/tls/` and registered machine-wide like a run's: removed
/// by `RunTls::remove`, or after this process dies by the next run or `aftershock clean`.
pub fn make_tls(run_dir: &Path, addresses: &[String]) -> Result<RunTls> {
    Ok(engine::tls::make(run_dir, addresses).map_err(engine::EngineError::from)?)
}

/// Where the aftershock sources are (`images/`, `scenarios/`): `AFTERSHOCK_ROOT`, else the
/// workspace this crate was built in. Nothing is written there.
pub fn project_root() -> PathBuf {
    images::project_root()
}

/// The output root when none is given: `$AFTERSHOCK_OUTPUT`, `$CARGO_TARGET_DIR/aftershock`,
/// `$CARGO_MANIFEST_DIR/target/aftershock`, else `./target/aftershock`.
pub fn output_root() -> PathBuf {
    crate::output::default_root()
}

/// A new run id (`20261201T101500-1a2b3c4d`): the name of a run's directory and the value of
/// its labels; also names a suite's or an audit's directory.
pub fn new_run_id() -> String {
    crate::cluster::new_run_id()
}

/// Makes sure the project images `names` (`zookeeper`, `machine`, …) and what they depend on
/// exist in the engine, building what is missing (build files under `output`).
pub async fn ensure_images(docker: &Docker, names: &[&str], output: &Path) -> Result<ImageSet> {
    Ok(images::ensure(docker, &images::needed_for(names), output).await?)
}

/// Makes sure every project image exists (`aftershock images build`).
pub async fn build_all_images(docker: &Docker, output: &Path) -> Result<ImageSet> {
    Ok(images::ensure_all(docker, output).await?)
}

/// A workspace binary that runs on the host (`lossyfs`), built under `output`; its path.
pub async fn host_binary(name: &str, output: &Path) -> Result<PathBuf> {
    Ok(images::host_binary(name, output).await?)
}

/// A workspace binary linked statically (`leak-agent`), built under `output`; its path.
pub async fn static_binary(name: &str, output: &Path) -> Result<PathBuf> {
    Ok(images::static_binary(name, output).await?)
}

/// Pulls `image` into the engine, as a run does for a service's image it does not have.
pub async fn pull_image(docker: &Docker, image: &str) -> Result<()> {
    engine::user_images::pull(docker, image)
        .await
        .map_err(|e| HarnessError::io(format!("pull {image}"))(std::io::Error::other(e)))
}

/// Whether the engine has `image`.
pub async fn has_image(docker: &Docker, image: &str) -> Result<bool> {
    Ok(engine::has_image(docker, image).await?)
}

/// The containers, networks and volumes labelled as run `run` (of any run when None), and
/// the owner of each run found.
pub async fn leftovers(docker: &Docker, run: Option<&str>) -> Result<Leftovers> {
    Ok(cleanup::list_labelled(docker, run).await?)
}

/// The labels every container, network and volume of run `run` (of scenario `scenario`)
/// carries: the run, the scenario, this process (`pid@start time`) and this host. What a tool
/// creates with them is removed like a run's: by [`remove_run`], a [`RunGuard`], the reaper
/// once this process is gone, and `aftershock clean`.
pub fn run_labels(run: &str, scenario: &str) -> HashMap<String, String> {
    let owner = owner::process_identity(std::process::id()).unwrap_or_default();
    HashMap::from([
        (engine::LABEL_RUN.to_string(), run.to_string()),
        (engine::LABEL_SCENARIO.to_string(), scenario.to_string()),
        (engine::LABEL_PID.to_string(), owner),
        (engine::LABEL_HOST.to_string(), engine::hostname()),
    ])
}

/// Removes everything of run `run`: its labelled containers, networks and volumes, and its
/// disks.
pub async fn remove_run(docker: &Docker, run: &str) -> Result<Removed> {
    Ok(cleanup::remove_run(docker, run).await?)
}

/// Removes everything of every run, live or dead (`aftershock clean`).
pub async fn remove_everything(docker: &Docker) -> Result<Removed> {
    Ok(cleanup::remove_everything(docker).await?)
}

/// The watchdog's work (`aftershock watchdog`, started by a run given
/// `RunOptions::watchdog`): waits for the process `parent`
/// (`pid@start time`) to end, then removes everything of `run`, here and on `machines`
/// (engine URLs, `URL#CERT_DIR` for https). Returns what it removed.
pub async fn watchdog(run: &str, parent: &str, machines: &[String]) -> Result<Removed> {
    Ok(engine::watchdog::watch(run, parent, machines).await?)
}

/// Where a run's loop-device disks (and their lossyfs mounts) live, under its directory.
pub fn disks_dir(run_dir: &Path) -> PathBuf {
    disk::disks_dir(run_dir)
}

/// The directory of run `run` when it registered disks (and has not removed them yet).
pub fn registered_run_dir(run: &str) -> Option<PathBuf> {
    disk::registered(run)
}

/// The FUSE (lossyfs) mounts under `disks`.
pub fn fuse_mounts(disks: &Path) -> Vec<PathBuf> {
    lossy::fuse_mounts(disks)
}

/// The pids of the lossyfs processes serving disks under `disks`.
pub fn lossyfs_processes(disks: &Path) -> Vec<i32> {
    lossy::processes(disks)
}

/// Removes every disk of the run in `run_dir` (lossyfs stopped, unmounted, loop device
/// detached), as teardown, the reaper and `aftershock clean` do. Returns the problems met.
pub fn destroy_disks(run_dir: &Path) -> Vec<String> {
    disk::destroy_all(run_dir)
}

/// Takes the machine-wide run lock for a test or tool that loads the machine outside a run
/// (image builds, a fleet of machines starting), waiting for whoever holds it.
pub async fn exclusive() -> Result<RunLock> {
    crate::run::exclusive().await
}

/// Takes the machine-wide run lock for `holder`, waiting (and saying whom for, in a tracing
/// event) while another run holds it. Timed work outside a run takes it too.
pub async fn take_run_lock(holder: &Holder) -> Result<RunLock> {
    let progress = crate::Progress::default();
    let wait = crate::lock::Wait::For(&progress);
    let alone = crate::lock::Mode::Alone;
    crate::lock::take(&crate::lock::path()?, holder, wait, alone).await
}

/// Measures the harness on this machine (`aftershock bench`); holds the run lock throughout.
pub async fn bench(options: &BenchOptions) -> Result<Bench> {
    crate::bench::run(options).await
}

/// Bring-up of a Compose file by the harness and by `docker-compose`, side by side
/// (`aftershock bench --compose FILE`); holds the run lock throughout.
pub async fn bench_compose(file: &Path, reps: usize, output: &Path) -> Result<ComposeBench> {
    crate::bench::compose::run(file, reps, output).await
}

/// A made-up report with every kind of event, verdict and measurement (`aftershock report
/// --demo`): to look at the report's pages without a run.
pub fn demo_report() -> Report {
    report::demo::report()
}
