//! `aftershock audit COMPOSE_FILE`: the catalogue of postmortems planned against an
//! architecture. Pure: from a Compose file's services (as [`crate::scenario::load_compose`]
//! gives them) to scenario files (TOML text, each bringing the whole Compose topology up) and
//! the archetypes skipped, with why. The CLI writes the files and runs them as a suite.
//!
//! Nothing need be annotated: clusters of separate services are found ([`infer::groups`]),
//! and each service is observed by its declared health check, else a TCP probe on a port it
//! is known to listen on ([`infer::probe_of`]). A service observed by nothing is audited only
//! where the kernel's own record is the verdict (the OOM kill). [`Audit::table`] says, per
//! service or group and archetype, what is planned or why not.

mod gray;
pub mod infer;
pub mod place;
mod table;

use crate::scenario::compose::{Topology, Writes};
use crate::scenario::file::{self, Check};
use infer::{Group, Probe};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Budgets the verdicts are judged against (the CLI's `--recover-within`, `--oom-within`).
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// A replica's health check passes again within this of the heal.
    pub recover: Duration,
    /// The OOM killer acts within this of the leak starting.
    pub oom: Duration,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            recover: Duration::from_secs(30),
            oom: Duration::from_secs(30),
        }
    }
}

/// What the audit will run, and why.
#[derive(Debug, Default)]
pub struct Audit {
    /// `(file name, scenario text)`.
    pub scenarios: Vec<(String, String)>,
    /// Every service (or group) × archetype: planned, or skipped with the reason.
    pub rows: Vec<Row>,
    /// The clusters found, each with why its members were grouped.
    pub groups: Vec<Group>,
    /// How each service is observed, and why that way: `(service, probe)`.
    pub probes: Vec<(String, Probe)>,
}

/// One cell of the plan: a service or group, an archetype, and what the audit does there.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// A service's name, or `group NAME`.
    pub subject: String,
    /// The archetype (`quorum: majority at once`, `power cut`, …).
    pub archetype: &'static str,
    /// Planned (the scenario file) or skipped (why).
    pub outcome: Outcome,
}

/// Whether an archetype is run on a subject.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The scenario file written for it, and what it does, briefly.
    Planned { file: String, note: String },
    /// Why not.
    Skipped(String),
    /// Judged in every run of an archetype that hits the subject (lost writes), and how.
    Judged(String),
}

const MAJORITY: &str = "quorum: majority at once";
const ROLLING: &str = "quorum: one at a time";
const POWER_CUT: &str = "power cut";
const LEAK: &str = "leak → OOM";
const ENGINE_CRASH: &str = "engine crash";
const LOST_WRITES: &str = "lost writes";
const CACHE_LOSS: &str = "cache loss → database";
const PARTIAL_PARTITION: &str = "partial partition";

impl Audit {
    fn planned(
        &mut self,
        subject: &str,
        archetype: &'static str,
        file: (String, String),
        note: String,
    ) {
        self.rows.push(Row {
            subject: subject.to_string(),
            archetype,
            outcome: Outcome::Planned {
                file: file.0.clone(),
                note,
            },
        });
        self.scenarios.push(file);
    }

    fn skipped(&mut self, subject: &str, archetype: &'static str, why: String) {
        self.rows.push(Row {
            subject: subject.to_string(),
            archetype,
            outcome: Outcome::Skipped(why),
        });
    }

    /// The plan as one table: the groups found, then the grid of every subject × archetype,
    /// each service with its probe ([`table::grid`]).
    pub fn table(&self) -> String {
        let mut t = String::new();
        if self.groups.is_empty() {
            t.push_str("Groups: none found (no services of one image naming each other or sharing a YAML anchor, no `x-aftershock: { group }`)\n");
        }
        for g in &self.groups {
            let _ = writeln!(
                t,
                "Group `{}` = {}: {}",
                g.name,
                g.members.join(", "),
                g.why
            );
        }
        t.push('\n');
        t.push_str(&table::grid(&self.rows, &self.probes));
        if self.scenarios.is_empty() {
            t.push_str("\nNothing to run: every archetype was skipped, for the reasons above.\n");
        }
        t
    }
}

/// Plans the archetypes that apply to each service of the Compose file at `compose`.
pub fn plan(compose: &Path, topology: &Topology, budgets: Budgets) -> Audit {
    plan_files(&[compose], topology, budgets)
}

/// Plans the archetypes of the Compose files at `compose`, laid over each other in order
/// (`docker compose -f a.yml -f b.yml`); the scenario files name them all.
pub fn plan_files(compose: &[&Path], topology: &Topology, budgets: Budgets) -> Audit {
    plan_files_with(compose, &Default::default(), topology, budgets)
}

/// The value of `compose = …` in a scenario's `[topology]`, and the lines after it that
/// `options` need (the key is found with them).
fn compose_key(compose: &[&Path], options: &crate::scenario::compose::Options) -> String {
    let quoted: Vec<String> = compose
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let mut compose = match quoted.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    if !options.profiles.is_empty() {
        compose.push_str(&format!("\ncompose_profiles = {:?}", options.profiles));
    }
    if !options.env_files.is_empty() {
        let files: Vec<String> = options
            .env_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        compose.push_str(&format!("\ncompose_env_files = {files:?}"));
    }
    compose
}

