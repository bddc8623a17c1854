//! The machine-wide run lock (`/run/aftershock/run.lock` for root: see `engine::state`) and
//! who holds it.
//!
//! Timed runs never overlap on one machine, except that two runs judging nothing a second run
//! could change (`aftershock_model::scenario::overlap`: budgets of seconds, lost writes) may
//! share it ([`Mode::Shared`]: the lock taken shared, plus one of [`SHARED`] slot locks); a
//! run on machines that judges as coarsely shares it the same way but also takes the
//! machines' lock exclusively ([`Mode::Machines`]: never two fleets of engines at once); a
//! run alone takes it exclusively. The run that takes the lock writes who it is ([`Holder`]:
//! run id, scenario, pid, since when) into `run.lock.holder` (shared: its slot's
//! `run.lock.slotN.holder`) next to it; a run that
//! finds the lock taken says at once, through a tracing event the CLI shows, for whom it waits
//! and how to stop waiting — or, told not to wait, refuses with the same words
//! ([`HarnessError::Busy`]).

use crate::engine::images::{lock_dir, FileLock};
use crate::error::{HarnessError, Result};
use crate::progress::{Progress, ProgressEvent};
use crate::timeline::{now, Nanos};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Who holds the run lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Its run id.
    pub run: String,
    /// Its scenario's name.
    pub scenario: String,
    /// Its process.
    pub pid: u32,
    /// When it took the lock (Unix ns).
    pub since: Nanos,
}

impl Holder {
    /// This process, about to run `scenario` as `run`.
    pub fn me(run: &str, scenario: &str) -> Holder {
        Holder {
            run: run.into(),
            scenario: scenario.into(),
            pid: std::process::id(),
            since: now(),
        }
    }

    /// "run 20261201T101500-1a2b3c4d (scenario zookeeper-quorum-remediated, pid 4242, since
    /// 2026-12-01T10:15:00Z, 12 s ago)".
    pub fn describe(&self, at: Nanos) -> String {
        let since =
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.since.max(0) as u64);
        format!(
            "run {} (scenario {}, pid {}, since {}, {} s ago)",
            self.run,
            self.scenario,
            self.pid,
            humantime::format_rfc3339_seconds(since),
            (at - self.since).max(0) / 1_000_000_000
        )
    }
}

/// The run lock's path, in the machine-wide state directory (created private, refused when
/// unsafe).
pub fn path() -> Result<PathBuf> {
    Ok(lock_dir()?.join("run.lock"))
}

/// Where the holder writes who it is: next to the lock.
pub fn holder_path(lock: &Path) -> PathBuf {
    lock.with_extension("lock.holder")
}

/// Who holds the lock at `lock`, as its holders wrote it: the run alone, or the runs sharing
/// it (none: no file, or unreadable).
pub fn holders(lock: &Path) -> Vec<Holder> {
    let files = std::iter::once(holder_path(lock)).chain((0..SHARED).map(|i| slot_holder(lock, i)));
    files
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect()
}

/// How many runs may share the machine at once (see `aftershock_model::scenario::overlap`).
pub const SHARED: usize = 2;

/// How often a shared run waiting for a free slot looks again.
const SLOT_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// How long a shared run waits for a free slot at most (then it is refused as busy).
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(3 * 3600);

/// How a run takes the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No other run beside it.
    Alone,
    /// Beside at most one other run that shares (never beside a run alone).
    Shared,
    /// As [`Mode::Shared`], and never beside another run on machines (their engines starting
    /// and loading images beside each other made the harness fall behind).
    Machines,
}

/// The lock runs on machines take exclusively, next to the run lock.
fn machines_lock(lock: &Path) -> PathBuf {
    lock.with_extension("lock.machines")
}

/// The lock of shared slot `i`, next to the lock.
fn slot(lock: &Path, i: usize) -> PathBuf {
    lock.with_extension(format!("lock.slot{i}"))
}

/// Where the holder of shared slot `i` writes who it is.
fn slot_holder(lock: &Path, i: usize) -> PathBuf {
    lock.with_extension(format!("lock.slot{i}.holder"))
}

