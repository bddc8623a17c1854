//! Checkers on hand-built timelines: one helper, many small cases.

use super::*;
use crate::scenario::file::{reference, Expectation, ExpectationKind};

/// Judges a file-form expectation whose probe is `p` and fault `f` (when it names them).
fn check(e: &Expectation, t: &Timeline) -> Outcome {
    let typed = crate::scenario::plan::Expectation {
        title: e.title.clone(),
        kind: crate::scenario::resolve::expectations::typed(e),
    };
    Bound {
        expectation: &typed,
        probe: e.probe.as_ref().map_or("", |_| "p"),
        fault: e.fault.as_ref().map_or("", |_| "f"),
    }
    .check(t)
}
use crate::timeline::Event;
use assert_matches::assert_matches;

const S: Nanos = 1_000_000_000;

/// A timeline from a compact description: samples of probe `p` every 100 ms from `0` to `end`
/// seconds, failing inside `down` (seconds), fault `f` applied at `applied` and healed at `healed`.
fn timeline(end: f64, down: &[(f64, f64)], applied: Option<f64>, healed: Option<f64>) -> Timeline {
    let mut events = vec![];
    let mut i = 0;
    while (i as f64) * 0.1 <= end + 1e-9 {
        let at = i as f64 * 0.1;
        let ok = !down.iter().any(|(a, b)| at >= *a && at < *b);
        events.push(Event {
            at: (at * S as f64) as Nanos,
            kind: EventKind::Sample {
                probe: "p".into(),
                ok,
                latency: 1_000_000,
                detail: (!ok).then(|| "timeout".into()),
                late: None,
            },
        });
        i += 1;
    }
    for (at, applied) in [(applied, true), (healed, false)] {
        let Some(at) = at else { continue };
        let (fault, targets, detail) = ("f".to_string(), vec![], String::new());
        events.push(Event {
            at: (at * S as f64) as Nanos,
            kind: if applied {
                EventKind::FaultApplied {
                    fault,
                    targets,
                    detail,
                }
            } else {
                EventKind::FaultHealed {
                    fault,
                    targets,
                    detail,
                }
            },
        });
    }
    Timeline::from_events(events)
}

fn expect(kind: ExpectationKind, budget: Option<f64>, min: Option<f64>) -> Expectation {
    Expectation {
        probe: Some(reference("p")),
        fault: Some(reference("f")),
        budget: budget.map(Duration::from_secs_f64),
        min: min.map(Duration::from_secs_f64),
        ..Expectation::new(kind)
    }
}

fn verdict(kind: ExpectationKind, budget: Option<f64>, min: Option<f64>, t: &Timeline) -> Verdict {
    check(&expect(kind, budget, min), t).verdict
}

#[test]
fn fails_during_cases() {
    use ExpectationKind::FailsDuring as K;
    let t = timeline(20.0, &[(5.0, 14.0)], Some(5.0), Some(13.0));
    assert_eq!(verdict(K, None, Some(8.0), &t), Verdict::Pass);
    assert_matches!(verdict(K, None, Some(10.0), &t), Verdict::Fail { .. });
    let healthy = timeline(20.0, &[], Some(5.0), Some(13.0));
    assert_matches!(verdict(K, None, Some(1.0), &healthy), Verdict::Fail { .. });
    let never_applied = timeline(20.0, &[], None, None);
    assert_matches!(
        verdict(K, None, Some(1.0), &never_applied),
        Verdict::Unknown { .. }
    );
    let o = check(&expect(K, None, Some(8.0)), &t);
    assert!((o.measured_seconds.unwrap() - 9.0).abs() < 0.05, "{o:?}");
}

#[test]
fn recovers_within_cases() {
    use ExpectationKind::RecoversWithin as K;
    let t = timeline(30.0, &[(5.0, 15.0)], Some(5.0), Some(13.0));
    assert_eq!(verdict(K, Some(5.0), None, &t), Verdict::Pass);
    assert_matches!(verdict(K, Some(1.0), None, &t), Verdict::Fail { .. });
    let never_back = timeline(30.0, &[(5.0, 31.0)], Some(5.0), Some(13.0));
    assert_matches!(
        verdict(K, Some(10.0), None, &never_back),
        Verdict::Fail { .. }
    );
    // The run ended 17 s after the heal: a 20 s budget cannot be judged (a starved host's
    // slipped schedule), neither way.
    assert_matches!(
        verdict(K, Some(20.0), None, &never_back),
        Verdict::Unknown { .. }
    );
    // A single lucky success does not count as recovered: it must stay up.
    let flapping = timeline(30.0, &[(5.0, 15.0), (15.1, 20.0)], Some(5.0), Some(13.0));
    let o = check(&expect(K, Some(20.0), None), &flapping);
    assert!((o.measured_seconds.unwrap() - 7.0).abs() < 0.05, "{o:?}");
    // The probe ended 10 s before the heal (a harness error stopped the run): no negative
    // time after the heal, and no verdict.
    let ended_first = timeline(20.0, &[(5.0, 21.0)], Some(5.0), Some(30.0));
    let o = check(&expect(K, Some(10.0), None), &ended_first);
    assert!(o.measured.starts_with("no sample after the heal"), "{o:?}");
    assert_matches!(o.verdict, Verdict::Unknown { .. });
    let not_healed = timeline(30.0, &[], Some(5.0), None);
    assert_matches!(
        verdict(K, Some(5.0), None, &not_healed),
        Verdict::Unknown { .. }
    );
}