/// [`plan_files`] of the files read with `--env-file` and `--profile`: the scenario files
/// say them too (`compose_env_files`, `compose_profiles`), so they run the same topology.
pub fn plan_files_with(
    compose: &[&Path],
    options: &crate::scenario::compose::Options,
    topology: &Topology,
    budgets: Budgets,
) -> Audit {
    let compose = compose_key(compose, options);
    let compose = compose.as_str();
    let observed = without_jobs(topology);
    let topology = &observed;
    let mut audit = Audit {
        groups: infer::groups(topology),
        ..Audit::default()
    };
    let services = &topology.services;
    let probes: BTreeMap<String, Probe> = services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                infer::probe_of(s, topology.hints.get(&s.name)),
            )
        })
        .collect();
    audit.probes = services
        .iter()
        .map(|s| (s.name.clone(), probes[&s.name].clone()))
        .collect();
    let Some(first) = services.first() else {
        return audit;
    };
    let (writes, mut judged) = lost_writes(topology);
    let base = Cx {
        compose,
        services,
        s: first,
        probes: &probes,
        writes: None,
        budgets,
    };
    for s in services {
        let cx = Cx {
            s,
            writes: writes.get(&s.name),
            ..base
        };
        let group = audit
            .groups
            .iter()
            .find(|g| g.members.contains(&s.name))
            .map(|g| g.name.clone());
        plan_service(cx, group, &mut audit);
        if let Some(outcome) = judged.remove(&s.name) {
            audit.rows.push(Row {
                subject: s.name.clone(),
                archetype: LOST_WRITES,
                outcome,
            });
        }
    }
    for g in audit.groups.clone() {
        let mut w = g.members.first().and_then(|m| writes.get(m)).cloned();
        // A protocol probe writes through any member of the group.
        if let Some(w) = w.as_mut().filter(|w| w.protocol.is_some()) {
            w.members = g.members[1..].to_vec();
        }
        let cx = Cx {
            writes: w.as_ref(),
            ..base
        };
        plan_group(&g, cx, &mut audit);
    }
    plan_chains(base, topology, &writes, &mut audit);
    engine_crashes(base, topology, &writes, &mut audit);
    audit
}

/// The topology without its one-shot jobs (a migration others wait on to complete): they
/// run at bring-up and are gone before anything is observed, so nothing is planned for them.
fn without_jobs(topology: &Topology) -> Topology {
    let mut out = topology.clone();
    let jobs: Vec<String> = (out.services.iter())
        .filter(|s| s.extras.runs_once)
        .map(|s| s.name.clone())
        .collect();
    out.services.retain(|s| !s.extras.runs_once);
    for s in &mut out.services {
        s.uses.retain(|u| !jobs.contains(u.get_ref()));
        s.uses_started.retain(|u| !jobs.contains(u.get_ref()));
    }
    out
}

