//! The timeline chart of a run: one self-contained SVG (no fonts, scripts or files from
//! elsewhere), drawn by hand from a [`Report`].
//!
//! Generic on purpose: every probe gets a panel (its latency as a line, on a log scale, and its
//! successes and failures as a green/red band underneath); every measurement recorded more than
//! once becomes a line, grouped into panels by name prefix and unit. A new probe kind or a new
//! per-second measurement therefore shows up without a change here. Across all panels: fault
//! windows shaded and labelled, container events (`die`, `oom`, `start`, …) as markers, and every
//! time budget with a deadline as a dashed line (`B1`, `B2`, … as in the report's table), and
//! every unplanned event (the engine restarting, a container killed from outside, the harness
//! falling behind) as a hatched grey band: the verdicts it overlaps are unknown.
//!
//! The x axis is seconds from the start of the observation (the faults' `at` counts from there),
//! so bring-up events appear at negative times. Classes (`series`, `fault-window`,
//! `fault-label`, `event-marker`, `budget-line`, `unplanned`) let tests and browsers find what was drawn.

use super::Report;
use crate::check::Verdict;
use crate::timeline::{Cause, EventKind, Nanos};
use std::fmt::Write as _;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
/// Room above the panels: fault labels, budget labels (two rows), the container-event strip.
const TOP: f64 = 80.0;
const PANEL_H: f64 = 120.0;
const BAND_H: f64 = 10.0;
/// Vertical room between panels (title above, band below).
const GAP: f64 = 48.0;
const AXIS_H: f64 = 36.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
];
/// Container actions drawn as markers; the engine's other events (exec, attach, …) are noise.
const MARKED_ACTIONS: [&str; 8] = [
    "die", "oom", "start", "kill", "stop", "restart", "pause", "unpause",
];

/// A probe sample on the chart: `(seconds, latency in ms, ok)`.
type ProbeSample = (f64, f64, bool);
/// A measurement's values: `(name, unit, points)`.
type Series = (String, String, Vec<(f64, f64)>);

/// One line: `(seconds from the observation's start, value)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// How a panel's y axis maps values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// From 0 (or the smallest value, when negative) to a rounded maximum.
    Linear,
    /// Decades; used for latencies, where timeouts sit next to sub-millisecond answers.
    Log,
}

/// Lines sharing a y axis, and (for probes) an ok/failed band: `(from, to, ok)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub unit: String,
    pub scale: Scale,
    pub lines: Vec<Line>,
    pub band: Vec<(f64, f64, bool)>,
}

/// A fault in effect from `from` to `to` (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub fault: String,
    pub targets: Vec<String>,
    pub from: f64,
    pub to: f64,
    /// False when no heal was recorded (the window runs to the end of the chart).
    pub healed: bool,
}

/// A container event.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub at: f64,
    pub container: String,
    pub action: String,
}

/// Something no fault did (the engine restarting, a container killed from outside, the
/// harness falling behind), from `from` to `to` seconds: the verdicts it overlaps are unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct Unplanned {
    pub from: f64,
    pub to: f64,
    pub cause: Cause,
    pub subject: String,
    pub detail: String,
}

/// A budget's deadline: `B{index}` in the report's table.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetLine {
    pub index: usize,
    pub at: f64,
    pub title: String,
    pub held: bool,
}

/// What the chart shows, extracted from a report (pure; tested without rendering).
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    /// The x range in seconds from the observation's start.
    pub from: f64,
    pub to: f64,
    pub panels: Vec<Panel>,
    pub windows: Vec<Window>,
    pub markers: Vec<Marker>,
    pub budgets: Vec<BudgetLine>,
    pub unplanned: Vec<Unplanned>,
}

impl ChartData {
    pub fn from_report(report: &Report) -> Self {
        let origin = origin(report);
        let secs = |at: Nanos| (at - origin) as f64 / 1e9;
        let mut drawn = Drawn::default();
        for e in &report.timeline {
            drawn.add(secs(e.at), &e.kind);
        }
        let Drawn {
            probes,
            measured,
            mut windows,
            markers,
            unplanned,
        } = drawn;
        let mut panels: Vec<Panel> = probes
            .into_iter()
            .map(|(probe, samples)| probe_panel(probe, samples))
            .collect();
        panels.extend(measurement_panels(measured));
        let budgets = budget_lines(report, secs);
        let (from, to) = x_range(&panels, &windows, &markers, &budgets, &unplanned);
        for w in windows.iter_mut().filter(|w| !w.healed) {
            w.to = to;
        }
        ChartData {
            from,
            to,
            panels,
            windows,
            markers,
            budgets,
            unplanned,
        }
    }

