//! Several Compose files as one (`docker compose -f compose.yml -f override.yml`): each later
//! file is laid over the ones before it with Compose's merge rules. Mappings merge key by key;
//! a scalar, `command`, `entrypoint` and a health check's `test` are replaced; `environment`,
//! `labels`, `extra_hosts` and the like merge by their keys (in either form, list or mapping);
//! `volumes` merge by their target, `secrets` and `configs` by their source, `ports` and the
//! other lists are appended (without repeating an item). Keys keep where they are written, so
//! an error or a note still points at the file and line that gave the value. A service's
//! `extends` is laid under it the same way ([`extends`]).

use super::error::ComposeError;
use super::yaml::{Mapping, Value};
use super::Problem;

/// Lists replaced whole by a later file.
const REPLACED: &[&str] = &["command", "entrypoint", "test", "args"];
/// Lists of `KEY=value` (or `KEY`) that merge by key, like the mappings they may also be.
const BY_KEY: &[&str] = &[
    "environment",
    "labels",
    "annotations",
    "extra_hosts",
    "sysctls",
];

/// `over` laid over `base`; `key` is the key both are the values of ("" at the top).
pub fn merge(base: &mut Value, over: Value, key: &str) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, at, v) in o.into_entries() {
                if b.get(&k).is_some() {
                    let existing = b.iter_mut().find(|(name, _)| *name == k);
                    merge(existing.expect("just found").1, v, &k);
                } else {
                    b.push(k, at, v);
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) if !REPLACED.contains(&key) => {
            let same: fn(&Value, &Value) -> bool = match key {
                "volumes" => |a, b| target(a).is_some() && target(a) == target(b),
                "secrets" | "configs" => |a, b| source(a).is_some() && source(a) == source(b),
                _ if BY_KEY.contains(&key) => |a, b| name(a).is_some() && name(a) == name(b),
                _ => |a, b| a == b,
            };
            for item in o {
                match b.iter_mut().find(|e| same(e, &item)) {
                    Some(existing) => *existing = item,
                    None => b.push(item),
                }
            }
        }
        (b @ Value::Mapping(_), Value::Sequence(o)) if BY_KEY.contains(&key) => {
            merge(b, Value::Mapping(pairs(o)), key)
        }
        (b @ Value::Sequence(_), o @ Value::Mapping(_)) if BY_KEY.contains(&key) => {
            let Value::Sequence(items) = std::mem::take(b) else {
                unreachable!("matched a sequence")
            };
            *b = Value::Mapping(pairs(items));
            merge(b, o, key)
        }
        (b, o) => *b = o,
    }
}

/// `KEY=value` items as a mapping (`KEY` alone: null), where the list is.
fn pairs(items: Vec<Value>) -> Mapping {
    let mut m = Mapping::default();
    for item in items {
        let Some(text) = item.as_str() else { continue };
        let (k, v) = match text.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (text.to_string(), Value::Null),
        };
        let at = super::yaml::Mark { line: 1, column: 1 };
        m.push(k, at, v);
    }
    m
}

/// `KEY` of `KEY=value` (or of `KEY:value`, an `extra_hosts` entry).
fn name(v: &Value) -> Option<&str> {
    let s = v.as_str()?;
    Some(s.split(['=', ':']).next().unwrap_or(s))
}

/// A volume's target: `src:/target[:mode]`, `/target`, or `{ target }`.
fn target(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => s.split(':').nth(1).or(Some(s.as_str())),
        _ => v.get("target")?.as_str(),
    }
}

/// A secret's or config's source: `NAME` or `{ source }`.
fn source(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        _ => v.get("source")?.as_str(),
    }
}

/// Reads the service `service` of another Compose file (`extends: { file }`), its keys checked.
pub type Other<'a> = &'a dyn Fn(&str, &str) -> Result<Value, ComposeError>;

/// Lays each service's `extends` under it (the extended service's keys, then its own over
/// them, by the rules of [`merge`]), in this file or another (`file:`); a cycle is an error.
pub fn extends(value: &mut Value, other: Other) -> Result<(), Problem> {
    let at = |name: &str, e| (["services", name, "extends"].map(String::from).to_vec(), e);
    let Some(Value::Mapping(services)) = value.get_mut("services") else {
        return Ok(());
    };
    let names: Vec<String> = services.iter().map(|(n, _)| n.to_string()).collect();
    loop {
        let waiting: Vec<String> = names
            .iter()
            .filter(|n| services.get(n).is_some_and(|s| s.get("extends").is_some()))
            .cloned()
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let mut progressed = false;
        for name in &waiting {
            let svc = services.get(name).expect("a service");
            let (base, file) = extended(svc.get("extends").expect("waiting"))
                .ok_or_else(|| at(name, ComposeError::ExtendsForm))?;
            let base_value = match file {
                Some(file) => other(&file, &base).map_err(|e| at(name, e))?,
                None => match services.get(&base) {
                    None => {
                        let e = ComposeError::ExtendsUnknown {
                            service: base,
                            file: "this file".into(),
                            services: names.join(", "),
                        };
                        return Err(at(name, e));
                    }
                    // Its own `extends` first.
                    Some(b) if b.get("extends").is_some() => continue,
                    Some(b) => b.clone(),
                },
            };
            let own = services
                .iter_mut()
                .find(|(n, _)| n == name)
                .expect("a service")
                .1;
            if let Some(m) = own.as_mapping_mut() {
                m.remove("extends");
            }
            let mut merged = base_value;
            merge(&mut merged, std::mem::take(own), "");
            *own = merged;
            progressed = true;
        }
        if !progressed {
            return Err(at(
                &waiting[0],
                ComposeError::ExtendsCycle {
                    services: waiting.join(", "),
                },
            ));
        }
    }
}

/// `extends: NAME` or `{ service: NAME, file: PATH }`: (the service, its file).
fn extended(v: &Value) -> Option<(String, Option<String>)> {
    match v {
        Value::String(s) => Some((s.clone(), None)),
        Value::Mapping(_) => {
            let service = v.get("service")?.as_str()?.to_string();
            let file = v.get("file").and_then(Value::as_str).map(str::to_string);
            Some((service, file))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        super::super::yaml::parse(text).unwrap()
    }

    #[test]
    fn a_later_file_is_laid_over_by_composes_rules() {
        let mut base = yaml("services:\n  web:\n    image: a\n    command: [x, y]\n    ports: [\"80\"]\n    environment: [A=1, B=2]\n    volumes: [\"./a:/data\", \"logs:/logs\"]\n    build: { context: ., target: dev }\n");
        let over = yaml("services:\n  web:\n    image: b\n    command: [z]\n    ports: [\"443\"]\n    environment: { B: \"3\", C: \"4\" }\n    volumes: [\"./b:/data\"]\n    build: { target: prod }\n  db:\n    image: c\n");
        merge(&mut base, over, "");
        let expected = yaml("services:\n  web:\n    image: b\n    command: [z]\n    ports: [\"80\", \"443\"]\n    environment: { A: \"1\", B: \"3\", C: \"4\" }\n    volumes: [\"./b:/data\", \"logs:/logs\"]\n    build: { context: ., target: prod }\n  db:\n    image: c\n");
        assert_eq!(strip(&base), strip(&expected));
    }

    /// The value without where its keys are (for comparing).
    fn strip(v: &Value) -> String {
        match v {
            Value::Mapping(m) => {
                let inner: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", strip(v)))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            Value::Sequence(items) => {
                let inner: Vec<String> = items.iter().map(strip).collect();
                format!("[{}]", inner.join(", "))
            }
            other => format!("{other:?}"),
        }
    }
}
