//! What aftershock does with every key of the Compose specification: one declaration per key
//! ([`Key`], in the tables below), saying whether it is honoured (mapped to the plan by
//! [`super::convert`]), ignored with the reason the user is shown (a [`super::Note`]: what is
//! accepted but ignored is said, never dropped), or refused because honouring it is not done and
//! ignoring it would change the verdicts (the error names why and the workaround). A key the
//! tables do not hold is not Compose (a typo): refused with the keys allowed there. A key
//! starting with `x-` (an extension) is allowed anywhere.

use super::error::ComposeError;
use super::yaml::Value;

/// What aftershock does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Mapped to the plan ([`super::convert`]).
    Honoured,
    /// Accepted and not acted on; the reason is shown in the plan.
    Ignored(&'static str),
    /// Not accepted: ignoring it would change what the run observes.
    Refused {
        why: &'static str,
        workaround: &'static str,
    },
}

/// A Compose key: its name, what aftershock does with it, and the shape of its value.
pub struct Key {
    pub name: &'static str,
    pub treatment: Treatment,
    pub inner: Shape,
}

/// The keys a value may hold.
pub enum Shape {
    /// Anything (a scalar, a list, or a mapping read as a whole).
    Any,
    /// A mapping of these keys.
    Keys(&'static [Key]),
    /// A mapping whose keys are names (services, volumes), each value of this shape.
    Each(&'static Shape),
    /// A list whose items (when they are mappings) have this shape.
    Items(&'static Shape),
    /// A list (taken as a whole) or a mapping whose values have this shape.
    ListOrEach(&'static Shape),
}

use Shape::*;

const fn honoured(name: &'static str, inner: Shape) -> Key {
    Key {
        name,
        treatment: Treatment::Honoured,
        inner,
    }
}

const fn ignored(name: &'static str, reason: &'static str) -> Key {
    Key {
        name,
        treatment: Treatment::Ignored(reason),
        inner: Any,
    }
}

const fn refused(name: &'static str, why: &'static str, workaround: &'static str) -> Key {
    Key {
        name,
        treatment: Treatment::Refused { why, workaround },
        inner: Any,
    }
}

const ONE_NETWORK: &str =
    "every service is on the run's own network (and on the networks of the file it names)";
const RUN_ADDRESSES: &str = "the run gives each replica its own address on each network";
const RUN_NETWORKS: &str = "the run creates a bridge network of its own for each of the file's networks, with the engine's defaults, and removes it at teardown";
const LIMITS_ONLY: &str = "only `mem_limit`/`cpus` (or `deploy.resources.limits`) are applied";
const DEFAULT_SECURITY: &str = "replicas run with the engine's default capabilities and security profile; a service that needs more does not become ready (the run says UNKNOWN, never a wrong verdict)";
const NAMES: &str = "the run names its own containers, scoped to the run so two runs never collide; other services reach this one by its service name and network aliases (add this name to `networks: { NAME: { aliases: [...] } }` if they use it)";
const BUILD_ONLY: &str =
    "the image is built with the classic builder from `context`, `dockerfile` and `args`";
const SWARM: &str = "a Swarm setting: `docker compose` ignores it too";
const MOUNT_DETAIL: &str =
    "mount details beyond source, target and read-only are the engine's defaults";

const HEALTHCHECK: Shape = Keys(&[
    honoured("test", Any),
    honoured("interval", Any),
    honoured("timeout", Any),
    honoured("retries", Any),
    honoured("start_period", Any),
    honoured("start_interval", Any),
    honoured("disable", Any),
]);
const LIMITS: Shape = Keys(&[
    honoured("memory", Any),
    honoured("cpus", Any),
    ignored("pids", LIMITS_ONLY),
    ignored("devices", LIMITS_ONLY),
]);
const RESOURCES: Shape = Keys(&[
    honoured("limits", LIMITS),
    ignored(
        "reservations",
        "reservations place containers in a Swarm; the run's engine runs them all",
    ),
]);
const DEPLOY: Shape = Keys(&[
    honoured("replicas", Any),
    honoured("resources", RESOURCES),
    ignored("restart_policy", "`restart` is honoured; Swarm's restart policy is not (`docker compose` uses `restart` too)"),
    ignored("placement", SWARM),
    ignored("update_config", SWARM),
    ignored("rollback_config", SWARM),
    ignored("mode", SWARM),
    ignored("endpoint_mode", SWARM),
    ignored("labels", SWARM),
]);
const BUILD: Shape = Keys(&[
    honoured("context", Any),
    honoured("dockerfile", Any),
    honoured("args", Any),
    honoured("target", Any),
    refused(
        "dockerfile_inline",
        "the classic builder reads a Dockerfile from the context",
        "write the Dockerfile to a file and name it in `dockerfile`",
    ),
    refused(
        "additional_contexts",
        "the classic builder has one context",
        "build the image beforehand and name it in `image`",
    ),
    ignored("cache_from", BUILD_ONLY),
    ignored("cache_to", BUILD_ONLY),
    ignored("labels", BUILD_ONLY),
    ignored("network", BUILD_ONLY),
    ignored("shm_size", BUILD_ONLY),
    ignored("extra_hosts", BUILD_ONLY),
    ignored("isolation", BUILD_ONLY),
    ignored("platforms", BUILD_ONLY),
    ignored("privileged", BUILD_ONLY),
    ignored("pull", BUILD_ONLY),
    ignored("no_cache", BUILD_ONLY),
    ignored("secrets", BUILD_ONLY),
    ignored("ssh", BUILD_ONLY),
    ignored("tags", BUILD_ONLY),
    ignored("ulimits", BUILD_ONLY),
]);
const FILE_MOUNT: Shape = Keys(&[
    honoured("source", Any),
    honoured("target", Any),
    ignored("uid", MOUNT_DETAIL),
    ignored("gid", MOUNT_DETAIL),
    ignored("mode", MOUNT_DETAIL),
]);
const VOLUME_MOUNT: Shape = Keys(&[
    honoured("type", Any),
    honoured("source", Any),
    honoured("target", Any),
    honoured("read_only", Any),
    ignored("bind", MOUNT_DETAIL),
    ignored("volume", MOUNT_DETAIL),
    ignored("tmpfs", MOUNT_DETAIL),
    ignored("consistency", MOUNT_DETAIL),
]);
const DEPENDS_ON: Shape = Keys(&[
    honoured("condition", Any),
    honoured("required", Any),
    ignored("restart", "a restarted dependency does not restart this service: the faults' effects are what the run observes"),
]);
const SERVICE_NETWORK: Shape = Keys(&[
    honoured("aliases", Any),
    ignored("ipv4_address", RUN_ADDRESSES),
    ignored("ipv6_address", RUN_ADDRESSES),
    ignored("link_local_ips", RUN_ADDRESSES),
    ignored("mac_address", RUN_ADDRESSES),
    ignored("priority", RUN_ADDRESSES),
    ignored("gw_priority", RUN_ADDRESSES),
    ignored("driver_opts", RUN_ADDRESSES),
    ignored("interface_name", RUN_ADDRESSES),
]);

/// A service's keys.
pub const SERVICE: Shape = Keys(&[
    honoured("image", Any),
    honoured("build", BUILD),
    honoured("command", Any),
    honoured("entrypoint", Any),
    honoured("environment", Any),
    honoured("env_file", Any),
    honoured("volumes", Items(&VOLUME_MOUNT)),
    honoured("healthcheck", HEALTHCHECK),
    honoured("deploy", DEPLOY),
    honoured("scale", Any),
    honoured("mem_limit", Any),
    honoured("cpus", Any),
    honoured("oom_score_adj", Any),
    honoured("depends_on", ListOrEach(&DEPENDS_ON)),
    honoured("networks", ListOrEach(&SERVICE_NETWORK)),
    honoured("restart", Any),
    honoured("user", Any),
    honoured("working_dir", Any),
    honoured("profiles", Any),
    // On one user-defined network every port is reachable: `expose` only documents.
    honoured("expose", Any),
    // Said in a note: nothing is published; the container ports are probe targets.
    honoured("ports", Any),
    // Said in a note: a network alias, not the container's name.
    honoured("container_name", Any),
    ignored("hostname", NAMES),
    ignored("domainname", NAMES),
    honoured("secrets", Items(&FILE_MOUNT)),
    honoured("configs", Items(&FILE_MOUNT)),
    honoured("stop_signal", Any),
    honoured("stop_grace_period", Any),
    ignored("cap_add", DEFAULT_SECURITY),
    ignored("cap_drop", DEFAULT_SECURITY),
    ignored("privileged", DEFAULT_SECURITY),
    ignored("security_opt", DEFAULT_SECURITY),
    ignored("userns_mode", DEFAULT_SECURITY),
    ignored("devices", DEFAULT_SECURITY),
    ignored("device_cgroup_rules", DEFAULT_SECURITY),
    ignored("gpus", DEFAULT_SECURITY),
    ignored("read_only", "the replica's root file system is writable"),
    ignored("sysctls", "the engine's default kernel parameters apply"),
    ignored("ulimits", "the engine's default limits apply"),
    ignored("shm_size", "the engine's default /dev/shm (64 MiB) applies"),
    ignored("tmpfs", "no tmpfs is mounted: the path is in the replica's writable layer"),
    ignored("init", "no init process: the main process is PID 1 (as without `init`)"),
    ignored("labels", "labels are for other tools; the run labels its containers with its own id"),
    ignored("annotations", "annotations are for other tools"),
    ignored("label_file", "labels are for other tools"),
    ignored("logging", "the run reads each replica's output itself; the engine's default log driver applies"),
    ignored("network_mode", ONE_NETWORK),
    ignored("links", "every service reaches every other by name on the run's network"),
    ignored("external_links", ONE_NETWORK),
    ignored("dns", ONE_NETWORK),
    ignored("dns_search", ONE_NETWORK),
    ignored("dns_opt", ONE_NETWORK),
    ignored("extra_hosts", ONE_NETWORK),
    ignored("mac_address", ONE_NETWORK),
    ignored("stdin_open", "no terminal is attached to a replica"),
    ignored("tty", "no terminal is attached to a replica"),
    ignored("attach", "the run reads each replica's output itself"),
    ignored("platform", "images are built and run for the engine's own platform"),
    ignored("runtime", "the engine's default runtime runs the replicas"),
    ignored("pull_policy", "an image is found in the local engine or built (`aftershock` pulls nothing unasked)"),
    ignored("pid", "each replica has its own process namespace"),
    ignored("ipc", "each replica has its own IPC namespace"),
    ignored("uts", "each replica has its own hostname namespace"),
    ignored("cgroup", "each replica has its own cgroup namespace"),
    ignored("cgroup_parent", "the engine's default cgroup parent applies"),
    ignored("isolation", "the engine's default isolation applies"),
    ignored("mem_reservation", LIMITS_ONLY),
    ignored("memswap_limit", "memory and swap are limited together by `mem_limit` (a leak ends in an OOM kill, not in swapping)"),
    ignored("mem_swappiness", LIMITS_ONLY),
    ignored("cpu_shares", LIMITS_ONLY),
    ignored("cpu_quota", LIMITS_ONLY),
    ignored("cpu_period", LIMITS_ONLY),
    ignored("cpu_rt_runtime", LIMITS_ONLY),
    ignored("cpu_rt_period", LIMITS_ONLY),
    ignored("cpu_count", LIMITS_ONLY),
    ignored("cpu_percent", LIMITS_ONLY),
    ignored("cpuset", LIMITS_ONLY),
    ignored("blkio_config", LIMITS_ONLY),
    ignored("pids_limit", LIMITS_ONLY),
    ignored("oom_kill_disable", "the OOM killer stays on: the leak archetype is judged by it"),
    ignored("storage_opt", "the engine's default storage options apply"),
    ignored("develop", "`develop.watch` is for development; nothing is watched"),
    ignored("post_start", "lifecycle hooks are not run"),
    ignored("pre_stop", "lifecycle hooks are not run"),
    ignored("use_api_socket", "the engine's socket is not mounted"),
    // Resolved before the rest ([`super::merge::extends`]): the extended service's keys are
    // laid under this one's.
    honoured("extends", Any),
    refused("volumes_from", "another service's volumes are not mounted in this one", "mount the same named volume in both services"),
    refused("provider", "a service run by a provider plugin is not a container the run can fault", "run it as a container (`image`)"),
    refused("models", "AI models are not run", "remove it, or run the model server as a service"),
]);

const TOP_NETWORK: Shape = Keys(&[
    ignored("driver", RUN_NETWORKS),
    ignored("driver_opts", RUN_NETWORKS),
    ignored("ipam", RUN_NETWORKS),
    ignored("external", RUN_NETWORKS),
    ignored("internal", RUN_NETWORKS),
    ignored("attachable", RUN_NETWORKS),
    ignored("enable_ipv4", RUN_NETWORKS),
    ignored("enable_ipv6", RUN_NETWORKS),
    ignored("labels", RUN_NETWORKS),
    ignored("name", RUN_NETWORKS),
]);
const RUN_VOLUMES: &str =
    "the run creates its own volumes, one per replica, and removes them at teardown";
const TOP_VOLUME: Shape = Keys(&[
    ignored("driver", RUN_VOLUMES),
    ignored("driver_opts", RUN_VOLUMES),
    ignored("external", RUN_VOLUMES),
    ignored("labels", RUN_VOLUMES),
    ignored("name", RUN_VOLUMES),
]);
const NOT_MOUNTED: &str =
    "only secrets and configs with a `file:` are mounted (see the services that use them)";
const TOP_SECRET: Shape = Keys(&[
    honoured("file", Any),
    ignored("environment", NOT_MOUNTED),
    ignored("content", NOT_MOUNTED),
    ignored("external", NOT_MOUNTED),
    ignored("name", NOT_MOUNTED),
    ignored("labels", NOT_MOUNTED),
    ignored("driver", NOT_MOUNTED),
    ignored("driver_opts", NOT_MOUNTED),
    ignored("template_driver", NOT_MOUNTED),
]);

/// The whole file's keys.
pub const FILE: Shape = Keys(&[
    ignored(
        "version",
        "obsolete in the Compose specification; `docker compose` ignores it too",
    ),
    ignored("name", "the run names its own project, scoped to the run"),
    honoured("services", Each(&SERVICE)),
    // A named volume may be a disk that can lose power (`x-aftershock`).
    honoured("volumes", Each(&TOP_VOLUME)),
    honoured("networks", Each(&TOP_NETWORK)),
    honoured("secrets", Each(&TOP_SECRET)),
    honoured("configs", Each(&TOP_SECRET)),
    // Each included file read and checked, its relative paths made its own (`include.rs`).
    honoured("include", Any),
    refused(
        "models",
        "AI models are not run",
        "remove it, or run the model server as a service",
    ),
]);

/// A key accepted and not acted on: its path in the file, and why.
pub type Ignored = (Vec<String>, &'static str);

/// Checks `value` against `shape`: every ignored key is taken out of `value` (so the typed
/// reading never sees it) and listed; the first unknown or refused key is an error.
pub fn check(
    value: &mut Value,
    shape: &Shape,
    path: &mut Vec<String>,
    out: &mut Vec<Ignored>,
) -> Result<(), (Vec<String>, ComposeError)> {
    match (shape, value) {
        (Keys(keys), Value::Mapping(map)) => {
            let mut drop = vec![];
            for (k, v) in map.iter_mut() {
                let name = k.to_string();
                if name.starts_with("x-") {
                    continue;
                }
                path.push(name.clone());
                let Some(key) = keys.iter().find(|key| key.name == name) else {
                    let allowed = keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ");
                    let key = path.join(".");
                    return Err((path.clone(), ComposeError::UnknownKey { key, allowed }));
                };
                match key.treatment {
                    Treatment::Honoured => check(v, &key.inner, path, out)?,
                    Treatment::Ignored(reason) => {
                        out.push((path.clone(), reason));
                        drop.push(name);
                    }
                    Treatment::Refused { why, workaround } => {
                        let key = path.join(".");
                        let e = ComposeError::Refused {
                            key,
                            why,
                            workaround,
                        };
                        return Err((path.clone(), e));
                    }
                }
                path.pop();
            }
            for name in drop {
                map.remove(&name);
            }
            Ok(())
        }
        (Each(inner) | ListOrEach(inner), Value::Mapping(map)) => {
            for (k, v) in map.iter_mut() {
                path.push(k.to_string());
                check(v, inner, path, out)?;
                path.pop();
            }
            Ok(())
        }
        (Items(inner), Value::Sequence(items)) => {
            for v in items {
                check(v, inner, path, out)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Every key of `shape` (recursively) by treatment: (honoured, ignored, refused).
pub fn count(shape: &Shape) -> (usize, usize, usize) {
    let mut n = (0, 0, 0);
    match shape {
        Keys(keys) => {
            for key in *keys {
                match key.treatment {
                    Treatment::Honoured => n.0 += 1,
                    Treatment::Ignored(_) => n.1 += 1,
                    Treatment::Refused { .. } => n.2 += 1,
                }
                let inner = count(&key.inner);
                n = (n.0 + inner.0, n.1 + inner.1, n.2 + inner.2);
            }
        }
        Each(inner) | Items(inner) | ListOrEach(inner) => n = count(inner),
        Any => {}
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "services:\n  db:\n    image: x\n    tty: true\n    # a comment\n    deploy:\n      placement: {}\n";

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ignored_keys_are_listed_and_taken_out_and_an_unknown_key_is_refused() {
        let mut value = super::super::yaml::parse(TEXT).unwrap();
        let mut ignored = vec![];
        check(&mut value, &FILE, &mut vec![], &mut ignored).unwrap();
        let keys: Vec<Vec<String>> = ignored.drain(..).map(|(p, _)| p).collect();
        assert_eq!(
            keys,
            [
                path(&["services", "db", "tty"]),
                path(&["services", "db", "deploy", "placement"])
            ]
        );
        assert!(value
            .get("services")
            .unwrap()
            .get("db")
            .unwrap()
            .get("tty")
            .is_none());
        let mut value =
            super::super::yaml::parse("services:\n  db:\n    deploy: { nope: 1 }\n").unwrap();
        let (p, e) = check(&mut value, &FILE, &mut vec![], &mut ignored).unwrap_err();
        assert_eq!(p, path(&["services", "db", "deploy", "nope"]));
        assert!(
            e.to_string()
                .contains("replicas, resources, restart_policy"),
            "{e}"
        );
    }

    #[test]
    fn every_key_is_declared_once_where_it_is() {
        fn unique(shape: &Shape) {
            match shape {
                Keys(keys) => {
                    for (i, k) in keys.iter().enumerate() {
                        assert!(
                            keys[..i].iter().all(|o| o.name != k.name),
                            "`{}` twice",
                            k.name
                        );
                        unique(&k.inner);
                    }
                }
                Each(inner) | Items(inner) | ListOrEach(inner) => unique(inner),
                Any => {}
            }
        }
        unique(&FILE);
        let (honoured, ignored, refused) = count(&FILE);
        assert!(
            honoured >= 30 && ignored >= 100 && refused >= 5,
            "{honoured}/{ignored}/{refused}"
        );
    }
}
