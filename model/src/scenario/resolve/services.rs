//! Services: kind and image, limits, readiness, disks and what each preset needs of the
//! services it `uses`.

use super::per_replica::LeaderCheckError;
use super::{at_name, Invalid, Names};
use crate::scenario::file::{self, Check, NotOneCheck, Preset};
use crate::scenario::plan::{
    Image, Ready, Restart, Service, ServiceId, ServiceKind, UnknownRestart,
};
use crate::scenario::{MAX_CONTAINERS, PROJECT_IMAGES};
use std::time::Duration;

/// The most replicas one service may have: the whole run's limit (the total is what is bounded).
pub const MAX_REPLICAS: usize = MAX_CONTAINERS;

pub(super) fn resolve(s: &file::Scenario) -> Result<Vec<Service>, Invalid> {
    if s.topology.services.is_empty() {
        return Err(Invalid::new(
            super::Anchor::Span(0..0),
            "the topology has no services; add a [[topology.service]] table",
        ));
    }
    let names = Names::new(
        "service",
        s.topology.services.iter().map(|x| x.name.as_str()),
        ServiceId,
    );
    let services = s
        .topology
        .services
        .iter()
        .enumerate()
        .map(|(i, svc)| one(svc, ServiceId(i), &names))
        .collect::<Result<Vec<_>, _>>()?;
    for svc in &services {
        preset_needs(svc, &services)?;
    }
    containers_fit(&services)?;
    Ok(services)
}

/// At most [`MAX_CONTAINERS`] containers in all, each replica name once (`a` with 12 replicas
/// has an `a11`, which a service `a1` with two would have too).
fn containers_fit(services: &[Service]) -> Result<(), Invalid> {
    let total: usize = services.iter().map(|s| s.replicas.len()).sum();
    if total > MAX_CONTAINERS {
        let counts: Vec<String> = services
            .iter()
            .map(|s| format!("{} × {}", s.replicas.len(), s.name))
            .collect();
        // At the service that takes the total over the limit.
        let mut sum = 0;
        let over = services
            .iter()
            .find(|s| {
                sum += s.replicas.len();
                sum > MAX_CONTAINERS
            })
            .map_or("", |s| s.name.as_str());
        return Err(at_name(
            over,
            format!(
                "the topology has {total} containers ({}); a run may have at most {MAX_CONTAINERS}",
                counts.join(" + ")
            ),
        ));
    }
    let mut seen = std::collections::HashMap::new();
    for s in services {
        for r in &s.replicas {
            if let Some(other) = seen.insert(r.as_str(), s.name.as_str()) {
                return Err(at_name(
                    &s.name,
                    format!("service `{}`: its replica `{r}` has the name of a replica of service `{other}`; rename one of the services", s.name),
                ));
            }
        }
    }
    Ok(())
}

fn one(svc: &file::Service, id: ServiceId, names: &Names<ServiceId>) -> Result<Service, Invalid> {
    let bad =
        |problem: ServiceProblem| at_name(&svc.name, format!("service `{}`: {problem}", svc.name));
    if svc.attach.is_empty() && (svc.replicas == 0 || svc.replicas > MAX_REPLICAS) {
        return Err(bad(ServiceProblem::Replicas(svc.replicas)));
    }
    let replicas = file::Scenario::replica_names(svc);
    let (kind, image) = kind_and_image(svc).map_err(bad)?;
    let mut uses = vec![];
    for u in &svc.uses {
        let used = names.get(u)?;
        if used == id {
            return Err(super::at_ref(
                u,
                format!("service `{}` cannot use itself", svc.name),
            ));
        }
        uses.push(used);
    }
    let uses_started = svc.uses_started.iter().map(|u| names.get(u));
    let uses_started = uses_started.collect::<Result<Vec<_>, _>>()?;
    Ok(Service {
        id,
        name: svc.name.clone(),
        kind,
        image,
        entrypoint: svc.entrypoint.clone(),
        command: svc.command.clone(),
        env: svc.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        volumes: volumes(svc).map_err(bad)?,
        memory_mib: svc.memory_mib,
        cpus: svc.cpus,
        oom_score_adj: svc.oom_score_adj,
        uses,
        uses_started,
        disk: svc.disk.clone(),
        ready: ready(svc).map_err(bad)?,
        restart: Restart::parse(svc.restart.as_deref().unwrap_or("no"))
            .map_err(|e| bad(e.into()))?,
        aliases: svc.aliases.clone(),
        user: svc.user.clone(),
        working_dir: svc.working_dir.clone(),
        placement: vec![],
        per_replica: super::per_replica::values(svc, &replicas),
        leader: super::per_replica::leader(svc, &replicas).map_err(|e| bad(e.into()))?,
        extras: svc.extras.clone(),
        replicas,
    })
    .and_then(|service| limits(&service).map(|()| service).map_err(bad))
}

