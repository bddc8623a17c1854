//! Services: what container each replica is and when it is ready. One path for every
//! service: a generic description (image, command, env, volumes, limits, a `ready` check; see
//! [`generic`]) becomes containers here; a preset only supplies its image, the environment its
//! protocol needs and a protocol-specific readiness (and who leads), in its own module. Probes
//! and faults use the protocol helpers here (`zookeeper::modes`) to talk to the services.

pub mod datastore;
mod error;
pub mod generic;
pub mod leader;
pub mod machine;
pub mod memcached;
pub mod postgres;
mod preset;
pub mod toy_api;
pub mod zookeeper;

use crate::engine::images::ImageSet;
use crate::engine::EngineError;
use crate::engine::{ContainerSpec, RunEngine};
use crate::scenario::plan::{
    Image, Machine, MachineEngine, Placement, Plan, Restart, Service, ServiceKind,
};
use crate::scenario::Preset;
pub use error::{whole, Miss, ServiceError};
pub use leader::LeaderError;
use std::collections::BTreeMap;
use std::time::Duration;

/// The replicas' fixed addresses on the run's network, by replica name.
pub type Addresses = BTreeMap<String, String>;

/// Gives every replica of the topology an address in the run's /24 (`prefix` = `172.30.7`):
/// `.10` onwards, so the largest topology ([`crate::scenario::MAX_CONTAINERS`]) ends at `.109`.
/// A replica placed on a machine is reached at the machine's address instead.
pub fn assign_addresses(plan: &Plan, prefix: &str) -> Addresses {
    let mut addresses: Addresses = plan
        .services
        .iter()
        .filter(|s| !matches!(s.kind, ServiceKind::Attached(_)))
        .flat_map(|s| s.replicas.iter())
        .enumerate()
        .map(|(i, r)| (r.clone(), format!("{prefix}.{}", 10 + i)))
        .collect();
    for s in &plan.services {
        for (r, m) in s.replicas.iter().zip(&s.placement) {
            let address = machine_address(plan.machine(*m), &addresses);
            addresses.insert(r.clone(), address);
        }
    }
    addresses
}

/// Where what runs on machine `m` is reached: a run's machine at its own address on the run's
/// network, any other at the address its `[[topology.machine]]` gives.
pub fn machine_address(m: &Machine, addresses: &Addresses) -> String {
    match &m.engine {
        MachineEngine::Started(_) => addresses[&m.name].clone(),
        MachineEngine::Url { address, .. } => address.clone(),
    }
}

/// `/etc/hosts` entries of a replica placed on a machine: every other replica and alias of
/// the topology at its address (placed replicas use the machine's network, not the run's).
fn hosts_of(plan: &Plan, service: &Service, replica: &str, addresses: &Addresses) -> Vec<String> {
    if service.runs_on() == Placement::Local {
        return vec![];
    }
    let mut hosts = vec![];
    for s in &plan.services {
        for r in s.replicas.iter().filter(|r| *r != replica) {
            if let Some(a) = addresses.get(r) {
                hosts.push(format!("{r}:{a}"));
                if s.replicas.len() == 1 {
                    hosts.extend(s.aliases.iter().map(|alias| format!("{alias}:{a}")));
                }
            }
        }
    }
    hosts
}

/// The image a service runs: the tag of a project image (by its name), else the name as
/// given (a tag in the local engine, checked before bring-up).
pub fn image(service: &Service, images: &ImageSet) -> Result<String, EngineError> {
    match &service.image {
        Image::Project(name) => Ok(images.tag(name)?.to_string()),
        Image::Local(tag) => Ok(tag.clone()),
        Image::Build { .. } => Ok(images.tag(&built(service))?.to_string()),
        Image::None => Ok(String::new()),
    }
}

/// The key of a service's built image in an [`ImageSet`] (`Image::Build`).
pub fn built(service: &Service) -> String {
    format!("build:{}", service.name)
}

/// The engine's restart policy of a service (None: the default, no restarts).
fn restart(service: &Service) -> Option<String> {
    Some(match service.restart {
        Restart::No => return None,
        Restart::Always => "always".into(),
        Restart::UnlessStopped => "unless-stopped".into(),
        Restart::OnFailure(None) => "on-failure".into(),
        Restart::OnFailure(Some(n)) => format!("on-failure:{n}"),
    })
}

