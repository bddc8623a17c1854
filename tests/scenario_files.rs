//! Scenario files: every file in scenarios/ is valid, and malformed files are rejected with
//! an error that names file:line:column and what is expected — never a panic.

use aftershock_model::scenario::plan::{FaultKind, ServiceKind};
use aftershock_model::scenario::{self, ScenarioError};

/// Loads every `*.toml` in `dir` (relative to the root); returns how many.
fn load_all(dir: &str) -> usize {
    let dir = aftershock_tests::root().join(dir);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    n
}

#[test]
fn every_scenario_file_is_valid() {
    assert!(
        load_all("scenarios") >= 2,
        "expected the incident scenario files"
    );
}

#[test]
fn the_tutorial_scenario_is_valid() {
    assert!(
        load_all("examples/scenarios") >= 1,
        "expected the tutorial's scenario"
    );
}

#[test]
fn the_example_scenarios_are_valid() {
    assert!(
        load_all("scenarios/examples") >= 1,
        "expected scenarios/examples/postgres-replica.toml"
    );
}

/// The platform tier's own scenarios (`make test-platforms` runs them in its cgroup v2 VM).
#[test]
fn the_platform_scenarios_are_valid() {
    assert!(
        load_all("scenarios/platform") >= 1,
        "expected scenarios/platform/netem-delay.toml"
    );
}

const GOOD: &str = r#"
name = "t"
duration = "10s"

[[topology.service]]
name = "zk"
preset = "zookeeper"
replicas = 3

[[probe]]
name = "w"
kind = "zookeeper-write"
target = "zk"

[[fault]]
name = "f"
kind = "restart"
at = "2s"
target = "zk"
select = { count = 2 }
down_for = "1s"

[[expect]]
kind = "recovers-within"
probe = "w"
fault = "f"
budget = "5s"
"#;

