//! Expectations: the probe and fault they judge (resolved to ids, of a kind that can give what
//! the check reads) and exactly the budget their kind needs.

use super::{Anchor, Invalid, Names};
use crate::scenario::file::{self, ExpectationKind as K};
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
            (None, None) => Anchor::Name(kebab(self.e.kind)),
        }
    }

    fn missing(&self, field: &str) -> Invalid {
        (
            self.anchor(),
            format!("expectation {} needs `{field}`", kebab(self.e.kind)),
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

    /// The typed expectation, or the first field its kind needs and lacks.
    fn expect(&self) -> Result<Expect, Invalid> {
        let e = self.e;
        if e.ratio.is_some_and(|r| r <= 0.0 || !r.is_finite())
            || e.hit_fraction.is_some_and(|h| !(0.0..=1.0).contains(&h))
        {
            let kind = kebab(e.kind);
            let problem = format!("{kind}: `ratio` must be above 0 and `hit_fraction` 0 to 1");
            return Err((self.anchor(), problem));
        }
        match e.kind {
            K::NeverFails
            | K::NoLostWrites
            | K::LosesWrites
            | K::OrderedPrefix
            | K::NoErrors
            | K::EndsFailing => self.of_a_probe(),
            K::Simultaneous
            | K::CompletesWithin
            | K::RestartedWithin
            | K::OomKillWithin
            | K::MeasuredWithin
            | K::ContainersSurvive
            | K::FaultVerified
            | K::UnitReaches => self.of_a_fault(),
            K::Measurement => {
                let name = self.text("measurement", &e.measurement)?;
                if e.at_most.is_none() && e.at_least.is_none() {
                    let problem = "expectation measurement needs `at_most` and/or `at_least`";
                    return Err((self.anchor(), problem.into()));
                }
                Ok(Expect::Measurement {
                    name,
                    at_least: e.at_least,
                    at_most: e.at_most,
                })
            }
            _ => self.of_a_probe_during_a_fault(),
        }
    }

    /// Kinds that judge a probe alone.
    fn of_a_probe(&self) -> Result<Expect, Invalid> {
        let (e, probe) = (self.e, self.probe()?);
        Ok(match e.kind {
            K::NeverFails => Expect::NeverFails {
                probe,
                fault: self.fault,
            },
            K::LosesWrites => Expect::LosesWrites {
                probe,
                at_least: e.at_least.unwrap_or(1.0),
            },
            K::OrderedPrefix => Expect::OrderedPrefix { probe },
            K::NoErrors => Expect::NoErrors { probe },
            K::EndsFailing => Expect::EndsFailing {
                probe,
                matching: self.text("matching", &e.matching)?,
            },
            _ => Expect::NoLostWrites { probe },
        })
    }

    /// Kinds that judge what a fault did (or measured).
    fn of_a_fault(&self) -> Result<Expect, Invalid> {
        let (e, fault) = (self.e, self.fault()?);
        Ok(match e.kind {
            K::ContainersSurvive => Expect::ContainersSurvive { fault },
            K::FaultVerified => Expect::FaultVerified { fault },
            K::UnitReaches => Expect::UnitReaches {
                fault,
                unit: self.text("unit", &e.unit)?,
                matching: self.text("matching", &e.matching)?,
            },
            K::Simultaneous => Expect::Simultaneous {
                fault,
                budget: self.budget()?,
            },
            K::CompletesWithin => Expect::CompletesWithin {
                fault,
                budget: self.budget()?,
            },
            K::RestartedWithin => Expect::RestartedWithin {
                fault,
                budget: self.budget()?,
            },
            K::OomKillWithin => Expect::OomKillWithin {
                fault,
                budget: self.budget()?,
                victim: self.text("victim", &e.victim)?,
            },
            _ => Expect::MeasuredWithin {
                fault,
                budget: self.budget()?,
                prefix: self.text("measurement", &e.measurement)?,
            },
        })
    }

    /// Kinds that judge a probe while (or after) a fault is in effect.
    fn of_a_probe_during_a_fault(&self) -> Result<Expect, Invalid> {
        let (e, probe, fault) = (self.e, self.probe()?, self.fault()?);
        Ok(match e.kind {
            K::FailsDuring => Expect::FailsDuring {
                probe,
                fault,
                min: self.min()?,
            },
            K::StaysDown => Expect::StaysDown {
                probe,
                fault,
                min: self.min()?,
            },
            K::RecoversWithin => Expect::RecoversWithin {
                probe,
                fault,
                budget: self.budget()?,
            },
            K::OutageWithin => Expect::OutageWithin {
                probe,
                fault,
                budget: self.budget()?,
            },
            K::LatencyRises => Expect::LatencyRises {
                probe,
                fault,
                ratio: self.ratio()?,
            },
            K::LatencyStaysWithin => Expect::LatencyStaysWithin {
                probe,
                fault,
                ratio: self.ratio()?,
            },
            _ => Expect::WarmUpWithin {
                probe,
                fault,
                budget: self.budget()?,
                hit_fraction: e.hit_fraction.unwrap_or(0.9),
                ratio: e.ratio.unwrap_or(2.0),
            },
        })
    }

    /// The probe and fault are of kinds that give what the check reads.
    fn fits(&self, kind: &Expect, probes: &[Probe], faults: &[Fault]) -> Result<(), Invalid> {
        let probe = self.probe.map(|p| &probes[p.0].kind);
        let problem = match kind {
            Expect::LatencyRises { .. }
            | Expect::LatencyStaysWithin { .. }
            | Expect::WarmUpWithin { .. }
            | Expect::NoErrors { .. }
                if !matches!(probe, Some(ProbeKind::Load(_))) =>
            {
                "needs a load probe"
            }
            Expect::NoLostWrites { .. }
            | Expect::LosesWrites { .. }
            | Expect::OrderedPrefix { .. }
                if !probe.is_some_and(ProbeKind::writes) =>
            {
                "needs a write probe (zookeeper-write, datastore-append or postgres-insert)"
            }
            Expect::FaultVerified { fault } if !faults[fault.0].kind.verified() => {
                "needs a kill, restart, stop, pause, partition or netem fault"
            }
            _ => return Ok(()),
        };
        Err((self.anchor(), format!("{} {problem}", kebab(self.e.kind))))
    }
}

/// The kebab-case name of an expectation kind, as written in files.
fn kebab(kind: K) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
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
    fields
        .expect()
        .unwrap_or_else(|(_, message)| panic!("{message}"))
}
