//! What the audit finds in an architecture nobody annotated: which services form one cluster
//! (a group), which are recognised data stores, and how each is observed (its probe) — each
//! with the reason, for the plan to say.

use crate::scenario::compose::{Hints, Topology, Writes};
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
    /// The check on each replica (for a protocol probe: the port it speaks on); `None`: not
    /// observed.
    pub check: Option<Check>,
    /// A probe kind that speaks the store's own protocol instead of the check
    /// (`memcached-set`).
    pub protocol: Option<&'static str>,
    /// Why this check (or why none).
    pub why: String,
}

fn probe(check: Option<Check>, why: String) -> Probe {
    Probe {
        check,
        protocol: None,
        why,
    }
}

/// The probe of `s`: its declared health check; else memcached's own protocol for memcached;
/// else TCP on the first port `expose` names, else TCP on a recognised store's port; else none.
pub fn probe_of(s: &file::Service, hints: Option<&Hints>) -> Probe {
    if let Some(exec) = s.ready.as_ref().and_then(|r| r.exec.clone()) {
        return probe(Some(Check::Exec(exec)), "its declared healthcheck".into());
    }
    let store = store_of(s);
    if let Some((st, shown)) = store.as_ref().filter(|(st, _)| st.name == "memcached") {
        return Probe {
            check: Some(Check::Tcp(st.port)),
            protocol: Some("memcached-set"),
            why: format!("memcached's own protocol on {}: a key `set` and `get` back each sample, no healthcheck needed ({shown})", st.port),
        };
    }
    if let Some(port) = hints.and_then(|h| h.expose.first()) {
        let why = format!("TCP on {port}: no healthcheck; the first port `expose` names");
        return probe(Some(Check::Tcp(*port)), why);
    }
    if let Some((store, shown)) = store {
        let why = format!(
            "TCP on {}: no healthcheck; {}'s port ({shown})",
            store.port, store.name
        );
        return probe(Some(Check::Tcp(store.port)), why);
    }
    probe(None, "none: no healthcheck, no `expose`, and not a recognised data store (add `healthcheck:` or `expose:`)".into())
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
                if let Some(why) =
                    linked(a, b, hint(a), hint(b)).or_else(|| coordinated(a, b, services))
                {
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

/// Why `a` and `b` (the same image, a recognised stateful store) are one cluster without
/// naming each other: the same value of one `environment` key names the other services they
/// both join (Kafka brokers' `KAFKA_ZOOKEEPER_CONNECT=zoo1:2181,zoo2:2181`: a shared
/// coordinator).
fn coordinated(a: &file::Service, b: &file::Service, services: &[file::Service]) -> Option<String> {
    store_of(a).filter(|(st, _)| st.stateful)?;
    let others: Vec<&str> = services
        .iter()
        .filter(|s| s.name != a.name && s.name != b.name)
        .map(|s| s.name.as_str())
        .collect();
    let names_others = |v: &str| {
        v.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .any(|w| others.contains(&w))
    };
    let (key, value) = a
        .env
        .iter()
        .find(|(k, v)| b.env.get(*k) == Some(*v) && names_others(v))?;
    Some(format!(
        "`{}` and `{}` join the same services in `environment` `{key}` ({value})",
        a.name, b.name
    ))
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

/// The key prefix of the records the inferred write probes write: three bytes, so that a key's
/// base64 (etcd's JSON gateway) is the prefix's (`YXMv`) followed by the number's.
const PREFIX: &str = "as/";

/// Why a store with no write template is not judged: what to write instead.
const SAY_HOW: &str =
    "say how to write and read a record with `x-aftershock: { write: [...], read: [...] }`";

/// How lost writes are judged on `s` when the file gives no templates: a recognised store's
/// own protocol writes record `{n}` and reads every record back, with what the plan says of
/// it; or why not (not a store, a store with no template, no credentials in the file).
pub fn writes_of(s: &file::Service) -> Result<(Writes, String), String> {
    let Some((store, shown)) = store_of(s) else {
        return Err(format!("not a recognised data store ({SAY_HOW})"));
    };
    let (writes, how) = match store.name {
        "etcd" => (
            Writes {
                port: Some(store.port),
                method: Some("POST".into()),
                path: Some("/v3/kv/put".into()),
                body: Some(r#"{"key": "YXMv{n_base64}", "value": "{n_base64}"}"#.into()),
                read: words(&["etcdctl", "get", PREFIX, "--prefix", "--keys-only"]),
                ..Writes::default()
            },
            format!("put `{PREFIX}{{n}}` through etcd's JSON gateway (POST /v3/kv/put), read back by `etcdctl get --prefix`"),
        ),
        "Consul" => (
            Writes {
                port: Some(store.port),
                method: Some("PUT".into()),
                path: Some(format!("/v1/kv/{PREFIX}{{n}}")),
                body: Some("{n}".into()),
                read_path: Some(format!("/v1/kv/{PREFIX}?keys")),
                ..Writes::default()
            },
            format!("PUT /v1/kv/{PREFIX}{{n}} over Consul's HTTP API, read back by `?keys`"),
        ),
        "Redis" => redis(),
        "ZooKeeper" => (
            Writes {
                protocol: Some("zookeeper-write".into()),
                ..Writes::default()
            },
            "a znode created per sample through ZooKeeper's own protocol (the harness's client on 2181, through any member of its group; a session that expires is replaced), read back by listing them".into(),
        ),
        "MongoDB" => mongo(),
        "PostgreSQL" => postgres(s),
        "MySQL" | "MariaDB" => mysql(s, store.name).ok_or_else(|| format!("{} ({shown}) without its root password in the file (`MYSQL_ROOT_PASSWORD` or `MARIADB_ROOT_PASSWORD`): {SAY_HOW}", store.name))?,
        "memcached" => {
            return Err("memcached is a cache: losing its entries on a restart is what it promises (no lost-write verdict)".into());
        }
        other => {
            return Err(format!("{other} ({shown}) is recognised, but the audit has no write template for it yet: {SAY_HOW}"));
        }
    };
    Ok((writes, format!("{how} ({} by {shown})", store.name)))
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|w| w.to_string()).collect()
}

/// Templates run in the container.
fn exec(write: &[&str], read: &[&str]) -> Writes {
    Writes {
        write: words(write),
        read: words(read),
        ..Writes::default()
    }
}

/// redis-cli in the container, on the primary that a Sentinel beside it names (on 26379, as
/// a Sentinel-aware client asks), else on the server beside it: `SET` acknowledged by `OK`,
/// read back by `--scan` through the same choice at the end of the run.
fn redis() -> (Writes, String) {
    let cli = "c=$(command -v valkey-cli || command -v redis-cli); set -- $($c -p 26379 --raw sentinel masters 2>/dev/null | sed -n '4p;6p'); $c ${1:+-h \"$1\" -p \"$2\"} ${REDIS_PASSWORD:+--no-auth-warning -a \"$REDIS_PASSWORD\"}";
    let writes = exec(
        &[
            "sh",
            "-c",
            &format!("{cli} SET {PREFIX}{{n}} {{n}} | grep -qx OK"),
        ],
        &["sh", "-c", &format!("{cli} --scan --pattern '{PREFIX}*'")],
    );
    let how = format!("`SET {PREFIX}{{n}}` by redis-cli (OK acknowledges) on the primary the Sentinel beside it names, else on its own server; read back by `--scan` the same way");
    (writes, how)
}

/// psql over the container's socket, as `POSTGRES_USER` (default `postgres`) into `POSTGRES_DB`
/// (default: the user's name), as the official image sets them up.
fn postgres(s: &file::Service) -> (Writes, String) {
    let env = |k: &str| s.env.get(k).filter(|v| !v.is_empty()).cloned();
    let user = env("POSTGRES_USER").unwrap_or_else(|| "postgres".into());
    let db = env("POSTGRES_DB").unwrap_or_else(|| user.clone());
    let psql = ["psql", "-U", &user, "-d", &db];
    let insert = "CREATE TABLE IF NOT EXISTS aftershock_writes (n bigint PRIMARY KEY); INSERT INTO aftershock_writes VALUES ({n})";
    let write: Vec<&str> = psql
        .iter()
        .copied()
        .chain(["-v", "ON_ERROR_STOP=1", "-qc", insert])
        .collect();
    let read: Vec<&str> = psql
        .iter()
        .copied()
        .chain(["-tAc", "SELECT n FROM aftershock_writes"])
        .collect();
    let how = format!("INSERT by psql as `{user}` into `{db}`.aftershock_writes (autocommit), read back by SELECT");
    (exec(&write, &read), how)
}

/// The mongo shell (`mongosh`, else the legacy `mongo`) in the container, as the root user
/// the official image creates when the file names one: an insert acknowledged by a majority
/// and journaled, read back by listing the ids.
fn mongo() -> (Writes, String) {
    let shell = "$(command -v mongosh || command -v mongo) --quiet ${MONGO_INITDB_ROOT_USERNAME:+-u \"$MONGO_INITDB_ROOT_USERNAME\" -p \"$MONGO_INITDB_ROOT_PASSWORD\" --authenticationDatabase admin}";
    let insert = "db.getSiblingDB(\"aftershock\").writes.insertOne({_id: {n}}, {writeConcern: {w: \"majority\", j: true}})";
    let list = "db.getSiblingDB(\"aftershock\").writes.find().forEach(d => print(d._id))";
    let writes = exec(
        &["sh", "-c", &format!("{shell} --eval '{insert}'")],
        &["sh", "-c", &format!("{shell} --eval '{list}'")],
    );
    let how = "insertOne by the mongo shell into aftershock.writes (write concern majority, journaled), read back by find".to_string();
    (writes, how)
}

/// The MySQL/MariaDB client as root, when the file gives root's password (or allows none).
fn mysql(s: &file::Service, name: &str) -> Option<(Writes, String)> {
    let set = |k: &&str| s.env.get(*k).is_some_and(|v| !v.is_empty());
    let keys = [
        "MYSQL_ROOT_PASSWORD",
        "MARIADB_ROOT_PASSWORD",
        "MYSQL_ALLOW_EMPTY_PASSWORD",
        "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD",
    ];
    if !keys.iter().any(set) {
        return None;
    }
    let cli = "$(command -v mariadb || command -v mysql) -uroot ${MYSQL_ROOT_PASSWORD:+-p\"$MYSQL_ROOT_PASSWORD\"} ${MARIADB_ROOT_PASSWORD:+-p\"$MARIADB_ROOT_PASSWORD\"}";
    let insert = "CREATE DATABASE IF NOT EXISTS aftershock; CREATE TABLE IF NOT EXISTS aftershock.writes (n bigint PRIMARY KEY) ENGINE=InnoDB; INSERT INTO aftershock.writes VALUES ({n})";
    let writes = exec(
        &["sh", "-c", &format!("{cli} -e '{insert}'")],
        &[
            "sh",
            "-c",
            &format!("{cli} -N -e 'SELECT n FROM aftershock.writes'"),
        ],
    );
    let how = format!("INSERT by the {name} client as root into aftershock.writes (InnoDB, autocommit), read back by SELECT");
    Some((writes, how))
}

/// A service in front of a cache and a database (the clerk 2017-03 chain): losing the cache
/// sends every read to the database.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The service that uses both.
    pub front: String,
    /// The cache (memcached, or Redis beside a database).
    pub cache: String,
    /// The database behind it.
    pub db: String,
    /// Other caches the front names (they stay up when `cache` is lost).
    pub other_caches: Vec<String>,
    /// Why: how the front names each, and what each was recognised by.
    pub why: String,
}

/// Every front service that depends on (`depends_on`) or names (in `command`, `entrypoint`,
/// `environment`) both a cache and a database.
pub fn chains(topology: &Topology) -> Vec<Chain> {
    let services = &topology.services;
    let used = |front: &file::Service, other: &file::Service| -> Option<String> {
        if front.uses.iter().any(|u| u.get_ref() == &other.name) {
            return Some("`depends_on`".into());
        }
        names_in(front, other)
    };
    let is_cache =
        |s: &file::Service| store_of(s).filter(|(st, _)| matches!(st.name, "memcached" | "Redis"));
    let is_db = |s: &file::Service| {
        store_of(s).filter(|(st, _)| {
            st.stateful && !matches!(st.name, "Redis" | "etcd" | "ZooKeeper" | "Consul")
        })
    };
    let mut out = vec![];
    for front in services.iter().filter(|f| store_of(f).is_none()) {
        let caches: Vec<_> = services
            .iter()
            .filter_map(|c| {
                let (store, shown) = is_cache(c)?;
                Some((c, store, shown, used(front, c)?))
            })
            .collect();
        let other_caches = caches.iter().skip(1).map(|c| c.0.name.clone()).collect();
        let cache = caches.into_iter().next();
        let db = services.iter().find_map(|d| {
            let (store, shown) = is_db(d)?;
            Some((d, store, shown, used(front, d)?))
        });
        if let (Some((c, cs, cshown, cwhere)), Some((d, ds, dshown, dwhere))) = (cache, db) {
            let why = format!(
                "`{}` names the cache `{}` ({} by {cshown}) in {cwhere} and the database `{}` ({} by {dshown}) in {dwhere}",
                front.name, c.name, cs.name, d.name, ds.name
            );
            out.push(Chain {
                front: front.name.clone(),
                cache: c.name.clone(),
                db: d.name.clone(),
                other_caches,
                why,
            });
        }
    }
    out
}

/// The HTTP port of `s` and what showed it: its HTTP health check, a URL in its health
/// command (`curl http://127.0.0.1:8080/healthz`), else the first port it exposes or publishes.
pub fn http_port(s: &file::Service, hints: Option<&Hints>) -> Option<(u16, String)> {
    let ready = s.ready.as_ref();
    if let Some(Check::Http { port, .. }) = ready.and_then(|r| r.check().ok()) {
        return Some((port, "its HTTP health check".into()));
    }
    for word in ready.and_then(|r| r.exec.clone()).unwrap_or_default() {
        let Some(rest) = word.split("http://").nth(1) else {
            continue;
        };
        let host = rest.split('/').next().unwrap_or_default();
        if let Some(port) = host.rsplit_once(':').and_then(|(_, p)| p.parse().ok()) {
            return Some((port, "the URL its health check asks".into()));
        }
    }
    let port = hints?.expose.first()?;
    Some((*port, "the first port it exposes".into()))
}