/// Parses GOOD with `from` replaced by `to`; returns (line, column, message) of the error.
fn error_of(from: &str, to: &str) -> (usize, usize, String) {
    assert!(GOOD.contains(from), "test bug: {from:?} not in GOOD");
    let text = GOOD.replacen(from, to, 1);
    match scenario::parse("bad.toml", &text) {
        Ok(_) => panic!("accepted a malformed scenario: {from:?} → {to:?}"),
        Err(ScenarioError::At {
            file,
            line,
            column,
            message,
        }) => {
            assert_eq!(file, "bad.toml");
            let shown = ScenarioError::At {
                file,
                line,
                column,
                message: message.clone(),
            }
            .to_string();
            assert!(
                shown.starts_with(&format!("bad.toml:{line}:{column}: ")),
                "{shown}"
            );
            (line, column, message)
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[test]
fn the_good_scenario_parses() {
    let s = scenario::parse("good.toml", GOOD).unwrap();
    assert_eq!(s.services[0].replicas, ["zk1", "zk2", "zk3"]);
    assert_eq!(
        s.faults[0].kind.down_for(),
        Some(std::time::Duration::from_secs(1))
    );
}

#[test]
fn malformed_files_name_line_column_and_what_is_expected() {
    // (replace this, with this, expected line, words the message must contain)
    let cases: &[(&str, &str, usize, &[&str])] = &[
        (
            "duration = \"10s\"",
            "duration = \"ten seconds\"",
            3,
            &["duration"],
        ),
        (
            "replicas = 3",
            "replicas = \"three\"",
            8,
            &["expected usize"],
        ),
        (
            "preset = \"zookeeper\"",
            "preset = \"zookeper\"",
            7,
            &["zookeper", "zookeeper"],
        ),
        (
            "kind = \"zookeeper-write\"",
            "kind = \"zk-write\"",
            12,
            &["zk-write"],
        ),
        (
            "target = \"zk\"\n\n[[fault]]",
            "target = \"kz\"\n\n[[fault]]",
            13,
            &["unknown service `kz`", "zk"],
        ),
        (
            "select = { count = 2 }",
            "select = { count = 4 }",
            19,
            &["4 of the 3"],
        ),
        ("fault = \"f\"", "fault = \"g\"", 26, &["unknown fault `g`"]),
        ("budget = \"5s\"", "budjet = \"5s\"", 27, &["budjet"]),
        ("[[expect]]", "[[expect]\n", 23, &[]),
        ("down_for = \"1s\"", "", 16, &["down_for"]),
    ];
    for (from, to, line, words) in cases {
        let (l, c, message) = error_of(from, to);
        println!("{l}:{c}: {message}");
        assert_eq!(l, *line, "{from:?} → {to:?}: {message} (at {l}:{c})");
        assert!(c >= 1);
        for w in *words {
            assert!(
                message.contains(w),
                "{from:?} → {to:?}: message {message:?} should mention {w:?}"
            );
        }
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let e = scenario::load(std::path::Path::new("scenarios/no-such-file.toml")).unwrap_err();
    assert!(e.to_string().contains("no-such-file.toml"), "{e}");
}

const CACHE: &str = r#"
name = "c"
duration = "30s"

[[topology.service]]
name = "pg"
preset = "postgres"

[[topology.service]]
name = "mc"
preset = "memcached"
memory_mib = 200
oom_score_adj = 1000

[[topology.service]]
name = "api"
preset = "toy-api"
uses = ["pg", "mc"]

[[probe]]
name = "load"
kind = "load"
target = "api"
path = "/item/{key}"
rate = 200
keys = 500

[[fault]]
name = "leak"
kind = "leak"
at = "10s"
target = "mc"
down_for = "5s"

[[expect]]
kind = "oom-kill-within"
fault = "leak"
victim = "memcached"
budget = "10s"

[[expect]]
kind = "latency-rises"
probe = "load"
fault = "leak"
ratio = 100.0
"#;

#[test]
fn cache_scenarios_are_checked_before_anything_starts() {
    scenario::parse("cache.toml", CACHE).unwrap_or_else(|e| panic!("{e}"));
    // (replace this, with this, words the message must contain)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "oom_score_adj = 1000",
            "oom_score_adj = -500",
            &["-500", "negative"],
        ),
        ("memory_mib = 200\n", "", &["memory_mib"]),
        // A leak works in any service, but only one with a memory limit ends in an OOM kill.
        (
            "target = \"mc\"\ndown_for",
            "target = \"pg\"\ndown_for",
            &["memory_mib"],
        ),
        ("down_for = \"5s\"", "", &["down_for"]),
        ("rate = 200", "", &["rate"]),
        ("keys = 500", "", &["keys"]),
        // A warm-up is the longest it may take: 1 s to 600 s.
        (
            "keys = 500",
            "keys = 500\nwarm_up = \"0s\"",
            &["warm_up", "600s"],
        ),
        (
            "keys = 500",
            "keys = 500\nwarm_up = \"11m\"",
            &["warm_up", "600s"],
        ),
        ("victim = \"memcached\"", "", &["victim"]),
        ("ratio = 100.0", "", &["ratio"]),
        ("uses = [\"pg\", \"mc\"]", "uses = [\"mc\"]", &["postgres"]),
    ];
    for (from, to, words) in cases {
        rejected("cache.toml", CACHE, from, to, words);
    }
}

const MACHINES: &str = r#"
name = "m"
duration = "30s"

[[topology.service]]
name = "m"
preset = "machine"
replicas = 3

[topology.service.machine]
unit_style = "rm-then-run"
persistent_data = true

[[probe]]
name = "pull"
kind = "registry-pull"
target = "m"
on = "m3"

[[fault]]
name = "crash"
kind = "daemon-crash"
at = "2s"
target = "m"
select = "all"
gap = "2s"

[[expect]]
kind = "measured-within"
fault = "crash"
measurement = "engine-downtime"
budget = "20s"
"#;

#[test]
fn machine_scenarios_are_checked_before_anything_starts() {
    let s = scenario::parse("machines.toml", MACHINES).unwrap();
    assert_matches::assert_matches!(
        &s.services[0].kind,
        ServiceKind::Machine(options) if options.persistent_data
    );
    // (replace this, with this, expected line, words the message must contain)
    let cases: &[(&str, &str, usize, &[&str])] = &[
        (
            "unit_style = \"rm-then-run\"",
            "unit_style = \"rm-run\"",
            11,
            &["rm-run"],
        ),
        (
            "persistent_data = true",
            "persistant_data = true",
            12,
            &["persistant_data"],
        ),
        ("on = \"m3\"", "on = \"m4\"", 18, &["m1, m2, m3"]),
        (
            "kind = \"daemon-crash\"",
            "kind = \"kill\"",
            24,
            &["daemon-crash"],
        ),
        (
            "measurement = \"engine-downtime\"\n",
            "",
            30,
            &["measurement"],
        ),
    ];
    for (from, to, line, words) in cases {
        assert!(MACHINES.contains(from), "test bug: {from:?}");
        let text = MACHINES.replacen(from, to, 1);
        match scenario::parse("machines.toml", &text) {
            Ok(_) => panic!("accepted {from:?} → {to:?}"),
            Err(ScenarioError::At {
                line: l, message, ..
            }) => {
                assert_eq!(l, *line, "{from:?} → {to:?}: {message}");
                for w in *words {
                    assert!(message.contains(w), "{message:?} should mention {w:?}");
                }
            }
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
}

const GENERIC: &str = r#"
name = "g"
duration = "20s"

[[topology.service]]
name = "db"
image = "postgres"
volumes = ["data:/var/lib/postgresql"]
memory_mib = 256
cpus = 0.5
ready = { tcp = 5432 }

[[topology.service]]
name = "web"
image = "toy-api"
uses = ["db"]
command = ["--verbose"]
ready = { http = 8080, path = "/healthz" }

[[probe]]
name = "db-port"
kind = "tcp"
target = "db"
port = 5432

[[probe]]
name = "db-query"
kind = "exec"
target = "db"
command = ["psql", "-U", "postgres", "-c", "SELECT 1"]

[[fault]]
name = "slow"
kind = "netem"
at = "5s"
target = "db"
delay = "100ms"
down_for = "5s"

[[expect]]
kind = "fault-verified"
fault = "slow"
"#;

#[test]
fn generic_services_probes_and_faults_are_checked_before_anything_starts() {
    let s = scenario::parse("generic.toml", GENERIC).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.services[0].kind, ServiceKind::Generic);
    assert_eq!(s.services[1].command, vec!["--verbose"]);
    // (replace this, with this, expected line, words the message must contain)
    let cases: &[(&str, &str, usize, &[&str])] = &[
        (
            "image = \"postgres\"",
            "image = \"postgress\"",
            6,
            &["unknown image `postgress`", "postgres", "images build"],
        ),
        ("image = \"postgres\"\n", "", 6, &["needs `image`"]),
        ("data:/var", "data:var", 6, &["name:/absolute/path"]),
        ("cpus = 0.5", "cpus = 0.0", 6, &["cpus"]),
        (
            "ready = { tcp = 5432 }",
            "ready = { tcp = 5432, exec = [\"true\"] }",
            6,
            &["exactly one of"],
        ),
        (
            "uses = [\"db\"]",
            "uses = [\"dbx\"]",
            16,
            &["unknown service `dbx`"],
        ),
        ("port = 5432\n", "", 21, &["needs `port`"]),
        (
            "command = [\"psql\", \"-U\", \"postgres\", \"-c\", \"SELECT 1\"]",
            "",
            27,
            &["needs `command`"],
        ),
        ("delay = \"100ms\"\n", "", 33, &["delay", "loss_percent"]),
        (
            "kind = \"netem\"",
            "kind = \"pause\"",
            33,
            &["belong to netem faults"],
        ),
        (
            "target = \"db\"\ndelay",
            "target = \"dv\"\ndelay",
            36,
            &["unknown service `dv`", "db, web"],
        ),
        (
            "kind = \"fault-verified\"",
            "kind = \"fault-verifed\"",
            41,
            &["fault-verifed"],
        ),
    ];
    for (from, to, line, words) in cases {
        let e = rejected("generic.toml", GENERIC, from, to, words);
        assert!(
            e.starts_with(&format!("generic.toml:{line}:")),
            "{from:?} → {to:?}: {e}"
        );
    }
}

const CUT: &str = r#"
name = "cut"
duration = "10s"

[[topology.service]]
name = "c"
image = "memcached"
replicas = 3

[[fault]]
name = "split"
kind = "cut"
at = "1s"
target = "c"
select = "one"
peers = ["c2"]
"#;

#[test]
fn a_cut_s_shape_must_fit_its_service_and_selection() {
    scenario::parse("cut.toml", CUT).unwrap_or_else(|e| panic!("{e}"));
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "peers = [\"c2\"]",
            "peers = [\"c9\"]",
            &["`c9`", "c1, c2, c3"],
        ),
        (
            "select = \"one\"\npeers = [\"c2\"]",
            "select = \"all\"",
            &["nobody is left"],
        ),
        (
            "peers = [\"c2\"]",
            "shape = \"majorities-ring\"",
            &["at least 4"],
        ),
        (
            "select = \"one\"\npeers = [\"c2\"]",
            "select = \"all\"\nshape = \"bridge\"",
            &["exactly one"],
        ),
        (
            "peers = [\"c2\"]",
            "shape = \"bridge\"\none_way = true",
            &["belong to `shape = \"isolate\"`"],
        ),
        (
            "kind = \"cut\"",
            "kind = \"pause\"",
            &["belong to cut faults"],
        ),
        ("peers = [\"c2\"]", "shape = \"ring\"", &["majorities-ring"]),
    ];
    let with_clock = CUT
        .replace("kind = \"cut\"", "kind = \"clock\"")
        .replace("peers = [\"c2\"]", "offset = \"+30s\"");
    scenario::parse("cut.toml", &with_clock).unwrap_or_else(|e| panic!("{e}"));
    let strobing = with_clock.replace("offset = \"+30s\"", "offset = \"-1h\"\nstrobe = \"500ms\"");
    let plan = scenario::parse("cut.toml", &strobing).unwrap_or_else(|e| panic!("{e}"));
    let strobe = Some(std::time::Duration::from_millis(500));
    assert!(
        matches!(plan.faults[0].kind, FaultKind::Clock { offset_ms: -3_600_000, strobe: s, .. } if s == strobe),
        "{:?}",
        plan.faults[0].kind
    );
    let clocks: &[(&str, &str, &[&str])] = &[
        ("offset = \"+30s\"", "", &["needs `offset`"]),
        ("offset = \"+30s\"", "offset = \"30s\"", &["a sign"]),
        ("kind = \"clock\"", "kind = \"pause\"", &["belong to clock"]),
        (
            "offset = \"+30s\"",
            "offset = \"+30s\"\nstrobe = \"50ms\"",
            &["`strobe = \"50ms\"`: at least 200ms"],
        ),
        (
            "image = \"memcached\"",
            "image = \"nginx:1\"",
            &["project's images"],
        ),
    ];
    for (from, to, words) in clocks {
        rejected("cut.toml", &with_clock, from, to, words);
    }
    for (from, to, words) in cases {
        let e = rejected("cut.toml", CUT, from, to, words);
        assert!(
            e.starts_with("cut.toml:1"),
            "{from:?} → {to:?}: not at the fault: {e}"
        );
    }
}

/// A group of separate services (as Compose files write clusters): one member cut from the
/// others by naming their replicas as `peers`.
#[test]
fn a_cut_s_peers_may_be_replicas_of_other_services() {
    let group = r#"
name = "group-cut"
duration = "10s"

[[topology.service]]
name = "m1"
image = "memcached"

[[topology.service]]
name = "m2"
image = "memcached"

[[fault]]
name = "isolate-m1"
kind = "cut"
at = "1s"
target = "m1"
select = "all"
peers = ["m2"]
"#;
    let plan = scenario::parse("group.toml", group).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(&plan.faults[0].kind, FaultKind::Cut { peers, .. } if peers == &["m2"]),
        "{:?}",
        plan.faults[0].kind
    );
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "peers = [\"m2\"]",
            "peers = [\"m9\"]",
            &["`m9`", "another service"],
        ),
        (
            "peers = [\"m2\"]",
            "",
            &["at least 2 replicas", "`peers` of other services"],
        ),
    ];
    for (from, to, words) in cases {
        rejected("group.toml", group, from, to, words);
    }
}

