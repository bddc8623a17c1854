//! The bench as text for people: one table per section, with ratios, and the targets
//! each marked met or missed. (Returned as a string: the library prints nothing.)

use super::kill::Method;
use super::{Bench, Stats};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// `a`'s median over `b`'s; NaN when either is missing or `b`'s is zero.
pub fn ratio(a: Option<Stats>, b: Option<Stats>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => a.median / b.median,
        _ => f64::NAN,
    }
}

fn cell(s: Option<Stats>) -> String {
    s.map_or("—".into(), |s| {
        format!("{} / {} / {}", num(s.min), num(s.median), num(s.max))
    })
}

fn num(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// One figure of a kill method.
type Figure = fn(&Method) -> Option<Stats>;

/// One of the targets, as measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Target {
    /// What is measured (`exit spread of 3 at once`).
    pub what: String,
    /// The goal, in words (`≤ 1 ms`).
    pub target: String,
    /// What was measured, in words.
    pub measured: String,
    /// Whether the goal was met.
    pub met: bool,
}

fn target(what: &str, goal: &str, measured: f64, met: bool) -> Target {
    Target {
        what: what.into(),
        target: goal.into(),
        measured: num(measured),
        met: met && measured.is_finite(),
    }
}

impl Bench {
    /// The targets against what was measured (worst repetition where "every").
    pub fn targets(&self) -> Vec<Target> {
        let mut t = vec![];
        for row in &self.kill {
            let worst = row.pidfd.exit_spread_ms.map_or(f64::NAN, |s| s.max);
            let limit = match row.n {
                0..=3 => 1.0,
                4..=10 => 3.0,
                _ => 20.0,
            };
            let what = format!("exit spread, N={} (every repetition, ms)", row.n);
            t.push(target(&what, &format!("≤ {limit}"), worst, worst <= limit));
            if row.n >= 10 {
                let r = ratio(row.api.exit_spread_ms, row.pidfd.exit_spread_ms);
                let what = format!("tighter than the engine API, N={} (×)", row.n);
                t.push(target(&what, "≥ 10", r, r >= 10.0));
            }
        }
        if let Some(row) = self.lifecycle.iter().max_by_key(|r| r.n) {
            let what = format!("bring-up vs raw docker, N={} (×)", row.n);
            t.push(target(&what, "≤ 1.2", row.up_ratio, row.up_ratio <= 1.2));
            let what = format!("teardown vs raw docker, N={} (×)", row.n);
            t.push(target(
                &what,
                "≤ 1.2",
                row.down_ratio,
                row.down_ratio <= 1.2,
            ));
        }
        let worst = |s: Option<Stats>| s.map_or(f64::NAN, |s| s.max);
        let fa = worst(self.fault_apply.p99_ms);
        t.push(target("fault-apply latency p99 (ms)", "≤ 1", fa, fa <= 1.0));
        let pl = worst(self.probe_lag.p99_ms);
        t.push(target("probe lag p99 (ms)", "≤ 5", pl, pl <= 5.0));
        for row in &self.overhead {
            let o = worst(row.overhead_s);
            let what = format!("per-run overhead, {} (s)", row.scenario);
            t.push(target(&what, "≤ 3", o, o <= 3.0));
        }
        t
    }

    /// Every section as a table (min / median / max over the repetitions).
    pub fn table(&self) -> String {
        let mut w = String::new();
        let m = &self.machine;
        let _ = writeln!(
            w,
            "aftershock bench: {} CPUs, kernel {}, Docker {}; load {:.1} at the start, {} other containers running; {} repetitions{} — min / median / max; {:.0} s",
            m.cpus, m.kernel, m.engine, m.load_before, m.other_containers, self.reps,
            if self.quick { " (--quick)" } else { "" }, self.took_s
        );
        self.kill_table(&mut w);
        self.lifecycle_table(&mut w);
        let _ = writeln!(w, "\nHarness timing (ms)             p50                      p99                      max");
        for (name, l) in [
            ("fault apply", &self.fault_apply),
            ("probe lag", &self.probe_lag),
        ] {
            let _ = writeln!(
                w,
                "{:<32}{:<25}{:<25}{}   ({} × {} values)",
                format!("{name} ({})", l.count),
                cell(l.p50_ms),
                cell(l.p99_ms),
                cell(l.max_ms),
                self.reps,
                l.values
            );
        }
        let _ = writeln!(w, "\nPer-run overhead (s)            observation  wall                     overhead                 of it: bring-up, after, rest");
        for o in &self.overhead {
            let medians = [o.bring_up_s, o.after_s, o.rest_s]
                .map(|s| s.map_or("—".into(), |s| num(s.median)));
            let _ = writeln!(
                w,
                "{:<32}{:<13}{:<25}{:<25}{}",
                o.scenario,
                num(o.observation_s),
                cell(o.wall_s),
                cell(o.overhead_s),
                medians.join(", ")
            );
        }
        let _ = writeln!(w, "\nTargets");
        for t in self.targets() {
            let mark = if t.met { "met   " } else { "MISSED" };
            let _ = writeln!(
                w,
                "  {mark} {:<48} {:>7}  (target {})",
                t.what, t.measured, t.target
            );
        }
        w
    }

    fn kill_table(&self, w: &mut String) {
        let _ = writeln!(
            w,
            "\nSIGKILL of N at once (ms)   pidfd (aftershock)       engine API, concurrent   docker kill (CLI)        API ÷ pidfd  CLI ÷ pidfd"
        );
        for row in &self.kill {
            let lines: [(&str, Figure); 3] = [
                ("exits", |m| m.exit_spread_ms),
                ("signals", |m| m.signal_spread_ms),
                ("die events", |m| m.die_spread_ms),
            ];
            for (i, (name, get)) in lines.iter().enumerate() {
                let n = if i == 0 {
                    format!("N={}", row.n)
                } else {
                    String::new()
                };
                let (p, a, c) = (get(&row.pidfd), get(&row.api), get(&row.cli));
                let ratios = if i == 0 {
                    let api = format!("{}×", num(ratio(a, p)));
                    format!("{api:<13}{}×", num(ratio(c, p)))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    w,
                    "{n:<6}{name:<22}{:<25}{:<25}{:<25}{ratios}",
                    cell(p),
                    cell(a),
                    cell(c)
                );
            }
        }
    }

    fn lifecycle_table(&self, w: &mut String) {
        let _ = writeln!(
            w,
            "\nBring-up to ready / teardown (s)  aftershock               docker run -d / rm -f    ratio"
        );
        for r in &self.lifecycle {
            for (name, a, b, ratio) in [
                ("up", r.up_s, r.raw_up_s, r.up_ratio),
                ("down", r.down_s, r.raw_down_s, r.down_ratio),
            ] {
                let _ = writeln!(
                    w,
                    "N={:<4}{name:<28}{:<25}{:<25}{}×",
                    r.n,
                    cell(a),
                    cell(b),
                    num(ratio)
                );
            }
        }
    }
}