    /// Nothing plotted: no line with two points, no fault window.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
            && !self
                .panels
                .iter()
                .any(|p| p.lines.iter().any(|l| l.points.len() > 1))
    }
}

/// The engine's action without its details: `die (exit 137)` → `die`.
fn verb(action: &str) -> &str {
    action.split_whitespace().next().unwrap_or("")
}

/// What the timeline's events draw, in the order they came: probe samples, measurement series,
/// fault windows (open until healed), container markers.
#[derive(Default)]
struct Drawn {
    probes: Vec<(String, Vec<ProbeSample>)>,
    measured: Vec<Series>,
    windows: Vec<Window>,
    markers: Vec<Marker>,
    unplanned: Vec<Unplanned>,
}

impl Drawn {
    /// Takes one event at `at` seconds; events that are not drawn are ignored.
    fn add(&mut self, at: f64, kind: &EventKind) {
        match kind {
            EventKind::Sample {
                probe, ok, latency, ..
            } => {
                let sample = (at, *latency as f64 / 1e6, *ok);
                match self.probes.iter_mut().find(|(p, _)| p == probe) {
                    Some((_, samples)) => samples.push(sample),
                    None => self.probes.push((probe.clone(), vec![sample])),
                }
            }
            EventKind::Measurement {
                name, value, unit, ..
            } => add_point(&mut self.measured, name, unit, at, *value),
            // An open-loop load probe's 1-second windows: its percentiles, hit ratio and
            // errors become series like any repeated measurement.
            EventKind::Window {
                probe,
                ok,
                hits,
                p50,
                p99,
                server_errors,
                other_errors,
                ..
            } => {
                let ratio = if *ok == 0 {
                    0.0
                } else {
                    *hits as f64 * 100.0 / *ok as f64
                };
                let errors = (server_errors + other_errors) as f64;
                let series = [
                    (format!("{probe}/p50"), "ms", *p50 as f64 / 1e6),
                    (format!("{probe}/p99"), "ms", *p99 as f64 / 1e6),
                    (format!("{probe} cache/hit ratio"), "%", ratio),
                    (format!("{probe} failures/errors"), "per s", errors),
                ];
                for (name, unit, value) in series {
                    add_point(&mut self.measured, &name, unit, at, value);
                }
            }
            EventKind::FaultApplied { fault, targets, .. } => self.windows.push(Window {
                fault: fault.clone(),
                targets: targets.clone(),
                from: at,
                to: at,
                healed: false,
            }),
            EventKind::FaultHealed { fault, .. } => {
                let mut latest_first = self.windows.iter_mut().rev();
                if let Some(w) = latest_first.find(|w| w.fault == *fault && !w.healed) {
                    w.to = at;
                    w.healed = true;
                }
            }
            EventKind::Container { container, action }
                if MARKED_ACTIONS.contains(&verb(action)) =>
            {
                self.markers.push(Marker {
                    at,
                    container: container.clone(),
                    action: action.clone(),
                })
            }
            EventKind::Unplanned {
                cause,
                subject,
                lasted,
                detail,
            } => self.unplanned.push(Unplanned {
                from: at,
                to: at + *lasted as f64 / 1e9,
                cause: *cause,
                subject: subject.clone(),
                detail: detail.clone(),
            }),
            _ => {}
        }
    }
}

/// The deadline of every outcome that has one, numbered as in the report's table.
fn budget_lines(report: &Report, secs: impl Fn(Nanos) -> f64) -> Vec<BudgetLine> {
    report
        .outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            Some(BudgetLine {
                index: i + 1,
                at: secs(o.deadline?),
                title: format!("{} ({})", o.title, o.budget),
                held: o.verdict == Verdict::Pass,
            })
        })
        .collect()
}

