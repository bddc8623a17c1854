//! A checked, interpolated Compose file (typed by `docker-compose-types`) → the file form of
//! a scenario's services, in bring-up order.

use super::error::ComposeError;
use super::extras;
use super::yaml::{self, Value};
use super::{Hints, Problem, Read, Said, Topology, Writes};
use crate::scenario::file::{self, BuildSpec, Check, DiskSpec, ReadyCheck};
use crate::scenario::values::ImageHealth;
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
    /// The profiles asked for (`--profile`; `*`: all): their services start too.
    pub profiles: &'a [String],
    /// Whether `profiles` are `COMPOSE_PROFILES`' (the project's `.env` may name a profile no
    /// service has: as `docker compose`, nothing more starts) rather than asked for by name
    /// (one no service has is a typo, refused).
    pub profiles_from_env: bool,
    /// Where a key is (`file:line`), by its path.
    pub locate: &'a dyn Fn(&[String]) -> String,
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
    /// `env_file`s: (path, required), in order (the crate knows only the short forms).
    env_files: Vec<(String, bool)>,
    /// What the audit infers from (`x-aftershock: { group }`, `expose`; the anchor later).
    hints: Hints,
    /// `ports`, `secrets`, `configs` as written (the crate does not type `configs`).
    raw: extras::Raw,
}

fn problem(path: &[&str], error: ComposeError) -> Problem {
    (path.iter().map(|s| s.to_string()).collect(), error)
}

fn said(path: &[&str], reason: String) -> Said {
    (path.iter().map(|s| s.to_string()).collect(), reason)
}

/// The file's services, dependencies first, what was accepted but not acted on, and what a
/// run refuses until it is fixed (a missing `env_file`).
pub fn services(mut value: Value, cx: &Cx) -> Result<(Topology, Vec<Said>, Vec<Said>), Problem> {
    let (mut notes, mut unset) = (vec![], vec![]);
    let renamed = rename_services(&mut value, &mut notes);
    let anchors = anchor_lines(&value);
    let mut read = take_services(&mut value, cx, &mut notes)?;
    for r in &mut read {
        r.hints.anchor_line = anchors.get(&r.name).copied();
    }
    let disks = disks(&value)?;
    let mut out = vec![];
    for r in &read {
        out.push(one(r, &value, &disks, cx, &mut notes)?);
        unset.extend(missing_env_files(r, cx));
    }
    share_volumes(&mut out);
    for svc in &mut out {
        // A renamed service is still reached by the name the file gives it.
        let Some(old) = renamed.get(&svc.name) else {
            continue;
        };
        match svc.extras.networks.is_empty() {
            true => svc.aliases.push(old.clone()),
            false => svc
                .extras
                .networks
                .iter_mut()
                .for_each(|j| j.aliases.push(old.clone())),
        }
    }
    let writes = read
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.writes.clone()?)))
        .collect();
    let names: Vec<&str> = read.iter().map(|r| r.name.as_str()).collect();
    for svc in &mut out {
        // `required: false` on a service the file does not have: no dependency.
        svc.uses.retain(|u| names.contains(&u.get_ref().as_str()));
        svc.uses_started
            .retain(|u| names.contains(&u.get_ref().as_str()));
    }
    let hints = read
        .iter()
        .map(|r| (r.name.clone(), r.hints.clone()))
        .collect();
    image_health(&mut out, &read, cx, &mut notes);
    jobs(&mut out, &read, &mut notes);
    let topology = Topology {
        services: order(out, &read)?,
        writes,
        notes: vec![],
        hints,
        secrets: vec![],
    };
    Ok((topology, notes, unset))
}

/// Services whose names Compose allows and aftershock's do not (`celery_worker`, `Web`)
/// renamed (`celery-worker`), in `depends_on` too: new name → the file's (an alias of it).
fn rename_services(value: &mut Value, notes: &mut Vec<Said>) -> BTreeMap<String, String> {
    let valid = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let Some(Value::Mapping(services)) = value.get_mut("services") else {
        return BTreeMap::new();
    };
    let names: Vec<String> = services.iter().map(|(n, _)| n.to_string()).collect();
    let mut renamed = BTreeMap::new();
    for old in names.iter().filter(|n| !valid(n)) {
        let new = old.to_lowercase().replace(['_', '.'], "-");
        if valid(&new) && !names.contains(&new) && !renamed.contains_key(&new) {
            let reason = format!("the service is `{new}` in the run (aftershock names use a-z, 0-9 and -); other services still reach it as `{old}`");
            notes.push(said(&["services", old], reason));
            renamed.insert(new, old.clone());
        }
    }
    if renamed.is_empty() {
        return renamed;
    }
    let new_of = |n: &str| {
        renamed
            .iter()
            .find(|(_, o)| *o == n)
            .map(|(k, _)| k.clone())
    };
    let mut out = yaml::Mapping::default();
    for (name, at, mut svc) in std::mem::take(services).into_entries() {
        match svc.get_mut("depends_on") {
            Some(Value::Sequence(deps)) => {
                for d in deps {
                    if let Some(new) = d.as_str().and_then(new_of) {
                        *d = Value::String(new);
                    }
                }
            }
            Some(Value::Mapping(deps)) => {
                let mut again = yaml::Mapping::default();
                for (d, at, v) in std::mem::take(deps).into_entries() {
                    again.push(new_of(&d).unwrap_or(d), at, v);
                }
                *deps = again;
            }
            _ => {}
        }
        out.push(new_of(&name).unwrap_or(name), at, svc);
    }
    *services = out;
    renamed
}

