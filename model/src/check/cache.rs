//! Checkers of the cache-outage expectations: the OOM kill and its victim, the restart, and
//! the load probe's 1-second windows against their baseline. Pure functions of the timeline.
//!
//! A baseline is only as good as the state it was taken in: with a cold cache the front is
//! already at the database's limit, and nothing the fault does looks worse. A load with
//! `warm_up` runs before the observation until [`steady`] holds (the last three seconds alike
//! in hit ratio, p99 and errors, and failing almost nothing); the harness asks as the windows
//! end, with a deadline.
//!
//! The **baseline** of a load probe is taken from the windows that ended before the fault
//! started, less the first [`SKIP_WINDOWS`] (connections being opened): its p99 is the median
//! of their p99s (one noisy second does not move it), its hit ratio is hits / 2xx over them.
//! "While the target is down" is from its first `die` after the fault to its next `start`.
//!
//! The generator shares the 2-core machine with the system under test (and other builds
//! share it with both): when the machine stalls, the generator itself sends late, by up to
//! the window's `lag`. The upper bounds ("stays within", warm-up's p99) judge a window's p99
//! **net of that lag** — the latency the system added beyond the machine's own stall — and
//! print the raw value beside it. The baseline is the raw median (never lowered by the
//! correction), and "rises" uses the raw peak, so neither is made easier by it: a rise short
//! of its ratio over the raw baseline, but not over the baseline net of the generator's lag
//! (a stalled machine, or an emulated one, inflating "normal"), is **unknown**, not a failure.
//!
//! A stall also delays the system's own processes on the same machine, by about as long. So
//! a window over the "stays within" budget whose raw p99 less twice the generator's lag is
//! within it can be the machine's doing as well as the system's: that window is **unknown**,
//! not a failure (`latency_stays_within`); a failure needs a window the stall cannot explain.

use super::{fail, fmt_dur, secs, unknown, Judged, Verdict};
use crate::timeline::{EventKind, Metric, Nanos, Timeline, Window};
use std::time::Duration;

/// Windows at the start of the observation not used for the baseline.
pub const SKIP_WINDOWS: usize = 2;
/// Fewest windows a baseline needs.
pub const MIN_BASELINE_WINDOWS: usize = 3;
/// Consecutive windows that must be warm for the warm-up to count as over.
pub const WARM_WINDOWS: usize = 3;
const WINDOW: Nanos = 1_000_000_000;
/// A window's p99 less the generator's own send lag in it (at least 1 ns).
pub fn net_p99(w: &Window) -> Nanos {
    (w.p99 - w.lag).max(1)
}

/// What "normal" looked like before the fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub p99: Nanos,
    /// The median of the windows' p99 net of the generator's lag ([`net_p99`]).
    pub net_p99: Nanos,
    pub hit_ratio: f64,
    pub windows: usize,
}

/// Why a load probe has no baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    /// Too few whole windows ended before the fault started.
    #[error("only {found} baseline windows before the fault (need {MIN_BASELINE_WINDOWS}): start the fault later")]
    TooFewWindows {
        /// How many there were.
        found: usize,
    },
}

/// A load's warm-up is over when this many consecutive 1-s windows agree ([`steady`]).
pub const STEADY_WINDOWS: usize = 3;
/// Steady windows' hit ratios are within this of each other (absolute).
pub const STEADY_HIT_SPREAD: f64 = 0.03;
/// Steady windows' p99s are within this factor of each other…
pub const STEADY_P99_SPREAD: f64 = 2.0;
/// …a p99 below this counting as this: on a shared machine, scheduling noise moves small
/// latencies by more than 2× from one second to the next without any trend.
pub const STEADY_P99_FLOOR: Nanos = 20_000_000;
/// A steady window fails at most this fraction of its requests (a saturated target fails
/// many, steadily: that is not the normal a baseline stands for).
pub const STEADY_MAX_ERRORS: f64 = 0.01;

/// What the last [`STEADY_WINDOWS`] windows of a warm-up looked like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steady {
    /// Their hit ratios, lowest and highest.
    pub hits: (f64, f64),
    /// Their p99s, lowest and highest.
    pub p99: (Nanos, Nanos),
    /// Their highest error fraction.
    pub errors: f64,
}