/// The x range that holds everything drawn, at least a second wide (`0..1` when nothing is).
fn x_range(
    panels: &[Panel],
    windows: &[Window],
    markers: &[Marker],
    budgets: &[BudgetLine],
    unplanned: &[Unplanned],
) -> (f64, f64) {
    let xs = panels
        .iter()
        .flat_map(|p| p.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)))
        .chain(windows.iter().flat_map(|w| [w.from, w.to]))
        .chain(markers.iter().map(|m| m.at))
        .chain(budgets.iter().map(|b| b.at))
        .chain(unplanned.iter().flat_map(|u| [u.from, u.to]));
    let (mut from, mut to) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    if from > to {
        (from, to) = (0.0, 1.0);
    }
    if to - from < 1.0 {
        to = from + 1.0;
    }
    (from, to)
}

/// Time zero: the start of the observation (the "observation starts" note), else the first
/// sample, else the start of the run.
pub fn origin(report: &Report) -> Nanos {
    let note = report.timeline.iter().find_map(|e| match &e.kind {
        EventKind::Note { text } if text == "observation starts" => Some(e.at),
        _ => None,
    });
    let first_sample = report.timeline.iter().find_map(|e| match e.kind {
        EventKind::Sample { .. } => Some(e.at),
        _ => None,
    });
    note.or(first_sample).unwrap_or(report.started_at)
}

fn probe_panel(probe: String, samples: Vec<ProbeSample>) -> Panel {
    // Each sample's status holds until the next sample; the last one for a typical interval.
    let step = match samples.as_slice() {
        [.., (a, _, _), (b, _, _)] => b - a,
        _ => 0.1,
    };
    let mut band: Vec<(f64, f64, bool)> = vec![];
    for (i, (at, _, ok)) in samples.iter().enumerate() {
        let end = samples.get(i + 1).map_or(at + step, |s| s.0);
        match band.last_mut() {
            Some(last) if last.2 == *ok => last.1 = end,
            _ => band.push((*at, end, *ok)),
        }
    }
    let failed = samples.iter().filter(|s| !s.2).count();
    Panel {
        title: format!(
            "probe `{probe}`: latency, and ok/failed below ({failed} of {} failed)",
            samples.len()
        ),
        unit: "ms".into(),
        scale: Scale::Log,
        lines: vec![Line {
            name: format!("{probe} latency"),
            points: samples.iter().map(|(at, ms, _)| (*at, *ms)).collect(),
        }],
        band,
    }
}

/// Measurements with more than one value, one panel per `(name prefix, unit)`.
/// Appends a point to the series `name`, starting it when new.
fn add_point(measured: &mut Vec<Series>, name: &str, unit: &str, at: f64, value: f64) {
    match measured.iter_mut().find(|(n, _, _)| n == name) {
        Some((_, _, points)) => points.push((at, value)),
        None => measured.push((name.to_string(), unit.to_string(), vec![(at, value)])),
    }
}

fn measurement_panels(measured: Vec<Series>) -> Vec<Panel> {
    let mut panels: Vec<Panel> = vec![];
    for (name, unit, points) in measured.into_iter().filter(|m| m.2.len() > 1) {
        let group = name.rsplit_once('/').map_or(name.as_str(), |(g, _)| g);
        let title = format!("measured `{group}` ({unit})");
        let line = Line { name, points };
        match panels.iter_mut().find(|p| p.title == title) {
            Some(p) => p.lines.push(line),
            None => panels.push(Panel {
                title,
                unit,
                scale: Scale::Linear,
                lines: vec![line],
                band: vec![],
            }),
        }
    }
    panels
}

/// The chart of a report as an SVG element.
pub fn svg(report: &Report) -> String {
    render(&ChartData::from_report(report))
}

/// Escapes text for XML content and attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round tick step so that the range has at most about ten ticks.
fn tick_step(range: f64) -> f64 {
    [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|s| range / s <= 10.0)
    .unwrap_or(7200.0)
}

/// The smallest of 1, 2, 5 × 10^n at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let decade = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|c| *c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * decade)
}

/// Maps values of one panel to y pixels, with the tick values to label.
struct YAxis {
    scale: Scale,
    lo: f64,
    hi: f64,
    top: f64,
}

impl YAxis {
    fn new(panel: &Panel, top: f64) -> Self {
        let values = || {
            panel
                .lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
        };
        let (lo, hi) = match panel.scale {
            Scale::Log => {
                let positive = || values().filter(|v| *v > 0.0);
                let min = positive().fold(f64::MAX, f64::min);
                let max = positive().fold(f64::MIN, f64::max);
                if min > max {
                    (-1.0, 3.0)
                } else {
                    let lo = min.log10().floor();
                    (lo, max.log10().ceil().max(lo + 1.0))
                }
            }
            Scale::Linear => {
                let min = values().fold(0.0, f64::min);
                let max = values().fold(0.0, f64::max);
                let lo = if min < 0.0 { -nice_ceiling(-min) } else { 0.0 };
                (lo, nice_ceiling(max))
            }
        };
        YAxis {
            scale: panel.scale,
            lo,
            hi,
            top,
        }
    }