/// A named volume that more than one service mounts is one volume of the run, shared by
/// them as Compose shares it (taken out of each service's per-replica volumes).
fn share_volumes(services: &mut [file::Service]) {
    let mut users: BTreeMap<String, usize> = BTreeMap::new();
    for svc in services.iter() {
        let mut names: Vec<&str> = svc
            .volumes
            .iter()
            .filter_map(|v| v.split(':').next())
            .collect();
        names.dedup();
        for name in names {
            *users.entry(name.to_string()).or_default() += 1;
        }
    }
    for svc in services.iter_mut() {
        let (shared, own): (Vec<String>, Vec<String>) = std::mem::take(&mut svc.volumes)
            .into_iter()
            .partition(|v| users.get(v.split(':').next().unwrap_or_default()) > Some(&1));
        svc.volumes = own;
        for v in shared {
            let (name, target) = v.split_once(':').unwrap_or((&v, ""));
            svc.extras
                .shared_volumes
                .push((name.to_string(), target.to_string()));
        }
    }
}

/// For each service that shares keys with another through a YAML anchor, the line of the
/// first such key (a key's mark is where it is written, so shared keys share marks).
fn anchor_lines(value: &Value) -> BTreeMap<String, usize> {
    let Some(Value::Mapping(services)) = value.get("services") else {
        return BTreeMap::new();
    };
    let marks: Vec<(&str, Vec<yaml::Mark>)> = services
        .iter()
        .map(|(name, svc)| {
            let marks = svc
                .as_mapping()
                .map(|m| m.marks().collect())
                .unwrap_or_default();
            (name, marks)
        })
        .collect();
    let mut out = BTreeMap::new();
    for (name, own) in &marks {
        let shared = own
            .iter()
            .filter(|m| {
                marks
                    .iter()
                    .any(|(other, o)| other != name && o.contains(m))
            })
            .map(|m| m.line)
            .min();
        if let Some(line) = shared {
            out.insert(name.to_string(), line);
        }
    }
    out
}

/// `x-aftershock` of a service: its `group` (taken out) and its write templates (the rest).
fn extension(name: &str, mut v: Value) -> Result<(Option<String>, Option<Writes>), Problem> {
    let at = |e: ComposeError| problem(&["services", name, "x-aftershock"], e.in_service(name));
    let group = match v.as_mapping_mut().and_then(|m| m.remove("group")) {
        None => None,
        Some(Value::String(g)) => Some(g),
        Some(Value::Null) => Some(String::new()),
        Some(_) => return Err(at(ComposeError::GroupNotAName)),
    };
    if v.as_mapping().is_some_and(|m| m.iter().next().is_none()) {
        return Ok((group, None));
    }
    let writes = yaml::from_value::<Writes>(v).map_err(|error| {
        let hint = "expected `group` (a cluster's name), `write` and `read` (commands), or `port`, `path` and `read_path` (HTTP)";
        at(ComposeError::Extension { error, hint })
    })?;
    Ok((group, Some(writes)))
}

/// The container ports `expose` names (`\"2379\"`, `2379`, `\"80/tcp\"`; a range: its first).
fn expose(svc: &Value) -> Vec<u16> {
    let Some(Value::Sequence(items)) = svc.get("expose") else {
        return vec![];
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Int(i) => u16::try_from(*i).ok(),
            Value::String(s) => {
                let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            }
            _ => None,
        })
        .collect()
}

