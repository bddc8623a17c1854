//! Memory faults inside a container: running an extra process in it (Engine API exec), and
//! the host-side facts about what the kernel did — the cgroup's OOM counters and the kernel
//! log's "Killed process" lines. `State.OOMKilled` alone is not trusted: on this engine it is
//! set only when the container exits and stays true afterwards.

use super::error::{EngineError, Result};
use super::RunEngine;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use futures_util::StreamExt;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use tokio::task::JoinHandle;

/// A process started in a container with `exec`.
pub struct Exec {
    pub id: String,
    /// Its PID on the host (0 if the engine did not say).
    pub pid: i64,
    /// Collects its output (stdout and stderr, last 50 lines) until it ends.
    pub output: JoinHandle<Vec<String>>,
}

/// The cgroup's memory counters of a container (cgroup v1 `memory.oom_control`, or v2
/// `memory.events`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomCounters {
    /// Processes the kernel's OOM killer killed in this cgroup.
    pub oom_kill: u64,
    /// Whether the cgroup is at its limit right now (v1 only).
    pub under_oom: bool,
}

/// One "Killed process" line of the kernel log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelKill {
    pub pid: i64,
    pub command: String,
    /// The line itself.
    pub line: String,
}

impl RunEngine {
    /// Copies the host file `from` into the replica's container as `dir/name` (mode 0755),
    /// through the engine's archive upload: no tool in the image is needed.
    pub async fn upload(
        &self,
        replica: &str,
        from: &std::path::Path,
        dir: &str,
        name: &str,
    ) -> Result<()> {
        let container = self.container_name(replica);
        let bytes =
            std::fs::read(from).map_err(EngineError::io(format!("read {}", from.display())))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        let mut archive = tar::Builder::new(Vec::new());
        let err = |e| EngineError::io(format!("pack {name} for {container}"))(e);
        archive
            .append_data(&mut header, name, bytes.as_slice())
            .map_err(err)?;
        let tar = archive.into_inner().map_err(err)?;
        let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path(dir)
            .build();
        self.client(replica)
            .upload_to_container(&container, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(EngineError::refused(format!(
                "copy {name} into {container}:{dir}"
            )))
    }

    /// Starts `cmd` in the replica's container, attached, and returns at once.
    pub async fn exec(&self, replica: &str, cmd: &[String]) -> Result<Exec> {
        let name = self.container_name(replica);
        let docker = self.client(replica);
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let created = docker
            .create_exec(&name, config)
            .await
            .map_err(EngineError::refused(format!("create an exec in {name}")))?;
        let started = docker
            .start_exec(&created.id, None::<StartExecOptions>)
            .await
            .map_err(EngineError::refused(format!("start an exec in {name}")))?;
        let output = tokio::spawn(async move {
            let mut lines: Vec<String> = vec![];
            // Chunks need not end at a line's end: keep the unfinished line for the next chunk.
            let mut partial = String::new();
            if let StartExecResults::Attached { mut output, .. } = started {
                while let Some(Ok(chunk)) = output.next().await {
                    partial.push_str(&chunk.to_string());
                    while let Some((line, rest)) = partial.split_once('\n') {
                        lines.push(line.to_string());
                        partial = rest.to_string();
                    }
                    let excess = lines.len().saturating_sub(50);
                    lines.drain(..excess);
                }
            }
            if !partial.is_empty() {
                lines.push(partial);
            }
            lines
        });
        // The engine reports the PID only once the process runs: ask until it does (2 s at most).
        let mut pid = 0;
        for _ in 0..200 {
            let inspected = docker
                .inspect_exec(&created.id)
                .await
                .map_err(EngineError::refused(format!("inspect an exec in {name}")))?;
            pid = inspected.pid.unwrap_or(0);
            if pid > 0 || inspected.running == Some(false) && inspected.exit_code.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(Exec {
            id: created.id,
            pid,
            output,
        })
    }

    /// The exit code of a finished exec in `replica` (`None` while it runs).
    pub async fn exec_exit_code(&self, replica: &str, exec_id: &str) -> Result<Option<i64>> {
        let inspected = self
            .client(replica)
            .inspect_exec(exec_id)
            .await
            .map_err(EngineError::refused("inspect an exec"))?;
        Ok(match inspected.running {
            Some(true) => None,
            _ => inspected.exit_code,
        })
    }

    /// `State.OOMKilled` of the replica's container (set late and sticky: evidence, not proof).
    pub async fn oom_killed_flag(&self, replica: &str) -> Result<bool> {
        let info = self.inspect(replica).await?;
        Ok(info.state.and_then(|s| s.oom_killed).unwrap_or(false))
    }

    /// The command name of the replica's main process as its engine knows it (the basename of
    /// its `Path`): for a replica on a machine, whose `/proc` is not this host's.
    pub async fn main_command(&self, replica: &str) -> Result<String> {
        let info = self.inspect(replica).await?;
        let path = info.path.unwrap_or_default();
        Ok(path.rsplit('/').next().unwrap_or_default().to_string())
    }
}

/// Parses `memory.oom_control` (v1: `oom_kill N`, `under_oom 0|1`) or `memory.events`
/// (v2: `oom_kill N`).
pub fn parse_counters(text: &str) -> OomCounters {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
    };
    OomCounters {
        oom_kill: field("oom_kill ").unwrap_or(0),
        under_oom: field("under_oom ") == Some(1),
    }
}

/// [`counters_file`]'s Docker paths, read under a cgroup root: v1's memory hierarchy
/// (`memory/docker/<id>`), then v2's unified one under Docker's systemd driver
/// (`system.slice/docker-<id>.scope`) or its cgroupfs driver (`docker/<id>`).
#[cfg(test)]
pub fn counters_in(root: &std::path::Path, container_id: &str) -> Option<OomCounters> {
    docker_file(root, container_id).and_then(|f| counters_at(&f))
}

/// The first of Docker's cgroup paths for a container that exists under `root`.
fn docker_file(root: &std::path::Path, container_id: &str) -> Option<std::path::PathBuf> {
    [
        format!("memory/docker/{container_id}/memory.oom_control"),
        format!("system.slice/docker-{container_id}.scope/memory.events"),
        format!("docker/{container_id}/memory.events"),
    ]
    .into_iter()
    .map(|p| root.join(p))
    .find(|p| p.is_file())
}

/// The file that holds a container's OOM counters on this host: Docker's paths for its id
/// ([`counters_in`]), else where its main process's `/proc/PID/cgroup` says it lives (any
/// engine: Podman's cgroupfs `libpod_parent/libpod-<id>`). None: neither can be read.
pub fn counters_file(container_id: &str, pid: i64) -> Option<std::path::PathBuf> {
    let root = std::path::Path::new("/sys/fs/cgroup");
    docker_file(root, container_id).or_else(|| {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        file_of_process(root, &text).filter(|p| p.is_file())
    })
}

/// Where the OOM counters of a process are under `root`, from its `/proc/PID/cgroup`: v1's
/// memory hierarchy (`N:memory:/path` → `memory/path/memory.oom_control`) before v2's
/// unified one (`0::/path` → `path/memory.events`).
pub fn file_of_process(root: &std::path::Path, proc_cgroup: &str) -> Option<std::path::PathBuf> {
    let mut v2 = None;
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            return Some(
                root.join("memory")
                    .join(relative)
                    .join("memory.oom_control"),
            );
        }
        if controllers.is_empty() {
            v2 = Some(root.join(relative).join("memory.events"));
        }
    }
    v2
}

