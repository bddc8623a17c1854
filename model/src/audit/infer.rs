//! What the audit finds in an architecture nobody annotated: which services form one cluster
//! (a group), which are recognised data stores, and how each is observed (its probe) — each
//! with the reason, for the plan to say.

use crate::scenario::compose::{Hints, Topology};
use crate::scenario::file::{self, Check};
use std::collections::BTreeMap;

/// Services that form one cluster: the quorum archetypes hit them as one.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The cluster's name (`x-aftershock: { group }`, else the members' common stem).
    pub name: String,
    /// Its members, in the file's bring-up order.
    pub members: Vec<String>,
    /// Why they were grouped.
    pub why: String,
}

/// A data store recognised by its image, build or program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Store {
    /// Its name as people say it (`PostgreSQL`).
    pub name: &'static str,
    /// The port it listens on by default.
    pub port: u16,
    /// Whether it keeps state on disk (memcached does not).
    pub stateful: bool,
}

/// What recognises each store: words found in the image's name, the build context's
/// directory or the program run.
const STORES: &[(&[&str], Store)] = &[
    (&["postgres"], store("PostgreSQL", 5432, true)),
    (&["mysql"], store("MySQL", 3306, true)),
    (&["mariadb"], store("MariaDB", 3306, true)),
    (&["redis", "valkey"], store("Redis", 6379, true)),
    (&["etcd"], store("etcd", 2379, true)),
    (&["zookeeper", "zkserver"], store("ZooKeeper", 2181, true)),
    (&["rabbitmq"], store("RabbitMQ", 5672, true)),
    (&["memcached"], store("memcached", 11211, false)),
    (&["mongo"], store("MongoDB", 27017, true)),
    (&["kafka"], store("Kafka", 9092, true)),
    (&["cassandra", "scylla"], store("Cassandra", 9042, true)),
    (&["cockroach"], store("CockroachDB", 26257, true)),
    (&["consul"], store("Consul", 8500, true)),
    (&["nats"], store("NATS", 4222, true)),
    (
        &["elasticsearch", "opensearch"],
        store("Elasticsearch", 9200, true),
    ),
    (&["minio"], store("MinIO", 9000, true)),
];

const fn store(name: &'static str, port: u16, stateful: bool) -> Store {
    Store {
        name,
        port,
        stateful,
    }
}

/// The store `s` is, and what showed it (`image \`postgres:16\``), when it is one.
pub fn store_of(s: &file::Service) -> Option<(Store, String)> {
    let mut clues: Vec<(String, String)> = vec![];
    if let Some(image) = &s.image {
        let repo = image.split(['@']).next().unwrap_or(image);
        let last = repo.rsplit('/').next().unwrap_or(repo);
        let name = last.split(':').next().unwrap_or(last);
        clues.push((name.to_ascii_lowercase(), format!("image `{image}`")));
    }
    if let Some(b) = &s.build {
        let dir = b.context.trim_end_matches('/').rsplit('/').next();
        let dir = dir.unwrap_or_default().to_ascii_lowercase();
        clues.push((dir, format!("build context `{}`", b.context)));
    }
    let program = s.entrypoint.iter().flatten().chain(&s.command).next();
    if let Some(p) = program {
        let base = p.rsplit('/').next().unwrap_or(p).to_ascii_lowercase();
        clues.push((base, format!("program `{p}`")));
    }
    clues.iter().find_map(|(clue, shown)| {
        let (_, store) = STORES
            .iter()
            .find(|(words, _)| words.iter().any(|w| clue.contains(w)))?;
        Some((*store, shown.clone()))
    })
}

/// How the audit observes one service, and why that way.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The check on each replica; `None`: not observed.
    pub check: Option<Check>,
    /// Why this check (or why none).
    pub why: String,
}

/// The probe of `s`: its declared health check, else TCP on the first port `expose` names,
/// else TCP on a recognised store's port; else none.
pub fn probe_of(s: &file::Service, hints: Option<&Hints>) -> Probe {
    if let Some(exec) = s.ready.as_ref().and_then(|r| r.exec.clone()) {
        return Probe {
            check: Some(Check::Exec(exec)),
            why: "its declared healthcheck".into(),
        };
    }
    if let Some(port) = hints.and_then(|h| h.expose.first()) {
        return Probe {
            check: Some(Check::Tcp(*port)),
            why: format!("TCP on {port}: no healthcheck; the first port `expose` names"),
        };
    }
    if let Some((store, shown)) = store_of(s) {
        return Probe {
            check: Some(Check::Tcp(store.port)),
            why: format!(
                "TCP on {}: no healthcheck; {}'s port ({shown})",
                store.port, store.name
            ),
        };
    }
    Probe {
        check: None,
        why: "none: no healthcheck, no `expose`, and not a recognised data store (add `healthcheck:` or `expose:`)".into(),
    }
}