/// Takes the services out of the file's value, each typed by the crate. A service with
/// `profiles`, none of them asked for, that nothing depends on is left out, as `docker
/// compose up` does; a profile asked for that no service has is an error (a typo).
fn take_services(value: &mut Value, cx: &Cx, notes: &mut Vec<Said>) -> Result<Vec<Read1>, Problem> {
    let asked = cx.profiles;
    let Some(Value::Mapping(services)) = value.get_mut("services").map(std::mem::take) else {
        return Err(problem(&[], ComposeError::NoServices));
    };
    let needed = depended_on(&services);
    let profiles_of = |svc: &Value| -> Vec<String> {
        match svc.get("profiles") {
            Some(Value::Sequence(p)) => p
                .iter()
                .filter_map(|p| Some(p.as_str()?.to_string()))
                .collect(),
            _ => vec![],
        }
    };
    let all: std::collections::BTreeSet<String> =
        services.iter().flat_map(|(_, s)| profiles_of(s)).collect();
    let unknown = asked.iter().filter(|p| *p != "*" && !all.contains(*p));
    if cx.profiles_from_env {
        for profile in unknown {
            let reason = format!("`COMPOSE_PROFILES` names `{profile}`, which no service has: nothing more starts for it (as `docker compose`)");
            notes.push(said(&["services"], reason));
        }
    } else if let Some(unknown) = unknown.into_iter().next() {
        let known = all.iter().cloned().collect::<Vec<_>>().join(", ");
        return Err(problem(
            &["services"],
            ComposeError::Profile {
                profile: unknown.clone(),
                known,
            },
        ));
    }
    let mut read = vec![];
    for (name, svc) in services {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            let suggestion = name.to_lowercase().replace(['_', '.'], "-");
            let path = ["services", name.as_str()].map(String::from).to_vec();
            return Err((path, ComposeError::ServiceName { name, suggestion }));
        }
        let own = profiles_of(&svc);
        let enabled = own.is_empty()
            || asked.iter().any(|p| p == "*" || own.contains(p))
            || needed.contains(&name);
        if !enabled {
            let reason = "not started: none of its profiles is enabled (`--profile`, or `compose_profiles` in a scenario file, as `docker compose --profile`)";
            notes.push(said(&["services", &name, "profiles"], reason.into()));
            continue;
        }
        read.push(one_read(name, without_nulls(svc))?);
    }
    Ok(read)
}

/// A service's keys without those whose value is empty (`environment:` with only a comment
/// under it): Compose reads them as not given.
fn without_nulls(mut svc: Value) -> Value {
    if let Some(map) = svc.as_mapping_mut() {
        let empty: Vec<String> = (map.iter())
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.to_string())
            .collect();
        for key in empty {
            map.remove(&key);
        }
    }
    svc
}

/// The services some service names in `depends_on`.
fn depended_on(services: &yaml::Mapping) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (_, svc) in services.iter() {
        match svc.get("depends_on") {
            Some(Value::Sequence(names)) => {
                out.extend(names.iter().filter_map(|n| Some(n.as_str()?.to_string())))
            }
            Some(Value::Mapping(map)) => out.extend(map.iter().map(|(k, _)| k.to_string())),
            _ => {}
        }
    }
    out
}

/// One service's value, typed: the keys the crate does not know (or not in every form) are
/// taken out first.
fn one_read(name: String, mut svc: Value) -> Result<Read1, Problem> {
    let mut exposed = expose(&svc);
    let at = |key: &str, e: ComposeError| problem(&["services", &name, key], e.in_service(&name));
    let mut take = |key: &str| svc.as_mapping_mut().and_then(|m| m.remove(key));
    let cpus = match take("cpus") {
        None => None,
        Some(v) => Some(number(&v).ok_or_else(|| {
            let (key, expected) = ("cpus", "a number");
            at("cpus", ComposeError::NotANumber { key, expected })
        })?),
    };
    let oom_score_adj = match take("oom_score_adj") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            let (key, expected) = ("oom_score_adj", "a whole number");
            at("oom_score_adj", ComposeError::NotANumber { key, expected })
        })?),
    };
    let (group, writes) = match take("x-aftershock") {
        None => (None, None),
        Some(v) => extension(&name, v)?,
    };
    let env_files = take("env_file").map(env_files).unwrap_or_default();
    let raw = extras::Raw {
        ports: take("ports"),
        secrets: take("secrets"),
        configs: take("configs"),
    };
    // A published port is a port the service answers on: a probe target too.
    for port in raw
        .ports
        .as_ref()
        .map(extras::container_ports)
        .unwrap_or_default()
    {
        if !exposed.contains(&port) {
            exposed.push(port);
        }
    }
    // Documentation only (one network: every port is reachable); numbers or strings. The
    // audit reads it as a hint of what to probe.
    take("expose");
    let hints = Hints {
        group,
        expose: exposed,
        anchor_line: None,
    };
    stringify(&mut svc, &["mem_limit"]);
    stringify(&mut svc, &["deploy", "resources", "limits", "memory"]);
    stringify(&mut svc, &["deploy", "resources", "limits", "cpus"]);
    whole_number(&mut svc, "healthcheck", "retries");
    let service: dc::Service = if svc.is_null() {
        dc::Service::default()
    } else {
        yaml::from_value(svc).map_err(|error| {
            let e = ComposeError::Typed { error }.in_service(&name);
            problem(&["services", &name], e)
        })?
    };
    Ok(Read1 {
        name,
        service,
        cpus,
        oom_score_adj,
        writes,
        env_files,
        hints,
        raw,
    })
}

