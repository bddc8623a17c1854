//! Killing several containers at the same instant, measured at the processes.
//!
//! The engine serialises kills (~70 ms of API time each) and emits `die` events ~10 ms apart
//! even when processes die together, so "at the same instant" cannot go through the API.
//! When the engine is local we open a pidfd for each container's main process, send every
//! signal in one tight loop (`pidfd_send_signal`, under SCHED_FIFO), then timestamp each
//! process's exit twice: when the kernel reports its group exit over taskstats (before it
//! frees the memory — see `taskstats`), and when its pidfd becomes readable (after the
//! teardown). The spread of the exits is the real skew.

use super::taskstats::{Exit, ExitListener};
use crate::timeline::{now, Nanos};
use std::io;
use std::time::{Duration, Instant};

/// What a group kill measured.
#[derive(Debug, Clone)]
pub struct GroupKill {
    /// When the first signal was sent (Unix ns).
    pub signalled_at: Nanos,
    /// Time between the first and the last signal sent (ns).
    pub signal_spread: Nanos,
    /// When each process's pidfd became readable — exited *and* torn down (Unix ns), in the
    /// order of the pids given.
    pub reaped: Vec<Nanos>,
    /// When the kernel reported each process's exit over taskstats (Unix ns), same order;
    /// `None` when taskstats was not available or a record was lost.
    pub exited: Option<Vec<Nanos>>,
}

fn spread(times: &[Nanos]) -> Nanos {
    times.iter().max().copied().unwrap_or(0) - times.iter().min().copied().unwrap_or(0)
}

impl GroupKill {
    /// Spread of the exits (ns): the skew of the kill. From taskstats when available, else
    /// from the pidfds.
    pub fn exit_skew(&self) -> Nanos {
        spread(self.exited.as_deref().unwrap_or(&self.reaped))
    }

    /// Spread of the pidfd wake-ups (ns): exits plus the kernel's teardown of each process.
    pub fn reaped_skew(&self) -> Nanos {
        spread(&self.reaped)
    }
}

struct PidFd(i32);

impl PidFd {
    fn open(pid: i32) -> io::Result<Self> {
        // SAFETY: plain syscall with integer arguments; the result is checked.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PidFd(fd as i32))
    }