/// The containers of one service.
pub fn containers(
    plan: &Plan,
    service: &Service,
    images: &ImageSet,
    addresses: &Addresses,
) -> Result<Vec<ContainerSpec>, EngineError> {
    if service.is(Preset::Machine) {
        return Ok(machine::containers(
            service,
            addresses,
            images.tag("machine")?,
            images.tag("machine-unit")?,
        ));
    }
    let replicas = &service.replicas;
    let per_replica: Vec<Vec<String>> = match service.preset() {
        Some(p) => preset::kind(p).env(&preset::Cx {
            plan,
            service,
            addresses,
            tls: None,
        }),
        None => vec![vec![]; replicas.len()],
    };
    let image = image(service, images)?;
    Ok(replicas
        .iter()
        .zip(per_replica)
        .zip(&service.per_replica)
        .map(|((replica, mut env), own)| {
            env.extend(own.env.iter().cloned());
            ContainerSpec {
                replica: replica.clone(),
                image: image.clone(),
                env,
                entrypoint: own.entrypoint.clone(),
                cmd: (!own.command.is_empty()).then(|| own.command.clone()),
                ip: addresses[replica].clone(),
                binds: vec![],
                memory: service.memory_mib.map(|m| (m * 1024 * 1024) as i64),
                nano_cpus: service.cpus.map(|c| (c * 1e9) as i64),
                oom_score_adj: service.oom_score_adj,
                volumes: service.volumes.clone(),
                shared_volumes: service.extras.shared_volumes.clone(),
                restart: restart(service),
                aliases: service.aliases.clone(),
                user: service.user.clone(),
                working_dir: service.working_dir.clone(),
                extra_hosts: hosts_of(plan, service, replica, addresses),
                networks: service
                    .extras
                    .networks
                    .iter()
                    .map(|n| (n.name.clone(), n.aliases.clone()))
                    .collect(),
                stop_signal: service.extras.stop_signal.clone(),
                stop_timeout: service.extras.stop_grace.map(|g| g.as_secs() as i64),
                ..Default::default()
            }
        })
        .collect())
}

/// How long bring-up waits for a service to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// How long bring-up waits for a service: its `ready.timeout`, else [`READY_TIMEOUT`], times
/// [`ready_scale`].
pub fn ready_timeout(service: &Service) -> Duration {
    let timeout = service.ready.as_ref().map_or(READY_TIMEOUT, |r| r.timeout);
    timeout.mul_f64(ready_scale())
}

/// `$AFTERSHOCK_READY_SCALE` (a number ≥ 1, default 1): every bring-up wait is that many times
/// longer, for hosts slow as a whole (the platform tier's emulated VM, where PostgreSQL takes
/// minutes to start). Only waiting for readiness is scaled: no expectation's budget is.
pub fn ready_scale() -> f64 {
    std::env::var("AFTERSHOCK_READY_SCALE")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite() && *f >= 1.0)
        .unwrap_or(1.0)
}

/// A replica of `service` whose main process has exited with nothing to start it again (no
/// `restart` policy; not a one-shot job, whose exit is its readiness), with its last lines:
/// waiting for its readiness could only time out.
pub async fn exited(
    engine: &RunEngine,
    service: &Service,
    replicas: &[String],
) -> Option<ServiceError> {
    if service.extras.runs_once || service.restart != crate::scenario::plan::Restart::No {
        return None;
    }
    for r in replicas {
        let Ok(status) = engine.status(r).await else {
            continue;
        };
        if let (false, false, Some(code)) = (status.running, status.paused, status.exit_code) {
            let lines = match engine.last_lines(r, 8).await {
                Ok(lines) if !lines.is_empty() => lines.join(" | "),
                Ok(_) => "(none)".to_string(),
                Err(e) => format!("(its log could not be read: {e})"),
            };
            return Some(ServiceError::at(r)(ServiceError::Exited { code, lines }));
        }
    }
    None
}