impl Steady {
    /// Whether they agree: hit ratios within [`STEADY_HIT_SPREAD`], p99s within
    /// [`STEADY_P99_SPREAD`] (floored at [`STEADY_P99_FLOOR`]), errors at most
    /// [`STEADY_MAX_ERRORS`].
    pub fn holds(&self) -> bool {
        let floor = |p: Nanos| p.max(STEADY_P99_FLOOR) as f64;
        self.hits.1 - self.hits.0 <= STEADY_HIT_SPREAD
            && floor(self.p99.1) <= STEADY_P99_SPREAD * floor(self.p99.0)
            && self.errors <= STEADY_MAX_ERRORS
    }
}

impl std::fmt::Display for Steady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hit ratio {:.0}–{:.0}%, p99 {}–{}, errors ≤ {:.1}% over {STEADY_WINDOWS} s",
            self.hits.0 * 100.0,
            self.hits.1 * 100.0,
            ms(self.p99.0),
            ms(self.p99.1),
            self.errors * 100.0
        )
    }
}

/// The last [`STEADY_WINDOWS`] of `windows` (the warm-up's, in time order), when there are
/// that many: whether the target is steady under the load is [`Steady::holds`].
pub fn steady(windows: &[Window]) -> Option<Steady> {
    let last = windows.get(windows.len().checked_sub(STEADY_WINDOWS)?..)?;
    let hits = last.iter().map(Window::hit_ratio);
    let p99 = last.iter().map(|w| w.p99);
    let errors = last
        .iter()
        .map(|w| w.errors as f64 / w.sent.max(1) as f64)
        .fold(0.0, f64::max);
    Some(Steady {
        hits: (
            hits.clone().fold(f64::INFINITY, f64::min),
            hits.fold(0.0, f64::max),
        ),
        p99: (p99.clone().min()?, p99.max()?),
        errors,
    })
}

/// The baseline of the windows that ended before `fault_at` (less the first [`SKIP_WINDOWS`]).
pub fn baseline(windows: &[Window], fault_at: Nanos) -> Result<Baseline, BaselineError> {
    let before: Vec<&Window> = windows
        .iter()
        .skip(SKIP_WINDOWS)
        .filter(|w| w.at + WINDOW <= fault_at)
        .collect();
    if before.len() < MIN_BASELINE_WINDOWS {
        return Err(BaselineError::TooFewWindows {
            found: before.len(),
        });
    }
    let mut p99s: Vec<Nanos> = before.iter().map(|w| w.p99).collect();
    p99s.sort_unstable();
    let mut nets: Vec<Nanos> = before.iter().map(|w| net_p99(w)).collect();
    nets.sort_unstable();
    let ok: u64 = before.iter().map(|w| w.ok).sum();
    let hits: u64 = before.iter().map(|w| w.hits).sum();
    Ok(Baseline {
        p99: p99s[p99s.len() / 2].max(1),
        net_p99: nets[nets.len() / 2].max(1),
        hit_ratio: if ok == 0 {
            0.0
        } else {
            hits as f64 / ok as f64
        },
        windows: before.len(),
    })
}

fn ms(ns: Nanos) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1e3)
    } else {
        format!("{ms:.1}ms")
    }
}

/// The fault's start, its first target, and that target's `die` and next `start` after it.
struct Outage {
    applied: Nanos,
    target: String,
    died: Option<Nanos>,
    started: Option<Nanos>,
}

fn outage(t: &Timeline, fault: &str) -> Result<Outage, Judged> {
    let Some(applied) = t.fault_window(fault).0 else {
        return Err(unknown(format!("fault `{fault}` was never applied")));
    };
    let Some(target) = t.fault_targets(fault).into_iter().next() else {
        return Err(unknown(format!("fault `{fault}` hit no target")));
    };
    let died = t.container_event(&target, "die", applied);
    let started = died.and_then(|d| t.container_event(&target, "start", d));
    Ok(Outage {
        applied,
        target,
        died,
        started,
    })
}

/// The load windows and baseline an expectation needs.
/// The fault's outage and the load probe's windows with their pre-fault baseline.
fn outage_and_load(
    t: &Timeline,
    probe: &str,
    fault: &str,
) -> Result<(Outage, Vec<Window>, Baseline), Judged> {
    let o = outage(t, fault)?;
    let (windows, base) = load(t, probe, o.applied)?;
    Ok((o, windows, base))
}

