//! Where the engine-crash pair puts each Compose service on its machines, keeping a cluster a
//! cluster: a placed service runs with its machine's network, so a group's members (and a
//! service's replicas) each get a machine of their own, and two services that listen on the
//! same port never share one machine. Everything else shares the first machine it fits on.

use super::infer::{self, Group, Probe};
use crate::scenario::compose::Topology;
use crate::scenario::file::{self, Check};
use std::collections::{BTreeMap, BTreeSet};

/// The machines of the engine-crash pair and what runs on each.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The machines' names (the replicas of the machine service `m`).
    pub machines: Vec<String>,
    /// Each Compose service's machines (one per replica), in the file's order.
    pub on: Vec<(String, Vec<String>)>,
    /// Why not every service on one machine (empty when nothing kept them apart).
    pub why: Vec<String>,
}

impl Placement {
    /// `m1: etcd1, cache; m2: etcd2; …`.
    pub fn summary(&self) -> String {
        let mut parts = vec![];
        for m in &self.machines {
            let here: Vec<&str> = self
                .on
                .iter()
                .filter(|(_, ms)| ms.contains(m))
                .map(|(s, _)| s.as_str())
                .collect();
            parts.push(format!("{m}: {}", here.join(", ")));
        }
        parts.join("; ")
    }
}

/// The ports `s` is known to listen on: its probe's, the ones `expose` names, a recognised
/// store's.
fn ports(s: &file::Service, topology: &Topology, probe: &Probe) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    match &probe.check {
        Some(Check::Tcp(p)) | Some(Check::Http { port: p, .. }) => {
            ports.insert(*p);
        }
        _ => {}
    }
    if let Some(h) = topology.hints.get(&s.name) {
        ports.extend(h.expose.iter().copied());
    }
    if let Some((store, _)) = infer::store_of(s) {
        ports.insert(store.port);
    }
    ports
}

/// One machine being filled: the services on it (with the group each is in) and their ports.
#[derive(Default)]
struct Slot {
    services: Vec<(String, Option<String>)>,
    ports: BTreeSet<u16>,
}

