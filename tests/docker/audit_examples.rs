//! The audit on architectures nobody annotated for it, run for real with the verdicts they
//! must get.
//!
//! A ZooKeeper ensemble written as three Compose services (`examples/compose/zookeeper.compose.yml`):
//! the audit groups them, recognises ZooKeeper and writes through its own protocol (no
//! templates). A majority restarted at one instant loses the group's writes for a while (with
//! nothing acknowledged lost); one at a time passes every verdict.
//!
//! The clerk-shaped chain (`examples/compose/catalog.compose.yml`: PostgreSQL, memcached and a
//! Python API reading through the cache into a pool of four connections): the audit finds the
//! chain and kills the cache under an open load on the API, after the same load has run until
//! the API is steady (so the baseline is the warm normal, not a cache filling up). The API's
//! p99 leaves its baseline and requests fail while the cache is gone (FAIL: the finding),
//! PostgreSQL loses no acknowledged write, and whether the API is back to its baseline within
//! 20 s of the cache's restart gets a verdict of its own.
//!
//! Redis with Sentinel as its documentation lays it out (`examples/compose/redis-sentinel.compose.yml`:
//! three boxes, each a server and a sentinel, no persistence): the audit groups the boxes and
//! writes through the primary a box's sentinel names. Two of three restarted at once: no
//! sentinel majority, no failover, the primary comes back empty and its replicas resynchronise
//! from it (acknowledged writes lost: FAIL). The primary cut from the other boxes: they promote
//! a replica while the client beside the old primary still writes to it (lost: FAIL).
//!
//! Measured on the shared 2-core machine (2026-12-03): the ZooKeeper pair's runs 30.2 s and
//! 53.2 s (majority: 6 writes failed; one at a time: PASS); three catalogue runs of 53–74 s
//! (warm-up 7–11 s; p99 2.03–2.13 s against a 57–107 ms warm baseline, hit ratio 97.7–98.6%
//! before the loss, 966–1024 of 4000 requests failed, warm again 6.2–10.0 s after the cache's
//! restart: PASS); three Redis pairs of runs of 39–43 s each, 11 s of it bring-up (majority:
//! 10–36 acknowledged writes lost, every box's health back within 10.2 s; partial partition: 35–73 lost). Before
//! the warm-up, a CI run's baseline was already saturated (p99 1.55 s, the cache cold) and the
//! p99 verdict passed. A one-at-a-time ZooKeeper run under heavier load once saw a 6.0 s
//! election outage, then 8.06 s with members down 8 s in CI: the probe's client waited for its
//! own member. The audit no longer judges a group's writes against a member's down time.

use aftershock::Verdict;
use aftershock_model::audit::{self, Budgets};
use aftershock_model::scenario::{self, Plan as Scenario};
use aftershock_tests::{root, run_once};
use std::time::Instant;