/// `env_file`: a path, or a list of paths and `{ path, required }`.
fn env_files(v: Value) -> Vec<(String, bool)> {
    let items = match v {
        Value::Sequence(items) => items,
        other => vec![other],
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::String(path) => Some((path.clone(), true)),
            Value::Mapping(_) => {
                let path = item.get("path")?.as_str()?.to_string();
                let required = !matches!(item.get("required"), Some(Value::Bool(false)));
                Some((path, required))
            }
            _ => None,
        })
        .collect()
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

/// Turns the string at `outer.key` into a whole number (`retries: $RETRIES` is a string once
/// interpolated; the crate wants a number); an empty one (an unset variable) is left out, so
/// Compose's default applies.
fn whole_number(value: &mut Value, outer: &str, key: &str) {
    let Some(outer) = value.get_mut(outer) else {
        return;
    };
    let Some(v) = outer.get_mut(key) else { return };
    let Some(text) = v.as_str().map(str::trim) else {
        return;
    };
    match text.parse::<i64>() {
        Ok(n) => *v = Value::Int(n),
        Err(_) if text.is_empty() => {
            outer.as_mapping_mut().map(|m| m.remove(key));
        }
        // Not a number: the crate says so, where it is.
        Err(_) => {}
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
        let ext: VolumeExtension = yaml::from_value(ext.clone()).map_err(|error| {
            let hint = "expected `disk: { size_mb: 256, lossy: false }`";
            let e = ComposeError::Extension { error, hint };
            problem(&["volumes", name, "x-aftershock"], e)
        })?;
        disks.insert(name.to_string(), ext.disk);
    }
    Ok(disks)
}

/// One Compose service as a scenario service; what it accepts but does not act on is said.
fn one(
    r: &Read1,
    top: &Value,
    disks: &BTreeMap<String, VolumeDisk>,
    cx: &Cx,
    notes: &mut Vec<Said>,
) -> Result<file::Service, Problem> {
    let (name, svc) = (r.name.as_str(), &r.service);
    let at = |key: &str, e: ComposeError| problem(&["services", name, key], e.in_service(name));
    let mut out = file::Service::named(name);
    (out.image, out.build) = image(svc, cx.dir).map_err(|e| at("image", e))?;
    out.command = svc
        .command
        .as_ref()
        .map(command)
        .transpose()
        .map_err(|e| at("command", e))?
        .unwrap_or_default();
    out.entrypoint = svc
        .entrypoint
        .as_ref()
        .map(entrypoint)
        .transpose()
        .map_err(|e| at("entrypoint", e))?;
    out.env = environment(r, cx).map_err(|e| at("env_file", e))?;
    let said = |reason: String| said(&["services", name, "volumes"], reason);
    let v = volumes(svc, disks, cx.dir).map_err(|e| at("volumes", e))?;
    (out.volumes, out.disk) = (v.named, v.disk);
    notes.extend(v.unmounted.into_iter().map(said));
    let x = extras::extras(name, svc, &r.raw, top, cx.dir, notes).map_err(|(k, e)| at(k, e))?;
    out.extras = x.extras;
    out.extras.mounts.splice(0..0, v.binds);
    out.ready = ready(svc).map_err(|e| at("healthcheck", e))?;
    out.replicas = replicas(svc).map_err(|e| at("deploy", e))?;
    out.memory_mib = memory(svc).map_err(|e| at("mem_limit", e))?;
    let limit_cpus = limits(svc).and_then(|l| l.cpus.as_deref()?.trim().parse::<f64>().ok());
    out.cpus = r.cpus.or(limit_cpus);
    out.oom_score_adj = r.oom_score_adj;
    // An empty policy (an unset `${RESTART}`) is Compose's default, `no`.
    out.restart = svc.restart.clone().filter(|r| !r.is_empty());
    (out.user, out.working_dir) = (svc.user.clone(), svc.working_dir.clone());
    if let Some(policy) = &out.restart {
        crate::scenario::plan::Restart::parse(policy)
            .map_err(|m| at("restart", ComposeError::Restart(m.to_string())))?;
    }
    out.aliases = aliases(name, svc, out.replicas);
    // `container_name` is an alias where the service is: on the file's networks it names,
    // else on the run's own network (Compose's `default`).
    match out.extras.networks.is_empty() {
        true => out.aliases.extend(x.aliases.iter().cloned()),
        false => {
            for join in &mut out.extras.networks {
                join.aliases.extend(x.aliases.iter().cloned());
            }
        }
    }
    if !out.extras.networks.is_empty() {
        let reason = "each is a network of the run with the service's aliases on it; every service is also on the run's own network by its name (the harness reaches replicas there), so networks do not keep services apart";
        notes.push(self::said(&["services", name, "networks"], reason.into()));
    }
    out.uses = depends_on(svc)
        .into_iter()
        .map(|(d, _, _)| file::reference(d))
        .collect();
    // Compose starts a service after a plain dependency has started, not once it is healthy.
    out.uses_started = depends_on(svc)
        .into_iter()
        .filter(|(_, c, _)| c.as_deref().is_none_or(|c| c == "service_started"))
        .map(|(d, _, _)| file::reference(d))
        .collect();
    Ok(out)
}

