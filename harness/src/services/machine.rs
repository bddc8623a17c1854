//! The machine preset: each replica is a host of its own — a Docker-in-Docker container running
//! Debian's dockerd under `machine-init`, our small systemd — with the units of the clearbit
//! machines of 2016: a consul server on every machine, the private registry on the first, and
//! optionally the stale-name and restart-policy canaries.
//!
//! This module only describes (the container, `MACHINE_CONFIG` for machine-init) and speaks the
//! units' protocols (consul's HTTP API, the registry's `/v2/`). The engine layer creates the
//! machines and talks to their inner engines.

use super::{Addresses, ServiceError};
use crate::engine::inner::Inner;
use crate::engine::tls::RunTls;
use crate::engine::{ContainerSpec, Privileges};
use crate::scenario::plan::{Service, ServiceKind};
use crate::scenario::{MachineOptions, RegistryConfig};
use serde_json::json;
use std::time::Duration;

pub const CONSUL_PORT: u16 = 8500;
pub const REGISTRY_PORT: u16 = 5000;
/// The key the scenarios write before the fault and look for afterwards.
pub const TEST_KEY: &str = crate::scenario::CONSUL_TEST_KEY;
/// The value written to it.
pub const TEST_VALUE: &str = "written before the fault";
/// Where the registry reads its configuration when `registry_config = "consul"`.
pub const REGISTRY_KEY: &str = "registry/config.yml";
/// The registry configuration (the same file the unit image ships as its local configuration).
pub const REGISTRY_CONFIG: &str = include_str!("../../../images/machine-unit/registry.yml");

/// The machine's options, defaults when the scenario gives none.
pub fn options(service: &Service) -> MachineOptions {
    match &service.kind {
        ServiceKind::Machine(options) => options.clone(),
        ServiceKind::Generic | ServiceKind::Preset(_) | ServiceKind::Attached(_) => {
            MachineOptions::default()
        }
    }
}

/// The replica that runs the registry unit (the first machine).
pub fn registry_machine(service: &Service) -> String {
    service.replicas[0].clone()
}

/// `ip:5000` of the registry.
pub fn registry_address(service: &Service, addresses: &Addresses) -> String {
    format!("{}:{REGISTRY_PORT}", addresses[&registry_machine(service)])
}

fn unit(
    name: &str,
    options: &MachineOptions,
    run: Vec<&str>,
    image: &str,
    cmd: Vec<String>,
) -> serde_json::Value {
    json!({
        "name": name,
        "style": options.unit_style,
        "rm": options.auto_remove,
        "client_api": null,
        "run": run,
        "image": image,
        "cmd": cmd,
    })
}

/// What machine-init runs on `replica`: dockerd's arguments and the units.
pub fn machine_config(
    service: &Service,
    replica: &str,
    addresses: &Addresses,
    unit_image: &str,
) -> serde_json::Value {
    let o = options(service);
    let mut units = vec![];
    if o.units {
        units.push(consul_unit(service, replica, addresses, &o, unit_image));
        if replica == registry_machine(service) {
            units.push(registry_unit(&o, unit_image));
        }
    }
    units.extend(canary_units(&o, unit_image));
    json!({
        "dockerd": dockerd_args(&o, &addresses[replica]),
        "restart_ms": o.restart_sec.as_millis() as u64,
        "units": units,
    })
}

/// Where a machine finds the run's certificates for its dockerd (bind-mounted read-only from
/// `<run dir>/tls/machine`: `ca.pem`, `cert.pem`, `key.pem`).
pub const TLS_DIR: &str = "/etc/aftershock/tls";

/// dockerd on the machine's socket and on TCP for the harness — TLS, answering only a client
/// certificate of the run's CA — trusting the run's network (`ip`'s /24) as an insecure registry.
fn dockerd_args(o: &MachineOptions, ip: &str) -> Vec<String> {
    let subnet = format!("{}.0/24", ip.rsplit_once('.').map_or(ip, |(p, _)| p));
    let mut dockerd = vec![
        "--tlsverify".to_string(),
        "--tlscacert".into(),
        format!("{TLS_DIR}/ca.pem"),
        "--tlscert".into(),
        format!("{TLS_DIR}/cert.pem"),
        "--tlskey".into(),
        format!("{TLS_DIR}/key.pem"),
        "-H".into(),
        "unix:///var/run/docker.sock".into(),
        "-H".into(),
        format!("tcp://0.0.0.0:{}", crate::engine::inner::PORT),
        "--insecure-registry".into(),
        subnet,
    ];
    if o.live_restore {
        dockerd.push("--live-restore".into());
    }
    dockerd
}

