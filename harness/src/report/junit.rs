//! JUnit XML for CI: one `<testsuite>` per run, one `<testcase>` per expectation, so a nightly
//! job shows which expectation broke. `junit.xml` is written next to each `report.json`, and
//! `aftershock suite` writes one file with every run's suite.
//!
//! Verdicts map as: pass → success, fail → `<failure>`, unknown → `<error type="unknown">`
//! (the harness could not tell; never reported as the system's failure). The message carries
//! the measured value and the budget; a harness error with no expectation judged becomes one
//! `<error>` case, so a broken run never looks green.

use super::Report;
use crate::check::Verdict;
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// The JUnit document of some runs (one run: its own file; the whole suite: one file).
pub fn xml(name: &str, reports: &[&Report]) -> Result<String, quick_junit::SerializeError> {
    let mut doc = quick_junit::Report::new(name);
    doc.add_test_suites(reports.iter().map(|r| suite(r)));
    doc.to_string()
}

fn suite(report: &Report) -> TestSuite {
    let mut suite = TestSuite::new(format!("{} ({})", report.scenario, report.variant));
    let seconds = (report.finished_at - report.started_at).max(0) as f64 / 1e9;
    suite.set_time(Duration::from_secs_f64(seconds));
    suite.add_property(Property::new("run_id", report.run_id.as_str()));
    suite.add_property(Property::new("seed", report.seed.to_string()));
    if let Some(incident) = &report.incident {
        suite.add_property(Property::new("incident", incident.as_str()));
    }
    suite.add_property(Property::new(
        "report",
        report.dir().join("report.html").display().to_string(),
    ));
    let classname = format!(
        "aftershock.{}.{}",
        report.incident.as_deref().unwrap_or(&report.scenario),
        report.variant
    );
    let mut cases: Vec<TestCase> = report
        .outcomes
        .iter()
        .map(|o| {
            let numbers = format!("measured: {}; budget: {}", o.measured, o.budget);
            let status = match &o.verdict {
                Verdict::Pass => TestCaseStatus::success(),
                Verdict::Fail { reason } => {
                    non_success(NonSuccessKind::Failure, "fail", &numbers, reason)
                }
                Verdict::Unknown { reason } => {
                    non_success(NonSuccessKind::Error, "unknown", &numbers, reason)
                }
            };
            let mut case = TestCase::new(o.title.as_str(), status);
            case.set_classname(classname.as_str());
            case.set_system_out(numbers);
            case
        })
        .collect();
    if cases.is_empty() {
        if let Some(error) = &report.error {
            let mut case = TestCase::new(
                "the run completes",
                non_success(NonSuccessKind::Error, "unknown", "harness error", error),
            );
            case.set_classname(classname.as_str());
            cases.push(case);
        }
    }
    suite.add_test_cases(cases);
    suite
}

fn non_success(kind: NonSuccessKind, ty: &str, numbers: &str, reason: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status.set_type(ty);
    status.set_message(format!("{numbers} — {reason}"));
    status.set_description(reason);
    status
}