/// `image:` (a tag added when it has none) or `build:` (context made absolute).
fn image(
    svc: &dc::Service,
    dir: &Path,
) -> Result<(Option<String>, Option<BuildSpec>), ComposeError> {
    if let Some(build) = &svc.build_ {
        let (context, dockerfile, args, target) = match build {
            dc::BuildStep::Simple(context) => (context.clone(), None, BTreeMap::new(), None),
            dc::BuildStep::Advanced(b) => (
                b.context.clone(),
                b.dockerfile.clone(),
                build_args(b.args.as_ref()),
                b.target.clone().filter(|t| !t.is_empty()),
            ),
        };
        let context = dir.join(context).display().to_string();
        return Ok((
            None,
            Some(BuildSpec {
                context,
                dockerfile,
                args,
                target,
            }),
        ));
    }
    let Some(image) = &svc.image else {
        return Err(ComposeError::NoImage);
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

fn command(c: &dc::Command) -> Result<Vec<String>, ComposeError> {
    match c {
        dc::Command::Simple(s) => split_words(s),
        dc::Command::Args(a) => Ok(a.clone()),
    }
}

fn entrypoint(e: &dc::Entrypoint) -> Result<Vec<String>, ComposeError> {
    match e {
        dc::Entrypoint::Simple(s) => split_words(s),
        dc::Entrypoint::List(a) => Ok(a.clone()),
    }
}

/// Splits a command line as a POSIX shell would split words (quotes, backslashes), as
/// Compose does for the string form of `command` and `entrypoint`.
pub fn split_words(line: &str) -> Result<Vec<String>, ComposeError> {
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
                    None => return Err(unclosed('\'', line)),
                }
            },
            '"' => loop {
                let w = word.get_or_insert_with(String::new);
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => w.extend(chars.next()),
                    Some(c) => w.push(c),
                    None => return Err(unclosed('"', line)),
                }
            },
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

fn unclosed(quote: char, line: &str) -> ComposeError {
    let line = line.to_string();
    ComposeError::Quote { quote, line }
}