    fn y(&self, v: f64) -> f64 {
        let v = match self.scale {
            Scale::Log => v.max(10f64.powf(self.lo)).log10(),
            Scale::Linear => v,
        };
        self.top + PANEL_H * (1.0 - (v - self.lo) / (self.hi - self.lo))
    }

    fn ticks(&self) -> Vec<(f64, String)> {
        match self.scale {
            Scale::Log => (self.lo as i32..=self.hi as i32)
                .map(|e| {
                    let v = 10f64.powi(e);
                    (v, format_value(v))
                })
                .collect(),
            Scale::Linear => [self.lo, (self.lo + self.hi) / 2.0, self.hi]
                .into_iter()
                .map(|v| (v, format_value(v)))
                .collect(),
        }
    }
}

fn format_value(v: f64) -> String {
    if v != 0.0 && v.abs() < 1.0 {
        format!("{v}")
    } else {
        format!("{v:.0}")
    }
}

/// Renders chart data as SVG.
pub fn render(data: &ChartData) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |s: f64| LEFT + plot_w * (s - data.from) / (data.to - data.from);
    let panels_h = data.panels.len().max(1) as f64 * (PANEL_H + GAP);
    let bottom = TOP + panels_h;
    let height = bottom + AXIS_H;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline-chart" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        w,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
    );
    // Fault windows first, so everything else is drawn over them.
    fault_windows(w, data, &x, bottom);
    unplanned_bands(w, data, &x, bottom);
    x_axis(w, data, &x, bottom);
    for (i, panel) in data.panels.iter().enumerate() {
        draw_panel(w, panel, TOP + i as f64 * (PANEL_H + GAP) + 22.0, &x);
    }
    if data.is_empty() {
        let _ = writeln!(
            w,
            r##"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle" fill="#999">nothing was recorded: no probe samples, no faults</text>"##,
            WIDTH / 2.0,
            TOP + 60.0
        );
    }
    markers(w, data, &x, bottom);
    for (i, b) in data.budgets.iter().enumerate() {
        let bx = x(b.at);
        // Deadlines often coincide (two recoveries after the same heal): labels on two rows.
        let stagger = data.budgets[..i]
            .iter()
            .filter(|o| (x(o.at) - bx).abs() < 32.0)
            .count() as f64;
        let colour = if b.held { "#2ca02c" } else { "#d62728" };
        let _ = writeln!(
            w,
            r##"<g class="budget-line"><line x1="{bx:.1}" y1="{:.1}" x2="{bx:.1}" y2="{bottom:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="{colour}" font-weight="bold">B{}</text><title>budget B{}: {} at +{:.2}s</title></g>"##,
            24.0,
            bx + 3.0,
            33.0 + 12.0 * (stagger % 2.0),
            b.index,
            b.index,
            esc(&b.title),
            b.at
        );
    }
    out.push_str("</svg>\n");
    out
}

fn x_axis(w: &mut String, data: &ChartData, x: &impl Fn(f64) -> f64, bottom: f64) {
    let step = tick_step(data.to - data.from);
    let first = (data.from / step).ceil() as i64;
    let last = (data.to / step).floor() as i64;
    for i in first..=last {
        let s = i as f64 * step;
        let tx = x(s);
        let _ = writeln!(
            w,
            r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{bottom:.1}" stroke="#e4e4e4"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}{s}s</text>"##,
            bottom + 16.0,
            if s > 0.0 { "+" } else { "" },
        );
    }
    let _ = writeln!(
        w,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">seconds from the start of the observation</text>"##,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        bottom + 32.0
    );
}

