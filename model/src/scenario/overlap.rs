//! Whether a run may share the machine with another run: what its expectations measure.
//!
//! A run that
//! judges milliseconds or the machine's load — an exit skew, a latency ratio, a
//! probe that must never fail within a timeout under [`COARSE_TIMEOUT`] (one timeout fails
//! it), a measurement's upper bound above zero (a time, maybe), a clock's offset, any budget
//! under [`COARSE`] — runs alone. A run that judges only budgets of seconds and what data survived
//! (recovery within 20 s, lost writes, a unit's state) may overlap one other such run: a
//! second run on the machine slows it by far less than its budgets. Such a run on machines
//! (engines of their own, Docker-in-Docker or by URL) may overlap one such run without
//! machines, never another run on machines: fleets of engines starting and loading images side
//! by side made the harness fall behind (258–495 ms) in CI. The runtime turns this into the
//! run lock's mode (`harness/src/lock.rs`).

use super::plan::{Expect, FaultKind, Plan};
use std::time::Duration;

/// The shortest budget a run that shares the machine may judge.
pub const COARSE: Duration = Duration::from_secs(5);

/// The shortest probe timeout a never-fails judgement on a shared machine may rest on: a
/// second run's load delays an answer by milliseconds to tens of them, not seconds.
pub const COARSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a run may overlap another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlap {
    /// It runs alone on the machine, for the reason given (the expectation that needs it).
    Alone(String),
    /// It judges nothing a second run could change: it may share the machine.
    Shared,
    /// As [`Overlap::Shared`], on machines of its own: it may share the host with one run
    /// without machines, never with another run on machines.
    Machines,
}

/// Whether `plan` may share the machine (see the module's documentation).
pub fn overlap(plan: &Plan) -> Overlap {
    for (i, e) in plan.expectations.iter().enumerate() {
        if let Some(why) = needs_the_machine(plan, &e.kind) {
            let title = e.title.clone().unwrap_or_else(|| {
                let kind: &'static str = super::plan::ExpectationKind::from(&e.kind).into();
                format!("expectation {} ({kind})", i + 1)
            });
            return Overlap::Alone(format!("{title}: {why}"));
        }
    }
    match plan.machines.is_empty() {
        true => Overlap::Shared,
        false => Overlap::Machines,
    }
}

/// Why the expectation `e` of `plan` needs the machine to itself, if it does.
fn needs_the_machine(plan: &Plan, e: &Expect) -> Option<String> {
    use Expect::*;
    let short = |what: &str, d: &Duration| {
        (*d < COARSE).then(|| format!("a {what} of {d:?}, under {COARSE:?}"))
    };
    match e {
        Simultaneous { .. } => Some("measures an exit skew in milliseconds".into()),
        LatencyRises { .. } | LatencyStaysWithin { .. } | WarmUpWithin { .. } => {
            Some("compares latencies with their baseline".into())
        }
        NoErrors { .. } => Some("one request late under another run's load fails it".into()),
        NeverFails { probe, .. } => {
            let timeout = plan.probe(*probe).timeout;
            (timeout < COARSE_TIMEOUT).then(|| {
                format!("one probe timeout ({timeout:?}, under {COARSE_TIMEOUT:?}) under another run's load would fail it")
            })
        }
        // Another run's load only makes a time larger and leaves a count as it is: a lower
        // bound holds on a shared machine, and so does "none" (no time is bounded by zero: a
        // count of corrupt records, say); an upper bound above zero may not.
        Measurement { at_most, .. } => at_most
            .is_some_and(|m| m > 0.0)
            .then(|| "judges a measured number's upper bound".into()),
        FaultVerified { fault } => verifies_milliseconds(&plan.fault(*fault).kind),
        RecoversWithin { budget, .. }
        | CompletesWithin { budget, .. }
        | RestartedWithin { budget, .. }
        | OomKillWithin { budget, .. }
        | OutageWithin { budget, .. }
        | MeasuredWithin { budget, .. } => short("budget", budget),
        FailsDuring { .. }
        | StaysDown { .. }
        | NoLostWrites { .. }
        | LosesWrites { .. }
        | OrderedPrefix { .. }
        | EndsFailing { .. }
        | ContainersSurvive { .. }
        | UnitReaches { .. } => None,
    }
}

