//! Checkers: pure functions of the timeline that judge each expectation. No I/O here.
//!
//! Every check gives a [`Verdict`] with three outcomes: `pass`, `fail` (the system behaved
//! outside its budget) and `unknown` (the timeline cannot tell — missing samples, a fault that
//! never ran, a harness error, or an unplanned event — the engine restarting, a container
//! killed from outside, the harness falling behind — overlapping the expectation's window, see
//! [`unplanned`]). `unknown` is never reported as the system's failure.

mod cache;
#[cfg(test)]
mod tests;
/// Whether a load's warm-up is over (the harness asks while the load runs).
pub use cache::{steady, Steady, STEADY_WINDOWS};
pub mod timing;
pub mod unplanned;

#[cfg(test)]
use cache::baseline;

use crate::scenario::file::ExpectationKind;
use crate::scenario::plan::{Expect, Expectation, Plan};
use crate::timeline::{EventKind, Metric, Nanos, Sample, Stage, Timeline};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// How many successes in a row count as "recovered and staying up".
pub const STABLE_SUCCESSES: usize = 5;

/// The judgement of one expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// The expectation held.
    Pass,
    /// The expectation did not hold.
    Fail {
        /// Why, with the measured values.
        reason: String,
    },
    /// The run cannot tell (an unplanned event in the window, a harness error): neither a
    /// pass nor a failure.
    Unknown {
        /// Why it cannot tell.
        reason: String,
    },
}

impl Verdict {
    /// `PASS`, `FAIL` or `UNKNOWN`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail { .. } => "FAIL",
            Verdict::Unknown { .. } => "UNKNOWN",
        }
    }
}

/// An expectation, its budget, what was measured and the verdict: one row of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The expectation's title (given, or made from its kind and targets).
    pub title: String,
    /// Which kind of expectation it is.
    pub kind: ExpectationKind,
    /// The budget in words (`≤ 20s`, `≥ 2s`, `0 failures`).
    pub budget: String,
    /// What was measured, in words.
    pub measured: String,
    /// The measured value in seconds, when it is a time.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub measured_seconds: Option<f64>,
    /// The budget in seconds (a maximum or a minimum, as `budget` says), when it is a time.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub budget_seconds: Option<f64>,
    /// When the budget runs out on the timeline (Unix ns): the heal plus the budget for a
    /// recovery, the fault's start plus the budget for a completion. Charts draw it as a line.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deadline: Option<Nanos>,
    /// The judgement.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Judges every expectation of the plan against the timeline.
pub fn check_all(plan: &Plan, timeline: &Timeline) -> Vec<Outcome> {
    plan.expectations
        .iter()
        .map(|e| Bound::new(plan, e).check(timeline))
        .collect()
}

fn secs(ns: Nanos) -> f64 {
    ns as f64 / 1e9
}

fn fmt_dur(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

/// A judgement: pure, of the timeline alone (no I/O, no clock). The one extension point of
/// this module: a new kind of expectation is a variant of `plan::Expect` and an arm in each
/// of `title`, `budget_words`, `judged` and `deadline` (the compiler asks for them).
pub trait Check {
    fn check(&self, t: &Timeline) -> Outcome;
}

/// An expectation with the names of the probe and fault it judges (as the timeline knows them).
pub struct Bound<'a> {
    pub expectation: &'a Expectation,
    pub probe: &'a str,
    pub fault: &'a str,
}

impl<'a> Bound<'a> {
    pub fn new(plan: &'a Plan, e: &'a Expectation) -> Self {
        Bound {
            expectation: e,
            probe: e.kind.probe().map_or("", |p| plan.probe(p).name.as_str()),
            fault: e.kind.fault().map_or("", |f| plan.fault(f).name.as_str()),
        }
    }
}

impl Check for Bound<'_> {
    fn check(&self, t: &Timeline) -> Outcome {
        let e = self.expectation;
        let (title, budget, judged) = judge(&e.kind, self.probe, self.fault, t);
        let Judged {
            measured,
            value: measured_seconds,
            verdict,
        } = judged;
        let budget_seconds = e.kind.time_budget().map(|d| d.as_secs_f64());
        let verdict = match unplanned::disturbed(t, unplanned::span(&e.kind, self.fault, t)) {
            Some(reason) if !matches!(verdict, Verdict::Unknown { .. }) => {
                Verdict::Unknown { reason }
            }
            _ => verdict,
        };
        Outcome {
            title: e.title.clone().unwrap_or(title),
            kind: e.kind.file_kind(),
            budget,
            measured,
            measured_seconds,
            budget_seconds,
            deadline: deadline(&e.kind, t, self.fault, budget_seconds),
            verdict,
        }
    }
}

