//! Achieved timings: how long each fault really held, beside what the scenario asked ("down
//! 5.0 s requested, 8.9 s achieved"). A pure function of the plan and the timeline: the fault's
//! `fault-applied` → `fault-healed` on the timeline, and, for the kinds that stop containers,
//! each target's own down time from its container events (`die` → `start`, `pause` →
//! `unpause`) where the timeline has them. Stored in report.json and shown in the run's table.

use super::secs;
use crate::scenario::plan::{FaultKindName, Plan};
use crate::timeline::{Nanos, Timeline};
use serde::{Deserialize, Serialize};

/// One fault's requested and achieved timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultTiming {
    /// The fault's name.
    pub fault: String,
    /// Its kind (`restart`, `pause`, …).
    pub kind: FaultKindName,
    /// What the scenario asked: how long the targets stay down before the heal, in seconds
    /// (None: until the observation ends, or a kind without a `down_for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_seconds: Option<f64>,
    /// From the fault's `fault-applied` to its `fault-healed` on the timeline, in seconds
    /// (None: it was never applied, or never healed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_seconds: Option<f64>,
    /// Each target's own down time, for the targets whose container events the timeline has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetDown>,
}

/// How long one target of a fault was down, by its container's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetDown {
    /// The replica.
    pub target: String,
    /// The container events that bracket the down time (`die → start`, `pause → unpause`).
    pub events: String,
    /// Seconds from the first event after the fault was applied to the next second one
    /// (None: it never came back within the timeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_seconds: Option<f64>,
}

/// The container events that bracket a target's down time for a kind of fault: it goes down
/// with the first and comes back with the second. None: the kind stops no container (or
/// stops what the timeline does not see by name).
fn bracket(kind: FaultKindName) -> Option<(&'static str, &'static str)> {
    use FaultKindName::*;
    match kind {
        Kill | Restart | RollingRestart | Stop | PowerCut | Leak => Some(("die", "start")),
        Pause => Some(("pause", "unpause")),
        DaemonCrash | Partition | MachinePartition | Netem | Cut | Clock | SickLink => None,
        DiskLatency | DiskError | DiskFull => None,
    }
}

/// Every fault of the plan, in its order, with its requested and achieved timing.
pub fn fault_timings(plan: &Plan, t: &Timeline) -> Vec<FaultTiming> {
    plan.faults
        .iter()
        .map(|f| {
            let kind = FaultKindName::from(&f.kind);
            let (applied, healed) = t.fault_window(&f.name);
            FaultTiming {
                fault: f.name.clone(),
                kind,
                requested_seconds: f.kind.down_for().map(|d| d.as_secs_f64()),
                applied_seconds: applied.zip(healed).map(|(a, h)| secs(h.saturating_sub(a))),
                targets: match (applied, bracket(kind)) {
                    (Some(applied), Some(pair)) => targets_down(t, &f.name, applied, pair),
                    _ => vec![],
                },
            }
        })
        .collect()
}

/// Each target of `fault` whose container went `down` after `applied`, and when it came `up`.
fn targets_down(
    t: &Timeline,
    fault: &str,
    applied: Nanos,
    (down, up): (&str, &str),
) -> Vec<TargetDown> {
    t.fault_targets(fault)
        .into_iter()
        .filter_map(|target| {
            let went = t.container_event(&target, down, applied)?;
            let came = t.container_event(&target, up, went);
            Some(TargetDown {
                events: format!("{down} → {up}"),
                down_seconds: came.map(|c| secs(c - went)),
                target,
            })
        })
        .collect()
}

