//! Faults: the service they hit, a selection its replicas allow, and exactly what their kind
//! needs (a disk for a power cut, a memory limit for a leak, machines for a daemon crash, …).

use super::{at_name, at_ref, Invalid};
use crate::scenario::file::{self, CutShape, DiskOp, FaultKind as K, Preset, Select};
use crate::scenario::plan::{Fault, FaultId, FaultKind, Image, Service, ServiceKind};
use std::time::Duration;

/// The gap between machines' crashes when the scenario gives none.
const DEFAULT_GAP: Duration = Duration::from_secs(5);

pub(super) fn resolve(s: &file::Scenario, services: &[Service]) -> Result<Vec<Fault>, Invalid> {
    let names = super::service_names(services);
    s.faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let svc = &services[names.get(&f.target)?.0];
            let count = selected(f, svc)?;
            if f.at >= s.duration {
                return Err(at_name(
                    &f.name,
                    format!(
                        "fault `{}` at {:?} starts after the run ends ({:?})",
                        f.name, f.at, s.duration
                    ),
                ));
            }
            Ok(Fault {
                id: FaultId(i),
                name: f.name.clone(),
                at: f.at,
                target: svc.id,
                select: f.select.clone(),
                kind: kind(f, svc, count, &elsewhere(services, svc))?,
            })
        })
        .collect()
}

/// The replicas of every other service on this host's run network: what a cut's `peers` may
/// name besides the target's own (a cluster of separate services, as Compose files write them).
fn elsewhere(services: &[Service], svc: &Service) -> Vec<String> {
    let local = |s: &&Service| {
        s.id != svc.id && s.placement.is_empty() && !matches!(s.kind, ServiceKind::Attached(_))
    };
    services
        .iter()
        .filter(local)
        .flat_map(|s| s.replicas.clone())
        .collect()
}

/// How many replicas the selection takes; an error when the service cannot give them.
fn selected(f: &file::Fault, svc: &Service) -> Result<usize, Invalid> {
    let n = svc.replicas.len();
    if matches!(f.select, Select::Leader | Select::Followers(_)) && !svc.knows_leader() {
        return Err(at_name(
            &f.name,
            format!(
                "fault `{}` selects by leader (`{}`), but nothing says who leads `{}`: give the service a leader check (`leader = {{ http = <port>, path = \"/…\", contains = \"…\" }}` or `leader = {{ exec = [\"…\"] }}`, exit 0 = leads; in Rust `Service::leader(LeaderCheck::http(…))`), or select by count or name",
                f.name,
                match f.select {
                    Select::Leader => "select = \"leader\"".to_string(),
                    _ => "select = { followers = N }".to_string(),
                },
                svc.name
            ),
        ));
    }
    let count = match &f.select {
        Select::Count(k) | Select::Followers(k) => *k,
        Select::Named(names) => {
            if let Some(bad) = names.iter().find(|x| !svc.replicas.contains(x)) {
                return Err(at_ref(
                    &f.target,
                    format!(
                        "fault `{}` selects `{bad}`, which is not a replica of `{}` ({})",
                        f.name,
                        svc.name,
                        svc.replicas.join(", ")
                    ),
                ));
            }
            names.len()
        }
        _ => 1,
    };
    if count == 0 || count > n || (matches!(f.select, Select::Followers(_)) && count >= n) {
        return Err(at_ref(
            &f.target,
            format!(
                "fault `{}` selects {count} of the {n} replicas of `{}`: not possible",
                f.name, svc.name
            ),
        ));
    }
    Ok(count)
}

