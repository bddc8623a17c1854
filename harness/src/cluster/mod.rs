//! A live topology: the run's network and containers, shareable (`&self` everywhere) so the
//! nemesis, probes and tests can act on it concurrently. Bring-up and teardown live here.

use crate::engine::cleanup::{Removed, RunGuard};
use crate::engine::disk::Disk;
use crate::engine::images::ImageSet;
use crate::engine::inner::{self, Inner};
use crate::engine::lossy::Lossy;
use crate::engine::signal;
use crate::engine::{self, ContainerSpec, Route, RunEngine};
use crate::error::{HarnessError, Result};
use crate::scenario::plan::{Placement, Plan, Service};
use crate::scenario::{Preset, Signal};
use crate::services::{self, Addresses, ServiceError};
use crate::timeline::{now, EventKind, Nanos, Timeline};

mod bringup;
mod kill_skew;
mod machines;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a group kill was carried out and what it measured.
#[derive(Debug, Clone)]
pub struct KillReport {
    /// When the first signal left (Unix ns), when sent at the processes.
    pub signalled_at: Option<Nanos>,
    /// Through pidfds at the processes (local engine) or through the Engine API (remote).
    pub direct: bool,
    /// Spread of the processes' exits (ns), when measured at the processes: from the kernel's
    /// exit records (taskstats) when available, else from the pidfds.
    pub exit_skew: Option<Nanos>,
    /// Spread of the pidfd wake-ups (ns): exit plus the kernel's teardown of each process.
    /// Read by the kill-skew test (`cluster/kill_skew.rs`) only.
    #[cfg_attr(not(test), allow(dead_code))]
    pub reaped_skew: Option<Nanos>,
    /// Whether `exit_skew` comes from the kernel's exit records. Read by the kill-skew test.
    #[cfg_attr(not(test), allow(dead_code))]
    pub from_taskstats: bool,
    /// Spread of the signals sent (ns).
    pub signal_spread: Option<Nanos>,
}

/// The running system of one run.
pub struct Cluster {
    pub engine: RunEngine,
    pub plan: Plan,
    pub addresses: Addresses,
    pub timeline: Timeline,
    /// The disks of replicas that have one (see `engine::disk`), by replica.
    pub disks: std::collections::BTreeMap<String, Disk>,
    guard: Mutex<Option<RunGuard>>,
    /// The lossyfs mounts over the disks of `lossy` disks, by replica. After `guard`: fields
    /// drop in order, and a lossyfs stops quickly only once the containers are gone.
    pub lossy: std::collections::BTreeMap<String, std::sync::Arc<Lossy>>,
    recorder: tokio::task::JoinHandle<()>,
    /// The event recorders of the machines' inner engines.
    inner_recorders: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The output root (`crate::output`): the run's disks are in `<output>/<run id>/disks`.
    pub(crate) output: PathBuf,
    /// The engines of the machines services are placed on, by machine name (connected once).
    machine_engines: tokio::sync::Mutex<std::collections::BTreeMap<String, engine::Docker>>,
    /// The host's images each machine was given (no second `docker load`).
    images: ImageSet,
}

