//! Beyond one machine: a 3-node ZooKeeper ensemble with one node per machine and the toy API
//! on a fourth, where the machines are Docker engines known to the run only by their URLs.
//! The "datacenter" is four Docker-in-Docker hosts this test starts (each runs dockerd with
//! `--tlsverify` on `https://<ip>:2376`, certificates of the test's own CA, and nothing else);
//! the runs place, kill, partition, observe and tear down through those URLs alone — as they
//! would on remote hosts. A plain container on the fleet's network (where the placed services
//! are) is refused at the handshake while the first run goes on.
//! Needs a Docker engine; without one these tests fail and say so.

use aftershock::admin::{self, Docker, RunGuard};
use aftershock::{Expect, Experiment, Fault, Machine, Preset, Probe, Select, Service};
use aftershock_model::scenario::engine_url::EngineUrl;
use aftershock_model::timeline::Metric;
use aftershock_tests::knock::{knock_once, Knock};
use aftershock_tests::run_scenario;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig,
    HostConfigCgroupnsModeEnum, Ipam, IpamConfig, NetworkCreateRequest, NetworkingConfig,
    VolumeCreateRequest,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MACHINES: usize = 4;

/// Four bare Docker-in-Docker hosts on a network of their own, labelled as a run of this test
/// (so the reaper takes them if the test dies); removed when dropped. Their engines answer
/// only the client certificate of the fleet's CA (`tls`).
struct Fleet {
    urls: Vec<String>,
    guard: Option<RunGuard>,
    tls: admin::RunTls,
    /// (run id, network, image): where a plain container knocks.
    knock_from: (String, String, String),
}

/// Where a fleet host's dockerd reads its certificates (bind-mounted read-only).
const TLS_DIR: &str = "/etc/aftershock/tls";

/// Creates the fleet's bridge network (`name`) on a /24 of its own; returns its first three
/// octets (`172.30.7`).
async fn create_network(docker: &Docker, name: &str, labels: &HashMap<String, String>) -> String {
    let seed = std::process::id();
    for attempt in 0..32u32 {
        let prefix = format!("172.30.{}", (seed.wrapping_add(attempt * 37)) % 250 + 2);
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.clone()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(format!("{prefix}.0/24")),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => return prefix,
            Err(e) if e.to_string().contains("overlap") => continue,
            Err(e) => panic!("create the fleet's network: {e}"),
        }
    }
    panic!("create the fleet's network: every subnet tried overlaps")
}

