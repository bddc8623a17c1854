//! Expectations: the probe and fault they judge (resolved to ids, of a kind that can give what
//! the check reads) and exactly the budget their kind needs.

use super::{Anchor, Invalid, Names};
use crate::scenario::file::{self, ExpectationKind as K};
use crate::scenario::kinds::one_of;
use crate::scenario::plan::{Expect, Expectation, Fault, FaultId, Probe, ProbeId, ProbeKind};
use std::time::Duration;

pub(super) fn resolve(
    s: &file::Scenario,
    probes: &[Probe],
    faults: &[Fault],
) -> Result<Vec<Expectation>, Invalid> {
    let probe_ids = Names::new("probe", probes.iter().map(|x| x.name.as_str()), ProbeId);
    let fault_ids = Names::new("fault", faults.iter().map(|x| x.name.as_str()), FaultId);
    s.expectations
        .iter()
        .map(|e| {
            let fields = Fields {
                e,
                probe: e.probe.as_ref().map(|p| probe_ids.get(p)).transpose()?,
                fault: e.fault.as_ref().map(|f| fault_ids.get(f)).transpose()?,
            };
            let kind = fields.expect()?;
            fields.fits(&kind, probes, faults)?;
            Ok(Expectation {
                title: e.title.clone(),
                kind,
            })
        })
        .collect()
}

/// One expectation's fields, each taken only where its kind needs it.
struct Fields<'a> {
    e: &'a file::Expectation,
    probe: Option<ProbeId>,
    fault: Option<FaultId>,
}

