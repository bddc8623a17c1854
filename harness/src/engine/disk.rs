//! Disks that can lose power: an ext4 file system in a file, on a loop device, mounted on the
//! host and bind-mounted into a container (or, `lossy`, under a lossyfs mount: see `lossy.rs`).
//!
//! A SIGKILL keeps the page cache, so it loses nothing. A power cut must lose what was not
//! fsynced: [`Disk::cut`] shuts the file system down with `FS_IOC_SHUTDOWN` and
//! `NOLOGFLUSH` (nothing more reaches the disk, not even the journal), and [`Disk::remount`]
//! unmounts and mounts it again, which replays the journal as a reboot would. The disks of a
//! run live in `<run dir>/disks/` (the run dir is `<output root>/<run id>`, see
//! `crate::output`); teardown and the reaper unmount and detach them. Each run with disks is
//! registered machine-wide (`<state dir>/disks/<run>`, `/run/aftershock` for root, see
//! `state`: its owner process and its disks directory): that is how teardown, the reaper of any later run — from any checkout and any
//! output root, even when the dead run's containers are already gone — and `aftershock clean`
//! find them ([`registered`], [`dead_runs`]).

use super::error::{EngineError, Result};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `_IOR('X', 125, __u32)`.
const FS_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587d;
/// Shut down without flushing the log: what a power cut does.
const FS_GOING_FLAGS_NOLOGFLUSH: u32 = 2;
/// How long a remount waits for the old file system to be let go by every mount.
const RELEASE: Duration = Duration::from_secs(10);

/// One disk: the image file, its loop device and where it is mounted on the host.
#[derive(Debug, Clone)]
pub struct Disk {
    pub image: PathBuf,
    pub mount: PathBuf,
    pub device: String,
}

