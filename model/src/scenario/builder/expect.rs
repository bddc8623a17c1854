//! Expectations for the builder: one constructor per kind, taking the handles it judges.

use super::{FaultRef, Handle, ProbeRef};
use crate::scenario::file::{self, ExpectationKind as K};
use std::time::Duration;

/// An expectation to add to an [`super::Experiment`]: an invariant with a budget.
#[derive(Debug, Clone)]
pub struct Expect {
    pub(super) file: file::Expectation,
    probe: Option<Handle>,
    fault: Option<Handle>,
}

impl Expect {
    fn new(kind: K, probe: Option<&ProbeRef>, fault: Option<&FaultRef>) -> Self {
        let mut file = file::Expectation::new(kind);
        file.probe = probe.map(|p| file::reference(&p.name));
        file.fault = fault.map(|f| file::reference(&f.name));
        Expect {
            file,
            probe: probe.map(Handle::from),
            fault: fault.map(Handle::from),
        }
    }

    pub(super) fn handles(&self) -> impl Iterator<Item = &Handle> {
        self.probe.iter().chain(self.fault.iter())
    }

    fn budget(mut self, budget: Duration) -> Self {
        self.file.budget = Some(budget);
        self
    }

    fn min(mut self, min: Duration) -> Self {
        self.file.min = Some(min);
        self
    }

    /// The report's words for this expectation.
    pub fn title(mut self, title: &str) -> Self {
        self.file.title = Some(title.into());
        self
    }

    /// The probe failed without interruption for at least `min` while the fault was in effect.
    pub fn fails_during(probe: &ProbeRef, fault: &FaultRef, min: Duration) -> Self {
        Self::new(K::FailsDuring, Some(probe), Some(fault)).min(min)
    }

    /// After the fault healed, the probe succeeds again (and stays up) within `budget`.
    pub fn recovers_within(probe: &ProbeRef, fault: &FaultRef, budget: Duration) -> Self {
        Self::new(K::RecoversWithin, Some(probe), Some(fault)).budget(budget)
    }

    /// The probe never failed during the run.
    pub fn never_fails(probe: &ProbeRef) -> Self {
        Self::new(K::NeverFails, Some(probe), None)
    }

    /// The probe never failed from the fault's start on.
    pub fn never_fails_from(probe: &ProbeRef, fault: &FaultRef) -> Self {
        Self::new(K::NeverFails, Some(probe), Some(fault))
    }

    /// After the fault healed the probe kept failing for at least `min`.
    pub fn stays_down(probe: &ProbeRef, fault: &FaultRef, min: Duration) -> Self {
        Self::new(K::StaysDown, Some(probe), Some(fault)).min(min)
    }

    /// The probe's longest outage from the fault's start on is at most `budget`.
    pub fn outage_within(probe: &ProbeRef, fault: &FaultRef, budget: Duration) -> Self {
        Self::new(K::OutageWithin, Some(probe), Some(fault)).budget(budget)
    }

    /// Every acknowledged write of a write probe is present at the end.
    pub fn no_lost_writes(probe: &ProbeRef) -> Self {
        Self::new(K::NoLostWrites, Some(probe), None)
    }

    /// At least `at_least` acknowledged writes are gone at the end.
    pub fn loses_writes(probe: &ProbeRef, at_least: u64) -> Self {
        let mut e = Self::new(K::LosesWrites, Some(probe), None);
        e.file.at_least = Some(at_least as f64);
        e
    }

    /// The records read back are in write order, losses in one stretch.
    pub fn ordered_prefix(probe: &ProbeRef) -> Self {
        Self::new(K::OrderedPrefix, Some(probe), None)
    }

    /// The killed processes exited within `budget` of each other.
    pub fn simultaneous(fault: &FaultRef, budget: Duration) -> Self {
        Self::new(K::Simultaneous, None, Some(fault)).budget(budget)
    }

    /// The fault (a rolling restart) finished within `budget`.
    pub fn completes_within(fault: &FaultRef, budget: Duration) -> Self {
        Self::new(K::CompletesWithin, None, Some(fault)).budget(budget)
    }

    /// The fault was verified on the system: it took effect, then it healed.
    pub fn fault_verified(fault: &FaultRef) -> Self {
        Self::new(K::FaultVerified, None, Some(fault))
    }

