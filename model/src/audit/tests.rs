//! The audit's inferences on real-shaped Compose files nobody annotated (in memory).

use super::infer::{self, Group};
use super::{plan, Audit, Budgets, Outcome};
use crate::scenario::compose::{self, Topology};
use crate::scenario::file::Check;
use std::path::Path;

/// An etcd cluster of three separate services (as etcd's own docs write it), a web front and
/// its database.
pub const ETCD_TRIO: &str = r#"
x-etcd: &etcd
  image: quay.io/coreos/etcd:v3.5.9
  environment:
    ETCD_INITIAL_CLUSTER_STATE: new
services:
  etcd1:
    <<: *etcd
    command: >-
      etcd --name etcd1 --listen-peer-urls http://0.0.0.0:2380
      --initial-advertise-peer-urls http://etcd1:2380
      --initial-cluster etcd1=http://etcd1:2380,etcd2=http://etcd2:2380,etcd3=http://etcd3:2380
  etcd2:
    <<: *etcd
    command: >-
      etcd --name etcd2 --listen-peer-urls http://0.0.0.0:2380
      --initial-advertise-peer-urls http://etcd2:2380
      --initial-cluster etcd1=http://etcd1:2380,etcd2=http://etcd2:2380,etcd3=http://etcd3:2380
  etcd3:
    <<: *etcd
    command: >-
      etcd --name etcd3 --listen-peer-urls http://0.0.0.0:2380
      --initial-advertise-peer-urls http://etcd3:2380
      --initial-cluster etcd1=http://etcd1:2380,etcd2=http://etcd2:2380,etcd3=http://etcd3:2380
  cache:
    image: memcached:1.6
"#;

/// A ZooKeeper ensemble as the official image's docs write it: `ZOO_SERVERS` names them all.
pub const ZOOKEEPER_TRIO: &str = r#"
services:
  zoo1:
    image: zookeeper:3.8
    restart: always
    environment:
      ZOO_MY_ID: 1
      ZOO_SERVERS: server.1=zoo1:2888:3888;2181 server.2=zoo2:2888:3888;2181 server.3=zoo3:2888:3888;2181
    volumes: [zoo1-data:/data]
  zoo2:
    image: zookeeper:3.8
    restart: always
    environment:
      ZOO_MY_ID: 2
      ZOO_SERVERS: server.1=zoo1:2888:3888;2181 server.2=zoo2:2888:3888;2181 server.3=zoo3:2888:3888;2181
    volumes: [zoo2-data:/data]
  zoo3:
    image: zookeeper:3.8
    restart: always
    environment:
      ZOO_MY_ID: 3
      ZOO_SERVERS: server.1=zoo1:2888:3888;2181 server.2=zoo2:2888:3888;2181 server.3=zoo3:2888:3888;2181
    volumes: [zoo3-data:/data]
volumes:
  zoo1-data: {}
  zoo2-data: {}
  zoo3-data: {}
"#;

/// A web app with two API services of one build (they name the database, not each other) and
/// its PostgreSQL: nothing here is a cluster.
pub const WEB_AND_DB: &str = r#"
services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: example
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
    volumes: [pgdata:/var/lib/postgresql/data]
  api1:
    build: ./api
    environment:
      DATABASE_URL: postgres://postgres:example@db:5432/postgres
    expose: ["8000"]
    depends_on: [db]
  api2:
    build: ./api
    environment:
      DATABASE_URL: postgres://postgres:example@db:5432/postgres
    expose: ["8000"]
    depends_on: [db]
  web:
    image: nginx:1.25
    command: [nginx, -g, "daemon off;"]
    depends_on: [api1, api2]
volumes:
  pgdata: {}
"#;

pub fn topology(text: &str) -> Topology {
    let read = |p: &Path| match p.file_name().and_then(|n| n.to_str()) {
        Some("compose.yml") => Ok(text.to_string()),
        _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    };
    compose::services(Path::new("/x/compose.yml"), &read, &|_| None).unwrap()
}

fn audit(text: &str) -> Audit {
    plan(
        Path::new("/x/compose.yml"),
        &topology(text),
        Budgets::default(),
    )
}

fn names(g: &Group) -> Vec<&str> {
    g.members.iter().map(String::as_str).collect()
}

/// The outcome of `subject` × `archetype`.
fn cell<'a>(a: &'a Audit, subject: &str, archetype: &str) -> &'a Outcome {
    let row = a
        .rows
        .iter()
        .find(|r| r.subject == subject && r.archetype == archetype);
    &row.unwrap_or_else(|| panic!("no row {subject} × {archetype}:\n{}", a.table()))
        .outcome
}

