//! The Compose front end on good and bad files (in memory: a fake `read`, a fixed environment).

use super::convert::{mebibytes, split_words};
use super::services;
use crate::scenario::file;
use crate::scenario::ScenarioError;
use std::path::Path;

const GOOD: &str = r#"
name: shop
services:
  api:
    build:
      context: ./api
      args: { VERSION: "${VERSION:-1}" }
    command: toy-api --port 8080 "--name=the api"
    environment:
      DB: postgres://db:5432/${DB_NAME:-shop}
      FROM_SHELL:
    env_file: api.env
    depends_on:
      db: { condition: service_healthy }
      cache: { condition: service_started }
    restart: always
    user: "1000:1000"
    working_dir: /srv
    deploy:
      replicas: 2
      resources: { limits: { memory: 256m, cpus: "0.5" } }
  db:
    image: postgres
    volumes: [pgdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 2s
      timeout: 3s
      retries: 5
    networks:
      back: { aliases: [database] }
  cache:
    image: "memcached:${CACHE_TAG}"
    mem_limit: 128m
    cpus: 0.25
    oom_score_adj: 500
    entrypoint: ["memcached", "-m", "64"]
    scale: 3
volumes:
  pgdata:
    x-aftershock: { disk: { size_mb: 256 } }
networks:
  back: {}
"#;

fn read_from<'a>(
    files: &'a [(&'a str, &'a str)],
) -> impl Fn(&Path) -> std::io::Result<String> + 'a {
    move |p: &Path| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

