//! The host's capabilities, and what a plan needs of them: the preflight, before anything
//! starts (no lock taken, no container created).
//!
//! [`Facts`] are probed on this host ([`Facts::probe`]) or given (a test fakes "no FUSE"
//! through `RunOptions::host`); [`missing`] is a pure function of a plan and the facts, and
//! lists *everything* missing at once, each with what needs it and how to get it.
//!
//! The cgroup facts are read from a cgroup root laid out as the kernel lays it out (v1: one
//! directory per controller and `/proc/cgroups`; v2: one hierarchy with `cgroup.controllers`),
//! so the v2 paths are tested on fixture files (`harness/fixtures/cgroup-v2/`).

use crate::scenario::plan::{FaultKind, Placement, Plan};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The cgroup hierarchy of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cgroup {
    /// One hierarchy per controller (these project machines).
    V1 {
        /// The enabled controllers that are mounted.
        controllers: BTreeSet<String>,
    },
    /// The unified hierarchy (current Debian, Ubuntu, GitHub's runners): freezing is built in
    /// (`cgroup.freeze`); `controllers` are those of `cgroup.controllers`.
    V2 {
        /// The controllers of `cgroup.controllers`.
        controllers: BTreeSet<String>,
    },
}

impl Cgroup {
    /// Reads the cgroup layout under `root` (`/sys/fs/cgroup`); `proc_cgroups` is the text of
    /// `/proc/cgroups` (v1's enabled controllers).
    pub fn read(root: &Path, proc_cgroups: &str) -> Cgroup {
        if let Ok(text) = std::fs::read_to_string(root.join("cgroup.controllers")) {
            let controllers = text.split_whitespace().map(str::to_string).collect();
            return Cgroup::V2 { controllers };
        }
        let controllers = proc_cgroups
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                (fields.len() == 4 && fields[3] == "1").then(|| fields[0].to_string())
            })
            .filter(|c| root.join(c).is_dir())
            .collect();
        Cgroup::V1 { controllers }
    }

    /// Whether a controller is there (v2's freezer is not a controller: always there).
    pub fn has(&self, controller: &str) -> bool {
        match self {
            Cgroup::V1 { controllers } => controllers.contains(controller),
            Cgroup::V2 { controllers } => {
                controller == "freezer" || controllers.contains(controller)
            }
        }
    }
}

/// What this host offers the faults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Facts {
    /// Running as root (pidfd signals to containers' processes, taskstats, loop devices, mounts).
    pub root: bool,
    /// `/dev/loop-control`.
    pub loop_devices: bool,
    /// `/dev/fuse`.
    pub fuse: bool,
    /// Host tools on `PATH`: `nsenter`, `tc`, `iptables`, `losetup`, `mkfs.ext4`.
    pub tools: BTreeSet<String>,
    /// `pidfd_open(2)` works (Linux ≥ 5.3).
    pub pidfd: bool,
    /// The cgroup hierarchy.
    pub cgroup: Cgroup,
    /// The kernel's netem qdisc (probed only when a plan delays packets; else `true`).
    pub netem: bool,
    /// Free space where the run writes (`Room::measure`; none measured: not checked).
    pub rooms: Vec<Room>,
}

/// What a run writes to a file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Writes {
    /// The output root: run files, the services' disk images, images saved for machines.
    Output,
    /// The local engine's data root: containers, volumes (each started machine's engine).
    Engine,
}

/// Free space on the file system under one place a run writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// What the run writes there.
    pub writes: Writes,
    /// Where (the file system is that of its nearest existing ancestor).
    pub path: PathBuf,
    /// The file system's device (two rooms on one device share its free space).
    pub device: u64,
    /// Free bytes for an unprivileged writer.
    pub free_bytes: u64,
}

impl Room {
    /// Measures the file system of `path` (or of its nearest existing ancestor); None when
    /// nothing of it can be read.
    pub fn measure(writes: Writes, path: &Path) -> Option<Room> {
        use std::os::unix::fs::MetadataExt;
        let existing = path.ancestors().find(|p| p.exists())?;
        let device = std::fs::metadata(existing).ok()?.dev();
        let c_path = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
        // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
        let free_bytes = unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(c_path.as_ptr(), &mut st) != 0 {
                return None;
            }
            st.f_bavail as u64 * st.f_frsize as u64
        };
        Some(Room {
            writes,
            path: path.to_path_buf(),
            device,
            free_bytes,
        })
    }
}