    fn signal(&self, sig: i32) -> io::Result<()> {
        // SAFETY: the fd is a live pidfd owned by self; info is NULL as the man page allows.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0,
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for PidFd {
    fn drop(&mut self) {
        // SAFETY: closing the fd we opened, once.
        unsafe { libc::close(self.0) };
    }
}

/// Whether `pid` is a live process (not gone, not a zombie waiting to be reaped).
pub fn process_alive(pid: i64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Whether `pid` is the main process of container `container_id` on this host (so the engine
/// is local and the process can be signalled directly).
pub fn is_local_container_process(pid: i64, container_id: &str) -> bool {
    pid > 0
        && !container_id.is_empty()
        && std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map(|c| c.contains(container_id))
            .unwrap_or(false)
}

/// Runs `f` with this thread under SCHED_FIFO when allowed, so the processes we kill (and
/// their exit work) cannot preempt the signalling loop or delay the exit timestamps on a
/// 2-core machine. The thread's policy is restored afterwards. Returns whether RT was on.
fn realtime<T>(f: impl FnOnce() -> T) -> (T, bool) {
    // SAFETY: sched_{get,set}scheduler on the calling thread (pid 0) with valid params.
    unsafe {
        let old_policy = libc::sched_getscheduler(0);
        let mut old = libc::sched_param { sched_priority: 0 };
        libc::sched_getparam(0, &mut old);
        let rt = libc::sched_param { sched_priority: 50 };
        let on = libc::sched_setscheduler(0, libc::SCHED_FIFO, &rt) == 0;
        let out = f();
        if on {
            libc::sched_setscheduler(0, old_policy, &old);
        }
        (out, on)
    }
}

/// Readies the `index`-th target for a simultaneous exit: every thread gets the highest CFS
/// weight (nice -20) and the targets are spread over the CPUs, one CPU each, so that each
/// process runs its threads' exits in parallel with the others instead of queueing behind
/// them on a busy 2-core machine. The process is about to be killed, so neither outlives it.
fn hurry(pid: i32, index: usize) {
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten();
    for tid in tasks.filter_map(|t| t.file_name().to_str().and_then(|t| t.parse::<i32>().ok())) {
        // SAFETY: setpriority and sched_setaffinity on a thread id with a valid CPU set; a
        // failure only leaves the thread as it was.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, tid as u32, -20);
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(index % cpus, &mut set);
            libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// How many threads a process has now.
fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Records the exits of our pids among `records`: a group record, or a thread record of a
/// single-threaded process (which sends no group record).
fn note_exits(
    records: Vec<Exit>,
    pids: &[i32],
    single: &[bool],
    exited: &mut [Option<Nanos>],
    at: Nanos,
) {
    for record in records {
        let (id, group) = match record {
            Exit::Group(id) => (id, true),
            Exit::Thread(id) => (id, false),
        };
        if let Some(i) = pids.iter().position(|p| *p as u32 == id) {
            if group || single[i] {
                exited[i].get_or_insert(at);
            }
        }
    }
}

/// How long before the signal the targets are hurried (nice -20, a CPU each): close enough
/// that the system under test does not run pinned for long, far enough for fifty processes
/// (moving a thread to another CPU waits for that CPU: on a busy 2-core machine a few ms).
const HURRY_AHEAD: Duration = Duration::from_millis(25);

/// The last stretch before a deadline is spun, not slept: a sleep wakes up to ~100 µs late.
const SPIN: Duration = Duration::from_micros(150);

/// Signals every pid at once — at `at` when given (everything is prepared before, so the
/// signals leave within microseconds of it), else now — and waits (at most `wait`) for all of
/// them to exit. Blocking: call it from `spawn_blocking`.
pub fn kill_together(
    pids: &[i32],
    sig: i32,
    at: Option<Instant>,
    wait: Duration,
) -> io::Result<GroupKill> {
    let entered = Instant::now();
    let (result, rt) = realtime(|| {
        let mut watch = Watch::open(pids)?;
        let opened = Instant::now();
        if let Some(at) = at {
            sleep_until(at.checked_sub(HURRY_AHEAD).unwrap_or(at));
        }
        let hurrying = Instant::now();
        watch.listen();
        pids.iter().enumerate().for_each(|(i, p)| hurry(*p, i));
        let hurried = Instant::now();
        if let Some(at) = at {
            sleep_until(at);
        }
        let signalled_at = now();
        let woke = Instant::now();
        for fd in &watch.fds {
            fd.signal(sig)?;
        }
        let signal_spread = now() - signalled_at;
        if let Some(late) = at.and_then(|at| woke.checked_duration_since(at)) {
            if late > Duration::from_millis(1) {
                let ahead = |t: Instant| {
                    at.map_or(0.0, |at| {
                        at.saturating_duration_since(t).as_secs_f64() * 1e3
                    })
                };
                tracing::debug!(
                    "armed kill {:.2} ms late: entered {:.2} ms ahead, pidfds open {:.2} ms ahead, hurry from {:.2} to {:.2} ms ahead",
                    late.as_secs_f64() * 1e3, ahead(entered), ahead(opened), ahead(hurrying), ahead(hurried)
                );
            }
        }
        let (reaped, exited) = watch.wait(wait)?;
        Ok(GroupKill {
            signalled_at,
            signal_spread,
            reaped,
            exited,
        })
    });
    if !rt {
        tracing::debug!("SCHED_FIFO not permitted: kill timing may be noisier");
    }
    result
}

/// Sleeps until `at`, the last [`SPIN`] of it spinning.
fn sleep_until(at: Instant) {
    let left = at.saturating_duration_since(Instant::now());
    if left > SPIN {
        std::thread::sleep(left - SPIN);
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

/// The exits of processes something else kills (the engine, the `docker` CLI), measured the
/// same way as [`kill_together`]'s: pidfds and the kernel's exit records, on a SCHED_FIFO
/// thread, the targets hurried the same way. `ready` is called once the thread is polling;
/// then the caller kills. Blocking.
pub fn watch_exits(
    pids: &[i32],
    wait: Duration,
    ready: impl FnOnce(),
) -> io::Result<(Vec<Nanos>, Option<Vec<Nanos>>)> {
    realtime(|| {
        let mut watch = Watch::open(pids)?;
        watch.listen();
        pids.iter().enumerate().for_each(|(i, p)| hurry(*p, i));
        ready();
        watch.wait(wait)
    })
    .0
}

/// Pidfds of the targets and the kernel's exit records, opened before anything is signalled:
/// the pidfds when the kill is armed, the exit records only just before the signal (they are
/// every exit on the machine: a listener opened a second ahead on a busy host holds thousands
/// by then, and draining them on a SCHED_FIFO thread took CPU from the next armed kill —
/// measured: 5–8 ms late signals).
struct Watch {
    pids: Vec<i32>,
    fds: Vec<PidFd>,
    listener: Option<ExitListener>,
    /// Whether each target has a single thread (it then sends no group record).
    single: Vec<bool>,
}

impl Watch {
    fn open(pids: &[i32]) -> io::Result<Watch> {
        let fds = pids
            .iter()
            .map(|p| PidFd::open(*p))
            .collect::<io::Result<Vec<_>>>()?;
        let single: Vec<bool> = pids.iter().map(|p| threads(*p) == 1).collect();
        Ok(Watch {
            pids: pids.to_vec(),
            fds,
            listener: None,
            single,
        })
    }

    /// Starts receiving the kernel's exit records (none without taskstats).
    fn listen(&mut self) {
        self.listener = ExitListener::register()
            .map_err(|e| tracing::debug!("taskstats unavailable ({e}); exits from pidfds only"))
            .ok();
    }

    /// Waits (at most `wait`) until every target has exited: when each pidfd woke, and when
    /// the kernel reported each exit (None without taskstats).
    fn wait(&self, wait: Duration) -> io::Result<(Vec<Nanos>, Option<Vec<Nanos>>)> {
        let mut exited: Vec<Option<Nanos>> = vec![None; self.fds.len()];
        let mut exits: Vec<Option<Nanos>> = vec![None; self.fds.len()];
        let deadline = Instant::now() + wait;
        while exits.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("processes still alive {wait:?} after the signal"),
                ));
            }
            self.poll_once(left, &mut exits, &mut exited)?;
        }
        if let Some(l) = &self.listener {
            note_exits(l.drain(), &self.pids, &self.single, &mut exited, now());
        }
        Ok((
            exits.into_iter().flatten().collect(),
            exited.into_iter().collect(),
        ))
    }

    /// One `poll` of the pidfds still open and the exit records; notes what woke.
    fn poll_once(
        &self,
        left: Duration,
        exits: &mut [Option<Nanos>],
        exited: &mut [Option<Nanos>],
    ) -> io::Result<()> {
        let mut polled: Vec<libc::pollfd> = self
            .fds
            .iter()
            .zip(exits.iter())
            .filter(|(_, e)| e.is_none())
            .map(|(fd, _)| fd.0)
            .chain(self.listener.as_ref().map(|l| l.raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `polled` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, ms) };
        let at = now();
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(e),
            };
        }
        for p in polled.iter().filter(|p| p.revents != 0) {
            if let Some(i) = self.fds.iter().position(|fd| fd.0 == p.fd) {
                exits[i] = Some(at);
            }
            if let Some(l) = self.listener.as_ref().filter(|l| l.raw_fd() == p.fd) {
                note_exits(l.drain(), &self.pids, &self.single, exited, at);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_child_processes_together_and_measures_their_exits() {
        let mut children: Vec<_> = (0..3)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("30")
                    .spawn()
                    .unwrap()
            })
            .collect();
        let pids: Vec<i32> = children.iter().map(|c| c.id() as i32).collect();
        let k = kill_together(&pids, libc::SIGKILL, None, Duration::from_secs(5)).unwrap();
        assert_eq!(k.reaped.len(), 3);
        assert!(k.exit_skew() >= 0 && k.reaped_skew() >= 0);
        // As root (always, for this harness) the kernel's exit records arrive.
        let exited = k.exited.as_ref().expect("taskstats exit records");
        for (e, r) in exited.iter().zip(&k.reaped) {
            assert!(e <= r, "an exit is reported no later than the pidfd wakes");
        }
        for c in &mut children {
            let status = c.wait().unwrap();
            assert!(!status.success());
        }
    }

    #[test]
    fn a_missing_process_is_an_error_not_a_hang() {
        assert!(
            kill_together(&[i32::MAX - 1], libc::SIGKILL, None, Duration::from_secs(1)).is_err()
        );
    }
}

#[cfg(test)]
mod armed {
    use super::*;

    #[test]
    fn an_armed_kill_signals_at_its_instant() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let at = Instant::now() + Duration::from_millis(30);
        let wall = now() + 30_000_000;
        let k = kill_together(
            &[child.id() as i32],
            libc::SIGKILL,
            Some(at),
            Duration::from_secs(5),
        )
        .unwrap();
        let late = k.signalled_at - wall;
        assert!(
            (-1_000_000..5_000_000).contains(&late),
            "signalled {late} ns after its instant"
        );
        assert!(!child.wait().unwrap().success());
    }

    #[test]
    fn exits_of_processes_killed_by_someone_else_are_measured() {
        let mut children: Vec<_> = (0..2)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("30")
                    .spawn()
                    .unwrap()
            })
            .collect();
        let pids: Vec<i32> = children.iter().map(|c| c.id() as i32).collect();
        let (reaped, _) = watch_exits(&pids, Duration::from_secs(5), || {
            for p in &pids {
                // SAFETY: kill(2) of our own children.
                unsafe { libc::kill(*p, libc::SIGKILL) };
            }
        })
        .unwrap();
        assert_eq!(reaped.len(), 2);
        for c in &mut children {
            c.wait().unwrap();
        }
    }
}
