//! Which Compose keys aftershock understands. A key not listed here is refused with its line
//! (where it is comes from [`super::yaml`]): nothing in a Compose file is silently dropped.

use super::yaml::Value;

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
            for (k, v) in map.iter() {
                let name = k.to_string();
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
            path.insert(0, k.to_string());
            Some((path, allowed))
        }),
        (Items(inner), Value::Sequence(items)) => items.iter().find_map(|v| unsupported(v, inner)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "services:\n  db:\n    image: x\n    # a comment\n    deploy:\n      placement: {}\n  api:\n    image: y\n    privileged: true\n";

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn refuses_the_first_unknown_key_with_its_path() {
        let value = super::super::yaml::parse(TEXT).unwrap();
        let (p, allowed) = unsupported(&value, &FILE).unwrap();
        assert_eq!(p, path(&["services", "db", "deploy", "placement"]));
        assert_eq!(allowed, vec!["replicas", "resources"]);
    }
}