const TOOLS: [&str; 6] = ["nsenter", "tc", "iptables", "losetup", "mkfs.ext4", "ss"];

impl Facts {
    /// Probes this host; the netem qdisc only when the plan delays packets (it costs a
    /// throwaway network namespace).
    pub async fn probe(plan: &Plan) -> Facts {
        let on_path = |tool: &str| {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        };
        // SAFETY: pidfd_open on our own pid; the descriptor is closed at once.
        let pidfd = unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, std::process::id() as libc::pid_t, 0);
            if fd >= 0 {
                libc::close(fd as i32);
            }
            fd >= 0
        };
        let proc_cgroups = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
        let netem = !delays(plan) || super::netns::netem_available().await;
        Facts {
            // SAFETY: geteuid has no preconditions.
            root: unsafe { libc::geteuid() } == 0,
            loop_devices: Path::new("/dev/loop-control").exists(),
            fuse: Path::new("/dev/fuse").exists(),
            tools: TOOLS
                .iter()
                .filter(|t| on_path(t))
                .map(|t| t.to_string())
                .collect(),
            pidfd,
            cgroup: Cgroup::read(Path::new("/sys/fs/cgroup"), &proc_cgroups),
            netem,
            rooms: vec![],
        }
    }
}

fn delays(plan: &Plan) -> bool {
    plan.faults
        .iter()
        .any(|f| matches!(f.kind, FaultKind::Netem { delay: Some(_), .. }))
}

/// One capability a plan needs: whether the host has it, what it is, how to get it.
struct Need {
    ok: bool,
    what: &'static str,
    how: &'static str,
}

type Known = (&'static str, &'static str);
const ROOT: Known = ("root", "run as root (sudo -E aftershock …): signals to containers' processes, taskstats, loop devices and mounts need it");
const LOOP: Known = (
    "loop devices (/dev/loop-control)",
    "modprobe loop; in a container, --device /dev/loop-control and the /dev/loopN devices",
);
const DISK_TOOLS: Known = ("losetup and mkfs.ext4", "apt-get install mount e2fsprogs");
const FUSE: Known = (
    "FUSE (/dev/fuse)",
    "modprobe fuse; in a container, --device /dev/fuse --cap-add SYS_ADMIN",
);
const PIDFD: Known = (
    "pidfd_open (Linux 5.3 or later)",
    "run on a Linux kernel 5.3 or later",
);
const FREEZER: Known = (
    "the cgroup freezer",
    "mount the cgroup v1 freezer hierarchy, or use a cgroup v2 host (freezing is built in)",
);
const MEMORY: Known = ("the cgroup memory controller", "cgroup v2: +memory in the parent's cgroup.subtree_control; v1: mount the memory hierarchy (boot with cgroup_enable=memory)");
const NSENTER: Known = ("nsenter", "apt-get install util-linux");
const IPTABLES: Known = ("iptables", "apt-get install iptables");
const TC: Known = ("tc", "apt-get install iproute2");
const SS: Known = ("ss", "apt-get install iproute2");
const NETEM: Known = ("the kernel's netem qdisc (CONFIG_NET_SCH_NETEM)", "modprobe sch_netem (some kernels: linux-modules-extra); or `loss_percent`, which needs only iptables");

fn need(ok: bool, (what, how): Known) -> Need {
    Need { ok, what, how }
}

/// What the services' disks need: root, loop devices, the disk tools, FUSE when lossy.
fn disk_needs(plan: &Plan, f: &Facts) -> Vec<(Need, String)> {
    let tools = f.tools.contains("losetup") && f.tools.contains("mkfs.ext4");
    let mut out = vec![];
    for s in &plan.services {
        let Some(disk) = &s.disk else { continue };
        let who = format!("service `{}`'s disk", s.name);
        out.push((need(f.root, ROOT), who.clone()));
        out.push((need(f.loop_devices, LOOP), who.clone()));
        out.push((need(tools, DISK_TOOLS), who.clone()));
        if disk.lossy {
            out.push((need(f.fuse, FUSE), format!("{who} (lossy = true)")));
        }
    }
    out
}