/// Clerk 2017-03 as it happened: for each service in front of a cache and a database
/// ([`infer::chains`]), the cache is killed (the OOM killer's SIGKILL) under an open-loop load
/// on the front, while the database and the front are watched, during the loss and after the
/// cache is back.
fn plan_chains(
    base: Cx,
    topology: &Topology,
    writes: &BTreeMap<String, Writes>,
    audit: &mut Audit,
) {
    let chains = infer::chains(topology);
    if chains.is_empty() {
        let why = "no service depends on both a cache (memcached, Redis) and a database (by `depends_on`, or naming both in `command` or `environment`)".to_string();
        audit.skipped("every service", CACHE_LOSS, why);
    }
    let find = |name: &str| base.services.iter().find(|s| s.name == name);
    for chain in chains {
        let (Some(cache), Some(db), Some(front)) =
            (find(&chain.cache), find(&chain.db), find(&chain.front))
        else {
            continue;
        };
        let subject = format!("{} → {}, {}", front.name, cache.name, db.name);
        if ![cache, db, front].iter().any(|s| base.observed(s)) {
            let why = format!(
                "{}; but none of them has a probe, so no availability verdict",
                chain.why
            );
            audit.skipped(&subject, CACHE_LOSS, why);
            continue;
        }
        let cx = Cx {
            s: db,
            writes: writes.get(&db.name),
            ..base
        };
        let http = infer::http_port(front, topology.hints.get(&front.name));
        let load = match &http {
            Some((port, why)) => format!("an open load of {LOAD_RATE} requests/s on `{}` port {port} `/` ({why}), run first until steady (at most {WARM_UP_SECS} s: the baseline is warm), measures its p99 and errors before, during and after", front.name),
            None => format!("no HTTP port known for `{}` (no `expose`, `ports` or HTTP health check): its load is not measured, only its health", front.name),
        };
        let mut note = format!("{}: `{}` killed under load and down {CACHE_DOWN} s; {load}; `{}` watched through the loss and after the cache is back", chain.why, cache.name, db.name);
        let port = http.map(|(p, _)| p);
        audit.planned(
            &subject,
            CACHE_LOSS,
            cx.cache_loss(cache, front, port, false),
            note.clone(),
        );
        // Clerk's remedy: a second cache, so that losing one is not losing them all.
        if cache.replicas >= 2 {
            note = format!("the remediated shape the file offers: one of `{}`'s {} replicas killed under the same load, the others still serving", cache.name, cache.replicas);
            let file = cx.cache_loss(cache, front, port, true);
            audit.planned(&subject, CACHE_LOSS, file, note);
        } else if let Some(row) = audit.rows.last_mut() {
            let why = match chain.other_caches.as_slice() {
                [] => format!("no remediated run: `{c}` has one replica and `{f}` names no other cache; a second replica helps only where `{f}` spreads or mirrors its keys over both (its own configuration, which the audit cannot change): give `{c}` `deploy.replicas: 2`, point `{f}` at both, and audit again", c = cache.name, f = front.name),
                others => format!("`{}` also names {}, which stay up: this run is already the remediated shape (a second cache)", front.name, others.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")),
            };
            if let Outcome::Planned { note, .. } = &mut row.outcome {
                note.push_str("; ");
                note.push_str(&why);
            }
        }
    }
}

/// Requests per second of the load on a chain's front (edit `rate` in the file to your traffic).
const LOAD_RATE: u32 = 100;

/// Longest a chain's front may take to be steady under its load before the observation
/// (hit ratio, p99 and errors alike for 3 s: [`crate::check::steady`]).
const WARM_UP_SECS: u64 = 60;

/// Seconds a chain's cache stays down.
const CACHE_DOWN: u64 = 8;

/// The write templates of every service that has them (the file's `x-aftershock`, else a
/// recognised store's, [`infer::writes_of`]), and for each service how its writes are judged,
/// or why they are not.
type Judged = (BTreeMap<String, Writes>, BTreeMap<String, Outcome>);

fn lost_writes(topology: &Topology) -> Judged {
    let mut writes = BTreeMap::new();
    let mut judged = BTreeMap::new();
    for s in &topology.services {
        let outcome = match topology.writes.get(&s.name) {
            Some(w) => {
                writes.insert(s.name.clone(), w.clone());
                Outcome::Judged("by the file's `x-aftershock` write and read templates".into())
            }
            None => match infer::writes_of(s) {
                Ok((w, how)) => {
                    writes.insert(s.name.clone(), w);
                    Outcome::Judged(how)
                }
                Err(why) => Outcome::Skipped(why),
            },
        };
        judged.insert(s.name.clone(), outcome);
    }
    (writes, judged)
}

/// The archetypes of one service: its quorum pair (replicas ≥ 2), the power cut of its disk,
/// its clock jump and slow disk ([`gray`]), the leak to its memory limit.
fn plan_service(cx: Cx, group: Option<String>, audit: &mut Audit) {
    let s = cx.s;
    let observed = cx.observed(s);
    match (s.replicas >= 2, observed, group.clone()) {
        (true, true, _) => {
            let note = format!(
                "{} of {} replicas restarted at one instant",
                s.replicas / 2 + 1,
                s.replicas
            );
            audit.planned(&s.name, MAJORITY, cx.restart(true), note);
            let note = "each replica restarted after the previous rejoined".to_string();
            audit.planned(&s.name, ROLLING, cx.restart(false), note);
        }
        (true, false, _) => {
            for a in [MAJORITY, ROLLING] {
                audit.skipped(&s.name, a, "no probe, so no availability verdict".into());
            }
        }
        (false, _, Some(g)) => {
            for a in [MAJORITY, ROLLING] {
                audit.skipped(
                    &s.name,
                    a,
                    format!("a member of group `{g}`: planned for the group"),
                );
            }
        }
        (false, _, None) => {
            for a in [MAJORITY, ROLLING] {
                audit.skipped(&s.name, a, "one replica and in no group (a cluster of separate services is found when they run one image and name each other, or say `x-aftershock: { group: NAME }`)".into());
            }
        }
    }
    plan_partial_partition(cx, group.as_deref(), audit);
    plan_power_cuts(cx, audit);
    gray::plan(cx, audit);
    match s.memory_mib {
        Some(m) => {
            let note = format!("32 MiB/s leaked until the OOM kill at {m} MiB");
            audit.planned(&s.name, LEAK, cx.leak(), note);
        }
        None => audit.skipped(
            &s.name,
            LEAK,
            "no memory limit (leak → OOM needs `mem_limit` or `deploy.resources.limits.memory`)"
                .into(),
        ),
    }
}

/// The size of a disk made of a named volume nobody declared one, in MB.
pub const DEFAULT_DISK_MB: u64 = 256;

/// The power cut (clerk 2017-02): on the disk the file declares, else on every named volume
/// of a recognised stateful store (a disk of [`DEFAULT_DISK_MB`]).
fn plan_power_cuts(cx: Cx, audit: &mut Audit) {
    let s = cx.s;
    let store = infer::store_of(s);
    let skip = |audit: &mut Audit, why: String| audit.skipped(&s.name, POWER_CUT, why);
    if s.disk.is_none() && s.volumes.is_empty() {
        return skip(audit, "no named volume (nothing on a disk to lose)".into());
    }
    if !cx.observed(s) {
        return skip(audit, "no probe, so no availability verdict".into());
    }
    if let Some(d) = &s.disk {
        let note = format!(
            "the disk at {} ({} MB, from `x-aftershock`)",
            d.path, d.size_mb
        );
        return audit.planned(&s.name, POWER_CUT, cx.power_cut(None), note);
    }
    let (store, shown) = match store {
        Some((st, shown)) if st.stateful => (st, shown),
        Some((st, _)) => {
            return skip(
                audit,
                format!(
                    "{} keeps nothing on disk (its volumes are not data)",
                    st.name
                ),
            );
        }
        None => {
            return skip(audit, "named volumes, but not a recognised data store (declare the volume a disk: `x-aftershock: { disk: { size_mb: 256 } }`)".into());
        }
    };
    for v in &s.volumes {
        let (volume, path) = v.split_once(':').unwrap_or((v, ""));
        let suffix = if s.volumes.len() > 1 {
            format!("-{volume}")
        } else {
            String::new()
        };
        let note = format!("volume `{volume}` at {path} made a {DEFAULT_DISK_MB} MB disk by default ({} by {shown}; `x-aftershock: {{ disk: {{ size_mb }} }}` on the volume sets the size)", store.name);
        audit.planned(
            &s.name,
            POWER_CUT,
            cx.power_cut(Some((volume, &suffix))),
            note,
        );
    }
}

/// Seconds between two members' restarts in a group's rolling restart.
const GROUP_GAP: u64 = 12;

/// Seconds a member of a group stays down when restarted: longer than a leader election
/// takes (ZooKeeper's 2–6 s on a loaded 2-core machine).
const MEMBER_DOWN: u64 = 8;

/// The quorum pair of a group of separate services: a majority of its members restarted at
/// one instant, and every member restarted one at a time.
fn plan_group(g: &Group, base: Cx, audit: &mut Audit) {
    let subject = format!("group {}", g.name);
    let members: Vec<&file::Service> = g
        .members
        .iter()
        .filter_map(|m| base.services.iter().find(|s| &s.name == m))
        .collect();
    let Some(first) = members.first() else { return };
    let cx = Cx { s: first, ..base };
    if !members.iter().any(|m| cx.observed(m)) {
        for a in [MAJORITY, ROLLING] {
            audit.skipped(
                &subject,
                a,
                "no member has a probe, so no availability verdict".into(),
            );
        }
        return;
    }
    let k = members.len() / 2 + 1;
    let hit: Vec<&str> = members[..k].iter().map(|m| m.name.as_str()).collect();
    let note = format!(
        "{} of {} members ({}) restarted at one instant",
        k,
        members.len(),
        hit.join(", ")
    );
    audit.planned(
        &subject,
        MAJORITY,
        cx.group_restart(&g.name, &members, true),
        note,
    );
    let note = format!(
        "{} restarted one at a time, {GROUP_GAP} s apart",
        g.members.join(", ")
    );
    audit.planned(
        &subject,
        ROLLING,
        cx.group_restart(&g.name, &members, false),
        note,
    );
    let peers: Vec<String> = members[1..]
        .iter()
        .flat_map(|m| file::Scenario::replica_names(m))
        .collect();
    let note = format!(
        "`{}` cut from {} for {CUT_SECS} s (in their own network namespaces; clients and probes still reach it)",
        first.name,
        peers.join(", ")
    );
    let file = cx.partial_partition(&g.name, "\"all\"", &peers, &members[1..]);
    audit.planned(&subject, PARTIAL_PARTITION, file, note);
}

/// How long the audit's partial partition lasts, in seconds.
const CUT_SECS: u64 = 10;

/// GitHub 2018 inside a replicated service: one replica (the leader, where the service says
/// how to ask) cut from the others only.
fn plan_partial_partition(cx: Cx, group: Option<&str>, audit: &mut Audit) {
    let s = cx.s;
    let why = match (s.replicas >= 2, cx.observed(s), group) {
        (true, true, _) => {
            let (select, who) = match s.leader {
                Some(_) => ("\"leader\"".to_string(), "the leader".to_string()),
                None => (
                    format!("{{ named = [\"{}1\"] }}", s.name),
                    format!("`{}1`", s.name),
                ),
            };
            let note = format!("{who} cut from the other replicas for {CUT_SECS} s (in their own network namespaces; clients and probes still reach it)");
            let file = cx.partial_partition(&s.name, &select, &[], &[]);
            return audit.planned(&s.name, PARTIAL_PARTITION, file, note);
        }
        (true, false, _) => "no probe, so no availability verdict".to_string(),
        (false, _, Some(g)) => format!("a member of group `{g}`: planned for the group"),
        (false, _, None) => "one replica and in no group: no peer to be cut from".into(),
    };
    audit.skipped(&s.name, PARTIAL_PARTITION, why);
}

/// Clearbit 2016, on the whole topology: every service on Docker-in-Docker machines (placed
/// by [`place::spread`]: a service's replicas and a group's members one per machine, no two
/// services of one port on one machine), each machine's dockerd SIGKILLed in turn; as it was,
/// and with live-restore.
fn engine_crashes(
    base: Cx,
    topology: &Topology,
    writes: &BTreeMap<String, Writes>,
    audit: &mut Audit,
) {
    let watched: Vec<&file::Service> = base.services.iter().filter(|s| base.observed(s)).collect();
    let Some(first) = watched.first() else {
        let why = "no service has a probe, so no availability verdict".to_string();
        audit.skipped("every service", ENGINE_CRASH, why);
        return;
    };
    let cx = Cx {
        s: first,
        writes: writes.get(&first.name),
        ..base
    };
    let placement = place::spread(topology, &audit.groups, base.probes);
    if let Some(why) = place::volume_split(topology, &placement) {
        audit.skipped("every service", ENGINE_CRASH, why);
        return;
    }
    let mut on = format!("on {}", placement.summary());
    if !placement.why.is_empty() {
        let _ = write!(on, " ({})", placement.why.join("; "));
    }
    for live_restore in [false, true] {
        let note = if live_restore {
            format!("every machine's dockerd SIGKILLed, with --live-restore, {on}")
        } else {
            format!("every machine's dockerd SIGKILLed in turn, {on}")
        };
        let file = cx.engine_crash(&watched[1..], live_restore, &placement);
        audit.planned("every service", ENGINE_CRASH, file, note);
    }
}

/// `name` as a TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

/// One service's planning.
#[derive(Clone, Copy)]
struct Cx<'a> {
    /// The value of `compose =` in the scenario files (a TOML string or list).
    compose: &'a str,
    services: &'a [file::Service],
    s: &'a file::Service,
    /// How each service is observed.
    probes: &'a BTreeMap<String, Probe>,
    /// The service's write templates (`x-aftershock`): lost-write verdicts too.
    writes: Option<&'a Writes>,
    budgets: Budgets,
}