/// Title, budget in words, and the judgement of one expectation.
fn judge(kind: &Expect, probe: &str, fault: &str, t: &Timeline) -> (String, String, Judged) {
    (
        title(kind, probe, fault),
        budget_words(kind, t),
        judged(kind, probe, fault, t),
    )
}

/// What an expectation means, in the report's words.
fn title(kind: &Expect, probe: &str, fault: &str) -> String {
    use Expect::*;
    match kind {
        FailsDuring { .. } => format!("`{probe}` fails while `{fault}` is in effect"),
        RecoversWithin { .. } => format!("`{probe}` back within budget after `{fault}` healed"),
        NeverFails { .. } if fault.is_empty() => format!("`{probe}` never fails"),
        NeverFails { .. } => format!("`{probe}` never fails from `{fault}` on"),
        StaysDown { .. } => {
            format!("`{probe}` stays down after `{fault}` healed (no recovery by itself)")
        }
        OutageWithin { .. } => format!("`{probe}`'s longest outage from `{fault}` on"),
        NoLostWrites { .. } => format!("no acknowledged write of `{probe}` lost"),
        LosesWrites { .. } => format!("acknowledged writes of `{probe}` are lost"),
        OrderedPrefix { .. } => {
            format!("what `{probe}` reads back is in write order, losses one stretch")
        }
        Simultaneous { .. } => format!("`{fault}` kills land at the same instant (exit skew)"),
        CompletesWithin { .. } => format!("`{fault}` completes within budget"),
        EndsFailing { matching, .. } => format!("`{probe}` ends failing with “{matching}”"),
        MeasuredWithin { prefix, .. } => format!("every `{fault}/{prefix}…` within budget"),
        Measurement { name, .. } => format!("`{name}` within bounds"),
        ContainersSurvive { .. } => {
            format!("no container inside a machine dies from `{fault}` on")
        }
        UnitReaches { unit, matching, .. } => {
            format!("unit `{unit}` reaches “{matching}” after `{fault}`")
        }
        FaultVerified { .. } => format!("`{fault}` verified: took effect, then healed"),
        OomKillWithin { victim, .. } => format!("`{fault}` ends in an OOM kill of `{victim}`"),
        RestartedWithin { .. } => {
            format!("the target of `{fault}` is started again (die → start)")
        }
        LatencyRises { .. } => {
            format!("`{probe}` p99 rises while the target of `{fault}` is down")
        }
        LatencyStaysWithin { .. } => {
            format!("`{probe}` p99 stays near its baseline from `{fault}` on")
        }
        WarmUpWithin { .. } => {
            format!("`{probe}` warm again after the target of `{fault}` restarted")
        }
        NoErrors { .. } => format!("no request of `{probe}` fails"),
    }
}

/// The budget in words (`≤ 20s`, `≥ 2s`, `0 failures`).
fn budget_words(kind: &Expect, t: &Timeline) -> String {
    use Expect::*;
    let le = |d: &Duration| format!("≤ {}", fmt_dur(*d));
    match kind {
        FailsDuring { min, .. } => format!("≥ {}", fmt_dur(*min)),
        StaysDown { min, .. } => format!("down ≥ {}", fmt_dur(*min)),
        RecoversWithin { budget, .. }
        | OutageWithin { budget, .. }
        | Simultaneous { budget, .. }
        | CompletesWithin { budget, .. }
        | RestartedWithin { budget, .. }
        | WarmUpWithin { budget, .. } => le(budget),
        OomKillWithin { budget, victim, .. } => format!("{}, victim {victim}", le(budget)),
        MeasuredWithin { budget, .. } => format!("≤ {} each", fmt_dur(*budget)),
        NeverFails { .. } | NoErrors { .. } => "0 failures".into(),
        NoLostWrites { .. } => "0 lost".into(),
        LosesWrites { at_least, .. } => format!("≥ {at_least} lost"),
        OrderedPrefix { .. } => "in order, ≤ 1 lost stretch".into(),
        EndsFailing { .. } => format!("last {STABLE_SUCCESSES} samples"),
        Measurement {
            name,
            at_least,
            at_most,
        } => {
            let unit = measured_unit(t, name);
            let human = |v: f64| crate::units::human(v, &unit);
            let bounds = [
                at_least.map(|v| format!("≥ {}", human(v))),
                at_most.map(|v| format!("≤ {}", human(v))),
            ];
            bounds
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" and ")
        }
        ContainersSurvive { .. } => "0 deaths".into(),
        UnitReaches { .. } => "reached".into(),
        FaultVerified { .. } => "both verified".into(),
        LatencyRises { ratio, .. } => format!("≥ {ratio}× baseline"),
        LatencyStaysWithin { ratio, .. } => format!("≤ {ratio}× baseline"),
    }
}