#[test]
fn never_fails_cases() {
    use ExpectationKind::NeverFails as K;
    assert_eq!(
        verdict(K, None, None, &timeline(10.0, &[], Some(2.0), Some(8.0))),
        Verdict::Pass
    );
    assert_matches!(
        verdict(
            K,
            None,
            None,
            &timeline(10.0, &[(4.0, 4.2)], Some(2.0), Some(8.0))
        ),
        Verdict::Fail { .. }
    );
    // Failures before the fault starts are not counted.
    assert_eq!(
        verdict(
            K,
            None,
            None,
            &timeline(10.0, &[(0.0, 1.0)], Some(2.0), Some(8.0))
        ),
        Verdict::Pass
    );
    assert_matches!(
        verdict(K, None, None, &Timeline::new()),
        Verdict::Unknown { .. }
    );
}

#[test]
fn stays_down_cases() {
    use ExpectationKind::StaysDown as K;
    let broken = timeline(30.0, &[(5.0, 31.0)], Some(5.0), Some(13.0));
    assert_eq!(verdict(K, None, Some(10.0), &broken), Verdict::Pass);
    let self_healing = timeline(30.0, &[(5.0, 15.0)], Some(5.0), Some(13.0));
    assert_matches!(
        verdict(K, None, Some(10.0), &self_healing),
        Verdict::Fail { .. }
    );
    let too_short = timeline(15.0, &[(5.0, 16.0)], Some(5.0), Some(13.0));
    assert_matches!(
        verdict(K, None, Some(10.0), &too_short),
        Verdict::Unknown { .. }
    );
}

fn readback(acked: &[u64], indeterminate: &[u64], present: &[u64]) -> Timeline {
    Timeline::from_events(vec![Event {
        at: 0,
        kind: EventKind::ReadBack {
            probe: "p".into(),
            acknowledged: acked.to_vec(),
            indeterminate: indeterminate.to_vec(),
            present: present.to_vec(),
        },
    }])
}

#[test]
fn no_lost_writes_cases() {
    use ExpectationKind::NoLostWrites as K;
    let v = |t: &Timeline| verdict(K, None, None, t);
    assert_eq!(v(&readback(&[1, 2, 3], &[], &[1, 2, 3])), Verdict::Pass);
    assert_eq!(
        v(&readback(&[1, 2], &[3], &[1, 2, 3])),
        Verdict::Pass,
        "indeterminate and present is fine"
    );
    assert_eq!(
        v(&readback(&[1, 2], &[3], &[1, 2])),
        Verdict::Pass,
        "indeterminate and absent is fine"
    );
    assert_matches!(v(&readback(&[1, 2, 3], &[], &[1, 3])), Verdict::Fail { .. });
    assert_matches!(v(&readback(&[1], &[], &[1, 9])), Verdict::Fail { .. });
    assert_matches!(v(&readback(&[], &[], &[])), Verdict::Unknown { .. });
    assert_matches!(v(&Timeline::new()), Verdict::Unknown { .. });
}

fn measured(name: &str, value: f64) -> Timeline {
    let kind = EventKind::Measurement {
        name: name.into(),
        value,
        unit: "ms".into(),
        what: String::new(),
    };
    Timeline::from_events(vec![Event { at: 0, kind }])
}

#[test]
fn simultaneous_and_completes_cases() {
    use ExpectationKind::{CompletesWithin, Simultaneous};
    assert_eq!(
        verdict(
            Simultaneous,
            Some(0.001),
            None,
            &measured("f/exit-skew", 0.4)
        ),
        Verdict::Pass
    );
    assert_matches!(
        verdict(
            Simultaneous,
            Some(0.001),
            None,
            &measured("f/exit-skew", 3.0)
        ),
        Verdict::Unknown { reason } if reason.starts_with("the kills did not land together")
    );
    assert_matches!(
        verdict(Simultaneous, Some(0.001), None, &Timeline::new()),
        Verdict::Unknown { .. }
    );
    let t = timeline(1.0, &[], Some(1.0), Some(13.0));
    assert_eq!(
        verdict(CompletesWithin, Some(15.0), None, &t),
        Verdict::Pass
    );
    assert_matches!(
        verdict(CompletesWithin, Some(10.0), None, &t),
        Verdict::Fail { .. }
    );
}

#[test]
fn loses_writes_and_ordered_prefix_cases() {
    use ExpectationKind::{LosesWrites, OrderedPrefix};
    let v = |k, t: &Timeline| verdict(k, None, None, t);
    assert_eq!(
        v(LosesWrites, &readback(&[1, 2, 3], &[], &[1])),
        Verdict::Pass
    );
    assert_matches!(
        v(LosesWrites, &readback(&[1, 2, 3], &[], &[1, 2, 3])),
        Verdict::Fail { .. }
    );
    assert_matches!(v(LosesWrites, &Timeline::new()), Verdict::Unknown { .. });
    assert_eq!(
        v(OrderedPrefix, &readback(&[1, 2, 3, 5], &[4], &[1, 2, 3])),
        Verdict::Pass,
        "a lost tail is still a prefix"
    );
    assert_eq!(
        v(OrderedPrefix, &readback(&[1, 2, 3, 5], &[4], &[1, 2, 3, 5])),
        Verdict::Pass,
        "an indeterminate hole is allowed"
    );
    assert_matches!(
        v(OrderedPrefix, &readback(&[1, 2, 3], &[], &[2, 1, 3])),
        Verdict::Fail { .. }
    );
}

