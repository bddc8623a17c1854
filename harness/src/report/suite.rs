//! What `aftershock suite` ends with: one table (incident, variant, what the postmortem says,
//! what we observed, key timings against budgets, verdict), and a suite directory
//! `target/aftershock/suite-<id>/` holding `junit.xml` (every run's expectations) and
//! `index.html` (the table, linking each run's page).
//!
//! A suite can be split across CI runners ([`partition`]: a deterministic share of the
//! scenario files) and joined again ([`collect`]: every `report.json` under the shards'
//! directories → the same table, `junit.xml` and `index.html` as one whole run).

use super::chart::esc;
use super::{junit, render_wrapped, Report};
use crate::check::{Outcome, Verdict};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where [`write()`] put the suite's files.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteFiles {
    /// `junit.xml`: every run's expectations as one JUnit file.
    pub junit: PathBuf,
    /// `index.html`: the suite's table, linking each run's page.
    pub index: PathBuf,
}

/// `12.34s`, `5.667 ms` below a tenth of a second, `0s` for none at all (e.g. no outage).
fn seconds(s: f64) -> String {
    if s == 0.0 {
        "0s".into()
    } else if s.abs() < 0.1 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{s:.2}s")
    }
}

/// A timing against its budget (`13.91s vs ≥ 5s`), for outcomes that have both.
pub fn timing(o: &Outcome) -> Option<String> {
    o.budget_seconds?;
    Some(format!("{} vs {}", seconds(o.measured_seconds?), o.budget))
}

/// What was observed: the measured value of every outcome that is not already a timing in the
/// next column, and of every one that broke its expectation (marked).
fn observed(r: &Report) -> String {
    let mut parts: Vec<String> = r
        .outcomes
        .iter()
        .filter(|o| o.verdict != Verdict::Pass || timing(o).is_none())
        .map(|o| {
            let mark = match o.verdict {
                Verdict::Pass => "",
                Verdict::Fail { .. } => "✗ ",
                Verdict::Unknown { .. } => "? ",
            };
            format!("{mark}{}", o.measured)
        })
        .collect();
    if let Some(e) = &r.error {
        parts.insert(0, format!("harness error: {e}"));
    }
    if parts.is_empty() {
        parts.push("every timing within its budget".into());
    }
    parts.join("; ")
}

fn row(r: &Report) -> [String; 6] {
    [
        r.incident.clone().unwrap_or_else(|| r.scenario.clone()),
        r.variant.clone(),
        r.summary.clone(),
        observed(r),
        r.outcomes
            .iter()
            .filter_map(timing)
            .collect::<Vec<_>>()
            .join("; "),
        r.verdict.label().to_string(),
    ]
}

const HEADER: [&str; 6] = [
    "incident",
    "variant",
    "the postmortem says",
    "we observed",
    "key timings vs budget",
    "verdict",
];

/// The suite table, cells wrapped to fit a terminal.
pub fn table(reports: &[Report]) -> String {
    let rows: Vec<[String; 6]> = reports.iter().map(row).collect();
    format!(
        "\n== suite: {} of {} runs pass\n{}",
        reports.iter().filter(|r| r.passed()).count(),
        reports.len(),
        render_wrapped(HEADER, &rows, [24, 12, 36, 40, 28, 7])
    )
}

/// Writes `junit.xml` and `index.html` into `dir`, a sibling of the runs' directories (the
/// index links to `../<run id>/report.html`).
pub fn write(dir: &Path, reports: &[Report]) -> std::io::Result<SuiteFiles> {
    std::fs::create_dir_all(dir)?;
    let files = SuiteFiles {
        junit: dir.join("junit.xml"),
        index: dir.join("index.html"),
    };
    let all: Vec<&Report> = reports.iter().collect();
    let xml = junit::xml("aftershock suite", &all).map_err(std::io::Error::other)?;
    std::fs::write(&files.junit, xml)?;
    std::fs::write(&files.index, index(dir, reports))?;
    Ok(files)
}

/// Share `k` of `n` (1-based) of the scenario files: sorted by name, every `n`-th from the
/// `k`-th. Every file is in exactly one share, and the same files always give the same shares.
pub fn partition(files: &[PathBuf], k: usize, n: usize) -> Vec<PathBuf> {
    let mut sorted = files.to_vec();
    sorted.sort();
    sorted
        .into_iter()
        .enumerate()
        .filter(|(i, _)| n > 0 && i % n + 1 == k)
        .map(|(_, f)| f)
        .collect()
}

/// Every run's `report.json` under `dirs` (searched recursively, e.g. the artifacts of each
/// shard), read back, each once (by run id), in scenario order.
pub fn collect(dirs: &[PathBuf]) -> std::io::Result<Vec<Report>> {
    let mut found = vec![];
    for dir in dirs {
        if !dir.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory of reports",
                dir.display()
            )));
        }
        report_files(dir, &mut found)?;
    }
    let mut reports = vec![];
    for path in found {
        let report = Report::read(&path)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        if !reports.iter().any(|r: &Report| r.run_id == report.run_id) {
            reports.push(report);
        }
    }
    reports.sort_by(|a, b| (&a.scenario, a.started_at).cmp(&(&b.scenario, b.started_at)));
    Ok(reports)
}

fn report_files(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            report_files(&path, found)?;
        } else if path.file_name().is_some_and(|n| n == "report.json") {
            found.push(path);
        }
    }
    Ok(())
}

/// The link from the suite's directory to a run's page, relative (so copying the output root,
/// or the shards and the merged suite together, keeps the links working).
fn link(suite_dir: &Path, r: &Report) -> String {
    let page = r.dir().join("report.html");
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (absolute(suite_dir), absolute(&page));
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = from.components().count() - common;
    let mut rel = PathBuf::new();
    for _ in 0..ups {
        rel.push("..");
    }
    rel.extend(to.components().skip(common));
    rel.display().to_string()
}

fn index(suite_dir: &Path, reports: &[Report]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>aftershock suite</title>\
<style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px;text-align:left}\
.PASS{color:#1a7f1a;font-weight:bold}.FAIL{color:#c01f1f;font-weight:bold}\
.UNKNOWN{color:#a06000;font-weight:bold}</style></head><body><h1>aftershock suite</h1><table><tr>",
    );
    for h in HEADER {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("<th>chart</th></tr>\n");
    for r in reports {
        out.push_str("<tr>");
        let cells = row(r);
        for cell in &cells[..5] {
            let _ = write!(out, "<td>{}</td>", esc(cell));
        }
        let v = &cells[5];
        let _ = writeln!(
            out,
            "<td class=\"{v}\">{v}</td><td><a href=\"{href}\">{id}</a></td></tr>",
            href = esc(&link(suite_dir, r)),
            id = esc(&r.run_id)
        );
    }
    out.push_str("</table></body></html>\n");
    out
}
