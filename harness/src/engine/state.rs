//! Where the machine-wide shared state lives — the run lock and its holder file, the image
//! build lock, the registry of runs with disks — and how directories a root process writes
//! into are made safe.
//!
//! The state directory ([`state_dir`]) is `/run/aftershock` when running as root, else
//! `$XDG_RUNTIME_DIR/aftershock` (or `<temp dir>/aftershock-<uid>` when that is unset). It is
//! never a fixed path in a world-writable directory that someone else could create first:
//! [`private_dir`] creates a directory with mode 0700, then looks at it without following
//! links (`lstat`) and refuses, with an [`UnsafeDirError`] that says what is wrong and how to
//! fix it, when it is a symbolic link, not a directory, not owned by this process's user, or
//! writable by group or others. Nothing is ever written through a refused path.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why a directory aftershock writes its shared or temporary state into was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafeDirError {
    /// The path is a symbolic link: whoever made it would decide where aftershock writes.
    #[error("{} is a symbolic link (to {}), not a directory of aftershock's own: whoever made it would decide where this process writes. Remove the link (`rm {}`) and run again", path.display(), target.display(), path.display())]
    Link {
        /// The refused path.
        path: PathBuf,
        /// Where the link points.
        target: PathBuf,
    },

    /// The path exists and is not a directory.
    #[error("{} exists and is not a directory; aftershock keeps its state in a directory there. Remove it (`rm {}`) and run again", path.display(), path.display())]
    NotADirectory {
        /// The refused path.
        path: PathBuf,
    },

    /// The directory belongs to another user, who could change what is in it.
    #[error("{} is owned by uid {owner}, not by this process's user (uid {me}): someone else made it first and could change what is in it. Look at what it holds, remove it (`rm -r {}`) and run again", path.display(), path.display())]
    Owner {
        /// The refused directory.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// This process's effective uid.
        me: u32,
    },

    /// Group or others may write into the directory.
    #[error("{} is writable by group or others (mode {mode:o}): they could put files or links in it. Make it private (`chmod 700 {}`) and run again", path.display(), path.display())]
    Writable {
        /// The refused directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The directory could not be created or looked at.
    #[error("cannot create or inspect {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Where the machine-wide state belongs for a process of user `uid` with this
/// `XDG_RUNTIME_DIR`: `/run/aftershock` for root, else under the runtime directory, else a
/// per-user directory in `temp`.
pub fn state_dir_for(uid: u32, xdg_runtime: Option<&Path>, temp: &Path) -> PathBuf {
    match (uid, xdg_runtime) {
        (0, _) => PathBuf::from("/run/aftershock"),
        (_, Some(run)) if !run.as_os_str().is_empty() => run.join("aftershock"),
        _ => temp.join(format!("aftershock-{uid}")),
    }
}

/// The machine-wide state directory (see the module's documentation), created and checked.
pub fn state_dir() -> Result<PathBuf, UnsafeDirError> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let dir = state_dir_for(euid(), xdg.as_deref(), &std::env::temp_dir());
    private_dir(&dir)?;
    Ok(dir)
}

/// Creates `path` (its parent must exist) with mode 0700 unless it exists, then refuses it
/// unless it is a real directory owned by this process's user that neither group nor others
/// may write. Never follows a symbolic link at `path`.
pub fn private_dir(path: &Path) -> Result<(), UnsafeDirError> {
    let io = |source| UnsafeDirError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        // mkdir never follows a link in the last component: an existing link lands here
        // too, and is refused below.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    check(path, &std::fs::symlink_metadata(path).map_err(io)?, euid())
}

/// The checks of [`private_dir`] on `path`'s own metadata (`lstat`), for a process of `me`.
fn check(path: &Path, meta: &std::fs::Metadata, me: u32) -> Result<(), UnsafeDirError> {
    let path = path.to_path_buf();
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&path).unwrap_or_default();
        return Err(UnsafeDirError::Link { path, target });
    }
    if !meta.is_dir() {
        return Err(UnsafeDirError::NotADirectory { path });
    }
    if meta.uid() != me {
        let owner = meta.uid();
        return Err(UnsafeDirError::Owner { path, owner, me });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(UnsafeDirError::Writable { path, mode });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "aftershock-state-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_new_directory_is_made_private() {
        let base = scratch("new");
        let dir = base.join("state");
        private_dir(&dir).unwrap();
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o700, "created with mode 0700");
        private_dir(&dir).expect("an existing private directory is accepted");
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_symlink_planted_first_is_refused_and_nothing_is_written_through_it() {
        let base = scratch("link");
        let elsewhere = base.join("attacker");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
        let dir = base.join("state");
        std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
        let refused = private_dir(&dir).expect_err("a link is refused");
        assert!(
            matches!(&refused, UnsafeDirError::Link { target, .. } if *target == elsewhere),
            "{refused:?}"
        );
        let text = refused.to_string();
        assert!(text.contains("is a symbolic link"), "{text}");
        assert!(text.contains("Remove the link"), "{text}");
        assert_eq!(
            std::fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "nothing was written through the link"
        );
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_group_or_world_writable_directory_is_refused() {
        let base = scratch("mode");
        let dir = base.join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = private_dir(&dir).expect_err("mode 777 is refused");
        assert!(
            matches!(refused, UnsafeDirError::Writable { mode: 0o777, .. }),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("chmod 700"), "{refused}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).expect("readable by others, writable only by its owner: accepted");
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_file_or_a_directory_of_another_user_is_refused() {
        let base = scratch("owner");
        let file = base.join("state");
        std::fs::write(&file, b"").unwrap();
        let refused = private_dir(&file).expect_err("a file is refused");
        assert!(
            matches!(refused, UnsafeDirError::NotADirectory { .. }),
            "{refused:?}"
        );
        let meta = std::fs::symlink_metadata(&base).unwrap();
        let other = meta.uid() + 1;
        let refused = check(&base, &meta, other).expect_err("another user's directory");
        assert!(
            matches!(refused, UnsafeDirError::Owner { owner, me, .. } if owner == meta.uid() && me == other),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("someone else made it first"));
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn root_uses_run_others_their_runtime_dir_or_a_per_user_temp_dir() {
        let tmp = Path::new("/tmp");
        let xdg = Some(Path::new("/run/user/1000"));
        assert_eq!(state_dir_for(0, xdg, tmp), PathBuf::from("/run/aftershock"));
        assert_eq!(
            state_dir_for(1000, xdg, tmp),
            PathBuf::from("/run/user/1000/aftershock")
        );
        assert_eq!(
            state_dir_for(1000, None, tmp),
            PathBuf::from("/tmp/aftershock-1000")
        );
    }
}