/// The run lock, held; dropping it removes the holder file (while still holding the lock, so
/// it never removes a later holder's) and then releases the slot and the lock.
pub struct Held {
    holder_file: PathBuf,
    _slot: Option<FileLock>,
    _lock: FileLock,
    _machines: Option<FileLock>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.holder_file);
    }
}

/// The lock taken, not yet recorded: the lock itself and, shared, the slot (its number).
struct Taken {
    lock: FileLock,
    slot: Option<(usize, FileLock)>,
    machines: Option<FileLock>,
}

impl Taken {
    /// The lock in `mode` if it can be had now.
    fn now(lock: &Path, mode: Mode) -> Result<Option<Taken>> {
        let machines = match mode {
            Mode::Machines => match FileLock::try_acquire(machines_lock(lock))? {
                Some(held) => Some(held),
                None => return Ok(None),
            },
            Mode::Alone | Mode::Shared => None,
        };
        let taken = match mode {
            Mode::Alone => FileLock::try_acquire(lock.to_path_buf())?.map(|lock| Taken {
                lock,
                slot: None,
                machines: None,
            }),
            Mode::Shared | Mode::Machines => {
                match FileLock::try_acquire_shared(lock.to_path_buf())? {
                    Some(shared) => Self::free_slot(lock)?.map(|slot| Taken {
                        lock: shared,
                        slot: Some(slot),
                        machines,
                    }),
                    None => None,
                }
            }
        };
        Ok(taken)
    }

    /// A shared slot free now.
    fn free_slot(lock: &Path) -> Result<Option<(usize, FileLock)>> {
        for i in 0..SHARED {
            if let Some(held) = FileLock::try_acquire(slot(lock, i))? {
                return Ok(Some((i, held)));
            }
        }
        Ok(None)
    }

    /// A shared slot, as soon as either is free: looked for every [`SLOT_POLL`], for at most
    /// [`SLOT_WAIT`]. Blocking on one slot in the kernel would wait for that one while the
    /// other is free (every run of a test binary chose the same one: shared runs of one
    /// process never found each other once they had to wait).
    fn wait_for_slot(lock: &Path) -> Result<(usize, FileLock)> {
        let tries = SLOT_WAIT.as_millis() / SLOT_POLL.as_millis();
        for _ in 0..tries {
            if let Some(slot) = Self::free_slot(lock)? {
                return Ok(slot);
            }
            std::thread::sleep(SLOT_POLL);
        }
        Err(HarnessError::Busy {
            lock: lock.to_path_buf(),
            holder: who_holds(lock),
        })
    }

    /// The lock in `mode`, blocking this thread until it is ours.
    fn blocking(lock: &Path, mode: Mode) -> Result<Taken> {
        if mode == Mode::Alone {
            let lock = FileLock::acquire_blocking(lock.to_path_buf())?;
            return Ok(Taken {
                lock,
                slot: None,
                machines: None,
            });
        }
        // The machines' lock first: a run on machines waiting for another one holds no slot.
        let machines = match mode {
            Mode::Machines => Some(FileLock::acquire_blocking(machines_lock(lock))?),
            Mode::Alone | Mode::Shared => None,
        };
        let shared = FileLock::acquire_shared_blocking(lock.to_path_buf())?;
        let slot = Self::wait_for_slot(lock)?;
        Ok(Taken {
            lock: shared,
            slot: Some(slot),
            machines,
        })
    }
}

/// Whether a run waits for the lock's holder, and who hears that it waits.
#[derive(Debug, Clone, Copy)]
pub enum Wait<'a> {
    /// Refuse at once, naming the holder.
    Refuse,
    /// Wait, saying whom for (a warning event, and a `Waiting` event to the progress watcher).
    For(&'a Progress),
}

