//! `aftershock audit` on the example architecture (`examples/compose/shop.compose.yml`): it
//! plans every applicable archetype (the engine crash planned, not skipped) and writes the
//! scenario files it runs, each checked, for the user to edit; run as a suite they exit 0 or 1
//! (never 2 on a valid file), write one suite report, and leave nothing else behind.
//!
//! The audit's run is `aftershock suite` over the files it wrote. To keep `make test` short,
//! the suite here runs two of them (a majority restart of the cache's replicas, a power cut of
//! the database's disk; ~50 s), not all eleven: every file is checked when it is written, and
//! the other archetypes run elsewhere — the rolling restart and the majority restart of a
//! group in `audit_examples`' ZooKeeper trio, the leak on a Compose service in `compose`, the
//! partial partition in `partial_partition` and `cut`, the engine crash by the etcd test below
//! with live-restore (and without it by `daemon_restart`, `engine_crash_any_service` and the
//! keys file in `compose`).
//!
//! The shop's gray archetypes on its PostgreSQL (a Compose build on the project's base) run
//! too: the clock jump (libfaketime mapped in postgres, its clock read 1 s back inside) and the
//! slow disk under its declared disk, made lossy for the run.
//!
//! A cluster written as separate services (`examples/compose/etcd.compose.yml`: three etcd
//! members, each its own Compose service, and a cache; nothing annotated) is planned with a
//! machine per member, and its engine crash with live-restore gives a real verdict. (The TLS
//! knock on a machine's engine is `daemon_restart`'s and the fleet's: a container started
//! beside this run, whose probes must never fail, made the harness fall behind in CI.)

use aftershock_model::audit::{self, Budgets};
use aftershock_model::scenario;
use aftershock_tests::{cli_binary, root, run_scenario};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

/// Every file the audit plans for the shop.
const PLANNED: [&str; 11] = [
    "audit-clock-jump-cache.toml",
    "audit-clock-jump-db.toml",
    "audit-engine-crash-live-restore.toml",
    "audit-engine-crash.toml",
    "audit-leak-cache.toml",
    "audit-leak-db.toml",
    "audit-majority-restart-cache.toml",
    "audit-partial-partition-cache.toml",
    "audit-power-cut-db.toml",
    "audit-rolling-restart-cache.toml",
    "audit-slow-disk-db.toml",
];

/// The files run: a restart of replicas and a disk's power cut (see the module's comment).
const RUN: [&str; 2] = [
    "audit-majority-restart-cache.toml",
    "audit-power-cut-db.toml",
];

fn cli(args: &[&str], out: &Path) -> Output {
    let started = Instant::now();
    let run = Command::new(cli_binary())
        .current_dir(root())
        .args(args)
        .arg(out)
        .output()
        .expect("run the aftershock CLI");
    println!("{}", String::from_utf8_lossy(&run.stdout));
    println!("{args:?} took {:.1}s", started.elapsed().as_secs_f64());
    run
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    files
}

