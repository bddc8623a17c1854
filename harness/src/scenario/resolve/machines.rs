//! Machines and placement: every replica of a `machine` service and every
//! `[[topology.machine]]` (an engine by URL) is a machine; a service's `machine` key places
//! its replicas on them, one replica of a service per machine (placed services use the
//! machine's network, so two replicas of one service there would want the same ports).

use super::{at_name, Invalid};
use crate::scenario::engine_url::EngineUrl;
use crate::scenario::file::{self, MachineField};
use crate::scenario::plan::{Machine, MachineEngine, MachineId, Service, ServiceKind};
use std::collections::HashMap;

/// The plan's machines: the `machine` services' replicas, then the engines given by URL.
pub(super) fn resolve(s: &file::Scenario, services: &[Service]) -> Result<Vec<Machine>, Invalid> {
    let mut machines = vec![];
    for svc in services
        .iter()
        .filter(|x| matches!(x.kind, ServiceKind::Machine(_)))
    {
        for r in &svc.replicas {
            machines.push((r.clone(), MachineEngine::Started(svc.id)));
        }
    }
    for m in &s.topology.machines {
        let bad = |p: String| at_name(&m.name, format!("machine `{}`: {p}", m.name));
        if m.name.is_empty()
            || !m
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(bad(
                "a name must be non-empty and use only a-z, 0-9 and -".into()
            ));
        }
        let url = EngineUrl::parse(
            &m.url,
            m.tls.clone().map(Into::into),
            m.ssh_key.clone().map(Into::into),
        )
        .map_err(bad)?;
        let address = match (&m.address, url.host()) {
            (Some(a), _) => a.clone(),
            (None, Some(h)) => h.to_string(),
            (None, None) => {
                return Err(bad(
                    "a unix:// engine needs `address`: where what runs on it is reached".into(),
                ))
            }
        };
        machines.push((m.name.clone(), MachineEngine::Url { url, address }));
    }
    let mut seen = HashMap::new();
    for (name, _) in &machines {
        if seen.insert(name.clone(), ()).is_some() {
            return Err(at_name(name, format!("two machines are named `{name}` (a `[[topology.machine]]` and a replica of a machine service, or two tables); names must be unique")));
        }
    }
    Ok(machines
        .into_iter()
        .enumerate()
        .map(|(i, (name, engine))| Machine {
            id: MachineId(i),
            name,
            engine,
        })
        .collect())
}

/// Places the services whose `machine` names machines: one machine per replica.
pub(super) fn place(
    s: &file::Scenario,
    services: &mut [Service],
    machines: &[Machine],
) -> Result<(), Invalid> {
    for (i, svc) in s.topology.services.iter().enumerate() {
        let Some(MachineField::On(names)) = &svc.machine else {
            continue;
        };
        let placement = placement(&services[i], names, machines, services)
            .map_err(|p| at_name(&svc.name, format!("service `{}`: {p}", svc.name)))?;
        services[i].placement = placement;
    }
    Ok(())
}

fn placement(
    svc: &Service,
    names: &[String],
    machines: &[Machine],
    services: &[Service],
) -> Result<Vec<MachineId>, String> {
    if matches!(svc.kind, ServiceKind::Attached(_)) {
        return Err("an attached service runs where it was started; it takes no `machine`".into());
    }
    if svc.disk.is_some() {
        return Err("a disk is a loop device of the harness's host: a service placed on a machine cannot have one (yet)".into());
    }
    let known: Vec<&str> = machines.iter().map(|m| m.name.as_str()).collect();
    if known.is_empty() {
        return Err("`machine` names a machine, but the topology has none: add a `preset = \"machine\"` service or a `[[topology.machine]]` with its engine's URL".into());
    }
    if names.len() != svc.replicas.len() && names.len() != 1 {
        return Err(format!(
            "{} machines for {} replicas: give one machine per replica",
            names.len(),
            svc.replicas.len()
        ));
    }
    if names.len() == 1 && svc.replicas.len() > 1 {
        return Err(format!("{} replicas on one machine (`{}`): a placed service uses the machine's network, so each replica needs a machine of its own: `machine = [\"a\", \"b\", …]`", svc.replicas.len(), names[0]));
    }
    let mut ids = vec![];
    for n in names {
        let m = machines.iter().find(|m| &m.name == n).ok_or_else(|| {
            format!(
                "unknown machine `{n}`; expected one of: {}",
                known.join(", ")
            )
        })?;
        if ids.contains(&m.id) {
            return Err(format!(
                "two replicas on machine `{n}`: each replica needs a machine of its own"
            ));
        }
        if let MachineEngine::Started(owner) = m.engine {
            if owner.0 > svc.id.0 {
                return Err(format!("it runs on `{n}`, a machine of service `{}` declared after it; declare the machines first", services[owner.0].name));
            }
        }
        ids.push(m.id);
    }
    Ok(ids)
}