#[test]
fn measurement_bounds() {
    let e = |lo: Option<f64>, hi: Option<f64>| Expectation {
        kind: ExpectationKind::Measurement,
        measurement: Some("m".into()),
        at_least: lo,
        at_most: hi,
        ..expect(ExpectationKind::Measurement, None, None)
    };
    let t = measured("m", 5.0);
    assert_eq!(check(&e(None, Some(10.0)), &t).verdict, Verdict::Pass);
    assert_matches!(check(&e(Some(6.0), None), &t).verdict, Verdict::Fail { .. });
    assert_matches!(
        check(&e(None, Some(1.0)), &Timeline::new()).verdict,
        Verdict::Unknown { .. }
    );
}

/// A cache-outage timeline: load windows each second from 0 to `end` with p99 `p99(t)` ms and
/// hit ratio `hits(t)`; fault `f` (target `mc`) applied at 10 s, `oom` at 12.5 s, OOM victim
/// `victim`, `die` at 12.5 s and `start` at `restart` seconds.
fn outage_timeline(
    end: i64,
    p99: impl Fn(i64) -> f64,
    hits: impl Fn(i64) -> f64,
    victim: Option<&str>,
    restart: Option<f64>,
) -> Timeline {
    let at = |s: f64| (s * S as f64) as Nanos;
    let mut events = vec![];
    for s in 0..end {
        let ok = 200;
        events.push(Event {
            at: s * S,
            kind: EventKind::Window {
                probe: "p".into(),
                sent: ok,
                ok,
                server_errors: 0,
                other_errors: u64::from(s == 30),
                hits: (hits(s) * ok as f64) as u64,
                p50: 500_000,
                p99: (p99(s).abs() * 1e6) as Nanos,
                max: (p99(s).abs() * 1e6) as Nanos,
                // A negative p99 marks a second in which the generator itself stalled.
                lag: if p99(s) < 0.0 { 50_000_000 } else { 0 },
            },
        });
    }
    events.push(Event {
        at: at(10.0),
        kind: EventKind::FaultApplied {
            fault: "f".into(),
            targets: vec!["mc".into()],
            detail: String::new(),
        },
    });
    let container = |s: f64, action: &str| Event {
        at: at(s),
        kind: EventKind::Container {
            container: "mc".into(),
            action: action.into(),
        },
    };
    events.push(container(12.5, "oom"));
    events.push(container(12.51, "die (exit 137)"));
    if let Some(r) = restart {
        events.push(container(r, "start"));
    }
    if let Some(v) = victim {
        events.push(Event {
            at: at(12.6),
            kind: EventKind::OomKill {
                container: "mc".into(),
                process: v.into(),
                pid: 42,
                evidence: "kernel log".into(),
            },
        });
    }
    Timeline::from_events(events)
}

fn cache_expect(kind: ExpectationKind, budget: Option<f64>, ratio: Option<f64>) -> Expectation {
    Expectation {
        victim: Some("memcached".into()),
        ratio,
        ..expect(kind, budget, None)
    }
}

/// An expectation with the fields of the machine checks.
fn expect_with(
    kind: ExpectationKind,
    budget: Option<f64>,
    matching: Option<&str>,
    measurement: Option<&str>,
    unit: Option<&str>,
) -> Expectation {
    Expectation {
        matching: matching.map(str::to_string),
        measurement: measurement.map(str::to_string),
        unit: unit.map(str::to_string),
        ..expect(kind, budget, None)
    }
}

/// p99 1 ms before the fault, `outage_ms` while down (12.5–20 s), then 1 ms again from
/// `warm_from` on; hit ratio 1.0 except 0.5 until `warm_from` after the restart.
fn cache_run(outage_ms: f64, warm_from: i64) -> Timeline {
    outage_timeline(
        40,
        move |s| match s {
            12..=20 => outage_ms,
            _ if s > 20 && s < warm_from => 10.0,
            _ => 1.0,
        },
        move |s| {
            if (12..warm_from).contains(&s) {
                0.5
            } else {
                1.0
            }
        },
        Some("memcached"),
        Some(20.0),
    )
}