/// Places every service of `topology`, replicas and group members first (each on a machine
/// holding no other replica or member of its own, nor a service sharing one of its ports), then
/// the rest, each on the first machine it fits on; a machine is added when none fits.
pub fn spread(
    topology: &Topology,
    groups: &[Group],
    probes: &BTreeMap<String, Probe>,
) -> Placement {
    let group_of = |name: &str| {
        groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == name))
            .map(|g| g.name.clone())
    };
    let spread_first = |s: &&file::Service| s.replicas > 1 || group_of(&s.name).is_some();
    let (first, rest): (Vec<&file::Service>, Vec<&file::Service>) =
        topology.services.iter().partition(spread_first);
    let mut slots: Vec<Slot> = vec![];
    let mut on: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut why: Vec<String> = vec![];
    for s in first.into_iter().chain(rest) {
        let group = group_of(&s.name);
        let ports = probes
            .get(&s.name)
            .map(|p| ports(s, topology, p))
            .unwrap_or_default();
        for _ in 0..s.replicas {
            let fits = |slot: &Slot| {
                let kin = slot
                    .services
                    .iter()
                    .any(|(n, g)| n == &s.name || (group.is_some() && *g == group));
                !kin && slot.ports.is_disjoint(&ports)
            };
            let i = match slots.iter().position(fits) {
                Some(i) => i,
                None => {
                    slots.push(Slot::default());
                    slots.len() - 1
                }
            };
            if i > 0 && s.replicas == 1 && group.is_none() {
                why.push(format!(
                    "`{}` shares a port ({}) with a service on every machine before it",
                    s.name,
                    ports
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            slots[i].services.push((s.name.clone(), group.clone()));
            slots[i].ports.extend(&ports);
            on.entry(s.name.clone()).or_default().push(i);
        }
    }
    for g in groups {
        let spread = g
            .members
            .iter()
            .all(|m| topology.services.iter().any(|s| &s.name == m));
        if spread && g.members.len() > 1 {
            why.insert(0, format!("group `{}`: one member per machine", g.name));
        }
    }
    let machines = machine_names(slots.len().max(1));
    let on = topology
        .services
        .iter()
        .map(|s| {
            let at = on.remove(&s.name).unwrap_or_default();
            (
                s.name.clone(),
                at.iter().map(|&i| machines[i].clone()).collect(),
            )
        })
        .collect();
    Placement { machines, on, why }
}

/// Why the placement cannot run: a named volume that several services share (one volume,
/// on one engine) would be on more than one machine. None when every shared volume is on one.
pub fn volume_split(topology: &Topology, placement: &Placement) -> Option<String> {
    let mut volumes: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for s in &topology.services {
        let machines = placement
            .on
            .iter()
            .find(|(n, _)| *n == s.name)
            .map(|(_, m)| m);
        for (volume, _) in &s.extras.shared_volumes {
            let (names, on) = volumes.entry(volume).or_default();
            names.insert(&s.name);
            on.extend(machines.into_iter().flatten().map(String::as_str));
        }
    }
    let (volume, (names, on)) = volumes.into_iter().find(|(_, (_, on))| on.len() > 1)?;
    let names: Vec<&str> = names.into_iter().collect();
    let on: Vec<&str> = on.into_iter().collect();
    Some(format!("the named volume `{volume}` of {} would be on machines {} (one volume lives on one engine; replicas, cluster members and services of one port each get a machine of their own)", names.join(", "), on.join(", ")))
}

/// The replicas of the machine service `m`, as [`file::Scenario::replica_names`] names them.
fn machine_names(n: usize) -> Vec<String> {
    let mut m = file::Service::named("m");
    m.replicas = n;
    file::Scenario::replica_names(&m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::tests::{topology, ETCD_TRIO};

    fn placed(text: &str) -> Placement {
        let t = topology(text);
        let groups = infer::groups(&t);
        let probes = t
            .services
            .iter()
            .map(|s| (s.name.clone(), infer::probe_of(s, t.hints.get(&s.name))))
            .collect();
        spread(&t, &groups, &probes)
    }

    #[test]
    fn a_cluster_of_separate_services_gets_a_machine_per_member() {
        let p = placed(ETCD_TRIO);
        assert_eq!(p.machines, ["m1", "m2", "m3"]);
        assert_eq!(p.summary(), "m1: etcd1, cache; m2: etcd2; m3: etcd3");
        assert_eq!(p.why, ["group `etcd`: one member per machine"]);
    }

    #[test]
    fn services_on_one_port_never_share_a_machine_and_replicas_stay_apart() {
        let text = "services:\n  a:\n    image: x:1\n    expose: [\"80\"]\n  b:\n    image: y:1\n    expose: [\"80\"]\n  c:\n    image: z:1\n    deploy: { replicas: 2 }\n  d:\n    image: w:1\n";
        let p = placed(text);
        assert_eq!(p.summary(), "m1: a, c, d; m2: b, c");
        assert!(p.why[0].contains("`b` shares a port (80)"), "{:?}", p.why);
        let shared = "services:\n  a:\n    image: x:1\n    expose: [\"80\"]\n    volumes: [media:/m]\n  b:\n    image: y:1\n    expose: [\"80\"]\n    volumes: [media:/m]\nvolumes: { media: {} }\n";
        let split = volume_split(&topology(shared), &placed(shared)).unwrap();
        assert!(
            split.contains("`media` of a, b would be on machines m1, m2"),
            "{split}"
        );
        let lone = placed("services:\n  a:\n    image: x:1\n  b:\n    image: y:1\n");
        assert_eq!(lone.machines, ["m"]);
        assert!(lone.why.is_empty());
    }
}