/// The counters in `file` (from [`counters_file`]); None once the cgroup is gone.
pub fn counters_at(file: &std::path::Path) -> Option<OomCounters> {
    std::fs::read_to_string(file)
        .ok()
        .map(|t| parse_counters(&t))
}

/// Parses a kernel log message like
/// `Memory cgroup out of memory: Killed process 4242 (memcached) total-vm:…`.
pub fn parse_kill(message: &str) -> Option<KernelKill> {
    let rest = message.split("Killed process ").nth(1)?;
    let (pid, rest) = rest.split_once(' ')?;
    let command = rest.strip_prefix('(')?.split(')').next()?;
    Some(KernelKill {
        pid: pid.parse().ok()?,
        command: command.to_string(),
        line: message.trim().to_string(),
    })
}

/// Every "Killed process" line in the kernel's log buffer (`/dev/kmsg`, read without
/// blocking). Empty when the log cannot be read (not root, remote engine).
pub fn kernel_kills() -> Vec<KernelKill> {
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return vec![];
    };
    let mut kills = vec![];
    let mut buf = vec![0u8; 8192];
    // One record per read; EAGAIN ends the buffer, EPIPE means a record was overwritten.
    for _ in 0..100_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let record = String::from_utf8_lossy(&buf[..n]);
                let message = record.split_once(';').map_or(&*record, |(_, m)| m);
                if let Some(k) = parse_kill(message.lines().next().unwrap_or_default()) {
                    kills.push(k);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    kills
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_v1_and_v2() {
        let v1 = "oom_kill_disable 0\nunder_oom 1\noom_kill 2\n";
        assert_eq!(
            parse_counters(v1),
            OomCounters {
                oom_kill: 2,
                under_oom: true
            }
        );
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n";
        assert_eq!(parse_counters(v2).oom_kill, 1);
    }

    /// A cgroup v2 host's files (`harness/fixtures/cgroup-v2`, see its README).
    #[test]
    fn counters_on_a_v2_host_under_either_docker_cgroup_driver() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/cgroup-v2/sys/fs/cgroup");
        let systemd = "3f1c0a9e2b7d4c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a";
        let cgroupfs = "9e8d7c6b5a4938271605f4e3d2c1b0a99887766554433221100ffeeddccbbaa9";
        assert_eq!(counters_in(&root, systemd).map(|c| c.oom_kill), Some(2));
        assert_eq!(counters_in(&root, cgroupfs).map(|c| c.oom_kill), Some(0));
        assert_eq!(counters_in(&root, "gone"), None);
        // Any engine's cgroup, found from the process (Podman's cgroupfs path on v1; v2).
        let v1 = "12:memory:/libpod_parent/libpod-abc\n0::/libpod_parent/libpod-abc\n";
        assert_eq!(
            file_of_process(&root, v1),
            Some(root.join("memory/libpod_parent/libpod-abc/memory.oom_control"))
        );
        let v2 = "0::/machine.slice/libpod-abc.scope/container\n";
        assert_eq!(
            file_of_process(&root, v2),
            Some(root.join("machine.slice/libpod-abc.scope/container/memory.events"))
        );
        assert_eq!(file_of_process(&root, "garbage"), None);
    }

    /// The same files as a real v2 guest shows them (`harness/fixtures/cgroup-v2-guest`,
    /// captured by `make test-platforms`): one OOM kill, and none in a paused container.
    #[test]
    fn counters_as_a_real_v2_guest_shows_them() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/cgroup-v2-guest/sys/fs/cgroup");
        let killed = "7871eb0769600d4a8203b5954f8f8394d7f530c081e0f035089ec4db57bfd50e";
        let paused = "ef933271649df15df0d66002ede6174d0aa6c0011d19f3644241a90246276f88";
        assert_eq!(counters_in(&root, killed).map(|c| c.oom_kill), Some(1));
        assert_eq!(counters_in(&root, paused).map(|c| c.oom_kill), Some(0));
    }

    #[test]
    fn kill_lines() {
        let k = parse_kill("Memory cgroup out of memory: Killed process 4242 (memcached) total-vm:167000kB, anon-rss:98000kB").unwrap();
        assert_eq!((k.pid, k.command.as_str()), (4242, "memcached"));
        assert_eq!(parse_kill("eth0: renamed from veth0bd3003"), None);
    }
}
