//! The one entry point: `run(&Plan) -> Report`. Describing (scenario), executing (cluster,
//! nemesis, probes) and checking (check) meet here and nowhere else.
//!
//! Order: connect → take the run lock (timed runs never overlap) → reap dead runs → images →
//! bring up → probes prepare (a warm cache) → probes and nemesis → heal → read-backs → the
//! run lock released (after the teardown for a crowd of containers) → teardown → checks → report.
//! A harness error after bring-up started makes every verdict unknown; it is never a failure.

use crate::check::{self, Outcome, Verdict};
use crate::cluster::{new_run_id, Cluster};
use crate::engine::{self, cleanup, images};
use crate::error::{HarnessError, Result};
use crate::progress::{Progress, Step};
use crate::report::{Report, RunInfo};
use crate::scenario::builder::Experiment;
use crate::scenario::plan::{Image, MachineEngine, Plan};
use crate::timeline::{now, Timeline};
use crate::{fault, lock, output, probe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Options of one run: `RunOptions::default()`, then the setters below
/// (`RunOptions::default().seed(7).no_wait(true)`); the fields can be read and assigned too.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Where progress on the long steps goes (hidden by default).
    pub progress: Progress,
    /// The output root: reports in `<root>/<run id>/`, disks, build files. None: the default
    /// of `crate::output` (`$AFTERSHOCK_OUTPUT`, `$CARGO_TARGET_DIR/aftershock`,
    /// `$CARGO_MANIFEST_DIR/target/aftershock`, `./target/aftershock`).
    pub output_dir: Option<PathBuf>,
    /// When another run holds the machine-wide run lock: refuse at once
    /// ([`HarnessError::Busy`], naming it) instead of waiting for it.
    pub no_wait: bool,
    /// A binary that understands `watchdog --run <id> --parent <pid@start>` (the `aftershock`
    /// CLI sets itself): started in its own session for the run, it removes everything of the
    /// run within seconds if this process dies without tearing it down (`engine::watchdog`).
    /// None: no watchdog; the next run's reaper (or `aftershock clean`) removes leftovers.
    pub watchdog: Option<PathBuf>,
    /// The host's capabilities as the preflight should see them; None: probed on this host
    /// (`HostFacts::probe`). Tests fake a host without FUSE here.
    pub host: Option<engine::host::Facts>,
}

impl RunOptions {
    /// Overrides the scenario's seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Where progress on the long steps goes.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The output root: reports in `<root>/<run id>/`.
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output_dir = Some(dir.into());
        self
    }

    /// Whether to refuse at once when another run holds the run lock.
    pub fn no_wait(mut self, no_wait: bool) -> Self {
        self.no_wait = no_wait;
        self
    }

    /// The binary started as the run's watchdog (see the `watchdog` field).
    pub fn watchdog(mut self, binary: impl Into<PathBuf>) -> Self {
        self.watchdog = Some(binary.into());
        self
    }

    /// The host's capabilities as the preflight should see them, instead of probing.
    pub fn host(mut self, facts: engine::host::Facts) -> Self {
        self.host = Some(facts);
        self
    }
}

/// Runs a scenario against real containers and judges it. `Err` only when the run could not
/// start at all (no engine, images could not be built); later problems give an unknown report.
pub async fn run(scenario: &Plan, options: &RunOptions) -> Result<Report> {
    runnable(scenario)?;
    crate::report::redact::Secrets::of(scenario).remember();
    let docker = engine::connect().await?;
    let output = output::root(options.output_dir.as_deref());
    preflight(&docker, scenario, options.host.as_ref(), &output).await?;
    let run_id = new_run_id();
    let lock = {
        let _step = options
            .progress
            .step("waiting for the run lock (timed runs never overlap on one machine)");
        let me = lock::Holder::me(&run_id, &scenario.name);
        let wait = match options.no_wait {
            true => lock::Wait::Refuse,
            false => lock::Wait::For(&options.progress),
        };
        lock::take(&lock::path()?, &me, wait, lock_mode(scenario)).await?
    };
    run_locked(docker, &output, &run_id, scenario, options, Hold::Own(lock)).await
}