/// `env_file`s first (in order; one not `required` may be missing, and so may a required
/// one that does not exist: [`missing_env_files`] says so), then `environment` (which wins).
fn environment(r: &Read1, cx: &Cx) -> Result<BTreeMap<String, String>, ComposeError> {
    let (svc, mut env) = (&r.service, BTreeMap::new());
    for (f, required) in &r.env_files {
        let path = cx.dir.join(f);
        match (cx.read)(&path) {
            Ok(text) => env.extend(super::env_lines(&text)),
            Err(_) if !required => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ComposeError::EnvFile { path, source }),
        }
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

/// The required `env_file`s of a service that do not exist: the file plans (their variables
/// unset) and a run refuses it until they do, as `docker compose` does. What to create them
/// from: a template beside it (`.env.example`, `example.env`, …), when the project ships one.
fn missing_env_files(r: &Read1, cx: &Cx) -> Vec<Said> {
    let mut out = vec![];
    for (f, required) in &r.env_files {
        let path = cx.dir.join(f);
        let Err(e) = (cx.read)(&path) else { continue };
        if !required || e.kind() != std::io::ErrorKind::NotFound {
            continue;
        }
        // `.env` → `example.env` too (a file name that starts with a dot).
        let dotted = Path::new(f).file_name().and_then(|n| n.to_str());
        let dotted = dotted.filter(|n| n.starts_with('.'));
        let example = dotted.map(|n| Path::new(f).with_file_name(format!("example{n}")));
        let mut templates = [".example", ".sample", ".template", ".dist", ".default"]
            .map(|ext| format!("{f}{ext}"))
            .into_iter()
            .chain(example.map(|p| p.display().to_string()));
        let template = templates.find(|t| (cx.read)(&cx.dir.join(t)).is_ok());
        let how = match template {
            Some(t) => format!("create it from the project's template: `cp {t} {f}`, then fill it in"),
            None => "create it from the project's template (its documentation says which values it needs)".to_string(),
        };
        let reason = format!("`{f}` ({}) does not exist: its variables are unset in this plan; `docker compose` refuses this file until it exists, and so does a run (the experiment would run without them); {how}", path.display());
        out.push(said(&["services", &r.name, "env_file"], reason));
    }
    out
}

/// A service's `volumes`, sorted out.
struct Volumes {
    /// Named volumes (`name:/path`, one per replica).
    named: Vec<String>,
    /// The disk (a volume declared one).
    disk: Option<DiskSpec>,
    /// Bind mounts (inside the project directory).
    binds: Vec<crate::scenario::values::Mount>,
    /// What is not mounted (anonymous volumes, tmpfs), with why.
    unmounted: Vec<String>,
}

/// Named volumes, the disk, bind mounts (relative to the Compose file's directory; `:ro`)
/// and what is not mounted.
fn volumes(
    svc: &dc::Service,
    disks: &BTreeMap<String, VolumeDisk>,
    dir: &Path,
) -> Result<Volumes, ComposeError> {
    let mut out = Volumes {
        named: vec![],
        disk: None,
        binds: vec![],
        unmounted: vec![],
    };
    for v in &svc.volumes {
        let (source, target, read_only) = match v {
            dc::Volumes::Simple(s) => {
                let mut parts = s.split(':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(src), Some(dst), mode) => {
                        let ro = mode.is_some_and(|m| m.split(',').any(|o| o == "ro"));
                        (src.to_string(), dst.to_string(), ro)
                    }
                    _ => (String::new(), s.clone(), false),
                }
            }
            dc::Volumes::Advanced(a) if a._type == "volume" || a._type == "bind" => (
                a.source.clone().unwrap_or_default(),
                a.target.clone(),
                a.read_only,
            ),
            dc::Volumes::Advanced(a) if a._type == "tmpfs" => {
                out.unmounted.push(format!(
                    "tmpfs `{}` not mounted: the path is in the replica's writable layer",
                    a.target
                ));
                continue;
            }
            dc::Volumes::Advanced(a) => {
                let kind = a._type.clone();
                return Err(ComposeError::VolumeType { kind });
            }
        };
        if source.is_empty() {
            out.unmounted.push(format!("anonymous volume `{target}` not created: the path is in the replica's writable layer"));
            continue;
        }
        if source.starts_with(['.', '/', '~']) {
            match extras::host_path(&source, &target, read_only, dir) {
                Ok(mount) => out.binds.push(mount),
                Err(outside) => {
                    let note = extras::unmounted_note(&source, &target, &outside);
                    out.unmounted.push(note);
                }
            }
            continue;
        }
        match disks.get(&source) {
            Some(_) if out.disk.is_some() => return Err(ComposeError::TwoDisks),
            Some(d) => {
                out.disk = Some(DiskSpec {
                    size_mb: d.size_mb,
                    path: target,
                    lossy: d.lossy,
                })
            }
            None => out
                .named
                .push(format!("{}:{target}", source.replace('_', "-"))),
        }
    }
    Ok(out)
}

/// The health check as the service's ready check: `CMD` / `CMD-SHELL` → an exec'd command,
/// polled every `start_interval` (else `interval`) with `timeout` per attempt, for up to
/// `start_period` + `retries` attempts (at least the scenario default of 90 s).
fn ready(svc: &dc::Service) -> Result<Option<ReadyCheck>, ComposeError> {
    let Some(h) = svc.healthcheck.as_ref().filter(|h| !h.disable) else {
        return Ok(None);
    };
    let test: Vec<String> = match &h.test {
        None => return Ok(None),
        Some(dc::HealthcheckTest::Single(s)) => vec!["CMD-SHELL".into(), s.clone()],
        Some(dc::HealthcheckTest::Multiple(v)) => v.clone(),
    };
    let Some(exec) = health_exec(&test)? else {
        return Ok(None);
    };
    let duration = |what: &'static str, v: &Option<String>| {
        let parse = |s: &str| {
            humantime::parse_duration(s).map_err(|error| ComposeError::Duration {
                what,
                text: s.to_string(),
                error,
            })
        };
        // Empty (an unset variable): Compose's default.
        v.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(parse)
            .transpose()
    };
    let times = HealthTimes {
        start_interval: duration("start_interval", &h.start_interval)?,
        interval: duration("interval", &h.interval)?,
        timeout: duration("timeout", &h.timeout)?,
        start_period: duration("start_period", &h.start_period)?,
        retries: u32::try_from(h.retries).unwrap_or(0),
    };
    Ok(Some(times.ready(exec)))
}

/// A health check's `test` as the command a ready check runs: `CMD` / `CMD-SHELL` (through
/// `sh -c`); None for `NONE`.
fn health_exec(test: &[String]) -> Result<Option<Vec<String>>, ComposeError> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Ok(Some(rest.to_vec())),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Ok(Some(vec!["sh".into(), "-c".into(), rest.join(" ")]))
        }
        Some((kind, _)) if kind == "NONE" => Ok(None),
        _ => Err(ComposeError::HealthTest),
    }
}

