//! The Compose keys that reach the host or the engine beyond the scenario grammar: bind
//! mounts, `secrets` and `configs` (host files mounted read-only), the file's networks,
//! `container_name` (an alias), `stop_signal`/`stop_grace_period`, and `ports` (container
//! ports a probe can target; nothing is published). A host path must stay inside the project
//! directory (the Compose file's): a file that mounts `/`, `~` or `../..` is refused with
//! its line, so a run never exposes the host to a container it did not mean to.

use super::error::ComposeError;
use super::yaml::Value;
use super::Said;
use crate::scenario::values::{Extras, Mount, NetworkJoin};
use docker_compose_types as dc;
use std::path::{Component, Path, PathBuf};

/// What a service's value holds that the crate does not type (taken out before typing).
#[derive(Debug, Default)]
pub struct Raw {
    pub ports: Option<Value>,
    pub secrets: Option<Value>,
    pub configs: Option<Value>,
}

/// Why a note is said, for the keys this module honours in part.
const NOT_PUBLISHED: &str = "not published on the host: probes reach the container port at each replica's address on the run's network";

/// A service's [`Extras`] and the aliases it adds.
pub struct Out {
    pub extras: Extras,
    /// More aliases on every network (`container_name`).
    pub aliases: Vec<String>,
}

/// The service `name`'s extras; `top` is the whole file (its `secrets`, `configs`).
pub fn extras(
    name: &str,
    svc: &dc::Service,
    raw: &Raw,
    top: &Value,
    dir: &Path,
    notes: &mut Vec<Said>,
) -> Result<Out, (&'static str, ComposeError)> {
    let say = |notes: &mut Vec<Said>, key: &str, reason: String| {
        notes.push((["services", name, key].map(String::from).to_vec(), reason));
    };
    let mut extras = Extras::default();
    if raw.ports.is_some() {
        say(notes, "ports", NOT_PUBLISHED.into());
    }
    let mut aliases = vec![];
    if let Some(c) = svc.container_name.as_ref().filter(|c| !c.is_empty()) {
        aliases.push(c.clone());
        let reason = format!("the container is named by the run (scoped to it, with its labels, so it never collides with one of yours); `{c}` is a network alias of the replica on each of its networks");
        say(notes, "container_name", reason);
    }
    extras.networks = networks(svc);
    extras.stop_signal = svc.stop_signal.clone().filter(|s| !s.is_empty());
    extras.stop_grace = match svc.stop_grace_period.as_deref() {
        Some(text) => Some(duration(text).map_err(|e| ("stop_grace_period", e))?),
        None => None,
    };
    for (key, value, default_dir) in [
        ("secrets", &raw.secrets, Some("/run/secrets")),
        ("configs", &raw.configs, None),
    ] {
        let Some(value) = value else { continue };
        let (mounts, unmounted) = files(key, value, top, dir, default_dir).map_err(|e| (key, e))?;
        extras.mounts.extend(mounts);
        for reason in unmounted {
            say(notes, key, reason);
        }
    }
    Ok(Out { extras, aliases })
}

/// `1m30s`, `10s`, `1h` (Compose's durations).
fn duration(text: &str) -> Result<std::time::Duration, ComposeError> {
    humantime::parse_duration(text).map_err(|error| ComposeError::Duration {
        what: "stop_grace_period",
        text: text.to_string(),
        error,
    })
}

