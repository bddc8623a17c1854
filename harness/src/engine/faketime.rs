//! A container's own wall clock, without `--privileged` and without touching the host's:
//! libfaketime (Debian's package, in the project's base image) preloaded into every process of
//! the replicas a clock fault targets (`LD_PRELOAD`, set at bring-up), reading its offset from
//! a file in a directory of the run that the container binds read-only and the fault rewrites
//! (`FAKETIME_TIMESTAMP_FILE`, re-read on every call: `FAKETIME_NO_CACHE`). The monotonic
//! clocks are left alone (`FAKETIME_DONT_FAKE_MONOTONIC`): a wall clock that jumps is the
//! fault, not time itself running backwards. Host files only; nothing here talks to Docker.
//! Debian's libfaketime (0.9.10) names a semaphore of its first process in `FAKETIME_SHARED`:
//! a process exec'd under another user with the same PID (an entry script's `exec setpriv`,
//! `gosu`) cannot open it and exits, so such a script unsets the variable first (the project's
//! `pg-entry.sh` does); a container that exits so fails its bring-up, never a silent success.

use super::ContainerSpec;
use std::path::{Path, PathBuf};

/// The library, through the dynamic loader's `$LIB` (`lib/x86_64-linux-gnu` on Debian).
pub const PRELOAD: &str = "/usr/$LIB/faketime/libfaketime.so.1";
/// Where a replica's offset directory is bound in its container.
const DIR_IN: &str = "/run/aftershock-clock";
/// The offset file's name.
const FILE: &str = "offset";

/// What went wrong with a replica's offset file.
#[derive(Debug, thiserror::Error)]
#[error("the clock offset file {path}: {source}")]
pub struct FaketimeError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The offset directory of `replica` under the run's directory.
fn dir(run_dir: &Path, replica: &str) -> PathBuf {
    run_dir.join("clock").join(replica)
}

/// Readies `spec`'s container for clock faults: its offset file at `+0`, bound read-only,
/// and the environment that preloads libfaketime.
pub fn prepare(run_dir: &Path, spec: &mut ContainerSpec) -> Result<(), FaketimeError> {
    let dir = dir(run_dir, &spec.replica);
    std::fs::create_dir_all(&dir).map_err(|source| FaketimeError {
        path: dir.clone(),
        source,
    })?;
    set(run_dir, &spec.replica, 0)?;
    spec.binds.push(format!("{}:{DIR_IN}:ro", dir.display()));
    spec.env.extend([
        format!("LD_PRELOAD={PRELOAD}"),
        format!("FAKETIME_TIMESTAMP_FILE={DIR_IN}/{FILE}"),
        "FAKETIME_NO_CACHE=1".into(),
        "FAKETIME_DONT_FAKE_MONOTONIC=1".into(),
    ]);
    Ok(())
}

/// libfaketime's relative offset: `+30.000`, `-3600.250` (seconds).
pub fn offset_text(offset_ms: i64) -> String {
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let ms = offset_ms.unsigned_abs();
    format!("{sign}{}.{:03}", ms / 1000, ms % 1000)
}

/// Moves `replica`'s clock to `offset_ms` from the host's: the file written beside and
/// renamed over the old one, so a reader sees the old offset or the new, never half of one.
pub fn set(run_dir: &Path, replica: &str, offset_ms: i64) -> Result<(), FaketimeError> {
    let path = dir(run_dir, replica).join(FILE);
    let partial = path.with_extension("partial");
    let written = std::fs::write(&partial, format!("{}\n", offset_text(offset_ms)))
        .and_then(|()| std::fs::rename(&partial, &path));
    written.map_err(|source| FaketimeError { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_written_as_libfaketime_reads_them() {
        assert_eq!(offset_text(30_000), "+30.000");
        assert_eq!(offset_text(-3_600_250), "-3600.250");
        assert_eq!(offset_text(0), "+0.000");
    }
}