/// The clusters of `topology`: `x-aftershock: { group }` where given; else single-replica
/// services of the same image or build that name each other (in `command`, `entrypoint` or
/// `environment`) or share a YAML anchor.
pub fn groups(topology: &Topology) -> Vec<Group> {
    let services = &topology.services;
    let hint = |s: &file::Service| topology.hints.get(&s.name);
    let mut out: Vec<Group> = vec![];
    let mut declared: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in services {
        if let Some(g) = hint(s).and_then(|h| h.group.as_deref()) {
            if !g.is_empty() {
                declared.entry(g).or_default().push(s.name.clone());
            }
        }
    }
    for (name, members) in declared {
        let why = "`x-aftershock: { group }` names them".to_string();
        out.push(group(name.to_string(), members, why));
    }
    let free: Vec<&file::Service> = services
        .iter()
        .filter(|s| s.replicas == 1 && hint(s).is_none_or(|h| h.group.is_none()))
        .collect();
    let mut taken = vec![false; free.len()];
    for i in 0..free.len() {
        if taken[i] {
            continue;
        }
        let mut members = vec![i];
        let mut reasons: Vec<String> = vec![];
        let mut k = 0;
        while k < members.len() {
            let a = free[members[k]];
            for j in 0..free.len() {
                let b = free[j];
                if taken[j] || members.contains(&j) || build_key(a) != build_key(b) {
                    continue;
                }
                if let Some(why) = linked(a, b, hint(a), hint(b)) {
                    members.push(j);
                    reasons.push(why);
                }
            }
            k += 1;
        }
        if members.len() < 2 {
            continue;
        }
        members.iter().for_each(|&m| taken[m] = true);
        let names: Vec<String> = members.iter().map(|&m| free[m].name.clone()).collect();
        let mut ordered: Vec<String> = services
            .iter()
            .map(|s| s.name.clone())
            .filter(|n| names.contains(n))
            .collect();
        ordered.dedup();
        let what = build_key(free[i]).unwrap_or_default();
        let why = format!("the same {what}; {}", reasons.join("; "));
        out.push(group(stem(&ordered), ordered, why));
    }
    out
}

fn group(name: String, members: Vec<String>, why: String) -> Group {
    Group { name, members, why }
}

/// What a service runs: `image \`x\`` or `build \`dir\``.
fn build_key(s: &file::Service) -> Option<String> {
    match (&s.image, &s.build) {
        (_, Some(b)) => Some(format!(
            "build `{}`{}",
            b.context,
            b.dockerfile
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )),
        (Some(i), None) => Some(format!("image `{i}`")),
        (None, None) => None,
    }
}

/// Why `a` and `b` (the same image) are one cluster: they name each other, or share an
/// anchor.
fn linked(
    a: &file::Service,
    b: &file::Service,
    ha: Option<&Hints>,
    hb: Option<&Hints>,
) -> Option<String> {
    if let (Some(wa), Some(wb)) = (names_in(a, b), names_in(b, a)) {
        return Some(format!(
            "`{}` names `{}` in {wa} and `{}` names `{}` in {wb}",
            a.name, b.name, b.name, a.name
        ));
    }
    let (la, lb) = (ha?.anchor_line?, hb?.anchor_line?);
    (la == lb).then(|| {
        format!(
            "`{}` and `{}` merge the same YAML anchor (keys from line {la})",
            a.name, b.name
        )
    })
}

/// Where `a` names `b` (its name or an alias as a host name): `command`, `entrypoint` or
/// `environment \`KEY\``.
fn names_in(a: &file::Service, b: &file::Service) -> Option<String> {
    let names: Vec<&str> = std::iter::once(b.name.as_str())
        .chain(b.aliases.iter().map(String::as_str))
        .chain(
            b.extras
                .networks
                .iter()
                .flat_map(|n| n.aliases.iter().map(String::as_str)),
        )
        .collect();
    let mentions = |text: &str| {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .any(|w| names.contains(&w))
    };
    if a.command.iter().any(|w| mentions(w)) {
        return Some("`command`".into());
    }
    if a.entrypoint.iter().flatten().any(|w| mentions(w)) {
        return Some("`entrypoint`".into());
    }
    a.env
        .iter()
        .find(|(_, v)| mentions(v))
        .map(|(k, _)| format!("`environment` `{k}`"))
}

/// The members' common name without its trailing digits and separators (`etcd1`, `etcd2` →
/// `etcd`); the first member's name when they have none in common.
fn stem(members: &[String]) -> String {
    let first = &members[0];
    let common = members.iter().fold(first.len(), |n, m| {
        first
            .chars()
            .zip(m.chars())
            .take(n)
            .take_while(|(a, b)| a == b)
            .count()
    });
    let stem = first[..common].trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
    if stem.is_empty() {
        first.clone()
    } else {
        stem.to_string()
    }
}