/// What one fault needs of the host.
fn fault_needs(kind: &FaultKind, f: &Facts) -> Vec<Need> {
    let tool = |t: &str| f.tools.contains(t);
    match kind {
        FaultKind::Kill { .. } | FaultKind::Restart { .. } | FaultKind::RollingRestart { .. } => {
            vec![need(f.root, ROOT), need(f.pidfd, PIDFD)]
        }
        FaultKind::PowerCut { .. } => {
            vec![need(f.root, ROOT), need(f.cgroup.has("freezer"), FREEZER)]
        }
        FaultKind::Pause { .. } => vec![need(f.cgroup.has("freezer"), FREEZER)],
        FaultKind::Leak { .. } => vec![need(f.cgroup.has("memory"), MEMORY)],
        FaultKind::Netem {
            delay,
            loss_percent,
            ..
        } => {
            let mut out = vec![need(f.root, ROOT), need(tool("nsenter"), NSENTER)];
            if loss_percent.is_some() {
                out.push(need(tool("iptables"), IPTABLES));
            }
            if delay.is_some() {
                out.extend([need(tool("tc"), TC), need(f.netem, NETEM)]);
            }
            out
        }
        FaultKind::Cut { .. } => vec![
            need(f.root, ROOT),
            need(tool("nsenter"), NSENTER),
            need(tool("iptables"), IPTABLES),
        ],
        FaultKind::SickLink { .. } => vec![
            need(f.root, ROOT),
            need(tool("nsenter"), NSENTER),
            need(tool("iptables"), IPTABLES),
            need(tool("ss"), SS),
        ],
        // libfaketime comes with the image; the offset file is the run's own.
        FaultKind::Clock { .. } => vec![],
        // lossyfs serves a sick disk (its disk's own needs say so too, for the service).
        FaultKind::DiskLatency { .. }
        | FaultKind::DiskError { .. }
        | FaultKind::DiskFull { .. } => {
            vec![need(f.root, ROOT), need(f.fuse, FUSE)]
        }
        FaultKind::DaemonCrash { .. }
        | FaultKind::Stop { .. }
        | FaultKind::Partition { .. }
        | FaultKind::MachinePartition { .. } => vec![],
    }
}

/// Every need of the plan (met or not), with who needs it.
fn needs(plan: &Plan, f: &Facts) -> Vec<(Need, String)> {
    let mut out = disk_needs(plan, f);
    // A fault on replicas placed on machines acts through their engines: nothing of this host.
    let here = plan
        .faults
        .iter()
        .filter(|f| plan.service(f.target).runs_on() == Placement::Local);
    for fault in here {
        let who = format!("fault `{}`", fault.name);
        out.extend(
            fault_needs(&fault.kind, f)
                .into_iter()
                .map(|n| (n, who.clone())),
        );
    }
    out
}

/// How busy this host's CPUs are now, in words: the load average over the CPUs and, where the
/// kernel keeps it, the share of the last 10 s some task waited for a CPU. Said beside an
/// answer the system under test did not give in time (a starved host, an emulated VM).
pub fn busy() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    let pressure = std::fs::read_to_string("/proc/pressure/cpu").unwrap_or_default();
    match cpu_waited(&pressure) {
        Some(p) => format!(
            "load average {load} on {cpus} CPU(s); tasks waited for a CPU {p}% of the last 10 s"
        ),
        None => format!("load average {load} on {cpus} CPU(s)"),
    }
}

/// `some avg10` of `/proc/pressure/cpu`.
fn cpu_waited(pressure: &str) -> Option<&str> {
    pressure
        .lines()
        .find_map(|l| l.strip_prefix("some "))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("avg10="))
}

