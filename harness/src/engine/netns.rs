//! A container as the host's kernel sees it, for the faults the engine API does not offer:
//! a delay (`tc qdisc … netem`) and random packet loss (`iptables -m statistic … -j DROP`) in
//! the container's network namespace, entered with `nsenter -t <pid> -n` so the host's `tc`,
//! `ip` and `iptables` do the work (the images need none of them), and the freezer state of
//! its cgroup (the proof that `docker pause` froze it). Some kernels lack the netem qdisc
//! (`CONFIG_NET_SCH_NETEM`); [`netem_available`] asks in a throwaway namespace.
//! Nothing here talks to Docker; the PIDs come from `RunEngine::status`.

use std::path::Path;
use std::time::Duration;

/// Why a command in a container's network namespace did not do its work.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `nsenter` itself could not be started.
    #[error("nsenter -t {pid} -n {command}: {source} (is util-linux installed?)")]
    Spawn {
        pid: i64,
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The command ran in the namespace and failed.
    #[error("`{command}` in the namespace of {pid}: {status} {stderr}")]
    Failed {
        pid: i64,
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    /// No interface of the namespace holds the container's address.
    #[error("no interface holds {ip} in the namespace of {pid}")]
    NoInterface { pid: i64, ip: String },
}

/// Runs a host command inside the network namespace of process `pid`; its stdout, or what
/// went wrong (stderr) as text.
pub async fn run_in(pid: i64, args: &[&str]) -> Result<String, NetnsError> {
    let target = pid.to_string();
    let output = tokio::process::Command::new("nsenter")
        .args(["-t", &target, "-n"])
        .args(args)
        .output()
        .await
        .map_err(|source| NetnsError::Spawn {
            pid,
            command: args.join(" "),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(NetnsError::Failed {
            pid,
            command: args.join(" "),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// The name of the interface holding `ip` in the namespace of `pid` (`eth0`).
pub async fn interface(pid: i64, ip: &str) -> Result<String, NetnsError> {
    let listing = run_in(pid, &["ip", "-o", "-4", "addr", "show"]).await?;
    let needle = format!("inet {ip}/");
    listing
        .lines()
        .find(|l| l.contains(&needle))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .ok_or_else(|| NetnsError::NoInterface {
            pid,
            ip: ip.to_string(),
        })
}

/// `tc qdisc replace dev <dev> root netem delay …`: every packet leaving `dev` waits.
pub async fn add_delay(pid: i64, dev: &str, delay: Duration) -> Result<(), NetnsError> {
    let delay = format!("{}us", delay.as_micros());
    let args = [
        "tc", "qdisc", "replace", "dev", dev, "root", "netem", "delay", &delay,
    ];
    run_in(pid, &args).await.map(drop)
}

/// Whether this kernel has the netem qdisc: tried on the loopback of a new, empty network
/// namespace (`unshare -n`), which disappears with the command.
pub async fn netem_available() -> bool {
    tokio::process::Command::new("unshare")
        .args([
            "-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .output()
        .await
        .is_ok_and(|o| o.status.success())
}

/// The iptables rule (without chain) that drops `percent` % of the packets at random.
pub(crate) fn loss_rule(percent: f64) -> Vec<String> {
    let probability = format!("{:.4}", percent / 100.0);
    [
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        &probability,
        "-j",
        "DROP",
    ]
    .map(String::from)
    .to_vec()
}

/// Adds (`-I`) or deletes (`-D`) the loss rule on the namespace's INPUT and OUTPUT chains.
pub async fn loss(pid: i64, action: &str, percent: f64) -> Result<(), NetnsError> {
    for chain in ["INPUT", "OUTPUT"] {
        let mut args = vec![
            "iptables".to_string(),
            "-w".into(),
            action.into(),
            chain.into(),
        ];
        args.extend(loss_rule(percent));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_in(pid, &args).await?;
    }
    Ok(())
}

/// The namespace's random-drop rules as `iptables -S` lists them.
pub async fn loss_rules(pid: i64) -> Result<Vec<String>, NetnsError> {
    let rules = run_in(pid, &["iptables", "-w", "-S"]).await?;
    Ok(rules
        .lines()
        .filter(|l| l.contains("statistic") && l.contains("DROP"))
        .map(str::to_string)
        .collect())
}

/// The root qdisc of `dev` as `tc qdisc show` prints it.
pub async fn qdisc(pid: i64, dev: &str) -> Result<String, NetnsError> {
    run_in(pid, &["tc", "qdisc", "show", "dev", dev])
        .await
        .map(|s| s.trim().to_string())
}

/// Deletes the root qdisc of `dev` (back to the kernel's default).
pub async fn delete_qdisc(pid: i64, dev: &str) -> Result<(), NetnsError> {
    run_in(pid, &["tc", "qdisc", "del", "dev", dev, "root"])
        .await
        .map(drop)
}

/// The kernel's freezer state of the cgroup of `pid`: `FROZEN`, `THAWED`, `FREEZING` (cgroup
/// v1), or `1`/`0` (v2's `frozen` in `cgroup.events`: the state reached, where
/// `cgroup.freeze` is only the one requested); None when it cannot be read.
pub fn freezer_state(pid: i64) -> Option<String> {
    freezer_state_in(Path::new("/proc"), Path::new("/sys/fs/cgroup"), pid)
}

/// [`freezer_state`] with the proc and cgroup roots given (a v2 host's fixture files in tests).
pub fn freezer_state_in(proc: &Path, cgroup: &Path, pid: i64) -> Option<String> {
    let cgroups = std::fs::read_to_string(proc.join(pid.to_string()).join("cgroup")).ok()?;
    let v1 = cgroups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "freezer")
            .then(|| format!("freezer{path}/freezer.state"))
    });
    if let Some(file) = v1 {
        let state = std::fs::read_to_string(cgroup.join(file)).ok()?;
        return Some(state.trim().to_string());
    }
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let events = std::fs::read_to_string(
        cgroup
            .join(path.trim_start_matches('/'))
            .join("cgroup.events"),
    )
    .ok()?;
    events
        .lines()
        .find_map(|l| l.strip_prefix("frozen "))
        .map(|v| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup v2 host's files (`harness/fixtures/cgroup-v2`, see its README): pid 4242 is a
    /// frozen container (systemd driver), 4343 one whose freeze was requested, not yet reached.
    #[test]
    fn the_freezer_state_on_a_v2_host_is_what_the_kernel_reached() {
        let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cgroup-v2");
        let (proc, cgroup) = (host.join("proc"), host.join("sys/fs/cgroup"));
        assert_eq!(freezer_state_in(&proc, &cgroup, 4242).as_deref(), Some("1"));
        assert_eq!(freezer_state_in(&proc, &cgroup, 4343).as_deref(), Some("0"));
        assert_eq!(freezer_state_in(&proc, &cgroup, 1), None);
    }

    /// As a real v2 guest shows it (`harness/fixtures/cgroup-v2-guest`): pid 508's container
    /// is paused, 609's is not.
    #[test]
    fn the_freezer_state_as_a_real_v2_guest_shows_it() {
        let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cgroup-v2-guest");
        let (proc, cgroup) = (host.join("proc"), host.join("sys/fs/cgroup"));
        assert_eq!(freezer_state_in(&proc, &cgroup, 508).as_deref(), Some("1"));
        assert_eq!(freezer_state_in(&proc, &cgroup, 609).as_deref(), Some("0"));
    }
}
