//! Everything a scenario file can say, the builder can say: the fields of every table of the
//! file grammar (read from serde, so a new field is seen) against a file form written by
//! calling every builder method. A field no builder call sets fails the test by name.

use super::{Expect, Experiment, Fault, Machine, Probe, Service, ServiceRef};
use crate::scenario::file::{self, BuildSpec, Check, DiskSpec, LeaderCheck, MachineOptions};
use crate::scenario::file::{CutShape, DiskErrno, DiskOp, Preset, ProbeKind, Select, Signal};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// A deserializer that only records the field names a struct asks for.
struct FieldNames<'a>(&'a mut Vec<&'static str>);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.extend(fields);
        Err(de::Error::custom("names read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The field names of the file grammar's table `T`, as a file writes them.
fn fields<T: for<'de> Deserialize<'de>>() -> BTreeSet<&'static str> {
    let mut names = vec![];
    let _ = T::deserialize(FieldNames(&mut names));
    names.into_iter().collect()
}

/// The fields of `items` (tables of one kind) that hold something else than in a table with
/// only the `required` fields (what every constructor sets).
fn set<T>(items: &[Value], required: &[&str]) -> BTreeSet<String>
where
    T: for<'de> Deserialize<'de> + serde::Serialize,
{
    let mut set: BTreeSet<String> = required.iter().map(|r| r.to_string()).collect();
    for item in items {
        let item = item.as_object().expect("a table");
        let minimal: Map<String, Value> = required
            .iter()
            .filter_map(|r| item.get(*r).map(|v| (r.to_string(), v.clone())))
            .collect();
        // Through TOML: references keep their place in a file (`Spanned`), which JSON cannot give.
        let text = toml::to_string(&without_nulls(Value::Object(minimal))).expect("as TOML");
        let minimal: T = toml::from_str(&text).expect("a minimal table");
        let minimal = serde_json::to_value(minimal).expect("serialises");
        for (key, value) in item {
            if minimal.get(key) != Some(value) {
                set.insert(key.clone());
            }
        }
    }
    set
}

/// The value without its `null`s (absent options), which TOML cannot write.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn all(v: &Value, key: &str) -> Vec<Value> {
    match v.get(key) {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Object(_)) => vec![v[key].clone()],
        _ => vec![],
    }
}

/// An experiment made with every builder method (it need not make sense as a run).
fn everything() -> Experiment {
    let secs = Duration::from_secs;
    let mut x = Experiment::new("all", secs(30))
        .seed(1)
        .variant("remediated")
        .incident("some-postmortem")
        .summary("every field")
        .compose("compose.yaml");
    x.machine(
        Machine::url("east", "tcp://10.0.0.5:2375")
            .address("10.0.0.5")
            .tls("certs")
            .ssh_key("key")
            .insecure(),
    );
    let machines = x.service(Service::machines("m", 2, MachineOptions::default()));
    x.compose_machines(&machines);
    x.compose_disk("db", "pgdata", 64);
    x.compose_place("db", &["m2"]);
    x.compose_memory("db", 256);
    x.compose_lossy("db");
    x.compose_profile("debug");
    x.compose_env_file("test.env");
    let db = x.service(Service::preset("db", Preset::Postgres));
    let etcd = x.service(
        Service::generic("etcd", "etcd:local")
            .replicas(3)
            .entrypoint(&["/usr/bin/etcd"])
            .command(&["--name", "{replica}"])
            .env("A", "{index}")
            .volume("data", "/data")
            .memory_mib(64)
            .oom_score_adj(500)
            .cpus(0.5)
            .ready(Check::Exec(vec!["true".into()]), secs(9))
            .ready_polling(Duration::from_millis(200), secs(2))
            .disk(64, "/disk", true)
            .uses(&db)
            .on_machines(&["m1", "m2", "east"])
            .build(BuildSpec::context("dir"))
            .restart("always")
            .alias("store")
            .user("1000")
            .working_dir("/srv")
            .leader(
                LeaderCheck::http(2379, "/metrics")
                    .request("POST", "{}")
                    .status(200)
                    .contains("leader 1")
                    .timeout(secs(2)),
            ),
    );
    x.service(Service::generic("e", "etcd:local").leader(LeaderCheck::exec(&["sh", "-c", "true"])));
    x.service(Service::attach("outside", &["abc"]).ready(
        Check::Http {
            port: 80,
            path: "/".into(),
            status: Some(204),
        },
        secs(5),
    ));
    x.service(Service::generic("t", "memcached").ready(Check::Tcp(1), secs(5)));
    parts(&mut x, &etcd, &db, &machines);
    x
}

