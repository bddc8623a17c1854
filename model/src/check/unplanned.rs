//! Unplanned events and what they do to verdicts. Pure, like every checker.
//!
//! [`container_events`] finds, among the engine's container events of the observation, what no
//! fault explains: a container killed, stopped, restarted or OOM-killed, or dying of a signal
//! sent from outside (SIGHUP, SIGINT, SIGKILL, SIGTERM), on a container that no fault named
//! at the time. A fault explains what happens to its targets from a second before its
//! `fault-applied` to [`GRACE`] after its `fault-healed` (or its last verification). A
//! container that exits by itself (any other exit code, a crash) is the system's own behaviour
//! and stays evidence. Containers inside machines (`machine/name`) are left to
//! `containers-survive`: their engine is part of the system under test.
//!
//! [`disturbed`] gives the first unplanned event (these, the engine's, the harness's lag)
//! that overlaps an expectation's window, as the reason its verdict is unknown.

use crate::scenario::plan::Expect;
use crate::timeline::{Cause, Event, EventKind, Nanos, Timeline};

const SECOND: Nanos = 1_000_000_000;
/// How long after a fault's heal (or its last verification) it still explains what happens to
/// its targets: the heal starts what is down, the system settles, the nemesis inspects.
pub const GRACE: Nanos = 5 * SECOND;
/// How early before its `fault-applied` a fault explains events (the record follows the act).
const BEFORE: Nanos = SECOND;
/// Events of one container this close together are one disturbance (`kill` then `die`).
const TOGETHER: Nanos = 2 * SECOND;
/// Signals that come from outside a process (a crash's SIGSEGV or SIGABRT is its own).
const OUTSIDE_SIGNALS: [i64; 4] = [1, 2, 9, 15];

/// What a fault may do, and to whom.
struct Explains {
    from: Nanos,
    to: Nanos,
    targets: Vec<String>,
}

impl Explains {
    fn covers(&self, container: &str, at: Nanos) -> bool {
        (self.from..=self.to).contains(&at)
            && self.targets.iter().any(|t| {
                container == t
                    || container
                        .strip_prefix(t.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
    }
}

/// Every fault's reach, from the timeline's `fault-applied`, `fault-verified`, `fault-healed`.
fn explanations(events: &[Event], end: Nanos) -> Vec<Explains> {
    let mut out: Vec<(String, Explains)> = vec![];
    for e in events {
        match &e.kind {
            EventKind::FaultApplied { fault, targets, .. } => out.push((
                fault.clone(),
                Explains {
                    from: e.at - BEFORE,
                    to: end,
                    targets: targets.clone(),
                },
            )),
            EventKind::FaultHealed { fault, .. } | EventKind::FaultVerified { fault, .. } => {
                if let Some((_, x)) = out.iter_mut().rev().find(|(f, _)| f == fault) {
                    x.to = if x.to == end {
                        e.at + GRACE
                    } else {
                        x.to.max(e.at + GRACE)
                    };
                }
            }
            _ => {}
        }
    }
    out.into_iter().map(|(_, x)| x).collect()
}

/// What a container action says was done to it, when that is a disturbance.
fn disturbance(action: &str) -> Option<String> {
    let verb = action.split_whitespace().next().unwrap_or("");
    match verb {
        "kill" => Some("killed".into()),
        "stop" => Some("stopped".into()),
        "restart" => Some("restarted".into()),
        "oom" => Some("OOM-killed".into()),
        "die" => {
            let code: i64 = action
                .trim_start_matches("die (exit ")
                .trim_end_matches(')')
                .parse()
                .ok()?;
            let signal = code - 128;
            OUTSIDE_SIGNALS
                .contains(&signal)
                .then(|| format!("died of signal {signal} (exit {code})"))
        }
        _ => None,
    }
}

/// The unplanned container events of the observation: one per container and burst of
/// disturbances, at its first, lasting to its last.
pub fn container_events(t: &Timeline) -> Vec<Event> {
    let events = t.events();
    let (start, end) = t.observation();
    let explains = explanations(&events, end);
    let mut out: Vec<(Nanos, String, Vec<String>, Nanos)> = vec![];
    for e in &events {
        let EventKind::Container { container, action } = &e.kind else {
            continue;
        };
        if e.at < start || e.at > end || container.contains('/') {
            continue;
        }
        let Some(what) = disturbance(action) else {
            continue;
        };
        if explains.iter().any(|x| x.covers(container, e.at)) {
            continue;
        }
        match out
            .iter_mut()
            .find(|(_, c, _, last)| c == container && e.at - *last <= TOGETHER)
        {
            Some((_, _, whats, last)) => {
                *last = e.at;
                if !whats.contains(&what) {
                    whats.push(what);
                }
            }
            None => out.push((e.at, container.clone(), vec![what], e.at)),
        }
    }
    out.into_iter()
        .map(|(at, container, whats, last)| Event {
            at,
            kind: EventKind::Unplanned {
                cause: Cause::Container,
                detail: format!("container `{container}` was {}", whats.join(", then ")),
                subject: container,
                lasted: last - at,
            },
        })
        .collect()
}

/// The probes' unobserved samples (their engine did not answer) that no fault explains — a
/// fault on the replica, or a daemon crash under it, explains its engine's silence — one per
/// probe and burst, as `unplanned` events of cause `engine`.
pub fn unobserved_events(t: &Timeline) -> Vec<Event> {
    let events = t.events();
    let (_, end) = t.observation();
    let explains = explanations(&events, end);
    let mut out: Vec<(Nanos, String, String, Nanos)> = vec![];
    for e in &events {
        let EventKind::Unobserved {
            probe,
            replica,
            detail,
        } = &e.kind
        else {
            continue;
        };
        if explains.iter().any(|x| x.covers(replica, e.at)) {
            continue;
        }
        match out
            .iter_mut()
            .find(|(_, p, _, last)| p == probe && e.at - *last <= TOGETHER)
        {
            Some((_, _, _, last)) => *last = e.at,
            None => out.push((e.at, probe.clone(), detail.clone(), e.at)),
        }
    }
    out.into_iter()
        .map(|(at, probe, detail, last)| Event {
            at,
            kind: EventKind::Unplanned {
                cause: Cause::Engine,
                detail: format!("probe `{probe}` could not observe ({detail})"),
                subject: probe,
                lasted: last - at,
            },
        })
        .collect()
}

/// Adds [`container_events`] and [`unobserved_events`] to the timeline (once: a second call
/// finds them there already).
pub fn mark_containers(t: &Timeline) {
    let known: Vec<Event> = t
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                &e.kind,
                EventKind::Unplanned {
                    cause: Cause::Container | Cause::Engine,
                    ..
                }
            )
        })
        .collect();
    for e in container_events(t).into_iter().chain(unobserved_events(t)) {
        if !known.contains(&e) {
            t.push(e);
        }
    }
}