/// The judgement of the timeline: what was measured and the verdict.
fn judged(kind: &Expect, probe: &str, fault: &str, t: &Timeline) -> Judged {
    use Expect::*;
    match kind {
        FailsDuring { min, .. } => fails_during(t, probe, fault, *min),
        RecoversWithin { budget, .. } => recovers_within(t, probe, fault, *budget),
        NeverFails { .. } => never_fails(t, probe, fault),
        StaysDown { min, .. } => stays_down(t, probe, fault, *min),
        OutageWithin { budget, .. } => outage_within(t, probe, fault, *budget),
        NoLostWrites { .. } => no_lost_writes(t, probe),
        LosesWrites { at_least, .. } => loses_writes(t, probe, *at_least),
        OrderedPrefix { .. } => ordered_prefix(t, probe),
        Simultaneous { budget, .. } => simultaneous(t, fault, *budget),
        CompletesWithin { budget, .. } => completes_within(t, fault, *budget),
        EndsFailing { matching, .. } => ends_failing(t, probe, matching),
        MeasuredWithin { budget, prefix, .. } => measured_within(t, fault, prefix, *budget),
        Measurement {
            name,
            at_least,
            at_most,
        } => measurement_bounds(t, name, *at_least, *at_most),
        ContainersSurvive { .. } => containers_survive(t, fault),
        UnitReaches { unit, matching, .. } => unit_reaches(t, fault, unit, matching),
        FaultVerified { .. } => fault_verified(t, fault),
        OomKillWithin { budget, victim, .. } => cache::oom_kill_within(t, fault, *budget, victim),
        RestartedWithin { budget, .. } => cache::restarted_within(t, fault, *budget),
        LatencyRises { ratio, .. } => cache::latency_rises(t, probe, fault, *ratio),
        LatencyStaysWithin { ratio, .. } => cache::latency_stays_within(t, probe, fault, *ratio),
        WarmUpWithin {
            budget,
            hit_fraction,
            ratio,
            ..
        } => cache::warm_up_within(t, probe, fault, *budget, *hit_fraction, *ratio),
        NoErrors { .. } => cache::no_errors(t, probe),
    }
}

/// The unit the timeline's last measurement `name` was taken in ("" when none was).
fn measured_unit(t: &Timeline, name: &str) -> String {
    let unit = t.events().into_iter().rev().find_map(|e| match e.kind {
        EventKind::Measurement { name: n, unit, .. } if n == name => Some(unit),
        _ => None,
    });
    unit.unwrap_or_default()
}

/// The instant a time budget runs out, for kinds whose budget counts from a fault's start or
/// heal; `None` for the others (counts, skews) and when the fault did not happen.
fn deadline(
    kind: &Expect,
    t: &Timeline,
    fault: &str,
    budget_seconds: Option<f64>,
) -> Option<Nanos> {
    let budget = (budget_seconds? * 1e9) as Nanos;
    let (applied, healed) = t.fault_window(fault);
    use Expect::*;
    let anchor = match kind {
        RecoversWithin { .. } | StaysDown { .. } => healed,
        CompletesWithin { .. } | FailsDuring { .. } => applied,
        NeverFails { .. }
        | OutageWithin { .. }
        | NoLostWrites { .. }
        | LosesWrites { .. }
        | OrderedPrefix { .. }
        | Simultaneous { .. }
        | RestartedWithin { .. }
        | OomKillWithin { .. }
        | LatencyRises { .. }
        | LatencyStaysWithin { .. }
        | WarmUpWithin { .. }
        | NoErrors { .. }
        | EndsFailing { .. }
        | MeasuredWithin { .. }
        | Measurement { .. }
        | ContainersSurvive { .. }
        | UnitReaches { .. }
        | FaultVerified { .. } => None,
    }?;
    Some(anchor + budget)
}

/// What one checker found: the measurement in words, its number, and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judged {
    /// What was measured, in words (the report's "measured" column).
    pub measured: String,
    /// The measured number: seconds when it is a time, else a count (lost writes, failed
    /// samples); `Outcome::measured_seconds`.
    pub value: Option<f64>,
    /// The judgement.
    pub verdict: Verdict,
}