fn load(t: &Timeline, probe: &str, applied: Nanos) -> Result<(Vec<Window>, Baseline), Judged> {
    let windows = t.windows(probe);
    if windows.is_empty() {
        return Err(unknown(format!("load probe `{probe}` recorded no windows")));
    }
    let base = baseline(&windows, applied).map_err(|e| unknown(e.to_string()))?;
    Ok((windows, base))
}

/// Where the OOM kill's time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The engine's `oom` event for the target.
    Event,
    /// The target's cgroup `oom_kill` counter rising (the harness polls it every 5 ms): the
    /// kernel's own word, for an engine that sends no `oom` event (Podman's compat stream).
    Counter,
    /// Only a recorded kill ([`EventKind::OomKill`]), stamped when its evidence was read: an
    /// upper bound of the kill's time.
    Recorded,
}

impl Seen {
    fn words(self) -> &'static str {
        match self {
            Seen::Event => "oom event",
            Seen::Counter => "cgroup oom_kill counter rose (no oom event from the engine)",
            Seen::Recorded => "OOM kill recorded (no oom event, no counter rise seen)",
        }
    }
}

/// The OOM kill's time after the fault started: the engine's `oom` event; from an engine
/// that sends none, the counter's rise; else the first recorded kill.
fn kill_seen(t: &Timeline, o: &Outage, fault: &str) -> Option<(Nanos, Seen)> {
    if let Some(at) = t.container_event(&o.target, "oom", o.applied) {
        return Some((at, Seen::Event));
    }
    let counter = Metric::OomKills.of(fault, None);
    let first = |seen: Seen| {
        t.events().into_iter().find_map(|e| {
            let this = match e.kind {
                EventKind::Measurement { name, .. } => name == counter && seen == Seen::Counter,
                EventKind::OomKill { container, .. } => {
                    container == o.target && seen == Seen::Recorded
                }
                _ => false,
            };
            (this && e.at >= o.applied).then_some((e.at, seen))
        })
    };
    first(Seen::Counter).or_else(|| first(Seen::Recorded))
}

/// The recorded victim of the OOM kill: process, pid and how that is known.
fn oom_victim(t: &Timeline, o: &Outage) -> Option<(String, i64, String)> {
    t.events().into_iter().find_map(|e| match e.kind {
        EventKind::OomKill {
            container,
            process,
            pid,
            evidence,
        } if container == o.target && e.at >= o.applied => Some((process, pid, evidence)),
        _ => None,
    })
}

/// The kernel's OOM kill of `victim` (`*`: any process) within `budget` of the fault's start.
/// Its time is the engine's `oom` event or, from an engine that sends none, the cgroup's
/// `oom_kill` counter rising; its victim is the recorded kill and the evidence it names. A
/// kill without a named victim is unknown, never a failure.
pub fn oom_kill_within(t: &Timeline, fault: &str, budget: Duration, victim: &str) -> Judged {
    let o = match outage(t, fault) {
        Ok(o) => o,
        Err(j) => return j,
    };
    let Some((at, seen)) = kill_seen(t, &o, fault) else {
        return Judged::new(
            "no OOM kill",
            None,
            fail(format!(
                "no OOM kill of {} after `{fault}` started: no `oom` event from the engine, no rise of the cgroup's oom_kill counter, no kill recorded",
                o.target
            )),
        );
    };
    let counter = t
        .measurement(&Metric::OomKills.of(fault, None))
        .map(|n| format!(", cgroup oom_kill = {n}"))
        .unwrap_or_default();
    let d = secs(at - o.applied);
    let seen_words = seen.words();
    let Some((process, pid, evidence)) = oom_victim(t, &o) else {
        return Judged::new(
            format!("{seen_words} {d:.2}s after the leak started; victim unknown{counter}"),
            Some(d),
            Verdict::Unknown {
                reason: format!(
                    "the OOM kill's victim could not be identified (the evidence: {seen_words}{counter}; no kernel log line, no death of a process the engine reports)"
                ),
            },
        );
    };
    let measured = format!(
        "{seen_words} {d:.2}s after the leak started; killed {process} (host pid {pid}; {evidence}){counter}"
    );
    // `*`: any victim (the audit's leak asks only whether and when the kernel acted).
    let verdict = if victim != "*" && process != victim {
        fail(format!(
            "the OOM killer killed `{process}`, expected `{victim}` ({evidence})"
        ))
    } else if d <= budget.as_secs_f64() {
        Verdict::Pass
    } else if seen == Seen::Recorded {
        Verdict::Unknown {
            reason: format!(
                "the kill's time is known only from when its evidence was read ({d:.2}s after the leak started, budget {}): it may have come earlier",
                fmt_dur(budget)
            ),
        }
    } else {
        fail(format!(
            "the OOM kill took {d:.2}s, budget {}",
            fmt_dur(budget)
        ))
    };
    Judged::new(measured, Some(d), verdict)
}

