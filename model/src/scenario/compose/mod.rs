//! A Compose file as a topology: the third front end of [`super::file`]. `compose = "path"`
//! in a scenario's `[topology]` brings in the file's services as `[[topology.service]]` tables
//! would, so probes, faults and expectations name them like any other service.
//!
//! The file is read by `yaml` (YAML 1.2; every key with its line and column, merge keys
//! applied) and typed with `docker-compose-types` after two steps of our own: every key is
//! checked against what aftershock does with it ([`keys`]: honoured, ignored with a reason the
//! plan shows as a [`Note`], or refused with its line, why and the workaround — never silently
//! dropped) and every string is interpolated as Compose does
//! ([`interpolate`]; the process environment first, then the file's `.env`). What `docker
//! compose` refuses until the user writes it (a missing `env_file`, a container's
//! `${VAR:?why}` unset) plans with a note that `blocks_run`: listed with the plan, refused by a
//! run before anything starts. Services come out
//! in bring-up order (`depends_on` first; a cycle is an error). No I/O besides reading files
//! (the Compose file, `.env`, `env_file`s), through the loader's `read`.

mod convert;
mod error;
mod extras;
mod include;
mod interpolate;
pub mod keys;
mod merge;
mod yaml;

pub use convert::{image_ready, HealthTimes};
pub use error::ComposeError;
pub use interpolate::interpolate;

use super::error::ScenarioError;
use super::file;
use std::collections::BTreeMap;
use std::path::Path;
use yaml::Value;

/// Reads a file's text (the loader's one read of the file system).
pub type Read<'a> = &'a dyn Fn(&Path) -> std::io::Result<String>;
/// A variable of the environment the file is interpolated with.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A Compose file's services, and what its `x-aftershock` extensions add.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// Dependencies first.
    pub services: Vec<file::Service>,
    /// A service's write templates (`x-aftershock: { write: […], read: […] }`, or the HTTP
    /// form), by service name: `aftershock audit` adds a `write` probe and lost-write verdicts.
    pub writes: BTreeMap<String, Writes>,
    /// What the file says that the run does not act on, and why (in the file's order).
    pub notes: Vec<Note>,
    /// What `aftershock audit` infers from that a service's file form does not keep, by
    /// service name (every service has one).
    pub hints: BTreeMap<String, Hints>,
    /// The values of the file's top-level `secrets` (a `file`'s text and each of its lines,
    /// an `environment` variable's value, a `content`): not mounted, and never shown in what
    /// a run writes or says (`report::redact` in the runtime).
    pub secrets: Vec<String>,
}

/// What the audit reads of a Compose service besides its file form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints {
    /// `x-aftershock: { group: NAME }`: the cluster the service belongs to, as the file says
    /// (an empty name: in no group).
    pub group: Option<String>,
    /// The container ports `expose` names.
    pub expose: Vec<u16>,
    /// The line of the first key this service shares with another service through a YAML
    /// anchor (`<<: *common`, or the whole service an alias).
    pub anchor_line: Option<usize>,
}

pub use crate::scenario::values::Note;

/// A key accepted and not wholly acted on (its path), and why: a [`Note`] to be.
pub type Said = (Vec<String>, String);

/// A service's write templates, as a `write` probe takes them (`{n}`: the record's number).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writes {
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub read_path: Option<String>,
    /// Not from the file: a protocol probe kind that writes and reads back by itself
    /// (`zookeeper-write`, the audit's for a recognised store), instead of the templates.
    #[serde(skip)]
    pub protocol: Option<String>,
    /// Not from the file: the other services of the same cluster the protocol probe may
    /// write through.
    #[serde(skip)]
    pub members: Vec<String>,
}

/// A problem in the Compose file: the path of the key it is about, and what is wrong.
type Problem = (Vec<String>, ComposeError);

/// The services of the Compose file at `path`, dependencies first, as a scenario's services.
pub fn services(path: &Path, read: Read, env: Env) -> Result<Topology, ScenarioError> {
    services_of(&[path], read, env)
}

/// What `docker compose` takes besides the files: `--env-file` (read in place of the
/// project's `.env`, a later one over an earlier) and `--profile` (the services of those
/// profiles start too; `*`: every profile). No profile given: `COMPOSE_PROFILES`, as Compose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub env_files: Vec<std::path::PathBuf>,
    pub profiles: Vec<String>,
}

