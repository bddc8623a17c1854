//! `aftershock audit COMPOSE_FILE`: the catalogue of postmortems planned against an
//! architecture. Pure: from a Compose file's services (as [`crate::scenario::load_compose`]
//! gives them) to scenario files (TOML text, each bringing the whole Compose topology up) and
//! the archetypes skipped, with why. The CLI writes the files and runs them as a suite.
//!
//! Availability is judged from each replica's health check (an `exec` probe running its
//! `healthcheck.test`); a service without one is audited only where the kernel's own record is
//! the verdict (the OOM kill).

use crate::scenario::compose::{Topology, Writes};
use crate::scenario::file;
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

/// What the audit will run.
#[derive(Debug, Default)]
pub struct Audit {
    /// `(file name, scenario text)`.
    pub scenarios: Vec<(String, String)>,
    /// An archetype not run, and why.
    pub skipped: Vec<String>,
}

/// Plans the archetypes that apply to each service of the Compose file at `compose`.
pub fn plan(compose: &Path, topology: &Topology, budgets: Budgets) -> Audit {
    let mut audit = Audit::default();
    let services = &topology.services;
    for s in services {
        let health = s.ready.as_ref().and_then(|r| r.exec.clone());
        let writes = topology.writes.get(&s.name);
        let cx = Cx {
            compose,
            services,
            s,
            health: health.as_deref(),
            writes,
            budgets,
        };
        if health.is_none() {
            audit.skipped.push(format!("{}: no healthcheck, so no availability verdict: restarts and the power cut skipped (add `healthcheck: test: [\"CMD\", …]`)", s.name));
        }
        if s.replicas >= 2 && health.is_some() {
            audit.scenarios.push(cx.restart(true));
            audit.scenarios.push(cx.restart(false));
        } else if health.is_some() {
            audit.skipped.push(format!(
                "{}: one replica, no group to restart (realtime 2016 needs `deploy.replicas` ≥ 2)",
                s.name
            ));
        }
        match (&s.disk, health.is_some()) {
            (Some(_), true) => audit.scenarios.push(cx.power_cut()),
            (None, _) => audit.skipped.push(format!("{}: no disk (power cut needs a named volume with `x-aftershock: {{ disk: {{ size_mb: … }} }}`)", s.name)),
            _ => {}
        }
        match s.memory_mib {
            Some(_) => audit.scenarios.push(cx.leak()),
            None => audit.skipped.push(format!("{}: no memory limit (leak → OOM needs `mem_limit` or `deploy.resources.limits.memory`)", s.name)),
        }
    }
    engine_crashes(compose, topology, budgets, &mut audit);
    audit
}

/// Clearbit 2016, on the whole topology: every service on Docker-in-Docker machines (replica
/// i of each on machine i, so as many machines as the largest service has replicas), each
/// machine's dockerd SIGKILLed in turn; as it was, and with live-restore.
fn engine_crashes(compose: &Path, topology: &Topology, budgets: Budgets, audit: &mut Audit) {
    let services = &topology.services;
    let watched: Vec<&file::Service> = services
        .iter()
        .filter(|s| s.ready.as_ref().is_some_and(|r| r.exec.is_some()))
        .collect();
    let Some(first) = watched.first() else {
        audit.skipped.push("engine crash (clearbit 2016): no service has a healthcheck, so no availability verdict".into());
        return;
    };
    let writes = topology.writes.get(&first.name);
    let cx = Cx {
        compose,
        services,
        s: first,
        health: None,
        writes,
        budgets,
    };
    for live_restore in [false, true] {
        audit
            .scenarios
            .push(cx.engine_crash(&watched[1..], live_restore));
    }
}

/// One service's planning.
struct Cx<'a> {
    compose: &'a Path,
    services: &'a [file::Service],
    s: &'a file::Service,
    health: Option<&'a [String]>,
    /// The service's write templates (`x-aftershock`): lost-write verdicts too.
    writes: Option<&'a Writes>,
    budgets: Budgets,
}