impl Judged {
    fn new(measured: impl Into<String>, value: Option<f64>, verdict: Verdict) -> Self {
        Judged {
            measured: measured.into(),
            value,
            verdict,
        }
    }
}

/// The timeline cannot tell, and why: nothing measured.
fn unknown(reason: impl Into<String>) -> Judged {
    let reason = reason.into();
    Judged::new("—", None, Verdict::Unknown { reason })
}

fn fail(reason: impl Into<String>) -> Verdict {
    Verdict::Fail {
        reason: reason.into(),
    }
}

/// A run of consecutive failed samples: from the first failure to the next success (or the
/// last failure when no success follows).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Outage {
    start: Nanos,
    end: Nanos,
    /// Whether a success ended it (false: still failing at the last sample).
    ended: bool,
}

fn outages(samples: &[Sample]) -> Vec<Outage> {
    let mut out = vec![];
    let mut current: Option<Nanos> = None;
    let mut last_fail = 0;
    for (at, ok, _) in samples {
        match (ok, current) {
            (false, None) => {
                current = Some(*at);
                last_fail = *at;
            }
            (false, Some(_)) => last_fail = *at,
            (true, Some(start)) => {
                out.push(Outage {
                    start,
                    end: *at,
                    ended: true,
                });
                current = None;
            }
            (true, None) => {}
        }
    }
    if let Some(start) = current {
        out.push(Outage {
            start,
            end: last_fail,
            ended: false,
        });
    }
    out
}

/// The samples and fault window an expectation needs, or why they are missing.
fn window(
    t: &Timeline,
    probe: &str,
    fault: &str,
) -> Result<(Vec<Sample>, Nanos, Option<Nanos>), Judged> {
    let samples = t.samples(probe);
    if samples.is_empty() {
        return Err(unknown(format!("probe `{probe}` recorded no samples")));
    }
    let (applied, healed) = t.fault_window(fault);
    let Some(applied) = applied else {
        return Err(unknown(format!("fault `{fault}` was never applied")));
    };
    Ok((samples, applied, healed))
}

fn fails_during(t: &Timeline, probe: &str, fault: &str, min: Duration) -> Judged {
    let (samples, applied, healed) = match window(t, probe, fault) {
        Ok(w) => w,
        Err(j) => return j,
    };
    let healed = healed.unwrap_or(Nanos::MAX);
    let longest = outages(&samples)
        .into_iter()
        .filter(|o| o.start <= healed && o.end >= applied)
        .max_by_key(|o| o.end - o.start);
    match longest {
        None => Judged::new(
            "no failure",
            Some(0.0),
            fail(format!(
                "`{probe}` never failed while `{fault}` was in effect"
            )),
        ),
        Some(o) => {
            let d = secs(o.end - o.start);
            let measured = format!(
                "failing {d:.2}s (from +{:.2}s after the fault{})",
                secs(o.start - applied),
                if o.ended {
                    ""
                } else {
                    ", still failing at the end"
                }
            );
            let verdict = if d >= min.as_secs_f64() {
                Verdict::Pass
            } else {
                fail(format!(
                    "failed only {d:.2}s, expected at least {}",
                    fmt_dur(min)
                ))
            };
            Judged::new(measured, Some(d), verdict)
        }
    }
}

/// The first sample at or after `from` that starts a run of successes that stays up
/// (STABLE_SUCCESSES in a row, or every remaining sample).
fn first_stable_success(samples: &[Sample], from: Nanos) -> Option<Nanos> {
    let after: Vec<_> = samples.iter().filter(|s| s.0 >= from).collect();
    (0..after.len()).find_map(|i| {
        let run = &after[i..(i + STABLE_SUCCESSES).min(after.len())];
        run.iter().all(|s| s.1).then_some(after[i].0)
    })
}