fn kind(
    f: &file::Fault,
    svc: &Service,
    count: usize,
    elsewhere: &[String],
) -> Result<FaultKind, Invalid> {
    fields_of_other_kinds(f)?;
    placed_can_take(f, svc)?;
    let machine = svc.is(Preset::Machine);
    if machine && f.kind != K::DaemonCrash {
        return Err(at_ref(
            &f.target,
            format!("fault `{}`: a machine takes only daemon-crash (its engine's crash); fault what runs on it instead", f.name),
        ));
    }
    if f.kind == K::DaemonCrash && !machine && svc.placement.is_empty() {
        return Err(at_ref(
            &f.target,
            format!("fault `{}`: daemon-crash crashes machines' engines: its target is a machine service, or a service placed on machines (the machines of the selected replicas); `{}` runs on this host's engine", f.name, svc.name),
        ));
    }
    let needs = |what: &str| {
        Err(at_name(
            &f.name,
            format!("{} fault `{}` needs {what}", f.kind, f.name),
        ))
    };
    let down_for = f.down_for;
    let port = || {
        f.port
            .or(svc.ready_port())
            .or(svc.preset().map(Preset::port))
            .unwrap_or(1)
    };
    Ok(match f.kind {
        K::Kill => FaultKind::Kill { signal: f.signal, down_for },
        K::Restart => match down_for {
            Some(down_for) => FaultKind::Restart { signal: f.signal, down_for },
            None => return needs("`down_for` (how long the nodes stay down)"),
        },
        K::RollingRestart => FaultKind::RollingRestart {
            signal: f.signal,
            rejoin_timeout: f.rejoin_timeout,
        },
        K::PowerCut => power_cut(f, svc)?,
        K::Leak => leak(f, svc, count)?,
        K::DaemonCrash => FaultKind::DaemonCrash { gap: f.gap.unwrap_or(DEFAULT_GAP) },
        K::Pause => FaultKind::Pause { down_for },
        K::Stop => FaultKind::Stop { down_for },
        K::Partition if matches!(svc.kind, ServiceKind::Attached(_)) => {
            return Err(at_ref(&f.target, format!("partition fault `{}`: an attached service is not on the run's network, so it cannot be cut off it; use `netem` with `loss_percent = 100`", f.name)))
        }
        K::Partition => FaultKind::Partition { down_for, port: port() },
        K::MachinePartition => FaultKind::MachinePartition { down_for, port: port() },
        K::Netem => netem(f, port())?,
        K::Cut => cut(f, svc, count, port(), elsewhere)?,
        K::Clock => clock(f, svc)?,
        K::SickLink => super::sick_link::kind(f, port())?,
        K::DiskLatency => disk_latency(f, svc)?,
        K::DiskError => disk_error(f, svc)?,
        K::DiskFull => disk_full(f, svc)?,
    })
}

/// What a service placed on machines can take (and only it can take a machine partition).
fn placed_can_take(f: &file::Fault, svc: &Service) -> Result<(), Invalid> {
    let placed = !svc.placement.is_empty();
    let problem = match f.kind {
        K::MachinePartition if !placed => "a machine-partition cuts machines apart: its target must be a service placed on machines (`machine = [...]`); to cut a replica off the run's network use `partition`",
        K::Partition if placed => "a service placed on machines uses the machines' networks, not the run's: cut its machines apart with `kind = \"machine-partition\"`",
        K::Netem if placed && f.delay.is_some() => "on a service placed on machines, netem drops a share of the packets between its machines and the others (`loss_percent`); a `delay` there is not supported (yet)",
        K::Cut if placed => "a cut acts in the replicas' network namespaces on this host; a service placed on machines is cut with `kind = \"machine-partition\"`",
        K::Clock if placed => "a clock fault rewrites a file on this host that the containers read; a service placed on machines is not supported (yet)",
        K::SickLink if placed => "a sick link is a proxy in the replicas' network namespaces on this host; a service placed on machines is not supported (yet)",
        K::MachinePartition | K::Partition | K::Netem | K::Cut | K::Clock | K::SickLink => return Ok(()),
        // A placed service has no disk of this host's: `disk` refuses it.
        K::DiskLatency | K::DiskError | K::DiskFull => return Ok(()),
        K::Kill
        | K::Restart
        | K::RollingRestart
        | K::PowerCut
        | K::Leak
        | K::DaemonCrash
        | K::Pause
        | K::Stop => return Ok(()),
    };
    Err(at_ref(
        &f.target,
        format!("{} fault `{}`: {problem}", f.kind, f.name),
    ))
}