impl Cluster {
    /// Creates the network and every service: machines first, then every other service
    /// together, each after what it `uses` (see `bringup`); returns once every one is ready.
    /// Whatever fails, what was created is removed when the returned error's guard drops.
    /// Files (disks, lossyfs, the `docker save` cache) go under the output root `output`.
    pub async fn up(
        output: &Path,
        docker: engine::Docker,
        run_id: &str,
        plan: &Plan,
        images: &ImageSet,
        timeline: Timeline,
    ) -> Result<Cluster> {
        let mut engine = RunEngine::new(docker.clone(), run_id, &plan.name);
        let guard = RunGuard::new(docker, run_id);
        let recorder = engine::events::record(&engine, timeline.clone());
        let prefix = engine.create_network().await?;
        let addresses = services::assign_addresses(plan, &prefix);
        let file_networks: std::collections::BTreeSet<&str> = plan
            .services
            .iter()
            .flat_map(|s| s.extras.networks.iter().map(|n| n.name.as_str()))
            .collect();
        for name in file_networks {
            engine.create_file_network(name).await?;
        }
        engine.tls = machines_tls(&output.join(run_id), plan, &addresses)?;
        let mut cluster = Cluster {
            engine,
            plan: plan.clone(),
            addresses,
            timeline,
            disks: Default::default(),
            lossy: Default::default(),
            guard: Mutex::new(Some(guard)),
            recorder,
            inner_recorders: Mutex::new(vec![]),
            output: output.to_path_buf(),
            machine_engines: Default::default(),
            images: images.clone(),
        };
        // Machines first, one after another: services placed on them need them up.
        for service in plan.services.iter().filter(|s| s.is(Preset::Machine)) {
            let started = Instant::now();
            cluster.bring_up(service, images).await?;
            cluster.note_ready(service, started);
        }
        cluster.bring_up_together(images).await?;
        cluster.ready_helpers().await?;
        Ok(cluster)
    }

    /// Attaches containers something else started as the service's replicas, and follows
    /// their events (their readiness is awaited with every other service's).
    async fn attach(&mut self, service: &Service, containers: &[String]) -> Result<()> {
        for (replica, container) in service.replicas.iter().zip(containers) {
            let (ip, name) = self.engine.attach(replica, container).await?;
            self.timeline
                .note(format!("{replica}: attached container {name} at {ip}"));
            self.addresses.insert(replica.clone(), ip);
        }
        let recorder = engine::events::record_attached(&self.engine, self.timeline.clone());
        self.inner_recorders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(recorder);
        Ok(())
    }

    fn note_ready(&self, service: &Service, started: Instant) {
        self.timeline.note(format!(
            "service {} ready ({} replicas) in {:.1}s",
            service.name,
            service.replicas.len(),
            started.elapsed().as_secs_f64()
        ));
    }

    /// Creates a service's containers (with their disks), waits for them and sets them up.
    async fn bring_up(&mut self, service: &Service, images: &ImageSet) -> Result<()> {
        let specs = self.specs(service, images).await?;
        self.start_specs(service, &specs, images).await?;
        self.settle(service).await
    }

    /// What a service's containers are made from, with their clock files and disks made.
    async fn specs(&mut self, service: &Service, images: &ImageSet) -> Result<Vec<ContainerSpec>> {
        let mut specs = services::containers(&self.plan, service, images, &self.addresses)?;
        for mount in &service.extras.mounts {
            let bind = crate::mounts::bind(mount).map_err(|source| HarnessError::UnsafeMount {
                service: service.name.clone(),
                source,
            })?;
            for spec in &mut specs {
                spec.binds.push(bind.clone());
            }
        }
        if let (true, Some(tls)) = (service.is(Preset::Machine), &self.engine.tls) {
            for spec in &mut specs {
                let certs = services::machine::TLS_DIR;
                spec.binds
                    .push(format!("{}:{certs}:ro", tls.machine.display()));
            }
        }
        if self.plan.faults.iter().any(|f| {
            f.target == service.id
                && matches!(f.kind, crate::scenario::plan::FaultKind::Clock { .. })
        }) {
            let run_dir = self.output.join(&self.engine.run_id);
            for spec in &mut specs {
                engine::faketime::prepare(&run_dir, spec).map_err(|e| HarnessError::Io {
                    context: format!("the clock offset file {}", e.path.display()),
                    source: e.source,
                })?;
            }
        }
        if self.plan.faults.iter().any(|f| {
            f.target == service.id
                && matches!(f.kind, crate::scenario::plan::FaultKind::SickLink { .. })
        }) {
            // The proxy a sick link starts, built now (a no-op once built), not at its instant.
            engine::images::host_binary("sicklink", &self.output).await?;
        }
        if let Some(d) = &service.disk {
            for spec in &mut specs {
                let source = self.create_disk(&spec.replica, d).await?;
                spec.binds.push(format!("{}:{}", source.display(), d.path));
            }
        }
        Ok(specs)
    }

