//! A checked, interpolated Compose file (typed by `docker-compose-types`) → the file form of
//! a scenario's services, in bring-up order.

use super::yaml::{self, Value};
use super::{Problem, Read, Topology, Writes};
use crate::scenario::file::{self, BuildSpec, Check, DiskSpec, ReadyCheck};
use docker_compose_types as dc;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What converting needs besides the file: where it is, how to read its `env_file`s, and the
/// environment (for `environment: [KEY]` without a value).
pub struct Cx<'a> {
    pub dir: &'a Path,
    pub read: Read<'a>,
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
}

/// `x-aftershock` of a top-level volume: the volume is a disk that can lose power.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeExtension {
    disk: VolumeDisk,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeDisk {
    size_mb: u64,
    #[serde(default)]
    lossy: bool,
}

/// A service as read: the crate's type plus `cpus` (which the crate does not know).
struct Read1 {
    name: String,
    service: dc::Service,
    cpus: Option<f64>,
    /// `oom_score_adj` (the crate does not know it either).
    oom_score_adj: Option<i64>,
    /// `x-aftershock` of the service: write templates.
    writes: Option<Writes>,
}

fn problem(path: &[&str], message: String) -> Problem {
    (path.iter().map(|s| s.to_string()).collect(), message)
}

/// The file's services, dependencies first.
pub fn services(mut value: Value, cx: &Cx) -> Result<Topology, Problem> {
    let read = take_services(&mut value)?;
    let disks = disks(&value)?;
    let mut used_by: BTreeMap<String, String> = BTreeMap::new();
    let mut out = vec![];
    for r in &read {
        let svc = one(r, &disks, cx)?;
        for v in &svc.volumes {
            let volume = v.split(':').next().unwrap_or_default().to_string();
            if let Some(other) = used_by.insert(volume.clone(), r.name.clone()) {
                let message = format!("the named volume `{volume}` is mounted by `{other}` and `{}`: aftershock gives every replica its own volume, so a volume cannot be shared", r.name);
                return Err(problem(&["services", &r.name, "volumes"], message));
            }
        }
        out.push(svc);
    }
    let writes = read
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.writes.clone()?)))
        .collect();
    Ok(Topology {
        services: order(out, &read)?,
        writes,
    })
}

/// Takes the services out of the file's value, each typed by the crate.
fn take_services(value: &mut Value) -> Result<Vec<Read1>, Problem> {
    let Some(Value::Mapping(services)) = value.get_mut("services").map(std::mem::take) else {
        return Err(problem(&[], "the Compose file has no `services`".into()));
    };
    let mut read = vec![];
    for (name, mut svc) in services {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            let message = format!("service name `{name}`: aftershock names use only a-z, 0-9 and - (rename it, e.g. `{}`)", name.to_lowercase().replace(['_', '.'], "-"));
            return Err(problem(&["services", &name], message));
        }
        let at = |key: &str, e: String| problem(&["services", &name, key], e);
        let cpus = match svc.as_mapping_mut().and_then(|m| m.remove("cpus")) {
            None => None,
            Some(v) => {
                Some(number(&v).ok_or_else(|| at("cpus", "`cpus` must be a number".into()))?)
            }
        };
        let oom_score_adj = match svc.as_mapping_mut().and_then(|m| m.remove("oom_score_adj")) {
            None => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                at(
                    "oom_score_adj",
                    "`oom_score_adj` must be a whole number".into(),
                )
            })?),
        };
        let writes = match svc.as_mapping_mut().and_then(|m| m.remove("x-aftershock")) {
            None => None,
            Some(v) => Some(yaml::from_value::<Writes>(v).map_err(|e| {
                let hint = "expected `write` and `read` (commands), or `port`, `path` and `read_path` (HTTP)";
                at("x-aftershock", format!("service `{name}`: x-aftershock: {e} ({hint})"))
            })?),
        };
        stringify(&mut svc, &["mem_limit"]);
        stringify(&mut svc, &["deploy", "resources", "limits", "memory"]);
        stringify(&mut svc, &["deploy", "resources", "limits", "cpus"]);
        let service: dc::Service = if svc.is_null() {
            dc::Service::default()
        } else {
            yaml::from_value(svc)
                .map_err(|e| problem(&["services", &name], format!("service `{name}`: {e}")))?
        };
        read.push(Read1 {
            name,
            service,
            cpus,
            oom_score_adj,
            writes,
        });
    }
    Ok(read)
}