/// Why a service's table cannot be used (said after `service `name`: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ServiceProblem {
    #[error("replicas must be 1 to {MAX_REPLICAS} (and at most {MAX_CONTAINERS} containers in all), not {0}")]
    Replicas(usize),
    #[error("`[topology.service.machine]` options need preset = \"machine\" (to place the service on a machine, write `machine = \"m1\"`)")]
    MachineOptions,
    #[error("a machine cannot be placed on another machine")]
    MachineOnMachine,
    #[error("an attached service (`attach`) takes no `preset`, `image` or `disk`: its containers exist already")]
    AttachedImage,
    #[error("a preset brings its image: it takes no `build`")]
    PresetBuild,
    #[error("needs `image` (one of the project's images: {}; or a local `name:tag`) or a `preset`", PROJECT_IMAGES.join(", "))]
    NoImage,
    #[error("a machine takes no `image`")]
    MachineImage,
    #[error("unknown image `{image}`: the project builds {} (`aftershock images build`); an image of your own needs its tag (`{image}:latest`) and must be in the local engine (`docker build -t {image}:latest …`, nothing is pulled)", PROJECT_IMAGES.join(", "))]
    UnknownImage { image: String },
    #[error("volume `{0}` must be `name:/absolute/path` (name: a-z, 0-9 and -)")]
    Volume(String),
    #[error(transparent)]
    Ready(#[from] NotOneCheck),
    #[error("`ready.exec` needs a command")]
    ReadyExecEmpty,
    #[error("`ready.timeout` must be above 0")]
    ReadyTimeout,
    #[error("`ready.interval` and `ready.attempt_timeout` must be above 0")]
    ReadyPolling,
    #[error(transparent)]
    Restart(#[from] UnknownRestart),
    #[error(transparent)]
    Leader(#[from] LeaderCheckError),
    #[error("`cpus` must be above 0")]
    Cpus,
    #[error("memory_mib must be at least 8")]
    Memory,
    #[error("oom_score_adj must be 0 to 1000, not {0} (this engine has no CAP_SYS_RESOURCE: negative values fail)")]
    OomScoreAdj(i64),
    #[error("a disk needs size_mb ≥ 16 and an absolute path")]
    Disk,
}

/// What the service is and which image it runs.
fn kind_and_image(svc: &file::Service) -> Result<(ServiceKind, Image), ServiceProblem> {
    let options = match &svc.machine {
        Some(file::MachineField::Options(_)) if svc.preset != Some(Preset::Machine) => {
            return Err(ServiceProblem::MachineOptions);
        }
        Some(file::MachineField::Options(o)) => Some(o.clone()),
        Some(file::MachineField::On(_)) if svc.preset == Some(Preset::Machine) => {
            return Err(ServiceProblem::MachineOnMachine)
        }
        Some(file::MachineField::On(_)) | None => None,
    };
    if !svc.attach.is_empty() {
        if svc.preset.is_some() || svc.image.is_some() || svc.disk.is_some() {
            return Err(ServiceProblem::AttachedImage);
        }
        return Ok((ServiceKind::Attached(svc.attach.clone()), Image::None));
    }
    if let Some(build) = &svc.build {
        if svc.preset.is_some() {
            return Err(ServiceProblem::PresetBuild);
        }
        let image = Image::Build {
            context: build.context.clone().into(),
            dockerfile: build
                .dockerfile
                .clone()
                .unwrap_or_else(|| "Dockerfile".into()),
            args: build.args.clone().into_iter().collect(),
            target: build.target.clone(),
        };
        return Ok((ServiceKind::Generic, image));
    }
    let image = match (svc.preset, svc.image.as_deref()) {
        (None, None) => return Err(ServiceProblem::NoImage),
        (Some(Preset::Machine), Some(_)) => return Err(ServiceProblem::MachineImage),
        (_, Some(image)) if image.contains(':') => Image::Local(image.to_string()),
        (_, Some(image)) if PROJECT_IMAGES.contains(&image) => Image::Project(image.to_string()),
        (_, Some(image)) => {
            return Err(ServiceProblem::UnknownImage {
                image: image.to_string(),
            })
        }
        (Some(preset), None) => Image::Project(preset.image().to_string()),
    };
    let kind = match svc.preset {
        None => ServiceKind::Generic,
        Some(Preset::Machine) => ServiceKind::Machine(options.unwrap_or_default()),
        Some(p) => ServiceKind::Preset(p),
    };
    Ok((kind, image))
}

/// `name:/absolute/path` volumes.
fn volumes(svc: &file::Service) -> Result<Vec<(String, String)>, ServiceProblem> {
    svc.volumes
        .iter()
        .map(|v| {
            v.split_once(':')
                .filter(|(name, path)| {
                    !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && path.starts_with('/')
                })
                .map(|(n, p)| (n.to_string(), p.to_string()))
                .ok_or_else(|| ServiceProblem::Volume(v.clone()))
        })
        .collect()
}

/// The `ready` check: exactly one of tcp, http, exec, and a timeout above zero.
fn ready(svc: &file::Service) -> Result<Option<Ready>, ServiceProblem> {
    let Some(ready) = &svc.ready else {
        return Ok(None);
    };
    let check = ready.check()?;
    if matches!(&check, Check::Exec(cmd) if cmd.is_empty()) {
        return Err(ServiceProblem::ReadyExecEmpty);
    }
    if ready.timeout.is_zero() {
        return Err(ServiceProblem::ReadyTimeout);
    }
    let interval = ready.interval.unwrap_or(Duration::from_millis(100));
    let attempt_timeout = ready.attempt_timeout.unwrap_or(Duration::from_secs(1));
    if interval.is_zero() || attempt_timeout.is_zero() {
        return Err(ServiceProblem::ReadyPolling);
    }
    Ok(Some(Ready {
        check,
        timeout: ready.timeout,
        interval,
        attempt_timeout,
    }))
}

/// CPUs, memory, `oom_score_adj` and the disk within what this engine accepts.
fn limits(svc: &Service) -> Result<(), ServiceProblem> {
    if svc.cpus.is_some_and(|c| c <= 0.0 || !c.is_finite()) {
        return Err(ServiceProblem::Cpus);
    }
    if svc.memory_mib.is_some_and(|m| m < 8) {
        return Err(ServiceProblem::Memory);
    }
    if let Some(adj) = svc.oom_score_adj.filter(|a| !(0..=1000).contains(a)) {
        return Err(ServiceProblem::OomScoreAdj(adj));
    }
    if let Some(d) = &svc.disk {
        if d.size_mb < 16 || !d.path.starts_with('/') {
            return Err(ServiceProblem::Disk);
        }
    }
    Ok(())
}

/// What a preset needs of itself and of the services it uses.
fn preset_needs(svc: &Service, all: &[Service]) -> Result<(), Invalid> {
    let uses = |preset: Preset| svc.uses.iter().any(|u| all[u.0].is(preset));
    let name = &svc.name;
    let problem = if svc.is(Preset::Datastore)
        && svc.disk.as_ref().map(|d| d.path.as_str()) != Some("/data")
    {
        format!("service `{name}` (datastore) needs `disk = {{ size_mb = 256, path = \"/data\" }}`")
    } else if svc.is(Preset::ToyApi)
        && !uses(Preset::Zookeeper)
        && !uses(Preset::Postgres)
        && !svc.env.iter().any(|e| e.starts_with("TOY_CLOCK="))
    {
        format!("service `{name}` (toy-api) must `uses` a zookeeper service (its configuration) or a postgres service (its items), or set `env = {{ TOY_CLOCK = \"wall\" }}` (its resolver)")
    } else if svc.is(Preset::ToyApi) && uses(Preset::Memcached) && !uses(Preset::Postgres) {
        format!("service `{name}` (toy-api) uses memcached but no postgres: the cache needs a database behind it")
    } else {
        return Ok(());
    };
    Err(at_name(name, problem))
}

#[cfg(test)]
mod tests {
    use crate::scenario::parse;

    fn topology(services: &[(&str, usize)]) -> String {
        let mut text = "name = \"t\"\nduration = \"1s\"\n".to_string();
        for (name, replicas) in services {
            text += &format!(
                "\n[[topology.service]]\nname = \"{name}\"\nimage = \"memcached\"\nreplicas = {replicas}\n"
            );
        }
        text
    }

    #[test]
    fn a_hundred_containers_in_any_mix_are_a_topology() {
        let plan = parse("t.toml", &topology(&[("mc", 100)])).unwrap();
        assert_eq!(plan.services[0].replicas.len(), 100);
        assert_eq!(plan.services[0].replicas[99], "mc100");
        let plan = parse("t.toml", &topology(&[("a", 60), ("b", 30), ("c", 10)])).unwrap();
        assert_eq!(plan.services.len(), 3);
    }

    #[test]
    fn the_hundred_and_first_container_is_refused_with_the_count_and_the_limit() {
        let e = parse("t.toml", &topology(&[("a", 60), ("b", 41)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("101 containers"), "{e}");
        assert!(e.contains("at most 100"), "{e}");
        assert!(e.contains("60 × a + 41 × b"), "{e}");
        assert!(e.starts_with("t.toml:10:"), "at service b: {e}");
        let e = parse("t.toml", &topology(&[("a", 101)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 to 100"), "{e}");
    }

    #[test]
    fn replica_names_are_unique_across_services() {
        let e = parse("t.toml", &topology(&[("a", 12), ("a1", 2)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`a11`"), "{e}");
    }
}