impl FaultTiming {
    /// In words, for the run's table: `down 5.0 s requested; achieved: applied → healed 5.3 s,
    /// zk1 8.9 s (die → start)`.
    pub fn words(&self) -> String {
        let requested = match self.requested_seconds {
            Some(r) => format!("down {r:.1} s requested"),
            None => "down until the end requested".to_string(),
        };
        let mut achieved = vec![match self.applied_seconds {
            Some(a) => format!("applied → healed {a:.1} s"),
            None => "not both applied and healed".to_string(),
        }];
        achieved.extend(self.targets.iter().map(|d| match d.down_seconds {
            Some(s) => format!("{} {s:.1} s ({})", d.target, d.events),
            None => format!("{} not back ({})", d.target, d.events),
        }));
        format!("{requested}; achieved: {}", achieved.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{Event, EventKind};

    const PLAN: &str = r#"
name = "t"
duration = "60s"
[[topology.service]]
name = "mc"
image = "memcached"
replicas = 2
[[fault]]
name = "bounce"
kind = "restart"
at = "10s"
target = "mc"
select = "all"
down_for = "5s"
[[fault]]
name = "freeze"
kind = "pause"
at = "30s"
target = "mc"
select = "all"
down_for = "2s"
[[fault]]
name = "cut"
kind = "partition"
at = "40s"
target = "mc"
select = "all"
"#;

    const S: f64 = 1e9;

    fn at(seconds: f64, kind: EventKind) -> Event {
        let at = (seconds * S) as Nanos;
        Event { at, kind }
    }

    fn container(seconds: f64, name: &str, action: &str) -> Event {
        let (container, action) = (name.to_string(), action.to_string());
        at(seconds, EventKind::Container { container, action })
    }

    fn fault(seconds: f64, name: &str, applied: bool, targets: &[&str]) -> Event {
        let (fault, detail) = (name.to_string(), String::new());
        let targets = targets.iter().map(|t| t.to_string()).collect();
        at(
            seconds,
            if applied {
                EventKind::FaultApplied {
                    fault,
                    targets,
                    detail,
                }
            } else {
                EventKind::FaultHealed {
                    fault,
                    targets,
                    detail,
                }
            },
        )
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    #[test]
    fn achieved_timings_come_from_the_fault_window_and_each_targets_container_events() {
        let plan = crate::scenario::parse("t.toml", PLAN).unwrap();
        let t = Timeline::from_events(vec![
            container(1.0, "mc1", "start"),
            fault(10.0, "bounce", true, &["mc1", "mc2"]),
            container(10.1, "mc1", "die (exit 137)"),
            container(10.1, "mc2", "die (exit 137)"),
            fault(15.3, "bounce", false, &["mc1", "mc2"]),
            container(19.0, "mc1", "start"),
            fault(30.0, "freeze", true, &["mc1"]),
            container(30.05, "mc1", "pause"),
            fault(32.0, "freeze", false, &["mc1"]),
            container(32.55, "mc1", "unpause"),
            fault(40.0, "cut", true, &["mc1", "mc2"]),
        ]);
        let timings = fault_timings(&plan, &t);
        assert_eq!(timings.len(), 3);

        let bounce = &timings[0];
        assert_eq!(bounce.kind, FaultKindName::Restart);
        assert!(close(bounce.requested_seconds, 5.0), "{bounce:?}");
        assert!(close(bounce.applied_seconds, 5.3), "{bounce:?}");
        assert_eq!(bounce.targets.len(), 2);
        assert!(close(bounce.targets[0].down_seconds, 8.9), "{bounce:?}");
        assert_eq!(bounce.targets[1].target, "mc2");
        assert_eq!(bounce.targets[1].down_seconds, None, "mc2 never started");
        assert_eq!(
            bounce.words(),
            "down 5.0 s requested; achieved: applied → healed 5.3 s, mc1 8.9 s (die → start), mc2 not back (die → start)"
        );

        let freeze = &timings[1];
        assert!(close(freeze.applied_seconds, 2.0), "{freeze:?}");
        assert_eq!(freeze.targets[0].events, "pause → unpause");
        assert!(close(freeze.targets[0].down_seconds, 2.5), "{freeze:?}");

        let cut = &timings[2];
        assert_eq!(cut.requested_seconds, None, "heals at the end");
        assert_eq!(cut.applied_seconds, None, "never healed");
        assert!(cut.targets.is_empty(), "a partition stops no container");
        assert!(cut
            .words()
            .starts_with("down until the end requested; achieved: not both applied and healed"));
    }

    #[test]
    fn a_fault_never_applied_has_no_achieved_timing_and_round_trips_through_json() {
        let plan = crate::scenario::parse("t.toml", PLAN).unwrap();
        let timings = fault_timings(&plan, &Timeline::new());
        assert!(timings
            .iter()
            .all(|f| f.applied_seconds.is_none() && f.targets.is_empty()));
        let json = serde_json::to_string(&timings).unwrap();
        let back: Vec<FaultTiming> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, timings);
    }
}
