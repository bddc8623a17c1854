//! Probes: the service they observe, and exactly what their kind needs.

use super::per_replica::Replica;
use super::{at_name, at_ref, Invalid};
use crate::scenario::file::{self, Check, Preset, ProbeKind as K};
use crate::scenario::kinds::one_of;
use crate::scenario::plan::{Load, Probe, ProbeId, ProbeKind, Service, WriteVia};

/// The HTTP port of the toy API, the one an `http` probe may leave out.
const TOY_API_PORT: u16 = 8080;

pub(super) fn resolve(s: &file::Scenario, services: &[Service]) -> Result<Vec<Probe>, Invalid> {
    let names = super::service_names(services);
    s.probes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let svc = &services[names.get(&p.target)?.0];
            speaks(p, svc)?;
            if p.interval.is_zero() || p.timeout.is_zero() {
                return Err(at_name(
                    &p.name,
                    format!(
                        "probe `{}`: interval and timeout must be greater than zero",
                        p.name
                    ),
                ));
            }
            Ok(Probe {
                id: ProbeId(i),
                name: p.name.clone(),
                target: svc.id,
                interval: p.interval,
                timeout: p.timeout,
                kind: kind(p, svc, services)?,
            })
        })
        .collect()
}

/// A protocol probe needs a service of its preset, or a generic one (which may speak anything).
fn speaks(p: &file::Probe, svc: &Service) -> Result<(), Invalid> {
    let needs = match p.kind {
        K::ZookeeperWrite | K::ZookeeperMode => Some(Preset::Zookeeper),
        K::MemcachedSet => Some(Preset::Memcached),
        K::DatastoreAppend => Some(Preset::Datastore),
        K::PostgresInsert => Some(Preset::Postgres),
        K::Http | K::Load | K::Tcp | K::Exec | K::Write => None,
        K::ConsulKv | K::ConsulLeader | K::Registry | K::RegistryPull => Some(Preset::Machine),
    };
    match (needs, svc.preset()) {
        (Some(preset), Some(has)) if has != preset => Err(at_ref(
            &p.target,
            format!(
                "probe `{}` ({}) needs a {preset} service, but `{}` is {has}",
                p.name, p.kind, svc.name
            ),
        )),
        // A generic service may speak anything; a probe of no preset speaks to any service.
        (Some(_), Some(_)) | (None, _) | (_, None) => Ok(()),
    }
}

fn kind(p: &file::Probe, svc: &Service, services: &[Service]) -> Result<ProbeKind, Invalid> {
    let bad = |problem: &str| Err(at_name(&p.name, format!("probe `{}` {problem}", p.name)));
    let port_too = p.kind.generic() || p.kind == K::Load;
    if (!port_too && p.port.is_some()) || (!p.kind.generic() && !p.command.is_empty()) {
        let generic = one_of(K::all().filter(|k| k.generic()));
        return bad(&format!(
            "takes `command` only when its kind is {generic}, and `port` only then or when it is load"
        ));
    }
    if p.warm_up.is_some() && p.kind != K::Load {
        return bad("takes `warm_up` only when its kind is load");
    }
    if !p.members.is_empty() && p.kind != K::ZookeeperWrite {
        return bad("takes `members` only when its kind is zookeeper-write");
    }
    if let Some(on) = p.on.as_ref().filter(|_| !p.kind.takes_on()) {
        return Err(on_problem(on, svc));
    }
    Ok(match p.kind {
        K::ZookeeperWrite => ProbeKind::ZookeeperWrite {
            on: p.on.as_ref().map(|_| replica(p, svc, None)).transpose()?,
            members: members(p, services)?,
        },
        K::ZookeeperMode => ProbeKind::ZookeeperMode,
        K::MemcachedSet => ProbeKind::MemcachedSet {
            replica: replica(p, svc, svc.replicas.first())?,
        },
        K::DatastoreAppend => ProbeKind::DatastoreAppend {
            record_bytes: p.record_bytes,
        },
        K::PostgresInsert => ProbeKind::PostgresInsert,
        K::ConsulKv => ProbeKind::ConsulKv {
            key: p
                .key
                .clone()
                .unwrap_or_else(|| crate::scenario::CONSUL_TEST_KEY.into()),
        },
        K::ConsulLeader => ProbeKind::ConsulLeader,
        K::Registry => ProbeKind::Registry,
        K::RegistryPull => ProbeKind::RegistryPull {
            on: replica(p, svc, svc.replicas.last())?,
            push: p.push,
        },
        K::Load => ProbeKind::Load(load(p)?),
        K::Write => {
            let on = replica(p, svc, svc.replicas.first())?;
            let via = filled_write(write_via(p)?, Replica::of(&svc.replicas, &on));
            ProbeKind::Write { replica: on, via }
        }
        K::Tcp => checked(p, svc, tcp(p)?)?,
        K::Http => checked(p, svc, http(p, svc)?)?,
        K::Exec => checked(p, svc, exec(p)?)?,
    })
}

