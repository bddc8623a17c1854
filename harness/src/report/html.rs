//! The HTML page of a run: `report.html` next to `report.json`. One self-contained file (inline
//! CSS, the chart as inline SVG, no network access needed to view it) for the people who were
//! not watching the terminal: verdict, expectations against budgets, the timeline chart, faults,
//! measurements.
//!
//! A short inline script at the end of the page counts the chart's lines that the browser
//! actually laid out (non-zero bounding box) into `data-series-drawn` on `<body>`; the browser
//! test reads it back from the rendered DOM.

use super::chart::{self, esc};
use super::Report;
use crate::check::Verdict;
use crate::timeline::EventKind;
use std::fmt::Write as _;

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1240px}\
h1{font-size:20px;margin-bottom:4px}.meta{color:#555;margin-bottom:12px}\
table{border-collapse:collapse;margin:8px 0 18px}td,th{border:1px solid #ccc;padding:4px 8px;\
text-align:left;vertical-align:top;font-size:13px}th{background:#f3f3f3}\
.PASS{color:#1a7f1a;font-weight:bold}.FAIL{color:#c01f1f;font-weight:bold}\
.UNKNOWN{color:#a06000;font-weight:bold}.legend span{margin-right:18px}\
.error{background:#fff3e0;border:1px solid #f0a040;padding:8px}\
.insecure{background:#fde8e8;border:2px solid #c01f1f;color:#c01f1f;font-weight:bold;padding:8px}";

const CHECK_SCRIPT: &str = "<script>(function(){var n=0;\
document.querySelectorAll('svg .series').forEach(function(e){var b=e.getBBox();\
if(b.width>0&&Number(e.getAttribute('data-points'))>1){n++;}});\
document.body.setAttribute('data-series-drawn',String(n));\
document.body.setAttribute('data-fault-windows',\
String(document.querySelectorAll('svg .fault-window').length));})();</script>";

/// The whole page.
pub fn page(report: &Report) -> String {
    let mut out = String::new();
    let w = &mut out;
    let verdict = report.verdict.label();
    let _ = write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{verdict} {} ({}) — aftershock {}</title><style>{STYLE}</style></head><body>\n",
        esc(&report.scenario),
        esc(&report.variant),
        esc(&report.run_id)
    );
    let _ = writeln!(
        w,
        "<h1><span class=\"{verdict}\">{verdict}</span> {} <small>({})</small></h1>",
        esc(&report.scenario),
        esc(&report.variant)
    );
    let _ = writeln!(
        w,
        "<div class=\"meta\">incident <b>{}</b> · run <code>{}</code> · seed <code>{}</code> \
(replay: <code>aftershock run … --seed {}</code>)</div><p>{}</p>",
        esc(report.incident.as_deref().unwrap_or("—")),
        esc(&report.run_id),
        report.seed,
        report.seed,
        esc(&report.summary)
    );
    if let Some(e) = &report.error {
        let _ = writeln!(
            w,
            "<p class=\"error\">Harness error, so every verdict is unknown: {}</p>",
            esc(e)
        );
    }
    for m in &report.insecure_machines {
        let _ = writeln!(w, "<p class=\"insecure\">{}</p>", esc(&m.words()));
    }
    outcomes(w, report);
    if !report.notes.is_empty() {
        let items: String = report
            .notes
            .iter()
            .map(|n| format!("<li>{}</li>", esc(n)))
            .collect();
        let _ = writeln!(w, "<h2>Not acted on</h2><ul class=\"notes\">{items}</ul>");
    }
    let _ = writeln!(
        w,
        "<h2>Timeline</h2><div class=\"legend\"><span><span style=\"background:#ffe3c8;\
padding:0 10px\">&nbsp;</span> fault in effect (shaded)</span><span><b style=\"color:#d62728\">▼</b> die/kill</span>\
<span><b style=\"color:#2ca02c\">▲</b> start</span><span><b style=\"color:#6a3d9a\">◆</b> oom</span>\
<span>- - B<i>n</i>: budget deadline (green held, red broken)</span>\
<span>band under a probe: green ok, red failed</span></div>"
    );
    out.push_str(&chart::svg(report));
    faults(&mut out, report);
    measurements(&mut out, report);
    out.push_str(CHECK_SCRIPT);
    out.push_str("\n</body></html>\n");
    out
}

fn outcomes(w: &mut String, report: &Report) {
    let _ = writeln!(
        w,
        "<h2>Expectations</h2><table><tr><th></th><th>expectation</th><th>budget</th>\
<th>measured</th><th>verdict</th><th>why</th></tr>"
    );
    for (i, o) in report.outcomes.iter().enumerate() {
        let why = match &o.verdict {
            Verdict::Pass => String::new(),
            Verdict::Fail { reason } | Verdict::Unknown { reason } => esc(reason),
        };
        let label = if o.deadline.is_some() {
            format!("B{}", i + 1)
        } else {
            String::new()
        };
        let v = o.verdict.label();
        let _ = writeln!(
            w,
            "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{v}\">{v}</td><td>{why}</td></tr>",
            esc(&o.title),
            esc(&o.budget),
            esc(&o.measured)
        );
    }
    w.push_str("</table>\n");
}

fn faults(w: &mut String, report: &Report) {
    let rows: Vec<String> = report
        .timeline
        .iter()
        .filter_map(|e| {
            let (what, fault, targets, detail) = match &e.kind {
                EventKind::FaultApplied {
                    fault,
                    targets,
                    detail,
                } => ("applied".to_string(), fault, targets.join(", "), detail),
                EventKind::FaultHealed {
                    fault,
                    targets,
                    detail,
                } => ("healed".to_string(), fault, targets.join(", "), detail),
                EventKind::FaultVerified {
                    fault,
                    stage,
                    ok,
                    detail,
                    ..
                } => {
                    let verdict = if *ok { "verified" } else { "NOT verified" };
                    (
                        format!("{}: {verdict}", stage.name()),
                        fault,
                        String::new(),
                        detail,
                    )
                }
                _ => return None,
            };
            Some(format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                offset(report, e.at),
                esc(&what),
                esc(fault),
                esc(&targets),
                esc(detail)
            ))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "<h2>Faults</h2><table><tr><th>at</th><th></th><th>fault</th><th>targets</th>\
<th>detail</th></tr>{}</table>",
        rows.concat()
    );
}

/// One row per measurement name: a single value as is, a series as its count, range and last.
fn measurements(w: &mut String, report: &Report) {
    if report.measurements.is_empty() {
        return;
    }
    w.push_str("<h2>Measurements</h2><table><tr><th>name</th><th>value</th><th>what</th></tr>");
    let mut names: Vec<&str> = report
        .measurements
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let series: Vec<&super::Measured> = report
            .measurements
            .iter()
            .filter(|m| m.name == name)
            .collect();
        let last = series[series.len() - 1];
        let unit = esc(&last.unit);
        let value = match series.as_slice() {
            [one] => format!("{:.3} {unit}", one.value),
            many => {
                let min = many.iter().map(|m| m.value).fold(f64::MAX, f64::min);
                let max = many.iter().map(|m| m.value).fold(f64::MIN, f64::max);
                format!(
                    "{} values, {min:.3} to {max:.3} {unit} (last {:.3}; plotted above)",
                    many.len(),
                    last.value
                )
            }
        };
        let _ = write!(
            w,
            "<tr><td>{}</td><td>{value}</td><td>{}</td></tr>",
            esc(name),
            esc(&last.what)
        );
    }
    w.push_str("</table>\n");
}

/// Seconds from the start of the observation, as on the chart's x axis.
fn offset(report: &Report, at: i64) -> String {
    format!("{:+.2}s", (at - chart::origin(report)) as f64 / 1e9)
}