#[test]
fn cache_outage_cases() {
    use ExpectationKind::*;
    let slow = cache_run(2000.0, 26);
    let v =
        |kind, budget, ratio, t: &Timeline| check(&cache_expect(kind, budget, ratio), t).verdict;
    // (expectation, budget s, ratio, timeline, expected verdict label)
    type Case = (
        ExpectationKind,
        Option<f64>,
        Option<f64>,
        Timeline,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (OomKillWithin, Some(5.0), None, slow.clone(), "PASS"),
        (OomKillWithin, Some(1.0), None, slow.clone(), "FAIL"),
        (
            OomKillWithin,
            Some(5.0),
            None,
            outage_timeline(40, |_| 1.0, |_| 1.0, Some("leak-agent"), None),
            "FAIL",
        ),
        (
            OomKillWithin,
            Some(5.0),
            None,
            outage_timeline(40, |_| 1.0, |_| 1.0, None, None),
            "UNKNOWN",
        ),
        (RestartedWithin, Some(10.0), None, slow.clone(), "PASS"),
        (RestartedWithin, Some(5.0), None, slow.clone(), "FAIL"),
        (
            RestartedWithin,
            Some(10.0),
            None,
            outage_timeline(40, |_| 1.0, |_| 1.0, None, None),
            "FAIL",
        ),
        // Never started again, but the run ended 26.5 s after the death: a 30 s budget
        // cannot be judged.
        (
            RestartedWithin,
            Some(30.0),
            None,
            outage_timeline(40, |_| 1.0, |_| 1.0, None, None),
            "UNKNOWN",
        ),
        (LatencyRises, None, Some(100.0), slow.clone(), "PASS"),
        (LatencyRises, None, Some(100.0), cache_run(50.0, 26), "FAIL"),
        // A baseline inflated by the generator's own stall (60 ms p99, 50 ms of it the lag):
        // a rise short over the raw baseline but ≥ 100× over the net one cannot be told...
        (
            LatencyRises,
            None,
            Some(100.0),
            outage_timeline(
                40,
                |s| if s < 10 { -60.0 } else { 2000.0 },
                |_| 1.0,
                None,
                Some(20.0),
            ),
            "UNKNOWN",
        ),
        // ... and one short over both is still a failure.
        (
            LatencyRises,
            None,
            Some(100.0),
            outage_timeline(
                40,
                |s| if s < 10 { -60.0 } else { 500.0 },
                |_| 1.0,
                None,
                Some(20.0),
            ),
            "FAIL",
        ),
        (
            LatencyStaysWithin,
            None,
            Some(5.0),
            cache_run(4.0, 20),
            "PASS",
        ),
        (LatencyStaysWithin, None, Some(5.0), slow.clone(), "FAIL"),
        // A slow second explained by the generator's own 50 ms stall is the machine's...
        (
            LatencyStaysWithin,
            None,
            Some(5.0),
            outage_timeline(
                40,
                |s| if s == 30 { -50.0 } else { 1.0 },
                |_| 1.0,
                None,
                None,
            ),
            "PASS",
        ),
        (
            LatencyStaysWithin,
            None,
            Some(5.0),
            // ... but latency beyond the stall is the system's.
            outage_timeline(
                40,
                |s| if s == 30 { -150.0 } else { 1.0 },
                |_| 1.0,
                None,
                None,
            ),
            "FAIL",
        ),
        (
            LatencyStaysWithin,
            None,
            Some(5.0),
            // ... and in between (over net of the stall, within it counted for the system's
            // processes too) this run cannot tell.
            outage_timeline(
                40,
                |s| if s == 30 { -80.0 } else { 1.0 },
                |_| 1.0,
                None,
                None,
            ),
            "UNKNOWN",
        ),
        (WarmUpWithin, Some(10.0), None, slow.clone(), "PASS"),
        (WarmUpWithin, Some(3.0), None, slow.clone(), "FAIL"),
        // Never warm in the 20 s the run watched after the restart: a FAIL against a 15 s
        // budget; against a 30 s one the run ended too early to tell (a starved host's
        // slipped schedule).
        (
            WarmUpWithin,
            Some(15.0),
            None,
            cache_run(2000.0, 60),
            "FAIL",
        ),
        (
            WarmUpWithin,
            Some(30.0),
            None,
            cache_run(2000.0, 60),
            "UNKNOWN",
        ),
        (NoErrors, None, None, slow.clone(), "FAIL"),
        (
            NoErrors,
            None,
            None,
            outage_timeline(20, |_| 1.0, |_| 1.0, None, None),
            "PASS",
        ),
        (LatencyRises, None, Some(100.0), Timeline::new(), "UNKNOWN"),
        (WarmUpWithin, Some(30.0), None, Timeline::new(), "UNKNOWN"),
    ];
    for (i, (kind, budget, ratio, t, expected)) in cases.into_iter().enumerate() {
        let got = v(kind, budget, ratio, &t);
        assert_eq!(got.label(), expected, "case {i} ({kind:?}): {got:?}");
    }
    // The measured values are the numbers the report shows.
    let o = check(&cache_expect(WarmUpWithin, Some(10.0), None), &slow);
    assert_eq!(o.measured_seconds, Some(6.0), "{o:?}");
    let o = check(&cache_expect(LatencyRises, None, Some(100.0)), &slow);
    assert_eq!(o.measured_seconds, Some(2000.0), "{o:?}");
    let o = check(&cache_expect(OomKillWithin, Some(5.0), None), &slow);
    assert!((o.measured_seconds.unwrap() - 2.5).abs() < 1e-6, "{o:?}");
}

#[test]
fn baseline_is_the_median_of_the_windows_before_the_fault() {
    let t = outage_timeline(
        20,
        |s| if s == 5 { 50.0 } else { 1.0 + s as f64 / 100.0 },
        |_| 0.98,
        None,
        None,
    );
    let b = baseline(&t.windows("p"), 10 * S).unwrap();
    assert_eq!(b.windows, 8, "windows 2..=9: the first two are skipped");
    assert!(
        (b.p99 as f64 / 1e6 - 1.06).abs() < 0.02,
        "{b:?}: one slow second does not move it"
    );
    assert!((b.hit_ratio - 0.98).abs() < 0.01);
    assert!(baseline(&t.windows("p"), 3 * S).is_err(), "too few windows");
}

/// `t` plus events at the given seconds.
fn with(t: Timeline, extra: Vec<(f64, EventKind)>) -> Timeline {
    let mut events = t.events();
    events.extend(extra.into_iter().map(|(at, kind)| Event {
        at: (at * S as f64) as Nanos,
        kind,
    }));
    Timeline::from_events(events)
}

#[test]
fn ends_failing_cases() {
    use ExpectationKind::EndsFailing as K;
    let e = expect_with(K, None, Some("timeout"), None, None);
    let lost = timeline(20.0, &[(8.0, 21.0)], Some(5.0), Some(13.0));
    assert_eq!(check(&e, &lost).verdict, Verdict::Pass);
    let back = timeline(20.0, &[(8.0, 15.0)], Some(5.0), Some(13.0));
    assert_matches!(check(&e, &back).verdict, Verdict::Fail { .. });
    let other = expect_with(K, None, Some("key absent"), None, None);
    assert_matches!(check(&other, &lost).verdict, Verdict::Fail { .. });
    assert_matches!(check(&e, &Timeline::new()).verdict, Verdict::Unknown { .. });
}