    /// The fault's target was started again within `budget` of dying.
    pub fn restarted_within(fault: &FaultRef, budget: Duration) -> Self {
        Self::new(K::RestartedWithin, None, Some(fault)).budget(budget)
    }

    /// The leak ended in an OOM kill of the process `victim` within `budget`.
    pub fn oom_kill_within(fault: &FaultRef, budget: Duration, victim: &str) -> Self {
        let mut e = Self::new(K::OomKillWithin, None, Some(fault)).budget(budget);
        e.file.victim = Some(victim.into());
        e
    }

    /// While the fault's target was down, the load probe's p99 rose to `ratio` × baseline.
    pub fn latency_rises(probe: &ProbeRef, fault: &FaultRef, ratio: f64) -> Self {
        let mut e = Self::new(K::LatencyRises, Some(probe), Some(fault));
        e.file.ratio = Some(ratio);
        e
    }

    /// From the fault on, the load probe's p99 stayed within `ratio` × baseline.
    pub fn latency_stays_within(probe: &ProbeRef, fault: &FaultRef, ratio: f64) -> Self {
        let mut e = Self::new(K::LatencyStaysWithin, Some(probe), Some(fault));
        e.file.ratio = Some(ratio);
        e
    }

    /// After the fault's target started again, the load probe was warm within `budget`: hit
    /// ratio ≥ 0.9 × baseline and p99 ≤ 2 × baseline (see [`Expect::hit_fraction`] and
    /// [`Expect::ratio`]).
    pub fn warm_up_within(probe: &ProbeRef, fault: &FaultRef, budget: Duration) -> Self {
        Self::new(K::WarmUpWithin, Some(probe), Some(fault)).budget(budget)
    }

    /// The hit ratio that counts as warm, as a fraction of the baseline's (warm-up-within).
    pub fn hit_fraction(mut self, fraction: f64) -> Self {
        self.file.hit_fraction = Some(fraction);
        self
    }

    /// The latency ratio to the baseline p99 (warm-up-within: at most).
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.file.ratio = Some(ratio);
        self
    }

    /// A measurement's smallest required value too (with [`Expect::measurement_at_most`]).
    pub fn at_least(mut self, at_least: f64) -> Self {
        self.file.at_least = Some(at_least);
        self
    }

    /// No request of the load probe failed.
    pub fn no_errors(probe: &ProbeRef) -> Self {
        Self::new(K::NoErrors, Some(probe), None)
    }

    /// The probe's last samples all fail with a detail containing `matching`.
    pub fn ends_failing(probe: &ProbeRef, matching: &str) -> Self {
        let mut e = Self::new(K::EndsFailing, Some(probe), None);
        e.file.matching = Some(matching.into());
        e
    }

    /// Every measurement `<fault>/<prefix>…` is at most `budget`.
    pub fn measured_within(fault: &FaultRef, prefix: &str, budget: Duration) -> Self {
        let mut e = Self::new(K::MeasuredWithin, None, Some(fault)).budget(budget);
        e.file.measurement = Some(prefix.into());
        e
    }

    /// No container inside a machine died from the fault on (live-restore).
    pub fn containers_survive(fault: &FaultRef) -> Self {
        Self::new(K::ContainersSurvive, None, Some(fault))
    }

    /// After the fault, a machine unit reached a state containing `matching`.
    pub fn unit_reaches(fault: &FaultRef, unit: &str, matching: &str) -> Self {
        let mut e = Self::new(K::UnitReaches, None, Some(fault));
        (e.file.unit, e.file.matching) = (Some(unit.into()), Some(matching.into()));
        e
    }

    /// A named measurement (`<fault>/<what>`) is at most `at_most` (in its own unit).
    pub fn measurement_at_most(name: &str, at_most: f64) -> Self {
        let mut e = Self::new(K::Measurement, None, None);
        (e.file.measurement, e.file.at_most) = (Some(name.into()), Some(at_most));
        e
    }

    /// A named measurement is at least `at_least` (in its own unit).
    pub fn measurement_at_least(name: &str, at_least: f64) -> Self {
        let mut e = Self::new(K::Measurement, None, None);
        (e.file.measurement, e.file.at_least) = (Some(name.into()), Some(at_least));
        e
    }
}
