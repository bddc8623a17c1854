//! The report's outputs on hand-made reports: chart data, SVG, HTML, JUnit, tables.

use super::chart::{self, ChartData};
use super::*;
use crate::check::Verdict;

fn demo_chart() -> ChartData {
    ChartData::from_report(&demo::report())
}

#[test]
fn chart_has_a_panel_per_probe_and_per_measurement_group() {
    let c = demo_chart();
    let titles: Vec<&str> = c.panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(c.panels.len(), 3, "{titles:?}");
    assert!(titles[0].contains("`zk-write`") && titles[0].contains("94 of 300 failed"));
    assert!(titles[1].contains("`realtime`"));
    assert_eq!(
        c.panels[2].lines.len(),
        2,
        "load/p50 and load/p99 share a panel"
    );
    assert_eq!(c.panels[0].lines[0].points.len(), 300);
    // The band: ok until the fault, failing until recovery, ok again.
    let band: Vec<bool> = c.panels[0].band.iter().map(|b| b.2).collect();
    assert_eq!(band, [true, false, true]);
}

#[test]
fn chart_times_count_from_the_observation_start() {
    let c = demo_chart();
    assert_eq!(c.windows.len(), 1);
    let w = &c.windows[0];
    assert!(
        (w.from - 5.0).abs() < 1e-6 && (w.to - 13.0).abs() < 1e-6 && w.healed,
        "{w:?}"
    );
    assert_eq!(c.markers.len(), 7);
    assert!(
        (c.from - -3.2).abs() < 1e-6,
        "bring-up events are before zero: {}",
        c.from
    );
    let deadlines: Vec<(usize, f64)> = c
        .budgets
        .iter()
        .map(|b| (b.index, (b.at * 10.0).round() / 10.0))
        .collect();
    assert_eq!(deadlines, [(1, 10.0), (2, 23.0), (3, 23.0)]);
    assert!(c.budgets[1].held && !c.budgets[2].held);
}

#[test]
fn a_fault_without_a_heal_runs_to_the_end_of_the_chart() {
    let mut r = demo::report();
    r.timeline
        .retain(|e| !matches!(e.kind, EventKind::FaultHealed { .. }));
    let c = ChartData::from_report(&r);
    assert!(!c.windows[0].healed);
    assert_eq!(c.windows[0].to, c.to);
}

