//! Parse, don't validate: one step from the file form ([`super::file`]) to the typed
//! [`Plan`]. Every reference becomes an id, every kind gets exactly its fields, and every
//! problem is reported with the place it is about. Runs before anything starts; no I/O.

pub(crate) mod expectations;
mod faults;
mod machines;
pub(crate) mod per_replica;
mod probes;
mod services;
mod sick_link;

use super::file::{self, Ref};
use super::plan::{Plan, Service, ServiceId};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// Where a problem is: a byte range, or the name of the table it is in (found in the text later).
pub(crate) enum Anchor {
    Span(Range<usize>),
    Name(String),
}

/// A problem, and where it is: what the resolver returns, made a [`ScenarioError`] with the
/// file:line:column of its anchor by `load` (a file) or the builder (the caller's code).
///
/// [`ScenarioError`]: super::ScenarioError
pub(crate) struct Invalid {
    /// Where the problem is.
    pub anchor: Anchor,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Invalid {
    pub(super) fn new(anchor: Anchor, message: impl Into<String>) -> Self {
        Invalid {
            anchor,
            message: message.into(),
        }
    }
}

/// Ids by name, for one kind of thing; a lookup that fails names what exists.
pub(super) struct Names<Id> {
    what: &'static str,
    ids: HashMap<String, Id>,
    order: Vec<String>,
}

impl<Id: Copy> Names<Id> {
    fn new<'a>(
        what: &'static str,
        names: impl Iterator<Item = &'a str>,
        id: fn(usize) -> Id,
    ) -> Self {
        let order: Vec<String> = names.map(str::to_string).collect();
        let ids = order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), id(i)))
            .collect();
        Names { what, ids, order }
    }

    /// The id `r` names, or an error at `r` listing the known names.
    pub(super) fn get(&self, r: &Ref) -> Result<Id, Invalid> {
        self.ids.get(r.get_ref()).copied().ok_or_else(|| {
            Invalid::new(
                Anchor::Span(r.span()),
                format!(
                    "unknown {} `{}`; expected one of: {}",
                    self.what,
                    r.get_ref(),
                    self.order.join(", ")
                ),
            )
        })
    }
}

/// The plan's services by name.
pub(super) fn service_names(services: &[Service]) -> Names<ServiceId> {
    Names::new(
        "service",
        services.iter().map(|x| x.name.as_str()),
        ServiceId,
    )
}

/// The one way from a scenario file's content to a plan.
pub(crate) fn resolve(s: &file::Scenario) -> Result<Plan, Invalid> {
    let s = &machines_first(s);
    unique_names(s)?;
    let mut services = services::resolve(s)?;
    let machines = machines::resolve(s, &services)?;
    machines::place(s, &mut services, &machines)?;
    let probes = probes::resolve(s, &services)?;
    let faults = faults::resolve(s, &services)?;
    let expectations = expectations::resolve(s, &probes, &faults)?;
    Ok(Plan {
        name: s.name.clone(),
        incident: s.incident.clone(),
        variant: s.variant.clone(),
        summary: s.summary.clone(),
        duration: s.duration,
        seed: s.seed,
        services,
        probes,
        faults,
        expectations,
        machines,
        secrets: s.topology.compose_secrets.clone(),
        notes: s.topology.notes.clone(),
    })
}

/// The topology with its `machine` services first (stable otherwise): what is placed on a
/// machine is brought up after it, wherever the file declares it.
fn machines_first(s: &file::Scenario) -> file::Scenario {
    let mut s = s.clone();
    let is_machine = |x: &file::Service| x.preset == Some(file::Preset::Machine);
    let (mut machines, rest): (Vec<_>, Vec<_>) =
        s.topology.services.into_iter().partition(is_machine);
    machines.extend(rest);
    s.topology.services = machines;
    s
}

/// Services, probes and faults each have unique names of a-z, 0-9 and -.
fn unique_names(s: &file::Scenario) -> Result<(), Invalid> {
    let services = s.topology.services.iter().map(|x| x.name.as_str());
    let probes = s.probes.iter().map(|x| x.name.as_str());
    let faults = s.faults.iter().map(|x| x.name.as_str());
    let groups: [(&str, Vec<&str>); 3] = [
        ("service", services.collect()),
        ("probe", probes.collect()),
        ("fault", faults.collect()),
    ];
    for (what, names) in groups {
        let mut seen = HashSet::new();
        for n in names {
            let problem = if !seen.insert(n) {
                format!("two {what}s are named `{n}`; names must be unique")
            } else if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                format!("{what} name `{n}` must be non-empty and use only a-z, 0-9 and -")
            } else {
                continue;
            };
            return Err(Invalid::new(Anchor::Name(n.to_string()), problem));
        }
    }
    Ok(())
}

/// An error about the table named `name`.
pub(super) fn at_name(name: &str, message: String) -> Invalid {
    Invalid::new(Anchor::Name(name.to_string()), message)
}

/// An error at a reference's place in the file.
pub(super) fn at_ref(r: &Ref, message: String) -> Invalid {
    Invalid::new(Anchor::Span(r.span()), message)
}
