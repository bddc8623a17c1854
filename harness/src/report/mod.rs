//! Reports: what a run found, as `report.json` (timeline, verdicts, measured timings) and as a
//! summary table for people. Written to `target/aftershock/<run id>/`.

use crate::check::{Outcome, Verdict};
use crate::scenario::Scenario;
use crate::timeline::{Event, EventKind, Nanos};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A number the run measured, with what it is (from the timeline's measurements).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub what: String,
}

/// Everything one run found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub run_id: String,
    pub scenario: String,
    pub incident: Option<String>,
    pub variant: String,
    pub summary: String,
    pub seed: u64,
    /// Unix ns when the run started; timeline offsets in the table are relative to it.
    pub started_at: Nanos,
    pub finished_at: Nanos,
    /// A harness error that made the run's verdicts unknown.
    pub error: Option<String>,
    /// The overall verdict: fail if any expectation failed, else unknown if any is unknown.
    pub verdict: Verdict,
    pub outcomes: Vec<Outcome>,
    pub measurements: Vec<Measured>,
    pub timeline: Vec<Event>,
}

/// The facts of a run that are not in the scenario or the timeline.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub seed: u64,
    pub started_at: Nanos,
    pub finished_at: Nanos,
    /// A harness error that made the verdicts unknown.
    pub error: Option<String>,
}

impl Report {
    pub fn new(
        scenario: &Scenario,
        run: RunInfo,
        outcomes: Vec<Outcome>,
        timeline: Vec<Event>,
    ) -> Self {
        let RunInfo {
            run_id,
            seed,
            started_at,
            finished_at,
            error,
        } = run;
        let verdict = overall(&outcomes, error.as_deref());
        let measurements = timeline
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Measurement {
                    name,
                    value,
                    unit,
                    what,
                } => Some(Measured {
                    name: name.clone(),
                    value: *value,
                    unit: unit.clone(),
                    what: what.clone(),
                }),
                _ => None,
            })
            .collect();
        Report {
            run_id,
            scenario: scenario.name.clone(),
            incident: scenario.incident.clone(),
            variant: scenario.variant.clone(),
            summary: scenario.summary.clone(),
            seed,
            started_at,
            finished_at,
            error,
            verdict,
            outcomes,
            measurements,
            timeline,
        }
    }

    /// `target/aftershock/<run id>/`.
    pub fn dir(&self) -> PathBuf {
        crate::engine::images::work_dir().join(&self.run_id)
    }

    /// Writes `report.json` into the run's directory; returns its path.
    pub fn write(&self) -> std::io::Result<PathBuf> {
        let dir = self.dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("report.json");
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)?;
        Ok(path)
    }

    pub fn read(path: &Path) -> std::io::Result<Report> {
        Ok(serde_json::from_slice(&std::fs::read(path)?)?)
    }

    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    /// The summary for people: one row per expectation, then the measurements.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n== {} ({}) — run {} seed {}",
            self.scenario, self.variant, self.run_id, self.seed
        );
        if !self.summary.is_empty() {
            let _ = writeln!(out, "   {}", self.summary);
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "   harness error (verdicts unknown): {e}");
        }
        let rows: Vec<[String; 4]> = self
            .outcomes
            .iter()
            .map(|o| {
                [
                    o.title.clone(),
                    o.budget.clone(),
                    o.measured.clone(),
                    o.verdict.label().to_string(),
                ]
            })
            .collect();
        out.push_str(&render(
            ["expectation", "budget", "measured", "verdict"],
            &rows,
        ));
        for o in &self.outcomes {
            if let Verdict::Fail { reason } | Verdict::Unknown { reason } = &o.verdict {
                let _ = writeln!(out, "   {} — {}: {reason}", o.verdict.label(), o.title);
            }
        }
        for m in &self.measurements {
            let _ = writeln!(
                out,
                "   measured {} = {:.3} {} ({})",
                m.name, m.value, m.unit, m.what
            );
        }
        let _ = writeln!(
            out,
            "   verdict: {}   report: {}",
            self.verdict.label(),
            self.dir().join("report.json").display()
        );
        out
    }
}

fn overall(outcomes: &[Outcome], error: Option<&str>) -> Verdict {
    if let Some(e) = error {
        return Verdict::Unknown { reason: e.into() };
    }
    if let Some(f) = outcomes
        .iter()
        .find(|o| matches!(o.verdict, Verdict::Fail { .. }))
    {
        return f.verdict.clone();
    }
    if let Some(u) = outcomes
        .iter()
        .find(|o| matches!(o.verdict, Verdict::Unknown { .. }))
    {
        return u.verdict.clone();
    }
    Verdict::Pass
}

/// A plain-text table with column widths fitted to the content.
pub fn render<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (cell, w) in cells.iter().zip(&widths) {
            let pad = w - cell.chars().count();
            s.push_str(cell);
            s.push_str(&" ".repeat(pad + 2));
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