fn recovers_within(t: &Timeline, probe: &str, fault: &str, budget: Duration) -> Judged {
    let (samples, _, healed) = match window(t, probe, fault) {
        Ok(w) => w,
        Err(j) => return j,
    };
    let Some(healed) = healed else {
        return unknown(format!("fault `{fault}` was never healed"));
    };
    match first_stable_success(&samples, healed) {
        None => {
            let observed = samples.last().map_or(0, |s| s.0) - healed;
            // A run that ended before the budget did (a starved host's slipped schedule)
            // cannot tell a slow recovery from none.
            let verdict = if secs(observed) < budget.as_secs_f64() {
                Verdict::Unknown {
                    reason: format!(
                        "the run ended {:.2}s after the heal, before the {} budget: `{probe}` could not be watched long enough",
                        secs(observed),
                        fmt_dur(budget)
                    ),
                }
            } else {
                fail(format!(
                    "`{probe}` did not recover within the run ({:.2}s observed after heal)",
                    secs(observed)
                ))
            };
            // No sample after the heal (a harness error ended the probes first): say so,
            // not a negative time after it.
            let measured = match observed {
                o if o < 0 => format!(
                    "no sample after the heal (the probe ended {:.2}s before it)",
                    secs(-o)
                ),
                o => format!("not back {:.2}s after heal (end of run)", secs(o)),
            };
            Judged::new(measured, None, verdict)
        }
        Some(at) => {
            let d = secs(at - healed).max(0.0);
            let verdict = if d <= budget.as_secs_f64() {
                Verdict::Pass
            } else {
                fail(format!("took {d:.2}s, budget {}", fmt_dur(budget)))
            };
            Judged::new(format!("back {d:.2}s after heal"), Some(d), verdict)
        }
    }
}

/// How many samples of `probe` from `from` on could not be taken (its engine was silent).
fn unobserved(t: &Timeline, probe: &str, from: Nanos) -> usize {
    t.events()
        .iter()
        .filter(|e| e.at >= from)
        .filter(|e| matches!(&e.kind, EventKind::Unobserved { probe: p, .. } if p == probe))
        .count()
}

fn never_fails(t: &Timeline, probe: &str, fault: &str) -> Judged {
    let samples = t.samples(probe);
    if samples.is_empty() {
        return unknown(format!("probe `{probe}` recorded no samples"));
    }
    let from = if fault.is_empty() {
        Nanos::MIN
    } else {
        match t.fault_window(fault).0 {
            Some(a) => a,
            None => return unknown(format!("fault `{fault}` was never applied")),
        }
    };
    let considered: Vec<_> = samples.iter().filter(|s| s.0 >= from).collect();
    let failed: Vec<_> = considered.iter().filter(|s| !s.1).collect();
    let mut measured = format!("{} failed of {}", failed.len(), considered.len());
    let gaps = unobserved(t, probe, from);
    if gaps > 0 {
        measured += &format!(" ({gaps} not observed: its engine did not answer)");
    }
    let verdict = match failed.first() {
        None => Verdict::Pass,
        Some(first) => fail(format!(
            "{} samples failed; first: {}",
            failed.len(),
            first.2.clone().unwrap_or_default()
        )),
    };
    Judged::new(measured, Some(failed.len() as f64), verdict)
}

fn stays_down(t: &Timeline, probe: &str, fault: &str, min: Duration) -> Judged {
    let (samples, _, healed) = match window(t, probe, fault) {
        Ok(w) => w,
        Err(j) => return j,
    };
    let Some(healed) = healed else {
        return unknown(format!("fault `{fault}` was never healed"));
    };
    let until = healed + min.as_nanos() as Nanos;
    if samples.last().map_or(0, |s| s.0) < until {
        return unknown(format!(
            "the probe stopped before {} after the heal",
            fmt_dur(min)
        ));
    }
    match samples.iter().find(|s| s.0 >= healed && s.1) {
        Some(s) if s.0 < until => {
            let d = secs(s.0 - healed);
            Judged::new(
                format!("recovered by itself {d:.2}s after heal"),
                Some(d),
                fail(format!(
                    "`{probe}` recovered {d:.2}s after heal, without a cold start"
                )),
            )
        }
        Some(s) => {
            let d = secs(s.0 - healed);
            Judged::new(format!("down {d:.2}s after heal"), Some(d), Verdict::Pass)
        }
        None => {
            let d = secs(samples.last().map_or(0, |s| s.0) - healed);
            Judged::new(
                format!("still down {d:.2}s after heal (end of observation)"),
                Some(d),
                Verdict::Pass,
            )
        }
    }
}

/// The last read-back of a write probe: (acknowledged, indeterminate, present in read order).
fn read_back(t: &Timeline, probe: &str) -> Option<(Vec<u64>, Vec<u64>, Vec<u64>)> {
    t.events().into_iter().rev().find_map(|e| match e.kind {
        EventKind::ReadBack {
            probe: p,
            acknowledged,
            indeterminate,
            present,
        } if p == probe => Some((acknowledged, indeterminate, present)),
        _ => None,
    })
}

