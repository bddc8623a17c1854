//! Services placed on machines. Every machine is reached through its own engine only: a
//! machine of the run (Docker-in-Docker) at `https://<its address>:2376` with the run's client
//! certificate, any other by its URL.
//! Here: connecting once (and adding the engine to what the recorder follows and teardown
//! cleans), giving a machine the images it lacks (`docker save` on this host once, `docker
//! load` over the machine's API), and routing the placed replicas to their machines.

use super::Cluster;
use crate::engine::inner::{self, Inner};
use crate::engine::{self, remote, Docker};
use crate::error::{HarnessError, Result};
use crate::scenario::plan::{Machine, MachineEngine, MachineId, Service};
use std::time::{Duration, Instant};

/// How long connecting to a machine's engine may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Cluster {
    /// The engine of machine `m`: connected on first use, then followed (its events on the
    /// timeline) and cleaned at teardown.
    pub(crate) async fn machine_engine(&self, m: &Machine) -> Result<Docker> {
        let mut engines = self.machine_engines.lock().await;
        if let Some(d) = engines.get(&m.name) {
            return Ok(d.clone());
        }
        let (url, started) = match &m.engine {
            MachineEngine::Started(_) => {
                let host = &self.addresses[&m.name];
                (inner::url(&m.name, host, self.engine.tls.as_ref())?, true)
            }
            MachineEngine::Url { url, .. } => (url.clone(), false),
        };
        let docker = remote::connect(&m.name, &url, CONNECT_TIMEOUT).await?;
        if !started {
            // A machine of the run has its recorder since it came up.
            let inner = Inner {
                machine: m.name.clone(),
                docker: docker.clone(),
            };
            self.inner_recorders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(inner::record(
                    inner,
                    self.timeline.clone(),
                    self.engine.clone(),
                ));
        }
        if let Some(guard) = &*self.guard.lock().unwrap_or_else(|e| e.into_inner()) {
            guard.add_machine(&m.name, docker.clone());
        }
        self.timeline
            .note(format!("machine {}: engine at {url}", m.name));
        engines.insert(m.name.clone(), docker.clone());
        Ok(docker)
    }

    /// Routes a placed service's replicas to their machines' engines, each of which is given
    /// `image` first when it lacks it.
    pub(super) async fn place(&self, service: &Service, image: &str) -> Result<()> {
        // Save once before the machines load it concurrently.
        if engine::has_image(&self.engine.docker, image).await? {
            inner::saved(&self.engine.docker, image, &self.output).await?;
        }
        let places =
            service
                .replicas
                .iter()
                .zip(&service.placement)
                .map(|(replica, id)| async move {
                    let m = self.plan.machine(*id);
                    let docker = self.machine_engine(m).await?;
                    self.give_image(&m.name, &docker, image).await?;
                    self.engine.place(replica, docker);
                    Ok::<_, HarnessError>(())
                });
        for r in futures_util::future::join_all(places).await {
            r?;
        }
        Ok(())
    }

    /// Loads `image` into machine `machine`'s engine unless it has it: `docker save` on this
    /// host (cached by tag), `docker load` over the machine's API. Measured.
    pub(crate) async fn give_image(
        &self,
        machine: &str,
        docker: &Docker,
        image: &str,
    ) -> Result<()> {
        if engine::has_image(docker, image).await? {
            return Ok(());
        }
        if !engine::has_image(&self.engine.docker, image).await? {
            return Err(crate::engine::EngineError::ImageMissing {
                image: format!(
                    "{image} (on machine {machine}: neither its engine nor this host's has it)"
                ),
            }
            .into());
        }
        let started = Instant::now();
        let saved = inner::saved(&self.engine.docker, image, &self.output).await?;
        let inner = Inner {
            machine: machine.into(),
            docker: docker.clone(),
        };
        inner.load(&saved).await?;
        self.measure(
            &format!("images/load-{machine}"),
            started.elapsed(),
            &format!("docker load of {image} into {machine}'s engine (saved once on this host)"),
        );
        Ok(())
    }

    /// The image of the machines' helper containers (`machine-unit`), on machine `m`.
    pub(crate) async fn helper_image(&self, m: &Machine) -> Result<(Docker, String)> {
        let docker = self.machine_engine(m).await?;
        let image = self.images.tag("machine-unit")?.to_string();
        self.give_image(&m.name, &docker, &image).await?;
        Ok((docker, image))
    }

    /// Gives every machine its helper image before the observation starts when a fault acts
    /// through helpers — a partition or a lossy link between machines, an engine crash on a
    /// machine known by URL (loading it at the fault's instant would delay the fault by seconds).
    pub(super) async fn ready_helpers(&self) -> Result<()> {
        if !self.plan.faults.iter().any(|f| self.plan.needs_helpers(f)) {
            return Ok(());
        }
        let used: std::collections::BTreeSet<MachineId> = self
            .plan
            .services
            .iter()
            .flat_map(|s| s.placement.iter().copied())
            .collect();
        let loads = used
            .into_iter()
            .map(|id| self.helper_image(self.plan.machine(id)));
        futures_util::future::try_join_all(loads).await?;
        Ok(())
    }

    /// The address what runs on machine `m` is reached at.
    pub(crate) fn machine_address(&self, m: &Machine) -> String {
        crate::services::machine_address(m, &self.addresses)
    }
}