/// A number, or a string holding one.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// Turns a number at `path` into a string (the crate wants strings where Compose takes both).
fn stringify(value: &mut Value, path: &[&str]) {
    let mut v = value;
    for key in path {
        match v.get_mut(key) {
            Some(inner) => v = inner,
            None => return,
        }
    }
    if let Some(n) = v.as_f64() {
        *v = Value::String(n.to_string());
    }
}

/// Top-level volumes declared disks (`x-aftershock: { disk: { size_mb: 256 } }`), read from
/// the raw file (the crate keeps no extensions of volumes).
fn disks(value: &Value) -> Result<BTreeMap<String, VolumeDisk>, Problem> {
    let mut disks = BTreeMap::new();
    let Some(Value::Mapping(volumes)) = value.get("volumes") else {
        return Ok(disks);
    };
    for (name, volume) in volumes.iter() {
        let Some(ext) = volume.get("x-aftershock") else {
            continue;
        };
        let ext: VolumeExtension = yaml::from_value(ext.clone()).map_err(|e| {
            let message = format!("volume `{name}`: x-aftershock: {e} (expected `disk: {{ size_mb: 256, lossy: false }}`)");
            problem(&["volumes", name, "x-aftershock"], message)
        })?;
        disks.insert(name.to_string(), ext.disk);
    }
    Ok(disks)
}

/// One Compose service as a scenario service.
fn one(r: &Read1, disks: &BTreeMap<String, VolumeDisk>, cx: &Cx) -> Result<file::Service, Problem> {
    let (name, svc) = (r.name.as_str(), &r.service);
    let at = |key: &str, message: String| {
        problem(
            &["services", name, key],
            format!("service `{name}`: {message}"),
        )
    };
    let mut out = file::Service::named(name);
    (out.image, out.build) = image(svc, cx.dir).map_err(|m| at("image", m))?;
    out.command = svc
        .command
        .as_ref()
        .map(command)
        .transpose()
        .map_err(|m| at("command", m))?
        .unwrap_or_default();
    out.entrypoint = svc
        .entrypoint
        .as_ref()
        .map(entrypoint)
        .transpose()
        .map_err(|m| at("entrypoint", m))?;
    out.env = environment(svc, cx).map_err(|m| at("environment", m))?;
    (out.volumes, out.disk) = volumes(svc, disks).map_err(|m| at("volumes", m))?;
    out.ready = ready(svc).map_err(|m| at("healthcheck", m))?;
    out.replicas = replicas(svc).map_err(|m| at("deploy", m))?;
    out.memory_mib = memory(svc).map_err(|m| at("mem_limit", m))?;
    let limit_cpus = limits(svc).and_then(|l| l.cpus.as_deref()?.trim().parse::<f64>().ok());
    out.cpus = r.cpus.or(limit_cpus);
    out.oom_score_adj = r.oom_score_adj;
    out.restart = svc.restart.clone();
    (out.user, out.working_dir) = (svc.user.clone(), svc.working_dir.clone());
    if let Some(policy) = &svc.restart {
        crate::scenario::plan::Restart::parse(policy).map_err(|m| at("restart", m.to_string()))?;
    }
    out.aliases = aliases(name, svc, out.replicas);
    out.uses = depends_on(svc)
        .into_iter()
        .map(|(d, _)| file::reference(d))
        .collect();
    Ok(out)
}