#[test]
fn an_etcd_trio_is_one_group_with_its_quorum_pair() {
    let a = audit(ETCD_TRIO);
    assert_eq!(a.groups.len(), 1, "{}", a.table());
    let g = &a.groups[0];
    assert_eq!(
        (g.name.as_str(), names(g)),
        ("etcd", vec!["etcd1", "etcd2", "etcd3"])
    );
    assert!(
        g.why.contains("image `quay.io/coreos/etcd:v3.5.9`"),
        "{}",
        g.why
    );
    assert!(
        g.why.contains("`etcd1` names `etcd2` in `command`"),
        "{}",
        g.why
    );
    let majority = a
        .scenarios
        .iter()
        .find(|(n, _)| n == "audit-majority-restart-etcd.toml");
    let text = &majority.expect("the majority restart is planned").1;
    assert_eq!(
        text.matches("kind = \"restart\"").count(),
        2,
        "two of three at once:\n{text}"
    );
    assert_eq!(text.matches("at = \"4s\"").count(), 2, "{text}");
    assert!(
        text.contains("kind = \"tcp\"\nport = 2379"),
        "etcd's port probed:\n{text}"
    );
    assert!(matches!(
        cell(&a, "group etcd", "quorum: one at a time"),
        Outcome::Planned { .. }
    ));
    let rolling = &a
        .scenarios
        .iter()
        .find(|(n, _)| n == "audit-rolling-restart-etcd.toml")
        .unwrap()
        .1;
    for at in ["4s", "16s", "28s"] {
        assert!(rolling.contains(&format!("at = \"{at}\"")), "{rolling}");
    }
    let Outcome::Skipped(why) = cell(&a, "etcd2", "quorum: majority at once") else {
        panic!("a member's own row points at its group")
    };
    assert!(why.contains("group `etcd`"), "{why}");
    for (name, text) in &a.scenarios {
        let parsed: Result<crate::scenario::file::Scenario, _> = toml::from_str(text);
        assert!(parsed.is_ok(), "{name}: {parsed:?}\n{text}");
    }
}

#[test]
fn a_zookeeper_trio_is_grouped_by_zoo_servers() {
    let a = audit(ZOOKEEPER_TRIO);
    assert_eq!(a.groups.len(), 1, "{}", a.table());
    assert_eq!(names(&a.groups[0]), ["zoo1", "zoo2", "zoo3"]);
    assert_eq!(a.groups[0].name, "zoo");
    assert!(
        a.groups[0].why.contains("`environment` `ZOO_SERVERS`"),
        "{}",
        a.groups[0].why
    );
    let probe = &a.probes[0].1;
    assert_eq!(probe.check, Some(Check::Tcp(2181)), "{}", probe.why);
    assert!(
        probe
            .why
            .contains("ZooKeeper's port (image `zookeeper:3.8`)"),
        "{}",
        probe.why
    );
    // Its writes go through its own protocol, through any member, with no templates; the
    // quorum pair judges whether they stay out longer than a member is down.
    let how = lost_writes(&a, "zoo1").unwrap_or_else(|why| panic!("{why}"));
    assert!(how.contains("through ZooKeeper's own protocol"), "{how}");
    let majority = &a
        .scenarios
        .iter()
        .find(|(n, _)| n == "audit-majority-restart-zoo.toml")
        .unwrap_or_else(|| panic!("{}", a.table()))
        .1;
    // No outage budget on the group's writes: the probe's client may stay on a restarted
    // member for as long as it is down (seen: 8.06 s one at a time, the member down 8 s),
    // which would be the harness's doing, not the group's.
    assert!(!majority.contains("keeps taking writes"), "{majority}");
    for words in [
        "kind = \"zookeeper-write\"\ntarget = \"zoo1\"",
        "members = [\"zoo2\", \"zoo3\"]",
    ] {
        assert!(majority.contains(words), "{words}:\n{majority}");
    }
    let parsed: crate::scenario::file::Scenario =
        toml::from_str(majority).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.probes[3].members.len(), 2, "{majority}");
}

#[test]
fn a_web_app_and_its_database_are_not_grouped() {
    let a = audit(WEB_AND_DB);
    assert!(a.groups.is_empty(), "{:?}", a.groups);
    let probe = |s: &str| &a.probes.iter().find(|(n, _)| n == s).unwrap().1;
    assert!(
        matches!(probe("db").check, Some(Check::Exec(_))),
        "the healthcheck"
    );
    assert_eq!(probe("api1").check, Some(Check::Tcp(8000)), "expose");
    assert_eq!(probe("web").check, None, "{}", probe("web").why);
    assert!(a.table().contains("Groups: none found"), "{}", a.table());
}