/// A health check's timing, as a Compose file or an image's `HEALTHCHECK` gives it (None:
/// not given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthTimes {
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: u32,
}

impl HealthTimes {
    /// The ready check that runs `exec`: polled every `start_interval` (else `interval`; bring-up
    /// is the start period) with `timeout` per attempt, for up to `start_period` + `retries`
    /// attempts (at least 3; at least the scenario default of 90 s in all).
    fn ready(self, exec: Vec<String>) -> ReadyCheck {
        let interval = self.start_interval.or(self.interval);
        let attempt = self.timeout;
        let start = self.start_period.unwrap_or_default();
        let per_try =
            interval.unwrap_or(Duration::from_secs(1)) + attempt.unwrap_or(Duration::from_secs(1));
        let timeout = (start + per_try * self.retries.max(3)).max(Duration::from_secs(90));
        let mut check = ReadyCheck::of(Check::Exec(exec), timeout);
        check.interval = interval;
        check.attempt_timeout = attempt;
        check
    }
}

/// The ready check of an image's own health check (`HEALTHCHECK` in its Dockerfile: `test`
/// as the engine keeps it, `["CMD-SHELL", "…"]`), mapped as a Compose file's is; None when
/// it has none (no test, `NONE`, or a test the mapping does not know).
pub fn image_ready(test: &[String], times: HealthTimes) -> Option<crate::scenario::plan::Ready> {
    let exec = health_exec(test).ok()??;
    let ready = times.ready(exec);
    Some(crate::scenario::plan::Ready {
        check: ready.check().ok()?,
        timeout: ready.timeout,
        interval: ready.interval.unwrap_or(Duration::from_millis(100)),
        attempt_timeout: ready.attempt_timeout.unwrap_or(Duration::from_secs(1)),
    })
}

/// `deploy.replicas` or `scale` (they must agree); default 1.
fn replicas(svc: &dc::Service) -> Result<usize, ComposeError> {
    let deploy = svc.deploy.as_ref().and_then(|d| d.replicas);
    let scale = (svc.scale != 0).then_some(svc.scale);
    let n = match (deploy, scale) {
        (Some(deploy), Some(scale)) if deploy != scale => {
            return Err(ComposeError::ReplicasDisagree { deploy, scale })
        }
        (a, b) => a.or(b).unwrap_or(1),
    };
    usize::try_from(n).map_err(|_| ComposeError::Replicas(n))
}

fn limits(svc: &dc::Service) -> Option<&dc::Limits> {
    svc.deploy.as_ref()?.resources.as_ref()?.limits.as_ref()
}

/// `mem_limit` or `deploy.resources.limits.memory`, in MiB.
fn memory(svc: &dc::Service) -> Result<Option<u64>, ComposeError> {
    let text = svc
        .mem_limit
        .as_deref()
        .or(limits(svc).and_then(|l| l.memory.as_deref()));
    text.map(mebibytes).transpose()
}

/// `512m`, `1g`, `128mb`, `134217728` (bytes) → MiB.
pub fn mebibytes(text: &str) -> Result<u64, ComposeError> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[digits.len()..];
    let wrong = || ComposeError::Memory {
        text: text.to_string(),
    };
    let n: f64 = digits.trim().parse().map_err(|_| wrong())?;
    let bytes = match unit {
        "" => n,
        "k" => n * 1024.0,
        "m" => n * 1024.0 * 1024.0,
        "g" => n * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(wrong()),
    };
    Ok((bytes / (1024.0 * 1024.0)) as u64)
}

/// Every replica answers to the service's name (Compose's DNS) on the run's own network,
/// plus its aliases on the `default` network (those on the file's other networks are on
/// those: [`super::extras`]).
fn aliases(name: &str, svc: &dc::Service, replicas: usize) -> Vec<String> {
    let mut out: Vec<String> = (replicas > 1)
        .then(|| name.to_string())
        .into_iter()
        .collect();
    if let dc::Networks::Advanced(nets) = &svc.networks {
        let default = nets.0.iter().filter(|(n, _)| *n == "default");
        for (_, settings) in default {
            if let dc::MapOrEmpty::Map(s) = settings {
                out.extend(s.aliases.iter().cloned());
            }
        }
    }
    out
}

/// `depends_on`: (service, its condition, whether it is required).
fn depends_on(svc: &dc::Service) -> Vec<(String, Option<String>, bool)> {
    match &svc.depends_on {
        dc::DependsOnOptions::Simple(names) => {
            names.iter().map(|n| (n.clone(), None, true)).collect()
        }
        dc::DependsOnOptions::Conditional(map) => map
            .iter()
            .map(|(n, c)| {
                (
                    n.clone(),
                    Some(c.condition.clone()),
                    c.required != Some(false),
                )
            })
            .collect(),
    }
}