/// The consul server of `replica`, expecting every machine of the service and joining the others.
fn consul_unit(
    service: &Service,
    replica: &str,
    addresses: &Addresses,
    o: &MachineOptions,
    unit_image: &str,
) -> serde_json::Value {
    let replicas = &service.replicas;
    let ip = &addresses[replica];
    let mut cmd: Vec<String> = [
        "/usr/bin/consul",
        "agent",
        "-server",
        "-data-dir=/consul/data",
        "-client=0.0.0.0",
        "-retry-interval=1s",
        "-hcl",
        "performance { raft_multiplier = 1 }",
        "-hcl",
        "disable_update_check = true",
    ]
    .map(String::from)
    .to_vec();
    cmd.push(format!("-bootstrap-expect={}", replicas.len()));
    cmd.push(format!("-bind={ip}"));
    cmd.push(format!("-node={replica}"));
    for other in replicas.iter().filter(|r| *r != replica) {
        cmd.push(format!("-retry-join={}", addresses[other]));
    }
    let mut run = vec!["--network", "host"];
    if o.persistent_data {
        run.extend(["-v", "/var/lib/consul:/consul/data"]);
    }
    unit("consul", o, run, unit_image, cmd)
}

/// The private registry (first machine): its configuration from the image, or fetched from
/// consul's KV store before it starts.
fn registry_unit(o: &MachineOptions, unit_image: &str) -> serde_json::Value {
    let mut run = vec!["--network", "host"];
    if o.persistent_data {
        run.extend(["-v", "/var/lib/registry:/var/lib/docker-registry"]);
    }
    let serve = ["/usr/bin/docker-registry", "serve"].map(String::from);
    let cmd: Vec<String> = match o.registry_config {
        RegistryConfig::Local => [&serve[..], &["/etc/registry/config.yml".into()]].concat(),
        RegistryConfig::Consul => {
            let file = "/etc/registry/from-consul.yml".to_string();
            let mut c = vec![
                "/usr/local/bin/machine-init".to_string(),
                "fetch-then-exec".into(),
                format!("http://127.0.0.1:{CONSUL_PORT}/v1/kv/{REGISTRY_KEY}?raw"),
                file.clone(),
            ];
            c.extend(serve.iter().cloned());
            c.push(file);
            c
        }
    };
    unit("registry", o, run, unit_image, cmd)
}

/// The canaries the options ask for: the stale-name one (`--rm` by an old client API) and one
/// per restart policy; each only pauses.
fn canary_units(o: &MachineOptions, unit_image: &str) -> Vec<serde_json::Value> {
    let pause = vec!["/usr/local/bin/machine-init".to_string(), "pause".into()];
    let mut units = vec![];
    if let Some(api) = &o.canary_client_api {
        let mut canary = unit(
            "canary",
            o,
            vec!["--network", "none"],
            unit_image,
            pause.clone(),
        );
        canary["client_api"] = json!(api);
        canary["rm"] = json!(true); // what the canary is about: `--rm` done by an old client
        units.push(canary);
    }
    if o.policy_canaries {
        for policy in ["always", "unless-stopped"] {
            let mut c = unit(
                policy,
                o,
                vec!["--network", "none", "--restart", policy],
                unit_image,
                pause.clone(),
            );
            c["detach"] = json!(true);
            units.push(c);
        }
    }
    units
}

/// The machine containers of the service.
pub fn containers(
    service: &Service,
    addresses: &Addresses,
    image: &str,
    unit_image: &str,
) -> Vec<ContainerSpec> {
    service
        .replicas
        .iter()
        .map(|replica| ContainerSpec {
            replica: replica.clone(),
            image: image.to_string(),
            env: vec![format!(
                "MACHINE_CONFIG={}",
                machine_config(service, replica, addresses, unit_image)
            )],
            cmd: None,
            ip: addresses[replica].clone(),
            privileges: Some(Privileges::docker_in_docker()),
            volumes: vec![("docker".into(), "/var/lib/docker".into())],
            ..Default::default()
        })
        .collect()
}

fn client(timeout: Duration) -> reqwest::Client {
    super::generic::http_client(timeout)
}