/// A run of this many containers or more keeps the run lock through its teardown. Docker
/// 20.10 can lose a network's endpoint count when many containers of one network are removed
/// at once while the host is busy (moby#42119: the network then stays until the engine
/// restarts); seen in a full `make test` when another run's bring-up overlapped the teardown
/// of `fifty-at-once`. A crowd's teardown takes 2–3 s.
const CROWD: usize = 20;

/// The run lock as a run holds it: its own, released as soon as its observation ends (the
/// next run's bring-up may overlap this one's teardown: nothing after the observation is
/// timed or judged), or its caller's, held across the caller's runs (`aftershock bench`).
enum Hold<'a> {
    Own(lock::Held),
    Callers(&'a lock::Held),
}

impl Hold<'_> {
    /// The observation has ended: the lock is released now, unless the run has a crowd of
    /// containers ([`CROWD`]): then it is given back, to be released after the teardown.
    fn observation_ended_unless_crowded(self, scenario: &Plan) -> Option<Self> {
        let containers: usize = scenario.services.iter().map(|s| s.replicas.len()).sum();
        if containers >= CROWD {
            return Some(self);
        }
        self.observation_ended();
        None
    }

    /// The observation has ended: the run's own lock is released, a caller's kept.
    fn observation_ended(self) {
        match self {
            Hold::Own(held) => drop(held),
            // Held by the caller until its last run has ended.
            Hold::Callers(held) => {
                let _: &lock::Held = held;
            }
        }
    }
}

/// [`run`] for a caller that already holds the run lock (`aftershock bench`).
pub(crate) async fn run_holding(
    scenario: &Plan,
    options: &RunOptions,
    lock: &lock::Held,
) -> Result<Report> {
    runnable(scenario)?;
    let docker = engine::connect().await?;
    let output = output::root(options.output_dir.as_deref());
    preflight(&docker, scenario, options.host.as_ref(), &output).await?;
    let hold = Hold::Callers(lock);
    run_locked(docker, &output, &new_run_id(), scenario, options, hold).await
}

/// The run itself, under the run lock.
async fn run_locked(
    docker: engine::Docker,
    output: &Path,
    run_id: &str,
    scenario: &Plan,
    options: &RunOptions,
    hold: Hold<'_>,
) -> Result<Report> {
    reap_dead_runs(&docker).await;
    let image_set = {
        let _step = options
            .progress
            .step("images: checking, building what is missing (a first build takes minutes)");
        let needed = images::needed_for(scenario.project_images());
        let mut set = images::ensure(&docker, &needed, output).await?;
        build_own(&docker, scenario, &mut set, output).await?;
        set
    };
    let platform = engine::platform::read(&docker).await;
    tracing::info!(engine = %platform.engine, api = %platform.negotiated, "engine: {}", platform.words());
    let _watchdog = watchdog(scenario, options, output, run_id)?;
    let seed = options.seed.or(scenario.seed).unwrap_or_else(rand::random);
    tracing::info!(
        scenario = %scenario.name,
        run = %run_id,
        seed,
        "running {} (run {run_id}, seed {seed})",
        scenario.name
    );
    for (machine, url) in scenario.insecure_machines() {
        // Its own target: the CLI prints this line itself (red on a terminal) and turns it off.
        tracing::warn!(target: "aftershock::insecure", %machine, %url, "INSECURE: machine `{machine}` is reached at {url} without TLS (insecure = true): whoever reaches that address controls its engine");
    }
    let with_health = image_health(&docker, scenario, &image_set).await?;
    let scenario = with_health.as_ref().unwrap_or(scenario);
    let timeline = Timeline::new();
    let started_at = now();
    let observed = observe(
        output,
        docker,
        run_id,
        scenario,
        &image_set,
        &timeline,
        seed,
        &options.progress,
    )
    .await;
    let held = hold.observation_ended_unless_crowded(scenario);
    let (result, kept_networks) = end_observed(observed, &timeline).await;
    if let Some(held) = held {
        held.observation_ended();
    }
    let error = result.err().map(|e| e.to_string());
    check::unplanned::mark_containers(&timeline);
    let outcomes = match &error {
        None => check::check_all(scenario, &timeline),
        Some(e) => unknown_all(scenario, &timeline, e),
    };
    let info = RunInfo {
        run_id: run_id.to_string(),
        seed,
        started_at,
        finished_at: now(),
        error,
    };
    let mut report =
        Report::new(scenario, info, outcomes, timeline.events()).in_dir(output.join(run_id));
    report.platform = Some(platform);
    report.kept_networks = kept_networks;
    report
        .write()
        .map_err(HarnessError::io(format!("write the report of {run_id}")))?;
    Ok(report)
}