fn draw_panel(w: &mut String, panel: &Panel, top: f64, x: &impl Fn(f64) -> f64) {
    let axis = YAxis::new(panel, top);
    let right = WIDTH - RIGHT;
    let _ = writeln!(
        w,
        r##"<text x="{LEFT}" y="{:.1}" font-weight="bold" fill="#222">{}</text>"##,
        top - 6.0,
        esc(&panel.title)
    );
    let _ = writeln!(
        w,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{PANEL_H}" fill="none" stroke="#888"/>"##,
        right - LEFT
    );
    for (v, label) in axis.ticks() {
        let ty = axis.y(v);
        let _ = writeln!(
            w,
            r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{right:.1}" y2="{ty:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{label} {}</text>"##,
            LEFT - 4.0,
            ty + 4.0,
            esc(&panel.unit)
        );
    }
    for (i, line) in panel.lines.iter().enumerate() {
        let points: Vec<String> = line
            .points
            .iter()
            .map(|(s, v)| format!("{:.1},{:.1}", x(*s), axis.y(*v)))
            .collect();
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            w,
            r#"<polyline class="series" data-name="{}" data-points="{}" fill="none" stroke="{colour}" stroke-width="1.3" points="{}"><title>{}</title></polyline>"#,
            esc(&line.name),
            line.points.len(),
            points.join(" "),
            esc(&line.name)
        );
        if panel.lines.len() > 1 {
            let _ = writeln!(
                w,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{colour}">{}</text>"#,
                right - 4.0,
                top + 14.0 + 14.0 * i as f64,
                esc(&line.name)
            );
        }
    }
    let band_y = top + PANEL_H + 3.0;
    for (from, to, ok) in &panel.band {
        let (fill, class) = if *ok {
            ("#2ca02c", "band-ok")
        } else {
            ("#d62728", "band-failed")
        };
        let _ = writeln!(
            w,
            r#"<rect class="{class}" x="{:.1}" y="{band_y:.1}" width="{:.1}" height="{BAND_H}" fill="{fill}"><title>{} +{from:.2}s to +{to:.2}s</title></rect>"#,
            x(*from),
            (x(*to) - x(*from)).max(0.5),
            if *ok { "ok" } else { "failing" }
        );
    }
}

/// Every fault window: an orange band through the panels, labelled with the fault and its
/// targets.
fn fault_windows(w: &mut String, data: &ChartData, x: &impl Fn(f64) -> f64, bottom: f64) {
    for win in &data.windows {
        let (x0, x1) = (x(win.from), x(win.to).max(x(win.from) + 2.0));
        let targets = win.targets.join(", ");
        let _ = writeln!(
            w,
            r##"<rect class="fault-window" data-fault="{f}" x="{x0:.1}" y="{y:.1}" width="{wd:.1}" height="{h:.1}" fill="#ff7f0e" fill-opacity="0.16"><title>fault {f} on {t}: +{a:.2}s to +{b:.2}s{open}</title></rect>"##,
            f = esc(&win.fault),
            t = esc(&targets),
            y = 4.0,
            wd = x1 - x0,
            h = bottom - 4.0,
            a = win.from,
            b = win.to,
            open = if win.healed {
                ""
            } else {
                " (no heal recorded)"
            },
        );
        let _ = writeln!(
            w,
            r##"<text class="fault-label" x="{:.1}" y="18" fill="#b35806" font-weight="bold">fault {} ({})</text>"##,
            x0 + 3.0,
            esc(&win.fault),
            esc(&targets)
        );
    }
}

/// Unplanned events: a grey band (at least 3 px wide) through every panel, hatched so it
/// reads as "not the system", labelled with its cause and subject below the fault labels.
fn unplanned_bands(w: &mut String, data: &ChartData, x: &impl Fn(f64) -> f64, bottom: f64) {
    if !data.unplanned.is_empty() {
        let _ = writeln!(
            w,
            r##"<defs><pattern id="unplanned-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#7f7f7f" fill-opacity="0.12"/><line x1="0" y1="0" x2="0" y2="6" stroke="#555" stroke-width="1.5" stroke-opacity="0.45"/></pattern></defs>"##
        );
    }
    for u in &data.unplanned {
        let (x0, x1) = (x(u.from), x(u.to).max(x(u.from) + 3.0));
        let cause = match u.cause {
            Cause::Engine => "engine",
            Cause::Container => "container",
            Cause::Lag => "harness lag",
        };
        let _ = writeln!(
            w,
            r##"<g class="unplanned" data-cause="{cause}"><rect x="{x0:.1}" y="4" width="{wd:.1}" height="{h:.1}" fill="url(#unplanned-hatch)" stroke="#555" stroke-opacity="0.6"/><text x="{tx:.1}" y="{ty:.1}" fill="#444" font-weight="bold">unplanned: {c} {s}</text><title>{d} at +{a:.2}s (not part of the scenario)</title></g>"##,
            wd = x1 - x0,
            h = bottom - 4.0,
            tx = x0 + 3.0,
            ty = 30.0,
            c = cause,
            s = esc(&u.subject),
            d = esc(&u.detail),
            a = u.from,
        );
    }
}