impl Cx<'_> {
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
            "# Written by `aftershock audit`; edit and run again with `aftershock run`.\nname = \"{name}\"\nincident = \"{incident}\"\nvariant = \"audit\"\nsummary = \"\"\"\n{summary}\"\"\"\nduration = \"{duration}\"\n\n[topology]\ncompose = {compose:?}\n",
            compose = self.compose.display().to_string()
        );
        for svc in std::iter::once(self.s).chain(also.iter().copied()) {
            let Some(cmd) = svc.ready.as_ref().and_then(|r| r.exec.as_ref()) else {
                continue;
            };
            for replica in file::Scenario::replica_names(svc) {
                let _ = write!(t, "\n[[probe]]\nname = \"{replica}-health\"\nkind = \"exec\"\ntarget = \"{}\"\non = \"{replica}\"\ncommand = {cmd:?}\ntimeout = \"2s\"\ninterval = \"250ms\"\n", svc.name);
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
        let mut t = format!("\n[[probe]]\nname = \"{s}-writes\"\nkind = \"write\"\ntarget = \"{s}\"\ntimeout = \"2s\"\n");
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
        let mut t = String::new();
        for svc in svcs
            .iter()
            .filter(|s| s.ready.as_ref().is_some_and(|r| r.exec.is_some()))
        {
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

    /// Clearbit 2016: the whole topology on machines, each machine's dockerd SIGKILLed 0.5 s
    /// after the previous one (`live_restore`: with `--live-restore`).
    fn engine_crash(&self, also: &[&file::Service], live_restore: bool) -> (String, String) {
        let (name, summary) = if live_restore {
            ("audit-engine-crash-live-restore".to_string(), "The same engine crashes with dockerd --live-restore: containers keep running while their engine restarts.")
        } else {
            ("audit-engine-crash".to_string(), "Every service on machines of their own engines; each machine's dockerd SIGKILLed 0.5 s after the previous one (clearbit 2016): the restored daemons kill what ran and the services' `restart:` policies decide what comes back.")
        };
        let machines = self.services.iter().map(|s| s.replicas).max().unwrap_or(1);
        let mut t = self.head(
            &name,
            "clearbit-2016-06-docker-daemon-restart",
            summary,
            also,
            45,
        );
        // The topology's Compose services go on the machines (a key of `[topology]`).
        let compose = format!("compose = {:?}\n", self.compose.display().to_string());
        t = t.replacen(&compose, &format!("{compose}compose_machines = \"m\"\n"), 1);
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

    /// The clerk datastore: power cut on the service's disk mid-run.
    fn power_cut(&self) -> (String, String) {
        let s = &self.s.name;
        let name = format!("audit-power-cut-{s}");
        let summary = format!("The power of one `{s}` replica's disk cut mid-run (clerk 2017-02 datastore): freeze, shut the file system down unflushed, kill; power back after 3 s.");
        let mut t = self.head(&name, "clerk-2017-02-datastore", &summary, &[], 20);
        let _ = write!(t, "\n[[fault]]\nname = \"power-cut\"\nkind = \"power-cut\"\ntarget = \"{s}\"\nat = \"4s\"\ndown_for = \"3s\"\n");
        t.push_str(&self.recovers("power-cut", &[self.s]));
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
        if self.health.is_some() || watched.len() > 1 {
            t.push_str(&self.recovers("leak", &watched));
        }
        (format!("{name}.toml"), t)
    }
}

#[cfg(test)]
mod tests {
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
                "audit-power-cut-db.toml",
                "audit-leak-cache.toml",
                "audit-engine-crash.toml",
                "audit-engine-crash-live-restore.toml"
            ]
        );
        let skipped = audit.skipped.join("\n");
        assert!(skipped.contains("cache: no healthcheck"), "{skipped}");
        let crash: file::Scenario = toml::from_str(&audit.scenarios[4].1).unwrap();
        assert_eq!(crash.topology.compose_machines.unwrap().get_ref(), "m");
        assert_eq!(
            crash.topology.services[0].replicas, 3,
            "as many machines as db's replicas"
        );
        let live = &audit.scenarios[5].1;
        assert!(
            live.contains("live_restore = true") && live.contains("never-fails"),
            "{live}"
        );
        for (name, text) in &audit.scenarios {
            let parsed: file::Scenario =
                toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            assert_eq!(parsed.topology.compose.unwrap().get_ref(), "/x/compose.yml");
        }
        let cut = &audit.scenarios[2].1;
        assert!(
            cut.contains("kind = \"write\"") && cut.contains("no-lost-writes"),
            "{cut}"
        );
        let leak = &audit.scenarios[3].1;
        assert!(
            leak.contains("probe = \"api-health\""),
            "the dependent is watched:\n{leak}"
        );
    }
}