const SICK: &str = r#"
name = "sick"
duration = "10s"

[[topology.service]]
name = "c"
image = "memcached"
ready = { tcp = 11211 }

[[fault]]
name = "slow"
kind = "sick-link"
at = "1s"
target = "c"
toxics = { latency = "300ms", jitter = "50ms" }
"#;

#[test]
fn a_sick_link_holds_typed_toxics_and_refuses_what_cannot_be() {
    let plan = scenario::parse("sick.toml", SICK).unwrap_or_else(|e| panic!("{e}"));
    let FaultKind::SickLink { port, toxics, .. } = &plan.faults[0].kind else {
        panic!("{:?}", plan.faults[0].kind);
    };
    assert_eq!(*port, 11211, "the ready port by default");
    let args = toxics.iter().flat_map(|t| t.args()).collect::<Vec<_>>();
    assert_eq!(args, ["--latency", "300000us", "--jitter", "50000us"]);
    let all = SICK.replace(
        "toxics = { latency = \"300ms\", jitter = \"50ms\" }",
        "toxics = { stream = \"both\", bandwidth_kb_per_s = 64, slicer_average_bytes = 100, slicer_variation_bytes = 10, slicer_delay = \"1ms\", limit_data_bytes = 1000, timeout = \"0s\", reset_peer = \"2s\", slow_close = \"1s\" }",
    );
    let plan = scenario::parse("sick.toml", &all).unwrap_or_else(|e| panic!("{e}"));
    let FaultKind::SickLink { toxics, .. } = &plan.faults[0].kind else {
        panic!()
    };
    assert_eq!(toxics.len(), 6, "{toxics:?}");
    let toxic = "toxics = { latency = \"300ms\", jitter = \"50ms\" }";
    let cases: &[(&str, &str, &[&str])] = &[
        (toxic, "", &["at least one toxic"]),
        (toxic, "toxics = {}", &["at least one toxic"]),
        (
            toxic,
            "toxics = { jitter = \"5ms\" }",
            &["give the latency too"],
        ),
        (
            toxic,
            "toxics = { latency = \"5ms\", jitter = \"6ms\" }",
            &["more than the `latency`"],
        ),
        (
            toxic,
            "toxics = { bandwidth_kb_per_s = 0 }",
            &["lets nothing through"],
        ),
        (
            toxic,
            "toxics = { slicer_average_bytes = 10, slicer_variation_bytes = 10 }",
            &["below it"],
        ),
        (
            toxic,
            "toxics = { slicer_delay = \"1ms\" }",
            &["slicer_average_bytes"],
        ),
        (
            toxic,
            "toxics = { latncy = \"1s\" }",
            &["latncy", "latency"],
        ),
        (
            toxic,
            "toxics = { latency = 300 }",
            &["expected a duration"],
        ),
        (
            toxic,
            "toxics = { stream = \"sideways\" }",
            &["upstream", "downstream"],
        ),
        (
            "kind = \"sick-link\"",
            "kind = \"pause\"",
            &["belong to sick-link"],
        ),
    ];
    for (from, to, words) in cases {
        let e = rejected("sick.toml", SICK, from, to, words);
        assert!(
            e.starts_with("sick.toml:1"),
            "{from:?} → {to:?}: not at the fault: {e}"
        );
    }
}