/// The project's `.env` in `dir`: none is an empty one; one that cannot be read (a FIFO, a
/// device, too big) is an error.
fn dotenv(dir: &Path, read: Read) -> Result<BTreeMap<String, String>, ScenarioError> {
    match read(&dir.join(".env")) {
        Ok(text) => Ok(env_lines(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(ScenarioError::Read {
            path: dir.join(".env"),
            source,
        }),
    }
}

/// The `--env-file`s, read in order (a later one's value over an earlier's).
fn env_files(
    files: &[std::path::PathBuf],
    read: Read,
) -> Result<BTreeMap<String, String>, ScenarioError> {
    let mut out = BTreeMap::new();
    for path in files {
        let text = read(path).map_err(|source| ScenarioError::Read {
            path: path.clone(),
            source,
        })?;
        out.extend(env_lines(&text));
    }
    Ok(out)
}

/// A Compose file as read: its name, and its keys with where they are.
struct Source {
    file: String,
    marks: Value,
}

impl Source {
    fn error(&self, at: Option<yaml::Mark>, message: String) -> ScenarioError {
        let at = at.unwrap_or(yaml::Mark { line: 1, column: 1 });
        ScenarioError::At {
            file: self.file.clone(),
            line: at.line,
            column: at.column,
            message,
        }
    }
}

/// The Compose files at `paths` as one (`docker compose -f a.yml -f b.yml`: each laid over
/// the ones before by Compose's merge rules, see [`merge`]); the project directory (where
/// relative paths and `.env` are) is the first file's.
pub fn services_of(paths: &[&Path], read: Read, env: Env) -> Result<Topology, ScenarioError> {
    services_with(paths, read, env, &Options::default())
}

/// [`services_of`] with `docker compose`'s `--env-file` and `--profile` ([`Options`]).
pub fn services_with(
    paths: &[&Path],
    read: Read,
    env: Env,
    options: &Options,
) -> Result<Topology, ScenarioError> {
    let first = paths.first().copied().unwrap_or(Path::new("compose.yaml"));
    let dir = first.parent().unwrap_or(Path::new("."));
    let dotenv = match options.env_files.as_slice() {
        [] => dotenv(dir, read)?,
        files => env_files(files, read)?,
    };
    let lookup = |name: &str| env(name).or_else(|| dotenv.get(name).cloned());
    let profiles = profiles(options, &lookup);
    let (mut sources, mut value, mut notes) = (vec![], Value::Null, vec![]);
    for path in paths {
        let (source, mut one, ignored) = checked(path, read)?;
        let mut included = vec![];
        include::apply(&mut one, path, &source, read, 0, &mut included)?;
        included.push((source, ignored));
        for (source, ignored) in included {
            for (key_path, reason) in ignored {
                notes.push(source.note(key_path, reason.to_string(), true));
            }
            sources.push(source);
        }
        merge::merge(&mut value, one, "");
    }
    let at = |(key_path, error): Problem| {
        let source = source_of(&sources, &key_path);
        source.error(source.marks.locate(&key_path), error.to_string())
    };
    let other = |file: &str, service: &str| extended_service(dir, file, service, read, 0);
    merge::extends(&mut value, &other).map_err(at)?;
    let mut blocked = vec![];
    interpolate_all(&mut value, &mut vec![], &lookup, &mut blocked).map_err(at)?;
    let locate = |key_path: &[String]| {
        let source = source_of(&sources, key_path);
        let line = source.marks.locate(key_path).map_or(1, |m| m.line);
        format!("{}:{line}", source.file)
    };
    let cx = convert::Cx {
        dir,
        read,
        lookup: &lookup,
        profiles: &profiles,
        profiles_from_env: options.profiles.is_empty(),
        locate: &locate,
    };
    let secrets = sources.iter().flat_map(|s| secret_values(&s.marks, &cx));
    let secrets = secrets.collect();
    let (mut topology, more, unset) = convert::services(value, &cx).map_err(at)?;
    topology.secrets = secrets;
    for (key_path, reason) in more {
        notes.push(source_of(&sources, &key_path).note(key_path, reason, false));
    }
    for (key_path, reason) in blocked.into_iter().chain(unset) {
        let mut note = source_of(&sources, &key_path).note(key_path, reason, false);
        note.blocks_run = true;
        notes.push(note);
    }
    notes.sort_by_key(|n| {
        (
            paths.iter().position(|p| p.display().to_string() == n.file),
            n.line,
        )
    });
    topology.notes = notes;
    Ok(topology)
}

/// The profiles whose services start: those asked for, else `COMPOSE_PROFILES`'.
fn profiles(options: &Options, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    match options.profiles.as_slice() {
        [] => lookup("COMPOSE_PROFILES").map_or(vec![], |p| {
            let names = p.split(',').map(str::trim).filter(|p| !p.is_empty());
            names.map(str::to_string).collect()
        }),
        given => given.to_vec(),
    }
}

/// The file a key is in: the last that writes it (else the first).
fn source_of<'a>(sources: &'a [Source], key_path: &[String]) -> &'a Source {
    let found = (sources.iter().rev()).find(|s| s.marks.find(key_path).is_some());
    found.unwrap_or(&sources[0])
}

/// How deep `extends` may go from file to file (a cycle across files stops here).
const EXTENDS_DEPTH: usize = 8;