/// Fields that belong to one kind, given on another.
fn fields_of_other_kinds(f: &file::Fault) -> Result<(), Invalid> {
    if f.kind != K::Netem && (f.delay.is_some() || f.loss_percent.is_some()) {
        let problem = "`delay` and `loss_percent` belong to netem faults";
        return Err(at_name(&f.name, format!("fault `{}`: {problem}", f.name)));
    }
    if f.kind != K::Cut && (f.shape.is_some() || f.peers.is_some() || f.one_way.is_some()) {
        let problem = "`shape`, `peers` and `one_way` belong to cut faults";
        return Err(at_name(&f.name, format!("fault `{}`: {problem}", f.name)));
    }
    if f.kind != K::SickLink && f.toxics.is_some() {
        let problem = "`toxics` belong to sick-link faults";
        return Err(at_name(&f.name, format!("fault `{}`: {problem}", f.name)));
    }
    if f.kind != K::Clock && (f.offset.is_some() || f.strobe.is_some()) {
        let problem = "`offset` and `strobe` belong to clock faults";
        return Err(at_name(&f.name, format!("fault `{}`: {problem}", f.name)));
    }
    let disk_fields = [
        (f.ops.is_some(), "ops", [K::DiskLatency, K::DiskError]),
        (f.latency.is_some(), "latency", [K::DiskLatency; 2]),
        (f.errno.is_some(), "errno", [K::DiskError; 2]),
        (f.percent.is_some(), "percent", [K::DiskError; 2]),
        (
            f.forget_writes.is_some(),
            "forget_writes",
            [K::DiskError; 2],
        ),
        (f.room_bytes.is_some(), "room_bytes", [K::DiskFull; 2]),
    ];
    for (given, field, kinds) in disk_fields {
        if given && !kinds.contains(&f.kind) {
            let mut kinds = kinds.to_vec();
            kinds.dedup();
            let owners = crate::scenario::kinds::one_of(kinds);
            let problem = format!("`{field}` belongs to {owners} faults");
            return Err(at_name(&f.name, format!("fault `{}`: {problem}", f.name)));
        }
    }
    if f.kind != K::PowerCut && f.tear.is_some() {
        let problem = "`tear` belongs to a power-cut fault";
        return Err(at_ref(&f.target, format!("fault `{}`: {problem}", f.name)));
    }
    Ok(())
}

fn power_cut(f: &file::Fault, svc: &Service) -> Result<FaultKind, Invalid> {
    let Some(disk) = &svc.disk else {
        return Err(at_ref(
            &f.target,
            format!(
                "power-cut fault `{}` needs `{}` to have a `disk`",
                f.name, svc.name
            ),
        ));
    };
    let tear = match f.tear.as_deref() {
        None => None,
        Some(tear) => {
            let problem = match f.tear_bytes() {
                None => format!("`tear = \"{tear}\"`: the sector size is \"512B\" or \"4KiB\""),
                Some(_) if !disk.lossy => {
                    format!("`tear` needs `{}` to have a `lossy = true` disk", svc.name)
                }
                Some(bytes) => {
                    return Ok(FaultKind::PowerCut {
                        down_for: f.down_for,
                        tear: Some(bytes),
                    })
                }
            };
            return Err(at_ref(&f.target, format!("fault `{}`: {problem}", f.name)));
        }
    };
    Ok(FaultKind::PowerCut {
        down_for: f.down_for,
        tear,
    })
}

fn leak(f: &file::Fault, svc: &Service, count: usize) -> Result<FaultKind, Invalid> {
    let problem = if svc.is(Preset::Machine) {
        "cannot target machines (leak into a service's container)"
    } else if svc.memory_mib.is_none() {
        "needs `memory_mib` on its target service, or nothing bounds the leak"
    } else if count != 1 {
        "selects exactly one replica"
    } else if let Some(down_for) = f.down_for {
        return Ok(FaultKind::Leak {
            mib_per_s: f.leak_mib_per_s.unwrap_or(32),
            down_for,
            oom_timeout: f.rejoin_timeout,
        });
    } else {
        "needs `down_for` (how long the killed replica stays down)"
    };
    Err(at_name(
        &f.name,
        format!("leak fault `{}` {problem}", f.name),
    ))
}

fn netem(f: &file::Fault, port: u16) -> Result<FaultKind, Invalid> {
    let problem = if f.delay.is_none() && f.loss_percent.is_none() {
        "needs `delay` and/or `loss_percent`"
    } else if f.loss_percent.is_some_and(|l| !(0.0..=100.0).contains(&l)) {
        "needs `loss_percent` from 0 to 100"
    } else {
        return Ok(FaultKind::Netem {
            down_for: f.down_for,
            delay: f.delay,
            loss_percent: f.loss_percent,
            port,
        });
    };
    Err(at_name(
        &f.name,
        format!("netem fault `{}` {problem}", f.name),
    ))
}

