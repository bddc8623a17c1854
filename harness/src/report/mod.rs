//! Reports: what a run found, as `report.json` (timeline, verdicts, measured timings), a
//! summary table for people, `report.html` (the timeline chart, [`html`] and [`chart`]) and
//! `junit.xml` for CI ([`junit`]). All written to the run's directory, `<output root>/<run id>/`
//! (see `crate::output`); a report remembers its directory (not in `report.json`: a report read
//! back lives where its file is).

pub mod chart;
pub mod demo;
pub mod html;
pub mod junit;
pub mod redact;
pub mod suite;
#[cfg(test)]
mod tests;

use crate::check::timing::{fault_timings, FaultTiming};
use crate::check::{Outcome, Verdict};
use crate::scenario::Plan;
use crate::timeline::{Event, EventKind, Nanos, Timeline};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A number the run measured, with what it is (from the timeline's measurements).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Measured {
    /// Its name (`exit-skew:kill`, see [`crate::Metric`]).
    pub name: String,
    /// The value, in `unit`s.
    pub value: f64,
    /// `s`, `ms`, `%`, …
    pub unit: String,
    /// What it is, in words.
    pub what: String,
}

/// Everything one run found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The run's id (`20261201T101500-1a2b3c4d`): its directory's name and its labels' value.
    pub run_id: String,
    /// The scenario's name.
    pub scenario: String,
    /// The real outage it replays, when it says so.
    pub incident: Option<String>,
    /// `as-it-was`, `remediated`, …: which architecture of the incident this is.
    pub variant: String,
    /// The scenario's summary.
    pub summary: String,
    /// The seed every random choice of the run came from.
    pub seed: u64,
    /// Unix ns when the run started; timeline offsets in the table are relative to it.
    pub started_at: Nanos,
    /// Unix ns when the run ended (after teardown).
    pub finished_at: Nanos,
    /// A harness error that made the run's verdicts unknown.
    pub error: Option<String>,
    /// The overall verdict: fail if any expectation failed, else unknown if any is unknown.
    pub verdict: Verdict,
    /// One per expectation, in the scenario's order.
    pub outcomes: Vec<Outcome>,
    /// Every number the run measured.
    pub measurements: Vec<Measured>,
    /// Each fault's requested timing beside the achieved one (applied → healed, and each
    /// target's container down time). Empty in reports written before it existed.
    #[serde(default)]
    pub fault_timings: Vec<FaultTiming>,
    /// Everything that happened, in order: faults, probe samples, container events.
    pub timeline: Vec<Event>,
    /// The machines whose engines the run reached over plain HTTP off loopback (the file's
    /// `insecure = true`): whoever could reach them controlled them during the run. Empty in
    /// reports written before it existed.
    #[serde(default)]
    pub insecure_machines: Vec<InsecureMachine>,
    /// What the scenario's Compose file says that the run did not act on, or not wholly, and
    /// why (`compose.yml:12: service `web`: ignored: `tty` (…)`). Empty in reports written
    /// before it existed.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Networks of the run the engine refused to remove although nothing was attached
    /// (Docker 20.10's moby#42119; said on the timeline too): left until the engine restarts.
    #[serde(default)]
    pub kept_networks: usize,
    /// The engine and host the run ran on (its version, the API version negotiated, the
    /// cgroup version). None in reports written before it existed.
    #[serde(default)]
    pub platform: Option<crate::engine::platform::Platform>,
    /// Where the run's files are ([`Report::dir`]); not serialised.
    #[serde(skip)]
    dir: Option<PathBuf>,
}

/// A machine reached without TLS or authentication (`insecure = true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InsecureMachine {
    /// Its name in the scenario.
    pub machine: String,
    /// Its engine's plain `tcp://` URL.
    pub url: String,
}

impl InsecureMachine {
    /// The warning, in words (the table, the HTML, the CLI's header).
    pub fn words(&self) -> String {
        format!(
            "INSECURE: machine `{}` was reached at {} without TLS (insecure = true): whoever could reach that address controlled its engine",
            self.machine, self.url
        )
    }
}

/// Where [`Report::write`] put a run's files.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Written {
    /// `report.json`: the report itself ([`Report::read`] reads it back).
    pub json: PathBuf,
    /// `report.html`: the table and the charts, for people.
    pub html: PathBuf,
    /// `junit.xml`: one test case per expectation, for CI.
    pub junit: PathBuf,
}

impl Written {
    fn in_dir(dir: &Path) -> Self {
        Written {
            json: dir.join("report.json"),
            html: dir.join("report.html"),
            junit: dir.join("junit.xml"),
        }
    }
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
    pub(crate) fn new(
        scenario: &Plan,
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
        let fault_timings = fault_timings(scenario, &Timeline::from_events(timeline.clone()));
        let report = Report {
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
            fault_timings,
            timeline,
            insecure_machines: (scenario.insecure_machines().into_iter())
                .map(|(machine, url)| InsecureMachine { machine, url })
                .collect(),
            notes: scenario.notes.iter().map(|n| n.to_string()).collect(),
            kept_networks: 0,
            platform: None,
            dir: None,
        };
        redact::Secrets::of(scenario).report(report)
    }