/// The service `service` of the Compose file `file` (relative to `dir`), its keys checked and
/// its own `extends` laid under it (in that file, or in a file relative to that file's).
fn extended_service(
    dir: &Path,
    file: &str,
    service: &str,
    read: Read,
    depth: usize,
) -> Result<Value, ComposeError> {
    let path = dir.join(file);
    let failed = |message: String| ComposeError::ExtendsFile {
        file: file.into(),
        message,
    };
    if depth >= EXTENDS_DEPTH {
        return Err(failed(format!(
            "`extends` goes through more than {EXTENDS_DEPTH} files (a cycle?)"
        )));
    }
    let (_, mut v, _) = checked(&path, read).map_err(|e| failed(e.to_string()))?;
    let here = path.parent().unwrap_or(dir).to_path_buf();
    let further = |f: &str, s: &str| extended_service(&here, f, s, read, depth + 1);
    merge::extends(&mut v, &further)
        .map_err(|(key_path, e)| failed(format!("{}: {e}", key_path.join("."))))?;
    let services = v.get("services").and_then(Value::as_mapping);
    let names = services.map(|m| m.iter().map(|(n, _)| n).collect::<Vec<_>>().join(", "));
    match v.get("services").and_then(|s| s.get(service)).cloned() {
        Some(found) => Ok(found),
        None => Err(ComposeError::ExtendsUnknown {
            service: service.into(),
            file: file.into(),
            services: names.unwrap_or_default(),
        }),
    }
}

impl Source {
    fn note(&self, key_path: Vec<String>, reason: String, ignored: bool) -> Note {
        Note {
            file: self.file.clone(),
            line: self.marks.locate(&key_path).map_or(1, |m| m.line),
            key: key_path.join("."),
            reason,
            ignored,
            blocks_run: false,
        }
    }
}

/// One Compose file read and its keys checked (the ignored ones taken out and listed).
fn checked(path: &Path, read: Read) -> Result<(Source, Value, Vec<keys::Ignored>), ScenarioError> {
    let text = read(path).map_err(|source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let mut value = yaml::parse(&text).map_err(|e| ScenarioError::At {
        file: file.clone(),
        line: e.at.line,
        column: e.at.column,
        message: format!("not a Compose file: {}", e.message),
    })?;
    let source = Source {
        file,
        marks: value.clone(),
    };
    let mut ignored = vec![];
    keys::check(&mut value, &keys::FILE, &mut vec![], &mut ignored)
        .map_err(|(p, e)| source.error(source.marks.locate(&p), e.to_string()))?;
    Ok((source, value, ignored))
}

/// The values of the top-level `secrets` of the file as read (`value`, before the key check
/// takes them out), interpolated: a `file`'s text (whole, trimmed, and each line), an
/// `environment` variable's value, a `content`. A file that cannot be read holds nothing a
/// run could show.
fn secret_values(value: &Value, cx: &convert::Cx) -> Vec<String> {
    let mut out = vec![];
    let Some(secrets) = value.get("secrets").and_then(Value::as_mapping) else {
        return out;
    };
    for (_, secret) in secrets.iter() {
        let text = |key: &str| {
            let raw = secret.get(key).and_then(Value::as_str)?;
            interpolate(raw, cx.lookup).ok()
        };
        if let Some(Ok(text)) = text("file").map(|f| (cx.read)(&cx.dir.join(f))) {
            out.extend(text.lines().map(|l| l.trim().to_string()));
            out.push(text.trim().to_string());
            out.push(text);
        }
        out.extend(text("environment").and_then(|name| (cx.lookup)(&name)));
        out.extend(text("content"));
    }
    out.retain(|v| !v.is_empty());
    out
}

/// Interpolates every string of `value` (not the keys); errors name the key path. A
/// required variable (`${VAR:?why}`) that is unset where it only feeds a container (its
/// `environment`, `command`, `entrypoint`) is what a missing `env_file` is: the value is
/// planned empty and a run refused until it is set (`blocked`); anywhere else it is an error.
fn interpolate_all(
    value: &mut Value,
    path: &mut Vec<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    blocked: &mut Vec<Said>,
) -> Result<(), Problem> {
    match value {
        Value::String(s) => match interpolate(s, lookup) {
            Ok(done) => *s = done,
            Err(ComposeError::Required { name, message }) if container_input(path) => {
                blocked.push((path.clone(), unset_required(&name, &message)));
                s.clear();
            }
            Err(e) => return Err((path.clone(), e)),
        },
        Value::Sequence(items) => {
            for item in items {
                interpolate_all(item, path, lookup, blocked)?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                path.push(k.to_string());
                interpolate_all(v, path, lookup, blocked)?;
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
    Ok(())
}

/// Whether the key at `path` only feeds a service's container (its `environment`, `command`,
/// `entrypoint`): an unset required variable there leaves the plan whole.
fn container_input(path: &[String]) -> bool {
    matches!(path, [top, _, key, ..] if top == "services"
        && ["environment", "command", "entrypoint"].contains(&key.as_str()))
}

/// What a plan says of a required variable left unset in a service's container input.
fn unset_required(name: &str, message: &str) -> String {
    format!("{name} is unset ({message}): planned empty; `docker compose` refuses this file until it is set, and so does a run (the experiment would run without it); set {name} in the environment or the project's `.env`")
}

/// `KEY=value` lines of an `.env` or `env_file` (blank lines and `#` comments skipped,
/// surrounding quotes removed).
pub fn env_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let unquoted = [('"', '"'), ('\'', '\'')]
                .iter()
                .find_map(|(a, b)| v.strip_prefix(*a)?.strip_suffix(*b))
                .unwrap_or(v);
            Some((k.trim().to_string(), unquoted.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