#[test]
fn outage_within_cases() {
    use ExpectationKind::OutageWithin as K;
    let t = timeline(30.0, &[(6.0, 16.0)], Some(5.0), Some(13.0));
    let o = check(&expect_with(K, Some(12.0), None, None, None), &t);
    assert_eq!(o.verdict, Verdict::Pass);
    assert!((o.measured_seconds.unwrap() - 10.0).abs() < 0.05, "{o:?}");
    assert_matches!(
        check(&expect_with(K, Some(5.0), None, None, None), &t).verdict,
        Verdict::Fail { .. }
    );
    let still_down = timeline(30.0, &[(6.0, 31.0)], Some(5.0), Some(13.0));
    assert_matches!(
        check(&expect_with(K, Some(60.0), None, None, None), &still_down).verdict,
        Verdict::Fail { .. }
    );
    let healthy = timeline(30.0, &[], Some(5.0), Some(13.0));
    assert_eq!(
        check(&expect_with(K, Some(1.0), None, None, None), &healthy).verdict,
        Verdict::Pass
    );
}

#[test]
fn measured_within_cases() {
    use ExpectationKind::MeasuredWithin as K;
    let e = expect_with(K, Some(15.0), None, Some("engine-downtime"), None);
    let t = with(
        Timeline::new(),
        vec![
            (
                1.0,
                measured("f/engine-downtime-m1", 12_000.0).events()[0]
                    .kind
                    .clone(),
            ),
            (
                2.0,
                measured("f/engine-downtime-m2", 14_000.0).events()[0]
                    .kind
                    .clone(),
            ),
        ],
    );
    let o = check(&e, &t);
    assert_eq!(o.verdict, Verdict::Pass);
    assert!(
        o.measured.contains("m1 12.00s") && o.measured.contains("m2 14.00s"),
        "{o:?}"
    );
    let tight = expect_with(K, Some(13.0), None, Some("engine-downtime"), None);
    assert_matches!(check(&tight, &t).verdict, Verdict::Fail { .. });
    assert_matches!(check(&e, &Timeline::new()).verdict, Verdict::Unknown { .. });
}

fn container(name: &str, action: &str) -> EventKind {
    EventKind::Container {
        container: name.into(),
        action: action.into(),
    }
}

#[test]
fn containers_survive_cases() {
    use ExpectationKind::ContainersSurvive as K;
    let e = expect_with(K, None, None, None, None);
    let base = || timeline(10.0, &[], Some(5.0), Some(8.0));
    let calm = with(base(), vec![(1.0, container("m1/consul", "die (exit 0)"))]);
    assert_eq!(
        check(&e, &calm).verdict,
        Verdict::Pass,
        "deaths before the fault"
    );
    let host_level = with(base(), vec![(6.0, container("m1", "die (exit 0)"))]);
    assert_eq!(
        check(&e, &host_level).verdict,
        Verdict::Pass,
        "not inside a machine"
    );
    let died = with(
        base(),
        vec![(6.0, container("m2/consul", "die (exit 137)"))],
    );
    assert_matches!(check(&e, &died).verdict, Verdict::Fail { .. });
    assert_matches!(
        check(&e, &timeline(10.0, &[], None, None)).verdict,
        Verdict::Unknown { .. }
    );
}

#[test]
fn unit_reaches_cases() {
    use ExpectationKind::UnitReaches as K;
    let e = expect_with(K, None, Some("name-conflict"), None, Some("canary"));
    let unit = |state: &str| EventKind::Unit {
        machine: "m1".into(),
        unit: "canary".into(),
        state: state.into(),
        detail: String::new(),
    };
    let base = || timeline(10.0, &[], Some(5.0), Some(8.0));
    let conflict = with(
        base(),
        vec![(6.0, unit("exited")), (9.0, unit("name-conflict"))],
    );
    let o = check(&e, &conflict);
    assert_eq!(o.verdict, Verdict::Pass);
    assert!((o.measured_seconds.unwrap() - 4.0).abs() < 0.01, "{o:?}");
    let fine = with(base(), vec![(6.0, unit("exited")), (9.0, unit("active"))]);
    assert_matches!(check(&e, &fine).verdict, Verdict::Fail { .. });
    let before = with(base(), vec![(1.0, unit("name-conflict"))]);
    assert_matches!(check(&e, &before).verdict, Verdict::Unknown { .. });
}

#[test]
fn fault_verified_cases() {
    // (stage, ok, undecided)
    let verified = |stages: &[(&str, bool, bool)]| {
        let events = stages
            .iter()
            .map(|&(stage, ok, undecided)| Event {
                at: S,
                kind: EventKind::FaultVerified {
                    fault: "f".into(),
                    stage: if stage == "applied" {
                        Stage::Applied
                    } else {
                        Stage::Healed
                    },
                    ok,
                    undecided,
                    detail: "seen".into(),
                },
            })
            .collect();
        verdict(
            ExpectationKind::FaultVerified,
            None,
            None,
            &Timeline::from_events(events),
        )
    };
    assert_eq!(
        verified(&[("applied", true, false), ("healed", true, false)]),
        Verdict::Pass
    );
    assert_matches!(
        verified(&[("applied", false, false), ("healed", true, false)]),
        Verdict::Fail { .. }
    );
    assert_matches!(
        verified(&[("applied", true, false), ("healed", false, false)]),
        Verdict::Fail { .. }
    );
    // The harness could not tell (the engine did not answer, libfaketime cannot reach the
    // process): never a FAIL.
    assert_matches!(
        verified(&[("applied", false, true), ("healed", true, false)]),
        Verdict::Unknown { .. }
    );
    assert_matches!(
        verified(&[("applied", true, false)]),
        Verdict::Unknown { .. }
    );
    assert_matches!(verified(&[]), Verdict::Unknown { .. });
}