/// Parses `base` with `from` replaced by `to` as file `file`: it must be rejected with an error
/// that names the file and contains every word. Returns the error's text.
fn rejected(file: &str, base: &str, from: &str, to: &str, words: &[&str]) -> String {
    assert!(base.contains(from), "test bug: {from:?}");
    let text = base.replacen(from, to, 1);
    let e = scenario::parse(file, &text)
        .map(|_| ())
        .expect_err(&format!("accepted: {from:?} → {to:?}"))
        .to_string();
    println!("{e}");
    assert!(e.starts_with(&format!("{file}:")), "{e}");
    for w in words {
        assert!(
            e.contains(w),
            "{from:?} → {to:?}: {e:?} should mention {w:?}"
        );
    }
    e
}

/// The remediated power cut's file: a lossy disk and a tearing cut.
#[test]
fn a_tear_needs_a_power_cut_on_a_lossy_disk() {
    let path = aftershock_tests::root().join("scenarios/datastore-power-cut-remediated.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    let s = scenario::parse("tear.toml", &good).unwrap_or_else(|e| panic!("{e}"));
    assert_matches::assert_matches!(
        s.faults[0].kind,
        FaultKind::PowerCut {
            tear: Some(512),
            ..
        }
    );
    assert!(s.services[0].disk.as_ref().unwrap().lossy);
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "tear = \"512B\"",
            "tear = \"1KiB\"",
            &["1KiB", "512B", "4KiB"],
        ),
        (", lossy = true", "", &["lossy = true"]),
        ("kind = \"power-cut\"", "kind = \"restart\"", &["power-cut"]),
    ];
    for (from, to, words) in cases {
        rejected("tear.toml", &good, from, to, words);
    }
}