/// Removes what dead runs left. That is theirs, not this run's problem: a failure to remove it
/// (say, a network whose containers the engine is still removing) is reported, never fatal.
async fn reap_dead_runs(docker: &engine::Docker) {
    match cleanup::reap_dead_runs(docker).await {
        Ok(reaped) if !reaped.is_empty() => {
            tracing::info!(?reaped, "removed what dead runs left behind: {reaped:?}")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(
            "could not remove everything dead runs left behind ({e}); the next run tries again, `aftershock clean` removes it"
        ),
    }
}

/// A plan whose Compose file a run cannot take as it is (the plan's blocking notes: a
/// missing `env_file`, an unset required variable) is refused before anything starts, with
/// each note's place and fix.
fn runnable(plan: &Plan) -> Result<()> {
    let blocking = crate::scenario::values::Note::blocking(&plan.notes);
    let reasons: Vec<String> = blocking.map(|n| n.to_string()).collect();
    match reasons.is_empty() {
        true => Ok(()),
        false => Err(HarnessError::Unrunnable { reasons }),
    }
}

/// The plan with every service that is ready by its image's own health check (a Compose
/// `service_healthy` wait on a service the file gives none) given that check, read from the
/// image; None when no service is. An image without one is refused before bring-up, where
/// the wait is written.
async fn image_health(
    docker: &engine::Docker,
    plan: &Plan,
    images: &images::ImageSet,
) -> Result<Option<Plan>> {
    let mut out: Option<Plan> = None;
    for (i, service) in plan.services.iter().enumerate() {
        let Some(wait) = service.extras.image_health.as_ref() else {
            continue;
        };
        if service.ready.is_some() {
            continue;
        }
        let image = crate::services::image(service, images)?;
        let found = engine::image_healthcheck(docker, &image).await?;
        let ready =
            found.and_then(|(test, times)| crate::scenario::compose::image_ready(&test, times));
        let Some(ready) = ready else {
            return Err(HarnessError::NoHealthCheck {
                at: wait.at.clone(),
                waiter: wait.waiter.clone(),
                service: service.name.clone(),
                image,
            });
        };
        tracing::info!(service = %service.name, "`{}` is ready by its image's own health check ({:?})", service.name, ready.check);
        out.get_or_insert_with(|| plan.clone()).services[i].ready = Some(ready);
    }
    Ok(out)
}

/// What the host must offer the scenario, checked before the run lock and before anything
/// starts: every image of the user's own (a `name:tag`) is in the local engine, pulled when a
/// registry serves it (the project's images and `build:` images are built on the way), and
/// what the faults and disks need of the host, and room on its disks (`engine::host::missing`:
/// everything missing in one refusal).
async fn preflight(
    docker: &engine::Docker,
    scenario: &Plan,
    host: Option<&engine::host::Facts>,
    output: &Path,
) -> Result<()> {
    machines_answer(scenario).await?;
    for service in &scenario.services {
        let Image::Local(image) = &service.image else {
            continue;
        };
        if engine::has_image(docker, image).await? {
            continue;
        }
        tracing::info!(image, "{image} is not in the local engine: pulling it");
        if let Err(pull) = engine::user_images::pull(docker, image).await {
            return Err(HarnessError::UnknownImage {
                service: service.name.clone(),
                image: image.to_string(),
                pull: Box::new(pull),
            });
        }
    }
    let facts = match host {
        Some(facts) => facts.clone(),
        None => {
            let mut facts = engine::host::Facts::probe(scenario).await;
            facts.rooms = rooms(docker, output).await;
            facts
        }
    };
    let missing = engine::host::missing(scenario, &facts);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(HarnessError::Preflight { missing })
    }
}

