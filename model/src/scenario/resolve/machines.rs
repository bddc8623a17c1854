//! Machines and placement: every replica of a `machine` service and every
//! `[[topology.machine]]` (an engine by URL) is a machine; a service's `machine` key places
//! its replicas on them, one replica of a service per machine (placed services use the
//! machine's network, so two replicas of one service there would want the same ports).

use super::{at_name, Invalid};
use crate::scenario::engine_url::EngineUrl;
use crate::scenario::file::{self, MachineField};
use crate::scenario::plan::{Machine, MachineEngine, MachineId, Service, ServiceKind};
use crate::scenario::Preset;
use std::collections::HashMap;

/// The plan's machines: the `machine` services' replicas, then the engines given by URL.
pub(super) fn resolve(s: &file::Scenario, services: &[Service]) -> Result<Vec<Machine>, Invalid> {
    let mut machines = vec![];
    for svc in services
        .iter()
        .filter(|x| matches!(x.kind, ServiceKind::Machine(_)))
    {
        for r in &svc.replicas {
            machines.push((r.clone(), MachineEngine::Started(svc.id)));
        }
    }
    for m in &s.topology.machines {
        let bad = |p: String| at_name(&m.name, format!("machine `{}`: {p}", m.name));
        if m.name.is_empty()
            || !m
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(bad(
                "a name must be non-empty and use only a-z, 0-9 and -".into()
            ));
        }
        let url = EngineUrl::parse(
            &m.url,
            m.tls.clone().map(Into::into),
            m.ssh_key.clone().map(Into::into),
        )
        .map_err(|e| bad(e.to_string()))?;
        insecure(m, &url).map_err(bad)?;
        let address = match (&m.address, url.host()) {
            (Some(a), _) => a.clone(),
            (None, Some(h)) => h.to_string(),
            (None, None) => {
                return Err(bad(
                    "a unix:// engine needs `address`: where what runs on it is reached".into(),
                ))
            }
        };
        let insecure = m.insecure;
        let engine = MachineEngine::Url {
            url,
            address,
            insecure,
        };
        machines.push((m.name.clone(), engine));
    }
    let mut seen = HashMap::new();
    for (name, _) in &machines {
        if seen.insert(name.clone(), ()).is_some() {
            return Err(at_name(name, format!("two machines are named `{name}` (a `[[topology.machine]]` and a replica of a machine service, or two tables); names must be unique")));
        }
    }
    Ok(machines
        .into_iter()
        .enumerate()
        .map(|(i, (name, engine))| Machine {
            id: MachineId(i),
            name,
            engine,
        })
        .collect())
}

/// A plain `tcp://` engine is taken only on loopback or with `insecure = true`: whoever
/// reaches its address (a service under test, on the run's network or the machine's) could
/// start a container there with every privilege the engine has. `insecure` says nothing on
/// any other URL, so it is refused there.
fn insecure(m: &file::MachineDecl, url: &EngineUrl) -> Result<(), String> {
    match (url, m.insecure) {
        (EngineUrl::Tcp { .. }, true) => Ok(()),
        (_, true) => Err(format!(
            "`insecure = true` is only for a plain tcp:// engine, not `{url}`: remove it"
        )),
        (EngineUrl::Tcp { host, port }, false) if url.plain_off_loopback() => Err(format!(
            "`{url}` is plain HTTP without TLS: whoever reaches {host}:{port} (a container under \
             test included) controls that engine. Use `url = \"https://{host}:2376\"` with \
             `tls = \"DIR\"` (ca.pem, cert.pem, key.pem; the engine runs `dockerd --tlsverify`), \
             or `ssh://`; or accept the risk with `insecure = true` on this machine (the run's \
             header and report then say so)"
        )),
        _ => Ok(()),
    }
}

/// Places the services whose `machine` names machines: one machine per replica.
pub(super) fn place(
    s: &file::Scenario,
    services: &mut [Service],
    machines: &[Machine],
) -> Result<(), Invalid> {
    for (i, svc) in s.topology.services.iter().enumerate() {
        let Some(MachineField::On(names)) = &svc.machine else {
            continue;
        };
        let placement = placement(&services[i], names, machines)
            .map_err(|p| at_name(&svc.name, format!("service `{}`: {p}", svc.name)))?;
        services[i].placement = placement;
    }
    shared_volumes_together(services, machines)?;
    ports_apart(services, machines)
}