/// Whether the given replicas of a service are ready: `Ok(())` or what is still missing. The
/// service's `ready` check when it has one, else its preset's, else: its containers run.
pub async fn readiness(
    engine: &RunEngine,
    plan: &Plan,
    service: &Service,
    replicas: &[String],
    addresses: &Addresses,
) -> std::result::Result<(), ServiceError> {
    if service.extras.runs_once {
        return generic::completed(engine, replicas).await;
    }
    if let Some(ready) = &service.ready {
        // Every replica at once: a hundred of them are checked in one round trip.
        let checks = replicas.iter().map(|r| async move {
            generic::Checker::new(
                engine,
                ready.check.clone(),
                r,
                &addresses[r],
                ready.attempt_timeout,
            )
            .once()
            .await
            .map_err(|e| ServiceError::at(r)(e.into()))
        });
        let mut failed: Vec<ServiceError> = futures_util::future::join_all(checks)
            .await
            .into_iter()
            .filter_map(|r| r.err())
            .collect();
        return match failed.len() {
            0 => Ok(()),
            1 => Err(failed.remove(0)),
            n => Err(ServiceError::More {
                first: Box::new(failed.remove(0)),
                more: n - 1,
            }),
        };
    }
    let Some(p) = service.preset() else {
        return generic::running(engine, replicas).await;
    };
    let cx = preset::Cx {
        plan,
        service,
        addresses,
        tls: engine.tls.as_ref(),
    };
    preset::kind(p).ready(&cx, replicas).await
}

/// What a service needs once it is ready (e.g. the toy API's configuration znode).
pub async fn set_up(
    plan: &Plan,
    service: &Service,
    addresses: &Addresses,
) -> std::result::Result<(), ServiceError> {
    let Some(p) = service.preset() else {
        return Ok(());
    };
    let cx = preset::Cx {
        plan,
        service,
        addresses,
        tls: None,
    };
    preset::kind(p).set_up(&cx).await
}

/// The current leader among the replicas: asked with the service's `leader` check, else of
/// its preset; or why none is known now.
pub async fn leader(
    engine: &RunEngine,
    plan: &Plan,
    service: &Service,
    addresses: &Addresses,
) -> std::result::Result<String, LeaderError> {
    if let Some(check) = &service.leader {
        return leader::ask(engine, service, check, addresses).await;
    }
    let cx = preset::Cx {
        plan,
        service,
        addresses,
        tls: engine.tls.as_ref(),
    };
    let name = || service.name.clone();
    let preset = service
        .preset()
        .ok_or_else(|| LeaderError::NoWay { service: name() })?;
    preset::kind(preset)
        .leader(&cx)
        .await
        .map_err(|source| LeaderError::Asking {
            service: name(),
            source,
        })?
        .ok_or_else(|| LeaderError::NoneNow { service: name() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_machine_service_s_replicas_are_machines_too() {
        let text = "name = \"t\"\nduration = \"10s\"\n[[topology.service]]\nname = \"m\"\npreset = \"machine\"\nreplicas = 2\n\n[[topology.service]]\nname = \"web\"\nimage = \"memcached\"\nrestart = \"always\"\nmachine = \"m1\"\n";
        let plan = crate::scenario::parse("t.toml", text).unwrap();
        assert_eq!(plan.placement("web").unwrap().name, "m1");
        assert!(matches!(
            plan.machines[0].engine,
            crate::scenario::plan::MachineEngine::Started(_)
        ));
        let services = super::assign_addresses(&plan, "172.30.9");
        assert_eq!(
            services["web"], services["m1"],
            "reached at its machine's address"
        );
    }

    #[test]
    fn the_largest_topology_fits_the_runs_network() {
        let mut x = crate::Experiment::new("t", std::time::Duration::from_secs(1));
        x.service(crate::Service::generic("a", "memcached").replicas(60));
        x.service(crate::Service::generic("b", "memcached").replicas(40));
        let plan = x.plan().unwrap();
        let a = super::assign_addresses(&plan, "172.30.7");
        assert_eq!(a.len(), crate::scenario::MAX_CONTAINERS);
        let mut last: Vec<u8> = a
            .values()
            .map(|ip| ip.rsplit('.').next().unwrap().parse().unwrap())
            .collect();
        last.sort();
        last.dedup();
        assert_eq!(last.len(), 100, "every address once");
        assert_eq!((last[0], last[99]), (10, 109));
    }
}
