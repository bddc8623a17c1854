//! The timeline: everything that happened during a run, in time order.
//!
//! Probes, the nemesis and the engine's event recorder append to one shared [`Timeline`];
//! checkers read it and nothing else. Timestamps are Unix nanoseconds: the engine's own
//! `timeNano` for container events, the harness's wall clock for the rest (same host clock).

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in nanoseconds.
pub type Nanos = i64;

/// The current wall-clock time in Unix nanoseconds.
pub fn now() -> Nanos {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as Nanos)
        .unwrap_or(0)
}

/// One probe sample as checkers see it: when, whether it succeeded, and its detail.
pub type Sample = (Nanos, bool, Option<String>);

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (Unix ns).
    pub at: Nanos,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Which side of a fault a verification checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The fault took effect.
    Applied,
    /// The fault's effect was undone.
    Healed,
}

impl Stage {
    /// `applied` or `healed`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Applied => "applied",
            Stage::Healed => "healed",
        }
    }
}

/// What a fault measures. The one place measurement names are made, so the nemesis that
/// records them and the checkers that read them cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Spread of the killed processes' exits (ms).
    ExitSkew,
    /// Time between the first and the last signal of a group kill (ms).
    SignalSpread,
    /// Spread of the engine's `die` events for a group kill (ms).
    DieEventSpread,
    /// The cgroup's OOM kills during a leak.
    OomKills,
    /// From the start after a power cut to serving again (ms).
    RestartToServing,
    /// One machine's engine down after a daemon crash (ms), per machine.
    EngineDowntime,
    /// One replica's rejoin in a rolling restart (ms), per replica.
    Rejoin,
    /// One disk's unmount and mount after a power cut (ms), per replica.
    Remount,
    /// Median TCP handshake round trip to a replica (ms), per `<stage>-<replica>`.
    Rtt,
    /// Share of TCP handshakes to a replica without an answer (%), per `<stage>-<replica>`.
    Loss,
}