#[test]
fn a_group_extension_overrides_what_is_inferred() {
    let text = ETCD_TRIO.replace(
        "  cache:\n    image: memcached:1.6\n",
        "  cache:\n    image: memcached:1.6\n    x-aftershock: { group: edge }\n  cache-b:\n    image: memcached:1.5\n    x-aftershock: { group: edge }\n",
    );
    let text = text.replacen(
        "    <<: *etcd\n",
        "    <<: *etcd\n    x-aftershock: { group: \"\" }\n",
        1,
    );
    let t = topology(&text);
    let groups = infer::groups(&t);
    let found: Vec<(&str, Vec<&str>)> =
        groups.iter().map(|g| (g.name.as_str(), names(g))).collect();
    assert_eq!(
        found,
        [
            ("edge", vec!["cache", "cache-b"]),
            ("etcd", vec!["etcd2", "etcd3"])
        ]
    );
    assert!(groups[0].why.contains("x-aftershock"), "{}", groups[0].why);
}

#[test]
fn services_of_one_anchor_are_grouped_even_without_naming_each_other() {
    let text = "x-node: &node\n  image: app:1\n  restart: always\nservices:\n  node-a:\n    <<: *node\n  node-b:\n    <<: *node\n  other:\n    image: app:1\n";
    let groups = infer::groups(&topology(text));
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(names(&groups[0]), ["node-a", "node-b"]);
    assert!(
        groups[0]
            .why
            .contains("the same YAML anchor (keys from line 2)"),
        "{}",
        groups[0].why
    );
}

#[test]
fn every_volume_of_a_stateful_store_is_a_power_cut_by_default() {
    let a = audit(ZOOKEEPER_TRIO);
    let Outcome::Planned { file, note } = cell(&a, "zoo2", "power cut") else {
        panic!("{}", a.table())
    };
    assert_eq!(file, "audit-power-cut-zoo2.toml");
    assert!(
        note.contains("volume `zoo2-data` at /data made a 256 MB disk by default"),
        "{note}"
    );
    let web = audit(WEB_AND_DB);
    let Outcome::Skipped(why) = cell(&web, "api1", "power cut") else {
        panic!("{}", web.table())
    };
    assert!(why.contains("no named volume"), "{why}");
    let etcd = audit(ETCD_TRIO);
    let Outcome::Skipped(why) = cell(&etcd, "cache", "power cut") else {
        panic!("{}", etcd.table())
    };
    assert!(why.contains("no named volume"), "{why}");
}

