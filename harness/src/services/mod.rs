//! Services: what container each replica is and when it is ready. One path for every
//! service: a generic description (image, command, env, volumes, limits, a `ready` check; see
//! [`generic`]) becomes containers here; a preset only supplies its image, the environment its
//! protocol needs and a protocol-specific readiness (and who leads), in its own module. Probes
//! and faults use the protocol helpers here (`zookeeper::modes`) to talk to the services.

pub mod datastore;
pub mod generic;
pub mod machine;
pub mod memcached;
pub mod postgres;
pub mod toy_api;
pub mod zookeeper;

use crate::engine::images::ImageSet;
use crate::engine::{ContainerSpec, RunEngine};
use crate::error::Result;
use crate::scenario::{Preset, Scenario, Service};
use std::collections::BTreeMap;
use std::time::Duration;

/// The replicas' fixed addresses on the run's network, by replica name.
pub type Addresses = BTreeMap<String, String>;

/// Gives every replica of the topology an address in the run's /24 (`prefix` = `172.30.7`).
pub fn assign_addresses(scenario: &Scenario, prefix: &str) -> Addresses {
    scenario
        .topology
        .services
        .iter()
        .flat_map(Scenario::replica_names)
        .enumerate()
        .map(|(i, r)| (r, format!("{prefix}.{}", 10 + i)))
        .collect()
}

/// The image a service runs: the tag of a project image (by its name), else the name as
/// given (a tag in the local engine, checked before bring-up).
pub fn image(service: &Service, images: &ImageSet) -> Result<String> {
    let name = service
        .image_name()
        .expect("validated: a preset or an image");
    if name.contains(':') {
        return Ok(name.to_string());
    }
    images.tag(name).map(str::to_string)
}

/// The project images a scenario's services run, by name (the user's own `name:tag` images are
/// not among them); `engine::images::needed_for` adds what those need.
pub fn project_images(scenario: &Scenario) -> std::collections::BTreeSet<String> {
    scenario
        .topology
        .services
        .iter()
        .filter_map(Service::image_name)
        .filter(|name| !name.contains(':'))
        .map(str::to_string)
        .collect()
}

/// The containers of one service.
pub fn containers(
    scenario: &Scenario,
    service: &Service,
    images: &ImageSet,
    addresses: &Addresses,
) -> Result<Vec<ContainerSpec>> {
    if service.is(Preset::Machine) {
        return Ok(machine::containers(
            service,
            addresses,
            images.tag("machine")?,
            images.tag("machine-unit")?,
        ));
    }
    let replicas = Scenario::replica_names(service);
    let extra: Vec<String> = service
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let per_replica: Vec<Vec<String>> = match service.preset {
        Some(Preset::Zookeeper) => zookeeper::env(&replicas),
        Some(Preset::ToyApi) => vec![toy_api::env(scenario, service); replicas.len()],
        _ => vec![vec![]; replicas.len()],
    };
    let image = image(service, images)?;
    let volumes: Vec<(String, String)> = service
        .volumes
        .iter()
        .filter_map(|v| v.split_once(':'))
        .map(|(name, path)| (name.to_string(), path.to_string()))
        .collect();
    Ok(replicas
        .iter()
        .zip(per_replica)
        .map(|(replica, mut env)| {
            env.extend(extra.iter().cloned());
            ContainerSpec {
                replica: replica.clone(),
                image: image.clone(),
                env,
                entrypoint: service.entrypoint.clone(),
                cmd: (!service.command.is_empty()).then(|| service.command.clone()),
                ip: addresses[replica].clone(),
                binds: vec![],
                memory: service.memory_mib.map(|m| (m * 1024 * 1024) as i64),
                nano_cpus: service.cpus.map(|c| (c * 1e9) as i64),
                oom_score_adj: service.oom_score_adj,
                volumes: volumes.clone(),
                ..Default::default()
            }
        })
        .collect())
}

/// How long bring-up waits for a service to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// How long bring-up waits for a service: its `ready.timeout`, else [`READY_TIMEOUT`].
pub fn ready_timeout(service: &Service) -> Duration {
    service.ready.as_ref().map_or(READY_TIMEOUT, |r| r.timeout)
}

/// Whether the given replicas of a service are ready: `Ok(())` or what is still missing. The
/// service's `ready` check when it has one, else its preset's, else: its containers run.
pub async fn readiness(
    engine: &RunEngine,
    scenario: &Scenario,
    service: &Service,
    replicas: &[String],
    addresses: &Addresses,
) -> std::result::Result<(), String> {
    if let Some(ready) = &service.ready {
        let check = ready.check()?;
        for r in replicas {
            generic::Checker::new(
                engine,
                check.clone(),
                r,
                &addresses[r],
                Duration::from_secs(1),
            )
            .once()
            .await
            .map_err(|e| format!("{r}: {e}"))?;
        }
        return Ok(());
    }
    let Some(preset) = service.preset else {
        return generic::running(engine, replicas).await;
    };
    match preset {
        Preset::Zookeeper => {
            zookeeper::ensemble_ready(&Scenario::replica_names(service), replicas, addresses).await
        }
        Preset::ToyApi => {
            let zookeeper = service.uses.iter().any(|u| {
                scenario
                    .service(u.get_ref())
                    .is_some_and(|s| s.is(Preset::Zookeeper))
            });
            toy_api::ready(replicas, addresses, zookeeper).await
        }
        Preset::Datastore => datastore::ready(replicas, addresses).await,
        Preset::Memcached => memcached::ready(replicas, addresses).await,
        Preset::Postgres => postgres::ready(replicas, addresses).await,
        Preset::Machine => machine::ready(replicas, addresses).await,
    }
}

/// What a service needs once it is ready (e.g. the toy API's configuration znode).
pub async fn set_up(service: &Service, addresses: &Addresses) -> std::result::Result<(), String> {
    match service.preset {
        Some(Preset::Zookeeper) => {
            let replicas = Scenario::replica_names(service);
            zookeeper::seed_config(&zookeeper::connect_string(&replicas, addresses)).await
        }
        Some(Preset::Machine) => machine::set_up(service, addresses, READY_TIMEOUT).await,
        _ => Ok(()),
    }
}

/// The current leader among the replicas, if the service has leaders and one is known.
pub async fn leader(service: &Service, addresses: &Addresses) -> Option<String> {
    match service.preset {
        Some(Preset::Zookeeper) => {
            let replicas = Scenario::replica_names(service);
            zookeeper::modes(&replicas, addresses, Duration::from_millis(500))
                .await
                .into_iter()
                .find(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(r, _)| r)
        }
        _ => None,
    }
}