/// The scenario `name` the audit plans for the Compose file `compose` (relative to the root).
fn planned(compose: &str, name: &str) -> Scenario {
    let compose = root().join(compose);
    let topology = scenario::load_compose(&compose).unwrap_or_else(|e| panic!("{e}"));
    let plan = audit::plan(&compose, &topology, Budgets::default());
    let (_, text) = plan
        .scenarios
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not planned:\n{}", plan.table()));
    let dir = std::env::temp_dir().join(format!("aftershock-audit-ex-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    let scenario = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&file);
    scenario
}

/// One run, once more when the first is UNKNOWN (machine noise), timed.
async fn judged(scenario: &Scenario) -> aftershock::Report {
    let started = Instant::now();
    let mut report = run_once(scenario).await;
    if matches!(report.verdict, Verdict::Unknown { .. }) {
        report = run_once(scenario).await;
    }
    println!(
        "{} took {:.1}s: {:?}",
        scenario.name,
        started.elapsed().as_secs_f64(),
        report.verdict
    );
    report
}

/// The verdict of the outcome whose title contains `part`.
fn verdict_of(report: &aftershock::Report, part: &str) -> (Verdict, String) {
    let o = report
        .outcomes
        .iter()
        .find(|o| o.title.contains(part))
        .unwrap_or_else(|| panic!("no `{part}` in:\n{}", report.table()));
    (o.verdict.clone(), o.measured.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zookeeper_trio_of_separate_services_loses_writes_to_a_majority_not_one_at_a_time() {
    let compose = "examples/compose/zookeeper.compose.yml";
    let majority = judged(&planned(compose, "audit-majority-restart-zoo.toml")).await;
    // Two of three down at once: the group has no quorum, its writes fail for a while (seen,
    // not judged against a budget: the probe's client may also wait for its own member).
    let failed = majority
        .timeline
        .iter()
        .filter(|e| matches!(&e.kind, aftershock::EventKind::Sample { probe, ok: false, .. } if probe == "zoo1-writes"))
        .count();
    println!("majority at once: {failed} writes failed");
    assert!(failed > 0, "no quorum, no writes:\n{}", majority.table());
    let (v, measured) = verdict_of(&majority, "no acknowledged write");
    assert_eq!(v, Verdict::Pass, "{measured}");
    let rolling = judged(&planned(compose, "audit-rolling-restart-zoo.toml")).await;
    assert_eq!(rolling.verdict, Verdict::Pass, "{}", rolling.table());
    let (_, measured) = verdict_of(&rolling, "no acknowledged write");
    assert!(measured.contains(" 0 lost"), "{measured}");
}

/// p50 and p99 of `probe`'s sample latencies between `from` and `to` (ns since the epoch).
fn latencies(report: &aftershock::Report, probe: &str, from: u64, to: u64) -> (f64, f64) {
    let json = serde_json::to_value(&report.timeline).unwrap();
    let mut ms: Vec<f64> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "sample" && e["probe"] == probe)
        .filter(|e| (from..to).contains(&e["at"].as_u64().unwrap_or(0)))
        .filter_map(|e| e["latency"].as_f64())
        .map(|ns| ns / 1e6)
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms.get(((ms.len() as f64 - 1.0) * q) as usize).copied();
    (at(0.5).unwrap_or(f64::NAN), at(0.99).unwrap_or(f64::NAN))
}

/// The hit ratio of `probe`'s load windows between `from` and `to` (ns since the epoch).
fn hit_ratio(report: &aftershock::Report, probe: &str, from: u64, to: u64) -> f64 {
    let json = serde_json::to_value(&report.timeline).unwrap();
    let (mut hits, mut ok) = (0.0, 0.0);
    for w in json.as_array().unwrap().iter().filter(|e| {
        e["type"] == "window"
            && e["probe"] == probe
            && (from..to).contains(&e["at"].as_u64().unwrap_or(0))
    }) {
        hits += w["hits"].as_f64().unwrap_or(0.0);
        ok += w["ok"].as_f64().unwrap_or(0.0);
    }
    hits / ok.max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_s_loss_in_a_clerk_shaped_chain_reaches_the_front_and_its_recovery_is_judged() {
    let scenario = planned(
        "examples/compose/catalog.compose.yml",
        "audit-cache-loss-cache.toml",
    );
    let report = judged(&scenario).await;
    // Normal was measured warm: the same load ran until steady before the observation.
    let warm_up = report.timeline.iter().find_map(|e| match &e.kind {
        aftershock::EventKind::Measurement {
            name, value, what, ..
        } if name == "api-load/warm-up" => Some((*value, what.clone())),
        _ => None,
    });
    let (warm_up, what) = warm_up.unwrap_or_else(|| panic!("no warm-up:\n{}", report.table()));
    println!("the API's warm-up under the load: {warm_up:.1}s: {what}");
    let (p99, measured) = verdict_of(&report, "p99 stays within 5×");
    assert!(
        matches!(p99, Verdict::Fail { .. }),
        "the API slows down without its cache: {measured}\n{}",
        report.table()
    );
    println!("the API's p99 from the loss on: {measured}");
    let (errors, measured) = verdict_of(&report, "no request to `api` fails");
    assert!(
        matches!(errors, Verdict::Fail { .. }),
        "the pool queues past the timeout: {measured}"
    );
    println!("the API's errors: {measured} ({errors:?})");
    let (warm, measured) = verdict_of(&report, "back to its baseline");
    assert!(
        !matches!(warm, Verdict::Unknown { .. }),
        "a recovery verdict: {measured}"
    );
    println!("the API after the cache is back: {measured} ({warm:?})");
    let (lost, measured) = verdict_of(&report, "no acknowledged write of `db-writes`");
    assert_eq!(lost, Verdict::Pass, "{measured}");
    // The cache is observed in its own protocol (a key set and read back), not by TCP alone.
    assert!(
        report.timeline.iter().any(|e| matches!(
            &e.kind,
            aftershock::EventKind::Sample { probe, ok: true, .. } if probe == "cache-health"
        )),
        "memcached answered its protocol"
    );
    for service in ["db", "cache", "api"] {
        let (v, measured) = verdict_of(&report, &format!("`{service}-health` back"));
        assert_eq!(v, Verdict::Pass, "{service}: {measured}");
    }
    // PostgreSQL's own latency, as the INSERTs of its write probe saw it (psql by docker exec:
    // the exec's overhead included), before, during and after the cache's loss.
    let json = serde_json::to_value(&report.timeline).unwrap();
    let cache_event = |action: &str, after: u64| {
        json.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "container" && e["container"] == "cache")
            .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with(action)))
            .filter_map(|e| e["at"].as_u64())
            .find(|&at| at > after)
    };
    let died = cache_event("die", 0).expect("the cache died");
    let started = cache_event("start", died).expect("the cache started again");
    let baseline_hits = hit_ratio(&report, "api-load", 0, died);
    println!(
        "the API's hit ratio before the loss: {:.1}%",
        baseline_hits * 100.0
    );
    assert!(baseline_hits >= 0.9, "a warm baseline: {baseline_hits}");
    for (phase, from, to) in [
        ("before", 0, died),
        ("during", died, started),
        ("after", started, u64::MAX),
    ] {
        let (p50, p99) = latencies(&report, "db-writes", from, to);
        println!("db INSERT latency {phase} the loss: p50 {p50:.0} ms, p99 {p99:.0} ms");
    }
}

/// The lost-write verdict of a run, and what it measured.
fn lost_writes(report: &aftershock::Report) -> (Verdict, String) {
    let o = report
        .outcomes
        .iter()
        .find(|o| o.kind == aftershock::ExpectationKind::NoLostWrites)
        .unwrap_or_else(|| panic!("no lost-write verdict:\n{}", report.table()));
    (o.verdict.clone(), o.measured.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_sentinels_loses_acknowledged_writes_to_a_majority_restart_and_a_partial_partition(
) {
    let compose = "examples/compose/redis-sentinel.compose.yml";
    // The plan: one group of three boxes, its quorum pair and partial partition, writes
    // judged through the primary a box's sentinel names.
    let path = root().join(compose);
    let topology = scenario::load_compose(&path).unwrap_or_else(|e| panic!("{e}"));
    let plan = audit::plan(&path, &topology, Budgets::default());
    let members: Vec<&[String]> = plan.groups.iter().map(|g| &g.members[..]).collect();
    assert_eq!(
        members,
        [&["redis1", "redis2", "redis3"][..]],
        "{}",
        plan.table()
    );
    for name in [
        "audit-majority-restart-redis.toml",
        "audit-rolling-restart-redis.toml",
        "audit-partial-partition-redis.toml",
    ] {
        let text = &plan.scenarios.iter().find(|(n, _)| n == name);
        let text = text.unwrap_or_else(|| panic!("{name} not planned:\n{}", plan.table()));
        assert!(
            text.1.contains("sentinel masters") && text.1.contains("no-lost-writes"),
            "{name}: writes through the sentinel's primary, judged:\n{}",
            text.1
        );
    }
    // Two of three boxes restarted at once: no quorum of sentinels, so no failover; the
    // primary comes back empty (no persistence) and its replicas resynchronise from it.
    let majority = judged(&planned(compose, "audit-majority-restart-redis.toml")).await;
    let (v, measured) = lost_writes(&majority);
    println!("majority at once: {measured} ({v:?})");
    assert!(matches!(v, Verdict::Fail { .. }), "{}", majority.table());
    // The primary cut from the other boxes only: they promote a replica while the client
    // beside the old primary, asking its own sentinel, still writes to it.
    let cut = judged(&planned(compose, "audit-partial-partition-redis.toml")).await;
    let (v, measured) = verdict_of(&cut, "verified");
    assert_eq!(v, Verdict::Pass, "the cut took effect: {measured}");
    let (v, measured) = lost_writes(&cut);
    println!("partial partition: {measured} ({v:?})");
    assert!(matches!(v, Verdict::Fail { .. }), "{}", cut.table());
    for report in [&majority, &cut] {
        for o in report
            .outcomes
            .iter()
            .filter(|o| o.title.contains("-health` back"))
        {
            println!("{}: {} ({:?})", o.title, o.measured, o.verdict);
            assert_eq!(o.verdict, Verdict::Pass, "{}", report.table());
        }
    }
}