/// Up to this many events of one action close together are drawn one by one; more (fifty
/// replicas killed at once) are one marker with a count, the names in its tooltip.
const GROUP_ABOVE: usize = 4;

/// Container events: a symbol per event (or per group of many same-action events at about
/// the same instant) in the strip above the panels, a faint line through the panels, and one
/// label per cluster of same-action events close together.
fn markers(w: &mut String, data: &ChartData, x: &impl Fn(f64) -> f64, bottom: f64) {
    let strip = TOP - 22.0;
    let mut label_until = f64::MIN;
    let mut i = 0;
    while i < data.markers.len() {
        let m = &data.markers[i];
        let mx = x(m.at);
        let same: Vec<&Marker> = data.markers[i..]
            .iter()
            .take_while(|n| verb(&n.action) == verb(&m.action) && x(n.at) - mx < 40.0)
            .collect();
        let colour = marker(w, m, mx, strip, bottom, &same);
        if mx > label_until {
            let names: Vec<&str> = same.iter().map(|n| n.container.as_str()).collect();
            let text = match names.as_slice() {
                [first, .., last] if names.len() > GROUP_ABOVE => {
                    format!("{} ×{} ({first} … {last})", verb(&m.action), names.len())
                }
                _ => format!("{} {}", verb(&m.action), names.join(", ")),
            };
            let _ = writeln!(
                w,
                r#"<text x="{:.1}" y="{:.1}" fill="{colour}" font-size="10">{}</text>"#,
                mx + 6.0,
                strip + 14.0,
                esc(&text)
            );
            label_until = mx + 6.5 * text.chars().count() as f64;
        }
        i += if same.len() > GROUP_ABOVE {
            same.len()
        } else {
            1
        };
    }
}

/// One marker: the event `m` alone, or (when `same` has more than [`GROUP_ABOVE`]) the whole
/// group with its count. Returns its colour.
fn marker(
    w: &mut String,
    m: &Marker,
    mx: f64,
    strip: f64,
    bottom: f64,
    same: &[&Marker],
) -> &'static str {
    let (colour, shape) = match verb(&m.action) {
        "die" | "kill" | "stop" => (
            "#d62728",
            format!("M{:.1},{:.1} l-5,-8 h10 z", mx, strip + 4.0),
        ),
        "oom" => (
            "#6a3d9a",
            format!("M{:.1},{:.1} l5,5 l-5,5 l-5,-5 z", mx, strip - 6.0),
        ),
        _ => (
            "#2ca02c",
            format!("M{:.1},{:.1} l-5,8 h10 z", mx, strip - 4.0),
        ),
    };
    let (count, title) = if same.len() > GROUP_ABOVE {
        let last = same.last().map_or(m.at, |n| n.at);
        let names: Vec<&str> = same.iter().map(|n| n.container.as_str()).collect();
        (
            format!(r#" data-count="{}""#, same.len()),
            format!(
                "{} ×{} from +{:.3}s to +{last:.3}s: {}",
                verb(&m.action),
                same.len(),
                m.at,
                names.join(", ")
            ),
        )
    } else {
        (
            String::new(),
            format!("{} {} at +{:.3}s", m.action, m.container, m.at),
        )
    };
    let _ = writeln!(
        w,
        r#"<g class="event-marker" data-action="{v}"{count}><line x1="{mx:.1}" y1="{strip:.1}" x2="{mx:.1}" y2="{bottom:.1}" stroke="{colour}" stroke-opacity="0.35"/><path d="{shape}" fill="{colour}"/><title>{t}</title></g>"#,
        v = esc(verb(&m.action)),
        t = esc(&title),
    );
    colour
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(51.0), 100.0);
        assert_eq!(nice_ceiling(200.0), 200.0);
        assert_eq!(tick_step(46.0), 5.0);
        assert_eq!(tick_step(8.0), 1.0);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(esc(r#"<a & "b">"#), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