fn env(name: &str) -> Option<String> {
    match name {
        "CACHE_TAG" => Some("1.6".into()),
        "FROM_SHELL" => Some("yes".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Vec<file::Service>, ScenarioError> {
    let files = [
        ("compose.yml", text),
        ("api.env", "# comment\nLOG=debug\nDB=overridden\n"),
        (".env", "DB_NAME=shop_test\n"),
    ];
    let read = read_from(&files);
    services(Path::new("/x/compose.yml"), &read, &env).map(|t| t.services)
}

fn error_at(text: &str) -> (usize, String) {
    match parse(text).unwrap_err() {
        ScenarioError::At {
            line,
            message,
            file,
            ..
        } => {
            assert_eq!(file, "/x/compose.yml");
            (line, message)
        }
        other => panic!("not located: {other}"),
    }
}

#[test]
fn a_good_file_gives_services_in_bring_up_order() {
    let s = parse(GOOD).unwrap();
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "cache", "api"]);
    let (db, cache, api) = (&s[0], &s[1], &s[2]);
    assert_eq!(db.image.as_deref(), Some("postgres:latest"));
    assert_eq!(
        db.disk.as_ref().map(|d| (d.size_mb, d.path.as_str())),
        Some((256, "/var/lib/postgresql/data"))
    );
    let ready = db.ready.as_ref().unwrap();
    assert_eq!(
        ready.exec.as_ref().unwrap(),
        &["sh", "-c", "pg_isready -U postgres"]
    );
    assert_eq!(ready.interval, Some(std::time::Duration::from_secs(2)));
    assert_eq!(
        ready.attempt_timeout,
        Some(std::time::Duration::from_secs(3))
    );
    assert!(db.aliases.is_empty(), "{:?}", db.aliases);
    assert_eq!(db.extras.networks[0].aliases, ["database"]);
    assert_eq!(cache.image.as_deref(), Some("memcached:1.6"));
    assert_eq!(
        (cache.replicas, cache.memory_mib, cache.cpus),
        (3, Some(128), Some(0.25))
    );
    assert_eq!(cache.aliases, ["cache"]);
    assert_eq!(cache.oom_score_adj, Some(500));
    assert_eq!(
        cache.entrypoint.as_ref().unwrap(),
        &["memcached", "-m", "64"]
    );
    let build = api.build.as_ref().unwrap();
    assert_eq!(
        (build.context.as_str(), build.args["VERSION"].as_str()),
        ("/x/./api", "1")
    );
    assert_eq!(api.command, ["toy-api", "--port", "8080", "--name=the api"]);
    assert_eq!(
        api.env["DB"], "postgres://db:5432/shop_test",
        "environment wins over env_file; .env interpolates"
    );
    assert_eq!(
        (api.env["LOG"].as_str(), api.env["FROM_SHELL"].as_str()),
        ("debug", "yes")
    );
    assert_eq!(
        (api.replicas, api.memory_mib, api.cpus),
        (2, Some(256), Some(0.5))
    );
    assert_eq!(api.restart.as_deref(), Some("always"));
    assert_eq!(
        (api.user.as_deref(), api.working_dir.as_deref()),
        (Some("1000:1000"), Some("/srv"))
    );
    let uses: Vec<&str> = api.uses.iter().map(|u| u.get_ref().as_str()).collect();
    assert_eq!(uses, ["db", "cache"]);
    let started = api.uses_started.iter().map(|u| u.get_ref().as_str());
    assert_eq!(
        started.collect::<Vec<_>>(),
        ["cache"],
        "service_healthy waits for db"
    );
}

#[test]
fn an_unsupported_key_is_refused_with_its_line() {
    let text = "services:\n  db:\n    image: x\n    privilegd: true\n";
    let (line, message) = error_at(text);
    assert_eq!(line, 4);
    assert!(
        message.contains("`services.db.privilegd`") && message.contains("spelling"),
        "{message}"
    );
    let text = "services:\n  db:\n    image: x\n    deploy:\n      replicas: 2\n      nope: {}\n";
    let (line, message) = error_at(text);
    assert_eq!(line, 6);
    assert!(message.contains("`services.db.deploy.nope`"), "{message}");
    let (line, message) = error_at("services:\n  db:\n    image: x\n    extends: { service: y }\n");
    assert_eq!(line, 4);
    assert!(
        message.contains("extends `y`, which is not a service of this file (services: db)"),
        "{message}"
    );
    let (line, message) = error_at("services:\n  a:\n    extends: b\n  b:\n    extends: a\n");
    assert_eq!(line, 3);
    assert!(
        message.contains("`extends` has a cycle among: a, b"),
        "{message}"
    );
    let (line, message) = error_at("services:\n  db:\n    image: x\nmodels: { m: { model: x } }\n");
    assert_eq!(line, 4);
    assert!(message.contains("`models`"), "{message}");
}

/// Reads `files` (name, text) under `/x/`, as `services_of` of the first.
fn topology_of(files: &[(&str, &str)]) -> Result<super::Topology, ScenarioError> {
    let read = |p: &Path| {
        files
            .iter()
            .find(|(n, _)| Path::new("/x").join(n) == p)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    let first = Path::new("/x").join(files[0].0);
    super::services_of(&[first.as_path()], &read, &env)
}

#[test]
fn included_files_are_laid_under_with_their_paths_their_own() {
    let main = "include:\n  - sub/db.yml\nservices:\n  api:\n    image: a\n    depends_on: [db]\n  db:\n    environment: { MAIN: yes }\n";
    let sub = "include: [more.yml]\nservices:\n  db:\n    image: postgres\n    volumes: [./conf:/etc/db:ro]\n";
    let more = "services:\n  cache:\n    build: ./cache\n";
    let t = topology_of(&[
        ("compose.yml", main),
        ("sub/db.yml", sub),
        ("sub/more.yml", more),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = t.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let db = t.services.iter().find(|s| s.name == "db").unwrap();
    assert_eq!(db.image.as_deref(), Some("postgres:latest"));
    assert_eq!(db.env.get("MAIN").map(String::as_str), Some("yes"));
    assert_eq!(db.extras.mounts[0].source, Path::new("/x/sub/conf"));
    let cache = t.services.iter().find(|s| s.name == "cache").unwrap();
    assert_eq!(cache.build.as_ref().unwrap().context, "/x/sub/cache");
    let looped = topology_of(&[(
        "compose.yml",
        "include: [compose.yml]\nservices: { a: { image: x } }\n",
    )]);
    let message = looped.unwrap_err().to_string();
    assert!(
        message.contains("compose.yml:1:1") && message.contains("more than 8"),
        "{message}"
    );
}

#[test]
fn a_named_volume_of_two_services_is_shared_and_extends_goes_through_files() {
    let main = "services:\n  web:\n    extends: { file: base.yml, service: web }\n    volumes: [media:/media]\n  worker:\n    image: w\n    volumes: [media:/media, own:/own]\nvolumes: { media: {}, own: {} }\n";
    let base = "services:\n  web:\n    extends: { file: common.yml, service: app }\n";
    let common = "services:\n  app:\n    image: shop\n";
    let t = topology_of(&[
        ("compose.yml", main),
        ("base.yml", base),
        ("common.yml", common),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let web = t.services.iter().find(|s| s.name == "web").unwrap();
    let worker = t.services.iter().find(|s| s.name == "worker").unwrap();
    assert_eq!(web.image.as_deref(), Some("shop:latest"));
    let media = vec![("media".to_string(), "/media".to_string())];
    assert_eq!(web.extras.shared_volumes, media);
    assert_eq!(worker.extras.shared_volumes, media);
    assert_eq!(worker.volumes, ["own:/own"]);
    assert!(web.volumes.is_empty());
    let renamed = "services:\n  celery_worker:\n    image: x\n  web:\n    image: y\n    depends_on: [celery_worker]\n";
    let t = topology_of(&[("compose.yml", renamed)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.services[0].name, "celery-worker");
    assert_eq!(t.services[0].aliases, ["celery_worker"]);
    assert_eq!(t.services[1].uses, [file::reference("celery-worker")]);
    assert!(t
        .notes
        .iter()
        .any(|n| n.line == 2 && n.reason.contains("still reach it as `celery_worker`")));
}

#[test]
fn a_depends_on_cycle_is_an_error() {
    let text = "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n";
    let (line, message) = error_at(text);
    assert_eq!(line, 4);
    assert!(
        message.contains("cycle") && message.contains("a, b, c"),
        "{message}"
    );
}

#[test]
fn bad_services_are_refused_where_they_are() {
    let cases: &[(&str, usize, &str)] = &[
        ("services:\n  db:\n    image: x\n    depends_on: [nope]\n", 4, "not a service"),
        ("services:\n  db:\n    image: x\n    healthcheck: { disable: true }\n  api:\n    image: y\n    depends_on:\n      db: { condition: service_healthy }\n", 7, "turns `db`'s health check off"),
        ("services:\n  db:\n    image: x\n    volumes: [{ type: npipe, source: a, target: /b }]\n", 4, "type `npipe`"),
        ("services:\n  a:\n    image: x\n  db:\n    image: x\n    depends_on: { a: { condition: service_done } }\n", 6, "`service_done` is not a `depends_on` condition"),
        // `my_db` would be `my-db`, which the file has already.
        ("services:\n  my_db:\n    image: x\n  my-db:\n    image: y\n", 2, "a-z, 0-9 and -"),
        ("services:\n  db:\n    command: x\n", 2, "needs `image` or `build`"),
        ("services:\n  db:\n    image: \"${TAG:?set TAG}\"\n", 3, "set TAG"),
        ("services:\n  db:\n    image: x\n    restart: sometimes\n", 4, "restart `sometimes`"),
        ("services:\n  db:\n    image: x\n    scale: 2\n    deploy: { replicas: 3 }\n", 5, "disagree"),
    ];
    for (text, line, needle) in cases {
        let (at, message) = error_at(text);
        assert!(message.contains(needle), "{text}: {message}");
        assert_eq!(at, *line, "{text}: {message}");
    }
}

#[test]
fn words_and_sizes() {
    assert_eq!(
        split_words(r#"sh -c 'echo $X' "a b" c\ d"#).unwrap(),
        ["sh", "-c", "echo $X", "a b", "c d"]
    );
    assert!(split_words("'open").is_err());
    assert_eq!(mebibytes("512m").unwrap(), 512);
    assert_eq!(mebibytes("1g").unwrap(), 1024);
    assert_eq!(mebibytes("128MB").unwrap(), 128);
    assert_eq!(mebibytes("134217728").unwrap(), 128);
    assert!(mebibytes("lots").is_err());
}

#[test]
fn write_templates_come_from_the_service_extension() {
    let text = "services:\n  db:\n    image: x\n    x-aftershock:\n      write: [sh, -c, \"echo {n} >> /j\"]\n      read: [cat, /j]\n";
    let files = [("compose.yml", text)];
    let read = read_from(&files);
    let t = services(Path::new("/x/compose.yml"), &read, &env).unwrap();
    assert_eq!(t.writes["db"].read, ["cat", "/j"]);
    let bad = "services:\n  db:\n    image: x\n    x-aftershock:\n      writes: []\n";
    let (line, message) = error_at(bad);
    assert_eq!(line, 4);
    assert!(message.contains("writes"), "{message}");
}

#[test]
fn merge_keys_bring_their_keys_and_their_lines() {
    let text = "x-defaults: &defaults\n  restart: always\n  mem_limit: 64m\nservices:\n  db:\n    <<: *defaults\n    image: x\n  api:\n    <<: *defaults\n    image: y\n    mem_limit: 32m\n";
    let s = parse(text).unwrap();
    let got: Vec<(&str, Option<&str>, Option<u64>)> = s
        .iter()
        .map(|s| (s.name.as_str(), s.restart.as_deref(), s.memory_mib))
        .collect();
    assert_eq!(
        got,
        [
            ("db", Some("always"), Some(64)),
            ("api", Some("always"), Some(32))
        ]
    );
    // A key merged in is refused where it is written: in the anchored mapping.
    let text = "x-defaults: &defaults\n  privilegd: true\nservices:\n  db:\n    image: x\n    <<: *defaults\n";
    let (line, message) = error_at(text);
    assert_eq!(line, 2);
    assert!(message.contains("`services.db.privilegd`"), "{message}");
}

#[test]
fn yaml_mistakes_are_refused_where_they_are() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "services:\n  db:\n    image: x\n    image: y\n",
            4,
            "duplicated key",
        ),
        ("services:\n  db:\n    image: [x\n", 4, "not a Compose file"),
        (
            "services:\n  db:\n    image: x\n    command: !reset []\n",
            4,
            "`!reset`",
        ),
        (
            "services:\n  db:\n    image: x\n    deploy: { replicas: 2, nope: {} }\n",
            4,
            "`services.db.deploy.nope`",
        ),
    ];
    for (text, line, needle) in cases {
        let (at, message) = error_at(text);
        assert!(message.contains(needle), "{text}: {message}");
        assert_eq!(at, *line, "{text}: {message}");
    }
}

#[test]
fn what_is_accepted_but_not_acted_on_is_said_where_it_is() {
    let text = "name: shop\nservices:\n  web:\n    image: x\n    container_name: shop-web\n    ports: [\"8080:80\"]\n    volumes: [./conf:/etc/x:ro, data:/data]\n    networks: [front, back]\n    depends_on:\n      db: { condition: service_started, restart: true }\n      gone: { condition: service_started, required: false }\n  db:\n    image: y\n    cap_add: [IPC_LOCK]\n  debug:\n    image: z\n    profiles: [debug]\nvolumes:\n  data: { driver: local }\nnetworks:\n  front: {}\n  back: { internal: true }\n";
    let files = [("compose.yml", text)];
    let read = read_from(&files);
    let t = services(Path::new("/x/compose.yml"), &read, &env).unwrap();
    let names: Vec<&str> = t.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "web"], "the profiled service is left out");
    assert_eq!(t.services[1].volumes, ["data:/data"]);
    let mounts = &t.services[1].extras.mounts;
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].source, Path::new("/x/conf"));
    assert_eq!(
        (mounts[0].target.as_str(), mounts[0].read_only),
        ("/etc/x", true)
    );
    let said: Vec<(usize, &str)> = t.notes.iter().map(|n| (n.line, n.key.as_str())).collect();
    assert_eq!(
        said,
        [
            (1, "name"),
            (5, "services.web.container_name"),
            (6, "services.web.ports"),
            (8, "services.web.networks"),
            (10, "services.web.depends_on.db.restart"),
            (14, "services.db.cap_add"),
            (17, "services.debug.profiles"),
            (19, "volumes.data.driver"),
            (22, "networks.back.internal"),
        ]
    );
    let ports = t.notes[2].to_string();
    assert!(
        ports.starts_with("/x/compose.yml:6: service `web`: `ports`: not published on the host"),
        "{ports}"
    );
    let cap_add = t.notes[5].to_string();
    assert!(
        cap_add.starts_with("/x/compose.yml:14: service `db`: ignored: `cap_add` ("),
        "{cap_add}"
    );
}

/// A file using every key that reaches the host or the engine, as the plan holds it.
const EXTRAS: &str = r#"
services:
  web:
    build: { context: ./web, target: runtime }
    container_name: shop-web
    ports: ["127.0.0.1:8080:80/tcp", "9090", { target: 7000, published: 7001 }]
    volumes:
      - ./conf:/etc/web:ro
      - { type: bind, source: ./data, target: /data }
    secrets: [db_password, { source: api_key, target: key.txt }]
    configs: [{ source: web_conf, target: /etc/web.conf }, motd]
    networks:
      front: { aliases: [www] }
      back:
    stop_signal: SIGINT
    stop_grace_period: 1m30s
secrets:
  db_password: { file: ./secrets/db.txt }
  api_key: { file: api.key }
configs:
  web_conf: { file: ./web.conf }
  motd: { content: "hello" }
networks: { front: {}, back: {} }
"#;

fn plan_of(services: Vec<file::Service>) -> crate::scenario::Plan {
    let mut s = file::Scenario::new("x", std::time::Duration::from_secs(1));
    s.topology.services = services;
    crate::scenario::resolve::resolve(&s).unwrap_or_else(|_| panic!("does not resolve"))
}

#[test]
fn the_keys_that_reach_the_host_are_in_the_plan() {
    let files = [("compose.yml", EXTRAS)];
    let read = read_from(&files);
    let t = services(Path::new("/p/compose.yml"), &read, &env).unwrap();
    let plan = plan_of(t.services.clone());
    let web = &plan.services[0];
    // build.target: the stage the image is built from.
    assert_matches::assert_matches!(&web.image, crate::scenario::plan::Image::Build { target: Some(t), .. } if t == "runtime");
    // Bind mounts, secrets (/run/secrets), configs (the target, or /NAME): host paths, read-only.
    let mounts: Vec<(&str, &str, bool)> = web
        .extras
        .mounts
        .iter()
        .map(|m| (m.source.to_str().unwrap(), m.target.as_str(), m.read_only))
        .collect();
    assert_eq!(
        mounts,
        [
            ("/p/conf", "/etc/web", true),
            ("/p/data", "/data", false),
            ("/p/secrets/db.txt", "/run/secrets/db_password", true),
            ("/p/api.key", "/run/secrets/key.txt", true),
            ("/p/web.conf", "/etc/web.conf", true),
        ]
    );
    assert!(web
        .extras
        .mounts
        .iter()
        .all(|m| m.project == Path::new("/p")));
    // Networks: each with the service's aliases (container_name among them), not on the run's
    // own network (a service reaches them on a network it shares, as with Compose).
    let nets: Vec<(&str, Vec<&str>)> = web
        .extras
        .networks
        .iter()
        .map(|n| {
            (
                n.name.as_str(),
                n.aliases.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        nets,
        [
            ("front", vec!["www", "shop-web"]),
            ("back", vec!["shop-web"])
        ]
    );
    assert!(
        web.aliases.is_empty(),
        "on the file's networks only: {:?}",
        web.aliases
    );
    assert_eq!(web.extras.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(
        web.extras.stop_grace,
        Some(std::time::Duration::from_secs(90))
    );
    // Ports: probe targets, not published; said.
    assert_eq!(t.hints["web"].expose, [80, 9090, 7000]);
    let said: Vec<String> = t.notes.iter().map(|n| n.to_string()).collect();
    let has = |needle: &str| said.iter().any(|n| n.contains(needle));
    assert!(has("`ports`: not published on the host"), "{said:#?}");
    assert!(
        has("`container_name`: the container is named by the run"),
        "{said:#?}"
    );
    assert!(
        has("`motd` not mounted at /motd: only configs with a `file:`"),
        "{said:#?}"
    );
    assert!(has("`networks`: each is a network of the run"), "{said:#?}");
}

#[test]
fn a_host_path_outside_the_project_is_not_mounted_and_said_where_it_is() {
    for text in [
        "services:\n  a:\n    image: x\n    volumes: [\"../up:/x\"]\n",
        "services:\n  a:\n    image: x\n    volumes: [\"/etc:/x:ro\"]\n",
        "services:\n  a:\n    image: x\n    volumes: [\"~/.ssh:/x\"]\n",
        "services:\n  a:\n    image: x\n    volumes: [{ type: bind, source: ./a/../../b, target: /x }]\n",
        "services:\n  a:\n    image: x\n    secrets: [s]\nsecrets:\n  s: { file: /etc/shadow }\n",
    ] {
        let files = [("compose.yml", text)];
        let read = read_from(&files);
        let t = services(Path::new("/p/compose.yml"), &read, &env).unwrap();
        assert!(t.services[0].extras.mounts.is_empty(), "{text}");
        let note = t.notes.iter().find(|n| n.line == 4).map(|n| n.to_string());
        let note = note.unwrap_or_default();
        assert!(note.contains("not mounted at /x") || note.contains("not mounted at /run/secrets/s"), "{text}: {note}");
        assert!(note.contains("outside the project directory /p"), "{text}: {note}");
    }
    let files = [(
        "compose.yml",
        "services:\n  a:\n    image: x\n    secrets: [nope]\n",
    )];
    let read = read_from(&files);
    let t = services(Path::new("/p/compose.yml"), &read, &env).unwrap();
    let note = t.notes[0].to_string();
    assert!(note.contains("/p/compose.yml:4: service `a`: `secrets`: not mounted at /run/secrets/nope: `nope` is not defined in the top-level `secrets`"), "{note}");
    let (at, message) = error_at("services:\n  a:\n    image: x\n    stop_grace_period: soon\n");
    assert!(message.contains("`soon`"), "{message}");
    assert_eq!(at, 4);
}

#[test]
fn a_flow_list_closed_at_its_keys_column_reads_as_docker_compose_reads_it() {
    // As in opentelemetry-demo and sentry-self-hosted: `]` at the column of `command:`.
    let text = "services:\n  flagd:\n    image: x\n    command: [\n      \"start\",\n      # a comment\n      \"--uri\"\n    ]\n    healthcheck:\n      test: [\n          \"CMD\", \"true\"\n      ]\n      retries: \"${RETRIES}\"\n      interval: \"${INTERVAL}\"\n    entrypoint: [\"a\",\n  ]\n";
    let s = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s[0].command, ["start", "--uri"]);
    assert_eq!(
        s[0].ready.as_ref().unwrap().exec.as_ref().unwrap(),
        &["true"]
    );
    // An unset variable where a number or a duration goes: Compose's default.
    assert_eq!(s[0].ready.as_ref().unwrap().interval, None);
    let (line, message) =
        error_at("services:\n  a:\n    image: x\n    command: [\n  \"b\"\n]\n  b: [\n");
    assert!(message.contains("not a Compose file"), "{message}");
    assert!(line >= 5, "{line}: {message}");
}

#[test]
fn an_override_file_is_laid_over_and_its_keys_are_said_where_it_writes_them() {
    let base = "services:\n  web:\n    image: a\n    command: [x]\n    ports: [\"80\"]\n";
    let over =
        "services:\n  web:\n    image: b\n    tty: true\n    command: [y]\n  db:\n    image: c\n";
    let files = [("compose.yml", base), ("override.yml", over)];
    let read = read_from(&files);
    let paths = [Path::new("/p/compose.yml"), Path::new("/p/override.yml")];
    let t = super::services_of(&paths, &read, &env).unwrap();
    let web = t.services.iter().find(|s| s.name == "web").unwrap();
    assert_eq!(web.image.as_deref(), Some("b:latest"));
    assert_eq!(web.command, ["y"]);
    assert!(t.services.iter().any(|s| s.name == "db"));
    let said: Vec<String> = t.notes.iter().map(|n| n.to_string()).collect();
    assert!(said.contains(&"/p/compose.yml:5: service `web`: `ports`: not published on the host: probes reach the container port at each replica's address on the run's network".to_string()), "{said:#?}");
    assert!(
        said.iter()
            .any(|n| n.starts_with("/p/override.yml:4: service `web`: ignored: `tty`")),
        "{said:#?}"
    );
    // A refusal in the override names the override's line.
    let files = [
        ("compose.yml", base),
        ("override.yml", "services:\n  web:\n    volumes_from: [x]\n"),
    ];
    let read = read_from(&files);
    match super::services_of(&paths, &read, &env).unwrap_err() {
        ScenarioError::At { file, line, .. } => {
            assert_eq!((file.as_str(), line), ("/p/override.yml", 3))
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_service_that_extends_another_has_its_keys_under_its_own() {
    let text = "services:\n  base:\n    image: app\n    environment: { A: \"1\", B: \"2\" }\n    command: [serve]\n  worker:\n    extends: base\n    environment: { B: \"3\" }\n    command: [work]\n  web:\n    extends: { service: common, file: common.yml }\n    mem_limit: 64m\n";
    let common = "services:\n  common:\n    image: web\n    mem_limit: 32m\n    user: \"1000\"\n";
    let files = [("compose.yml", text), ("common.yml", common)];
    let read = read_from(&files);
    let t = services(Path::new("/p/compose.yml"), &read, &env).unwrap();
    let worker = t.services.iter().find(|s| s.name == "worker").unwrap();
    assert_eq!(worker.image.as_deref(), Some("app:latest"));
    assert_eq!(worker.command, ["work"]);
    assert_eq!(worker.env.get("A").map(String::as_str), Some("1"));
    assert_eq!(worker.env.get("B").map(String::as_str), Some("3"));
    let web = t.services.iter().find(|s| s.name == "web").unwrap();
    assert_eq!(web.image.as_deref(), Some("web:latest"));
    assert_eq!(
        (web.memory_mib, web.user.as_deref()),
        (Some(64), Some("1000"))
    );
}

#[test]
fn a_missing_env_file_plans_with_a_warning_that_stops_a_run() {
    let text = "services:\n  app:\n    image: x\n    env_file: .env\n    environment: { A: \"1\" }\n  web:\n    image: y\n    env_file:\n      - path: ./web.env\n        required: false\n      - path: ./given.env\n";
    let files = [
        ("compose.yml", text),
        (".env.example", "A=\n"),
        ("given.env", "B=2\n"),
    ];
    let t = topology_of(&files).unwrap_or_else(|e| panic!("{e}"));
    let blocking: Vec<String> = crate::scenario::values::Note::blocking(&t.notes)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(blocking.len(), 1, "{blocking:?}");
    let note = &blocking[0];
    for words in [
        "/x/compose.yml:4: service `app`: warning: `env_file`: `.env`",
        "its variables are unset",
        "`docker compose` refuses this file until it exists",
        "cp .env.example .env",
    ] {
        assert!(note.contains(words), "`{words}` not in {note}");
    }
    let web = t.services.iter().find(|s| s.name == "web").unwrap();
    assert_eq!(web.env["B"], "2", "the long form's file is read");
    // A template the project does not ship: the fix says where to look.
    let alone = [(
        "compose.yml",
        "services:\n  app:\n    image: x\n    env_file: [conf/app.env]\n",
    )];
    let t = topology_of(&alone).unwrap();
    let note = &t.notes.iter().find(|n| n.blocks_run).unwrap().reason;
    assert!(
        note.contains("`conf/app.env`") && note.contains("documentation"),
        "{note}"
    );
}

#[test]
fn an_unset_required_variable_of_a_container_plans_with_a_warning() {
    let text = "services:\n  db:\n    image: x\n    environment:\n      PASSWORD: ${PG_PASS:?database password required}\n    command: [\"--key=${KEY:?set KEY}\"]\n";
    let t = topology_of(&[("compose.yml", text)]).unwrap_or_else(|e| panic!("{e}"));
    let blocking: Vec<&super::Note> = crate::scenario::values::Note::blocking(&t.notes).collect();
    assert_eq!(blocking.len(), 2, "{:?}", t.notes);
    assert_eq!(blocking[0].line, 5);
    assert!(
        blocking[0]
            .reason
            .contains("PG_PASS is unset (database password required)"),
        "{}",
        blocking[0].reason
    );
    assert_eq!(t.services[0].env["PASSWORD"], "");
    assert!(blocking[1].reason.contains("KEY is unset (set KEY)"));
}

#[test]
fn a_wait_on_an_image_health_check_plans_and_says_so() {
    let text = "services:\n  dns:\n    image: unbound\n  web:\n    image: y\n    healthcheck: { disable: false }\n  app:\n    image: z\n    depends_on:\n      dns: { condition: service_healthy }\n      web: { condition: service_healthy }\n";
    let t = topology_of(&[("compose.yml", text)]).unwrap_or_else(|e| panic!("{e}"));
    let dns = t.services.iter().find(|s| s.name == "dns").unwrap();
    let wait = dns.extras.image_health.as_ref().unwrap();
    assert_eq!(
        (wait.at.as_str(), wait.waiter.as_str()),
        ("/x/compose.yml:10", "app")
    );
    let web = t.services.iter().find(|s| s.name == "web").unwrap();
    assert!(
        web.extras.image_health.is_some(),
        "no test: the image's check"
    );
    let note = t
        .notes
        .iter()
        .find(|n| n.key == "services.app.depends_on.dns")
        .unwrap();
    assert!(
        note.reason
            .contains("the image's own health check of `dns`"),
        "{}",
        note.reason
    );
    assert!(!note.blocks_run);
    assert_eq!(t.services.last().unwrap().name, "app");
}

#[test]
fn an_image_health_check_maps_as_a_compose_one() {
    use super::{image_ready, HealthTimes};
    use crate::scenario::Check;
    use std::time::Duration;
    let s = Duration::from_secs;
    let test = ["CMD-SHELL".to_string(), "drill example.org".to_string()];
    let times = HealthTimes {
        interval: Some(s(30)),
        timeout: Some(s(5)),
        start_period: Some(s(10)),
        start_interval: Some(s(2)),
        retries: 5,
    };
    let ready = image_ready(&test, times).unwrap();
    assert_eq!(
        ready.check,
        Check::Exec(vec!["sh".into(), "-c".into(), "drill example.org".into()])
    );
    assert_eq!((ready.interval, ready.attempt_timeout), (s(2), s(5)));
    assert_eq!(ready.timeout, s(90), "at least the default wait");
    let none = HealthTimes::default();
    let cmd = ["CMD".to_string(), "true".to_string()];
    let ready = image_ready(&cmd, none).unwrap();
    assert_eq!(ready.check, Check::Exec(vec!["true".into()]));
    assert_eq!(
        (ready.interval, ready.attempt_timeout),
        (Duration::from_millis(100), s(1))
    );
    assert!(image_ready(&["NONE".to_string()], none).is_none());
    assert!(image_ready(&[], none).is_none());
}

#[test]
fn an_empty_key_and_a_profile_only_the_env_names_are_what_compose_makes_of_them() {
    let text = "services:\n  dockergen:\n    image: x\n    environment:\n      # only a comment\n  worker:\n    image: y\n    profiles: [separate]\n";
    let files = [
        ("compose.yml", text),
        (".env", "COMPOSE_PROFILES=mongodb\n"),
    ];
    let t = topology_of(&files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.services.len(), 1);
    assert!(
        t.notes
            .iter()
            .any(|n| n.reason.contains("`COMPOSE_PROFILES` names `mongodb`")),
        "{:?}",
        t.notes
    );
}

#[test]
fn a_service_others_wait_on_to_complete_is_a_job_the_audit_leaves_alone() {
    let text = "services:\n  db:\n    image: postgres\n  migrate:\n    image: app\n    command: migrate\n  api:\n    image: app\n    depends_on:\n      migrate: { condition: service_completed_successfully }\n      db: { condition: service_started }\n";
    let t = topology_of(&[("compose.yml", text)]).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = t.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "migrate", "api"]);
    assert!(t.services[1].extras.runs_once && !t.services[0].extras.runs_once);
    let api = &t.services[2];
    assert_eq!(api.uses.len(), 2);
    assert_eq!(
        api.uses_started,
        [file::reference("db")],
        "waits for the job's end"
    );
    let note = t
        .notes
        .iter()
        .find(|n| n.key == "services.api.depends_on.migrate")
        .unwrap();
    assert!(note
        .reason
        .contains("`migrate` runs to completion before `api` starts"));
    let audit = crate::audit::plan(Path::new("/x/compose.yml"), &t, Default::default());
    assert!(
        audit.probes.iter().all(|(s, _)| s != "migrate"),
        "{:?}",
        audit.probes
    );
    assert!(audit.rows.iter().all(|r| !r.subject.contains("migrate")));
    assert!(!audit.scenarios.is_empty());
}