/// Whether the file turns the service's health check off (`disable: true`, `test: [NONE]`):
/// then neither the file's nor the image's is run.
fn health_off(svc: &dc::Service) -> bool {
    let Some(h) = &svc.healthcheck else {
        return false;
    };
    let none = |t: &str| t.trim() == "NONE";
    h.disable
        || match &h.test {
            Some(dc::HealthcheckTest::Single(t)) => none(t),
            Some(dc::HealthcheckTest::Multiple(v)) => v.first().is_some_and(|t| none(t)),
            None => false,
        }
}

/// A `service_healthy` wait on a service whose file gives it no health check (or one
/// without `test`): it waits on the image's own `HEALTHCHECK`, which the run reads from the
/// image before bring-up ([`ImageHealth`]: where the wait is written, for the refusal when
/// the image has none); the plan says so. One the file turns off is none ([`order`] refuses
/// the wait).
fn image_health(services: &mut [file::Service], read: &[Read1], cx: &Cx, notes: &mut Vec<Said>) {
    for r in read {
        for (dep, condition, _) in depends_on(&r.service) {
            let Some(i) = read.iter().position(|d| d.name == dep) else {
                continue;
            };
            if condition.as_deref() != Some("service_healthy")
                || services[i].ready.is_some()
                || health_off(&read[i].service)
            {
                continue;
            }
            let path = ["services", r.name.as_str(), "depends_on", dep.as_str()];
            let image = &mut services[i].extras.image_health;
            if image.is_none() {
                let at = (cx.locate)(&path.map(String::from));
                let waiter = r.name.clone();
                *image = Some(ImageHealth { at, waiter });
            }
            let reason = format!("waits on the image's own health check of `{dep}` (the file gives `{dep}` none): the run reads it from the image before bring-up and refuses to start if the image has none");
            notes.push(said(&path, reason));
        }
    }
}

/// A service others wait on to complete (`condition: service_completed_successfully`) is a
/// one-shot job: it runs to completion before them, and is not part of what is observed.
fn jobs(services: &mut [file::Service], read: &[Read1], notes: &mut Vec<Said>) {
    for r in read {
        for (dep, condition, _) in depends_on(&r.service) {
            let Some(i) = read.iter().position(|d| d.name == dep) else {
                continue;
            };
            if condition.as_deref() != Some("service_completed_successfully") {
                continue;
            }
            services[i].extras.runs_once = true;
            let reason = format!("`{dep}` runs to completion before `{}` starts (a one-shot job: ready once it has exited 0; the audit plans no probe or fault for it)", r.name);
            notes.push(said(&["services", &r.name, "depends_on", &dep], reason));
        }
    }
}

/// The services in bring-up order (each after what it depends on); a cycle is an error.
fn order(services: Vec<file::Service>, read: &[Read1]) -> Result<Vec<file::Service>, Problem> {
    let names: Vec<&str> = read.iter().map(|r| r.name.as_str()).collect();
    for r in read {
        for (dep, condition, required) in depends_on(&r.service) {
            let at = |e: ComposeError| {
                let e = e.in_service(&r.name);
                problem(&["services", &r.name, "depends_on"], e)
            };
            let Some(i) = names.iter().position(|n| *n == dep) else {
                if !required {
                    continue;
                }
                let services = names.join(", ");
                return Err(at(ComposeError::NoDependency { dep, services }));
            };
            match condition.as_deref() {
                None | Some("service_started") => {}
                Some("service_healthy")
                    if services[i].ready.is_some() || services[i].extras.image_health.is_some() => {
                }
                Some("service_completed_successfully") => {}
                Some("service_healthy") => return Err(at(ComposeError::NotHealthy { dep })),
                Some(other) => {
                    let condition = other.to_string();
                    return Err(at(ComposeError::Condition { condition }));
                }
            }
        }
    }
    let mut placed: Vec<bool> = vec![false; services.len()];
    let mut order = vec![];
    while order.len() < services.len() {
        let next = (0..services.len()).find(|&i| {
            !placed[i]
                && depends_on(&read[i].service).iter().all(|(d, _, _)| {
                    // A dependency not required and absent is no dependency.
                    names.iter().position(|n| n == d).is_none_or(|j| placed[j])
                })
        });
        let Some(i) = next else {
            let stuck: Vec<&str> = (0..services.len())
                .filter(|&i| !placed[i])
                .map(|i| names[i])
                .collect();
            let first = stuck[0];
            let services = stuck.join(", ");
            let e = ComposeError::Cycle { services };
            return Err(problem(&["services", first, "depends_on"], e));
        };
        placed[i] = true;
        order.push(i);
    }
    let mut slots: Vec<Option<file::Service>> = services.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}