fn run(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(EngineError::io(format!("run {shown}")))?;
    if !out.status.success() {
        return Err(EngineError::io(format!("{shown} failed"))(
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The directory of a run's disks, in its run directory (`<output root>/<run id>`).
pub fn disks_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("disks")
}

impl Disk {
    /// Makes a `size_mb` ext4 file system for `name` in the run directory `run_dir` (whose
    /// name is the run id) and mounts it; everything written before the container starts is
    /// synced, so set-up itself is never lost.
    pub fn create(run_dir: &Path, name: &str, size_mb: u64) -> Result<Disk> {
        let dir = disks_dir(run_dir);
        let mount = dir.join(name);
        std::fs::create_dir_all(&mount)
            .map_err(EngineError::io(format!("create {}", mount.display())))?;
        let run_id = run_dir.file_name().unwrap_or_default().to_string_lossy();
        register(&run_id, &dir)?;
        let image = dir.join(format!("{name}.img"));
        let file = std::fs::File::create(&image)
            .map_err(EngineError::io(format!("create {}", image.display())))?;
        file.set_len(size_mb << 20)
            .map_err(EngineError::io(format!("size {}", image.display())))?;
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))?;
        let device = run(Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image))?;
        let disk = Disk {
            image,
            mount,
            device,
        };
        run(Command::new("mount").arg(&disk.device).arg(&disk.mount))?;
        disk.sync();
        Ok(disk)
    }

    /// Writes everything cached for this file system to the disk (`syncfs`).
    pub fn sync(&self) {
        if let Ok(f) = std::fs::File::open(&self.mount) {
            // SAFETY: syncfs on a descriptor we own.
            unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
        }
    }

    /// Cuts the power: from now on nothing written reaches the disk, and what was not yet
    /// written is gone. The container must be frozen first (`docker pause`), so it cannot
    /// write between the cut and its kill.
    pub fn cut(&self) -> Result<Duration> {
        let started = Instant::now();
        let dir = std::fs::File::open(&self.mount)
            .map_err(EngineError::io(format!("open {}", self.mount.display())))?;
        let flags = FS_GOING_FLAGS_NOLOGFLUSH;
        // SAFETY: FS_IOC_SHUTDOWN takes a pointer to a u32 of flags; the fd is a directory on the file system.
        let r = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&dir),
                FS_IOC_SHUTDOWN,
                &flags,
            )
        };
        if r != 0 {
            return Err(EngineError::io(format!(
                "FS_IOC_SHUTDOWN on {}",
                self.mount.display()
            ))(std::io::Error::last_os_error()));
        }
        Ok(started.elapsed())
    }

    /// Unmounts and mounts again (the journal replays): the disk after the power comes back.
    /// Returns how long that took and how long of it the old file system took to be let go.
    pub fn remount(&self) -> Result<(Duration, Duration)> {
        let started = Instant::now();
        self.unmount()?;
        let released = self.released(RELEASE)?;
        run(Command::new("mount").arg(&self.device).arg(&self.mount))?;
        Ok((started.elapsed(), released))
    }

    /// Waits until no mount anywhere holds the file system on the device any more: the
    /// kernel then lets the device be opened exclusively. Until then a `mount` would give back
    /// the same shut-down file system, on which everything fails with EIO — a dead
    /// container's mount namespace can outlive its `die` event by a moment, and under load by
    /// longer (seen: PostgreSQL's entrypoint failing `chmod` with EIO after a cut while a
    /// second power-cut run shared the machine).
    fn released(&self, within: Duration) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let open = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_EXCL)
                .open(&self.device);
            match open {
                Ok(_) => return Ok(started.elapsed()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && started.elapsed() < within => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => {
                    return Err(EngineError::io(format!(
                        "{} unmounted from {}, but its file system is still mounted elsewhere {:.1} s later (another mount namespace holds it; `grep {} /proc/*/mountinfo` shows which); mounting it again would give back the shut-down file system",
                        self.device,
                        self.mount.display(),
                        started.elapsed().as_secs_f64(),
                        self.device
                    ))(e))
                }
            }
        }
    }

    fn unmount(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match run(Command::new("umount").arg(&self.mount)) {
                Ok(_) => return Ok(()),
                // The engine may still hold the container's bind mount for a moment.
                Err(e) if Instant::now() < deadline && e.to_string().contains("busy") => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Unmounts, detaches the loop device and deletes the image. Best effort: says what failed.
    pub fn destroy(&self) -> Vec<String> {
        let mut problems = vec![];
        if is_mounted(&self.mount) {
            if let Err(e) = self.unmount() {
                problems.push(e.to_string());
            }
        }
        if let Err(e) = run(Command::new("losetup").arg("-d").arg(&self.device)) {
            problems.push(e.to_string());
        }
        let _ = std::fs::remove_file(&self.image);
        let _ = std::fs::remove_dir(&self.mount);
        problems
    }
}

fn is_mounted(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let target = path.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&target))
}

/// Unmounts and detaches every disk of a run whose directory is given (teardown of a dead
/// run): finds the mounts below it and the loop devices backed by its images — by the
/// kernel's record of each loop device's backing file, so a device whose image was deleted
/// (its backing file then reads "… (deleted)", and `losetup -j` finds nothing) is detached too.
pub fn destroy_all(run_dir: &Path) -> Vec<String> {
    let dir = run_dir.join("disks");
    // A lossyfs over a disk keeps its backing busy: it goes first.
    let mut problems = super::lossy::stop_all(&dir);
    if let (Some(run), Some(registry)) = (run_dir.file_name(), registry_to_read()) {
        let _ = std::fs::remove_file(registry.join(run));
    }
    let loops = loops_backed_under(Path::new(SYS_BLOCK), &dir);
    let mut images: std::collections::BTreeSet<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "img"))
        .collect();
    images.extend(loops.iter().map(|(_, image)| image.clone()));
    for image in images {
        let mount = image.with_extension("");
        for (device, _) in loops.iter().filter(|(_, i)| *i == image) {
            let disk = Disk {
                image: image.clone(),
                mount: mount.clone(),
                device: device.clone(),
            };
            problems.extend(disk.destroy());
        }
        let _ = std::fs::remove_file(&image);
        let _ = std::fs::remove_dir(&mount);
    }
    problems
}