/// The leader consul server `ip` knows (`/v1/status/leader`), or why there is none.
pub async fn consul_leader(ip: &str, timeout: Duration) -> Result<String, ServiceError> {
    let url = format!("http://{ip}:{CONSUL_PORT}/v1/status/leader");
    let r = client(timeout).get(url).send().await?;
    let status = r.status();
    let body: String = r.json().await.unwrap_or_default();
    if status.is_success() && !body.is_empty() {
        Ok(body)
    } else {
        Err(ServiceError::NoLeader { status })
    }
}

/// The value of `key` (`Ok(None)`: consul answered 404, the key does not exist).
pub async fn kv_get(
    ip: &str,
    key: &str,
    timeout: Duration,
) -> Result<Option<String>, ServiceError> {
    let url = format!("http://{ip}:{CONSUL_PORT}/v1/kv/{key}?raw");
    let r = client(timeout).get(url).send().await?;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    match status {
        200 => Ok(Some(body)),
        404 => Ok(None),
        _ => Err(ServiceError::Status {
            status,
            body: body.trim().into(),
        }),
    }
}

/// Writes `key` (PUT `/v1/kv/<key>`).
pub async fn kv_put(
    ip: &str,
    key: &str,
    value: &str,
    timeout: Duration,
) -> Result<(), ServiceError> {
    let url = format!("http://{ip}:{CONSUL_PORT}/v1/kv/{key}");
    let r = client(timeout)
        .put(url)
        .body(value.to_string())
        .send()
        .await?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if status.is_success() && body.trim() == "true" {
        Ok(())
    } else {
        Err(ServiceError::Status {
            status: status.as_u16(),
            body: body.trim().into(),
        })
    }
}

/// Whether the registry at `ip:5000` answers `/v2/` with 200.
pub async fn registry_v2(address: &str, timeout: Duration) -> Result<(), ServiceError> {
    let r = client(timeout)
        .get(format!("http://{address}/v2/"))
        .send()
        .await?;
    match r.status().as_u16() {
        200 => Ok(()),
        status => Err(ServiceError::Status {
            status,
            body: String::new(),
        }),
    }
}

/// Whether `replica`'s engine at `ip` answers `/_ping` to the run's client certificate.
async fn engine_answers(replica: &str, ip: &str, tls: Option<&RunTls>) -> Result<(), ServiceError> {
    let timeout = Duration::from_millis(500);
    let inner = Inner::connect(replica, ip, tls, timeout)?;
    Ok(inner.answers(timeout).await?)
}

fn gave_up(step: String, last: ServiceError, before: String) -> ServiceError {
    ServiceError::GaveUp {
        step,
        source: Box::new(last),
        before,
    }
}

/// Ready when every given machine's engine answers and (with units) every consul server knows
/// a leader.
pub async fn ready(
    service: &Service,
    replicas: &[String],
    addresses: &Addresses,
    tls: Option<&RunTls>,
) -> Result<(), ServiceError> {
    for r in replicas {
        let ip = &addresses[r];
        engine_answers(r, ip, tls)
            .await
            .map_err(ServiceError::at(format!("{r}'s engine")))?;
        if !options(service).units {
            continue;
        }
        consul_leader(ip, Duration::from_millis(500))
            .await
            .map_err(ServiceError::at(format!("{r}'s consul")))?;
    }
    Ok(())
}

/// After readiness: writes the test key (and the registry's configuration when it lives in
/// consul), then waits for the registry to answer.
pub async fn set_up(
    service: &Service,
    addresses: &Addresses,
    timeout: Duration,
) -> Result<(), ServiceError> {
    if !options(service).units {
        return Ok(());
    }
    let ip = &addresses[&registry_machine(service)];
    let mut writes = vec![(TEST_KEY, TEST_VALUE)];
    if options(service).registry_config == RegistryConfig::Consul {
        writes.push((REGISTRY_KEY, REGISTRY_CONFIG));
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut last = String::new();
    for (key, value) in writes {
        loop {
            match kv_put(ip, key, value, Duration::from_secs(2)).await {
                Ok(()) => break,
                Err(e) if std::time::Instant::now() < deadline => last = e.to_string(),
                Err(e) => {
                    return Err(gave_up(
                        format!("write {key}"),
                        e,
                        format!("before: {last}"),
                    ))
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let registry = registry_address(service, addresses);
    loop {
        match registry_v2(&registry, Duration::from_millis(500)).await {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() < deadline => last = e.to_string(),
            Err(e) => return Err(gave_up("the registry never answered /v2/".into(), e, last)),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