/// Every probe, fault and expectation constructor and option.
fn parts(x: &mut Experiment, etcd: &ServiceRef, db: &ServiceRef, machines: &ServiceRef) {
    let secs = Duration::from_secs;
    let probes = [
        Probe::tcp("tcp", etcd, 1)
            .on(etcd.replica(1))
            .interval(secs(1))
            .timeout(secs(2)),
        Probe::http("http", etcd, 2, "/").status(204),
        Probe::exec("exec", etcd, &["true"]),
        Probe::zookeeper_write("zkw", etcd).members(&[db]),
        Probe::zookeeper_mode("zkm", etcd),
        Probe::memcached_set("mcs", etcd),
        Probe::datastore_append("ds", etcd, Some(4096)),
        Probe::postgres_insert("pg", db),
        Probe::load("load", etcd, "/{key}", 10)
            .keys(5, true)
            .warm_up(Duration::from_secs(30)),
        Probe::consul_kv("kv", machines).key("k"),
        Probe::consul_leader("cl", machines),
        Probe::registry("reg", machines),
        Probe::registry_pull("pull", machines).push(true),
        Probe::write_exec("we", etcd, &["put", "{n}"], &["get"]),
        Probe::write_http("wh", etcd, 2379, "/put", "/get")
            .method("POST")
            .body("{n}")
            .path("/v3/kv/put"),
        Probe::new("any", ProbeKind::Tcp, etcd),
    ];
    let probes: Vec<_> = probes.into_iter().map(|p| x.probe(p)).collect();
    let faults = [
        Fault::kill("kill", etcd)
            .at(secs(1))
            .select(Select::Count(2))
            .signal(Signal::Term)
            .down_for(secs(3))
            .rejoin_timeout(secs(9))
            .port(5),
        Fault::netem("netem", etcd, 10.0).delay(secs(1)),
        Fault::power_cut("cut", etcd).tear(512),
        Fault::leak("leak", etcd, secs(1)).leak_rate(64),
        Fault::daemon_crash("crash", machines, secs(2)),
        Fault::cut("peer-cut", etcd)
            .shape(CutShape::Isolate)
            .peers(&["etcd2"])
            .one_way(),
        Fault::clock("clock", etcd, "+30s").strobe(Duration::from_millis(500)),
        Fault::sick_link(
            "sick",
            etcd,
            crate::scenario::toxics::Toxics {
                latency: Some(secs(1)),
                ..Default::default()
            },
        ),
        Fault::disk_latency("slow", etcd, secs(1)).ops(&[DiskOp::Fsync]),
        Fault::disk_error("eio", etcd, DiskErrno::Eio)
            .percent(50.0)
            .forget_writes(),
        Fault::disk_full("full", etcd).room_bytes(4096),
    ];
    let faults: Vec<_> = faults.into_iter().map(|f| x.fault(f)).collect();
    let (p, f) = (&probes[0], &faults[0]);
    for e in [
        Expect::warm_up_within(p, f, secs(1))
            .hit_fraction(0.5)
            .ratio(3.0)
            .title("warm"),
        Expect::fails_during(p, f, secs(1)),
        Expect::oom_kill_within(f, secs(1), "memcached"),
        Expect::measurement_at_most("f/x", 1.0).at_least(0.5),
        Expect::ends_failing(p, "gone"),
        Expect::unit_reaches(f, "consul", "active"),
    ] {
        x.expect(e);
    }
}

/// Each table of the file grammar: its fields, and those the experiment's tables set.
type Table = (&'static str, BTreeSet<&'static str>, BTreeSet<String>);

fn tables(x: &Experiment) -> Vec<Table> {
    let scenario = serde_json::to_value(&x.file).unwrap();
    let topology = &scenario["topology"];
    let services = all(topology, "service");
    let nested = |key: &str| -> Vec<Value> { services.iter().flat_map(|s| all(s, key)).collect() };
    vec![
        (
            "scenario",
            fields::<file::Scenario>(),
            set::<file::Scenario>(
                std::slice::from_ref(&scenario),
                &["name", "duration", "topology"],
            ),
        ),
        (
            "topology",
            fields::<file::Topology>(),
            set::<file::Topology>(std::slice::from_ref(topology), &[]),
        ),
        (
            "service",
            fields::<file::Service>(),
            set::<file::Service>(&services, &["name"]),
        ),
        (
            "ready",
            fields::<file::ReadyCheck>(),
            set::<file::ReadyCheck>(&nested("ready"), &[]),
        ),
        (
            "leader",
            fields::<LeaderCheck>(),
            set::<LeaderCheck>(&nested("leader"), &[]),
        ),
        (
            "machine",
            fields::<file::MachineDecl>(),
            set::<file::MachineDecl>(&all(topology, "machine"), &["name", "url"]),
        ),
        (
            "probe",
            fields::<file::Probe>(),
            set::<file::Probe>(&all(&scenario, "probe"), &["name", "kind", "target"]),
        ),
        (
            "fault",
            fields::<file::Fault>(),
            set::<file::Fault>(&all(&scenario, "fault"), &["name", "kind", "at", "target"]),
        ),
        (
            "expect",
            fields::<file::Expectation>(),
            set::<file::Expectation>(&all(&scenario, "expect"), &["kind"]),
        ),
    ]
}

#[test]
fn every_field_of_the_file_grammar_can_be_set_with_the_builder() {
    let x = everything();
    // Tables the builder takes whole, as values with public fields: every field is settable.
    let _whole: (DiskSpec, BuildSpec, MachineOptions) = (
        DiskSpec {
            size_mb: 1,
            path: "/".into(),
            lossy: false,
        },
        BuildSpec::context("."),
        MachineOptions::default(),
    );
    let mut missing = vec![];
    for (table, fields, set) in &tables(&x) {
        assert!(!fields.is_empty(), "no fields read for {table}");
        for field in fields.iter().filter(|f| !set.contains(**f)) {
            // `args` is another name for a service's `command`.
            if (*table, *field) != ("service", "args") {
                missing.push(format!("{table}.{field}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the builder cannot set: {}",
        missing.join(", ")
    );
}
#[test]
fn the_field_walk_sees_a_field_the_builder_leaves_alone() {
    let x = Experiment::new("bare", Duration::from_secs(1));
    let scenario = serde_json::to_value(&x.file).unwrap();
    let set = set::<file::Scenario>(&[scenario], &["name", "duration", "topology"]);
    assert!(fields::<file::Scenario>().contains("seed"));
    assert!(!set.contains("seed"), "{set:?}");
}
