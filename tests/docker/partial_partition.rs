//! GitHub's 2018-10-21 partial partition in miniature (`scenarios/redis-partial-partition-*`):
//! a Redis primary with Sentinel cut from its replicas and the other sentinels only. As it was,
//! the sentinels promote a replica while the old primary — still reached by the client beside
//! it — acknowledges writes that are gone once it is demoted; remediated
//! (`min-replicas-to-write 1`, writes counted after `WAIT 1`), those writes fail and nothing
//! acknowledged is lost. Both runs must pass as a whole; beyond their expectations, the
//! timeline must show two primaries at once (the split the cut made). ~40 s each, side by side.

use aftershock::{ExpectationKind, Report};
use aftershock_model::timeline::EventKind;

/// When the exec probe `probe` succeeded or not, in time order (a timeout counts as not).
fn roles(report: &Report, probe: &str) -> Vec<(i64, bool)> {
    report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Sample { probe: p, ok, .. } if p == probe => Some((e.at, *ok)),
            _ => None,
        })
        .collect()
}

/// The first instant the majority's sentinels named a new primary while the old primary's last
/// answer still said "master": the two primaries the partial partition made.
fn two_primaries(report: &Report) -> Option<i64> {
    let old = roles(report, "old-primary");
    let promoted = roles(report, "promoted");
    promoted.iter().find_map(|&(at, new)| {
        let old_says = old.iter().rev().find(|(t, _)| *t <= at).map(|(_, m)| *m);
        (new && old_says == Some(true)).then_some(at)
    })
}

/// What the run measured for its outcome of `kind`.
fn measured(report: &Report, kind: ExpectationKind) -> &str {
    let o = report.outcomes.iter().find(|o| o.kind == kind);
    &o.unwrap_or_else(|| panic!("no {kind:?} outcome")).measured
}

/// Both variants at once: each judges only budgets of seconds and lost writes, so they share
/// the machine (the run lock's shared mode); started together, they always find each other
/// (run apart, each ran alone beside a run on machines or no one: ~40 s more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_it_was_loses_acknowledged_writes_remediated_refuses_them() {
    // One task polls both (the runs' probes and faults are tasks of their own).
    let (as_it_was, remediated) = tokio::join!(
        aftershock_tests::run_passing("redis-partial-partition-as-it-was"),
        aftershock_tests::run_passing("redis-partial-partition-remediated"),
    );
    for report in [&as_it_was, &remediated] {
        assert!(
            two_primaries(report).is_some(),
            "{}: no instant with two primaries",
            report.scenario
        );
    }
    // As it was, the cut-off primary acknowledged writes that are gone; remediated, it refused
    // them and nothing acknowledged was lost (each its run's expectation, passed).
    println!(
        "as it was, lost writes: {}; remediated: {}",
        measured(&as_it_was, ExpectationKind::LosesWrites),
        measured(&remediated, ExpectationKind::NoLostWrites)
    );
}
