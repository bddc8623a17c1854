//! Presets: how each built-in kind of service is run, when it is ready, and how to ask it
//! who leads. The engine creates what these describe; probes and faults use the protocol
//! helpers here (`zookeeper::modes`) to talk to the services.

pub mod datastore;
pub mod machine;
pub mod memcached;
pub mod postgres;
pub mod toy_api;
pub mod zookeeper;

use crate::engine::images::ImageSet;
use crate::engine::ContainerSpec;
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

/// The containers of one service.
pub fn containers(
    scenario: &Scenario,
    service: &Service,
    images: &ImageSet,
    addresses: &Addresses,
) -> Result<Vec<ContainerSpec>> {
    if service.preset == Preset::Machine {
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
    let (image, per_replica): (&str, Vec<Vec<String>>) = match service.preset {
        Preset::Zookeeper => (images.tag("zookeeper")?, zookeeper::env(&replicas)),
        Preset::ToyApi => (
            images.tag("toy-api")?,
            vec![toy_api::env(scenario, service); replicas.len()],
        ),
        Preset::Datastore => (images.tag("datastore")?, vec![vec![]; replicas.len()]),
        Preset::Memcached => (images.tag("memcached")?, vec![vec![]; replicas.len()]),
        Preset::Postgres => (images.tag("postgres")?, vec![vec![]; replicas.len()]),
        Preset::Machine => unreachable!("machines are described above"),
    };
    Ok(replicas
        .iter()
        .zip(per_replica)
        .map(|(replica, mut env)| {
            env.extend(extra.iter().cloned());
            ContainerSpec {
                replica: replica.clone(),
                image: image.to_string(),
                env,
                cmd: (!service.args.is_empty()).then(|| service.args.clone()),
                ip: addresses[replica].clone(),
                binds: vec![],
                memory: service.memory_mib.map(|m| (m * 1024 * 1024) as i64),
                oom_score_adj: service.oom_score_adj,
                ..Default::default()
            }
        })
        .collect())
}

/// How long bring-up waits for a service to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Whether the given replicas of a service are ready: `Ok(())` or what is still missing.
pub async fn readiness(
    scenario: &Scenario,
    service: &Service,
    replicas: &[String],
    addresses: &Addresses,
) -> std::result::Result<(), String> {
    match service.preset {
        Preset::Zookeeper => {
            zookeeper::ensemble_ready(&Scenario::replica_names(service), replicas, addresses).await
        }
        Preset::ToyApi => {
            let zookeeper = service.uses.iter().any(|u| {
                scenario.service(u.get_ref()).map(|s| s.preset) == Some(Preset::Zookeeper)
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
        Preset::Zookeeper => {
            let replicas = Scenario::replica_names(service);
            zookeeper::seed_config(&zookeeper::connect_string(&replicas, addresses)).await
        }
        Preset::ToyApi | Preset::Datastore | Preset::Memcached | Preset::Postgres => Ok(()),
        Preset::Machine => machine::set_up(service, addresses, READY_TIMEOUT).await,
    }
}

/// The current leader among the replicas, if the service has leaders and one is known.
pub async fn leader(service: &Service, addresses: &Addresses) -> Option<String> {
    match service.preset {
        Preset::Zookeeper => {
            let replicas = Scenario::replica_names(service);
            zookeeper::modes(&replicas, addresses, Duration::from_millis(500))
                .await
                .into_iter()
                .find(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(r, _)| r)
        }
        Preset::ToyApi
        | Preset::Datastore
        | Preset::Memcached
        | Preset::Postgres
        | Preset::Machine => None,
    }
}