/// The container ports of `ports` (`"8080:80"`, `"127.0.0.1:80:80/tcp"`, `80`, a range: its
/// first, `{ target: 80 }`).
pub fn container_ports(v: &Value) -> Vec<u16> {
    let Value::Sequence(items) = v else {
        return vec![];
    };
    let first_number = |s: &str| -> Option<u16> {
        let container = s.rsplit(':').next()?;
        let digits: String = container.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Int(i) => u16::try_from(*i).ok(),
            Value::String(s) => first_number(s),
            Value::Mapping(_) => match item.get("target")? {
                Value::Int(i) => u16::try_from(*i).ok(),
                Value::String(s) => first_number(s),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The file's networks the service names (not `default`: the run's own network is it), with
/// the service's aliases on each.
fn networks(svc: &dc::Service) -> Vec<NetworkJoin> {
    let join = |name: &str, aliases: Vec<String>| NetworkJoin {
        name: name.to_string(),
        aliases,
    };
    match &svc.networks {
        dc::Networks::Simple(names) => names
            .iter()
            .filter(|n| *n != "default")
            .map(|n| join(n, vec![]))
            .collect(),
        dc::Networks::Advanced(nets) => nets
            .0
            .iter()
            .filter(|(n, _)| *n != "default")
            .map(|(n, settings)| {
                let aliases = match settings {
                    dc::MapOrEmpty::Map(s) => s.aliases.clone(),
                    dc::MapOrEmpty::Empty => vec![],
                };
                join(n, aliases)
            })
            .collect(),
    }
}

/// A service's `secrets` or `configs` (`kind`): each one whose top-level definition has a
/// `file` is mounted read-only at its `target` (relative: under `default_dir`; default:
/// `default_dir/NAME`, or `/NAME` for configs); the others are said, not mounted.
fn files(
    kind: &str,
    value: &Value,
    top: &Value,
    dir: &Path,
    default_dir: Option<&str>,
) -> Result<(Vec<Mount>, Vec<String>), ComposeError> {
    let Value::Sequence(items) = value else {
        return Ok((vec![], vec![]));
    };
    let (mut mounts, mut unmounted) = (vec![], vec![]);
    for item in items {
        let (source, target) = match item {
            Value::String(s) => (s.clone(), None),
            _ => {
                let source = item.get("source").and_then(Value::as_str);
                let source = source.ok_or(ComposeError::FileSource { kind: kind.into() })?;
                let target = item.get("target").and_then(Value::as_str);
                (source.to_string(), target.map(str::to_string))
            }
        };
        let target = match (target, default_dir) {
            (Some(t), _) if t.starts_with('/') => t,
            (Some(t), Some(d)) => format!("{d}/{t}"),
            (Some(t), None) => format!("/{t}"),
            (None, Some(d)) => format!("{d}/{source}"),
            (None, None) => format!("/{source}"),
        };
        let defined = top.get(kind).and_then(|all| all.get(&source));
        let Some(defined) = defined else {
            let kind = kind.to_string();
            let why = ComposeError::UndefinedFile { kind, name: source };
            unmounted.push(format!("not mounted at {target}: {why}"));
            continue;
        };
        match defined.get("file").and_then(Value::as_str) {
            Some(file) => match host_path(file, &target, true, dir) {
                Ok(mount) => mounts.push(mount),
                Err(outside) => unmounted.push(unmounted_note(&source, &target, &outside)),
            },
            None => unmounted.push(format!("`{source}` not mounted at {target}: only {kind} with a `file:` are mounted (a service that reads it does not become ready, and the run says UNKNOWN); write it to a file and name it in `file:`")),
        }
    }
    Ok((mounts, unmounted))
}

/// What is said of a host path not mounted because it is outside the project directory.
pub fn unmounted_note(source: &str, target: &str, why: &ComposeError) -> String {
    format!("`{source}` not mounted at {target}: {why} (the replica sees the image's own {target}; a service that needs the file does not become ready, and the run says UNKNOWN); copy it under the project directory")
}

/// A host path of the file (relative to its directory) as a mount; an error outside the
/// project directory (the caller says it is not mounted: the host stays out of reach).
pub fn host_path(
    source: &str,
    target: &str,
    read_only: bool,
    dir: &Path,
) -> Result<Mount, ComposeError> {
    // The engine binds absolute paths only.
    let dir = match dir.is_absolute() {
        true => dir.to_path_buf(),
        false => std::env::current_dir().unwrap_or_default().join(dir),
    };
    let project = normal(&dir);
    let outside = || ComposeError::OutsideProject {
        path: source.to_string(),
        project: project.clone(),
    };
    if source.starts_with('~') {
        return Err(outside());
    }
    let path = normal(&dir.join(source));
    if !path.starts_with(&project) {
        return Err(outside());
    }
    Ok(Mount {
        source: path,
        target: target.to_string(),
        read_only,
        project,
    })
}

/// `path` with `.` and `..` taken out (lexically: the run checks the real path again).
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}