/// A named volume that several Compose services share lives on one engine: every replica
/// that mounts it must be on the same machine (or all on the run's own engine).
fn shared_volumes_together(services: &[Service], machines: &[Machine]) -> Result<(), Invalid> {
    let mut seen: Vec<(&str, Option<usize>, &str)> = vec![];
    for svc in services {
        for (volume, _) in &svc.extras.shared_volumes {
            for i in 0..svc.replicas.len() {
                let on = svc.placement.get(i).map(|m| m.0);
                let first = seen.iter().find(|(v, _, _)| v == volume);
                match first {
                    Some((_, there, other)) if *there != on => {
                        let name = |m: Option<usize>| {
                            m.map_or("the run's own engine".to_string(), |m| {
                                format!("machine `{}`", machines[m].name)
                            })
                        };
                        return Err(at_name(&svc.name, format!("service `{}`: the named volume `{volume}` it shares with `{other}` lives on one engine, but `{other}` is on {} and this replica on {}: place the services that share it on one machine (`compose_placement`)", svc.name, name(*there), name(on))));
                    }
                    Some(_) => {}
                    None => seen.push((volume, on, &svc.name)),
                }
            }
        }
    }
    Ok(())
}

/// The port a service is known to listen on: its `ready` check's, else its preset's.
fn known_port(svc: &Service) -> Option<u16> {
    svc.ready_port().or(svc.preset().map(Preset::port))
}

/// What shares a machine's network must not share a port: the placed services, and the
/// machine's own engine where it listens on TCP.
fn ports_apart(services: &[Service], machines: &[Machine]) -> Result<(), Invalid> {
    for m in machines {
        let mut taken: Vec<(String, u16)> = vec![];
        match &m.engine {
            MachineEngine::Started(_) => taken.push((
                format!("machine `{}`'s engine", m.name),
                Preset::Machine.port(),
            )),
            MachineEngine::Url {
                url: EngineUrl::Tcp { port, .. } | EngineUrl::Https { port, .. },
                ..
            } => taken.push((format!("machine `{}`'s engine", m.name), *port)),
            MachineEngine::Url { .. } => {}
        }
        let here = services.iter().filter(|s| s.placement.contains(&m.id));
        for svc in here {
            let Some(port) = known_port(svc) else {
                continue;
            };
            if let Some((other, _)) = taken.iter().find(|(_, p)| *p == port) {
                return Err(at_name(&svc.name, format!("service `{}`: port {port} on machine `{}` is taken by {other} (placed services use the machine's network): place one of them on another machine", svc.name, m.name)));
            }
            taken.push((format!("service `{}`", svc.name), port));
        }
    }
    Ok(())
}

/// Why a service cannot be placed on the machines its `machine` names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PlacementError {
    #[error("an attached service runs where it was started; it takes no `machine`")]
    Attached,
    #[error("a disk is a loop device of the harness's host: a service placed on a machine cannot have one (yet)")]
    Disk,
    #[error("`machine` names a machine, but the topology has none: add a `preset = \"machine\"` service or a `[[topology.machine]]` with its engine's URL")]
    NoMachines,
    #[error("{machines} machines for {replicas} replicas: give one machine per replica")]
    Count { machines: usize, replicas: usize },
    #[error("{replicas} replicas on one machine (`{machine}`): a placed service uses the machine's network, so each replica needs a machine of its own: `machine = [\"a\", \"b\", …]`")]
    Shared { replicas: usize, machine: String },
    #[error("unknown machine `{name}`; expected one of: {}", known.join(", "))]
    Unknown { name: String, known: Vec<String> },
    #[error("two replicas on machine `{0}`: each replica needs a machine of its own")]
    Twice(String),
}