#[test]
fn svg_draws_windows_series_markers_and_budgets() {
    let svg = chart::svg(&demo::report());
    assert_eq!(svg.matches(r#"class="fault-window""#).count(), 1);
    assert!(svg.contains("fault restart (zk-2, zk-3)"));
    assert_eq!(svg.matches(r#"class="series""#).count(), 4);
    assert_eq!(
        svg.matches(r#"class="event-marker""#).count(),
        7,
        "not the exec"
    );
    assert_eq!(
        svg.matches(r#"data-action="die""#).count(),
        2,
        "`die (exit 137)` is a die"
    );
    assert_eq!(svg.matches(r#"class="budget-line""#).count(), 3);
    assert!(
        !svg.contains("NaN") && !svg.contains("inf"),
        "no broken coordinates"
    );
}

#[test]
fn an_empty_report_gives_an_empty_chart() {
    let c = ChartData::from_report(&demo::empty());
    assert!(c.is_empty());
    assert!(!demo_chart().is_empty());
    let svg = chart::svg(&demo::empty());
    assert!(!svg.contains(r#"class="series""#));
    assert!(svg.contains("nothing was recorded"));
}

#[test]
fn html_is_self_contained() {
    let page = html::page(&demo::report());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<svg") && page.contains("</svg>"));
    assert!(page.contains("seed <code>42</code>"));
    assert!(
        page.contains("did not recover within the run"),
        "the failure's reason"
    );
    assert!(
        page.contains("applied: verified") && page.contains("healed: verified"),
        "each fault's verification"
    );
    for external in ["src=", "href=\"http", "@import", "url("] {
        assert!(
            !page.contains(external),
            "loads something from elsewhere: {external}"
        );
    }
}

#[test]
fn junit_has_one_case_per_expectation_with_numbers_in_the_message() {
    let r = demo::report();
    let xml = junit::xml("t", &[&r]).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let suite = &parsed.test_suites[0];
    assert_eq!(suite.test_cases.len(), 3);
    assert_eq!(suite.failures, 1);
    let failed = suite
        .test_cases
        .iter()
        .find(|c| !matches!(c.status, quick_junit::TestCaseStatus::Success { .. }))
        .unwrap();
    let quick_junit::TestCaseStatus::NonSuccess { message, .. } = &failed.status else {
        panic!("{failed:?}")
    };
    let message = message.as_ref().unwrap().as_str();
    assert!(
        message.contains("measured: not back") && message.contains("budget: ≤ 10s"),
        "{message}"
    );
}

#[test]
fn junit_of_a_run_that_never_started_is_an_error_not_green() {
    let mut r = demo::empty();
    r.error = Some("cannot reach the Docker engine".into());
    let xml = junit::xml("t", &[&r]).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.test_suites[0].errors, 1, "{xml}");
}

#[test]
fn unknown_verdicts_are_errors_in_junit() {
    let mut r = demo::report();
    r.outcomes[0].verdict = Verdict::Unknown {
        reason: "no samples".into(),
    };
    let parsed =
        quick_junit::Report::deserialize_from_str(&junit::xml("t", &[&r]).unwrap()).unwrap();
    assert_eq!(
        (parsed.test_suites[0].errors, parsed.test_suites[0].failures),
        (1, 1)
    );
}

#[test]
fn suite_table_shows_postmortem_observation_timings_and_verdict() {
    let mut pass = demo::report();
    pass.verdict = Verdict::Pass;
    pass.incident = Some("realtime-2016-06-zookeeper-quorum".into());
    pass.summary = "Chef restarts two of three ZooKeeper nodes at the same instant".into();
    let table = suite::table(&[pass, demo::report()]);
    assert!(table.contains("1 of 2 runs pass"), "{table}");
    for text in [
        "the postmortem says",
        "we observed",
        "Chef restarts",
        "9.40s vs ≥ 5s",
        "✗ not",
        "FAIL",
    ] {
        assert!(table.contains(text), "missing {text}:\n{table}");
    }
    assert!(table.lines().all(|l| l.chars().count() < 180), "{table}");
}

#[test]
fn wrapped_table_cells() {
    let rows = [["a b c d".to_string(), "x".to_string()]];
    let t = render_wrapped(["h1", "h2"], &rows, [3, 5]);
    assert_eq!(t, "  h1   h2\n  ---  --\n  a b  x\n  c d\n");
}

#[test]
fn run_table_prints_where_the_files_are() {
    let t = demo::report().table();
    for f in [
        "report.html",
        "junit.xml",
        "report.json",
        "--seed 42",
        "fault restart applied: verified",
    ] {
        assert!(t.contains(f), "{t}");
    }
}

#[test]
fn run_table_shows_each_faults_achieved_timing_beside_the_requested_one() {
    let r = demo::report();
    assert_eq!(r.fault_timings.len(), 1);
    let zk2 = &r.fault_timings[0].targets[0];
    assert!(
        (zk2.down_seconds.unwrap() - 8.02).abs() < 1e-3,
        "die +5.0003 s → start +13.02 s: {zk2:?}"
    );
    let t = r.table();
    assert!(
        t.contains("fault restart (restart): down 8.0 s requested; achieved: applied → healed 8.0 s, zk-2 8.0 s (die → start), zk-3 8.0 s (die → start)"),
        "{t}"
    );
}

#[test]
fn a_report_written_before_fault_timings_still_loads() {
    let mut json = serde_json::to_value(demo::report()).unwrap();
    assert!(json["fault_timings"].is_array());
    json.as_object_mut().unwrap().remove("fault_timings");
    let old: Report = serde_json::from_value(json).unwrap();
    assert!(old.fault_timings.is_empty());
    assert!(!old.table().contains("requested"));
}

#[test]
fn reports_round_trip_through_json() {
    let r = demo::report();
    let back: Report = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
    assert_eq!(back.outcomes, r.outcomes);
    assert_eq!(back.outcomes[1].budget_seconds, Some(10.0));
    assert_eq!(back.fault_timings, r.fault_timings);
}

#[test]
fn suite_files_hold_every_run() {
    let root = std::env::temp_dir().join(format!("aftershock-suite-test-{}", std::process::id()));
    let dir = root.join("suite-1");
    let mut second = demo::report().in_dir(root.join("demo-2"));
    second.run_id = "demo-2".into();
    let first = demo::report().in_dir(root.join("demo"));
    let files = suite::write(&dir, &[first, second]).unwrap();
    let xml = std::fs::read_to_string(&files.junit).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.test_suites.len(), 2);
    assert_eq!(parsed.failures, 2);
    let index = std::fs::read_to_string(&files.index).unwrap();
    assert!(index.contains(r#"href="../demo-2/report.html""#), "{index}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn every_scenario_file_is_in_exactly_one_share() {
    let files: Vec<std::path::PathBuf> = (0..11)
        .map(|i| format!("scenarios/s{:02}.toml", (i * 7) % 11).into())
        .collect();
    for n in 1..=5 {
        let mut seen: Vec<std::path::PathBuf> = (1..=n)
            .flat_map(|k| suite::partition(&files, k, n))
            .collect();
        seen.sort();
        let mut all = files.clone();
        all.sort();
        assert_eq!(seen, all, "shares of {n} must cover every file once");
    }
    assert_eq!(
        suite::partition(&files, 2, 3),
        suite::partition(&files.iter().rev().cloned().collect::<Vec<_>>(), 2, 3),
        "the order of the listing does not change a share"
    );
}

#[test]
fn the_chart_draws_unplanned_events_as_bands_naming_them() {
    let mut report = demo::report();
    let origin = chart::origin(&report);
    report.timeline.push(crate::timeline::Event {
        at: origin + 14_200_000_000,
        kind: EventKind::Unplanned {
            cause: crate::timeline::Cause::Engine,
            subject: "engine".into(),
            lasted: 2_000_000_000,
            detail: "the engine restarted (no answer for 2.0 s)".into(),
        },
    });
    let c = ChartData::from_report(&report);
    assert_eq!(c.unplanned.len(), 1);
    let u = &c.unplanned[0];
    assert!(
        (u.from - 14.2).abs() < 1e-6 && (u.to - 16.2).abs() < 1e-6,
        "{u:?}"
    );
    let svg = chart::render(&c);
    assert!(
        svg.contains(r#"class="unplanned" data-cause="engine""#),
        "{svg}"
    );
    assert!(svg.contains("the engine restarted (no answer for 2.0 s) at +14.20s"));
}

#[test]
fn fifty_replicas_dying_together_are_one_marker_with_a_count() {
    let mut r = demo::report();
    let at = r.timeline.iter().map(|e| e.at).max().unwrap_or(0) - 1_000_000_000;
    for i in 1..=50 {
        r.timeline.push(crate::timeline::Event {
            at: at + i * 20_000,
            kind: EventKind::Container {
                container: format!("mc{i}"),
                action: "die".into(),
            },
        });
    }
    r.timeline.sort_by_key(|e| e.at);
    let svg = chart::svg(&r);
    assert_eq!(svg.matches(r#"data-count="50""#).count(), 1, "one group");
    assert_eq!(
        svg.matches(r#"class="event-marker""#).count(),
        8,
        "the demo's seven and the group"
    );
    assert!(svg.contains("die ×50 (mc1 … mc50)"), "a short label");
    assert!(svg.contains("mc1, mc2"), "every name in the tooltip");
}

#[test]
fn a_machine_reached_without_tls_is_marked_in_json_html_and_table() {
    use crate::scenario::builder::{Experiment, Machine, Service};
    let plan = |insecure: bool| {
        let mut x = Experiment::new("far", std::time::Duration::from_secs(5));
        let east = Machine::url("east", "tcp://10.0.0.5:2375");
        x.machine(if insecure { east.insecure() } else { east });
        x.service(Service::generic("web", "memcached").on_machines(&["east"]));
        x.plan()
    };
    let info = || RunInfo {
        run_id: "r".into(),
        seed: 1,
        started_at: 0,
        finished_at: 1,
        error: None,
    };
    let e = plan(false).expect_err("plain tcp off loopback is refused without insecure");
    assert!(e.to_string().contains("insecure = true"), "{e}");
    let marked = Report::new(&plan(true).unwrap(), info(), vec![], vec![]);
    let json = serde_json::to_value(&marked).unwrap();
    assert_eq!(
        json["insecure_machines"],
        serde_json::json!([{"machine": "east", "url": "tcp://10.0.0.5:2375"}])
    );
    let said = "INSECURE: machine `east` was reached at tcp://10.0.0.5:2375 without TLS";
    assert!(marked.table().contains(said), "{}", marked.table());
    let page = html::page(&marked);
    assert!(
        page.contains(&format!("<p class=\"insecure\">{}", chart::esc(said))),
        "{page}"
    );
    assert!(page.contains(".insecure{") && page.contains("color:#c01f1f"));
    let clean = demo::report();
    assert!(clean.insecure_machines.is_empty());
    assert!(!clean.table().contains("INSECURE") && !html::page(&clean).contains("INSECURE"));
    let mut old = serde_json::to_value(&marked).unwrap();
    old.as_object_mut().unwrap().remove("insecure_machines");
    let old: Report = serde_json::from_value(old).unwrap();
    assert!(
        old.insecure_machines.is_empty(),
        "a report from before loads"
    );
}