/// Everything the plan needs that the host lacks, one line each: "FUSE (/dev/fuse), for
/// service `store`'s disk (lossy = true): modprobe fuse; …". Empty: the host has it all.
pub fn missing(plan: &Plan, facts: &Facts) -> Vec<String> {
    let mut lines: Vec<(&str, Vec<String>, &str)> = vec![];
    for (need, who) in needs(plan, facts).into_iter().filter(|(n, _)| !n.ok) {
        match lines.iter_mut().find(|(what, _, _)| *what == need.what) {
            Some((_, whos, _)) if !whos.contains(&who) => whos.push(who),
            Some(_) => {}
            None => lines.push((need.what, vec![who], need.how)),
        }
    }
    lines
        .into_iter()
        .map(|(what, whos, how)| format!("{what}, for {}: {how}", whos.join(", ")))
        .chain(too_full(plan, &facts.rooms))
        .collect()
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// About what a plan writes: run files and the services' disk images (at their full size) in
/// the output root, plus a GiB of saved images when anything is placed on machines; a GiB of
/// containers in the engine, plus a GiB for each machine's engine the run starts (the images
/// loaded into it land in its volume).
fn room_needed(plan: &Plan, writes: Writes) -> u64 {
    match writes {
        Writes::Output => {
            let disks: u64 = plan
                .services
                .iter()
                .filter_map(|s| s.disk.as_ref().map(|d| d.size_mb * s.replicas.len() as u64))
                .sum();
            let placed = plan
                .services
                .iter()
                .any(|s| s.runs_on() != Placement::Local);
            GIB / 2 + disks * MIB + if placed { GIB } else { 0 }
        }
        Writes::Engine => {
            let started = plan
                .machines
                .iter()
                .filter(|m| matches!(m.engine, crate::scenario::plan::MachineEngine::Started(_)))
                .count();
            GIB + started as u64 * GIB
        }
    }
}

/// One line per file system with less free space than the plan writes to it (the needs of
/// rooms on one device add up).
fn too_full(plan: &Plan, rooms: &[Room]) -> Vec<String> {
    let mut devices: Vec<u64> = rooms.iter().map(|r| r.device).collect();
    devices.sort_unstable();
    devices.dedup();
    let gib = |b: u64| b as f64 / GIB as f64;
    let mut lines = vec![];
    for device in devices {
        let on: Vec<&Room> = rooms.iter().filter(|r| r.device == device).collect();
        let needed: u64 = on.iter().map(|r| room_needed(plan, r.writes)).sum();
        let free = on[0].free_bytes;
        if free >= needed {
            continue;
        }
        let paths: Vec<String> = on.iter().map(|r| r.path.display().to_string()).collect();
        lines.push(format!(
            "free disk space on {} ({:.1} GiB free; this run writes about {:.1} GiB there: run \
             files, disk images, containers, machines' engines): free some (`aftershock clean` \
             removes what runs left behind, `docker image prune` unused images; old run \
             directories can go), or set $AFTERSHOCK_OUTPUT to a roomier file system",
            paths.join(" and "),
            gib(free),
            gib(needed)
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cpu_pressure_line_gives_its_ten_second_average() {
        let psi = "some avg10=87.50 avg60=60.00 avg300=9.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(super::cpu_waited(psi), Some("87.50"));
        assert_eq!(super::cpu_waited(""), None);
        assert!(super::busy().starts_with("load average "));
    }

    use super::*;

    fn fixture(path: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(path)
    }

    #[test]
    fn a_v2_host_has_one_hierarchy_with_its_controllers_and_a_built_in_freezer() {
        let cgroup = Cgroup::read(&fixture("cgroup-v2/sys/fs/cgroup"), "");
        assert!(matches!(&cgroup, Cgroup::V2 { controllers } if controllers.contains("memory")));
        assert!(cgroup.has("memory") && cgroup.has("freezer") && !cgroup.has("blkio"));
    }

    /// As a real v2 guest shows it (`harness/fixtures/cgroup-v2-guest`).
    #[test]
    fn a_real_v2_guest_reads_as_v2_with_memory() {
        let cgroup = Cgroup::read(&fixture("cgroup-v2-guest/sys/fs/cgroup"), "");
        assert!(matches!(&cgroup, Cgroup::V2 { controllers } if controllers.contains("memory")));
        assert!(cgroup.has("memory") && cgroup.has("freezer") && cgroup.has("pids"));
    }

    /// This machine kind, as the preflight sees it: root, everything present, cgroup v1.
    pub fn complete() -> Facts {
        Facts {
            root: true,
            loop_devices: true,
            fuse: true,
            tools: TOOLS.iter().map(|t| t.to_string()).collect(),
            pidfd: true,
            cgroup: Cgroup::V1 {
                controllers: ["memory", "freezer", "cpu"].map(String::from).into(),
            },
            netem: true,
            rooms: vec![],
        }
    }

    const LOSSY_CUT: &str = r#"
name = "cut"
duration = "5s"
[[topology.service]]
name = "store"
preset = "datastore"
disk = { size_mb = 64, path = "/data", lossy = true }
[[fault]]
name = "cut"
kind = "power-cut"
at = "1s"
target = "store"
select = "all"
[[fault]]
name = "freeze"
kind = "pause"
at = "3s"
target = "store"
select = "all"
"#;

    #[test]
    fn everything_missing_is_listed_once_with_who_needs_it_and_how_to_get_it() {
        let plan = crate::scenario::parse("cut.toml", LOSSY_CUT).unwrap();
        assert_eq!(missing(&plan, &complete()), Vec::<String>::new());
        let no_fuse = Facts {
            fuse: false,
            ..complete()
        };
        assert_eq!(
            missing(&plan, &no_fuse),
            ["FUSE (/dev/fuse), for service `store`'s disk (lossy = true): modprobe fuse; in a container, --device /dev/fuse --cap-add SYS_ADMIN"]
        );
        let bare = Facts {
            root: false,
            fuse: false,
            cgroup: Cgroup::V1 {
                controllers: BTreeSet::new(),
            },
            ..complete()
        };
        let lines = missing(&plan, &bare);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].starts_with("root, for service `store`'s disk, fault `cut`: "),
            "{lines:#?}"
        );
        assert!(
            lines[2].starts_with("the cgroup freezer, for fault `cut`, fault `freeze`: "),
            "{lines:#?}"
        );
        let v2 = Facts {
            cgroup: Cgroup::V2 {
                controllers: BTreeSet::new(),
            },
            ..complete()
        };
        assert!(
            missing(&plan, &v2).is_empty(),
            "v2 freezes without a controller"
        );
    }

    #[test]
    fn a_v1_host_has_the_enabled_controllers_that_are_mounted() {
        let dir = std::env::temp_dir().join(format!("aftershock-cgroup-v1-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("memory")).unwrap();
        std::fs::create_dir_all(dir.join("cpu")).unwrap();
        let proc_cgroups = "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t4\t90\t1\nfreezer\t5\t3\t1\ncpu\t2\t1\t0\n";
        let cgroup = Cgroup::read(&dir, proc_cgroups);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            cgroup,
            Cgroup::V1 {
                controllers: ["memory".to_string()].into()
            }
        );
        assert!(!cgroup.has("freezer"), "enabled but not mounted");
    }

    #[test]
    fn a_file_system_with_less_room_than_the_run_writes_there_is_named_with_the_numbers() {
        let plan = crate::scenario::parse("cut.toml", LOSSY_CUT).unwrap();
        let room = |writes, path: &str, device, free_bytes| Room {
            writes,
            path: path.into(),
            device,
            free_bytes,
        };
        let apart = Facts {
            rooms: vec![
                room(Writes::Output, "/out", 1, GIB),
                room(Writes::Engine, "/var/lib/docker", 2, GIB),
            ],
            ..complete()
        };
        assert!(
            missing(&plan, &apart).is_empty(),
            "{:?}",
            missing(&plan, &apart)
        );
        // On one file system the two needs add up: 0.5 GiB + 64 MiB of disk, and 1 GiB.
        let shared = Facts {
            rooms: vec![
                room(Writes::Output, "/out", 1, GIB),
                room(Writes::Engine, "/var/lib/docker", 1, GIB),
            ],
            ..complete()
        };
        let lines = missing(&plan, &shared);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].starts_with("free disk space on /out and /var/lib/docker (1.0 GiB free; this run writes about 1.6 GiB there"),
            "{}",
            lines[0]
        );
        let measured = Room::measure(Writes::Output, Path::new("/no/such/dir/below/root")).unwrap();
        assert!(measured.free_bytes > 0 && measured.path.ends_with("root"));
    }
}
