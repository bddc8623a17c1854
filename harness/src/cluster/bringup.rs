//! Bring-up as Compose does it: every service (but the machines, up before) is created and
//! started together, each only after what it `uses` has started (`uses_started`, Compose's
//! plain `depends_on`) or is ready (`uses`, Compose's `service_healthy`); each one's readiness
//! is then awaited in parallel, with its own deadline. A cluster whose members need each other
//! to become ready (three etcd services naming each other) comes up.

use super::Cluster;
use crate::engine::images::ImageSet;
use crate::engine::ContainerSpec;
use crate::error::Result;
use crate::scenario::plan::{Placement, Service, ServiceId, ServiceKind};
use crate::scenario::Preset;
use std::collections::BTreeMap;
use std::time::Instant;
use tokio::sync::watch;

/// How far a service's bring-up has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Waiting,
    Started,
    Ready,
}

/// Whether `service` may start once `used` has reached `stage`.
fn enough(service: &Service, used: ServiceId, stage: Stage) -> bool {
    let needed = if service.uses_started.contains(&used) {
        Stage::Started
    } else {
        Stage::Ready
    };
    stage >= needed
}

impl Cluster {
    /// Brings up every service that is not a machine. What needs `&mut self` (attaching,
    /// disks, clock files) is done one service after another first; the containers are then
    /// started together in `uses` order and every service's readiness awaited at once. The
    /// first failure ends the bring-up (what was created is removed by the run's guard).
    pub(super) async fn bring_up_together(&mut self, images: &ImageSet) -> Result<()> {
        let services: Vec<Service> = (self.plan.services.iter())
            .filter(|s| !s.is(Preset::Machine))
            .cloned()
            .collect();
        let mut specs: BTreeMap<ServiceId, Vec<ContainerSpec>> = BTreeMap::new();
        for service in &services {
            match &service.kind {
                ServiceKind::Attached(containers) => self.attach(service, containers).await?,
                _ => {
                    specs.insert(service.id, self.specs(service, images).await?);
                }
            }
        }
        self.give_machines_their_images(&services, &specs).await?;
        let (senders, stages): (Vec<_>, BTreeMap<_, _>) = services
            .iter()
            .map(|s| {
                let (tx, rx) = watch::channel(Stage::Waiting);
                (tx, (s.id, rx))
            })
            .unzip();
        let this = &*self;
        let ups = services.iter().zip(senders).map(|(service, stage)| {
            let specs = specs.remove(&service.id);
            this.one_up(service, specs, &stages, stage, images)
        });
        futures_util::future::try_join_all(ups).await?;
        Ok(())
    }

    /// Gives every placed service's machines its image at once, before any service waits for
    /// what it uses: a machine given its image only once the services before it are ready adds
    /// its `docker load` to the bring-up (9 s of the three-machine ZooKeeper run's 43 s).
    async fn give_machines_their_images(
        &self,
        services: &[Service],
        specs: &BTreeMap<ServiceId, Vec<ContainerSpec>>,
    ) -> Result<()> {
        let placing = services.iter().filter_map(|s| {
            let first = specs.get(&s.id)?.first()?;
            matches!(s.runs_on(), Placement::Machine(_)).then(|| self.place(s, &first.image))
        });
        futures_util::future::try_join_all(placing).await?;
        Ok(())
    }

    /// One service: waits for what it uses, starts its containers (none when attached), then
    /// waits for its readiness and sets it up, saying how far it got through `stage`.
    async fn one_up(
        &self,
        service: &Service,
        specs: Option<Vec<ContainerSpec>>,
        stages: &BTreeMap<ServiceId, watch::Receiver<Stage>>,
        stage: watch::Sender<Stage>,
        images: &ImageSet,
    ) -> Result<()> {
        for used in &service.uses {
            // A machine (up before) is not among `stages`: nothing to wait for.
            let Some(rx) = stages.get(used) else { continue };
            let mut rx = rx.clone();
            if rx.wait_for(|s| enough(service, *used, *s)).await.is_err() {
                // What it uses failed: that failure ends the bring-up; this one never starts.
                std::future::pending::<()>().await;
            }
        }
        let started = Instant::now();
        match specs {
            Some(specs) => {
                self.start_specs(service, &specs, images).await?;
                stage.send_replace(Stage::Started);
                self.settle(service).await?;
            }
            None => {
                stage.send_replace(Stage::Started);
                let timeout = crate::services::ready_timeout(service);
                self.wait_ready(service, &service.replicas, timeout).await?;
            }
        }
        stage.send_replace(Stage::Ready);
        self.note_ready(service, started);
        Ok(())
    }
}