/// Starts one Docker-in-Docker host `name` at `ip` on `network`, as the harness starts a
/// machine (no `--privileged`: every capability but SYS_RESOURCE, no seccomp/apparmor/masked
/// paths, every device, its own cgroup namespace, tmpfs /run), with a labelled volume for
/// its engine's data.
async fn start_host(
    docker: &Docker,
    fleet: (&str, &HashMap<String, String>, &Path),
    host: &str,
    ip: &str,
    image: &str,
) {
    let (network, labels, certs) = fleet;
    let name = format!("{network}-{host}");
    let volume = format!("{name}-docker");
    docker
        .create_volume(VolumeCreateRequest {
            name: Some(volume.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create volume {volume}: {e}"));
    let config = serde_json::json!({
        "dockerd": ["--tlsverify", "--tlscacert", format!("{TLS_DIR}/ca.pem"),
                    "--tlscert", format!("{TLS_DIR}/cert.pem"),
                    "--tlskey", format!("{TLS_DIR}/key.pem"),
                    "-H", "unix:///var/run/docker.sock", "-H", "tcp://0.0.0.0:2376"],
        "restart_ms": 2000,
        "units": [],
    });
    let endpoint = EndpointSettings {
        aliases: Some(vec![host.to_string()]),
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        hostname: Some(host.to_string()),
        env: Some(vec![format!("MACHINE_CONFIG={config}")]),
        labels: Some(labels.clone()),
        host_config: Some(HostConfig {
            network_mode: Some(network.to_string()),
            binds: Some(vec![
                format!("{volume}:/var/lib/docker"),
                format!("{}:{TLS_DIR}:ro", certs.display()),
            ]),
            cap_add: Some(vec!["ALL".into()]),
            cap_drop: Some(vec!["SYS_RESOURCE".into()]),
            security_opt: Some(vec![
                "seccomp=unconfined".into(),
                "apparmor=unconfined".into(),
            ]),
            device_cgroup_rules: Some(vec!["a *:* rwm".into()]),
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            tmpfs: Some(HashMap::from([("/run".into(), "rw,exec".into())])),
            masked_paths: Some(vec![]),
            readonly_paths: Some(vec![]),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_string(), endpoint)])),
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(options), body)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    docker
        .start_container(&name, None)
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
}

impl Fleet {
    async fn start() -> Fleet {
        // Four dockerds starting load the machine: not beside another test's timed run.
        let _lock = admin::exclusive().await.unwrap();
        let docker = admin::connect().await.unwrap_or_else(|e| panic!("{e}"));
        let output = admin::output_root();
        let set = admin::ensure_images(&docker, &["machine"], &output)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        static FLEETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = FLEETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let run_id = format!("fleet-{}-{n}", std::process::id());
        let labels = admin::run_labels(&run_id, "fleet");
        let guard = RunGuard::new(docker.clone(), &run_id);
        let network = format!("as-{}", std::process::id());
        let prefix = create_network(&docker, &network, &labels).await;
        let image = set.tag("machine").unwrap().to_string();
        let ips: Vec<String> = (1..=MACHINES)
            .map(|i| format!("{prefix}.{}", 10 + i))
            .collect();
        let tls = admin::make_tls(&output.join(&run_id), &ips).unwrap_or_else(|e| panic!("{e}"));
        let mut urls = vec![];
        for (i, ip) in ips.iter().enumerate() {
            let host = format!("host{}", i + 1);
            let fleet = (network.as_str(), &labels, tls.machine.as_path());
            start_host(&docker, fleet, &host, ip, &image).await;
            urls.push(format!("https://{ip}:2376"));
        }
        let fleet = Fleet {
            urls,
            guard: Some(guard),
            tls,
            knock_from: (run_id, network, image),
        };
        for (i, url) in fleet.urls.iter().enumerate() {
            let started = Instant::now();
            let parsed = fleet.url(url);
            loop {
                let answer = admin::connect_machine("host", &parsed, Duration::from_secs(2)).await;
                match answer {
                    Ok(_) => break,
                    Err(e) if started.elapsed() > Duration::from_secs(90) => {
                        panic!("host{}: {e}", i + 1)
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            println!(
                "host{} answers at {url} after {:.1} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
        fleet
    }

    /// A host's URL with the fleet's client certificate.
    fn url(&self, url: &str) -> EngineUrl {
        EngineUrl::parse(url, Some(self.certs()), None).unwrap()
    }

    fn certs(&self) -> PathBuf {
        self.tls.client.clone()
    }

    /// A machine of the fleet as the runs know it: its URL and the client certificate.
    fn machine(&self, name: &str, url: &str) -> Machine {
        Machine::url(name, url).tls(&self.certs().display().to_string())
    }

    /// Knocks on host1's engine from a plain container on the fleet's network (no client
    /// certificate), on a thread of its own; its result once the engine listens.
    fn knock(&self) -> std::thread::JoinHandle<Option<Knock>> {
        let (run, network, image) = self.knock_from.clone();
        let ip = self.urls[0]
            .trim_start_matches("https://")
            .trim_end_matches(":2376")
            .to_string();
        std::thread::spawn(move || knock_once(&run, &network, &ip, &image))
    }

    /// The ZooKeeper pair's topology on the fleet: zk1..zk3 on host1..host3, the API on host4.
    fn experiment(&self, name: &str, seconds: u64) -> (Experiment, aftershock::ServiceRef) {
        let mut x = Experiment::new(name, Duration::from_secs(seconds)).seed(11);
        for (i, url) in self.urls.iter().enumerate() {
            x.machine(self.machine(&format!("host{}", i + 1), url));
        }
        let zk = Service::preset("zk", Preset::Zookeeper)
            .replicas(3)
            .on_machines(&["host1", "host2", "host3"]);
        let zk = x.service(zk);
        let api = Service::preset("api", Preset::ToyApi)
            .uses(&zk)
            .on_machines(&["host4"]);
        x.service(api);
        (x, zk)
    }

    /// Asserts that nothing of run `run` is left on any machine of the fleet.
    async fn assert_clean(&self, run: &str) {
        for url in &self.urls {
            let parsed = self.url(url);
            let docker = admin::machine_client("host", &parsed).unwrap();
            let left = admin::leftovers(&docker, Some(run)).await.unwrap().count();
            assert!(left.is_empty(), "run {run} left {left:?} on {url}");
        }
    }

    async fn stop(mut self) {
        let removed = self.guard.take().unwrap().teardown().await.unwrap();
        self.tls.remove();
        println!("fleet removed: {removed:?}");
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Two machines' ZooKeeper nodes killed at one instant through their own engines (the exits'
/// spread from the engines' records); quorum lost while they are down and back after.
async fn two_machines_at_once(fleet: &Fleet) -> f64 {
    let (mut x, zk) = fleet.experiment("zookeeper-three-machines-two-killed", 24);
    let writes = x.probe(Probe::zookeeper_write("zk-write", &zk));
    let kill = x.fault(
        Fault::restart("two-machines", &zk, secs(8))
            .at(secs(5))
            .select(Select::Named(vec!["zk1".into(), "zk2".into()])),
    );
    x.expect(Expect::simultaneous(&kill, Duration::from_millis(100)));
    x.expect(Expect::fault_verified(&kill));
    x.expect(Expect::fails_during(&writes, &kill, secs(5)));
    x.expect(Expect::recovers_within(&writes, &kill, secs(20)));
    x.expect(Expect::no_lost_writes(&writes));
    // While it runs, a plain container beside the placed services cannot take a host.
    let knocking = fleet.knock();
    let report = run_scenario(&x.plan().unwrap()).await;
    let knock = knocking.join().expect("the knocking thread");
    knock.expect("host1's engine listens").assert_refused();
    fleet.assert_clean(&report.run_id).await;
    let skew = report
        .measurements
        .iter()
        .find(|m| m.name == Metric::ExitSkew.of("two-machines", None))
        .map(|m| m.value)
        .expect("the exit skew across engines is recorded");
    println!("cross-engine exit skew of 2 nodes: {skew:.3} ms");
    skew
}

/// One machine cut off from the other three by its own firewall: the majority keeps quorum
/// and takes writes; writes through the cut-off node fail until the heal.
///
/// In the same run (one bring-up of the fleet's services, not two), the clerk leak inside a
/// service of our own on host4: the static agent is copied in and run through that host's
/// engine, and the OOM kill is known from that engine alone (its `oom` event and the agent's
/// exec ending SIGKILLed — the host's kernel log and cgroups are not ours to read). With an
/// empty cache the agent is the largest process: it is the victim, and the cache keeps
/// answering.
async fn one_machine_partitioned(fleet: &Fleet) {
    let (mut x, zk) = fleet.experiment("zookeeper-three-machines-partition", 25);
    // Never-fails judgements on timeouts of 2 s (a write answers in milliseconds): the run may
    // then share the host with one run without machines (`scenario::overlap`).
    let two = Duration::from_secs(2);
    let majority = x.probe(
        Probe::zookeeper_write("majority-write", &zk)
            .on("zk2")
            .timeout(two),
    );
    let minority = x.probe(Probe::zookeeper_write("minority-write", &zk).on("zk1"));
    let cut = x.fault(
        Fault::machine_partition("cut-host1", &zk)
            .at(secs(5))
            .down_for(secs(10))
            .select(Select::Named(vec!["zk1".into()])),
    );
    x.expect(Expect::fault_verified(&cut));
    x.expect(
        Expect::never_fails(&majority).title("the majority side keeps quorum: writes never fail"),
    );
    x.expect(
        Expect::fails_during(&minority, &cut, secs(5))
            .title("writes through the cut-off node fail"),
    );
    x.expect(Expect::recovers_within(&minority, &cut, secs(15)));
    x.expect(Expect::no_lost_writes(&majority));
    x.expect(Expect::no_lost_writes(&minority));
    let cache = Service::generic("cache", "memcached")
        .command(&["-m", "32"])
        .memory_mib(128)
        .ready(aftershock::Check::Tcp(11211), secs(60))
        .on_machines(&["host4"]);
    let cache = x.service(cache);
    let port = x.probe(Probe::tcp("cache-port", &cache, 11211).timeout(two));
    let leak = x.fault(
        Fault::leak("leak", &cache, secs(2))
            .at(secs(2))
            .leak_rate(32),
    );
    x.expect(Expect::oom_kill_within(&leak, secs(10), "leak-agent"));
    x.expect(Expect::never_fails(&port).title("the cache (not the victim) keeps answering"));
    let report = run_scenario(&x.plan().unwrap()).await;
    fleet.assert_clean(&report.run_id).await;
}

/// A lossy link, then an engine crash, on hosts known only by URL: host1's firewall drops 30%
/// of what it exchanges with the others (netem's loss on a placed service), then host3's
/// dockerd is SIGKILLed by a helper in its PID namespace; its init brings dockerd back, which
/// (no live-restore) kills zk3. The majority keeps taking writes.
async fn a_lossy_link_then_an_engine_crash(fleet: &Fleet) {
    let (mut x, zk) = fleet.experiment("zookeeper-three-machines-lossy-link-engine-crash", 28);
    let writes = x.probe(Probe::zookeeper_write("zk2-write", &zk).on("zk2"));
    let on_zk3 = x.probe(Probe::tcp("zk3-port", &zk, 2181).on("zk3"));
    let lossy = x.fault(
        Fault::netem("lossy-host1", &zk, 30.0)
            .at(secs(4))
            .down_for(secs(6))
            .select(Select::Named(vec!["zk1".into()])),
    );
    let crash = x.fault(
        Fault::daemon_crash("crash-host3", &zk, Duration::ZERO)
            .at(secs(12))
            .select(Select::Named(vec!["zk3".into()])),
    );
    x.expect(Expect::fault_verified(&lossy));
    x.expect(
        Expect::measured_within(&crash, "engine-downtime", secs(20))
            .title("host3's Engine API is back (its init restarts dockerd)"),
    );
    x.expect(
        Expect::fails_during(&on_zk3, &crash, secs(3))
            .title("zk3 goes down with its engine (no live-restore)"),
    );
    x.expect(Expect::recovers_within(&writes, &crash, secs(20)));
    x.expect(Expect::no_lost_writes(&writes));
    let report = run_scenario(&x.plan().unwrap()).await;
    fleet.assert_clean(&report.run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_across_three_machines_known_only_by_url() {
    let fleet = Fleet::start().await;
    two_machines_at_once(&fleet).await;
    one_machine_partitioned(&fleet).await;
    a_lossy_link_then_an_engine_crash(&fleet).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_url_that_does_not_answer_is_refused_before_anything_starts() {
    let mut x = Experiment::new("unreachable-machine", secs(5));
    // A port nothing listens on, on loopback.
    x.machine(Machine::url("far-away", "tcp://127.0.0.1:9"));
    x.service(Service::generic("web", "memcached").on_machines(&["far-away"]));
    let started = Instant::now();
    let e = aftershock::run(&x.plan().unwrap(), &aftershock::RunOptions::default())
        .await
        .expect_err("a machine that does not answer must refuse the run")
        .to_string();
    println!("{e} ({:.1} s)", started.elapsed().as_secs_f64());
    assert!(e.contains("machine `far-away`"), "{e}");
    assert!(e.contains("tcp://127.0.0.1:9"), "{e}");
    assert!(
        started.elapsed() < secs(10),
        "refused at once, not after a timeout of bring-up"
    );
    for what in ["ps", "network ls", "volume ls"] {
        let mut args: Vec<&str> = what.split(' ').collect();
        args.extend([
            "-aq",
            "--filter",
            "label=aftershock.scenario=unreachable-machine",
        ]);
        if what != "ps" {
            args.retain(|a| *a != "-aq");
            args.push("-q");
        }
        let out = std::process::Command::new("docker")
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "docker {args:?}");
        let listed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            listed.is_empty(),
            "docker {what}: the refused run created {listed}"
        );
    }
}

/// The figures for the notes, not part of `make test` (about two minutes): five kills of two
/// nodes and five of all three, each through their machines' engines at one instant, on one
/// ensemble; prints each exit skew (from the engines' records) and checks each is recorded and
/// within ZooKeeper's tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --test multi_machine -- --ignored --nocapture"]
async fn cross_engine_exit_skew_of_two_and_three_nodes() {
    let fleet = Fleet::start().await;
    let (mut x, zk) = fleet.experiment("zookeeper-three-machines-skew", 44);
    let mut faults = vec![];
    for i in 0..10u64 {
        let (name, select) = if i < 5 {
            (
                format!("two-{i}"),
                Select::Named(vec!["zk1".into(), "zk2".into()]),
            )
        } else {
            (format!("three-{i}"), Select::All)
        };
        let f = x.fault(
            Fault::restart(&name, &zk, secs(1))
                .at(secs(2 + 4 * i))
                .select(select),
        );
        x.expect(Expect::simultaneous(&f, Duration::from_millis(500)));
        faults.push(name);
    }
    let report = run_scenario(&x.plan().unwrap()).await;
    for f in &faults {
        let skew = report
            .measurements
            .iter()
            .find(|m| m.name == Metric::ExitSkew.of(f, None))
            .map(|m| m.value)
            .unwrap_or_else(|| panic!("{f}: no exit skew recorded"));
        println!("{f}: exit skew across engines {skew:.3} ms");
    }
    fleet.stop().await;
}