#[test]
fn auditing_the_example_plans_every_applicable_archetype_runs_them_as_a_suite_and_leaves_nothing() {
    let out = std::env::temp_dir().join(format!("aftershock-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (planned, ran) = (out.join("planned"), out.join("run"));
    let args = [
        "audit",
        "examples/compose/shop.compose.yml",
        "--plan-only",
        "--out",
    ];
    let plan = cli(&args, &planned);
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert_eq!(plan.status.code(), Some(0), "{stderr}");
    assert_eq!(files_in(&planned), PLANNED, "{stderr}");
    assert!(
        !stderr.contains("engine crash"),
        "planned, not skipped: {stderr}"
    );
    std::fs::create_dir_all(&ran).unwrap();
    for file in RUN {
        std::fs::copy(planned.join(file), ran.join(file)).unwrap();
    }
    let run = cli(&["suite"], &ran);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let code = run.status.code();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {stderr}");
    assert_eq!(files_in(&ran), RUN, "the files it ran are left to edit");
    for archetype in ["majority-restart", "power-cut"] {
        assert!(
            stdout.contains(archetype),
            "{archetype} not in the suite table"
        );
    }
    assert!(stdout.contains("index:"), "one suite report");
    // What the suite's runs created is gone: found by their run ids (the table names each),
    // not by scenario name, which another process's audit may be running at the same time.
    let runs: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split(" — run ").nth(1)?.split_whitespace().next())
        .collect();
    assert!(
        runs.len() >= RUN.len(),
        "a run id per file (two when one was asked again): {stdout}"
    );
    for run in runs {
        let label = format!("label=aftershock.run={run}");
        for kind in [
            &["ps", "-aq"][..],
            &["network", "ls", "-q"],
            &["volume", "ls", "-q"],
        ] {
            let left = Command::new("docker")
                .args(kind)
                .args(["--filter", &label])
                .output()
                .unwrap();
            assert!(
                left.stdout.is_empty(),
                "run {run}: `docker {kind:?}` finds leftovers"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// The audit's engine crash (with live-restore) of three etcd members written as three Compose
/// services: each member on a machine of its own (they listen on the same ports with their
/// machine's network), the cluster up (writes through one member's JSON gateway, inferred
/// from nothing but the image, acknowledged and read back), and nothing on the machines stops
/// while every dockerd is SIGKILLed and restored: PASS, not the UNKNOWN of a cluster that
/// never came up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_cluster_of_separate_services_gets_a_machine_per_member_and_a_verdict() {
    let compose = root().join("examples/compose/etcd.compose.yml");
    let topology = scenario::load_compose(&compose).unwrap_or_else(|e| panic!("{e}"));
    // Recovery within 15 s, not the default 30: the run is 15 s shorter (with live-restore
    // the members' health never fails; every engine was back in ~2.6 s, 2026-12-03).
    let budgets = Budgets {
        recover: std::time::Duration::from_secs(15),
        ..Budgets::default()
    };
    let plan = audit::plan(&compose, &topology, budgets);
    let dir = std::env::temp_dir().join(format!("aftershock-audit-etcd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = "audit-engine-crash-live-restore.toml";
    let (_, text) = plan
        .scenarios
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{}", plan.table()));
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    let scenario = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let machine_of = |service: &str| {
        let s = scenario
            .services
            .iter()
            .find(|s| s.name == service)
            .unwrap();
        let [id] = s.placement[..] else {
            panic!("{service}: {:?}", s.placement)
        };
        scenario.machine(id).name.clone()
    };
    let members: Vec<String> = ["etcd1", "etcd2", "etcd3"].map(machine_of).into();
    assert_eq!(members, ["m1", "m2", "m3"], "a machine per member");
    let started = Instant::now();
    let report = run_scenario(&scenario).await;
    println!(
        "the etcd trio's engine crash took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for member in ["etcd1", "etcd2", "etcd3"] {
        let probe = format!("`{member}-health`");
        assert!(
            report.outcomes.iter().any(|o| o.title.contains(&probe)),
            "{member} is watched: {}",
            report.table()
        );
    }
    // Writes through etcd1's JSON gateway need a quorum: the members found each other across
    // their machines, and what they acknowledged was read back.
    let writes = report
        .outcomes
        .iter()
        .find(|o| o.title.contains("etcd1-writes"))
        .unwrap_or_else(|| panic!("the inferred write probe: {}", report.table()));
    assert_eq!(writes.verdict, aftershock::Verdict::Pass, "{writes:?}");
    assert!(writes.measured.contains(" 0 lost"), "{writes:?}");
}

/// The shop's gray archetypes on its PostgreSQL, a Compose build on the project's base image
/// (started by `pg-entry.sh` through `exec setpriv`): the clock jump moves the postgres
/// process's wall clock 1 s back — libfaketime mapped in it, the offset read inside within
/// 10 ms of the requested, the host's clock untouched — and the slow disk, under the disk the
/// file declares without `lossy` (made lossy for the run), holds every fsync timed inside
/// ≥ 500 ms. Both PASS: PostgreSQL keeps serving and comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_s_database_gets_a_clock_jump_and_a_slow_disk() {
    let compose = root().join("examples/compose/shop.compose.yml");
    let topology = scenario::load_compose(&compose).unwrap_or_else(|e| panic!("{e}"));
    let plan = audit::plan(&compose, &topology, Budgets::default());
    let dir = std::env::temp_dir().join(format!("aftershock-audit-gray-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let load = |name: &str| {
        let (_, text) = plan
            .scenarios
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name}: {}", plan.table()));
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
    };
    let (clock, slow) = (
        load("audit-clock-jump-db.toml"),
        load("audit-slow-disk-db.toml"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let report = run_scenario(&clock).await;
    println!(
        "the clock jump took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let (ok, detail) = aftershock_tests::verified(&report, "clock", "applied");
    assert!(
        ok && detail.contains("libfaketime mapped in db") && detail.contains("postgres"),
        "{detail}"
    );
    let offset = report
        .measurements
        .iter()
        .rev()
        .find(|m| m.name == "clock/offset-applied-db")
        .map(|m| m.value);
    assert!(
        offset.is_some_and(|ms| (ms + 1000.0).abs() <= 10.0),
        "{offset:?}"
    );
    let started = Instant::now();
    let report = run_scenario(&slow).await;
    println!("the slow disk took {:.1}s", started.elapsed().as_secs_f64());
    let (ok, detail) = aftershock_tests::verified(&report, "slow-disk", "applied");
    assert!(ok, "{detail}");
    let fsync = report
        .measurements
        .iter()
        .rev()
        .find(|m| m.name == "slow-disk/fsync-during-db")
        .map(|m| m.value);
    assert!(fsync.is_some_and(|ms| ms >= 500.0), "{fsync:?}");
}