impl Metric {
    fn word(self) -> &'static str {
        match self {
            Metric::ExitSkew => "exit-skew",
            Metric::SignalSpread => "signal-spread",
            Metric::DieEventSpread => "die-event-spread",
            Metric::OomKills => "oom-kills",
            Metric::RestartToServing => "restart-to-serving",
            Metric::EngineDowntime => "engine-downtime",
            Metric::Rejoin => "rejoin",
            Metric::Remount => "remount",
            Metric::Rtt => "rtt",
            Metric::Loss => "loss",
        }
    }

    /// The measurement's name for fault `fault`: `<fault>/exit-skew`, and for the metrics
    /// taken once per machine or replica `<fault>/engine-downtime-<of>` (a remount:
    /// `<fault>/<replica>/remount`).
    pub fn of(self, fault: &str, each: Option<&str>) -> String {
        match (self, each) {
            (Metric::Remount, Some(r)) => format!("{fault}/{r}/remount"),
            (_, Some(each)) => format!("{fault}/{}-{each}", self.word()),
            (_, None) => format!("{fault}/{}", self.word()),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EventKind {
    /// A probe sampled the system once.
    Sample {
        /// The probe's name.
        probe: String,
        /// Whether the operation succeeded.
        ok: bool,
        /// How long the operation took (ns).
        latency: Nanos,
        /// Error text or observed value.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
        /// How late the sample started against the probe's schedule (ns): the sampling loop's
        /// own lag (a timer, a busy runtime), not the system's.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        late: Option<Nanos>,
    },
    /// A probe could not take a sample: the engine it observes through (an exec) did not
    /// answer. Neither a success nor a failure of the system; unless a fault explains it, it
    /// becomes an `unplanned` event (`check::unplanned`).
    Unobserved {
        /// The probe's name.
        probe: String,
        /// The replica it observes through.
        replica: String,
        /// What the engine said, or that it did not answer.
        detail: String,
    },
    /// A fault took effect on its targets.
    FaultApplied {
        /// The fault's name.
        fault: String,
        /// The replicas (or machines) it hit.
        targets: Vec<String>,
        /// How, in words.
        detail: String,
    },
    /// A fault's effect was undone (always recorded, also when the run fails).
    FaultHealed {
        /// The fault's name.
        fault: String,
        /// The replicas (or machines) it had hit.
        targets: Vec<String>,
        /// How, in words.
        detail: String,
    },
    /// The nemesis checked a fault: that it took effect (`stage` = `applied`) or that it was
    /// healed (`stage` = `healed`), on the system itself (the engine's state, the kernel's
    /// freezer, a connection attempt, the qdisc, a measured round trip).
    FaultVerified {
        /// The fault's name.
        fault: String,
        /// Which side of the fault was checked.
        stage: Stage,
        /// Whether the check found what the fault should have done.
        ok: bool,
        /// When not `ok`: whether the harness could not tell — the look itself failed (the
        /// engine did not answer) or the fault's mechanism cannot reach the replica's process
        /// (a static or Go binary past libfaketime). Judged UNKNOWN, not FAIL.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        undecided: bool,
        /// What was checked and seen.
        detail: String,
    },
    /// An event from the container engine's event stream.
    Container {
        /// The container's name.
        container: String,
        /// `start`, `die`, `kill`, `oom`, `health_status: healthy`, ...
        action: String,
    },
    /// A measured number the nemesis or a probe produced (a skew, a duration).
    Measurement {
        /// Its name (see [`Metric`]).
        name: String,
        /// The value, in `unit`s.
        value: f64,
        /// `s`, `ms`, `%`, …
        unit: String,
        /// What exactly was measured, in words.
        what: String,
    },
    /// The end-of-run read-back of a write probe: which acknowledged writes are still there.
    ReadBack {
        /// The write probe's name.
        probe: String,
        /// The writes the system acknowledged.
        acknowledged: Vec<u64>,
        /// The writes whose outcome is unknown (a timeout, a broken connection).
        indeterminate: Vec<u64>,
        /// The writes found at the end.
        present: Vec<u64>,
    },
    /// A state change of a machine's dockerd or of one of its units, as its init logged it.
    Unit {
        /// The machine's name.
        machine: String,
        /// `dockerd` or the unit's name.
        unit: String,
        /// `started`, `exited`, `active`, `name-conflict`, ...
        state: String,
        /// More of what the init logged, if anything.
        #[serde(skip_serializing_if = "String::is_empty", default)]
        detail: String,
    },
    /// Every container a machine's engine holds at the end of the run, as `name: state
    /// (status)`: what the engine made of each restart policy and `--rm` after the fault.
    Containers {
        /// The machine's name.
        machine: String,
        /// `name: state (status)` of each container.
        states: Vec<String>,
    },
    /// A free-form note from the harness (phase changes, decisions).
    Note {
        /// The note.
        text: String,
    },
    /// One 1-second window of an open-loop load probe; `at` is the window's start. Requests
    /// belong to the window of their *intended* send time, and latency counts from it.
    Window {
        /// The load probe's name.
        probe: String,
        /// Requests intended in this window.
        sent: u64,
        /// 2xx answers.
        ok: u64,
        /// 5xx answers.
        server_errors: u64,
        /// Timeouts, connection errors, other statuses.
        other_errors: u64,
        /// 2xx answers served from the cache.
        hits: u64,
        /// Latency percentiles of every answered request (ns), HdrHistogram, 3 digits.
        p50: Nanos,
        /// The 99th percentile (ns).
        p99: Nanos,
        /// The slowest answer (ns).
        max: Nanos,
        /// The latest any request of the window was sent after its intended time (ns): the
        /// load generator's own stall, i.e. the machine's, not the system's.
        #[serde(default)]
        lag: Nanos,
    },
    /// Something no fault of the scenario did that disturbs what the run observed: the engine
    /// restarting or its event stream breaking, a container dying with no fault to explain it,
    /// the harness itself falling behind. Every expectation whose window it overlaps is
    /// judged unknown (`check::unplanned`).
    Unplanned {
        /// What kind of disturbance it was.
        cause: Cause,
        /// `engine`, the container, or the probe whose loop fell behind.
        subject: String,
        /// How long it lasted (ns); 0 for an instant.
        #[serde(default)]
        lasted: Nanos,
        /// What happened, in words ("the engine restarted (no answer for 2.0 s)").
        detail: String,
    },
    /// The kernel's OOM killer killed a process in a container.
    OomKill {
        /// The container's name.
        container: String,
        /// The killed process's command name (`memcached`).
        process: String,
        /// Its PID on the host.
        pid: i64,
        /// How this is known (the kernel log line, or the container's death).
        evidence: String,
    },
}

/// What an [`EventKind::Unplanned`] event was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The engine's event stream broke, or the engine stopped answering and came back.
    Engine,
    /// A container was killed, stopped, restarted or OOM-killed, or died of a signal, with no
    /// fault of the scenario on it at the time.
    Container,
    /// A probe's sampling loop woke later than its schedule by more than the bound: the host
    /// starved the harness of CPU.
    Lag,
}

/// The fields of a [`EventKind::Window`], as checkers read them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub at: Nanos,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub hits: u64,
    pub p50: Nanos,
    pub p99: Nanos,
    pub lag: Nanos,
}