/// A cut: its shape must fit the service's replicas and the selection. An isolation's `peers`
/// may also name replicas of other services on the run's network (`elsewhere`).
fn cut(
    f: &file::Fault,
    svc: &Service,
    count: usize,
    port: u16,
    elsewhere: &[String],
) -> Result<FaultKind, Invalid> {
    let n = svc.replicas.len();
    let shape = f.shape.unwrap_or_default();
    let peers = f.peers.clone().unwrap_or_default();
    let outside = peers.iter().any(|p| !svc.replicas.contains(p));
    // `all`, `minority` and `majority` resolve later; only these name one replica for sure.
    let one = count == 1 && !matches!(f.select, Select::All | Select::Minority | Select::Majority);
    let problem = match shape {
        CutShape::Isolate if n < 2 && !outside => format!("needs a service of at least 2 replicas (`{}` has {n}), or `peers` of other services", svc.name),
        _ if n < 2 && shape != CutShape::Isolate => format!("needs a service of at least 2 replicas (`{}` has {n})", svc.name),
        CutShape::Isolate => match peers.iter().find(|p| !svc.replicas.contains(p) && !elsewhere.contains(p)) {
            Some(bad) => format!("`peers` names `{bad}`, neither a replica of `{}` ({}) nor of another service on the run's network", svc.name, svc.replicas.join(", ")),
            None if (count == n || f.select == Select::All) && peers.is_empty() => "selects every replica: nobody is left to cut them from (select fewer, or name `peers`)".into(),
            None => String::new(),
        },
        CutShape::Bridge if n < 3 || !one => format!("with `shape = \"bridge\"` selects exactly one replica (the bridge) of a service of at least 3 (`{}` has {n}, {count} selected)", svc.name),
        CutShape::MajoritiesRing if n < 4 || f.select != Select::All => format!("with `shape = \"majorities-ring\"` acts on every replica (`select = \"all\"`) of a service of at least 4 (`{}` has {n})", svc.name),
        CutShape::Bridge | CutShape::MajoritiesRing if !peers.is_empty() || f.one_way == Some(true) => "`peers` and `one_way` belong to `shape = \"isolate\"`".into(),
        CutShape::Bridge | CutShape::MajoritiesRing => String::new(),
    };
    if !problem.is_empty() {
        return Err(at_name(
            &f.name,
            format!("cut fault `{}` {problem}", f.name),
        ));
    }
    Ok(FaultKind::Cut {
        down_for: f.down_for,
        shape,
        peers,
        one_way: f.one_way.unwrap_or(false),
        port,
    })
}

/// The shortest strobe period: each half must be seen by reads inside the container.
const MIN_STROBE: std::time::Duration = std::time::Duration::from_millis(200);

/// A clock fault: an offset with its sign, on a service whose image may have libfaketime: one
/// of the project's (its base has it) or one built here (a build on that base has it; the run
/// checks that the service's process maps it, else the fault is not verified, saying why).
fn clock(f: &file::Fault, svc: &Service) -> Result<FaultKind, Invalid> {
    let offset_ms = f.offset.as_deref().map(signed_ms);
    let problem = match (&svc.image, offset_ms) {
        (_, None) => "needs `offset` (how far the clock moves: \"+30s\" forward, \"-1h\" back)".to_string(),
        (_, Some(None)) => format!("`offset = {:?}`: a sign and a duration, e.g. \"+30s\" or \"-1h 30m\"", f.offset.as_deref().unwrap_or_default()),
        _ if f.strobe.is_some_and(|p| p < MIN_STROBE) => format!("`strobe = \"{}\"`: at least {} (each half of the period is seen inside the container)", humantime::format_duration(f.strobe.unwrap_or_default()), humantime::format_duration(MIN_STROBE)),
        (Image::Project(_) | Image::Build { .. }, Some(Some(offset_ms))) => {
            return Ok(FaultKind::Clock { down_for: f.down_for, offset_ms, strobe: f.strobe })
        }
        (_, Some(Some(_))) => format!("needs `{}` to run one of the project's images (`image = \"memcached\"`, a preset) or an image built from a Dockerfile on the project's base (`build`, `FROM aftershock/base:latest`): libfaketime is preloaded from the image, and an image not built here is not known to have it", svc.name),
    };
    Err(at_name(
        &f.name,
        format!("clock fault `{}` {problem}", f.name),
    ))
}