pub fn restarted_within(t: &Timeline, fault: &str, budget: Duration) -> Judged {
    let o = match outage(t, fault) {
        Ok(o) => o,
        Err(j) => return j,
    };
    match (o.died, o.started) {
        (None, _) => Judged::new(
            "never died",
            None,
            fail(format!("{} did not die after `{fault}`", o.target)),
        ),
        (Some(died), None) => {
            // A run that ended before the budget did cannot tell a slow restart from none.
            let watched = secs(t.observation().1 - died);
            let verdict = if watched < budget.as_secs_f64() {
                Verdict::Unknown {
                    reason: format!(
                        "the run ended {watched:.2}s after {} died, before the {} budget: its restart could not be watched long enough",
                        o.target,
                        fmt_dur(budget)
                    ),
                }
            } else {
                fail(format!("{} was not started again", o.target))
            };
            Judged::new("died, never started again", None, verdict)
        }
        (Some(d), Some(s)) => {
            let took = secs(s - d);
            let verdict = if took <= budget.as_secs_f64() {
                Verdict::Pass
            } else {
                fail(format!(
                    "die → start took {took:.2}s, budget {}",
                    fmt_dur(budget)
                ))
            };
            Judged::new(
                format!("{} die → start {took:.2}s", o.target),
                Some(took),
                verdict,
            )
        }
    }
}

pub fn latency_rises(t: &Timeline, probe: &str, fault: &str, ratio: f64) -> Judged {
    let (o, windows, base) = match outage_and_load(t, probe, fault) {
        Ok(x) => x,
        Err(j) => return j,
    };
    let Some(died) = o.died else {
        return Judged::new(
            "target never died",
            None,
            fail(format!(
                "{} did not die: the cache was never gone",
                o.target
            )),
        );
    };
    let until = o.started.unwrap_or(Nanos::MAX);
    let peak = windows
        .iter()
        .filter(|w| w.at + WINDOW > died && w.at < until)
        .map(|w| w.p99)
        .max();
    let Some(peak) = peak else {
        return unknown("no load window while the target was down");
    };
    let r = peak as f64 / base.p99 as f64;
    let measured = format!(
        "peak 1-s p99 {} while {} was down vs baseline {} = {r:.0}×",
        ms(peak),
        o.target,
        ms(base.p99)
    );
    let net = peak as f64 / base.net_p99 as f64;
    let verdict = if r >= ratio {
        Verdict::Pass
    } else if net >= ratio {
        Verdict::Unknown { reason: format!(
            "p99 rose only {r:.1}× over the raw baseline {}, but {:.0}× over the baseline net of the load generator's own send lag ({}): the machine's stall inflated \"normal\", this run cannot tell",
            ms(base.p99),
            net,
            ms(base.net_p99)
        ) }
    } else {
        fail(format!("p99 rose only {r:.1}×, expected at least {ratio}×"))
    };
    Judged::new(measured, Some(r), verdict)
}

