//! Top-level `include` (as `docker compose` reads it): each included file is read and its keys
//! checked like the file itself, its own `include`s first, its relative paths (build contexts,
//! bind mounts, `env_file`s, secret and config files, `extends` files) made relative to its
//! own directory (or the entry's `project_directory`), and laid under the including file: a
//! service both define is merged, the including file's keys over the included ones (as
//! `docker compose` lets the main file customise an included service).

use super::yaml::Value;
use super::{checked, keys, merge, Read, Source};
use crate::scenario::error::ScenarioError;
use std::path::Path;

/// How deep includes may nest (a file that includes itself stops here).
const DEPTH: usize = 8;

/// An included file as read: where it is, and what it says that the run ignores.
pub(super) type Included = (Source, Vec<keys::Ignored>);

/// Takes `value`'s `include` out and lays the files it names under `value`; `path` is the
/// including file (`source` its marks), `found` gets every file included, in order.
pub(super) fn apply(
    value: &mut Value,
    path: &Path,
    source: &Source,
    read: Read,
    depth: usize,
    found: &mut Vec<Included>,
) -> Result<(), ScenarioError> {
    let Some(include) = value.as_mapping_mut().and_then(|m| m.remove("include")) else {
        return Ok(());
    };
    let at = |message: String| source.error(source.marks.locate(&["include".into()]), message);
    if depth >= DEPTH {
        return Err(at(format!(
            "`include` nests more than {DEPTH} files deep (does a file include itself?): remove the loop"
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut under = Value::Null;
    for (file, project) in entries(&include).map_err(at)? {
        let full = dir.join(&file);
        let (inner, mut v, ignored) = checked(&full, read)?;
        apply(&mut v, &full, &inner, read, depth + 1, found)?;
        let base = match &project {
            Some(p) => dir.join(p),
            None => full.parent().unwrap_or(dir).to_path_buf(),
        };
        rebase(&mut v, &base);
        found.push((inner, ignored));
        merge::merge(&mut under, v, "");
    }
    merge::merge(&mut under, std::mem::take(value), "");
    *value = under;
    Ok(())
}

/// An `include` list: each entry's files, and its `project_directory`.
fn entries(include: &Value) -> Result<Vec<(String, Option<String>)>, String> {
    let form =
        "each item of `include` is a path or `{ path: PATH or [PATHS], project_directory: DIR }`";
    let Value::Sequence(items) = include else {
        return Err(format!("`include` is a list: {form}"));
    };
    let mut out = vec![];
    for item in items {
        match item {
            Value::String(p) => out.push((p.clone(), None)),
            Value::Mapping(m) => {
                let project = m.get("project_directory").and_then(Value::as_str);
                let project = project.map(str::to_string);
                match m.get("path") {
                    Some(Value::String(p)) => out.push((p.clone(), project)),
                    Some(Value::Sequence(ps)) => {
                        for p in ps {
                            let p = p.as_str().ok_or(form)?;
                            out.push((p.to_string(), project.clone()));
                        }
                    }
                    _ => return Err(form.to_string()),
                }
            }
            _ => return Err(form.to_string()),
        }
    }
    Ok(out)
}

/// A relative path of the file made absolute from `base` (a URL, an absolute path or one
/// still to be interpolated is left as it is).
fn absolute(s: &mut String, base: &Path) {
    if !s.is_empty() && !s.starts_with(['/', '$', '~']) && !s.contains("://") {
        let mut rel = s.as_str();
        while let Some(rest) = rel.strip_prefix("./") {
            rel = rest;
        }
        *s = base.join(rel).display().to_string();
    }
}

/// Every relative path of an included file made absolute from its directory.
fn rebase(value: &mut Value, base: &Path) {
    let fix = |v: Option<&mut Value>| {
        if let Some(Value::String(s)) = v {
            absolute(s, base);
        }
    };
    for top in ["secrets", "configs"] {
        if let Some(m) = value.get_mut(top).and_then(Value::as_mapping_mut) {
            m.iter_mut().for_each(|(_, v)| fix(v.get_mut("file")));
        }
    }
    let Some(services) = value.get_mut("services").and_then(Value::as_mapping_mut) else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        match svc.get_mut("build") {
            Some(Value::String(s)) => absolute(s, base),
            Some(b) => fix(b.get_mut("context")),
            None => {}
        }
        if let Some(e) = svc.get_mut("extends") {
            fix(e.get_mut("file"));
        }
        match svc.get_mut("env_file") {
            Some(Value::String(s)) => absolute(s, base),
            Some(Value::Sequence(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => absolute(s, base),
                        other => fix(other.get_mut("path")),
                    }
                }
            }
            _ => {}
        }
        if let Some(Value::Sequence(mounts)) = svc.get_mut("volumes") {
            for mount in mounts {
                bind_source(mount, base);
            }
        }
    }
}

/// A bind mount's relative source made absolute (short form `./src:/dst`, or long form of
/// type `bind`); named volumes are left as they are.
fn bind_source(mount: &mut Value, base: &Path) {
    match mount {
        Value::String(s) if s.starts_with('.') => absolute(s, base),
        Value::Mapping(_) if mount.get("type").and_then(Value::as_str) == Some("bind") => {
            if let Some(Value::String(s)) = mount.get_mut("source") {
                absolute(s, base);
            }
        }
        _ => {}
    }
}
