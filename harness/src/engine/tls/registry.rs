//! Where every run's certificates are, machine-wide, so that they go on every path: an entry
//! per run in the state directory (`<state>/tls/<run id>`: the owner's `pid@start time`, then
//! the run's `tls/` directory), written when the set is made and removed with it. A run that
//! was SIGKILLed leaves its entry; its watchdog (`cleanup::remove_run`), the next run and
//! `aftershock clean` (`cleanup::reap_dead_runs`, `remove_everything`) remove the keys of
//! every entry whose owner is gone, wherever that run's output root was.

use std::path::{Path, PathBuf};

/// The registry's directory (created private; refused when unsafe, as the state directory is).
pub(super) fn dir() -> Result<PathBuf, super::TlsError> {
    let dir = crate::engine::state::state_dir()?.join("tls");
    crate::engine::state::private_dir(&dir)?;
    Ok(dir)
}

/// Records that `tls_dir` (a run's `<run dir>/tls`) belongs to this process; returns the entry.
pub(super) fn register(
    registry: &Path,
    run: &str,
    tls_dir: &Path,
) -> Result<PathBuf, super::TlsError> {
    let owner = crate::engine::owner::process_identity(std::process::id()).unwrap_or_default();
    let entry = registry.join(run);
    std::fs::write(&entry, format!("{owner}\n{}", tls_dir.display())).map_err(|source| {
        super::TlsError::Write {
            path: entry.clone(),
            source,
        }
    })?;
    Ok(entry)
}

/// Removes a registered `tls/` directory: only a real directory named `tls` (never through a
/// link), then the entry. Whether keys were there.
fn remove(entry: &Path, tls_dir: &Path) -> bool {
    let is_dir = std::fs::symlink_metadata(tls_dir).is_ok_and(|m| m.file_type().is_dir());
    let removed = is_dir
        && tls_dir.file_name().is_some_and(|n| n == "tls")
        && match std::fs::remove_dir_all(tls_dir) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(dir = %tls_dir.display(), error = %e, "cannot remove a dead run's certificates");
                return false;
            }
        };
    let _ = std::fs::remove_file(entry);
    removed
}

/// An entry: (owner identity, the run's `tls/` directory).
fn read(entry: &Path) -> Option<(String, PathBuf)> {
    let text = std::fs::read_to_string(entry).ok()?;
    let (owner, dir) = text.split_once('\n')?;
    Some((owner.to_string(), PathBuf::from(dir.trim())))
}

/// Removes the certificates of every run in `registry` whose owner process is gone; how many
/// runs' keys were removed.
pub fn reap_dead_in(registry: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(registry) else {
        return 0;
    };
    let dead = entries.flatten().filter_map(|e| {
        let (owner, dir) = read(&e.path())?;
        (!crate::engine::owner::alive(&owner)).then(|| (e.path(), dir))
    });
    dead.filter(|(entry, dir)| remove(entry, dir)).count()
}

/// Removes the certificates of `run` in `registry`, whoever owned them (its watchdog, once
/// the run's process is gone); whether there were any.
pub fn remove_run_in(registry: &Path, run: &str) -> bool {
    let entry = registry.join(run);
    read(&entry).is_some_and(|(_, dir)| remove(&entry, &dir))
}

/// [`reap_dead_in`] the machine-wide registry (nothing when it is unsafe: said in a warning).
pub fn reap_dead() -> usize {
    match dir() {
        Ok(registry) => reap_dead_in(&registry),
        Err(e) => {
            tracing::warn!("the registry of runs' certificates is not read: {e}");
            0
        }
    }
}

/// [`remove_run_in`] the machine-wide registry.
pub fn remove_run(run: &str) -> bool {
    dir().is_ok_and(|registry| remove_run_in(&registry, run))
}
