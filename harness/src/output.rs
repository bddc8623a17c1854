//! Where a run writes its files: the output root. Reports (`<root>/<run id>/`), disks
//! (`<root>/<run id>/disks/`), the `docker save` cache (`<root>/saved/`), the temporary files of
//! image builds (`<root>/tmp/`) and the release binaries built for images and the host
//! (`<root>/build/`) all live under it — never in the aftershock source tree, unless that is
//! where the caller's own target directory is.
//!
//! The root is, in order: the one given ([`crate::RunOptions::output_dir`]), `$AFTERSHOCK_OUTPUT`,
//! `$CARGO_TARGET_DIR/aftershock`, `$CARGO_MANIFEST_DIR/target/aftershock` (of the calling
//! process at run time: cargo sets it for `cargo test` and `cargo run`), else
//! `./target/aftershock`. A relative root is made absolute against the working directory
//! (the engine takes only absolute paths for bind mounts).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment the default root is resolved from (empty values count as unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputEnv {
    /// `$AFTERSHOCK_OUTPUT`: the root itself.
    pub aftershock_output: Option<PathBuf>,
    /// `$CARGO_TARGET_DIR`: the root is its `aftershock/`.
    pub cargo_target_dir: Option<PathBuf>,
    /// `$CARGO_MANIFEST_DIR` of the calling process: the root is its `target/aftershock/`.
    pub cargo_manifest_dir: Option<PathBuf>,
}

impl OutputEnv {
    /// The values of this process's environment, read now.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var_os(name).and_then(non_empty);
        OutputEnv {
            aftershock_output: var("AFTERSHOCK_OUTPUT"),
            cargo_target_dir: var("CARGO_TARGET_DIR"),
            cargo_manifest_dir: var("CARGO_MANIFEST_DIR"),
        }
    }
}

fn non_empty(value: OsString) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

/// The output root: `explicit` if given, else from `env` (see the module's documentation).
pub fn resolve(explicit: Option<&Path>, env: &OutputEnv) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(dir) = &env.aftershock_output {
        return dir.clone();
    }
    if let Some(target) = &env.cargo_target_dir {
        return target.join("aftershock");
    }
    let base = env
        .cargo_manifest_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("target").join("aftershock")
}

/// The output root of this process: `explicit` if given, else from its environment; absolute.
pub fn root(explicit: Option<&Path>) -> PathBuf {
    absolute(resolve(explicit, &OutputEnv::from_process()))
}

/// The output root when none is given, from this process's environment; absolute.
pub fn default_root() -> PathBuf {
    root(None)
}

/// `path` made absolute against the working directory (no file system access; unchanged if
/// the working directory is gone).
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(output: Option<&str>, target: Option<&str>, manifest: Option<&str>) -> OutputEnv {
        OutputEnv {
            aftershock_output: output.map(PathBuf::from),
            cargo_target_dir: target.map(PathBuf::from),
            cargo_manifest_dir: manifest.map(PathBuf::from),
        }
    }

    #[test]
    fn an_explicit_dir_wins_over_every_variable() {
        let all = env(Some("/o"), Some("/t"), Some("/m"));
        assert_eq!(
            resolve(Some(Path::new("/x")), &all),
            PathBuf::from("/x"),
            "RunOptions.output_dir first"
        );
    }

    #[test]
    fn a_relative_root_is_made_absolute_against_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let relative = resolve(None, &env(None, None, None));
        assert_eq!(relative, PathBuf::from("./target/aftershock"));
        let root = absolute(relative);
        assert!(root.is_absolute(), "{}", root.display());
        assert!(root.starts_with(&cwd), "{}", root.display());
        assert_eq!(absolute(PathBuf::from("/o")), PathBuf::from("/o"));
    }

    #[test]
    fn the_variables_in_order() {
        assert_eq!(
            resolve(None, &env(Some("/o"), Some("/t"), Some("/m"))),
            PathBuf::from("/o")
        );
        assert_eq!(
            resolve(None, &env(None, Some("/t"), Some("/m"))),
            PathBuf::from("/t/aftershock")
        );
        assert_eq!(
            resolve(None, &env(None, None, Some("/m"))),
            PathBuf::from("/m/target/aftershock")
        );
        assert_eq!(
            resolve(None, &env(None, None, None)),
            PathBuf::from("./target/aftershock")
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        assert_eq!(non_empty(OsString::new()), None);
        assert_eq!(non_empty("/t".into()), Some(PathBuf::from("/t")));
    }
}