#[test]
fn a_default_disk_resolves_to_a_disk_of_the_compose_service() {
    let dir = std::env::temp_dir().join(format!("aftershock-audit-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let compose_path = dir.join("compose.yml");
    std::fs::write(&compose_path, WEB_AND_DB).unwrap();
    let a = plan(&compose_path, &topology(WEB_AND_DB), Budgets::default());
    let (name, text) = a
        .scenarios
        .iter()
        .find(|(n, _)| n == "audit-power-cut-db.toml")
        .unwrap_or_else(|| panic!("{}", a.table()));
    let file = dir.join(name);
    let parsed = crate::scenario::parse(&file.display().to_string(), text);
    std::fs::remove_dir_all(&dir).unwrap();
    let plan = parsed.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let db = plan.services.iter().find(|s| s.name == "db").unwrap();
    assert!(db.disk.is_some(), "{db:?}");
}

#[test]
fn a_file_with_nothing_to_infer_says_so_per_service() {
    let a = audit("services:\n  app:\n    image: busybox:1.36\n  worker:\n    image: busybox:1.36\n    command: [sleep, infinity]\n");
    assert!(a.scenarios.is_empty(), "{:?}", a.scenarios);
    let table = a.table();
    let header = table
        .lines()
        .find(|l| l.starts_with("SERVICE / GROUP"))
        .unwrap();
    for column in [
        "majority",
        "rolling",
        "partial partition",
        "power cut",
        "slow disk",
        "clock jump",
        "leak→OOM",
        "lost writes",
        "cache loss",
        "engine crash",
    ] {
        assert!(header.contains(column), "{header}");
    }
    for service in ["app", "worker"] {
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with(&format!("{service} ")))
            .collect();
        assert_eq!(rows.len(), 1, "one line per service:\n{table}");
        assert_eq!(
            rows[0].matches("– (").count(),
            8,
            "every archetype skipped with a reason:\n{table}"
        );
    }
    let app = table.lines().find(|l| l.starts_with("app ")).unwrap();
    let n = app
        .split("none (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    assert!(
        table.contains(&format!("  ({n}) none: no healthcheck, no `expose`")),
        "the probe's reason:\n{table}"
    );
    let crash = table
        .lines()
        .find(|l| l.starts_with("every service"))
        .unwrap();
    let n = crash.rsplit("– (").next().unwrap().trim_end_matches(')');
    assert!(
        table.contains(&format!(
            "  ({n}) no service has a probe, so no availability verdict"
        )),
        "{table}"
    );
    assert!(
        table.contains("Nothing found to run on app, worker, every service"),
        "{table}"
    );
    assert!(table.contains("Nothing to run"), "{table}");
}

/// Writes `compose` as `compose.yml` in a directory of its own, plans it, and parses the
/// scenario `file` the audit wrote there (as `aftershock run` would).
fn resolved(
    compose: &str,
    file: &str,
    edit: impl Fn(String) -> String,
) -> Result<crate::scenario::Plan, String> {
    // A directory per call: tests run in parallel, and two may resolve the same file name.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "aftershock-audit-{}-{call}-{file}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let compose_path = dir.join("compose.yml");
    std::fs::write(&compose_path, compose).unwrap();
    let a = plan(&compose_path, &topology(compose), Budgets::default());
    let (name, text) = a
        .scenarios
        .iter()
        .find(|(n, _)| n == file)
        .unwrap_or_else(|| panic!("{}", a.table()));
    let text = edit(text.clone());
    let parsed = crate::scenario::parse(&dir.join(name).display().to_string(), &text);
    std::fs::remove_dir_all(&dir).unwrap();
    parsed.map_err(|e| format!("{e}\n{text}"))
}

#[test]
fn the_engine_crash_puts_each_member_of_a_cluster_on_a_machine_of_its_own() {
    let plan = resolved(ETCD_TRIO, "audit-engine-crash.toml", |t| t).unwrap();
    let on = |s: &str| -> Vec<&str> {
        let svc = plan.services.iter().find(|x| x.name == s).unwrap();
        svc.placement
            .iter()
            .map(|id| plan.machine(*id).name.as_str())
            .collect()
    };
    assert_eq!(
        [on("etcd1"), on("etcd2"), on("etcd3"), on("cache")],
        [["m1"], ["m2"], ["m3"], ["m1"]]
    );
    let a = audit(ETCD_TRIO);
    let Outcome::Planned { note, .. } = cell(&a, "every service", "engine crash") else {
        panic!("{}", a.table())
    };
    assert!(
        note.contains(
            "on m1: etcd1, cache; m2: etcd2; m3: etcd3 (group `etcd`: one member per machine)"
        ),
        "{note}"
    );
}

#[test]
fn the_engine_crash_runs_as_long_as_its_recovery_budget_needs() {
    let duration = |recover: u64| {
        let budgets = Budgets {
            recover: std::time::Duration::from_secs(recover),
            ..Budgets::default()
        };
        let a = plan(Path::new("/x/compose.yml"), &topology(ETCD_TRIO), budgets);
        let (_, text) = a
            .scenarios
            .iter()
            .find(|(n, _)| n == "audit-engine-crash.toml")
            .unwrap_or_else(|| panic!("{}", a.table()));
        let line = text.lines().find(|l| l.starts_with("duration")).unwrap();
        line.to_string()
    };
    // Three machines: crash at 4 s, the last dockerd 1 s later, the budget, 10 s more.
    assert_eq!(duration(30), "duration = \"45s\"");
    assert_eq!(duration(10), "duration = \"25s\"");
}

#[test]
fn a_placement_naming_what_is_not_there_is_refused_with_the_reason() {
    for (from, to, words) in [
        (
            "etcd2 = [\"m2\"]",
            "etcd2 = [\"m9\"]",
            "no machine of `m` (its machines: m1, m2, m3)",
        ),
        (
            "etcd2 = [\"m2\"]",
            "etcd2 = [\"m2\", \"m3\"]",
            "`etcd2` has 1 replicas but 2 machines are named",
        ),
        (
            "cache = [\"m1\"]",
            "cache = [\"m1\"], nope = [\"m1\"]",
            "names `nope`, which is no service",
        ),
    ] {
        let message = resolved(ETCD_TRIO, "audit-engine-crash.toml", |t| {
            assert!(t.contains(from), "{t}");
            t.replace(from, to)
        })
        .expect_err("refused");
        assert!(message.contains(words), "{message}");
    }
}

/// A file of the Compose corpus (`tests/fixtures/compose-corpus/NAME/compose.yaml`: real
/// files, their sources and licences in its README), read as `aftershock audit` reads it.
pub fn corpus(name: &str) -> (std::path::PathBuf, Topology) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/compose-corpus")
        .join(name)
        .join("compose.yaml");
    let topology = crate::scenario::load_compose(&path).unwrap_or_else(|e| panic!("{e}"));
    (path, topology)
}

