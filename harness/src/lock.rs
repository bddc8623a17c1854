//! The machine-wide run lock (`/run/aftershock/run.lock` for root: see `engine::state`) and
//! who holds it.
//!
//! Timed runs never overlap on one machine. The run that takes the lock writes who it is
//! ([`Holder`]: run id, scenario, pid, since when) into `run.lock.holder` next to it; a run that
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

/// Who holds the lock at `lock`, as its holder wrote it (None: no file, or unreadable).
pub fn holder(lock: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(holder_path(lock)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The run lock, held; dropping it removes the holder file (while still holding the lock, so
/// it never removes a later holder's) and then releases the lock.
pub struct Held {
    holder_file: PathBuf,
    _lock: FileLock,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.holder_file);
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

/// Takes the lock at `lock` for `me`. When another run holds it: waits (saying for whom) or
/// refuses at once, as `wait` says.
pub async fn take(lock: &Path, me: &Holder, wait: Wait<'_>) -> Result<Held> {
    let held = match FileLock::try_acquire(lock.to_path_buf())? {
        Some(held) => held,
        None => {
            let who = match holder(lock) {
                Some(h) if Path::new(&format!("/proc/{}", h.pid)).exists() => h.describe(now()),
                Some(h) => format!(
                    "another run (not recorded; the last recorded holder, {}, has ended)",
                    h.describe(now())
                ),
                None => format!(
                    "another run (not recorded: {} is missing)",
                    holder_path(lock).display()
                ),
            };
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
            wait_for(lock).await?
        }
    };
    let me = Holder {
        since: now(),
        ..me.clone()
    };
    let file = holder_path(lock);
    let text = serde_json::to_string(&me).expect("a holder serialises");
    write_no_follow(&file, &text).map_err(HarnessError::io(format!("write {}", file.display())))?;
    Ok(Held {
        holder_file: file,
        _lock: held,
    })
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
async fn wait_for(lock: &Path) -> Result<FileLock> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let path = lock.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(FileLock::acquire_blocking(path));
    });
    Ok(rx.await.expect("the lock thread sends before it ends")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_taker_learns_who_holds_the_lock_or_waits_for_it() {
        let dir = std::env::temp_dir().join(format!("aftershock-lock-test-{}", std::process::id()));
        let lock = dir.join("run.lock");
        let first = Holder::me("run-1", "first-scenario");
        let held = take(&lock, &first, Wait::Refuse).await.unwrap();
        assert_eq!(holder(&lock).map(|h| h.run), Some("run-1".into()));
        let second = Holder::me("run-2", "second");
        let refused = take(&lock, &second, Wait::Refuse)
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
            async move { take(&lock, &second, Wait::For(&progress)).await.map(|_| ()) }
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
            holder(&lock),
            None,
            "the second holder is done: no holder file"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