/// An unplanned event of `cause` at `at` seconds, lasting `lasted` seconds.
fn unplanned_at(t: &Timeline, cause: crate::timeline::Cause, at: f64, lasted: f64, detail: &str) {
    t.push(Event {
        at: (at * S as f64) as Nanos,
        kind: EventKind::Unplanned {
            cause,
            subject: "engine".into(),
            lasted: (lasted * S as f64) as Nanos,
            detail: detail.into(),
        },
    });
}

#[test]
fn an_unplanned_event_in_an_expectations_window_makes_it_unknown_naming_it() {
    use crate::timeline::Cause;
    use ExpectationKind::{FailsDuring, NeverFails, RecoversWithin};
    // The zookeeper case: writes fail after the engine restarts at +14.2 s.
    let t = timeline(30.0, &[(14.2, 17.0)], Some(5.0), Some(13.0));
    assert_matches!(verdict(NeverFails, None, None, &t), Verdict::Fail { .. });
    unplanned_at(
        &t,
        Cause::Engine,
        14.2,
        2.0,
        "the engine restarted (no answer for 2.0 s)",
    );
    assert_eq!(
        verdict(NeverFails, None, None, &t),
        Verdict::Unknown {
            reason:
                "the engine restarted (no answer for 2.0 s) at +14.2 s, not part of the scenario"
                    .into()
        }
    );
    // Outside a window it changes nothing: `fails-during` ends at the heal (+13 s) …
    let during = timeline(30.0, &[(5.0, 13.5)], Some(5.0), Some(13.0));
    unplanned_at(&during, Cause::Engine, 14.2, 2.0, "the engine restarted");
    assert_eq!(
        verdict(FailsDuring, None, Some(5.0), &during),
        Verdict::Pass
    );
    // … and a recovery's window at its deadline (heal + budget: +13 s + 5 s).
    let late = timeline(30.0, &[(5.0, 13.5)], Some(5.0), Some(13.0));
    unplanned_at(&late, Cause::Lag, 19.0, 0.4, "the harness fell behind");
    assert_eq!(
        verdict(RecoversWithin, Some(5.0), None, &late),
        Verdict::Pass
    );
    // A lag that ends inside the window overlaps it.
    unplanned_at(&late, Cause::Lag, 4.8, 0.3, "the harness fell behind");
    assert_matches!(
        verdict(RecoversWithin, Some(5.0), None, &late),
        Verdict::Unknown { reason } if reason.starts_with("the harness fell behind at +4.8 s")
    );
}

#[test]
fn a_real_failure_with_nothing_unplanned_stays_fail() {
    use ExpectationKind::NeverFails;
    let t = timeline(30.0, &[(14.2, 17.0)], None, None);
    for e in applied_to(5.0, 13.0, &["zk1"]) {
        t.push(e);
    }
    // What the fault did to its own target is explained, and so not unplanned.
    t.push(container_at(5.0, "zk1", "kill"));
    t.push(container_at(5.01, "zk1", "die (exit 137)"));
    // A process that exits by itself is the system's behaviour, not a disturbance.
    t.push(container_at(15.0, "api", "die (exit 1)"));
    unplanned::mark_containers(&t);
    assert_matches!(verdict(NeverFails, None, None, &t), Verdict::Fail { .. });
}

fn container_at(at: f64, name: &str, action: &str) -> Event {
    Event {
        at: (at * S as f64) as Nanos,
        kind: EventKind::Container {
            container: name.into(),
            action: action.into(),
        },
    }
}

fn applied_to(at: f64, healed: f64, targets: &[&str]) -> Vec<Event> {
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    let (fault, detail) = ("f".to_string(), String::new());
    vec![
        Event {
            at: (at * S as f64) as Nanos,
            kind: EventKind::FaultApplied {
                fault: fault.clone(),
                targets: targets.clone(),
                detail: detail.clone(),
            },
        },
        Event {
            at: (healed * S as f64) as Nanos,
            kind: EventKind::FaultHealed {
                fault,
                targets,
                detail,
            },
        },
    ]
}