/// Takes the lock at `lock` for `me`, alone or shared as `mode` says. When other runs hold it
/// so that `me` cannot: waits (saying for whom) or refuses at once, as `wait` says.
pub async fn take(lock: &Path, me: &Holder, wait: Wait<'_>, mode: Mode) -> Result<Held> {
    let taken = match Taken::now(lock, mode)? {
        Some(taken) => taken,
        None => {
            let who = who_holds(lock);
            let Wait::For(progress) = wait else {
                return Err(HarnessError::Busy {
                    lock: lock.to_path_buf(),
                    holder: who,
                });
            };
            progress.send(ProgressEvent::Waiting {
                holder: format!("{who} (the machine-wide run lock)"),
            });
            tracing::warn!(
                "waiting for {who} to finish: timed runs never overlap on one machine (lock {}). \
Ctrl-C stops waiting; `--no-wait` (RunOptions::no_wait) refuses at once instead",
                lock.display()
            );
            wait_for(lock, mode).await?
        }
    };
    let me = Holder {
        since: now(),
        ..me.clone()
    };
    let file = match &taken.slot {
        Some((i, _)) => slot_holder(lock, *i),
        None => holder_path(lock),
    };
    let text = serde_json::to_string(&me).expect("a holder serialises");
    write_no_follow(&file, &text).map_err(HarnessError::io(format!("write {}", file.display())))?;
    Ok(Held {
        holder_file: file,
        _slot: taken.slot.map(|(_, held)| held),
        _lock: taken.lock,
        _machines: taken.machines,
    })
}

/// The runs that hold the lock, in words.
fn who_holds(lock: &Path) -> String {
    let holders = holders(lock);
    if holders.is_empty() {
        return format!(
            "another run (not recorded: {} is missing)",
            holder_path(lock).display()
        );
    }
    let words: Vec<String> = holders
        .iter()
        .map(|h| match Path::new(&format!("/proc/{}", h.pid)).exists() {
            true => h.describe(now()),
            false => format!(
                "another run (not recorded; the last recorded holder, {}, has ended)",
                h.describe(now())
            ),
        })
        .collect();
    words.join(" and ")
}

