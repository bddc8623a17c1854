//! A Compose file's host paths (bind mounts, `secrets`, `configs`) checked on the real file
//! system just before they are mounted: the plan checked them by their text, this sees
//! through symbolic links. A path outside the project directory, a world-writable one, or
//! one that does not exist is refused, so a run never opens the host to a container.

use crate::scenario::values::Mount;
use std::os::unix::fs::PermissionsExt;

/// Why a host path of a Compose file is not mounted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafeMount {
    /// The path does not exist.
    #[error("host path {} does not exist (create it in the project directory)", .0.display())]
    Missing(std::path::PathBuf),
    /// Its real path (links followed) is outside the project directory.
    #[error("host path {} leads outside the project directory {} (through a symbolic link): only the project's files are mounted", .path.display(), .project.display())]
    Outside {
        /// The path as the file names it.
        path: std::path::PathBuf,
        /// The project directory (real path).
        project: std::path::PathBuf,
    },
    /// Every user of the host may write to it.
    #[error("host path {} is writable by every user of the host: a container could plant files for others (`chmod o-w` it)", .0.display())]
    WorldWritable(std::path::PathBuf),
}

/// The engine's bind of `mount` (`/host:/target[:ro]`), once its real path is checked.
pub fn bind(mount: &Mount) -> Result<String, UnsafeMount> {
    let missing = || UnsafeMount::Missing(mount.source.clone());
    let real = std::fs::canonicalize(&mount.source).map_err(|_| missing())?;
    let project = std::fs::canonicalize(&mount.project).map_err(|_| missing())?;
    if !real.starts_with(&project) {
        return Err(UnsafeMount::Outside {
            path: mount.source.clone(),
            project,
        });
    }
    let mode = std::fs::metadata(&real)
        .map_err(|_| missing())?
        .permissions()
        .mode();
    if mode & 0o002 != 0 {
        return Err(UnsafeMount::WorldWritable(mount.source.clone()));
    }
    let ro = if mount.read_only { ":ro" } else { "" };
    Ok(format!("{}:{}{ro}", real.display(), mount.target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(project: &std::path::Path, source: std::path::PathBuf) -> Mount {
        Mount {
            source,
            target: "/x".into(),
            read_only: true,
            project: project.to_path_buf(),
        }
    }

    #[test]
    fn a_path_inside_is_bound_and_a_link_out_a_world_writable_or_missing_one_is_not() {
        let dir = std::env::temp_dir().join(format!("aftershock-mounts-{}", std::process::id()));
        let project = dir.join("project");
        std::fs::create_dir_all(project.join("data")).unwrap();
        std::fs::set_permissions(project.join("data"), PermissionsExt::from_mode(0o755)).unwrap();
        let bound = bind(&mount(&project, project.join("data"))).unwrap();
        assert!(bound.ends_with("/project/data:/x:ro"), "{bound}");
        std::os::unix::fs::symlink(&dir, project.join("up")).unwrap();
        let out = bind(&mount(&project, project.join("up")));
        assert!(matches!(out, Err(UnsafeMount::Outside { .. })), "{out:?}");
        std::fs::create_dir(project.join("open")).unwrap();
        std::fs::set_permissions(project.join("open"), PermissionsExt::from_mode(0o777)).unwrap();
        let open = bind(&mount(&project, project.join("open")));
        assert!(
            matches!(open, Err(UnsafeMount::WorldWritable(_))),
            "{open:?}"
        );
        let missing = bind(&mount(&project, project.join("nope")));
        assert!(
            matches!(missing, Err(UnsafeMount::Missing(_))),
            "{missing:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