/// `image:` (a tag added when it has none) or `build:` (context made absolute).
fn image(svc: &dc::Service, dir: &Path) -> Result<(Option<String>, Option<BuildSpec>), String> {
    if let Some(build) = &svc.build_ {
        let (context, dockerfile, args) = match build {
            dc::BuildStep::Simple(context) => (context.clone(), None, BTreeMap::new()),
            dc::BuildStep::Advanced(b) => (
                b.context.clone(),
                b.dockerfile.clone(),
                build_args(b.args.as_ref()),
            ),
        };
        let context = dir.join(context).display().to_string();
        return Ok((
            None,
            Some(BuildSpec {
                context,
                dockerfile,
                args,
            }),
        ));
    }
    let Some(image) = &svc.image else {
        return Err("needs `image` or `build`".into());
    };
    let last = image.rsplit('/').next().unwrap_or(image);
    let tagged = if last.contains(':') || image.contains('@') {
        image.clone()
    } else {
        format!("{image}:latest")
    };
    Ok((Some(tagged), None))
}

fn build_args(args: Option<&dc::BuildArgs>) -> BTreeMap<String, String> {
    match args {
        Some(dc::BuildArgs::List(list)) => list
            .iter()
            .filter_map(|a| {
                a.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect(),
        Some(dc::BuildArgs::KvPair(map)) => {
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        Some(dc::BuildArgs::Simple(arg)) => arg
            .split_once('=')
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into_iter()
            .collect(),
        None => BTreeMap::new(),
    }
}

fn command(c: &dc::Command) -> Result<Vec<String>, String> {
    match c {
        dc::Command::Simple(s) => split_words(s),
        dc::Command::Args(a) => Ok(a.clone()),
    }
}

fn entrypoint(e: &dc::Entrypoint) -> Result<Vec<String>, String> {
    match e {
        dc::Entrypoint::Simple(s) => split_words(s),
        dc::Entrypoint::List(a) => Ok(a.clone()),
    }
}

/// Splits a command line as a POSIX shell would split words (quotes, backslashes), as
/// Compose does for the string form of `command` and `entrypoint`.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = vec![];
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => loop {
                let w = word.get_or_insert_with(String::new);
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => w.push(c),
                    None => return Err(format!("unclosed ' in `{line}`")),
                }
            },
            '"' => loop {
                let w = word.get_or_insert_with(String::new);
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => w.extend(chars.next()),
                    Some(c) => w.push(c),
                    None => return Err(format!("unclosed \" in `{line}`")),
                }
            },
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// `env_file`s first (in order), then `environment` (which wins).
fn environment(svc: &dc::Service, cx: &Cx) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    let files = match &svc.env_file {
        None => vec![],
        Some(dc::StringOrList::Simple(f)) => vec![f.clone()],
        Some(dc::StringOrList::List(l)) => l.clone(),
    };
    for f in files {
        let path = cx.dir.join(&f);
        let text = (cx.read)(&path).map_err(|e| format!("env_file `{}`: {e}", path.display()))?;
        env.extend(super::env_lines(&text));
    }
    match &svc.environment {
        dc::Environment::List(list) => {
            for item in list {
                match item.split_once('=') {
                    Some((k, v)) => env.insert(k.to_string(), v.to_string()),
                    None => (cx.lookup)(item).and_then(|v| env.insert(item.clone(), v)),
                };
            }
        }
        dc::Environment::KvPair(map) => {
            for (k, v) in map {
                let value = match v {
                    Some(v) => Some(v.to_string()),
                    None => (cx.lookup)(k),
                };
                if let Some(v) = value {
                    env.insert(k.clone(), v);
                }
            }
        }
    }
    Ok(env)
}