fn placement(
    svc: &Service,
    names: &[String],
    machines: &[Machine],
) -> Result<Vec<MachineId>, PlacementError> {
    if matches!(svc.kind, ServiceKind::Attached(_)) {
        return Err(PlacementError::Attached);
    }
    if svc.disk.is_some() {
        return Err(PlacementError::Disk);
    }
    if machines.is_empty() {
        return Err(PlacementError::NoMachines);
    }
    let replicas = svc.replicas.len();
    if names.len() != replicas && names.len() != 1 {
        return Err(PlacementError::Count {
            machines: names.len(),
            replicas,
        });
    }
    if names.len() == 1 && replicas > 1 {
        let machine = names[0].clone();
        return Err(PlacementError::Shared { replicas, machine });
    }
    let mut ids = vec![];
    for n in names {
        let m = machines.iter().find(|m| &m.name == n).ok_or_else(|| {
            let known = machines.iter().map(|m| m.name.clone()).collect();
            PlacementError::Unknown {
                name: n.clone(),
                known,
            }
        })?;
        if ids.contains(&m.id) {
            return Err(PlacementError::Twice(n.clone()));
        }
        ids.push(m.id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use crate::scenario::parse;
    use crate::scenario::plan::MachineEngine;

    const HEAD: &str = "name = \"t\"\nduration = \"10s\"\n";

    fn machines(extra: &str) -> String {
        format!(
            "{HEAD}[[topology.machine]]\nname = \"east\"\nurl = \"tcp://10.0.0.5:2375\"\ninsecure = true\n\n[[topology.machine]]\nname = \"west\"\nurl = \"ssh://root@10.0.0.6\"\n{extra}"
        )
    }

    #[test]
    fn services_are_placed_one_replica_per_machine() {
        let text = machines(
            "\n[[topology.service]]\nname = \"zk\"\npreset = \"zookeeper\"\nreplicas = 2\nmachine = [\"east\", \"west\"]\n\n[[topology.service]]\nname = \"api\"\npreset = \"toy-api\"\nuses = [\"zk\"]\nmachine = \"east\"\n",
        );
        let plan = parse("t.toml", &text).unwrap();
        let names: Vec<&str> = plan.machines.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["east", "west"]);
        assert_eq!(plan.placement("zk2").unwrap().name, "west");
        assert_eq!(plan.placement("api").unwrap().name, "east");
        match &plan.machines[1].engine {
            MachineEngine::Url { url, address, .. } => {
                assert_eq!(url.to_string(), "ssh://root@10.0.0.6");
                assert_eq!(address, "10.0.0.6");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_tcp_off_loopback_needs_insecure_and_is_marked() {
        let machine = |url: &str, extra: &str| {
            format!("{HEAD}[[topology.machine]]\nname = \"east\"\nurl = \"{url}\"\n{extra}\n[[topology.service]]\nname = \"web\"\nimage = \"memcached\"\nmachine = \"east\"\n")
        };
        let e = parse("t.toml", &machine("tcp://10.0.0.5:2375", ""))
            .unwrap_err()
            .to_string();
        for said in [
            "t.toml:4:",
            "machine `east`",
            "`tcp://10.0.0.5:2375` is plain HTTP without TLS",
            "https://10.0.0.5:2376",
            "tls = \"DIR\"",
            "insecure = true",
        ] {
            assert!(e.contains(said), "{said:?} not in: {e}");
        }
        let plan = parse("t.toml", &machine("tcp://10.0.0.5:2375", "insecure = true")).unwrap();
        assert_eq!(
            plan.insecure_machines(),
            [("east".to_string(), "tcp://10.0.0.5:2375".to_string())]
        );
        for local in ["tcp://127.0.0.1:2375", "tcp://localhost:2375"] {
            let plan = parse("t.toml", &machine(local, "")).unwrap();
            assert!(plan.insecure_machines().is_empty(), "{local}");
        }
        let ssh = parse("t.toml", &machine("ssh://root@10.0.0.5", "insecure = true"))
            .unwrap_err()
            .to_string();
        assert!(ssh.contains("only for a plain tcp:// engine"), "{ssh}");
        let tls = machine("https://10.0.0.5:2376", "tls = \"certs\"");
        assert!(parse("t.toml", &tls)
            .unwrap()
            .insecure_machines()
            .is_empty());
    }

    #[test]
    fn wrong_placements_are_refused_with_what_to_do() {
        let service = |extra: &str| {
            machines(&format!("\n[[topology.service]]\nname = \"zk\"\npreset = \"zookeeper\"\nreplicas = 2\n{extra}\n"))
        };
        let e = |text: String| parse("t.toml", &text).unwrap_err().to_string();
        assert!(
            e(service("machine = \"east\"")).contains("each replica needs a machine of its own")
        );
        assert!(e(service("machine = [\"east\", \"north\"]"))
            .contains("unknown machine `north`; expected one of: east, west"));
        assert!(
            e(service("machine = [\"east\", \"east\"]")).contains("two replicas on machine `east`")
        );
        let partition = "machine = [\"east\", \"west\"]\n\n[[fault]]\nname = \"p\"\nkind = \"partition\"\ntarget = \"zk\"\nat = \"1s\"";
        assert!(e(service(partition)).contains("machine-partition"));
        let cut =
            "\n[[fault]]\nname = \"p\"\nkind = \"machine-partition\"\ntarget = \"zk\"\nat = \"1s\"";
        assert!(e(service(cut)).contains("must be a service placed on machines"));
        let crash =
            "\n[[fault]]\nname = \"c\"\nkind = \"daemon-crash\"\ntarget = \"zk\"\nat = \"1s\"";
        assert!(e(service(crash)).contains("daemon-crash crashes machines' engines"));
        let placed = |fault: &str| {
            service(&format!("machine = [\"east\", \"west\"]\n\n[[fault]]\nname = \"f\"\ntarget = \"zk\"\nat = \"1s\"\n{fault}"))
        };
        assert!(parse("t.toml", &placed("kind = \"daemon-crash\"")).is_ok());
        assert!(parse(
            "t.toml",
            &placed("kind = \"netem\"\nloss_percent = 30.0\ndown_for = \"2s\"")
        )
        .is_ok());
        let delay = e(placed(
            "kind = \"netem\"\ndelay = \"50ms\"\ndown_for = \"2s\"",
        ));
        assert!(
            delay.contains("a `delay` there is not supported"),
            "{delay}"
        );
        let shared = format!("{HEAD}[[topology.machine]]\nname = \"east\"\nurl = \"tcp://10.0.0.5:2375\"\ninsecure = true\n\n[[topology.service]]\nname = \"a\"\npreset = \"memcached\"\nmachine = \"east\"\n\n[[topology.service]]\nname = \"b\"\nimage = \"memcached\"\nready = {{ tcp = 11211 }}\nmachine = \"east\"\n");
        let clash = e(shared);
        assert!(
            clash.contains("service `b`: port 11211 on machine `east` is taken by service `a`"),
            "{clash}"
        );
        let engine = format!("{HEAD}[[topology.machine]]\nname = \"east\"\nurl = \"tcp://10.0.0.5:11211\"\ninsecure = true\n\n[[topology.service]]\nname = \"a\"\npreset = \"memcached\"\nmachine = \"east\"\n");
        assert!(e(engine).contains("is taken by machine `east`'s engine"));
        let later = format!("{HEAD}[[topology.service]]\nname = \"web\"\nimage = \"memcached\"\nmachine = \"m\"\n\n[[topology.service]]\nname = \"m\"\npreset = \"machine\"\n");
        let plan = parse("t.toml", &later).unwrap();
        assert_eq!(
            plan.services[0].name, "m",
            "machines come up first, wherever they are declared"
        );
        let unix = format!("{HEAD}[[topology.machine]]\nname = \"local\"\nurl = \"unix:///var/run/docker.sock\"\n\n[[topology.service]]\nname = \"web\"\nimage = \"memcached\"\n");
        assert!(e(unix).contains("needs `address`"));
        let bad = format!("{HEAD}[[topology.machine]]\nname = \"x\"\nurl = \"10.0.0.1:2375\"\n\n[[topology.service]]\nname = \"web\"\nimage = \"memcached\"\n");
        let bad = e(bad);
        assert!(
            bad.contains("machine `x`") && bad.contains("not an engine URL"),
            "{bad}"
        );
    }
}