/// Where the kernel lists block devices (`<dev>/loop/backing_file` for a loop device).
const SYS_BLOCK: &str = "/sys/block";

/// The loop devices (`/dev/loopN`) whose backing file is, or was before it was deleted, below
/// `dir`, with that file's path.
fn loops_backed_under(sys_block: &Path, dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(blocks) = std::fs::read_dir(sys_block) else {
        return vec![];
    };
    blocks
        .flatten()
        .filter_map(|b| {
            let backing = std::fs::read_to_string(b.path().join("loop/backing_file")).ok()?;
            let image = PathBuf::from(backing.trim_end().trim_end_matches(" (deleted)"));
            let device = format!("/dev/{}", b.file_name().to_string_lossy());
            image.starts_with(dir).then_some((device, image))
        })
        .collect()
}

/// Where runs with disks are registered: one file per run, `<owner identity>\n<disks dir>`.
/// It is private to this user and refused when unsafe (see `state`).
fn registry() -> Result<PathBuf> {
    let dir = super::images::lock_dir()?.join("disks");
    super::state::private_dir(&dir)?;
    Ok(dir)
}

/// The registry, to read: none (and a warning saying why) when its directory is unsafe.
fn registry_to_read() -> Option<PathBuf> {
    registry()
        .inspect_err(|e| tracing::warn!("the registry of runs with disks is not read: {e}"))
        .ok()
}

fn register(run_id: &str, disks: &Path) -> Result<()> {
    let dir = registry()?;
    let owner = super::owner::process_identity(std::process::id()).unwrap_or_default();
    let entry = dir.join(run_id);
    std::fs::write(&entry, format!("{owner}\n{}", disks.display()))
        .map_err(EngineError::io(format!("write {}", entry.display())))
}

/// A registry entry: (owner identity, run directory).
fn entry(path: &Path) -> Option<(String, PathBuf)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (owner, disks) = text.split_once('\n')?;
    let run_dir = Path::new(disks.trim()).parent()?.to_path_buf();
    Some((owner.to_string(), run_dir))
}

/// Every registry entry: (run id, owner identity, run directory).
fn entries() -> Vec<(String, String, PathBuf)> {
    let Some(Ok(entries)) = registry_to_read().map(std::fs::read_dir) else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| {
            let (owner, run_dir) = entry(&e.path())?;
            Some((e.file_name().to_string_lossy().into_owned(), owner, run_dir))
        })
        .collect()
}

/// Every registered run (dead or alive): (run id, run directory).
pub fn registered_runs() -> Vec<(String, PathBuf)> {
    entries()
        .into_iter()
        .map(|(run, _, run_dir)| (run, run_dir))
        .collect()
}

/// The run directory of a run that has disks, wherever its output root is.
pub fn registered(run_id: &str) -> Option<PathBuf> {
    entry(&registry_to_read()?.join(run_id)).map(|(_, run_dir)| run_dir)
}

/// The registered runs whose owner process is gone: (run id, run directory).
pub fn dead_runs() -> Vec<(String, PathBuf)> {
    entries()
        .into_iter()
        .filter(|(_, owner, _)| !super::owner::alive(owner))
        .map(|(run, _, run_dir)| (run, run_dir))
        .collect()
}

