//! A hand-made report shaped like the ZooKeeper quorum incident, built without Docker: the
//! chart, HTML and JUnit tests use it (also the browser test), and `aftershock report --demo`
//! writes it to preview the page. The outcomes come from the real checkers run on the
//! synthetic timeline, so the page shows what a real run of the same shape would.

use super::{Report, RunInfo};
use crate::check;
use crate::scenario::builder::{Expect, Experiment, Fault, Probe, Service};
use crate::scenario::file::ProbeKind;
use crate::scenario::{Plan, Preset, Select};
use crate::timeline::{Event, EventKind, Nanos, Timeline};
use std::time::Duration;

/// The demo's time zero (2026-11-23T08:00:00Z), in Unix ns.
const T0: Nanos = 1_795_420_800_000_000_000;
const S: f64 = 1e9;

fn at(seconds: f64) -> Nanos {
    T0 + (seconds * S) as Nanos
}

fn scenario() -> Plan {
    let secs = Duration::from_secs;
    let mut x = Experiment::new("demo-zookeeper-quorum", secs(30));
    let zk = x.service(Service::preset("zk", Preset::Zookeeper).replicas(3));
    let writes = x.probe(Probe::zookeeper_write("zk-write", &zk));
    let realtime = x.probe(Probe::new("realtime", ProbeKind::ZookeeperMode, &zk));
    let restart = Fault::restart("restart", &zk, secs(8))
        .at(secs(5))
        .select(Select::Count(2));
    let restart = x.fault(restart);
    x.expect(Expect::fails_during(&writes, &restart, secs(5)));
    x.expect(Expect::recovers_within(&writes, &restart, secs(10)));
    x.expect(Expect::recovers_within(&realtime, &restart, secs(10)));
    x.plan().expect("the demo scenario is valid")
}

/// The timeline: two probes at 10 Hz for 30 s; `restart` kills zk-2 and zk-3 at +5 s and
/// starts them at +13 s; writes fail until +14.5 s, the real-time probe never comes back; a
/// per-second `load/p50` and `load/p99` measurement series.
pub fn timeline() -> Vec<Event> {
    let start = Event {
        at: at(0.0),
        kind: EventKind::Note {
            text: "observation starts".into(),
        },
    };
    let mut events = vec![start];
    events.extend(container_events());
    events.extend(fault_events());
    events.extend(probe_samples());
    events.extend(load_measurements());
    // Stable: events at the same instant keep the order above.
    events.sort_by_key(|e| e.at);
    events
}

/// The engine's events: bring-up, the two kills, an exec (not drawn), the two starts.
fn container_events() -> Vec<Event> {
    [
        ("zk-1", "start", -3.2),
        ("zk-2", "start", -3.1),
        ("zk-3", "start", -3.0),
        ("zk-2", "die (exit 137)", 5.0003),
        ("zk-3", "die (exit 137)", 5.0009),
        ("zk-3", "exec_start: srvr", 6.0),
        ("zk-2", "start", 13.02),
        ("zk-3", "start", 13.05),
    ]
    .into_iter()
    .map(|(container, action, t)| Event {
        at: at(t),
        kind: EventKind::Container {
            container: container.into(),
            action: action.into(),
        },
    })
    .collect()
}

/// `restart` applied at +5 s and healed at +13 s, each verified on the engine.
fn fault_events() -> Vec<Event> {
    let targets = vec!["zk-2".to_string(), "zk-3".to_string()];
    let mut events = vec![
        Event {
            at: at(5.0),
            kind: EventKind::FaultApplied {
                fault: "restart".into(),
                targets: targets.clone(),
                detail: "SIGKILL to zk-2, zk-3 via pidfd at the processes".into(),
            },
        },
        Event {
            at: at(13.0),
            kind: EventKind::FaultHealed {
                fault: "restart".into(),
                targets,
                detail: "started zk-2, zk-3".into(),
            },
        },
    ];
    for (seconds, stage, detail) in [
        (
            5.1,
            "applied",
            "zk-2: engine: running=false; zk-3: engine: running=false",
        ),
        (
            13.0,
            "healed",
            "zk-2: engine: running=true; zk-3: engine: running=true",
        ),
    ] {
        events.push(Event {
            at: at(seconds),
            kind: EventKind::FaultVerified {
                fault: "restart".into(),
                stage: if stage == "applied" {
                    crate::timeline::Stage::Applied
                } else {
                    crate::timeline::Stage::Healed
                },
                ok: true,
                undecided: false,
                detail: detail.into(),
            },
        });
    }
    events
}

/// Both probes at 10 Hz: `zk-write` fails from +5.05 s to +14.5 s, `realtime` from +5.05 s on.
fn probe_samples() -> Vec<Event> {
    let mut events = vec![];
    for i in 0..300 {
        let t = i as f64 / 10.0;
        let jitter = ((i * 37) % 11) as f64 / 10.0;
        for (probe, down_until) in [("zk-write", 14.5), ("realtime", f64::MAX)] {
            let ok = !(5.05..down_until).contains(&t);
            events.push(Event {
                at: at(t),
                kind: EventKind::Sample {
                    probe: probe.into(),
                    ok,
                    latency: if ok {
                        ((1.2 + jitter) * 1e6) as Nanos
                    } else {
                        500_000_000
                    },
                    detail: (!ok).then(|| "no answer within 500ms".into()),
                    late: None,
                },
            });
        }
    }
    events
}

/// A per-second `load/p50` and `load/p99`, high from +5 s to +15 s.
fn load_measurements() -> Vec<Event> {
    let mut events = vec![];
    for second in 0..30 {
        let t = second as f64 + 0.5;
        let stressed = (5..15).contains(&second);
        for (name, value) in [
            ("load/p50", if stressed { 40.0 } else { 2.0 }),
            (
                "load/p99",
                if stressed {
                    450.0
                } else {
                    9.0 + second as f64 % 3.0
                },
            ),
        ] {
            events.push(Event {
                at: at(t),
                kind: EventKind::Measurement {
                    name: name.into(),
                    value,
                    unit: "ms".into(),
                    what: "per-second latency percentile of the open-loop load".into(),
                },
            });
        }
    }
    events
}

/// The demo report, judged by the real checkers.
pub fn report() -> Report {
    let scenario = scenario();
    let timeline = Timeline::from_events(timeline());
    let outcomes = check::check_all(&scenario, &timeline);
    let info = RunInfo {
        run_id: "demo".into(),
        seed: 42,
        started_at: at(-5.0),
        finished_at: at(31.0),
        error: None,
    };
    Report::new(&scenario, info, outcomes, timeline.events())
}

/// A report with nothing in it: no samples, no faults (the chart must show it as empty).
#[cfg(test)]
pub fn empty() -> Report {
    Report {
        timeline: vec![],
        outcomes: vec![],
        measurements: vec![],
        ..report()
    }
}