/// The free space of the output root and of the local engine's data root.
async fn rooms(docker: &engine::Docker, output: &Path) -> Vec<engine::host::Room> {
    use engine::host::{Room, Writes};
    // A data root not on this host (an engine elsewhere) is not measured.
    let data_root = (docker.info().await.ok())
        .and_then(|i| i.docker_root_dir)
        .filter(|d| Path::new(d).is_dir());
    [
        Room::measure(Writes::Output, output),
        data_root.and_then(|d| Room::measure(Writes::Engine, Path::new(&d))),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every machine given by URL answers (all asked at once, 5 s each); the first that does not
/// is the refusal, naming the machine and its URL.
async fn machines_answer(scenario: &Plan) -> Result<()> {
    let asks = scenario.machines.iter().filter_map(|m| match &m.engine {
        MachineEngine::Url { url, .. } => Some(async move {
            engine::remote::connect(&m.name, url, std::time::Duration::from_secs(5)).await
        }),
        MachineEngine::Started(_) => None,
    });
    for answer in futures_util::future::join_all(asks).await {
        answer?;
    }
    Ok(())
}

/// Starts the run's watchdog when the options name a binary for it (the CLI does).
fn watchdog(
    plan: &Plan,
    options: &RunOptions,
    output: &Path,
    run_id: &str,
) -> Result<Option<engine::watchdog::Watchdog>> {
    let Some(binary) = &options.watchdog else {
        return Ok(None);
    };
    let log = output.join(run_id).join("watchdog.log");
    let w =
        engine::watchdog::Watchdog::spawn(binary, run_id, &log, &engine::watchdog::machines(plan))?;
    tracing::debug!(run = %run_id, pid = w.pid(), "watchdog {} started", w.pid());
    Ok(Some(w))
}

/// Builds the services' own images (`Image::Build`) and adds their tags to `set`; builds the
/// static leak agent when a leak targets a service whose image does not carry it.
pub(crate) async fn build_own(
    docker: &engine::Docker,
    plan: &Plan,
    set: &mut images::ImageSet,
    output: &Path,
) -> Result<()> {
    let leaks_elsewhere = plan.faults.iter().any(|f| {
        matches!(f.kind, crate::scenario::plan::FaultKind::Leak { .. })
            && !plan
                .service(f.target)
                .is(crate::scenario::Preset::Memcached)
    });
    if leaks_elsewhere {
        images::static_binary("leak-agent", output).await?;
    }
    // Services of one build (a cluster written as separate services) share one image: a
    // machine loads it once.
    let mut built: Vec<(&Image, String)> = vec![];
    for service in &plan.services {
        if let Image::Build {
            context,
            dockerfile,
            args,
            target,
        } = &service.image
        {
            let tag = match built.iter().find(|(image, _)| *image == &service.image) {
                Some((_, tag)) => tag.clone(),
                None => {
                    let tag = engine::user_images::build(
                        docker,
                        &service.name,
                        context,
                        dockerfile,
                        args,
                        target.as_deref(),
                        output,
                    )
                    .await?;
                    built.push((&service.image, tag.clone()));
                    tag
                }
            };
            set.services.insert(crate::services::built(service), tag);
        }
    }
    Ok(())
}

/// Holds the machine-wide run lock: timed runs never overlap, even across test binaries and
/// checkouts, so a 2-core machine does not distort their timings.
pub async fn exclusive() -> Result<lock::Held> {
    let me = lock::Holder::me(
        &format!("test-{}", std::process::id()),
        "(a test holding the lock)",
    );
    let wait = lock::Wait::For(&Progress::default());
    lock::take(&lock::path()?, &me, wait, lock::Mode::Alone).await
}

/// Alone on the machine, or shared with one other run: from what the scenario judges.
fn lock_mode(scenario: &Plan) -> lock::Mode {
    use aftershock_model::scenario::overlap::{overlap, Overlap};
    match overlap(scenario) {
        Overlap::Alone(why) => {
            tracing::info!("{} runs alone on this machine: {why}", scenario.name);
            lock::Mode::Alone
        }
        Overlap::Shared => {
            tracing::info!(
                "{} judges only budgets of seconds and data: it may share the machine with one such run",
                scenario.name
            );
            lock::Mode::Shared
        }
        Overlap::Machines => {
            tracing::info!(
                "{} judges only budgets of seconds and data on machines of its own: it may share the host with one such run without machines",
                scenario.name
            );
            lock::Mode::Machines
        }
    }
}

fn unknown_all(scenario: &Plan, timeline: &Timeline, error: &str) -> Vec<Outcome> {
    check::check_all(scenario, timeline)
        .into_iter()
        .map(|mut o| {
            o.verdict = Verdict::Unknown {
                reason: format!("harness error: {error}"),
            };
            o
        })
        .collect()
}

#[allow(clippy::too_many_arguments)] // the run's facts, each used once; a struct would only rename them
/// Brings the run up, observes it (probes and nemesis) and returns the cluster to tear down
/// with the first fault's error, if any.
async fn observe(
    output: &Path,
    docker: engine::Docker,
    run_id: &str,
    scenario: &Plan,
    image_set: &images::ImageSet,
    timeline: &Timeline,
    seed: u64,
    progress: &Progress,
) -> Result<(Cluster, Option<HarnessError>)> {
    let cluster = {
        let names: Vec<&str> = scenario.services.iter().map(|s| s.name.as_str()).collect();
        let _step = progress.step(format!("bringing up {}", names.join(", ")));
        Arc::new(
            Cluster::up(
                output,
                docker,
                run_id,
                scenario,
                image_set,
                timeline.clone(),
            )
            .await?,
        )
    };
    probe::prepare_all(scenario, &cluster.addresses, timeline, seed).await?;
    timeline.note("observation starts");
    let start = Instant::now();
    let until = start + scenario.duration;
    let watcher = progress.is_watched().then(|| {
        let step = progress.timed(format!("observing {}", scenario.name), scenario.duration);
        watch_observation(step, scenario, timeline, start)
    });
    let probes = probe::start_all(
        &cluster.engine,
        scenario,
        &cluster.addresses,
        timeline,
        scenario.duration,
        seed,
    );
    let nemesis = fault::start_all(&cluster, start, until, seed);
    let mut first_error = None;
    for task in nemesis {
        let result = task.await.unwrap_or_else(|e| {
            Err(HarnessError::Fault {
                fault: "?".into(),
                message: format!("nemesis task panicked: {e}"),
            })
        });
        if let Err(e) = result {
            timeline.note(format!("nemesis error: {e}"));
            first_error.get_or_insert(e);
        }
    }
    for p in probes {
        p.finish(timeline).await;
    }
    if let Some(w) = watcher {
        w.abort();
    }
    timeline.note("observation ends");
    let cluster = Arc::into_inner(cluster).expect("every nemesis task has ended");
    Ok((cluster, first_error))
}

/// Tears an observed run down: its result (the observation's first error, else the
/// teardown's) and how many networks the engine kept.
async fn end_observed(
    observed: Result<(Cluster, Option<HarnessError>)>,
    timeline: &Timeline,
) -> (Result<()>, usize) {
    match observed {
        Ok((cluster, first_error)) => match teardown(cluster, timeline).await {
            Ok(removed) => (first_error.map_or(Ok(()), Err), removed.kept_networks),
            Err(e) => (Err(e), 0),
        },
        Err(e) => (Err(e), 0),
    }
}

/// Removes everything the run created, noted on its timeline (with any network the engine
/// kept, moby#42119).
async fn teardown(cluster: Cluster, timeline: &Timeline) -> Result<cleanup::Removed> {
    let removed = cluster.down().await?;
    timeline.note(format!(
        "teardown removed {} containers, {} networks, {} volumes",
        removed.containers, removed.networks, removed.volumes
    ));
    if removed.kept_networks > 0 {
        timeline.note(format!(
            "the engine kept {} network(s) of this run although nothing was attached (\"has active endpoints\", Docker 20.10's moby#42119): left, they go at the engine's next restart",
            removed.kept_networks
        ));
    }
    Ok(removed)
}

/// Moves the observation's progress bar and names the faults in effect, until aborted (or, at
/// the latest, a minute after the observation should have ended).
fn watch_observation(
    step: Step,
    scenario: &Plan,
    timeline: &Timeline,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    let faults: Vec<String> = scenario.faults.iter().map(|f| f.name.clone()).collect();
    let timeline = timeline.clone();
    let last = start + scenario.duration + std::time::Duration::from_secs(60);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        while Instant::now() < last {
            tick.tick().await;
            let active: Vec<&str> = faults
                .iter()
                .filter(|f| matches!(timeline.fault_window(f), (Some(_), None)))
                .map(String::as_str)
                .collect();
            let message = match active.as_slice() {
                [] => "observing".to_string(),
                names => format!("fault in effect: {}", names.join(", ")),
            };
            step.moved(start.elapsed(), message);
        }
    })
}