/// Why verifying a fault of `kind` needs the machine to itself, if it does. A sick link's
/// verification, and a sick disk's, ask for at least a latency: another run's load only adds
/// to it.
fn verifies_milliseconds(kind: &FaultKind) -> Option<String> {
    use FaultKind::*;
    match kind {
        Clock { .. } => Some("verifies a clock offset to milliseconds".into()),
        Kill { .. }
        | Restart { .. }
        | RollingRestart { .. }
        | PowerCut { .. }
        | Leak { .. }
        | DaemonCrash { .. }
        | Pause { .. }
        | Stop { .. }
        | Partition { .. }
        | MachinePartition { .. }
        | Netem { .. }
        | Cut { .. }
        | SickLink { .. }
        | DiskLatency { .. }
        | DiskError { .. }
        | DiskFull { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(path: &str) -> Plan {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        crate::scenario::load(&root.join(path)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_run_that_measures_an_exit_skew_runs_alone_and_says_why() {
        let Overlap::Alone(why) = overlap(&scenario("scenarios/zookeeper-quorum-as-it-was.toml"))
        else {
            panic!("an exit skew of 10 ms is judged: it must run alone")
        };
        assert!(why.contains("exit skew"), "{why}");
    }

    #[test]
    fn runs_that_judge_seconds_and_data_may_share_the_machine() {
        for file in [
            "scenarios/postgres-power-cut-fsync-on.toml",
            "scenarios/postgres-power-cut-fsync-off.toml",
        ] {
            assert_eq!(overlap(&scenario(file)), Overlap::Shared, "{file}");
        }
        assert_eq!(
            overlap(&scenario("scenarios/daemon-restart-as-it-was.toml")),
            Overlap::Machines,
            "a run on machines judging seconds shares the host, never with another on machines"
        );
        let Overlap::Alone(why) = overlap(&scenario("scenarios/daemon-restart-live-restore.toml"))
        else {
            panic!("a probe timeout under 2 s needs the machine alone")
        };
        assert!(why.contains("probe timeout"), "{why}");
    }

    #[test]
    fn latency_clock_and_short_budgets_run_alone() {
        for file in [
            "scenarios/cache-oom-remediated.toml",
            "scenarios/examples/clock-jump.toml",
        ] {
            assert!(
                matches!(overlap(&scenario(file)), Overlap::Alone(_)),
                "{file}"
            );
        }
        let mut plan = scenario("scenarios/postgres-power-cut-fsync-on.toml");
        for e in &mut plan.expectations {
            if let Expect::RecoversWithin { budget, .. } = &mut e.kind {
                *budget = Duration::from_secs(2);
            }
        }
        let Overlap::Alone(why) = overlap(&plan) else {
            panic!("a 2 s recovery budget must run alone")
        };
        assert!(why.contains("budget of 2s"), "{why}");
    }

    #[test]
    fn never_fails_runs_alone_only_on_a_short_timeout_and_a_measurement_on_an_upper_bound() {
        let mut plan = scenario("tests/fixtures/compose-keys/keys.toml");
        assert_eq!(overlap(&plan), Overlap::Shared, "3 s probe timeouts");
        plan.probes[0].timeout = Duration::from_millis(500);
        let Overlap::Alone(why) = overlap(&plan) else {
            panic!("a never-fails on a 500 ms timeout must run alone")
        };
        assert!(why.contains("500ms"), "{why}");
        let as_it_was = scenario("scenarios/datastore-power-cut-as-it-was.toml");
        let counts = as_it_was.expectations.iter().all(|e| match &e.kind {
            Expect::Measurement { at_most, .. } => at_most.is_none_or(|m| m == 0.0),
            _ => true,
        });
        assert!(counts, "lower bounds, or none of a count");
        assert_eq!(overlap(&as_it_was), Overlap::Shared);
        let Overlap::Alone(why) =
            overlap(&scenario("scenarios/datastore-power-cut-remediated.toml"))
        else {
            panic!("an upper bound on a restart time must run alone")
        };
        assert!(why.contains("upper bound"), "{why}");
    }
}