/// Named volumes (`name:/path`, one per replica) and the disk (a volume declared one).
fn volumes(
    svc: &dc::Service,
    disks: &BTreeMap<String, VolumeDisk>,
) -> Result<(Vec<String>, Option<DiskSpec>), String> {
    let mut named = vec![];
    let mut disk: Option<DiskSpec> = None;
    for v in &svc.volumes {
        let (source, target) = match v {
            dc::Volumes::Simple(s) => {
                let mut parts = s.split(':');
                match (parts.next(), parts.next()) {
                    (Some(src), Some(dst)) => (src.to_string(), dst.to_string()),
                    _ => return Err(format!("volume `{s}`: an anonymous volume has no name; write `name:{s}` and declare `name` under the top-level `volumes`")),
                }
            }
            dc::Volumes::Advanced(a) if a._type == "volume" => {
                (a.source.clone().unwrap_or_default(), a.target.clone())
            }
            dc::Volumes::Advanced(a) => {
                return Err(format!(
                    "volume of type `{}`: only named volumes are supported",
                    a._type
                ))
            }
        };
        if source.starts_with(['.', '/', '~']) {
            return Err(format!("`{source}:{target}` is a bind mount of a host path: only named volumes are supported (the run creates and removes them)"));
        }
        match disks.get(&source) {
            Some(_) if disk.is_some() => {
                return Err("two volumes declared disks: a service has at most one disk".into())
            }
            Some(d) => {
                disk = Some(DiskSpec {
                    size_mb: d.size_mb,
                    path: target,
                    lossy: d.lossy,
                })
            }
            None => named.push(format!("{}:{target}", source.replace('_', "-"))),
        }
    }
    Ok((named, disk))
}

/// The health check as the service's ready check: `CMD` / `CMD-SHELL` → an exec'd command,
/// polled every `start_interval` (else `interval`) with `timeout` per attempt, for up to
/// `start_period` + `retries` attempts (at least the scenario default of 90 s).
fn ready(svc: &dc::Service) -> Result<Option<ReadyCheck>, String> {
    let Some(h) = svc.healthcheck.as_ref().filter(|h| !h.disable) else {
        return Ok(None);
    };
    let test: Vec<String> = match &h.test {
        None => return Ok(None),
        Some(dc::HealthcheckTest::Single(s)) => vec!["CMD-SHELL".into(), s.clone()],
        Some(dc::HealthcheckTest::Multiple(v)) => v.clone(),
    };
    let exec = match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            vec!["sh".into(), "-c".into(), rest.join(" ")]
        }
        Some((kind, _)) if kind == "NONE" => return Ok(None),
        _ => return Err("healthcheck `test` must be [\"CMD\", …], [\"CMD-SHELL\", \"…\"], [\"NONE\"] or a string".into()),
    };
    let duration = |what: &str, v: &Option<String>| -> Result<Option<Duration>, String> {
        v.as_deref()
            .map(|s| {
                humantime::parse_duration(s).map_err(|e| format!("healthcheck `{what}` `{s}`: {e}"))
            })
            .transpose()
    };
    // Bring-up is the start period: `start_interval`, when given, is how often to poll.
    let start_interval = duration("start_interval", &h.start_interval)?;
    let interval = start_interval.or(duration("interval", &h.interval)?);
    let attempt = duration("timeout", &h.timeout)?;
    let start = duration("start_period", &h.start_period)?.unwrap_or_default();
    let retries = u32::try_from(h.retries).unwrap_or(0).max(3);
    let per_try =
        interval.unwrap_or(Duration::from_secs(1)) + attempt.unwrap_or(Duration::from_secs(1));
    let timeout = (start + per_try * retries).max(Duration::from_secs(90));
    let mut check = ReadyCheck::of(Check::Exec(exec), timeout);
    check.interval = interval;
    check.attempt_timeout = attempt;
    Ok(Some(check))
}

/// `deploy.replicas` or `scale` (they must agree); default 1.
fn replicas(svc: &dc::Service) -> Result<usize, String> {
    let deploy = svc.deploy.as_ref().and_then(|d| d.replicas);
    let scale = (svc.scale != 0).then_some(svc.scale);
    let n = match (deploy, scale) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "`deploy.replicas` ({a}) and `scale` ({b}) disagree"
            ))
        }
        (a, b) => a.or(b).unwrap_or(1),
    };
    usize::try_from(n).map_err(|_| format!("replicas must be at least 1, not {n}"))
}