fn no_lost_writes(t: &Timeline, probe: &str) -> Judged {
    let Some((acked, indeterminate, present)) = read_back(t, probe) else {
        return unknown(format!("probe `{probe}` has no final read-back"));
    };
    let present: BTreeSet<u64> = present.into_iter().collect();
    let indeterminate: BTreeSet<u64> = indeterminate.into_iter().collect();
    let acked_set: BTreeSet<u64> = acked.iter().copied().collect();
    let lost: Vec<u64> = acked
        .iter()
        .filter(|w| !present.contains(w))
        .copied()
        .collect();
    let unexpected: Vec<u64> = present
        .iter()
        .filter(|w| !acked_set.contains(w) && !indeterminate.contains(w))
        .copied()
        .collect();
    let recovered = present.iter().filter(|w| indeterminate.contains(w)).count();
    let measured = format!(
        "{} acknowledged, {} lost, {} indeterminate ({} present), {} unexpected",
        acked.len(),
        lost.len(),
        indeterminate.len(),
        recovered,
        unexpected.len()
    );
    let verdict = if acked.is_empty() {
        Verdict::Unknown {
            reason: "no write was acknowledged".into(),
        }
    } else if !lost.is_empty() {
        fail(format!(
            "lost acknowledged writes {:?}",
            &lost[..lost.len().min(10)]
        ))
    } else if !unexpected.is_empty() {
        fail(format!(
            "writes present that were never written {unexpected:?}"
        ))
    } else {
        Verdict::Pass
    };
    Judged::new(measured, Some(lost.len() as f64), verdict)
}

fn simultaneous(t: &Timeline, fault: &str, budget: Duration) -> Judged {
    let Some(skew_ms) = t.measurement(&Metric::ExitSkew.of(fault, None)) else {
        return unknown(format!(
            "no exit skew was measured for `{fault}` (the engine is remote, or the kill failed)"
        ));
    };
    let die = t
        .measurement(&Metric::DieEventSpread.of(fault, None))
        .map(|d| format!(", engine `die` events {d:.1} ms apart"))
        .unwrap_or_default();
    // The spread is the fault's fidelity, not the system's behaviour: kills that did not land
    // together (the harness's signals, the host's scheduling of fifty exits) mean the run did
    // not replay what it says — unknown, never a failure of the system.
    let signals = t
        .measurement(&Metric::SignalSpread.of(fault, None))
        .map(|s| format!(", signals sent within {s:.1} ms"))
        .unwrap_or_default();
    let verdict = if skew_ms <= budget.as_secs_f64() * 1e3 {
        Verdict::Pass
    } else {
        Verdict::Unknown {
            reason: format!(
                "the kills did not land together: exits {skew_ms:.3} ms apart, budget {}{signals} — this host could not replay simultaneous kills in this run",
                fmt_dur(budget)
            ),
        }
    };
    Judged::new(
        format!("processes exited {skew_ms:.3} ms apart{die}"),
        Some(skew_ms / 1e3),
        verdict,
    )
}

fn completes_within(t: &Timeline, fault: &str, budget: Duration) -> Judged {
    match t.fault_window(fault) {
        (Some(a), Some(h)) => {
            let d = secs(h - a);
            let verdict = if d <= budget.as_secs_f64() {
                Verdict::Pass
            } else {
                fail(format!("took {d:.2}s, budget {}", fmt_dur(budget)))
            };
            Judged::new(format!("{d:.2}s"), Some(d), verdict)
        }
        _ => unknown(format!("fault `{fault}` did not both start and finish")),
    }
}

/// The mirror of `no_lost_writes`: passes when at least `at_least` acknowledged writes are gone.
fn loses_writes(t: &Timeline, probe: &str, at_least: f64) -> Judged {
    let Judged {
        measured,
        value: lost,
        verdict,
    } = no_lost_writes(t, probe);
    let verdict = match (verdict, lost) {
        (Verdict::Unknown { reason }, _) => Verdict::Unknown { reason },
        (_, Some(n)) if n >= at_least => Verdict::Pass,
        _ => fail(format!(
            "expected at least {at_least} acknowledged writes lost; {measured}"
        )),
    };
    Judged::new(measured, lost, verdict)
}