pub fn latency_stays_within(t: &Timeline, probe: &str, fault: &str, ratio: f64) -> Judged {
    let Some(applied) = t.fault_window(fault).0 else {
        return unknown(format!("fault `{fault}` was never applied"));
    };
    let (windows, base) = match load(t, probe, applied) {
        Ok(x) => x,
        Err(j) => return j,
    };
    let after: Vec<&Window> = windows.iter().filter(|w| w.at + WINDOW > applied).collect();
    let Some(worst) = after.iter().max_by_key(|w| net_p99(w)) else {
        return unknown("no load window after the fault started");
    };
    let raw_worst = after.iter().map(|w| w.p99).max().unwrap_or_default();
    let r = net_p99(worst) as f64 / base.p99 as f64;
    let measured = format!(
        "worst 1-s p99 {} net of the generator's {} send lag (+{:.0}s after the fault; raw worst {}) vs baseline {} = {r:.2}×",
        ms(net_p99(worst)),
        ms(worst.lag),
        secs(worst.at - applied).max(0.0),
        ms(raw_worst),
        ms(base.p99)
    );
    let allowance = base.p99 as f64 * ratio;
    let over: Vec<&&Window> = after
        .iter()
        .filter(|w| net_p99(w) as f64 > allowance)
        .collect();
    // Over the budget even when the stall is counted twice (generator and system): the system's.
    let unexplained = over.iter().any(|w| (w.p99 - 2 * w.lag) as f64 > allowance);
    let verdict = match over.first() {
        None => Verdict::Pass,
        Some(_) if unexplained => fail(format!("p99 reached {r:.2}× the baseline, budget {ratio}×")),
        Some(w) => Verdict::Unknown {
            reason: format!(
                "p99 over {ratio}× the baseline only in {} window(s), each explained by the machine's own stall (+{:.0}s: raw {}, the generator {} late): this run cannot tell",
                over.len(),
                secs(w.at - applied).max(0.0),
                ms(w.p99),
                ms(w.lag)
            ),
        },
    };
    Judged::new(measured, Some(r), verdict)
}

pub fn warm_up_within(
    t: &Timeline,
    probe: &str,
    fault: &str,
    budget: Duration,
    hit_fraction: f64,
    ratio: f64,
) -> Judged {
    let (o, windows, base) = match outage_and_load(t, probe, fault) {
        Ok(x) => x,
        Err(j) => return j,
    };
    let Some(started) = o.started else {
        return Judged::new(
            "never restarted",
            None,
            fail(format!(
                "{} was not started again after `{fault}`",
                o.target
            )),
        );
    };
    let warm = |w: &Window| {
        w.hit_ratio() >= hit_fraction * base.hit_ratio
            && net_p99(w) <= (ratio * base.p99 as f64) as Nanos
    };
    let after: Vec<&Window> = windows.iter().filter(|w| w.at >= started).collect();
    let first_warm = (0..after.len()).find(|&i| {
        let run = &after[i..(i + WARM_WINDOWS).min(after.len())];
        run.len() == WARM_WINDOWS && run.iter().all(|w| warm(w))
    });
    let criteria = format!(
        "hit ratio ≥ {:.0}% and p99 ≤ {} for {WARM_WINDOWS} s",
        hit_fraction * base.hit_ratio * 100.0,
        ms((ratio * base.p99 as f64) as Nanos)
    );
    match first_warm {
        None => {
            let observed = secs(after.last().map_or(0, |w| w.at + WINDOW) - started).max(0.0);
            // A run that ended before the budget did (a starved host's slipped schedule: the
            // OOM kill late, the restart later) cannot tell a slow warm-up from none.
            let verdict = if observed < budget.as_secs_f64() {
                Verdict::Unknown {
                    reason: format!(
                        "the run ended {observed:.1}s after the restart, before the {} budget: the warm-up could not be watched long enough",
                        fmt_dur(budget)
                    ),
                }
            } else {
                fail(format!(
                    "the cache did not warm up within the run ({criteria})"
                ))
            };
            Judged::new(
                format!("not warm {observed:.1}s after the restart (end of run; {criteria})"),
                None,
                verdict,
            )
        }
        Some(i) => {
            let d = secs(after[i].at - started);
            let verdict = if d <= budget.as_secs_f64() {
                Verdict::Pass
            } else {
                fail(format!("warm-up took {d:.1}s, budget {}", fmt_dur(budget)))
            };
            Judged::new(
                format!("warm {d:.1}s after the restart ({criteria})"),
                Some(d),
                verdict,
            )
        }
    }
}

pub fn no_errors(t: &Timeline, probe: &str) -> Judged {
    let windows = t.windows(probe);
    if windows.is_empty() {
        return unknown(format!("load probe `{probe}` recorded no windows"));
    }
    let sent: u64 = windows.iter().map(|w| w.sent).sum();
    let errors: u64 = windows.iter().map(|w| w.errors).sum();
    let verdict = if errors == 0 {
        Verdict::Pass
    } else {
        let first = windows.iter().find(|w| w.errors > 0).map_or(0, |w| w.at);
        fail(format!(
            "{errors} of {sent} requests failed (first in the window at +{:.0}s)",
            secs(first - windows[0].at)
        ))
    };
    Judged::new(
        format!("{errors} failed of {sent}"),
        Some(errors as f64),
        verdict,
    )
}