    /// Creates and starts a service's containers (on their machines when placed); a machine
    /// service's inner engines are provisioned too.
    async fn start_specs(
        &self,
        service: &Service,
        specs: &[ContainerSpec],
        images: &ImageSet,
    ) -> Result<()> {
        if let (Placement::Machine(_), Some(first)) = (service.runs_on(), specs.first()) {
            self.place(service, &first.image).await?;
        }
        let creations = specs.iter().map(|s| self.engine.start_new(s));
        for r in futures_util::future::join_all(creations).await {
            r?;
        }
        if service.is(Preset::Machine) {
            self.provision_machines(service, images.tag("machine-unit")?)
                .await?;
        }
        Ok(())
    }

    /// Waits for a started service to be ready, then sets it up and syncs its disks.
    async fn settle(&self, service: &Service) -> Result<()> {
        self.wait_ready(service, &service.replicas, services::ready_timeout(service))
            .await?;
        services::set_up(&self.plan, service, &self.addresses)
            .await
            .map_err(|last| HarnessError::NotReady {
                service: service.name.clone(),
                timeout: services::READY_TIMEOUT.mul_f64(services::ready_scale()),
                last: Box::new(last),
            })?;
        // What set-up wrote (initdb, a first config) must not be lost in a later power cut:
        // a real machine's set-up is long on disk when its power fails.
        for replica in &service.replicas {
            if let Some(lossy) = self.lossy.get(replica) {
                lossy.command("sync")?;
            }
            if let Some(disk) = self.disks.get(replica) {
                disk.sync();
            }
        }
        Ok(())
    }

    /// A replica's disk (and lossyfs over it when lossy); returns what the container binds.
    async fn create_disk(
        &mut self,
        replica: &str,
        d: &crate::scenario::DiskSpec,
    ) -> Result<std::path::PathBuf> {
        let run_dir = self.output.join(&self.engine.run_id);
        let (r, size) = (replica.to_string(), d.size_mb);
        let disk = tokio::task::spawn_blocking(move || Disk::create(&run_dir, &r, size))
            .await
            .expect("disk thread")?;
        let mut source = disk.mount.clone();
        if d.lossy {
            let lossy = self.start_lossy(&disk).await?;
            source = lossy.mount.clone();
            self.lossy.insert(replica.to_string(), lossy);
        }
        self.disks.insert(replica.to_string(), disk);
        Ok(source)
    }

    /// Builds lossyfs (cargo: a no-op once built) and mounts it over `disk`.
    async fn start_lossy(&self, disk: &Disk) -> Result<std::sync::Arc<Lossy>> {
        let binary = crate::engine::images::host_binary("lossyfs", &self.output).await?;
        let lossy = std::sync::Arc::new(Lossy::new(&binary, &disk.mount));
        let l = lossy.clone();
        tokio::task::spawn_blocking(move || l.start())
            .await
            .expect("lossyfs thread")?;
        Ok(lossy)
    }

    /// Brings up the inner engines of a machine service: waits for each dockerd, loads the unit
    /// image into it (saved from the host engine once, then cached) and the push/pull probe's
    /// image, and starts following its events. Measures the save and each load.
    async fn provision_machines(&self, service: &Service, unit_image: &str) -> Result<()> {
        let saving = Instant::now();
        let saved = inner::saved(&self.engine.docker, unit_image, &self.output).await?;
        let size = std::fs::metadata(&saved).map_or(0, |m| m.len());
        self.measure(
            "images/save",
            saving.elapsed(),
            &format!(
                "docker save of {unit_image} from the host engine ({:.0} MB; 0 when cached)",
                size as f64 / 1e6
            ),
        );
        let machines = &service.replicas;
        let provisions = machines.iter().map(|m| {
            let saved = saved.clone();
            async move {
                let tls = self.engine.tls.as_ref();
                let inner = Inner::connect(m, &self.addresses[m], tls, Duration::from_secs(30))?;
                inner
                    .wait_up(services::READY_TIMEOUT.mul_f64(services::ready_scale()))
                    .await?;
                let loading = Instant::now();
                inner.load(&saved).await?;
                self.measure(
                    &format!("images/load-{m}"),
                    loading.elapsed(),
                    &format!(
                        "docker load of {unit_image} ({:.0} MB) into {m}'s engine",
                        size as f64 / 1e6
                    ),
                );
                inner.import_probe_image().await?;
                self.inner_recorders
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(inner::record(
                        inner,
                        self.timeline.clone(),
                        self.engine.clone(),
                    ));
                Ok::<_, HarnessError>(())
            }
        });
        for r in futures_util::future::join_all(provisions).await {
            r?;
        }
        Ok(())
    }