/// The read-back is in write order (strictly increasing), and whatever acknowledged writes
/// are missing form one contiguous stretch (the tail lost at a crash) — never scattered holes.
/// Writes after the crash may follow the stretch; indeterminate writes may be absent anywhere.
fn ordered_prefix(t: &Timeline, probe: &str) -> Judged {
    let Some((mut acked, _, present)) = read_back(t, probe) else {
        return unknown(format!("probe `{probe}` has no final read-back"));
    };
    if let Some(w) = present.windows(2).find(|w| w[0] >= w[1]) {
        return Judged::new(
            format!("{} records, out of order", present.len()),
            None,
            fail(format!(
                "record {} follows {}: not in write order",
                w[1], w[0]
            )),
        );
    }
    acked.sort_unstable();
    let set: BTreeSet<u64> = present.iter().copied().collect();
    let last = present.last().copied();
    let holes: Vec<u64> = acked
        .iter()
        .filter(|a| Some(**a) < last && !set.contains(a))
        .copied()
        .collect();
    let stretches = acked
        .iter()
        .filter(|a| Some(**a) < last)
        .map(|a| set.contains(a))
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] && !w[1])
        .count()
        + usize::from(
            acked
                .first()
                .is_some_and(|a| !set.contains(a) && Some(*a) < last),
        );
    let measured = format!(
        "{} records in order; {} acknowledged missing in {} stretch(es)",
        present.len(),
        holes.len(),
        stretches
    );
    let verdict = if stretches <= 1 {
        Verdict::Pass
    } else {
        fail(format!(
            "acknowledged records missing in {stretches} separate places: {:?}",
            &holes[..holes.len().min(10)]
        ))
    };
    Judged::new(measured, Some(holes.len() as f64), verdict)
}

fn measurement_bounds(
    t: &Timeline,
    name: &str,
    at_least: Option<f64>,
    at_most: Option<f64>,
) -> Judged {
    let found = t.events().into_iter().rev().find_map(|e| match e.kind {
        EventKind::Measurement {
            name: n,
            value,
            unit,
            ..
        } if n == name => Some((value, unit)),
        _ => None,
    });
    let Some((value, unit)) = found else {
        return unknown(format!("nothing measured `{name}`"));
    };
    let measured = crate::units::human(value, &unit);
    let bound = |b: f64| crate::units::human(b, &unit);
    let verdict = match (at_least, at_most) {
        (Some(lo), _) if value < lo => fail(format!("{measured} is below {}", bound(lo))),
        (_, Some(hi)) if value > hi => fail(format!("{measured} is above {}", bound(hi))),
        _ => Verdict::Pass,
    };
    Judged::new(measured, None, verdict)
}

fn ends_failing(t: &Timeline, probe: &str, matching: &str) -> Judged {
    let samples = t.samples(probe);
    if samples.len() < STABLE_SUCCESSES {
        return unknown(format!("probe `{probe}` recorded too few samples"));
    }
    let is_match = |s: &Sample| !s.1 && s.2.as_deref().unwrap_or("").contains(matching);
    let trailing = samples.iter().rev().take_while(|s| is_match(s)).count();
    let last = samples.last().expect("not empty");
    let detail = last.2.clone().unwrap_or_else(|| "ok".into());
    if trailing >= STABLE_SUCCESSES {
        let first = samples[samples.len() - trailing].0;
        let d = secs(last.0 - first);
        Judged::new(
            format!("{trailing} last samples: {detail} ({d:.2}s)"),
            Some(d),
            Verdict::Pass,
        )
    } else {
        Judged::new(
            format!("last sample: {detail}"),
            None,
            fail(format!(
                "`{probe}` does not end failing with “{matching}”; last sample: {detail}"
            )),
        )
    }
}

fn outage_within(t: &Timeline, probe: &str, fault: &str, budget: Duration) -> Judged {
    let (samples, applied, _) = match window(t, probe, fault) {
        Ok(w) => w,
        Err(j) => return j,
    };
    let longest = outages(&samples)
        .into_iter()
        .filter(|o| o.end >= applied)
        .map(|o| (o.end - o.start.max(applied), o))
        .max_by_key(|(d, _)| *d);
    let Some((d, o)) = longest else {
        return Judged::new("no outage", Some(0.0), Verdict::Pass);
    };
    let d = secs(d);
    let measured = format!(
        "{d:.2}s (from +{:.2}s after the fault{})",
        secs(o.start.max(applied) - applied),
        if o.ended {
            ""
        } else {
            ", still failing at the end"
        }
    );
    let verdict = if !o.ended {
        fail(format!("`{probe}` was still failing at the end of the run"))
    } else if d <= budget.as_secs_f64() {
        Verdict::Pass
    } else {
        fail(format!("outage {d:.2}s, budget {}", fmt_dur(budget)))
    };
    Judged::new(measured, Some(d), verdict)
}