fn limits(svc: &dc::Service) -> Option<&dc::Limits> {
    svc.deploy.as_ref()?.resources.as_ref()?.limits.as_ref()
}

/// `mem_limit` or `deploy.resources.limits.memory`, in MiB.
fn memory(svc: &dc::Service) -> Result<Option<u64>, String> {
    let text = svc
        .mem_limit
        .as_deref()
        .or(limits(svc).and_then(|l| l.memory.as_deref()));
    text.map(mebibytes).transpose()
}

/// `512m`, `1g`, `128mb`, `134217728` (bytes) → MiB.
pub fn mebibytes(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[digits.len()..];
    let n: f64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("memory `{text}`: expected a number with b, k, m or g"))?;
    let bytes = match unit {
        "" => n,
        "k" => n * 1024.0,
        "m" => n * 1024.0 * 1024.0,
        "g" => n * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("memory `{text}`: unit must be b, k, m or g")),
    };
    Ok((bytes / (1024.0 * 1024.0)) as u64)
}

/// Every replica answers to the service's name (Compose's DNS), plus the networks' aliases.
fn aliases(name: &str, svc: &dc::Service, replicas: usize) -> Vec<String> {
    let mut out: Vec<String> = (replicas > 1)
        .then(|| name.to_string())
        .into_iter()
        .collect();
    if let dc::Networks::Advanced(nets) = &svc.networks {
        for settings in nets.0.values() {
            if let dc::MapOrEmpty::Map(s) = settings {
                out.extend(s.aliases.iter().cloned());
            }
        }
    }
    out
}

/// `depends_on`: (service, whether it must be healthy).
fn depends_on(svc: &dc::Service) -> Vec<(String, Option<String>)> {
    match &svc.depends_on {
        dc::DependsOnOptions::Simple(names) => names.iter().map(|n| (n.clone(), None)).collect(),
        dc::DependsOnOptions::Conditional(map) => map
            .iter()
            .map(|(n, c)| (n.clone(), Some(c.condition.clone())))
            .collect(),
    }
}

/// The services in bring-up order (each after what it depends on); a cycle is an error.
fn order(services: Vec<file::Service>, read: &[Read1]) -> Result<Vec<file::Service>, Problem> {
    let names: Vec<&str> = read.iter().map(|r| r.name.as_str()).collect();
    for r in read {
        for (dep, condition) in depends_on(&r.service) {
            let at = |m: String| {
                problem(
                    &["services", &r.name, "depends_on"],
                    format!("service `{}`: {m}", r.name),
                )
            };
            let Some(i) = names.iter().position(|n| *n == dep) else {
                return Err(at(format!(
                    "depends on `{dep}`, which is not a service of this file (services: {})",
                    names.join(", ")
                )));
            };
            match condition.as_deref() {
                None | Some("service_started") => {}
                Some("service_healthy") if services[i].ready.is_some() => {}
                Some("service_healthy") => {
                    return Err(at(format!(
                        "depends on `{dep}` being healthy, but `{dep}` has no healthcheck"
                    )))
                }
                Some(other) => {
                    return Err(at(format!(
                        "condition `{other}` is not supported (service_started, service_healthy)"
                    )))
                }
            }
        }
    }
    let mut placed: Vec<bool> = vec![false; services.len()];
    let mut order = vec![];
    while order.len() < services.len() {
        let next = (0..services.len()).find(|&i| {
            !placed[i]
                && depends_on(&read[i].service)
                    .iter()
                    .all(|(d, _)| names.iter().position(|n| n == d).is_some_and(|j| placed[j]))
        });
        let Some(i) = next else {
            let stuck: Vec<&str> = (0..services.len())
                .filter(|&i| !placed[i])
                .map(|i| names[i])
                .collect();
            let first = stuck[0];
            return Err(problem(
                &["services", first, "depends_on"],
                format!("`depends_on` has a cycle among: {}", stuck.join(", ")),
            ));
        };
        placed[i] = true;
        order.push(i);
    }
    let mut slots: Vec<Option<file::Service>> = services.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}