    fn measure(&self, name: &str, took: Duration, what: &str) {
        self.timeline.record(EventKind::Measurement {
            name: name.into(),
            value: took.as_secs_f64() * 1e3,
            unit: "ms".into(),
            what: what.into(),
        });
    }

    /// A client for a machine's inner engine.
    pub fn inner(&self, machine: &str) -> Result<Inner> {
        Ok(Inner::connect(
            machine,
            &self.addresses[machine],
            self.engine.tls.as_ref(),
            Duration::from_secs(10),
        )?)
    }

    /// Puts what the machines' inits logged (dockerd and unit states) on the timeline, and
    /// notes which containers each inner engine holds at the end.
    async fn read_machines(&self) {
        let machines: Vec<String> = self
            .plan
            .services
            .iter()
            .filter(|s| s.is(Preset::Machine))
            .flat_map(|s| s.replicas.iter().cloned())
            .collect();
        for m in &machines {
            match self.engine.stdout_lines(m).await {
                Ok(lines) => {
                    for line in lines {
                        if let Some(event) = unit_event(m, &line) {
                            self.timeline.push(event);
                        }
                    }
                }
                Err(e) => self
                    .timeline
                    .note(format!("{m}: cannot read its init's log: {e}")),
            }
            let states = match self.inner(m) {
                Ok(inner) => inner.container_states().await.map_err(Into::into),
                Err(e) => Err(e),
            };
            match states {
                Ok(states) => self.timeline.record(EventKind::Containers {
                    machine: m.clone(),
                    states,
                }),
                Err(e) => self
                    .timeline
                    .note(format!("{m}: cannot list its containers: {e}")),
            }
        }
    }

    /// Polls the service's readiness check until it passes or `timeout` runs out.
    pub async fn wait_ready(
        &self,
        service: &Service,
        replicas: &[String],
        timeout: Duration,
    ) -> Result<Duration> {
        let started = Instant::now();
        let mut last = ServiceError::Timeout;
        while started.elapsed() < timeout {
            let ready =
                services::readiness(&self.engine, &self.plan, service, replicas, &self.addresses);
            match ready.await {
                Ok(()) => return Ok(started.elapsed()),
                Err(e) => last = e,
            }
            if let Some(exited) = services::exited(&self.engine, service, replicas).await {
                last = exited;
                break;
            }
            let every = service.ready.as_ref().map(|r| r.interval);
            tokio::time::sleep(every.unwrap_or(Duration::from_millis(100))).await;
        }
        Err(HarnessError::NotReady {
            service: service.name.clone(),
            timeout,
            last: Box::new(last),
        })
    }

    /// Signals the replicas' processes at the same instant and waits for them to exit.
    /// Local engine: pidfds, exits measured at the processes. Remote: concurrent API kills.
    pub async fn kill_together(&self, replicas: &[String], signal: Signal) -> Result<KillReport> {
        self.kill_together_at(replicas, signal, None).await
    }