impl Window {
    /// Hits per 2xx answer (0 when nothing was answered).
    pub fn hit_ratio(&self) -> f64 {
        if self.ok == 0 {
            0.0
        } else {
            self.hits as f64 / self.ok as f64
        }
    }
}

/// The events of a run, in the order they were recorded. Cheap to clone; shared by all tasks.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Timeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a timeline from events (used by tests and when reading a report back).
    pub fn from_events(events: Vec<Event>) -> Self {
        let t = Self::new();
        for e in events {
            t.push(e);
        }
        t
    }

    pub fn push(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }

    /// Records `kind` as happening now.
    pub fn record(&self, kind: EventKind) {
        self.push(Event { at: now(), kind });
    }

    pub fn note(&self, text: impl Into<String>) {
        self.record(EventKind::Note { text: text.into() });
    }

    /// All events sorted by time (stable for equal timestamps).
    pub fn events(&self) -> Vec<Event> {
        let mut v = self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_by_key(|e| e.at);
        v
    }

    /// The samples of one probe, in time order, as `(at, ok, detail)`.
    pub fn samples(&self, probe: &str) -> Vec<Sample> {
        self.events()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Sample {
                    probe: p,
                    ok,
                    detail,
                    ..
                } if p == probe => Some((e.at, ok, detail)),
                _ => None,
            })
            .collect()
    }

    /// When a fault was applied and healed (first of each), if it was.
    pub fn fault_window(&self, fault: &str) -> (Option<Nanos>, Option<Nanos>) {
        let mut applied = None;
        let mut healed = None;
        for e in self.events() {
            match &e.kind {
                EventKind::FaultApplied { fault: f, .. } if f == fault && applied.is_none() => {
                    applied = Some(e.at)
                }
                EventKind::FaultHealed { fault: f, .. } if f == fault && healed.is_none() => {
                    healed = Some(e.at)
                }
                _ => {}
            }
        }
        (applied, healed)
    }

    /// The windows of one load probe, in time order.
    pub fn windows(&self, probe: &str) -> Vec<Window> {
        self.events()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Window {
                    probe: p,
                    sent,
                    ok,
                    server_errors,
                    other_errors,
                    hits,
                    p50,
                    p99,
                    lag,
                    ..
                } if p == probe => Some(Window {
                    at: e.at,
                    sent,
                    ok,
                    errors: server_errors + other_errors,
                    hits,
                    p50,
                    p99,
                    lag,
                }),
                _ => None,
            })
            .collect()
    }

    /// The first engine event of `container` whose action starts with `action`, at or after `from`.
    pub fn container_event(&self, container: &str, action: &str, from: Nanos) -> Option<Nanos> {
        self.events().into_iter().find_map(|e| match e.kind {
            EventKind::Container {
                container: c,
                action: a,
            } if c == container && a.starts_with(action) && e.at >= from => Some(e.at),
            _ => None,
        })
    }

    /// The targets of a fault's first application.
    pub fn fault_targets(&self, fault: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .find_map(|e| match e.kind {
                EventKind::FaultApplied {
                    fault: f, targets, ..
                } if f == fault => Some(targets),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The observation's start and end (the run's notes), else the first and last event.
    pub fn observation(&self) -> (Nanos, Nanos) {
        let events = self.events();
        let note = |wanted: &str| {
            events.iter().find_map(|e| match &e.kind {
                EventKind::Note { text } if text == wanted => Some(e.at),
                _ => None,
            })
        };
        let first = events.first().map_or(0, |e| e.at);
        let last = events.last().map_or(0, |e| e.at);
        (
            note("observation starts").unwrap_or(first),
            note("observation ends").unwrap_or(last),
        )
    }

    /// The last measurement with this name.
    pub fn measurement(&self, name: &str) -> Option<f64> {
        self.events().into_iter().rev().find_map(|e| match e.kind {
            EventKind::Measurement { name: n, value, .. } if n == name => Some(value),
            _ => None,
        })
    }
}