impl Fields<'_> {
    fn anchor(&self) -> Anchor {
        match (&self.e.probe, &self.e.fault) {
            (Some(r), _) | (None, Some(r)) => Anchor::Span(r.span()),
            (None, None) => Anchor::Name(self.e.kind.name().to_string()),
        }
    }

    fn missing(&self, field: &str) -> Invalid {
        Invalid::new(
            self.anchor(),
            format!("expectation {} needs `{field}`", self.e.kind),
        )
    }

    fn probe(&self) -> Result<ProbeId, Invalid> {
        self.probe.ok_or_else(|| self.missing("probe"))
    }
    fn fault(&self) -> Result<FaultId, Invalid> {
        self.fault.ok_or_else(|| self.missing("fault"))
    }
    fn budget(&self) -> Result<Duration, Invalid> {
        self.e.budget.ok_or_else(|| self.missing("budget"))
    }
    fn min(&self) -> Result<Duration, Invalid> {
        self.e.min.ok_or_else(|| self.missing("min"))
    }
    fn text(&self, field: &str, value: &Option<String>) -> Result<String, Invalid> {
        value.clone().ok_or_else(|| self.missing(field))
    }
    fn ratio(&self) -> Result<f64, Invalid> {
        self.e.ratio.ok_or_else(|| self.missing("ratio"))
    }

    /// The typed expectation, or the first field its kind needs and lacks (in the order the
    /// fields are written here: probe, fault, then the kind's own).
    fn expect(&self) -> Result<Expect, Invalid> {
        use Expect as X;
        self.ratios()?;
        Ok(match self.e.kind {
            K::FailsDuring => X::FailsDuring {
                probe: self.probe()?,
                fault: self.fault()?,
                min: self.min()?,
            },
            K::RecoversWithin => X::RecoversWithin {
                probe: self.probe()?,
                fault: self.fault()?,
                budget: self.budget()?,
            },
            K::NeverFails => X::NeverFails {
                probe: self.probe()?,
                fault: self.fault,
            },
            K::StaysDown => X::StaysDown {
                probe: self.probe()?,
                fault: self.fault()?,
                min: self.min()?,
            },
            K::NoLostWrites => X::NoLostWrites {
                probe: self.probe()?,
            },
            K::LosesWrites => X::LosesWrites {
                probe: self.probe()?,
                at_least: self.e.at_least.unwrap_or(1.0),
            },
            K::OrderedPrefix => X::OrderedPrefix {
                probe: self.probe()?,
            },
            K::Simultaneous => X::Simultaneous {
                fault: self.fault()?,
                budget: self.budget()?,
            },
            K::CompletesWithin => X::CompletesWithin {
                fault: self.fault()?,
                budget: self.budget()?,
            },
            K::RestartedWithin => X::RestartedWithin {
                fault: self.fault()?,
                budget: self.budget()?,
            },
            K::OomKillWithin => self.oom_kill_within()?,
            K::LatencyRises => X::LatencyRises {
                probe: self.probe()?,
                fault: self.fault()?,
                ratio: self.ratio()?,
            },
            K::LatencyStaysWithin => X::LatencyStaysWithin {
                probe: self.probe()?,
                fault: self.fault()?,
                ratio: self.ratio()?,
            },
            K::WarmUpWithin => self.warm_up_within()?,
            K::NoErrors => X::NoErrors {
                probe: self.probe()?,
            },
            K::EndsFailing => X::EndsFailing {
                probe: self.probe()?,
                matching: self.text("matching", &self.e.matching)?,
            },
            K::OutageWithin => X::OutageWithin {
                probe: self.probe()?,
                fault: self.fault()?,
                budget: self.budget()?,
            },
            K::MeasuredWithin => self.measured_within()?,
            K::Measurement => self.measurement()?,
            K::ContainersSurvive => X::ContainersSurvive {
                fault: self.fault()?,
            },
            K::UnitReaches => self.unit_reaches()?,
            K::FaultVerified => X::FaultVerified {
                fault: self.fault()?,
            },
        })
    }

    /// `ratio` above 0 and `hit_fraction` 0 to 1, whatever the kind.
    fn ratios(&self) -> Result<(), Invalid> {
        let e = self.e;
        if e.ratio.is_some_and(|r| r <= 0.0 || !r.is_finite())
            || e.hit_fraction.is_some_and(|h| !(0.0..=1.0).contains(&h))
        {
            let kind = e.kind;
            let problem = format!("{kind}: `ratio` must be above 0 and `hit_fraction` 0 to 1");
            return Err(Invalid::new(self.anchor(), problem));
        }
        Ok(())
    }

    fn oom_kill_within(&self) -> Result<Expect, Invalid> {
        Ok(Expect::OomKillWithin {
            fault: self.fault()?,
            budget: self.budget()?,
            victim: self.text("victim", &self.e.victim)?,
        })
    }

    fn warm_up_within(&self) -> Result<Expect, Invalid> {
        Ok(Expect::WarmUpWithin {
            probe: self.probe()?,
            fault: self.fault()?,
            budget: self.budget()?,
            hit_fraction: self.e.hit_fraction.unwrap_or(0.9),
            ratio: self.e.ratio.unwrap_or(2.0),
        })
    }

    fn measured_within(&self) -> Result<Expect, Invalid> {
        Ok(Expect::MeasuredWithin {
            fault: self.fault()?,
            budget: self.budget()?,
            prefix: self.text("measurement", &self.e.measurement)?,
        })
    }

    fn unit_reaches(&self) -> Result<Expect, Invalid> {
        Ok(Expect::UnitReaches {
            fault: self.fault()?,
            unit: self.text("unit", &self.e.unit)?,
            matching: self.text("matching", &self.e.matching)?,
        })
    }

    /// A bound on a named measurement: its name, and at least one of the bounds.
    fn measurement(&self) -> Result<Expect, Invalid> {
        let e = self.e;
        let name = self.text("measurement", &e.measurement)?;
        if e.at_most.is_none() && e.at_least.is_none() {
            let problem = "expectation measurement needs `at_most` and/or `at_least`";
            return Err(Invalid::new(self.anchor(), problem));
        }
        Ok(Expect::Measurement {
            name,
            at_least: e.at_least,
            at_most: e.at_most,
        })
    }

    /// The probe and fault are of kinds that give what the check reads.
    fn fits(&self, kind: &Expect, probes: &[Probe], faults: &[Fault]) -> Result<(), Invalid> {
        use Expect as X;
        let probe = self.probe.map(|p| &probes[p.0].kind);
        let problem = match kind {
            X::LatencyRises { .. }
            | X::LatencyStaysWithin { .. }
            | X::WarmUpWithin { .. }
            | X::NoErrors { .. } => (!matches!(probe, Some(ProbeKind::Load(_))))
                .then(|| format!("needs a {} probe", file::ProbeKind::Load)),
            X::NoLostWrites { .. } | X::LosesWrites { .. } | X::OrderedPrefix { .. } => {
                let writers = one_of(file::ProbeKind::all().filter(|k| k.writes()));
                (!probe.is_some_and(ProbeKind::writes))
                    .then(|| format!("needs a write probe ({writers})"))
            }
            X::FaultVerified { fault } => {
                let verified = one_of(file::FaultKind::all().filter(|k| k.verified()));
                (!faults[fault.0].kind.verified()).then(|| format!("needs a {verified} fault"))
            }
            X::FailsDuring { .. }
            | X::RecoversWithin { .. }
            | X::NeverFails { .. }
            | X::StaysDown { .. }
            | X::Simultaneous { .. }
            | X::CompletesWithin { .. }
            | X::RestartedWithin { .. }
            | X::OomKillWithin { .. }
            | X::EndsFailing { .. }
            | X::OutageWithin { .. }
            | X::MeasuredWithin { .. }
            | X::Measurement { .. }
            | X::ContainersSurvive { .. }
            | X::UnitReaches { .. } => None,
        };
        match problem {
            Some(problem) => Err(Invalid::new(
                self.anchor(),
                format!("{} {problem}", self.e.kind),
            )),
            None => Ok(()),
        }
    }
}

/// The typed expectation of a file form whose probe and fault (if named) are the first ones:
/// for the checkers' tests, which judge hand-built timelines without a whole scenario.
#[cfg(test)]
pub(crate) fn typed(e: &file::Expectation) -> Expect {
    let fields = Fields {
        e,
        probe: e.probe.as_ref().map(|_| ProbeId(0)),
        fault: e.fault.as_ref().map(|_| FaultId(0)),
    };
    fields.expect().unwrap_or_else(|e| panic!("{}", e.message))
}