/// The replicas of the services a `zookeeper-write` probe's `members` names (refused on any
/// other kind).
fn members(p: &file::Probe, services: &[Service]) -> Result<Vec<String>, Invalid> {
    let names = super::service_names(services);
    let mut replicas = vec![];
    for m in &p.members {
        replicas.extend(services[names.get(m)?.0].replicas.iter().cloned());
    }
    Ok(replicas)
}

/// A check probe on its observed replica, its templates filled for that replica.
fn checked(p: &file::Probe, svc: &Service, check: Check) -> Result<ProbeKind, Invalid> {
    let on = replica(p, svc, svc.replicas.first())?;
    let check = filled_check(check, Replica::of(&svc.replicas, &on));
    Ok(ProbeKind::Check { replica: on, check })
}

/// A check's templates with the observed replica's `{replica}` and `{index}`.
fn filled_check(check: Check, r: Replica) -> Check {
    match check {
        Check::Tcp(port) => Check::Tcp(port),
        Check::Http { port, path, status } => Check::Http {
            port,
            path: r.fill(&path),
            status,
        },
        Check::Exec(cmd) => Check::Exec(r.fill_all(&cmd)),
    }
}

/// A write probe's templates with the written replica's `{replica}` and `{index}` (`{n}` stays).
fn filled_write(via: WriteVia, r: Replica) -> WriteVia {
    match via {
        WriteVia::Exec { write, read } => WriteVia::Exec {
            write: r.fill_all(&write),
            read: r.fill_all(&read),
        },
        WriteVia::Http {
            port,
            method,
            path,
            body,
            read_path,
            read,
        } => WriteVia::Http {
            port,
            method,
            path: r.fill(&path),
            body: body.map(|b| r.fill(&b)),
            read_path: r.fill(&read_path),
            read: r.fill_all(&read),
        },
    }
}

/// The replica `on` names (one of the service's), else `default`.
fn replica(p: &file::Probe, svc: &Service, default: Option<&String>) -> Result<String, Invalid> {
    match &p.on {
        None => Ok(default.cloned().unwrap_or_default()),
        Some(on) if svc.replicas.contains(on.get_ref()) => Ok(on.get_ref().clone()),
        Some(on) => Err(on_problem(on, svc)),
    }
}

fn on_problem(on: &file::Ref, svc: &Service) -> Invalid {
    at_ref(
        on,
        format!(
            "`on` names the replica a {} probe observes (a registry-pull probe: its machine): one of {}",
            one_of(K::all().filter(|k| k.takes_on())),
            svc.replicas.join(", ")
        ),
    )
}

/// What a tcp probe checks: a connection to `port`.
fn tcp(p: &file::Probe) -> Result<Check, Invalid> {
    match p.port {
        Some(port) if port != 0 => Ok(Check::Tcp(port)),
        _ => Err(at_name(&p.name, format!("probe `{}` needs `port`", p.name))),
    }
}

