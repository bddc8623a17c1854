//! lossyfs: a FUSE file system that loses what a power cut loses, on command.
//!
//! A passthrough over a backing directory that keeps every un-fsynced change in memory —
//! written data, and pending creates, renames and unlinks (see [`state`]) — so that a
//! command on its control socket ([`control`]) can drop them all (`lose`) or tear the last
//! writes at a sector granularity with a seed (`tear`), deterministically. The harness runs
//! it on the host over a directory of an ext4-on-loop disk and gives the mount to a container
//! (`disk = { …, lossy = true }`, see `harness/src/engine/lossy.rs`).
//!
//! Modules: [`state`] (the overlay and the undo journal, no FUSE), [`fs`] (the kernel's
//! requests mapped onto it), [`sick`] (latency, errors, a full disk), [`control`] (the line
//! protocol).

pub mod control;
pub mod fs;
pub mod sick;
pub mod state;

/// What can go wrong outside a FUSE request (those answer an errno).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("bad command `{0}` (status | sync | lose | tear SEED 512|4096 [WAIT_MS] | on | delay MS OPS | fail ERRNO PERCENT OPS SEED [forget] | full BYTES | heal | quit; OPS: read,write,fsync or all; ERRNO: EIO, ENOSPC or EROFS)")]
    BadCommand(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