    /// [`Cluster::kill_together`] at the instant `at` (when given): the targets are looked up
    /// and their pidfds opened before it, so the signals leave within microseconds of `at`.
    pub async fn kill_together_at(
        &self,
        replicas: &[String],
        signal: Signal,
        at: Option<Instant>,
    ) -> Result<KillReport> {
        let looks = replicas.iter().map(|r| self.engine.state(r));
        let targets = futures_util::future::join_all(looks)
            .await
            .into_iter()
            .collect::<std::result::Result<Vec<_>, crate::engine::EngineError>>()?;
        let local = targets
            .iter()
            .all(|(running, pid, id)| *running && signal::is_local_container_process(*pid, id));
        if local {
            let pids: Vec<i32> = targets.iter().map(|t| t.1 as i32).collect();
            let sig = signal.number();
            let killed = tokio::task::spawn_blocking(move || {
                signal::kill_together(&pids, sig, at, Duration::from_secs(20))
            })
            .await
            .expect("kill thread panicked")
            .map_err(|e| HarnessError::io("signal the containers' processes")(e))?;
            return Ok(KillReport {
                signalled_at: Some(killed.signalled_at),
                direct: true,
                exit_skew: Some(killed.exit_skew()),
                reaped_skew: Some(killed.reaped_skew()),
                from_taskstats: killed.exited.is_some(),
                signal_spread: Some(killed.signal_spread),
            });
        }
        if let Some(at) = at {
            tokio::time::sleep_until(at.into()).await;
        }
        let sent = now();
        let kills = replicas
            .iter()
            .map(|r| self.engine.api_kill(r, signal.name()));
        for r in futures_util::future::join_all(kills).await {
            r?;
        }
        Ok(KillReport {
            signalled_at: Some(sent),
            direct: false,
            exit_skew: self.engine_exit_skew(replicas, sent).await,
            reaped_skew: None,
            from_taskstats: false,
            signal_spread: None,
        })
    }