impl Cx<'_> {
    /// Whether `svc` has a probe (an availability verdict).
    fn observed(&self, svc: &file::Service) -> bool {
        self.check(svc).is_some()
    }

    fn check(&self, svc: &file::Service) -> Option<&Check> {
        self.probes.get(&svc.name)?.check.as_ref()
    }

    /// The file's head and the health probes of the service (and of `also`).
    fn head(
        &self,
        name: &str,
        incident: &str,
        summary: &str,
        also: &[&file::Service],
        secs: u64,
    ) -> String {
        let duration = format!("{secs}s");
        let mut t = format!(
            "# Written by `aftershock audit`; edit and run again with `aftershock run`.\nname = \"{name}\"\nincident = \"{incident}\"\nvariant = \"audit\"\nsummary = \"\"\"\n{summary}\"\"\"\nduration = \"{duration}\"\n\n[topology]\ncompose = {compose}\n",
            compose = self.compose
        );
        for svc in std::iter::once(self.s).chain(also.iter().copied()) {
            let protocol = self.probes.get(&svc.name).and_then(|p| p.protocol);
            let how = match (protocol, self.check(svc)) {
                (Some(kind), Some(_)) => format!("kind = {kind:?}"),
                (None, Some(Check::Exec(cmd))) => format!("kind = \"exec\"\ncommand = {cmd:?}"),
                (None, Some(Check::Tcp(port))) => format!("kind = \"tcp\"\nport = {port}"),
                (None, Some(Check::Http { port, path, .. })) => {
                    format!("kind = \"http\"\nport = {port}\npath = {path:?}")
                }
                (_, None) => continue,
            };
            for replica in file::Scenario::replica_names(svc) {
                let _ = write!(t, "\n[[probe]]\nname = \"{replica}-health\"\n{how}\ntarget = \"{}\"\non = \"{replica}\"\ntimeout = \"2s\"\ninterval = \"250ms\"\n", svc.name);
            }
        }
        t.push_str(&self.write_probe());
        t
    }

    /// The service's `write` probe and its lost-write verdict, when it has write templates.
    fn write_probe(&self) -> String {
        let Some(w) = self.writes else {
            return String::new();
        };
        let s = &self.s.name;
        let kind = w.protocol.as_deref().unwrap_or("write");
        let mut t = format!("\n[[probe]]\nname = \"{s}-writes\"\nkind = \"{kind}\"\ntarget = \"{s}\"\ntimeout = \"2s\"\n");
        if !w.members.is_empty() {
            let _ = writeln!(t, "members = {:?}", w.members);
        }
        let lists = [("write", &w.write), ("read", &w.read)];
        for (key, list) in lists.into_iter().filter(|(_, l)| !l.is_empty()) {
            let _ = writeln!(t, "{key} = {list:?}");
        }
        if let Some(port) = w.port {
            let _ = writeln!(t, "port = {port}");
        }
        let texts = [
            ("method", &w.method),
            ("path", &w.path),
            ("body", &w.body),
            ("read_path", &w.read_path),
        ];
        for (key, value) in texts
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_ref()?)))
        {
            let _ = writeln!(t, "{key} = {value:?}");
        }
        let _ = write!(
            t,
            "\n[[expect]]\nkind = \"no-lost-writes\"\nprobe = \"{s}-writes\"\n"
        );
        t
    }

    /// For every health probe of `svcs`: its longest outage from `fault` on (`outage-within`)
    /// and its recovery after the heal (`recovers-within`), both within the recovery budget.
    fn recovers(&self, fault: &str, svcs: &[&file::Service]) -> String {
        let pairs: Vec<(&str, &file::Service)> = svcs.iter().map(|s| (fault, *s)).collect();
        self.recovers_from(&pairs)
    }

    /// [`Self::recovers`], each service's probes judged against its own fault.
    fn recovers_from(&self, pairs: &[(&str, &file::Service)]) -> String {
        let mut t = String::new();
        for (fault, svc) in pairs.iter().filter(|(_, s)| self.observed(s)) {
            for replica in file::Scenario::replica_names(svc) {
                let budget = self.budgets.recover.as_secs();
                for kind in ["outage-within", "recovers-within"] {
                    let _ = write!(t, "\n[[expect]]\nkind = \"{kind}\"\nprobe = \"{replica}-health\"\nfault = \"{fault}\"\nbudget = \"{budget}s\"\n");
                }
            }
        }
        t
    }

    /// Realtime 2016: a majority restarted at one instant (`at_once`), or a rolling restart.
    fn restart(&self, at_once: bool) -> (String, String) {
        let s = &self.s.name;
        let (name, summary, fault) = if at_once {
            (
                format!("audit-majority-restart-{s}"),
                format!("A majority of `{s}` restarted at one instant (the realtime 2016 quorum loss), down 5 s."),
                "kind = \"restart\"\nselect = \"majority\"\ndown_for = \"5s\"\n",
            )
        } else {
            (
                format!("audit-rolling-restart-{s}"),
                format!("`{s}` restarted one replica at a time, each waiting to rejoin (realtime 2016's remedy)."),
                "kind = \"rolling-restart\"\nselect = \"all\"\nrejoin_timeout = \"60s\"\n",
            )
        };
        let mut t = self.head(
            &name,
            "realtime-2016",
            &summary,
            &[],
            if at_once { 20 } else { 30 },
        );
        let _ = write!(
            t,
            "\n[[fault]]\nname = \"restart\"\ntarget = \"{s}\"\nat = \"4s\"\n{fault}"
        );
        t.push_str(&self.recovers("restart", &[self.s]));
        (format!("{name}.toml"), t)
    }

    /// Realtime 2016 on a group of separate services: a majority of `members` restarted at one
    /// instant (`at_once`), or every member in turn, [`GROUP_GAP`] apart.
    fn group_restart(
        &self,
        group: &str,
        members: &[&file::Service],
        at_once: bool,
    ) -> (String, String) {
        let n = members.len();
        let (name, summary, hit, gap) = if at_once {
            let k = n / 2 + 1;
            (
                format!("audit-majority-restart-{group}"),
                format!("A majority of group `{group}` ({k} of its {n} members) restarted at one instant (the realtime 2016 quorum loss), down {MEMBER_DOWN} s."),
                k,
                0,
            )
        } else {
            (
                format!("audit-rolling-restart-{group}"),
                format!("The members of group `{group}` restarted one at a time, {GROUP_GAP} s apart, each down {MEMBER_DOWN} s (realtime 2016's remedy)."),
                n,
                GROUP_GAP,
            )
        };
        // 15 s after the last member is back: a restarted member's peers may take a few
        // seconds (a Sentinel 10) to know it again.
        let secs = 4 + gap * (hit as u64 - 1) + MEMBER_DOWN + 15;
        let mut t = self.head(&name, "realtime-2016", &summary, &members[1..], secs);
        let mut pairs = vec![];
        for (i, m) in members.iter().enumerate() {
            let fault = format!("restart-{}", m.name);
            if i < hit {
                let at = 4 + gap * i as u64;
                let _ = write!(t, "\n[[fault]]\nname = \"{fault}\"\nkind = \"restart\"\ntarget = \"{}\"\nselect = \"all\"\nat = \"{at}s\"\ndown_for = \"{MEMBER_DOWN}s\"\n", m.name);
                pairs.push((fault, *m));
            } else {
                pairs.push((format!("restart-{}", members[0].name), *m));
            }
        }
        let pairs: Vec<(&str, &file::Service)> =
            pairs.iter().map(|(f, m)| (f.as_str(), *m)).collect();
        t.push_str(&self.recovers_from(&pairs));
        (format!("{name}.toml"), t)
    }

    /// GitHub 2018-10: the service's selected replicas cut (`shape = "isolate"`) from its other
    /// replicas, or from `peers` (the other members of a group, `also`), for [`CUT_SECS`];
    /// every health probe's outage and recovery judged, and the writes, where there are any.
    fn partial_partition(
        &self,
        subject: &str,
        select: &str,
        peers: &[String],
        also: &[&file::Service],
    ) -> (String, String) {
        let s = &self.s.name;
        let name = format!("audit-partial-partition-{subject}");
        let from = if peers.is_empty() {
            "the other replicas".to_string()
        } else {
            peers.join(", ")
        };
        let summary = format!("`{s}` cut from {from} for {CUT_SECS} s, both ways, while clients and probes still reach it (GitHub 2018-10's 43-second partial partition): a failover on the other side must not cost acknowledged writes, and everything must recover.");
        let mut t = self.head(
            &name,
            "github-2018-10-partial-partition",
            &summary,
            also,
            4 + CUT_SECS + 16,
        );
        let _ = write!(t, "\n[[fault]]\nname = \"cut\"\nkind = \"cut\"\nshape = \"isolate\"\ntarget = \"{s}\"\nselect = {select}\nat = \"4s\"\ndown_for = \"{CUT_SECS}s\"\n");
        if !peers.is_empty() {
            let _ = writeln!(t, "peers = {peers:?}");
        }
        t.push_str("\n[[expect]]\nkind = \"fault-verified\"\nfault = \"cut\"\n");
        let svcs: Vec<&file::Service> = std::iter::once(self.s)
            .chain(also.iter().copied())
            .collect();
        t.push_str(&self.recovers("cut", &svcs));
        (format!("{name}.toml"), t)
    }

    /// Clearbit 2016: the whole topology on machines, each machine's dockerd SIGKILLed 0.5 s
    /// after the previous one (`live_restore`: with `--live-restore`).
    fn engine_crash(
        &self,
        also: &[&file::Service],
        live_restore: bool,
        placement: &place::Placement,
    ) -> (String, String) {
        let (name, summary) = if live_restore {
            ("audit-engine-crash-live-restore".to_string(), "The same engine crashes with dockerd --live-restore: containers keep running while their engine restarts.")
        } else {
            ("audit-engine-crash".to_string(), "Every service on machines of their own engines; each machine's dockerd SIGKILLed 0.5 s after the previous one (clearbit 2016): the restored daemons kill what ran and the services' `restart:` policies decide what comes back.")
        };
        let machines = placement.machines.len();
        let mut t = self.head(
            &name,
            "clearbit-2016-06-docker-daemon-restart",
            summary,
            also,
            self.engine_crash_secs(machines),
        );
        // The topology's Compose services go on the machines (a key of `[topology]`).
        let compose = format!("compose = {}\n", self.compose);
        let mut placed = format!("{compose}compose_machines = \"m\"\ncompose_placement = {{ ");
        let each: Vec<String> = placement
            .on
            .iter()
            .map(|(s, ms)| format!("{} = {ms:?}", toml_key(s)))
            .collect();
        let _ = writeln!(placed, "{} }}", each.join(", "));
        t = t.replacen(&compose, &placed, 1);
        let _ = write!(t, "\n[[topology.service]]\nname = \"m\"\npreset = \"machine\"\nreplicas = {machines}\n\n[topology.service.machine]\nunits = false\nlive_restore = {live_restore}\nauto_remove = false\n");
        let _ = write!(t, "\n[[fault]]\nname = \"crash\"\nkind = \"daemon-crash\"\ntarget = \"m\"\nselect = \"all\"\nat = \"4s\"\ngap = \"500ms\"\n");
        let _ = write!(t, "\n[[expect]]\nkind = \"measured-within\"\ntitle = \"every machine's Engine API is back\"\nfault = \"crash\"\nmeasurement = \"engine-downtime\"\nbudget = \"{}s\"\n", self.budgets.recover.as_secs());
        let watched: Vec<&file::Service> = std::iter::once(self.s)
            .chain(also.iter().copied())
            .collect();
        if live_restore {
            let _ = write!(t, "\n[[expect]]\nkind = \"containers-survive\"\ntitle = \"no container on the machines dies\"\nfault = \"crash\"\n");
            for svc in &watched {
                for replica in file::Scenario::replica_names(svc) {
                    let _ = write!(
                        t,
                        "\n[[expect]]\nkind = \"never-fails\"\nprobe = \"{replica}-health\"\n"
                    );
                }
            }
        } else {
            t.push_str(&self.recovers("crash", &watched));
        }
        (format!("{name}.toml"), t)
    }

    /// How long an engine crash on `machines` machines runs: the crash at 4 s, one machine's
    /// dockerd 0.5 s after the previous one's, then the recovery budget and 10 s more (a
    /// recovery is judged only within the run; the default budget gives 45 s for three).
    fn engine_crash_secs(&self, machines: usize) -> u64 {
        let gaps = (machines.saturating_sub(1) as u64).div_ceil(2);
        4 + gaps + self.budgets.recover.as_secs() + 10
    }

    /// The clerk datastore: power cut on the service's disk mid-run.
    /// `volume`: a named volume made a disk of [`DEFAULT_DISK_MB`] (`[topology]
    /// compose_disks`), `(name, file name suffix)`; else the disk the file declares.
    fn power_cut(&self, volume: Option<(&str, &str)>) -> (String, String) {
        let s = &self.s.name;
        let name = match volume {
            Some((_, suffix)) => format!("audit-power-cut-{s}{suffix}"),
            None => format!("audit-power-cut-{s}"),
        };
        let summary = format!("The power of one `{s}` replica's disk cut mid-run (clerk 2017-02 datastore): freeze, shut the file system down unflushed, kill; power back after 3 s.");
        let mut t = self.head(&name, "clerk-2017-02-datastore", &summary, &[], 20);
        if let Some((v, _)) = volume {
            let compose = format!("compose = {}\n", self.compose);
            let disks = format!(
                "compose_disks = {{ {s} = {{ volume = {v:?}, size_mb = {DEFAULT_DISK_MB} }} }}\n"
            );
            t = t.replacen(&compose, &format!("{compose}{disks}"), 1);
        }
        let _ = write!(t, "\n[[fault]]\nname = \"power-cut\"\nkind = \"power-cut\"\ntarget = \"{s}\"\nat = \"4s\"\ndown_for = \"3s\"\n");
        t.push_str(&self.recovers("power-cut", &[self.s]));
        (format!("{name}.toml"), t)
    }

    /// Clerk 2017-03 as a chain: `cache` killed under an open load on `front` (on `port`,
    /// when known), down [`CACHE_DOWN`] s; the database (`self.s`, with its writes), the cache
    /// and `front` watched; the front's p99 and errors during the loss, and its recovery after.
    fn cache_loss(
        &self,
        cache: &file::Service,
        front: &file::Service,
        port: Option<u16>,
        one_replica: bool,
    ) -> (String, String) {
        let (c, db, f) = (&cache.name, &self.s.name, &front.name);
        let (name, summary, select) = if one_replica {
            (
                format!("audit-cache-loss-{c}-one-replica"),
                format!("One replica of `{c}`, the cache in front of `{db}`, killed under load on `{f}` while the others serve (clerk 2017-03's remedy, a second cache): does `{f}` stay within its baseline, and come back?"),
                "one",
            )
        } else {
            (
                format!("audit-cache-loss-{c}"),
                format!("`{c}`, the cache in front of `{db}`, killed (as the OOM killer did at clerk 2017-03) under load on `{f}`: without the cache every read goes to `{db}`; is `{f}` still served, and does it come back once the cache is back?"),
                "all",
            )
        };
        let at = 10;
        let secs = at + CACHE_DOWN + 22;
        let mut t = self.head(
            &name,
            "clerk-2017-03-cache-oom",
            &summary,
            &[cache, front],
            secs,
        );
        if let Some(port) = port {
            // Normal is measured warm: the same load first runs until steady (a cold cache's
            // baseline is already the database's saturation, and nothing looks worse than it).
            let _ = write!(t, "\n[[probe]]\nname = \"{f}-load\"\nkind = \"load\"\ntarget = \"{f}\"\nport = {port}\npath = \"/\"\nrate = {LOAD_RATE}\ntimeout = \"2s\"\nwarm_up = \"{WARM_UP_SECS}s\"\n");
        }
        let _ = write!(t, "\n[[fault]]\nname = \"kill-cache\"\nkind = \"restart\"\ntarget = \"{c}\"\nselect = \"{select}\"\nsignal = \"KILL\"\nat = \"{at}s\"\ndown_for = \"{CACHE_DOWN}s\"\n");
        t.push_str(&self.recovers("kill-cache", &[cache, self.s, front]));
        if port.is_some() {
            let budget = 20;
            let _ = write!(t, "\n[[expect]]\nkind = \"latency-stays-within\"\ntitle = \"`{f}`'s p99 stays within 5× its baseline from `{c}`'s loss on (while it is gone and as it warms again)\"\nprobe = \"{f}-load\"\nfault = \"kill-cache\"\nratio = 5.0\n");
            let _ = write!(t, "\n[[expect]]\nkind = \"no-errors\"\ntitle = \"no request to `{f}` fails (no 5xx, no timeout)\"\nprobe = \"{f}-load\"\n");
            let _ = write!(t, "\n[[expect]]\nkind = \"warm-up-within\"\ntitle = \"`{f}` is back to its baseline (p99 ≤ 2×, hit ratio ≥ 90%) within {budget} s of `{c}`'s restart\"\nprobe = \"{f}-load\"\nfault = \"kill-cache\"\nbudget = \"{budget}s\"\nhit_fraction = 0.9\nratio = 2.0\n");
        }
        (format!("{name}.toml"), t)
    }

    /// The clerk cache: a leak to OOM in one replica, watching its dependents.
    fn leak(&self) -> (String, String) {
        let s = &self.s.name;
        let name = format!("audit-leak-{s}");
        let dependents: Vec<&file::Service> = self
            .services
            .iter()
            .filter(|d| d.uses.iter().any(|u| u.get_ref() == s))
            .collect();
        let summary = format!("A monitoring agent leaks 32 MiB/s inside one `{s}` replica until the kernel's OOM killer acts (clerk 2017-03 cache); its dependents are watched.");
        // Leak start, the time to fill the limit at 32 MiB/s, down 3 s, then room to recover.
        let secs = 4 + self.s.memory_mib.unwrap_or(0) / 32 + 3 + 12;
        let mut t = self.head(
            &name,
            "clerk-2017-03-cache-oom",
            &summary,
            &dependents,
            secs,
        );
        let _ = write!(t, "\n[[fault]]\nname = \"leak\"\nkind = \"leak\"\ntarget = \"{s}\"\nat = \"4s\"\ndown_for = \"3s\"\nleak_mib_per_s = 32\nrejoin_timeout = \"{}s\"\n", self.budgets.oom.as_secs());
        let _ = write!(t, "\n[[expect]]\nkind = \"oom-kill-within\"\nfault = \"leak\"\nbudget = \"{}s\"\nvictim = \"*\"\n", self.budgets.oom.as_secs());
        let mut watched = vec![self.s];
        watched.extend(dependents);
        if watched.iter().any(|w| self.observed(w)) {
            t.push_str(&self.recovers("leak", &watched));
        }
        (format!("{name}.toml"), t)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn service(name: &str, replicas: usize, health: bool, memory: Option<u64>) -> file::Service {
        let mut s = file::Service::named(name);
        s.image = Some("x:1".into());
        s.replicas = replicas;
        s.memory_mib = memory;
        if health {
            s.ready = Some(toml::from_str("exec = [\"true\"]").unwrap());
        }
        s
    }

    #[test]
    fn plans_what_applies_and_says_what_it_skips() {
        let mut api = service("api", 1, true, None);
        api.uses = vec![file::reference("cache")];
        let mut db = service("db", 3, true, None);
        db.disk = Some(file::DiskSpec {
            size_mb: 64,
            path: "/data".into(),
            lossy: false,
        });
        let services = vec![db, service("cache", 1, false, Some(64)), api];
        let writes = Writes {
            write: vec!["sh".into(), "-c".into(), "echo {n} >> /j".into()],
            read: vec!["cat".into(), "/j".into()],
            ..Writes::default()
        };
        let topology = Topology {
            services,
            writes: [("db".to_string(), writes)].into(),
            ..Topology::default()
        };
        let audit = plan(Path::new("/x/compose.yml"), &topology, Budgets::default());
        let names: Vec<&str> = audit.scenarios.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "audit-majority-restart-db.toml",
                "audit-rolling-restart-db.toml",
                "audit-partial-partition-db.toml",
                "audit-power-cut-db.toml",
                "audit-slow-disk-db.toml",
                "audit-leak-cache.toml",
                "audit-engine-crash.toml",
                "audit-engine-crash-live-restore.toml"
            ]
        );
        let table = audit.table();
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("cache ") && l.contains(" none (")),
            "{table}"
        );
        let crash: file::Scenario = toml::from_str(&audit.scenarios[6].1).unwrap();
        assert_eq!(crash.topology.compose_machines.unwrap().get_ref(), "m");
        assert_eq!(
            crash.topology.services[0].replicas, 3,
            "as many machines as db's replicas"
        );
        let live = &audit.scenarios[7].1;
        assert!(
            live.contains("live_restore = true") && live.contains("never-fails"),
            "{live}"
        );
        for (name, text) in &audit.scenarios {
            let parsed: file::Scenario =
                toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            assert_eq!(parsed.topology.compose.unwrap().0, ["/x/compose.yml"]);
        }
        let cut = &audit.scenarios[3].1;
        assert!(
            cut.contains("kind = \"write\"") && cut.contains("no-lost-writes"),
            "{cut}"
        );
        let partition = &audit.scenarios[2].1;
        for part in [
            "kind = \"cut\"\nshape = \"isolate\"\ntarget = \"db\"\nselect = { named = [\"db1\"] }",
            "kind = \"fault-verified\"",
            "kind = \"no-lost-writes\"",
            "probe = \"db3-health\"\nfault = \"cut\"",
        ] {
            assert!(partition.contains(part), "{part}: {partition}");
        }
        let leak = &audit.scenarios[5].1;
        assert!(
            leak.contains("probe = \"api-health\""),
            "the dependent is watched:\n{leak}"
        );
    }
}