/// Makes sure the project's base image (Debian bookworm and its packages, built from the
/// Debian mirror: nothing is pulled) exists, and returns its stable tag,
/// `aftershock/base:latest`, for Dockerfiles of your own. The first build takes minutes.
pub async fn base_image(options: &RunOptions) -> Result<String> {
    let docker = engine::connect().await?;
    let output = output::root(options.output_dir.as_deref());
    Ok(images::base(&docker, &output).await?)
}

/// Runs an [`Experiment`] (the model's builder) from the runtime: `x.run().await`.
pub trait RunExperiment {
    /// Plans and runs the experiment against real containers with default options.
    fn run(&self) -> impl std::future::Future<Output = Result<Report>>;

    /// Plans and runs the experiment against real containers.
    fn run_with(&self, options: &RunOptions) -> impl std::future::Future<Output = Result<Report>>;
}

impl RunExperiment for Experiment {
    async fn run(&self) -> Result<Report> {
        self.run_with(&RunOptions::default()).await
    }

    async fn run_with(&self, options: &RunOptions) -> Result<Report> {
        run(&self.plan()?, options).await
    }
}

#[cfg(test)]
mod tests {
    /// A Compose file whose `env_file` does not exist plans, and a run refuses it before it
    /// reaches the engine (no Docker needed), with the warning's place and fix.
    #[tokio::test]
    async fn a_plan_with_a_warning_a_run_stops_on_is_refused_before_anything_starts() {
        let dir =
            std::env::temp_dir().join(format!("aftershock-unrunnable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let compose = "services:\n  app:\n    image: x\n    env_file: .env\n";
        std::fs::write(dir.join("compose.yml"), compose).unwrap();
        std::fs::write(dir.join(".env.example"), "KEY=\n").unwrap();
        let toml =
            "name = \"unrunnable\"\nduration = \"2s\"\n[topology]\ncompose = \"compose.yml\"\n";
        std::fs::write(dir.join("s.toml"), toml).unwrap();
        let plan = crate::scenario::load(&dir.join("s.toml")).unwrap_or_else(|e| panic!("{e}"));
        let error = super::run(&plan, &Default::default()).await.unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, crate::error::HarnessError::Unrunnable { .. }),
            "{text}"
        );
        assert!(
            text.contains("nothing was started")
                && text.contains("compose.yml:4: service `app`: warning: `env_file`"),
            "{text}"
        );
        assert!(text.contains("cp .env.example .env"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