/// What an exec probe checks: its command exits 0.
fn exec(p: &file::Probe) -> Result<Check, Invalid> {
    if p.command.is_empty() {
        let problem = "needs `command`, the command run inside the replica";
        return Err(at_name(&p.name, format!("probe `{}` {problem}", p.name)));
    }
    Ok(Check::Exec(p.command.clone()))
}

/// What an http probe checks: `path` on `port` answers `status`.
fn http(p: &file::Probe, svc: &Service) -> Result<Check, Invalid> {
    let port = match p.port {
        Some(port) => port,
        None if svc.is(Preset::ToyApi) => TOY_API_PORT,
        None => {
            let problem = "needs `port` (only the toy API's 8080 is known without it)";
            return Err(at_name(&p.name, format!("probe `{}` {problem}", p.name)));
        }
    };
    Ok(Check::Http {
        port,
        path: http_path(p)?,
        status: p.status,
    })
}

/// A `write` probe's templates: exec commands, or HTTP requests.
fn write_via(p: &file::Probe) -> Result<WriteVia, Invalid> {
    let bad = |problem: &str| {
        Err(at_name(
            &p.name,
            format!("write probe `{}` {problem}", p.name),
        ))
    };
    let n = |t: &str| t.contains("{n}");
    match (p.write.is_empty(), p.port) {
        (false, None) if p.read.is_empty() => {
            bad("needs `read`, the command that prints the records present")
        }
        (false, None) if !p.write.iter().any(|w| n(w)) => {
            bad("needs `{n}` (the record's number) in `write`")
        }
        (false, None) => Ok(WriteVia::Exec {
            write: p.write.clone(),
            read: p.read.clone(),
        }),
        (true, Some(port)) => {
            let path = http_path(p)?;
            let read_path = match (p.read_path.as_deref(), p.read.is_empty()) {
                (Some(r), true) if r.starts_with('/') => r.to_string(),
                (None, false) => String::new(),
                _ => {
                    return bad("needs `read_path = \"/...\"`, whose GET lists the records present, or `read`, a command that prints them")
                }
            };
            let numbered = |t: &str| n(t) || t.contains("{n_base64}");
            if !numbered(&path) && !p.body.as_deref().is_some_and(numbered) {
                return bad("needs `{n}` (the record's number) in `path` or `body`");
            }
            let method = p
                .method
                .clone()
                .unwrap_or_else(|| "PUT".into())
                .to_uppercase();
            Ok(WriteVia::Http {
                port,
                method,
                path,
                body: p.body.clone(),
                read_path,
                read: p.read.clone(),
            })
        }
        _ => bad(
            "needs either `write` and `read` (commands) or `port`, `path` and `read_path` (HTTP)",
        ),
    }
}

fn http_path(p: &file::Probe) -> Result<String, Invalid> {
    match p.path.as_deref() {
        Some(path) if path.starts_with('/') => Ok(path.to_string()),
        _ => Err(at_name(
            &p.name,
            format!("http probe `{}` needs `path = \"/...\"`", p.name),
        )),
    }
}

fn load(p: &file::Probe) -> Result<Load, Invalid> {
    let path = http_path(p)?;
    let bad = |problem: String| {
        Err(at_name(
            &p.name,
            format!("load probe `{}`{problem}", p.name),
        ))
    };
    let Some(rate) = p.rate.filter(|r| (1..=2000).contains(r)) else {
        return bad(" needs `rate`, 1 to 2000 requests per second".into());
    };
    if path.contains("{key}") != p.keys.is_some_and(|k| k > 0) {
        return bad(
            ": a `path` with `{key}` needs `keys` (≥ 1), and `keys` needs `{key}` in the path"
                .into(),
        );
    }
    let longest = std::time::Duration::from_secs(600);
    if p.warm_up.is_some_and(|w| w.is_zero() || w > longest) {
        return bad(": `warm_up` is the longest the warm-up may take, 1s to 600s".into());
    }
    Ok(Load {
        path,
        port: p.port.filter(|&p| p != 0).unwrap_or(TOY_API_PORT),
        rate,
        keys: p.keys,
        prime: p.prime,
        warm_up: p.warm_up,
    })
}