/// The slow-fsync example: a disk fault needs a lossy disk and takes exactly its own fields.
#[test]
fn a_sick_disk_needs_a_lossy_disk_and_its_own_fields() {
    let path = aftershock_tests::root().join("scenarios/examples/datastore-slow-fsync.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    let s = scenario::parse("disk.toml", &good).unwrap_or_else(|e| panic!("{e}"));
    assert_matches::assert_matches!(
        &s.faults[0].kind,
        FaultKind::DiskLatency { latency, ops, .. }
            if latency.as_millis() == 800 && ops == &[scenario::DiskOp::Fsync]
    );
    let cases: &[(&str, &str, &[&str])] = &[
        (", lossy = true", "", &["lossy = true", "store"]),
        ("latency = \"800ms\"", "", &["needs `latency`"]),
        ("ops = [\"fsync\"]", "ops = []", &["an empty `ops`"]),
        (
            "ops = [\"fsync\"]",
            "ops = [\"flush\"]",
            &["flush", "fsync"],
        ),
        (
            "ops = [\"fsync\"]",
            "percent = 5.0",
            &["`percent` belongs to disk-error"],
        ),
        (
            "kind = \"disk-latency\"",
            "kind = \"disk-error\"",
            &["`latency` belongs to disk-latency"],
        ),
        (
            "kind = \"disk-latency\"",
            "kind = \"stop\"",
            &["`ops` belongs to disk-latency or disk-error"],
        ),
    ];
    for (from, to, words) in cases {
        rejected("disk.toml", &good, from, to, words);
    }
    let error = good
        .replacen("kind = \"disk-latency\"", "kind = \"disk-error\"", 1)
        .replacen(
            "latency = \"800ms\"",
            "errno = \"EROFS\"\npercent = 250.0",
            1,
        );
    rejected(
        "disk.toml",
        &error,
        "percent = 250.0",
        "percent = 250.0",
        &["at most 100", "250"],
    );
    rejected(
        "disk.toml",
        &error,
        "\"EROFS\"",
        "\"EAGAIN\"",
        &["EAGAIN", "EIO"],
    );
}

/// The Rust builder and the file give the same plan: the remediated ZooKeeper incident,
/// written both ways, through the public API only.
#[test]
fn the_builder_and_the_file_give_the_same_plan() {
    use aftershock::{Expect, Experiment, Fault, Preset, Probe, Select, Service};
    use std::time::Duration;
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let file = scenario::load(
        &aftershock_tests::root().join("scenarios/zookeeper-quorum-remediated.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut x = Experiment::new("zookeeper-quorum-remediated", secs(22))
        .incident("realtime-2016-06-zookeeper-quorum")
        .variant("remediated")
        .summary("The same two restarts, serialised: each node rejoins before the next goes down. Quorum is never lost.");
    let zk = x.service(Service::preset("zk", Preset::Zookeeper).replicas(3));
    let api = x.service(
        Service::preset("api", Preset::ToyApi)
            .uses(&zk)
            .env("TOY_ON_EXPIRY", "stay-broken"),
    );
    let writes = x.probe(Probe::zookeeper_write("zk-write", &zk));
    x.probe(Probe::new("zk-mode", scenario::file::ProbeKind::ZookeeperMode, &zk).timeout(ms(300)));
    let realtime = x.probe(Probe::http("realtime", &api, 8080, "/realtime"));
    let rollout = x.fault(
        Fault::rolling_restart("serialised-restart", &zk)
            .at(secs(5))
            .select(Select::Followers(2))
            .rejoin_timeout(secs(30)),
    );
    x.expect(
        Expect::never_fails_from(&writes, &rollout).title("zero failed writes during the rollout"),
    );
    x.expect(Expect::never_fails(&realtime).title("the real-time endpoint never fails"));
    x.expect(
        Expect::completes_within(&rollout, secs(30))
            .title("the serialised restart of both nodes completes within 30 s"),
    );
    x.expect(Expect::no_lost_writes(&writes).title("no acknowledged write is lost"));
    let built = x.plan().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        serde_json::to_value(&built).unwrap(),
        serde_json::to_value(&file).unwrap()
    );
    // And the builder's TOML is a scenario file that gives the same plan again.
    let again = scenario::parse("built.toml", &x.to_toml()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&file).unwrap()
    );
}

/// A handle of another experiment is refused when the plan is made, not at run time.
#[test]
fn a_handle_of_another_experiment_is_refused() {
    use aftershock::{Experiment, Probe, Service};
    use std::time::Duration;
    let mut other = Experiment::new("other", Duration::from_secs(5));
    let theirs = other.service(Service::generic("db", "postgres"));
    let mut x = Experiment::new("mine", Duration::from_secs(5));
    x.service(Service::generic("db", "postgres"));
    x.probe(Probe::tcp("port", &theirs, 5432));
    let e = x
        .plan()
        .expect_err("a foreign handle must be refused")
        .to_string();
    assert!(e.contains("another experiment"), "{e}");
}

/// The Compose examples load: their services come from the Compose files, generic, with what
/// the Compose keys said (a build, a disk from `x-aftershock`, limits, health checks).
#[test]
fn compose_examples_load() {
    use aftershock_model::scenario::plan::Image;
    let leak = aftershock_tests::scenario_at("examples/compose/leak.toml");
    let cache = &leak.services[0];
    assert!(
        matches!(cache.image, Image::Build { .. }),
        "{:?}",
        cache.image
    );
    assert_eq!((cache.memory_mib, cache.cpus), (Some(128), Some(0.5)));
    assert!(cache.ready.is_some() && cache.preset().is_none());
    let journal = aftershock_tests::scenario_at("examples/compose/journal.toml");
    assert_eq!(
        journal.services[0].disk.as_ref().map(|d| d.size_mb),
        Some(64)
    );
    let shop = aftershock_model::scenario::load_compose(
        &aftershock_tests::root().join("examples/compose/shop.compose.yml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = shop.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "cache"]);
    assert!(shop.writes["db"].write.iter().any(|w| w.contains("{n}")));
}

#[test]
fn a_compose_files_notes_reach_the_plan_and_the_report() {
    let plan = aftershock_tests::scenario_at("tests/fixtures/compose-keys/keys.toml");
    let notes: Vec<String> = plan.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("compose.yaml:28: service `backend`: `ports`: not published")),
        "{notes:#?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("`container_name`")),
        "{notes:#?}"
    );
    // The override file is laid over the file: its bind mount is the backend's.
    let backend = plan.services.iter().find(|s| s.name == "backend").unwrap();
    let mounts: Vec<&str> = backend
        .extras
        .mounts
        .iter()
        .map(|m| m.target.as_str())
        .collect();
    assert_eq!(mounts, ["/srv/static", "/run/secrets/db-password"]);
    assert!(backend.env.contains(&"STATIC_DIR=/srv/static".to_string()));
}