fn measured_within(t: &Timeline, fault: &str, prefix: &str, budget: Duration) -> Judged {
    let wanted = format!("{fault}/{prefix}");
    let values: Vec<(String, f64)> = t
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Measurement { name, value, .. } if name.starts_with(&wanted) => Some((
                name[wanted.len()..].trim_start_matches('-').to_string(),
                value,
            )),
            _ => None,
        })
        .collect();
    let Some(max) = values.iter().map(|v| v.1).reduce(f64::max) else {
        return unknown(format!("no measurement `{wanted}…` on the timeline"));
    };
    let measured = values
        .iter()
        .map(|(n, v)| format!("{n} {:.2}s", v / 1e3))
        .collect::<Vec<_>>()
        .join(", ");
    let verdict = if max / 1e3 <= budget.as_secs_f64() {
        Verdict::Pass
    } else {
        fail(format!("{:.2}s, budget {}", max / 1e3, fmt_dur(budget)))
    };
    Judged::new(measured, Some(max / 1e3), verdict)
}

fn containers_survive(t: &Timeline, fault: &str) -> Judged {
    let Some(applied) = t.fault_window(fault).0 else {
        return unknown(format!("fault `{fault}` was never applied"));
    };
    let events = t.events();
    // What runs inside the machines: their own containers, and the replicas placed on them
    // (the daemon crash names those among its targets).
    let placed: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FaultApplied {
                fault: f, targets, ..
            } if f == fault => Some(targets.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let deaths: Vec<String> = events
        .into_iter()
        .filter(|e| e.at >= applied)
        .filter_map(|e| match e.kind {
            EventKind::Container { container, action }
                if (container.contains('/') || placed.contains(&container))
                    && action.starts_with("die") =>
            {
                Some(container)
            }
            _ => None,
        })
        .collect();
    let measured = format!("{} deaths", deaths.len());
    let verdict = if deaths.is_empty() {
        Verdict::Pass
    } else {
        fail(format!("died: {}", deaths.join(", ")))
    };
    Judged::new(measured, Some(deaths.len() as f64), verdict)
}

fn unit_reaches(t: &Timeline, fault: &str, unit: &str, matching: &str) -> Judged {
    let Some(applied) = t.fault_window(fault).0 else {
        return unknown(format!("fault `{fault}` was never applied"));
    };
    let states: Vec<(Nanos, String, String, String)> = t
        .events()
        .into_iter()
        .filter(|e| e.at >= applied)
        .filter_map(|e| match e.kind {
            EventKind::Unit {
                machine,
                unit: u,
                state,
                detail,
            } if u == unit => Some((e.at, machine, state, detail)),
            _ => None,
        })
        .collect();
    if states.is_empty() {
        return unknown(format!(
            "no state of unit `{unit}` after `{fault}` on the timeline"
        ));
    }
    match states.iter().find(|s| s.2.contains(matching)) {
        Some((at, machine, state, detail)) => {
            let d = secs(at - applied);
            Judged::new(
                format!("{machine} +{d:.2}s: {state} ({detail})"),
                Some(d),
                Verdict::Pass,
            )
        }
        None => {
            let seen: BTreeSet<&str> = states.iter().map(|s| s.2.as_str()).collect();
            Judged::new(
                format!(
                    "states seen: {}",
                    seen.into_iter().collect::<Vec<_>>().join(", ")
                ),
                None,
                fail(format!("unit `{unit}` never reached “{matching}”")),
            )
        }
    }
}

fn fault_verified(t: &Timeline, fault: &str) -> Judged {
    let checks: Vec<(Stage, bool, bool, String)> = t
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::FaultVerified {
                fault: f,
                stage,
                ok,
                undecided,
                detail,
            } if f == fault => Some((stage, ok, undecided, detail)),
            _ => None,
        })
        .collect();
    if let Some((stage, _, undecided, detail)) = checks.iter().find(|c| !c.1) {
        let stage = stage.name();
        if *undecided {
            return unknown(format!("{stage}: the harness could not tell: {detail}"));
        }
        let measured = format!("{stage}: not verified");
        return Judged::new(measured, None, fail(format!("{stage}: {detail}")));
    }
    for stage in [Stage::Applied, Stage::Healed] {
        if !checks.iter().any(|c| c.0 == stage) {
            return unknown(format!(
                "no verification of `{fault}` {} on the timeline",
                stage.name()
            ));
        }
    }
    let measured = checks
        .iter()
        .map(|(stage, _, _, detail)| format!("{}: {detail}", stage.name()))
        .collect::<Vec<_>>()
        .join("; ");
    Judged::new(measured, None, Verdict::Pass)
}
