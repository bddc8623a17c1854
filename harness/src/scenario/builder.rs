//! Building a [`Scenario`] in Rust instead of TOML: the same type, the same validation.
//!
//! ```
//! use aftershock::scenario::{builder::ScenarioBuilder, Preset, ProbeKind};
//! use std::time::Duration;
//! let s = ScenarioBuilder::new("zk-smoke", Duration::from_secs(10))
//!     .service("zk", Preset::Zookeeper, 3, &[])
//!     .probe("writes", ProbeKind::ZookeeperWrite, "zk", None)
//!     .build()
//!     .unwrap();
//! assert_eq!(s.topology.services[0].replicas, 3);
//! ```

use super::*;

/// Accumulates the parts of a scenario; [`ScenarioBuilder::build`] validates them.
pub struct ScenarioBuilder {
    scenario: Scenario,
}

impl ScenarioBuilder {
    pub fn new(name: &str, duration: Duration) -> Self {
        Self {
            scenario: Scenario {
                name: name.into(),
                incident: None,
                variant: default_variant(),
                summary: String::new(),
                duration,
                seed: None,
                topology: Topology::default(),
                probes: vec![],
                faults: vec![],
                expectations: vec![],
            },
        }
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.scenario.seed = Some(seed);
        self
    }

    pub fn service(mut self, name: &str, preset: Preset, replicas: usize, uses: &[&str]) -> Self {
        self.scenario.topology.services.push(Service {
            name: name.into(),
            preset: Some(preset),
            image: None,
            entrypoint: None,
            replicas,
            env: BTreeMap::new(),
            uses: uses.iter().map(|u| reference(*u)).collect(),
            disk: None,
            memory_mib: None,
            oom_score_adj: None,
            command: vec![],
            volumes: vec![],
            cpus: None,
            ready: None,
            machine: None,
        });
        self
    }

    /// Adds a generic service: `replicas` containers of `image` (a project image's name or a
    /// local tag), ready when `ready` passes (None: when running).
    pub fn generic(
        mut self,
        name: &str,
        image: &str,
        replicas: usize,
        ready: Option<Check>,
    ) -> Self {
        self = self.service(name, Preset::Memcached, replicas, &[]);
        if let Some(s) = self.scenario.topology.services.last_mut() {
            s.preset = None;
            s.image = Some(image.into());
            s.ready = ready.map(|check| {
                let mut r = ReadyCheck {
                    tcp: None,
                    http: None,
                    path: None,
                    status: None,
                    exec: None,
                    timeout: default_ready_timeout(),
                };
                match check {
                    Check::Tcp(port) => r.tcp = Some(port),
                    Check::Http { port, path, status } => {
                        (r.http, r.path, r.status) = (Some(port), Some(path), status)
                    }
                    Check::Exec(cmd) => r.exec = Some(cmd),
                }
                r
            });
        }
        self
    }

    /// Sets the command of the last service added.
    pub fn command(mut self, command: &[&str]) -> Self {
        if let Some(s) = self.scenario.topology.services.last_mut() {
            s.command = command.iter().map(|c| c.to_string()).collect();
        }
        self
    }

    /// Adds `replicas` machines (Docker-in-Docker hosts) with these options.
    pub fn machines(mut self, name: &str, replicas: usize, options: MachineOptions) -> Self {
        self = self.service(name, Preset::Machine, replicas, &[]);
        if let Some(s) = self.scenario.topology.services.last_mut() {
            s.machine = Some(options);
        }
        self
    }

    pub fn probe(mut self, name: &str, kind: ProbeKind, target: &str, path: Option<&str>) -> Self {
        self.scenario.probes.push(Probe {
            name: name.into(),
            kind,
            target: reference(target),
            interval: default_interval(),
            timeout: default_timeout(),
            path: path.map(str::to_string),
            rate: None,
            keys: None,
            prime: false,
            key: None,
            on: None,
            push: false,
            port: None,
            status: None,
            command: vec![],
            record_bytes: None,
        });
        self
    }

    /// Points the last probe added at one replica (`on`) and a port (tcp, http).
    pub fn on(mut self, replica: &str, port: Option<u16>) -> Self {
        if let Some(p) = self.scenario.probes.last_mut() {
            p.on = Some(reference(replica));
            p.port = port;
        }
        self
    }

    /// Adds a fault; `down_for` is how long the selected replicas stay down.
    pub fn fault(
        mut self,
        name: &str,
        kind: FaultKind,
        at: Duration,
        target: &str,
        select: Select,
        down_for: Option<Duration>,
    ) -> Self {
        self.scenario.faults.push(Fault {
            name: name.into(),
            kind,
            at,
            target: reference(target),
            select,
            signal: Signal::Kill,
            down_for,
            rejoin_timeout: default_rejoin(),
            leak_mib_per_s: None,
            gap: None,
            delay: None,
            loss_percent: None,
            port: None,
            tear: None,
        });
        self
    }

    /// Sets the signal of the last fault added (`kill`, `restart`).
    pub fn signal(mut self, signal: Signal) -> Self {
        if let Some(f) = self.scenario.faults.last_mut() {
            f.signal = signal;
        }
        self
    }

    /// Sets the delay and loss of the last fault added (`netem`).
    pub fn netem(mut self, delay: Option<Duration>, loss_percent: Option<f64>) -> Self {
        if let Some(f) = self.scenario.faults.last_mut() {
            (f.delay, f.loss_percent) = (delay, loss_percent);
        }
        self
    }

    /// Sets the memory limit (MiB) and `oom_score_adj` of the last service added.
    pub fn memory(mut self, mib: u64, oom_score_adj: Option<i64>) -> Self {
        if let Some(s) = self.scenario.topology.services.last_mut() {
            s.memory_mib = Some(mib);
            s.oom_score_adj = oom_score_adj;
        }
        self
    }

    /// Makes the last probe added an open-loop load of `rate` requests/s over `keys` keys.
    pub fn load(mut self, rate: u32, keys: u32, prime: bool) -> Self {
        if let Some(p) = self.scenario.probes.last_mut() {
            p.rate = Some(rate);
            p.keys = Some(keys);
            p.prime = prime;
        }
        self
    }

    /// Sets the gap of the last fault added (`daemon-crash`).
    pub fn gap(mut self, gap: Duration) -> Self {
        if let Some(f) = self.scenario.faults.last_mut() {
            f.gap = Some(gap);
        }
        self
    }

    pub fn expect(mut self, expectation: Expectation) -> Self {
        self.scenario.expectations.push(expectation);
        self
    }

    /// Validates and returns the scenario; errors read like a file's, with file `<builder>`.
    pub fn build(self) -> Result<Scenario, ScenarioError> {
        validate::validate(&self.scenario).map_err(|(_, message)| ScenarioError::At {
            file: "<builder>".into(),
            line: 0,
            column: 0,
            message,
        })?;
        Ok(self.scenario)
    }
}