/// Writes `text` to `path`, refusing to follow a link there.
fn write_no_follow(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Waits for the lock in a thread of its own, queued in the kernel behind earlier takers (a
/// poller would lose every race to them). Not a blocking task of the runtime: a Ctrl-C while
/// waiting ends the process at once (the thread dies with it; if it takes the lock after the
/// wait was abandoned, the lock is dropped, released, at once).
async fn wait_for(lock: &Path, mode: Mode) -> Result<Taken> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let path = lock.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(Taken::blocking(&path, mode));
    });
    rx.await.expect("the lock thread sends before it ends")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_taker_learns_who_holds_the_lock_or_waits_for_it() {
        let dir = std::env::temp_dir().join(format!("aftershock-lock-test-{}", std::process::id()));
        let lock = dir.join("run.lock");
        let first = Holder::me("run-1", "first-scenario");
        let held = take(&lock, &first, Wait::Refuse, Mode::Alone)
            .await
            .unwrap();
        assert_eq!(
            holders(&lock)
                .into_iter()
                .map(|h| h.run)
                .collect::<Vec<_>>(),
            ["run-1"]
        );
        let second = Holder::me("run-2", "second");
        let refused = take(&lock, &second, Wait::Refuse, Mode::Alone)
            .await
            .err()
            .expect("busy");
        let text = refused.to_string();
        assert!(
            text.contains("run run-1 (scenario first-scenario, pid "),
            "{text}"
        );
        assert!(text.contains("--no-wait"), "{text}");
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let progress = Progress::to({
            let heard = heard.clone();
            move |e| heard.lock().unwrap().push(e.clone())
        });
        let waiting = tokio::spawn({
            let lock = lock.clone();
            async move {
                take(&lock, &second, Wait::For(&progress), Mode::Alone)
                    .await
                    .map(|_| ())
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "the second taker waits while the first holds it"
        );
        drop(held);
        waiting.await.unwrap().unwrap();
        let heard = heard.lock().unwrap().clone();
        assert!(
            matches!(&heard[..], [ProgressEvent::Waiting { holder }] if holder.contains("run run-1")),
            "the waiter's watcher hears whom it waits for: {heard:?}"
        );
        assert_eq!(
            holders(&lock),
            [],
            "the second holder is done: no holder file"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn two_shared_runs_overlap_a_third_and_a_run_alone_do_not() {
        let dir =
            std::env::temp_dir().join(format!("aftershock-lock-shared-{}", std::process::id()));
        let lock = dir.join("run.lock");
        let run = |n: &str| Holder::me(n, "scenario");
        let a = take(&lock, &run("a"), Wait::Refuse, Mode::Shared)
            .await
            .unwrap();
        let b = take(&lock, &run("b"), Wait::Refuse, Mode::Shared)
            .await
            .unwrap();
        let mut held: Vec<String> = holders(&lock).into_iter().map(|h| h.run).collect();
        held.sort();
        assert_eq!(held, ["a", "b"]);
        let third = take(&lock, &run("c"), Wait::Refuse, Mode::Shared).await;
        let text = third.err().expect("both slots are taken").to_string();
        assert!(
            text.contains("run a (") && text.contains("run b ("),
            "{text}"
        );
        let alone = take(&lock, &run("d"), Wait::Refuse, Mode::Alone).await;
        assert!(alone.is_err(), "a run alone waits for the shared ones");
        drop(a);
        let c = take(&lock, &run("c"), Wait::Refuse, Mode::Shared)
            .await
            .unwrap();
        drop((b, c));
        assert!(holders(&lock).is_empty(), "every holder file is removed");
        let d = take(&lock, &run("d"), Wait::Refuse, Mode::Alone)
            .await
            .unwrap();
        let shared = take(&lock, &run("e"), Wait::Refuse, Mode::Shared).await;
        assert!(shared.is_err(), "no shared run beside a run alone");
        drop(d);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_shared_run_that_waits_takes_whichever_slot_is_freed_first() {
        let dir =
            std::env::temp_dir().join(format!("aftershock-lock-slots-{}", std::process::id()));
        let lock = dir.join("run.lock");
        let run = |n: &str| Holder::me(n, "scenario");
        let a = take(&lock, &run("a"), Wait::Refuse, Mode::Shared)
            .await
            .unwrap();
        let b = take(&lock, &run("b"), Wait::Refuse, Mode::Shared)
            .await
            .unwrap();
        let progress = Progress::default();
        let mut took = vec![];
        // Both slots taken: c waits; a's slot frees, c takes it; d waits; b's slot frees, d
        // takes that one (the same process's waiters used to wait on one slot, whichever was free).
        for (freed, waiter) in [(a, "c"), (b, "d")] {
            let waiting = tokio::spawn({
                let (lock, me, progress) = (lock.clone(), run(waiter), progress.clone());
                async move { take(&lock, &me, Wait::For(&progress), Mode::Shared).await }
            });
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            assert!(
                !waiting.is_finished(),
                "{waiter} waits while both slots are taken"
            );
            drop(freed);
            let held = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
                .await
                .unwrap_or_else(|_| panic!("{waiter} took the freed slot within 5 s"));
            took.push(held.unwrap().unwrap());
        }
        drop(took);
        assert!(holders(&lock).is_empty(), "every holder file is removed");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_run_on_machines_shares_with_one_run_without_machines_never_with_another_on_machines()
    {
        let dir =
            std::env::temp_dir().join(format!("aftershock-lock-machines-{}", std::process::id()));
        let lock = dir.join("run.lock");
        let run = |n: &str| Holder::me(n, "scenario");
        let fleet = take(&lock, &run("fleet"), Wait::Refuse, Mode::Machines)
            .await
            .unwrap();
        let other = take(&lock, &run("fleet-2"), Wait::Refuse, Mode::Machines).await;
        let text = other
            .err()
            .expect("one run on machines at a time")
            .to_string();
        assert!(text.contains("run fleet ("), "{text}");
        let alone = take(&lock, &run("alone"), Wait::Refuse, Mode::Alone).await;
        assert!(alone.is_err(), "a run alone waits for the run on machines");
        let shared = take(&lock, &run("shared"), Wait::Refuse, Mode::Shared)
            .await
            .unwrap();
        drop(fleet);
        let third = take(&lock, &run("fleet-3"), Wait::Refuse, Mode::Machines)
            .await
            .unwrap();
        drop((shared, third));
        assert!(holders(&lock).is_empty(), "every holder file is removed");
        let _ = std::fs::remove_dir_all(dir);
    }
}
