//! Checks that go beyond the TOML grammar: every reference resolves, every fault and
//! expectation has what its kind needs. Runs before any container starts.

use super::{ExpectationKind, FaultKind, Preset, ProbeKind, Ref, Scenario, Select, Service};
use crate::engine::images::SERVICE_IMAGES;
use std::collections::HashSet;
use std::ops::Range;

/// Where a problem is: a byte range, or the name of the table it is in (found in the text later).
pub(crate) enum Anchor {
    Span(Range<usize>),
    Name(String),
}

type Invalid = (Anchor, String);

fn unknown(what: &str, r: &Ref, known: Vec<&str>) -> Invalid {
    (
        Anchor::Span(r.span()),
        format!(
            "unknown {what} `{}`; expected one of: {}",
            r.get_ref(),
            known.join(", ")
        ),
    )
}

/// Returns the first problem found, with the byte range it is about.
pub(crate) fn validate(s: &Scenario) -> Result<(), Invalid> {
    let services: Vec<&str> = s
        .topology
        .services
        .iter()
        .map(|x| x.name.as_str())
        .collect();
    let probes: Vec<&str> = s.probes.iter().map(|x| x.name.as_str()).collect();
    let faults: Vec<&str> = s.faults.iter().map(|x| x.name.as_str()).collect();
    for (what, names) in [
        ("service", &services),
        ("probe", &probes),
        ("fault", &faults),
    ] {
        let mut seen = HashSet::new();
        for n in names.iter() {
            if !seen.insert(*n) {
                return Err((
                    Anchor::Name(n.to_string()),
                    format!("two {what}s are named `{n}`; names must be unique"),
                ));
            }
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err((
                    Anchor::Name(n.to_string()),
                    format!("{what} name `{n}` must be non-empty and use only a-z, 0-9 and -"),
                ));
            }
        }
    }
    if s.topology.services.is_empty() {
        return Err((
            Anchor::Span(0..0),
            "the topology has no services; add a [[topology.service]] table".into(),
        ));
    }
    for svc in &s.topology.services {
        if svc.replicas == 0 || svc.replicas > 9 {
            return Err((
                Anchor::Name(svc.name.clone()),
                format!(
                    "service `{}`: replicas must be 1 to 9, not {}",
                    svc.name, svc.replicas
                ),
            ));
        }
        generic(svc)?;
        if svc.machine.is_some() && !svc.is(Preset::Machine) {
            return Err((
                Anchor::Name(svc.name.clone()),
                format!(
                    "service `{}`: `[topology.service.machine]` options need preset = \"machine\"",
                    svc.name
                ),
            ));
        }
        for u in &svc.uses {
            if s.service(u.get_ref()).is_none() || u.get_ref() == &svc.name {
                return Err(unknown("service", u, services.clone()));
            }
        }
        if svc.is(Preset::Datastore) && svc.disk.as_ref().map(|d| d.path.as_str()) != Some("/data")
        {
            return Err((
                Anchor::Name(svc.name.clone()),
                format!(
                    "service `{}` (datastore) needs `disk = {{ size_mb = 256, path = \"/data\" }}`",
                    svc.name
                ),
            ));
        }
        if let Some(d) = &svc.disk {
            if d.size_mb < 16 || !d.path.starts_with('/') {
                return Err((
                    Anchor::Name(svc.name.clone()),
                    format!(
                        "service `{}`: a disk needs size_mb ≥ 16 and an absolute path",
                        svc.name
                    ),
                ));
            }
        }
        let uses = |preset: Preset| {
            svc.uses
                .iter()
                .any(|u| s.service(u.get_ref()).is_some_and(|x| x.is(preset)))
        };
        if svc.is(Preset::ToyApi) && !uses(Preset::Zookeeper) && !uses(Preset::Postgres) {
            return Err((
                Anchor::Name(svc.name.clone()),
                format!(
                    "service `{}` (toy-api) must `uses` a zookeeper service (its configuration) or a postgres service (its items)",
                    svc.name
                ),
            ));
        }
        if svc.is(Preset::ToyApi) && uses(Preset::Memcached) && !uses(Preset::Postgres) {
            return Err((
                Anchor::Name(svc.name.clone()),
                format!(
                    "service `{}` (toy-api) uses memcached but no postgres: the cache needs a database behind it",
                    svc.name
                ),
            ));
        }
        if let Some(adj) = svc.oom_score_adj {
            if !(0..=1000).contains(&adj) {
                return Err((
                    Anchor::Name(svc.name.clone()),
                    format!(
                        "service `{}`: oom_score_adj must be 0 to 1000, not {adj} (this engine has no CAP_SYS_RESOURCE: negative values fail)",
                        svc.name
                    ),
                ));
            }
        }
        if svc.memory_mib.is_some_and(|m| m < 8) {
            return Err((
                Anchor::Name(svc.name.clone()),
                format!("service `{}`: memory_mib must be at least 8", svc.name),
            ));
        }
    }
    for p in &s.probes {
        let Some(svc) = s.service(p.target.get_ref()) else {
            return Err(unknown("service", &p.target, services.clone()));
        };
        let needs = match p.kind {
            ProbeKind::ZookeeperWrite | ProbeKind::ZookeeperMode => Some(Preset::Zookeeper),
            ProbeKind::DatastoreAppend => Some(Preset::Datastore),
            ProbeKind::PostgresInsert => Some(Preset::Postgres),
            ProbeKind::Http | ProbeKind::Load | ProbeKind::Tcp | ProbeKind::Exec => None,
            ProbeKind::ConsulKv
            | ProbeKind::ConsulLeader
            | ProbeKind::Registry
            | ProbeKind::RegistryPull => Some(Preset::Machine),
        };
        // A generic service may speak any protocol; a preset speaks its own.
        if let (Some(preset), Some(has)) = (needs, svc.preset) {
            if has != preset {
                return Err((
                    Anchor::Span(p.target.span()),
                    format!(
                        "probe `{}` ({:?}) needs a {:?} service, but `{}` is {:?}",
                        p.name, p.kind, preset, svc.name, has
                    ),
                ));
            }
        }
        let generic_probe = matches!(p.kind, ProbeKind::Http | ProbeKind::Tcp | ProbeKind::Exec);
        let problem = match p.kind {
            ProbeKind::Tcp if p.port.is_none_or(|x| x == 0) => Some("needs `port`"),
            ProbeKind::Http if p.port.is_none() && !svc.is(Preset::ToyApi) => {
                Some("needs `port` (only the toy API's 8080 is known without it)")
            }
            ProbeKind::Exec if p.command.is_empty() => {
                Some("needs `command`, the command run inside the replica")
            }
            _ if !generic_probe && (p.port.is_some() || !p.command.is_empty()) => {
                Some("takes `port` and `command` only when its kind is tcp, http or exec")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err((
                Anchor::Name(p.name.clone()),
                format!("probe `{}` {problem}", p.name),
            ));
        }
        if matches!(p.kind, ProbeKind::Http | ProbeKind::Load)
            && p.path.as_deref().is_none_or(|x| !x.starts_with('/'))
        {
            return Err((
                Anchor::Name(p.name.clone()),
                format!("http probe `{}` needs `path = \"/...\"`", p.name),
            ));
        }
        if p.kind == ProbeKind::Load {
            if p.rate.is_none_or(|r| r == 0 || r > 2000) {
                return Err((
                    Anchor::Name(p.name.clone()),
                    format!(
                        "load probe `{}` needs `rate`, 1 to 2000 requests per second",
                        p.name
                    ),
                ));
            }
            let templated = p.path.as_deref().unwrap_or_default().contains("{key}");
            if templated != p.keys.is_some_and(|k| k > 0) {
                return Err((
                    Anchor::Name(p.name.clone()),
                    format!(
                        "load probe `{}`: a `path` with `{{key}}` needs `keys` (≥ 1), and `keys` needs `{{key}}` in the path",
                        p.name
                    ),
                ));
            }
        }
        if let Some(on) = &p.on {
            let replicas = Scenario::replica_names(svc);
            if !(p.kind == ProbeKind::RegistryPull || generic_probe)
                || !replicas.contains(on.get_ref())
            {
                return Err((
                    Anchor::Span(on.span()),
                    format!(
                        "`on` names the replica of a tcp, http or exec probe, or the machine of a registry-pull probe: one of {}",
                        replicas.join(", ")
                    ),
                ));
            }
        }
        if p.interval.is_zero() || p.timeout.is_zero() {
            return Err((
                Anchor::Name(p.name.clone()),
                format!(
                    "probe `{}`: interval and timeout must be greater than zero",
                    p.name
                ),
            ));
        }
    }
    for f in &s.faults {
        let Some(svc) = s.service(f.target.get_ref()) else {
            return Err(unknown("service", &f.target, services.clone()));
        };
        let n = svc.replicas;
        let count = match &f.select {
            Select::Count(k) | Select::Followers(k) => *k,
            Select::Named(names) => {
                let replicas = Scenario::replica_names(svc);
                if let Some(bad) = names.iter().find(|x| !replicas.contains(x)) {
                    return Err((
                        Anchor::Span(f.target.span()),
                        format!(
                            "fault `{}` selects `{bad}`, which is not a replica of `{}` ({})",
                            f.name,
                            svc.name,
                            replicas.join(", ")
                        ),
                    ));
                }
                names.len()
            }
            _ => 1,
        };
        if count == 0 || count > n || (matches!(f.select, Select::Followers(_)) && count >= n) {
            return Err((
                Anchor::Span(f.target.span()),
                format!(
                    "fault `{}` selects {count} of the {n} replicas of `{}`: not possible",
                    f.name, svc.name
                ),
            ));
        }
        if f.kind == FaultKind::PowerCut && svc.disk.is_none() {
            return Err((
                Anchor::Span(f.target.span()),
                format!(
                    "power-cut fault `{}` needs `{}` to have a `disk`",
                    f.name, svc.name
                ),
            ));
        }
        if let Some(tear) = &f.tear {
            let problem = if f.kind != FaultKind::PowerCut {
                Some("`tear` belongs to a power-cut fault".to_string())
            } else if f.tear_bytes().is_none() {
                Some(format!(
                    "`tear = \"{tear}\"`: the sector size is \"512B\" or \"4KiB\""
                ))
            } else if !svc.disk.as_ref().is_some_and(|d| d.lossy) {
                Some(format!(
                    "`tear` needs `{}` to have a `lossy = true` disk",
                    svc.name
                ))
            } else {
                None
            };
            if let Some(p) = problem {
                return Err((
                    Anchor::Span(f.target.span()),
                    format!("fault `{}`: {p}", f.name),
                ));
            }
        }
        if f.kind == FaultKind::Leak {
            let problem = if !svc.is(Preset::Memcached) {
                Some("needs a memcached service (its image carries the leak agent)")
            } else if svc.memory_mib.is_none() {
                Some("needs `memory_mib` on its target service, or nothing bounds the leak")
            } else if count != 1 {
                Some("selects exactly one replica")
            } else if f.down_for.is_none() {
                Some("needs `down_for` (how long the killed replica stays down)")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err((
                    Anchor::Name(f.name.clone()),
                    format!("leak fault `{}` {problem}", f.name),
                ));
            }
        }
        if f.kind == FaultKind::Restart && f.down_for.is_none() {
            return Err((
                Anchor::Name(f.name.clone()),
                format!(
                    "restart fault `{}` needs `down_for` (how long the nodes stay down)",
                    f.name
                ),
            ));
        }
        if f.kind != FaultKind::Netem && (f.delay.is_some() || f.loss_percent.is_some()) {
            return Err((
                Anchor::Name(f.name.clone()),
                format!(
                    "fault `{}`: `delay` and `loss_percent` belong to netem faults",
                    f.name
                ),
            ));
        }
        if f.kind == FaultKind::Netem {
            let problem = if f.delay.is_none() && f.loss_percent.is_none() {
                Some("needs `delay` and/or `loss_percent`")
            } else if f.loss_percent.is_some_and(|l| !(0.0..=100.0).contains(&l)) {
                Some("needs `loss_percent` from 0 to 100")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err((
                    Anchor::Name(f.name.clone()),
                    format!("netem fault `{}` {problem}", f.name),
                ));
            }
        }
        if (f.kind == FaultKind::DaemonCrash) != svc.is(Preset::Machine) {
            return Err((
                Anchor::Span(f.target.span()),
                format!(
                    "fault `{}`: daemon-crash is the one fault for machines, and machines take only daemon-crash",
                    f.name
                ),
            ));
        }
        if f.at >= s.duration {
            return Err((
                Anchor::Name(f.name.clone()),
                format!(
                    "fault `{}` at {:?} starts after the run ends ({:?})",
                    f.name, f.at, s.duration
                ),
            ));
        }
    }
    for e in &s.expectations {
        if let Some(p) = &e.probe {
            if s.probe(p.get_ref()).is_none() {
                return Err(unknown("probe", p, probes.clone()));
            }
        }
        if let Some(f) = &e.fault {
            if s.fault(f.get_ref()).is_none() {
                return Err(unknown("fault", f, faults.clone()));
            }
        }
        use ExpectationKind::*;
        let anchor = || match (&e.probe, &e.fault) {
            (Some(r), _) | (None, Some(r)) => Anchor::Span(r.span()),
            (None, None) => Anchor::Name(kebab(e.kind)),
        };
        let needs: &[&str] = match e.kind {
            FailsDuring | StaysDown => &["probe", "fault", "min"],
            RecoversWithin | OutageWithin | WarmUpWithin => &["probe", "fault", "budget"],
            NeverFails | NoLostWrites | LosesWrites | OrderedPrefix | NoErrors => &["probe"],
            Simultaneous | CompletesWithin | RestartedWithin => &["fault", "budget"],
            OomKillWithin => &["fault", "budget", "victim"],
            LatencyRises | LatencyStaysWithin => &["probe", "fault", "ratio"],
            EndsFailing => &["probe", "matching"],
            MeasuredWithin => &["fault", "budget", "measurement"],
            Measurement => &["measurement"],
            ContainersSurvive | FaultVerified => &["fault"],
            UnitReaches => &["fault", "unit", "matching"],
        };
        let kind = kebab(e.kind);
        if e.kind == Measurement && e.at_most.is_none() && e.at_least.is_none() {
            return Err((
                anchor(),
                format!("expectation {kind} needs `at_most` and/or `at_least`"),
            ));
        }
        let load_probe = matches!(
            e.kind,
            LatencyRises | LatencyStaysWithin | WarmUpWithin | NoErrors
        );
        if load_probe {
            if let Some(p) = e.probe.as_ref().and_then(|p| s.probe(p.get_ref())) {
                if p.kind != ProbeKind::Load {
                    return Err((anchor(), format!("{kind} needs a load probe")));
                }
            }
        }
        if e.ratio.is_some_and(|r| r <= 0.0 || !r.is_finite())
            || e.hit_fraction.is_some_and(|h| !(0.0..=1.0).contains(&h))
        {
            return Err((
                anchor(),
                format!("{kind}: `ratio` must be above 0 and `hit_fraction` 0 to 1"),
            ));
        }
        for field in needs {
            let present = match *field {
                "probe" => e.probe.is_some(),
                "fault" => e.fault.is_some(),
                "budget" => e.budget.is_some(),
                "min" => e.min.is_some(),
                "matching" => e.matching.is_some(),
                "measurement" => e.measurement.is_some(),
                "ratio" => e.ratio.is_some(),
                "victim" => e.victim.is_some(),
                _ => e.unit.is_some(),
            };
            if !present {
                return Err((anchor(), format!("expectation {kind} needs `{field}`")));
            }
        }
        if e.kind == FaultVerified {
            let f = e.fault.as_ref().and_then(|f| s.fault(f.get_ref()));
            if f.is_some_and(|f| !f.kind.verified()) {
                return Err((
                    anchor(),
                    format!("{kind} needs a kill, restart, stop, pause, partition or netem fault"),
                ));
            }
        }
        if matches!(e.kind, NoLostWrites | LosesWrites | OrderedPrefix) {
            let p = s.probe(
                e.probe
                    .as_ref()
                    .map(|p| p.get_ref().as_str())
                    .unwrap_or_default(),
            );
            if !matches!(
                p.map(|p| p.kind),
                Some(
                    ProbeKind::ZookeeperWrite
                        | ProbeKind::DatastoreAppend
                        | ProbeKind::PostgresInsert
                )
            ) {
                return Err((
                    anchor(),
                    format!(
                        "{} needs a write probe (zookeeper-write, datastore-append or postgres-insert)",
                        kebab(e.kind)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The kebab-case name of an expectation kind, as written in files.
fn kebab(kind: ExpectationKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What a service described generically needs: an image (known, or a local tag), well-formed
/// volumes, limits and readiness.
fn generic(svc: &Service) -> Result<(), Invalid> {
    let bad = |problem: String| {
        Err((
            Anchor::Name(svc.name.clone()),
            format!("service `{}`: {problem}", svc.name),
        ))
    };
    match (svc.preset, svc.image.as_deref()) {
        (None, None) => {
            return bad(format!(
                "needs `image` (one of the project's images: {}; or a local `name:tag`) or a `preset`",
                SERVICE_IMAGES.join(", ")
            ))
        }
        (Some(Preset::Machine), Some(_)) => return bad("a machine takes no `image`".into()),
        (_, Some(image)) if !image.contains(':') && !SERVICE_IMAGES.contains(&image) => {
            return bad(format!(
                "unknown image `{image}`: the project builds {} (`aftershock images build`); an image of your own needs its tag (`{image}:latest`) and must be in the local engine (`docker build -t {image}:latest …`, nothing is pulled)",
                SERVICE_IMAGES.join(", ")
            ))
        }
        _ => {}
    }
    for v in &svc.volumes {
        let ok = v.split_once(':').is_some_and(|(name, path)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && path.starts_with('/')
        });
        if !ok {
            return bad(format!(
                "volume `{v}` must be `name:/absolute/path` (name: a-z, 0-9 and -)"
            ));
        }
    }
    if svc.cpus.is_some_and(|c| c <= 0.0 || !c.is_finite()) {
        return bad("`cpus` must be above 0".into());
    }
    if let Some(ready) = &svc.ready {
        match ready.check() {
            Err(problem) => return bad(problem),
            Ok(super::Check::Exec(cmd)) if cmd.is_empty() => {
                return bad("`ready.exec` needs a command".into())
            }
            Ok(_) if ready.timeout.is_zero() => {
                return bad("`ready.timeout` must be above 0".into())
            }
            Ok(_) => {}
        }
    }
    Ok(())
}
