//! Which Compose keys aftershock understands, and where a key is in the file's text. A key
//! not listed here is refused with its line: nothing in a Compose file is silently dropped.

use serde_yaml::Value;

/// The keys a mapping may hold. A key starting with `x-` (an extension) is allowed anywhere.
pub enum Shape {
    /// Anything (a scalar, a list, or a mapping read as a whole).
    Any,
    /// A mapping of these keys, each with its own shape.
    Keys(&'static [(&'static str, Shape)]),
    /// A mapping whose keys are names (services, volumes), each value of this shape.
    Each(&'static Shape),
    /// A list whose items (when they are mappings) have this shape.
    Items(&'static Shape),
    /// A list or a mapping: the list is taken as a whole, the mapping's values have this shape.
    ListOrEach(&'static Shape),
}

use Shape::*;

const HEALTHCHECK: Shape = Keys(&[
    ("test", Any),
    ("interval", Any),
    ("timeout", Any),
    ("retries", Any),
    ("start_period", Any),
    ("start_interval", Any),
    ("disable", Any),
]);
const LIMITS: Shape = Keys(&[("memory", Any), ("cpus", Any)]);
const DEPLOY: Shape = Keys(&[
    ("replicas", Any),
    ("resources", Keys(&[("limits", LIMITS)])),
]);
const BUILD: Shape = Keys(&[("context", Any), ("dockerfile", Any), ("args", Any)]);
const VOLUME_MOUNT: Shape = Keys(&[("type", Any), ("source", Any), ("target", Any)]);

/// A service's keys.
pub const SERVICE_KEYS: &[(&str, Shape)] = &[
    ("image", Any),
    ("build", BUILD),
    ("command", Any),
    ("entrypoint", Any),
    ("environment", Any),
    ("env_file", Any),
    ("volumes", Items(&VOLUME_MOUNT)),
    ("healthcheck", HEALTHCHECK),
    ("deploy", DEPLOY),
    ("scale", Any),
    ("mem_limit", Any),
    ("cpus", Any),
    ("oom_score_adj", Any),
    (
        "depends_on",
        ListOrEach(&Keys(&[("condition", Any), ("required", Any)])),
    ),
    ("networks", ListOrEach(&Keys(&[("aliases", Any)]))),
    ("restart", Any),
    ("user", Any),
    ("working_dir", Any),
    // On one user-defined network every port is reachable: `expose` only documents.
    ("expose", Any),
];

/// The whole file's keys.
pub const FILE: Shape = Keys(&[
    ("version", Any),
    ("name", Any),
    ("services", Each(&Keys(SERVICE_KEYS))),
    // A top-level volume: only `x-aftershock` (a disk that can lose power).
    ("volumes", Each(&Keys(&[]))),
    // Every service is on the run's one network; a network may only be named.
    ("networks", Each(&Keys(&[]))),
]);

/// The path of the first key `value` holds that `shape` does not allow, and the keys allowed
/// there.
pub fn unsupported(value: &Value, shape: &Shape) -> Option<(Vec<String>, Vec<&'static str>)> {
    match (shape, value) {
        (Keys(keys), Value::Mapping(map)) => {
            for (k, v) in map {
                let name = key_text(k);
                if name.starts_with("x-") {
                    continue;
                }
                let Some((_, inner)) = keys.iter().find(|(n, _)| *n == name) else {
                    return Some((vec![name], keys.iter().map(|(n, _)| *n).collect()));
                };
                if let Some((mut path, allowed)) = unsupported(v, inner) {
                    path.insert(0, name);
                    return Some((path, allowed));
                }
            }
            None
        }
        (Each(inner) | ListOrEach(inner), Value::Mapping(map)) => map.iter().find_map(|(k, v)| {
            let (mut path, allowed) = unsupported(v, inner)?;
            path.insert(0, key_text(k));
            Some((path, allowed))
        }),
        (Items(inner), Value::Sequence(items)) => items.iter().find_map(|v| unsupported(v, inner)),
        _ => None,
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// 1-based line and column of the key at `path` (block-style YAML), or of the deepest
/// ancestor found; (1, 1) when not even the first key is.
pub fn locate(text: &str, path: &[String]) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = (1, 1);
    let mut from = 0;
    let mut parent_indent: Option<usize> = None;
    for key in path {
        let mut child_indent = None;
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            let child = *child_indent.get_or_insert(indent);
            if indent == child && is_key(trimmed, key) {
                hit = Some((i, indent));
                break;
            }
        }
        let Some((i, indent)) = hit else { break };
        found = (i + 1, indent + 1);
        from = i + 1;
        parent_indent = Some(indent);
    }
    found
}

fn is_key(trimmed: &str, key: &str) -> bool {
    [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .any(|k| {
            trimmed
                .strip_prefix(k.as_str())
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "services:\n  db:\n    image: x\n    # a comment\n    deploy:\n      placement: {}\n  api:\n    image: y\n    privileged: true\n";

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_nested_keys_in_their_service() {
        assert_eq!(
            locate(TEXT, &path(&["services", "api", "privileged"])),
            (9, 5)
        );
        assert_eq!(
            locate(TEXT, &path(&["services", "db", "deploy", "placement"])),
            (6, 7)
        );
        // Not under `db`: the deepest ancestor found.
        assert_eq!(
            locate(TEXT, &path(&["services", "db", "privileged"])),
            (2, 3)
        );
    }

    #[test]
    fn refuses_the_first_unknown_key_with_its_path() {
        let value: Value = serde_yaml::from_str(TEXT).unwrap();
        let (p, allowed) = unsupported(&value, &FILE).unwrap();
        assert_eq!(p, path(&["services", "db", "deploy", "placement"]));
        assert_eq!(allowed, vec!["replicas", "resources"]);
    }
}