    /// The spread of the replicas' exits as their engines recorded them (`State.FinishedAt`,
    /// ns), once every one has stopped — or exited since `since` and was restarted by its
    /// policy — (waits up to 10 s); None if one did not.
    async fn engine_exit_skew(&self, replicas: &[String], since: Nanos) -> Option<Nanos> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let looks = replicas.iter().map(|r| self.engine.status(r));
            let states = futures_util::future::join_all(looks).await;
            let finished: Option<Vec<Nanos>> = states
                .iter()
                .map(|s| {
                    let s = s.as_ref().ok()?;
                    s.finished_at.filter(|t| !s.running || *t >= since)
                })
                .collect();
            if let Some(times) = finished {
                return Some(times.iter().max()? - times.iter().min()?);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Starts stopped replicas again (concurrently).
    pub async fn start(&self, replicas: &[String]) -> Result<()> {
        let starts = replicas.iter().map(|r| self.engine.start(r));
        for r in futures_util::future::join_all(starts).await {
            r?;
        }
        Ok(())
    }

    /// Starts those of the replicas that are not running; the heal every fault ends with.
    pub async fn start_stopped(&self, replicas: &[String]) -> Result<Vec<String>> {
        let looks = replicas.iter().map(|r| self.stopped(r));
        let mut stopped = vec![];
        for (r, down) in replicas
            .iter()
            .zip(futures_util::future::join_all(looks).await)
        {
            if down? {
                stopped.push(r.clone());
            }
        }
        self.start(&stopped).await?;
        Ok(stopped)
    }

    /// Whether a replica's container is down. A killed container stays "running" for a moment
    /// while the engine reaps it: waits (up to 10 s) while its process is gone but the engine
    /// has not noticed yet.
    async fn stopped(&self, r: &str) -> Result<bool> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (running, pid, _) = self.engine.state(r).await?;
            if !running {
                return Ok(true);
            }
            if let Route::Machine(_) = self.engine.route(r) {
                // Its process is on a machine: the engine's word is all there is.
                return Ok(false);
            }
            if signal::process_alive(pid) || Instant::now() > deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The spread of the engine's `die` events for these replicas after `since` (ms), once all
    /// have arrived (waits up to 5 s for them).
    pub async fn die_event_spread(&self, replicas: &[String], since: Nanos) -> Option<f64> {
        self.event_spread(replicas, since, "die").await
    }

    /// The spread of the engine's first `action` event (`die`, `kill`) of each of these
    /// replicas after `since` (ms), once all have arrived (waits up to 5 s for them).
    pub async fn event_spread(
        &self,
        replicas: &[String],
        since: Nanos,
        action: &str,
    ) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // The first such event of each replica since `since` (one copy of the timeline per look).
            let mut first = std::collections::BTreeMap::new();
            for e in self.timeline.events() {
                if let EventKind::Container {
                    container,
                    action: a,
                } = e.kind
                {
                    if e.at >= since && a.starts_with(action) && replicas.contains(&container) {
                        first.entry(container).or_insert(e.at);
                    }
                }
            }
            let times: Vec<Nanos> = first.into_values().collect();
            if times.len() == replicas.len() {
                let spread = times.iter().max()? - times.iter().min()?;
                return Some(spread as f64 / 1e6);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops following the engines' event streams (the host's and the machines').
    fn stop_recorders(&self) {
        self.recorder.abort();
        for r in self
            .inner_recorders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            r.abort();
        }
    }

    /// Removes everything of the run. Also happens (on a thread) if the cluster is dropped.
    pub async fn down(self) -> Result<Removed> {
        self.read_machines().await;
        self.stop_recorders();
        let guard = self.guard.lock().unwrap_or_else(|e| e.into_inner()).take();
        match guard {
            Some(g) => Ok(g.teardown().await?),
            None => Ok(Removed::default()),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_recorders();
        // The machines' certificates: after `down`'s teardown, or after a failed bring-up
        // (whose machines are being removed and need them no more).
        if let Some(tls) = &self.engine.tls {
            tls.remove();
        }
    }
}

/// The run's certificates when it starts machines: a CA, one server certificate naming every
/// machine's address and the harness's client certificate, under `run_dir` (`engine::tls`).
fn machines_tls(
    run_dir: &Path,
    plan: &Plan,
    addresses: &Addresses,
) -> Result<Option<engine::tls::RunTls>> {
    let machines: Vec<String> = plan
        .services
        .iter()
        .filter(|s| s.is(Preset::Machine))
        .flat_map(|s| s.replicas.iter().map(|r| addresses[r].clone()))
        .collect();
    if machines.is_empty() {
        return Ok(None);
    }
    let tls = engine::tls::make(run_dir, &machines).map_err(engine::EngineError::from)?;
    Ok(Some(tls))
}

/// A line of a machine's init (`aftershock-machine <ns> <kind> <name> <state> <detail>`) as a
/// timeline event; None for any other line.
fn unit_event(machine: &str, line: &str) -> Option<crate::timeline::Event> {
    let rest = line.strip_prefix("aftershock-machine ")?;
    let mut parts = rest.splitn(5, ' ');
    let at: Nanos = parts.next()?.parse().ok()?;
    let _kind = parts.next()?;
    let unit = parts.next()?.to_string();
    let state = parts.next()?.to_string();
    let detail = parts.next().unwrap_or("").trim().to_string();
    Some(crate::timeline::Event {
        at,
        kind: EventKind::Unit {
            machine: machine.into(),
            unit,
            state,
            detail,
        },
    })
}

/// A new run id: UTC time plus 8 random hex digits (`20261123T072800-1a2b3c4d`).
pub fn new_run_id() -> String {
    let secs = now() / 1_000_000_000;
    let days = secs / 86_400;
    let (y, m, d) = civil_from_days(days);
    let rem = secs % 86_400;
    let random: u32 = rand::random();
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}-{random:08x}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn init_lines_become_unit_events() {
        let e = super::unit_event(
            "m1",
            "aftershock-machine 17 unit consul name-conflict exit 125: x y",
        )
        .unwrap();
        assert_eq!(e.at, 17);
        assert_eq!(
            e.kind,
            super::EventKind::Unit {
                machine: "m1".into(),
                unit: "consul".into(),
                state: "name-conflict".into(),
                detail: "exit 125: x y".into()
            }
        );
        assert!(super::unit_event("m1", "dockerd said something").is_none());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_415), (2025, 11, 23));
    }
}