/// `+30s` → 30000, `-1h` → -3600000; None without a sign or with a bad duration.
fn signed_ms(text: &str) -> Option<i64> {
    let (sign, rest) = match text.trim().split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let d = humantime::parse_duration(rest.trim()).ok()?;
    i64::try_from(d.as_millis()).ok().map(|ms| sign * ms)
}

/// A sick disk's target must have a lossy disk: lossyfs serves the faults.
fn lossy_disk(f: &file::Fault, svc: &Service) -> Result<(), Invalid> {
    let problem = match &svc.disk {
        None => format!(
            "needs `{}` to have a lossy disk: `disk = {{ size_mb = 64, path = \"/data\", lossy = true }}`",
            svc.name
        ),
        Some(d) if !d.lossy => format!(
            "needs `{}`'s disk to be `lossy = true`: lossyfs, between the container and the disk, is what slows and fails its operations",
            svc.name
        ),
        Some(_) => return Ok(()),
    };
    Err(disk_problem(f, problem))
}

fn disk_problem(f: &file::Fault, problem: String) -> Invalid {
    at_name(&f.name, format!("{} fault `{}` {problem}", f.kind, f.name))
}

/// The operations a disk fault hits, each once, in order (`default` when not given).
fn disk_ops(f: &file::Fault, default: &[DiskOp]) -> Result<Vec<DiskOp>, Invalid> {
    let mut ops = f.ops.clone().unwrap_or_else(|| default.to_vec());
    if ops.is_empty() {
        let problem = "has an empty `ops`: name some of \"read\", \"write\", \"fsync\"";
        return Err(disk_problem(f, problem.into()));
    }
    ops.sort();
    ops.dedup();
    Ok(ops)
}

fn disk_latency(f: &file::Fault, svc: &Service) -> Result<FaultKind, Invalid> {
    lossy_disk(f, svc)?;
    let ops = disk_ops(f, &[DiskOp::Read, DiskOp::Write, DiskOp::Fsync])?;
    match f.latency {
        Some(latency) if !latency.is_zero() => Ok(FaultKind::DiskLatency {
            down_for: f.down_for,
            latency,
            ops,
        }),
        _ => {
            let problem = "needs `latency` (how long each operation waits, e.g. \"500ms\")";
            Err(disk_problem(f, problem.into()))
        }
    }
}

fn disk_error(f: &file::Fault, svc: &Service) -> Result<FaultKind, Invalid> {
    lossy_disk(f, svc)?;
    let ops = disk_ops(f, &[DiskOp::Write, DiskOp::Fsync])?;
    let percent = f.percent.unwrap_or(100.0);
    let forget_writes = f.forget_writes.unwrap_or(false);
    let problem = if forget_writes && !ops.contains(&DiskOp::Fsync) {
        "has `forget_writes = true`, which is what a failed fsync does: its `ops` must include \"fsync\"".to_string()
    } else if !(percent > 0.0 && percent <= 100.0) {
        format!("needs `percent` above 0 and at most 100 (the share of operations that fail), not {percent}")
    } else {
        return Ok(FaultKind::DiskError {
            down_for: f.down_for,
            errno: f.errno.unwrap_or_default(),
            percent,
            ops,
            forget_writes,
        });
    };
    Err(disk_problem(f, problem))
}

fn disk_full(f: &file::Fault, svc: &Service) -> Result<FaultKind, Invalid> {
    lossy_disk(f, svc)?;
    let room_bytes = f.room_bytes.unwrap_or(0);
    let size = svc.disk.as_ref().map_or(0, |d| d.size_mb << 20);
    if room_bytes >= size / 2 {
        // The verification writes past the room: it must fit well within the disk.
        let problem = format!("has `room_bytes = {room_bytes}`: at most half the disk ({} bytes), or the disk itself fills first", size / 2);
        return Err(disk_problem(f, problem));
    }
    Ok(FaultKind::DiskFull {
        down_for: f.down_for,
        room_bytes,
    })
}