/// `(at, subject, detail)` of the unplanned container events found.
fn found(events: Vec<Event>) -> Vec<(f64, String, String)> {
    let t = Timeline::from_events(events);
    unplanned::container_events(&t)
        .into_iter()
        .map(|e| match e.kind {
            EventKind::Unplanned {
                subject, detail, ..
            } => (e.at as f64 / S as f64, subject, detail),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn container_events_no_fault_explains_are_unplanned() {
    let mut events = applied_to(5.0, 13.0, &["zk1", "m1"]);
    events.extend([
        container_at(0.0, "zk1", "start"),
        // The fault's own: its target, from a second before it applies to 5 s after the heal.
        container_at(4.5, "zk1", "kill"),
        container_at(4.51, "zk1", "die (exit 137)"),
        container_at(17.0, "zk1", "restart"),
        container_at(9.0, "m1/web", "die (exit 137)"), // inside a machine: its engine's business
        // Killed from outside: another replica, during the fault.
        container_at(6.0, "zk2", "kill"),
        container_at(6.02, "zk2", "die (exit 137)"),
        container_at(6.5, "zk2", "start"),
        // The fault's target, long after the heal, stopped and OOM-killed.
        container_at(20.0, "zk1", "oom"),
        container_at(25.0, "zk3", "stop"),
        container_at(25.1, "zk3", "die (exit 143)"),
        // Exits of their own: a crash and a clean exit are the system's behaviour.
        container_at(26.0, "api", "die (exit 139)"),
        container_at(27.0, "api", "die (exit 0)"),
        container_at(30.0, "api", "start"),
    ]);
    assert_eq!(
        found(events),
        [
            (
                6.0,
                "zk2".into(),
                "container `zk2` was killed, then died of signal 9 (exit 137)".into()
            ),
            (20.0, "zk1".into(), "container `zk1` was OOM-killed".into()),
            (
                25.0,
                "zk3".into(),
                "container `zk3` was stopped, then died of signal 15 (exit 143)".into()
            ),
        ]
    );
}

#[test]
fn container_events_outside_the_observation_are_bring_up_and_teardown() {
    let note = |at: f64, text: &str| Event {
        at: (at * S as f64) as Nanos,
        kind: EventKind::Note { text: text.into() },
    };
    let events = vec![
        container_at(-2.0, "zk1", "kill"),
        note(0.0, "observation starts"),
        container_at(3.0, "zk2", "kill"),
        note(10.0, "observation ends"),
        container_at(11.0, "zk1", "kill"),
    ];
    let t = Timeline::from_events(events);
    unplanned::mark_containers(&t);
    unplanned::mark_containers(&t); // idempotent
    let unplanned: Vec<_> = t
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Unplanned { .. }))
        .collect();
    assert_eq!(unplanned.len(), 1, "{unplanned:?}");
    assert_eq!(unplanned[0].at, 3 * S);
}

#[test]
fn unobserved_samples_are_unplanned_unless_a_fault_explains_the_engine_s_silence() {
    let gap = |at: f64, replica: &str| Event {
        at: (at * S as f64) as Nanos,
        kind: EventKind::Unobserved {
            probe: format!("{replica}-health"),
            replica: replica.into(),
            detail: "the engine did not answer".into(),
        },
    };
    // A daemon crash names what runs on its machine (`web`) among its targets.
    let mut events = applied_to(5.0, 9.0, &["m1", "web"]);
    events.extend([
        gap(6.0, "web"),
        gap(6.25, "web"),
        gap(8.0, "db"),
        gap(8.25, "db"),
        gap(30.0, "web"),
    ]);
    let t = Timeline::from_events(events);
    let found: Vec<(f64, String, f64)> = unplanned::unobserved_events(&t)
        .into_iter()
        .map(|e| match e.kind {
            EventKind::Unplanned {
                subject, lasted, ..
            } => (e.at as f64 / S as f64, subject, lasted as f64 / S as f64),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        found,
        [
            (8.0, "db-health".to_string(), 0.25),
            (30.0, "web-health".to_string(), 0.0)
        ]
    );
    // A never-fails verdict says how many samples it could not take.
    let t = with(
        timeline(10.0, &[], Some(5.0), Some(8.0)),
        vec![(6.0, gap(0.0, "x").kind)],
    );
    let t = {
        let mut events = t.events();
        for e in &mut events {
            if let EventKind::Unobserved { probe, .. } = &mut e.kind {
                *probe = "p".into();
            }
        }
        Timeline::from_events(events)
    };
    let o = check(&expect(ExpectationKind::NeverFails, None, None), &t);
    assert!(
        o.measured
            .contains("(1 not observed: its engine did not answer)"),
        "{}",
        o.measured
    );
}

/// A warm-up's window: `hits` of 100 answers, p99 `p99` ms, `errors` failed.
fn warm_window(hits: u64, p99: f64, errors: u64) -> crate::timeline::Window {
    crate::timeline::Window {
        at: 0,
        sent: 100,
        ok: 100 - errors,
        errors,
        hits,
        p50: 1_000_000,
        p99: (p99 * 1e6) as Nanos,
        lag: 0,
    }
}

#[test]
fn a_warm_up_is_over_when_three_seconds_agree() {
    use super::cache::steady;
    let w = warm_window;
    let cases: &[(&[crate::timeline::Window], Option<bool>)] = &[
        // Fewer windows than it takes: not judged yet.
        (&[w(99, 5.0, 0), w(99, 5.0, 0)], None),
        // A cache filling: the hit ratio still climbs.
        (
            &[w(60, 900.0, 0), w(85, 300.0, 0), w(95, 80.0, 0)],
            Some(false),
        ),
        // Hits alike, but the queue still drains (p99 falling by more than 2×).
        (
            &[w(99, 400.0, 0), w(99, 150.0, 0), w(99, 60.0, 0)],
            Some(false),
        ),
        // Warm: small latencies differ by more than 2× but under the floor (noise).
        (&[w(98, 3.0, 0), w(99, 12.0, 0), w(99, 6.0, 0)], Some(true)),
        // Only the last three count.
        (
            &[
                w(10, 1900.0, 40),
                w(98, 30.0, 0),
                w(99, 25.0, 0),
                w(98, 40.0, 0),
            ],
            Some(true),
        ),
        // Saturated: steadily slow and failing is not a normal to measure against.
        (
            &[w(0, 2000.0, 20), w(0, 2000.0, 21), w(0, 2000.0, 20)],
            Some(false),
        ),
        // No cache header at all: hit ratio 0 throughout, latency decides.
        (&[w(0, 8.0, 0), w(0, 9.0, 0), w(0, 7.0, 0)], Some(true)),
    ];
    for (windows, expected) in cases {
        let got = steady(windows);
        assert_eq!(
            got.map(|s| s.holds()),
            *expected,
            "{windows:?}: {}",
            got.map(|s| s.to_string()).unwrap_or_default()
        );
    }
}

/// `t` without the engine's `oom` events (an engine that sends none: Podman's compat stream).
fn without_oom_event(t: &Timeline) -> Timeline {
    Timeline::from_events(
        t.events()
            .into_iter()
            .filter(|e| !matches!(&e.kind, EventKind::Container { action, .. } if action == "oom"))
            .collect(),
    )
}

/// The cgroup's `oom_kill` counter seen rising at `at` seconds (as the leak fault records it).
fn counter_rose(at: f64) -> (f64, EventKind) {
    (
        at,
        EventKind::Measurement {
            name: Metric::OomKills.of("f", None),
            value: 1.0,
            unit: "kills".into(),
            what: "the cgroup's oom_kill counter".into(),
        },
    )
}

/// A kill of `process` recorded at `at` seconds with `evidence`.
fn kill_recorded(at: f64, process: &str, evidence: &str) -> (f64, EventKind) {
    (
        at,
        EventKind::OomKill {
            container: "mc".into(),
            process: process.into(),
            pid: 42,
            evidence: evidence.into(),
        },
    )
}

#[test]
fn an_oom_kill_without_the_engine_s_event_is_judged_from_the_kernel_s_evidence() {
    use ExpectationKind::OomKillWithin as K;
    let plain = || without_oom_event(&outage_timeline(40, |_| 1.0, |_| 1.0, None, Some(20.0)));
    let judge = |budget: f64, t: &Timeline| check(&cache_expect(K, Some(budget), None), t);
    let main_died = "the container's main process died by SIGKILL (exit 137), with a rise of the cgroup's oom_kill counter (0 → 1)";
    // The counter rose 2.6 s into the leak and the main process died of it: PASS, naming both.
    let counted = with(
        plain(),
        vec![
            counter_rose(12.6),
            kill_recorded(13.0, "memcached", main_died),
        ],
    );
    let o = judge(5.0, &counted);
    assert_eq!(o.verdict, Verdict::Pass, "{o:?}");
    assert!((o.measured_seconds.unwrap() - 2.6).abs() < 1e-6, "{o:?}");
    assert!(
        o.measured
            .contains("counter rose (no oom event from the engine)"),
        "{}",
        o.measured
    );
    assert!(o.measured.contains(main_died), "{}", o.measured);
    // The counter is the kernel's word: a slow kill is still a failure.
    assert_matches!(judge(1.0, &counted).verdict, Verdict::Fail { .. });
    // The counter rose but nothing names the victim: unknown, saying so.
    let anonymous = with(plain(), vec![counter_rose(12.6)]);
    let o = judge(5.0, &anonymous);
    assert_matches!(&o.verdict, Verdict::Unknown { reason } if reason.contains("victim could not be identified") && reason.contains("counter rose"));
    assert!(o.measured.contains("victim unknown"), "{}", o.measured);
    // Only a recorded kill (State.OOMKilled read after the cgroup went): its time is an upper
    // bound, within the budget a pass, beyond it unknown.
    let flagged = with(
        plain(),
        vec![kill_recorded(13.0, "memcached", "State.OOMKilled")],
    );
    assert_eq!(judge(5.0, &flagged).verdict, Verdict::Pass);
    assert_matches!(judge(1.0, &flagged).verdict, Verdict::Unknown { reason } if reason.contains("may have come earlier"));
    // No event, no counter rise, no kill: the kernel did not act.
    assert_matches!(judge(5.0, &plain()).verdict, Verdict::Fail { reason } if reason.contains("no rise of the cgroup's oom_kill counter"));
    // The engine's event, when there is one, times the kill (the counter may read earlier).
    let both = with(
        outage_timeline(40, |_| 1.0, |_| 1.0, Some("memcached"), Some(20.0)),
        vec![counter_rose(12.4)],
    );
    let o = judge(5.0, &both);
    assert!(o.measured.starts_with("oom event 2.50s"), "{}", o.measured);
}

/// The 20.10 × cgroup v2 run under TCG: the generator 12–88 s behind from the first window,
/// most requests "failed", the starved leak never reached its limit. Every cache expectation
/// that FAILed there is UNKNOWN with the lag named.
#[test]
fn the_load_generator_s_lag_makes_every_cache_expectation_unknown() {
    use crate::timeline::Cause;
    use ExpectationKind::*;
    let starved = || {
        let t = without_oom_event(&outage_timeline(40, |_| 1.0, |_| 1.0, None, None));
        Timeline::from_events(
            t.events()
                .into_iter()
                .filter(|e| !matches!(&e.kind, EventKind::Container { .. }))
                .map(|mut e| {
                    if let EventKind::Window {
                        other_errors,
                        ok,
                        sent,
                        ..
                    } = &mut e.kind
                    {
                        (*other_errors, *ok) = (*sent - 5, 5);
                    }
                    e
                })
                .collect(),
        )
    };
    let cases = [
        (OomKillWithin, Some(10.0), None),
        (NoErrors, None, None),
        (RestartedWithin, Some(12.0), None),
        (WarmUpWithin, Some(30.0), None),
        (LatencyRises, None, Some(100.0)),
    ];
    let clean = starved();
    for (kind, budget, ratio) in cases {
        let got = check(&cache_expect(kind, budget, ratio), &clean).verdict;
        assert_matches!(got, Verdict::Fail { .. }, "{kind:?} without the lag");
    }
    let lagging = starved();
    for s in 0..40 {
        let lag = 12.0 + s as f64 * 2.0;
        unplanned_at(
            &lagging,
            Cause::Lag,
            s as f64,
            lag,
            "the harness fell behind: load probe `p` sent a request 12000 ms late",
        );
    }
    for (kind, budget, ratio) in cases {
        let got = check(&cache_expect(kind, budget, ratio), &lagging).verdict;
        assert_matches!(&got, Verdict::Unknown { reason } if reason.starts_with("the harness fell behind"), "{kind:?}: {got:?}");
    }
}
