//! The host binaries (lossyfs, sicklink, the static leak agent) kept across output roots and
//! checkouts, by source hash: a second checkout of the same sources (a CI clone, a worktree)
//! copies them instead of compiling them again (~40 s each on 2 cores). They live in the
//! machine-wide state directory (`engine::state`: `/run/aftershock/bin` as root, mode 0700,
//! checked without following links), since they are run as root: nobody else may write there.
//! A binary is named by what it was built from (`<name>-<source hash>`, `-static` for a
//! statically linked one); anything the cache cannot do is logged and the binary is built.

use std::path::{Path, PathBuf};

/// The cache's directory, created private; None (logged) when it cannot be.
fn dir() -> Option<PathBuf> {
    let dir = super::state::state_dir()
        .map(|d| d.join("bin"))
        .and_then(|d| super::state::private_dir(&d).map(|()| d));
    match dir {
        Ok(dir) => Some(dir),
        Err(e) => {
            tracing::warn!("no cache of host binaries ({e}): they are built in the output root");
            None
        }
    }
}

fn entry(dir: &Path, name: &str, hash: &str, statically: bool) -> PathBuf {
    let kind = if statically { "-static" } else { "" };
    dir.join(format!("{name}{kind}-{hash}"))
}

/// Copies the cached binary `name` built from `hash` to `to`; whether there was one.
pub(crate) fn restore(name: &str, hash: &str, statically: bool, to: &Path) -> bool {
    dir().is_some_and(|dir| restore_in(&dir, name, hash, statically, to))
}

/// Keeps a copy of the binary `name` just built from `hash` at `from`, in place of the copies
/// built from other sources (one version per binary and linking).
pub(crate) fn keep(name: &str, hash: &str, statically: bool, from: &Path) {
    if let Some(dir) = dir() {
        keep_in(&dir, name, hash, statically, from)
    }
}

fn restore_in(dir: &Path, name: &str, hash: &str, statically: bool, to: &Path) -> bool {
    let cached = entry(dir, name, hash, statically);
    // A regular file of ours only: never a link planted in its place.
    let ours = std::fs::symlink_metadata(&cached).is_ok_and(|m| m.file_type().is_file());
    if !ours {
        return false;
    }
    let copied = to
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::copy(&cached, to));
    match copied {
        Ok(_) => {
            tracing::info!(
                binary = name,
                "host binary {name} taken from {}",
                cached.display()
            );
            true
        }
        Err(e) => {
            tracing::warn!(
                "could not copy {} to {}: {e}",
                cached.display(),
                to.display()
            );
            false
        }
    }
}

fn keep_in(dir: &Path, name: &str, hash: &str, statically: bool, from: &Path) {
    let cached = entry(dir, name, hash, statically);
    let prefix = format!("{name}{}-", if statically { "-static" } else { "" });
    let older = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| {
            f.strip_prefix(&prefix)
                .is_some_and(|h| h.len() == hash.len())
        });
    for f in older.collect::<Vec<_>>() {
        let _ = std::fs::remove_file(cached.with_file_name(f));
    }
    // Written beside, then renamed: a concurrent reader never copies half a binary.
    let partial = cached.with_extension(format!("partial-{}", std::process::id()));
    let kept = std::fs::copy(from, &partial).and_then(|_| std::fs::rename(&partial, &cached));
    if let Err(e) = kept {
        let _ = std::fs::remove_file(&partial);
        tracing::warn!(
            "could not keep {} in {}: {e}",
            from.display(),
            cached.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_binary_is_restored_by_its_hash_only_and_replaces_older_versions() {
        let root =
            std::env::temp_dir().join(format!("aftershock-bin-cache-{}", std::process::id()));
        let (dir, out) = (root.join("cache"), root.join("out"));
        std::fs::create_dir_all(&dir).unwrap();
        let built = root.join("built");
        let (old, new) = ("a".repeat(64), "b".repeat(64));
        std::fs::write(&built, "old binary").unwrap();
        keep_in(&dir, "lossyfs", &old, false, &built);
        keep_in(&dir, "lossyfs", &old, true, &built);
        assert!(restore_in(
            &dir,
            "lossyfs",
            &old,
            false,
            &out.join("lossyfs")
        ));
        assert_eq!(
            std::fs::read_to_string(out.join("lossyfs")).unwrap(),
            "old binary"
        );
        assert!(!restore_in(&dir, "lossyfs", &new, false, &out.join("x")));
        std::fs::write(&built, "new binary").unwrap();
        keep_in(&dir, "lossyfs", &new, false, &built);
        assert!(!restore_in(&dir, "lossyfs", &old, false, &out.join("x")));
        assert!(restore_in(&dir, "lossyfs", &old, true, &out.join("static")));
        // A link planted where a binary would be is never copied from.
        std::os::unix::fs::symlink(&built, entry(&dir, "sicklink", &new, false)).unwrap();
        assert!(!restore_in(&dir, "sicklink", &new, false, &out.join("y")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