    /// Panics, printing the run's table and the reasons, unless every expectation passed
    /// (for a chaos test in `cargo test`: an UNKNOWN verdict fails the test too, saying why).
    #[track_caller]
    pub fn assert_passed(&self) -> &Self {
        if !self.passed() {
            let reasons: Vec<String> = self
                .outcomes
                .iter()
                .filter_map(|o| match &o.verdict {
                    Verdict::Pass => None,
                    Verdict::Fail { reason } | Verdict::Unknown { reason } => {
                        Some(format!("  {} {}: {reason}", o.verdict.label(), o.title))
                    }
                })
                .chain(self.error.iter().map(|e| format!("  harness error: {e}")))
                .collect();
            panic!(
                "{} {}:\n{}\n{}\nreport: {}",
                self.scenario,
                self.verdict.label(),
                reasons.join("\n"),
                self.table(),
                self.files().html.display()
            );
        }
        self
    }

    /// The same report, its files in `dir` (a run's: `<output root>/<run id>`).
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The run's directory: the one given ([`Report::in_dir`]; for a report read back, where its
    /// `report.json` is), else `<default output root>/<run id>`.
    pub fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| crate::output::default_root().join(&self.run_id))
    }

    /// Writes `report.json`, `report.html` and `junit.xml` into the run's directory.
    pub fn write(&self) -> std::io::Result<Written> {
        self.write_to(&self.dir())
    }

    /// Where [`Report::write`] puts (or put) the run's files.
    pub fn files(&self) -> Written {
        Written::in_dir(&self.dir())
    }

    /// Writes the run's three files into `dir` (they name `dir` as the report's place).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<Written> {
        std::fs::create_dir_all(dir)?;
        let written = Written::in_dir(dir);
        let placed;
        let report = if self.dir.as_deref() == Some(dir) {
            self
        } else {
            placed = self.clone().in_dir(dir);
            &placed
        };
        std::fs::write(&written.json, serde_json::to_vec_pretty(report)?)?;
        std::fs::write(&written.html, html::page(report))?;
        let xml = junit::xml(&format!("aftershock {}", report.scenario), &[report])
            .map_err(std::io::Error::other)?;
        std::fs::write(&written.junit, xml)?;
        Ok(written)
    }

    /// Reads a `report.json`; the report's directory is the file's.
    pub fn read(path: &Path) -> std::io::Result<Report> {
        let report: Report = serde_json::from_slice(&std::fs::read(path)?)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok(report.in_dir(dir))
    }

    /// Whether every expectation passed.
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
        if let Some(p) = &self.platform {
            let _ = writeln!(out, "   on {}", p.words());
        }
        for m in &self.insecure_machines {
            let _ = writeln!(out, "   {}", m.words());
        }
        for note in &self.notes {
            let _ = writeln!(out, "   {note}");
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
                let reason = shorten(reason, REASON_IN_TABLE);
                let _ = writeln!(out, "   {} — {}: {reason}", o.verdict.label(), o.title);
            }
        }
        self.faults(&mut out);
        for e in &self.timeline {
            if let EventKind::Containers { machine, states } = &e.kind {
                let _ = writeln!(out, "   {machine} at the end: {}", states.join("; "));
            }
        }
        for m in &self.measurements {
            let _ = writeln!(
                out,
                "   measured {} = {} ({})",
                m.name,
                crate::units::human(m.value, &m.unit),
                m.what
            );
        }
        let dir = self.dir();
        let _ = writeln!(
            out,
            "   verdict: {}   seed: {} (replay with --seed {})",
            self.verdict.label(),
            self.seed,
            self.seed
        );
        for file in ["report.html", "junit.xml", "report.json"] {
            let _ = writeln!(out, "   {:<12} {}", file, dir.join(file).display());
        }
        out
    }
}

impl Report {
    /// The table's lines about the faults: each one's timing (requested beside achieved),
    /// then what the nemesis verified.
    fn faults(&self, out: &mut String) {
        for f in &self.fault_timings {
            let _ = writeln!(out, "   fault {} ({}): {}", f.fault, f.kind, f.words());
        }
        for e in &self.timeline {
            if let EventKind::FaultVerified {
                fault,
                stage,
                ok,
                detail,
                ..
            } = &e.kind
            {
                let verdict = if *ok { "verified" } else { "NOT verified" };
                let _ = writeln!(
                    out,
                    "   fault {fault} {}: {verdict} — {detail}",
                    stage.name()
                );
            }
        }
    }
}

/// The most characters of a verdict's reason the table shows (report.json has it whole).
const REASON_IN_TABLE: usize = 400;

/// `text` cut at `max` characters, saying so.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}… (whole in report.json)", &text[..cut]),
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
    render_wrapped(header, rows, [usize::MAX; N])
}

/// Splits text into lines of at most `width` characters at spaces (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![];
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// A plain-text table whose cells wrap at `max_widths` characters; rows that take more than
/// one line are separated by a blank line.
pub fn render_wrapped<const N: usize>(
    header: [&str; N],
    rows: &[[String; N]],
    max_widths: [usize; N],
) -> String {
    let wrapped: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(max_widths)
                .map(|(cell, w)| wrap(cell, w))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &wrapped {
        for (w, cell) in widths.iter_mut().zip(row) {
            for line in cell {
                *w = (*w).max(line.chars().count());
            }
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
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(rules.iter().map(String::as_str).collect()));
    let multi_line = wrapped.iter().any(|r| r.iter().any(|c| c.len() > 1));
    for (i, row) in wrapped.iter().enumerate() {
        if multi_line && i > 0 {
            out.push('\n');
        }
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        for l in 0..height {
            out.push_str(&line(
                row.iter()
                    .map(|c| c.get(l).map_or("", String::as_str))
                    .collect(),
            ));
        }
    }
    out
}
