//! A lossyfs mount over a disk: the host process, its control socket, its teardown.
//!
//! lossyfs (the workspace crate `lossyfs/`) runs on the host over the disk's ext4 mount and
//! mounts at `<disks>/<replica>.lossy`, which the container binds (created and started after
//! the mount, so a plain bind sees it; after a cut the container starts again only once the
//! new mount is up). What it keeps in memory is lost by its `lose` and `tear` commands; every
//! command is acknowledged with a line that says what it did. Its pid file, socket and log
//! lie next to the disk image, so the reaper finds and stops the leftovers of a dead run
//! ([`stop_all`]).

use super::error::{EngineError, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One lossyfs over one disk.
#[derive(Debug)]
pub struct Lossy {
    binary: PathBuf,
    /// The disk's ext4 mount: what is durable.
    pub backing: PathBuf,
    /// The FUSE mount the container binds.
    pub mount: PathBuf,
    socket: PathBuf,
    pid_file: PathBuf,
    log: PathBuf,
    child: Mutex<Option<Child>>,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> EngineError {
    EngineError::io(what)
}

/// Whether `path` is a mount point (per /proc/self/mounts).
pub fn is_mounted(path: &Path) -> bool {
    mounts().iter().any(|(target, _)| Path::new(target) == path)
}

/// (target, type) of every mount.
fn mounts() -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (_, target, kind) = (w.next()?, w.next()?, w.next()?);
            Some((target.replace("\\040", " "), kind.to_string()))
        })
        .collect()
}

impl Lossy {
    /// The lossyfs over the disk mounted at `backing` (not started): it mounts beside it, at
    /// `<backing>.lossy`.
    pub fn new(binary: &Path, backing: &Path) -> Lossy {
        let with = |suffix: &str| {
            let mut p = backing.to_path_buf().into_os_string();
            p.push(suffix);
            PathBuf::from(p)
        };
        Lossy {
            binary: binary.to_path_buf(),
            backing: backing.to_path_buf(),
            mount: with(".lossy"),
            socket: with(".lossyfs.sock"),
            pid_file: with(".lossyfs.pid"),
            log: with(".lossyfs.log"),
            child: Mutex::new(None),
        }
    }

    /// Starts lossyfs and waits until it is mounted and answers `status`.
    pub fn start(&self) -> Result<()> {
        std::fs::create_dir_all(&self.mount)
            .map_err(io(format!("create {}", self.mount.display())))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io(format!("open {}", self.log.display())))?;
        let err = log
            .try_clone()
            .map_err(io(format!("open {}", self.log.display())))?;
        let child = Command::new(&self.binary)
            .arg("--backing")
            .arg(&self.backing)
            .arg("--mount")
            .arg(&self.mount)
            .arg("--control")
            .arg(&self.socket)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io(format!("start {}", self.binary.display())))?;
        std::fs::write(&self.pid_file, child.id().to_string())
            .map_err(io(format!("write {}", self.pid_file.display())))?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if is_mounted(&self.mount) && self.command("status").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(io(format!("mount lossyfs at {}", self.mount.display()))(
                    std::io::Error::other(format!("not up after 10 s: {log}")),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one command and returns its `ok …` answer (an `err …` answer is an error).
    pub fn command(&self, line: &str) -> Result<String> {
        let what = || format!("lossyfs `{line}` at {}", self.socket.display());
        let mut stream =
            std::os::unix::net::UnixStream::connect(&self.socket).map_err(io(what()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io(what()))?;
        stream
            .write_all(format!("{line}\n").as_bytes())
            .map_err(io(what()))?;
        let mut answer = String::new();
        BufReader::new(stream)
            .read_line(&mut answer)
            .map_err(io(what()))?;
        let answer = answer.trim().to_string();
        if !answer.starts_with("ok ") {
            return Err(io(what())(std::io::Error::other(answer)));
        }
        Ok(answer)
    }

    /// Stops lossyfs (SIGTERM: it unmounts) and makes sure the mount is gone.
    pub fn stop(&self) -> Vec<String> {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut problems = vec![];
        if let Some(mut child) = child {
            problems.extend(terminate(child.id() as i32, || {
                child.try_wait().ok().flatten().is_some()
            }));
            let _ = child.kill();
            let _ = child.wait();
        } else if let Some(pid) = read_pid(&self.pid_file) {
            problems.extend(terminate(pid, || !alive(pid)));
        }
        let _ = std::fs::remove_file(&self.pid_file);
        problems.extend(unmount(&self.mount));
        problems
    }
}

impl Drop for Lossy {
    fn drop(&mut self) {
        let running = self.child.get_mut().map(|c| c.is_some()).unwrap_or(false);
        if running {
            for problem in self.stop() {
                tracing::warn!(mount = %self.mount.display(), %problem, "lossyfs stop: {problem}");
            }
        }
    }
}

fn read_pid(pid_file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // Only ours: a recycled pid is some other program.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("lossyfs")
        .then_some(pid)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// SIGTERM, up to 5 s for `gone`, then SIGKILL.
fn terminate(pid: i32, mut gone: impl FnMut() -> bool) -> Option<String> {
    // SAFETY: a signal to a process we started (or found by its pid file and command line).
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone() {
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return Some(format!(
                "lossyfs (pid {pid}) ignored SIGTERM for 5 s; killed"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Unmounts a FUSE mount whose process may be gone (lazily if busy) and removes its directory.
fn unmount(mount: &Path) -> Vec<String> {
    let mut problems = vec![];
    if is_mounted(mount) {
        let plain = Command::new("umount").arg(mount).output();
        if !plain.is_ok_and(|o| o.status.success()) {
            match Command::new("umount").arg("-l").arg(mount).output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => problems.push(format!(
                    "umount -l {}: {}",
                    mount.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => problems.push(format!("umount -l {}: {e}", mount.display())),
            }
        }
    }
    let _ = std::fs::remove_dir(mount);
    problems
}

/// The lossyfs processes whose command line names a path under `dir` (a run's directory).
pub fn processes(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            alive(*pid)
                && cmdline
                    .split('\0')
                    .next()
                    .is_some_and(|b| b.ends_with("lossyfs"))
                && cmdline.contains(&needle)
        })
        .collect()
}

/// The FUSE mounts under `dir`.
pub fn fuse_mounts(dir: &Path) -> Vec<PathBuf> {
    mounts()
        .into_iter()
        .filter(|(target, kind)| kind.starts_with("fuse") && Path::new(target).starts_with(dir))
        .map(|(target, _)| PathBuf::from(target))
        .collect()
}

/// Stops every lossyfs of a run's disks directory and removes their mounts (teardown and the
/// reaper, before the disks are unmounted). Returns what failed.
pub fn stop_all(disks: &Path) -> Vec<String> {
    let mut problems = vec![];
    for pid in processes(disks) {
        problems.extend(terminate(pid, || !alive(pid)));
    }
    for mount in fuse_mounts(disks) {
        problems.extend(unmount(&mount));
    }
    if let Ok(entries) = std::fs::read_dir(disks) {
        for p in entries.flatten().map(|e| e.path()) {
            let name = p.to_string_lossy();
            if name.ends_with(".lossyfs.pid") || name.ends_with(".lossyfs.sock") {
                let _ = std::fs::remove_file(&p);
            } else if name.ends_with(".lossy") {
                let _ = std::fs::remove_dir(&p);
            }
        }
    }
    problems
}