#[test]
fn patroni_s_etcd_trio_is_found_and_spread_over_three_machines() {
    let (path, t) = corpus("patroni");
    let a = plan(&path, &t, Budgets::default());
    let found: Vec<(&str, Vec<&str>)> = a
        .groups
        .iter()
        .map(|g| (g.name.as_str(), names(g)))
        .collect();
    assert_eq!(
        found,
        [("etcd", vec!["etcd1", "etcd2", "etcd3"])],
        "{}",
        a.table()
    );
    assert!(
        a.groups[0]
            .why
            .contains("`environment` `ETCD_INITIAL_CLUSTER`"),
        "{}",
        a.groups[0].why
    );
    let probe = &a.probes.iter().find(|(s, _)| s == "etcd2").unwrap().1;
    assert_eq!(probe.check, Some(Check::Tcp(2379)), "{}", probe.why);
    assert!(probe.why.contains("program `etcd`"), "{}", probe.why);
    let Outcome::Planned { note, .. } = cell(&a, "every service", "engine crash") else {
        panic!("{}", a.table())
    };
    assert!(
        note.contains("m1: etcd1, haproxy, patroni1, patroni2, patroni3; m2: etcd2; m3: etcd3"),
        "{note}"
    );
}

/// The `lost writes` row of `subject`: how its writes are judged, or why not.
fn lost_writes<'a>(a: &'a Audit, subject: &str) -> Result<&'a str, &'a str> {
    match cell(a, subject, "lost writes") {
        Outcome::Judged(how) => Ok(how),
        Outcome::Skipped(why) => Err(why),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_etcd_member_s_writes_are_judged_over_its_json_gateway_in_the_runs_that_hit_it() {
    let a = audit(ETCD_TRIO);
    let how = lost_writes(&a, "etcd1").unwrap();
    assert!(
        how.contains("POST /v3/kv/put") && how.contains("etcdctl get --prefix"),
        "{how}"
    );
    for file in [
        "audit-engine-crash.toml",
        "audit-majority-restart-etcd.toml",
        "audit-rolling-restart-etcd.toml",
    ] {
        let text = &a.scenarios.iter().find(|(n, _)| n == file).unwrap().1;
        let probe = "name = \"etcd1-writes\"\nkind = \"write\"\ntarget = \"etcd1\"";
        assert!(text.contains(probe), "{file}:\n{text}");
        assert!(
            text.contains("path = \"/v3/kv/put\"") && text.contains("no-lost-writes"),
            "{text}"
        );
        assert!(
            text.contains(r#"body = "{\"key\": \"YXMv{n_base64}\", \"value\": \"{n_base64}\"}""#),
            "{text}"
        );
    }
    let why = lost_writes(&a, "cache").unwrap_err();
    assert!(why.contains("memcached is a cache"), "{why}");
}

#[test]
fn each_recognised_store_of_real_files_gets_its_protocol_or_the_reason_it_does_not() {
    let judged = [
        (
            "awesome-compose-nextcloud-redis-mariadb",
            "redis",
            "`SET as/{n}` by redis-cli",
        ),
        (
            "awesome-compose-nextcloud-redis-mariadb",
            "db",
            "INSERT by the MariaDB client as root",
        ),
        (
            "awesome-compose-nginx-golang-postgres",
            "db",
            "INSERT by psql as `postgres` into `example`",
        ),
        (
            "temporal-mysql-es",
            "mysql",
            "INSERT by the MySQL client as root",
        ),
        (
            "awesome-compose-nginx-flask-mongo",
            "mongo",
            "insertOne by the mongo shell",
        ),
    ];
    for (file, service, words) in judged {
        let (path, t) = corpus(file);
        let a = plan(&path, &t, Budgets::default());
        let how = lost_writes(&a, service).unwrap_or_else(|why| panic!("{file} {service}: {why}"));
        assert!(how.contains(words), "{file} {service}: {how}");
    }
    let skipped = [
        (
            "awesome-compose-nginx-flask-mysql",
            "db",
            "without its root password in the file",
        ),
        (
            "awesome-compose-nginx-flask-mongo",
            "web",
            "not a recognised data store",
        ),
    ];
    for (file, service, words) in skipped {
        let (path, t) = corpus(file);
        let a = plan(&path, &t, Budgets::default());
        let why = lost_writes(&a, service).expect_err(service);
        assert!(why.contains(words), "{file} {service}: {why}");
    }
    let (path, t) = corpus("awesome-compose-nginx-golang-postgres");
    let a = plan(&path, &t, Budgets::default());
    let cut = &a
        .scenarios
        .iter()
        .find(|(n, _)| n.starts_with("audit-power-cut-db"))
        .unwrap_or_else(|| panic!("{}", a.table()))
        .1;
    let write = r#"write = ["psql", "-U", "postgres", "-d", "example", "-v", "ON_ERROR_STOP=1", "-qc", "CREATE TABLE IF NOT EXISTS aftershock_writes (n bigint PRIMARY KEY); INSERT INTO aftershock_writes VALUES ({n})"]"#;
    assert!(
        cut.contains(write) && cut.contains("no-lost-writes"),
        "{cut}"
    );
}

#[test]
fn a_front_on_a_cache_and_a_database_gets_the_cache_loss_chain() {
    let (path, t) = corpus("zulip");
    let chains = infer::chains(&t);
    let found: Vec<(&str, &str, &str)> = chains
        .iter()
        .map(|c| (c.front.as_str(), c.cache.as_str(), c.db.as_str()))
        .collect();
    assert_eq!(found, [("zulip", "memcached", "database")]);
    assert!(
        chains[0].why.contains("in `depends_on`"),
        "{}",
        chains[0].why
    );
    let a = plan(&path, &t, Budgets::default());
    let Outcome::Planned { file, note } =
        cell(&a, "zulip → memcached, database", "cache loss → database")
    else {
        panic!("{}", a.table())
    };
    assert!(note.contains("`memcached` killed under load"), "{note}");
    let text = &a.scenarios.iter().find(|(n, _)| n == file).unwrap().1;
    for words in [
        "kind = \"restart\"\ntarget = \"memcached\"",
        "signal = \"KILL\"",
        "probe = \"database-health\"\nfault = \"kill-cache\"",
        "name = \"database-writes\"",
        "rate = 100\ntimeout = \"2s\"\nwarm_up = \"60s\"",
    ] {
        assert!(text.contains(words), "{words}:\n{text}");
    }
    crate::scenario::parse(&path.with_file_name(file).display().to_string(), text)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        text.contains("name = \"memcached-health\"\nkind = \"memcached-set\""),
        "memcached observed in its own protocol:\n{text}"
    );
    let (path, t) = corpus("awesome-compose-nextcloud-redis-mariadb");
    let a = plan(&path, &t, Budgets::default());
    assert!(
        matches!(
            cell(&a, "nc → redis, db", "cache loss → database"),
            Outcome::Planned { .. }
        ),
        "{}",
        a.table()
    );
    let web = audit(WEB_AND_DB);
    let Outcome::Skipped(why) = cell(&web, "every service", "cache loss → database") else {
        panic!("{}", web.table())
    };
    assert!(why.contains("no service depends on both a cache"), "{why}");
}

/// GitHub 2018 inside a group of separate services: the first member cut from the others only
/// (their replicas named as the cut's `peers`), every member's availability and the group's
/// writes judged; the file resolves as `aftershock run` would take it.
#[test]
fn a_group_gets_a_partial_partition_of_its_first_member_from_the_rest() {
    let a = audit(ETCD_TRIO);
    let Outcome::Planned { file, note } = cell(&a, "group etcd", "partial partition") else {
        panic!("{}", a.table())
    };
    assert_eq!(file, "audit-partial-partition-etcd.toml");
    assert!(note.contains("`etcd1` cut from etcd2, etcd3"), "{note}");
    let Outcome::Skipped(why) = cell(&a, "etcd2", "partial partition") else {
        panic!("a member's own row points at its group")
    };
    assert!(why.contains("group `etcd`"), "{why}");
    let Outcome::Skipped(why) = cell(&a, "cache", "partial partition") else {
        panic!("{}", a.table())
    };
    assert!(why.contains("no peer to be cut from"), "{why}");
    assert!(
        a.table().lines().any(|l| l.contains("partial partition")),
        "the grid has the column:\n{}",
        a.table()
    );
    let plan = resolved(ETCD_TRIO, "audit-partial-partition-etcd.toml", |t| t).unwrap();
    let crate::scenario::plan::FaultKind::Cut { peers, shape, .. } = &plan.faults[0].kind else {
        panic!("{:?}", plan.faults[0].kind)
    };
    assert_eq!(
        (peers.as_slice(), *shape),
        (
            &["etcd2".to_string(), "etcd3".to_string()][..],
            crate::scenario::CutShape::Isolate
        )
    );
    let judged: Vec<String> = plan
        .expectations
        .iter()
        .map(|e| format!("{:?}", e.kind))
        .collect();
    assert!(
        judged.iter().any(|k| k.starts_with("FaultVerified")),
        "{judged:?}"
    );
    assert!(
        judged.iter().any(|k| k.starts_with("NoLostWrites")),
        "etcd's writes: {judged:?}"
    );
    assert_eq!(
        judged
            .iter()
            .filter(|k| k.starts_with("RecoversWithin"))
            .count(),
        3,
        "each member's health: {judged:?}"
    );
}

/// A replicated service is its own group: one replica cut from the others; the leader where
/// the service says how to ask.
#[test]
fn a_replicated_service_gets_a_partial_partition_of_one_replica() {
    let a = audit("services:\n  kv:\n    image: memcached:1.6\n    deploy:\n      replicas: 3\n    expose: [\"11211\"]\n");
    let Outcome::Planned { note, .. } = cell(&a, "kv", "partial partition") else {
        panic!("{}", a.table())
    };
    assert!(
        note.starts_with("`kv1` cut from the other replicas"),
        "{note}"
    );
    let text = &a
        .scenarios
        .iter()
        .find(|(n, _)| n == "audit-partial-partition-kv.toml")
        .unwrap()
        .1;
    assert!(text.contains("select = { named = [\"kv1\"] }"), "{text}");
    assert!(!text.contains("peers ="), "{text}");
}

/// Kafka brokers as a held-out file writes them (three services of one image, each naming
/// the ZooKeeper ensemble, not each other): one group by their shared coordinator.
#[test]
fn brokers_that_join_one_coordinator_are_one_group() {
    let brokers: String = (1..=3)
        .map(|i| format!("  kafka{i}:\n    image: wurstmeister/kafka:latest\n    environment:\n      - KAFKA_ZOOKEEPER_CONNECT=zoo1:2181,zoo2:2181\n      - KAFKA_LISTENERS=PLAINTEXT://127.0.0.1:909{i}\n"))
        .collect();
    let zoo = "  zoo1:\n    image: zookeeper:3.8\n    environment:\n      ZOO_SERVERS: zoo1 zoo2\n  zoo2:\n    image: zookeeper:3.8\n    environment:\n      ZOO_SERVERS: zoo1 zoo2\n";
    let a = audit(&format!("services:\n{zoo}{brokers}"));
    let names: Vec<Vec<&str>> = a.groups.iter().map(names).collect();
    assert_eq!(
        names,
        [vec!["zoo1", "zoo2"], vec!["kafka1", "kafka2", "kafka3"]]
    );
    assert!(
        a.groups[1].why.contains("`KAFKA_ZOOKEEPER_CONNECT`"),
        "{}",
        a.groups[1].why
    );
    // Two web services of one build on one database are not a cluster.
    let web = audit("services:\n  db:\n    image: postgres:16\n  web:\n    build: .\n    environment: { DB: db }\n  worker:\n    build: .\n    environment: { DB: db }\n");
    assert!(web.groups.is_empty(), "{}", web.table());
}

/// `name` of the audit of `text` (written to a directory of its own as compose.yml), parsed
/// into a plan: what `aftershock audit` would run.
fn planned_file(text: &str, name: &str) -> crate::scenario::plan::Plan {
    let dir = std::env::temp_dir().join(format!(
        "aftershock-audit-planned-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let compose_path = dir.join("compose.yml");
    std::fs::write(&compose_path, text).unwrap();
    let a = plan(&compose_path, &topology(text), Budgets::default());
    let (_, scenario) = a
        .scenarios
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not planned:\n{}", a.table()));
    let parsed = crate::scenario::parse(&dir.join(name).display().to_string(), scenario);
    std::fs::remove_dir_all(&dir).unwrap();
    parsed.unwrap_or_else(|e| panic!("{e}\n{scenario}"))
}

#[test]
fn a_data_store_s_volume_becomes_a_lossy_disk_for_its_slow_disk() {
    let a = audit(WEB_AND_DB);
    let Outcome::Planned { file, note } = cell(&a, "db", "slow disk") else {
        panic!("{}", a.table())
    };
    assert_eq!(file, "audit-slow-disk-db.toml");
    assert!(
        note.contains("every fsync on volume `pgdata`") && note.contains("500ms"),
        "{note}"
    );
    let Outcome::Skipped(why) = cell(&a, "api1", "slow disk") else {
        panic!("{}", a.table())
    };
    assert!(why.contains("no named volume"), "{why}");
    let plan = planned_file(WEB_AND_DB, "audit-slow-disk-db.toml");
    let db = plan.services.iter().find(|s| s.name == "db").unwrap();
    assert!(db.disk.as_ref().is_some_and(|d| d.lossy), "{db:?}");
    use crate::scenario::plan::FaultKind;
    assert!(
        matches!(plan.faults[0].kind, FaultKind::DiskLatency { .. }),
        "{:?}",
        plan.faults[0]
    );
    // A disk the file declares without `lossy: true`: made lossy for that run, saying so.
    let shop = WEB_AND_DB.replace(
        "  pgdata: {}",
        "  pgdata:\n    x-aftershock:\n      disk: { size_mb: 64 }",
    );
    let a = audit(&shop);
    let Outcome::Planned { file, note } = cell(&a, "db", "slow disk") else {
        panic!("{}", a.table())
    };
    assert_eq!(file, "audit-slow-disk-db.toml");
    assert!(
        note.contains("not `lossy: true`") && note.contains("made lossy for this run"),
        "{note}"
    );
    let plan = planned_file(&shop, "audit-slow-disk-db.toml");
    let db = plan.services.iter().find(|s| s.name == "db").unwrap();
    let disk = db.disk.as_ref().unwrap_or_else(|| panic!("{db:?}"));
    assert!(disk.lossy && disk.size_mb == 64, "{disk:?}");
    // Declared lossy: the disk as it is, nothing added.
    let lossy = shop.replace("size_mb: 64 }", "size_mb: 64, lossy: true }");
    let (_, text) = audit(&lossy)
        .scenarios
        .into_iter()
        .find(|(n, _)| n == "audit-slow-disk-db.toml")
        .unwrap();
    assert!(
        !text.contains("compose_lossy") && !text.contains("compose_disks"),
        "{text}"
    );
}

#[test]
fn a_clock_jump_is_planned_where_libfaketime_can_be_preloaded() {
    // A build (on the project's base, or not): planned; the run checks the preload took.
    let text = "services:\n  cache:\n    build: ./memcached\n    healthcheck:\n      test: [CMD, nc, -z, 127.0.0.1, '11211']\n";
    let a = audit(text);
    let Outcome::Planned { file, note } = cell(&a, "cache", "clock jump") else {
        panic!("{}", a.table())
    };
    assert_eq!(file, "audit-clock-jump-cache.toml");
    assert!(
        note.contains("1 s back") && note.contains("built from `") && note.contains("UNKNOWN"),
        "{note}"
    );
    let planned = planned_file(text, "audit-clock-jump-cache.toml");
    use crate::scenario::plan::FaultKind;
    assert!(
        matches!(
            planned.faults[0].kind,
            FaultKind::Clock {
                offset_ms: -1000,
                ..
            }
        ),
        "{:?}",
        planned.faults[0]
    );
    // One of the project's images (as a scenario names it): planned, 1 s back.
    let mut t = topology(text);
    t.services[0].build = None;
    t.services[0].image = Some("memcached".into());
    let a = plan(Path::new("/x/compose.yml"), &t, Budgets::default());
    let Outcome::Planned { file, note } = cell(&a, "cache", "clock jump") else {
        panic!("{}", a.table())
    };
    assert_eq!(file, "audit-clock-jump-cache.toml");
    assert!(note.contains("1 s back"), "{note}");
    let (_, scenario) = a.scenarios.iter().find(|(n, _)| n == file).unwrap();
    for line in [
        "kind = \"clock\"",
        "offset = \"-1s\"",
        "kind = \"fault-verified\"",
    ] {
        assert!(scenario.contains(line), "{line}:\n{scenario}");
    }
    // An image not built here: libfaketime is not known there. A build of api1: planned.
    let web = audit(WEB_AND_DB);
    let Outcome::Skipped(why) = cell(&web, "db", "clock jump") else {
        panic!("{}", web.table())
    };
    assert!(
        why.contains("image `postgres:16`") && why.contains("libfaketime"),
        "{why}"
    );
    assert!(matches!(
        cell(&web, "api1", "clock jump"),
        Outcome::Planned { .. }
    ));
    let Outcome::Skipped(why) = cell(&web, "web", "clock jump") else {
        panic!("{}", web.table())
    };
    assert!(why.contains("no probe"), "{why}");
    // A Go store, even built here: its clock is read past libfaketime.
    let etcd = "services:\n  etcd:\n    build: ./etcd\n    healthcheck:\n      test: [CMD, etcdctl, endpoint, health]\n";
    let a = audit(etcd);
    let Outcome::Skipped(why) = cell(&a, "etcd", "clock jump") else {
        panic!("{}", a.table())
    };
    assert!(why.contains("Go binary"), "{why}");
}

/// Clerk's remedy where the file offers it: a cache of two replicas gets a second run that
/// kills one of them; a single cache says why there is none and what would make one.
#[test]
fn a_chain_gets_its_remediated_run_where_the_cache_has_replicas_and_says_why_not_elsewhere() {
    let chain = |replicas: u32| {
        format!(
            r#"
services:
  db:
    image: postgres:16
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
  cache:
    image: memcached:1.6
    deploy:
      replicas: {replicas}
  api:
    build: ./api
    environment:
      DATABASE_URL: postgres://postgres@db:5432/postgres
      MEMCACHED: cache:11211
    expose: ["8080"]
"#
        )
    };
    let two = audit(&chain(2));
    let names: Vec<&str> = two.scenarios.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"audit-cache-loss-cache.toml")
            && names.contains(&"audit-cache-loss-cache-one-replica.toml"),
        "{names:?}"
    );
    let text = &two
        .scenarios
        .iter()
        .find(|(n, _)| n == "audit-cache-loss-cache-one-replica.toml")
        .unwrap()
        .1;
    assert!(
        text.contains("target = \"cache\"\nselect = \"one\"\nsignal = \"KILL\""),
        "{text}"
    );
    let _: crate::scenario::file::Scenario =
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let one = audit(&chain(1));
    let Outcome::Planned { note, .. } = cell(&one, "api → cache, db", "cache loss → database")
    else {
        panic!("{}", one.table())
    };
    assert!(
        note.contains("no remediated run: `cache` has one replica")
            && note.contains("deploy.replicas: 2")
            && note.contains("run first until steady"),
        "{note}"
    );
}