/// How many disk images a run directory holds.
pub fn count(run_dir: &Path) -> usize {
    std::fs::read_dir(run_dir.join("disks")).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "img"))
            .count()
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "aftershock-disk-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_loop_device_whose_image_was_deleted_is_still_found_by_its_backing_file() {
        let sys = scratch("sys");
        let run = Path::new("/var/lib/x/run-1/disks");
        for (dev, backing) in [
            ("loop0", "/var/lib/x/run-1/disks/db.img (deleted)\n"),
            ("loop1", "/var/lib/x/run-1/disks/cache.img\n"),
            ("loop2", "/var/lib/x/run-2/disks/db.img\n"),
        ] {
            std::fs::create_dir_all(sys.join(dev).join("loop")).unwrap();
            std::fs::write(sys.join(dev).join("loop/backing_file"), backing).unwrap();
        }
        std::fs::create_dir_all(sys.join("sda")).unwrap();
        let mut found = super::loops_backed_under(&sys, run);
        found.sort();
        let _ = std::fs::remove_dir_all(&sys);
        assert_eq!(
            found,
            [
                (
                    "/dev/loop0".to_string(),
                    PathBuf::from("/var/lib/x/run-1/disks/db.img")
                ),
                (
                    "/dev/loop1".to_string(),
                    PathBuf::from("/var/lib/x/run-1/disks/cache.img")
                ),
            ]
        );
    }

    /// Real loop devices (root, as the harness runs): an image deleted under an attached
    /// device is detached by a dead run's teardown.
    #[test]
    fn a_dead_run_s_teardown_detaches_a_loop_device_whose_image_is_gone() {
        let run = scratch("run");
        let disks = run.join("disks");
        std::fs::create_dir_all(&disks).unwrap();
        let image = disks.join("db.img");
        std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
        let device = super::run(
            std::process::Command::new("losetup")
                .args(["-f", "--show"])
                .arg(&image),
        )
        .expect("losetup (root and loop devices, as the harness needs)");
        let device = device.trim().to_string();
        std::fs::remove_file(&image).unwrap();
        let problems = super::destroy_all(&run);
        let left = super::loops_backed_under(Path::new(super::SYS_BLOCK), &disks);
        if !left.is_empty() {
            let _ = super::run(std::process::Command::new("losetup").arg("-d").arg(&device));
        }
        let _ = std::fs::remove_dir_all(&run);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(left.is_empty(), "{device} still attached: {left:?}");
    }

    /// Real ext4 on a real loop device: a second mount of the file system (as a dead
    /// container's mount namespace holds one for a moment) outlives the cut. The remount waits
    /// until it is gone and mounts a fresh file system (the journal replayed), on which a write
    /// works; mounting at once would give back the shut-down one, where it fails with EIO.
    #[test]
    fn a_remount_waits_for_every_other_mount_of_the_cut_file_system_to_go() {
        let run = scratch("remount");
        let disk = super::Disk::create(&run, "db", 16).expect("a disk (root, loop devices)");
        let holder = run.join("holder");
        std::fs::create_dir_all(&holder).unwrap();
        super::run(
            std::process::Command::new("mount")
                .arg("--bind")
                .arg(&disk.mount)
                .arg(&holder),
        )
        .unwrap();
        std::fs::write(disk.mount.join("before"), "kept").unwrap();
        disk.sync();
        disk.cut().unwrap();
        let held = std::time::Duration::from_millis(300);
        let other = {
            let holder = holder.clone();
            std::thread::spawn(move || {
                std::thread::sleep(held);
                super::run(std::process::Command::new("umount").arg(&holder))
            })
        };
        let remounted = disk.remount();
        let released = other.join().unwrap();
        let written = std::fs::write(disk.mount.join("after"), "new");
        let kept = std::fs::read_to_string(disk.mount.join("before"));
        let problems = super::destroy_all(&run);
        let _ = std::fs::remove_dir_all(&run);
        released.unwrap();
        let (took, waited) = remounted.unwrap();
        println!("remount took {took:?}, {waited:?} of it waiting for the other mount");
        assert!(
            waited >= held / 2,
            "mounted after {waited:?}, while the other mount held it"
        );
        written.expect("a write on the remounted disk");
        assert_eq!(kept.unwrap(), "kept");
        assert!(problems.is_empty(), "{problems:?}");
    }
}