/// The time an expectation's verdict rests on: from its fault's start (else the
/// observation's) to its heal for what happens while a fault is in effect, to the budget's
/// deadline for recoveries, else to the end of the observation.
pub fn span(kind: &Expect, fault: &str, t: &Timeline) -> (Nanos, Nanos) {
    let (start, end) = t.observation();
    let (applied, healed) = if fault.is_empty() {
        (None, None)
    } else {
        t.fault_window(fault)
    };
    let to = match kind {
        Expect::FailsDuring { .. }
        | Expect::Simultaneous { .. }
        | Expect::CompletesWithin { .. }
        | Expect::RestartedWithin { .. }
        | Expect::OomKillWithin { .. } => healed.unwrap_or(end),
        Expect::FaultVerified { .. } => healed.map_or(end, |h| h + GRACE),
        Expect::RecoversWithin { budget, .. } | Expect::StaysDown { min: budget, .. } => {
            healed.map_or(end, |h| (h + budget.as_nanos() as Nanos).min(end))
        }
        Expect::NeverFails { .. }
        | Expect::OutageWithin { .. }
        | Expect::NoLostWrites { .. }
        | Expect::LosesWrites { .. }
        | Expect::OrderedPrefix { .. }
        | Expect::LatencyRises { .. }
        | Expect::LatencyStaysWithin { .. }
        | Expect::WarmUpWithin { .. }
        | Expect::NoErrors { .. }
        | Expect::EndsFailing { .. }
        | Expect::MeasuredWithin { .. }
        | Expect::Measurement { .. }
        | Expect::ContainersSurvive { .. }
        | Expect::UnitReaches { .. } => end,
    };
    (applied.unwrap_or(start).min(to), to)
}

/// The first unplanned event overlapping `from..=to`, as the reason a verdict is unknown:
/// "the engine restarted (no answer for 2.0 s) at +14.2 s, not part of the scenario".
pub fn disturbed(t: &Timeline, (from, to): (Nanos, Nanos)) -> Option<String> {
    let (origin, _) = t.observation();
    t.events().into_iter().find_map(|e| match e.kind {
        EventKind::Unplanned { lasted, detail, .. } if e.at <= to && e.at + lasted >= from => {
            Some(format!(
                "{detail} at +{:.1} s, not part of the scenario",
                (e.at - origin) as f64 / 1e9
            ))
        }
        _ => None,
    })
}
