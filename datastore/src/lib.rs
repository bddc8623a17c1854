//! An append-only log of records, each `[len: u32 LE][crc32c(payload): u32 LE][payload]`.
//!
//! This is the datastore the power-cut incident (clerk, July 2017) breaks. Two modes:
//! [`Durability::Durable`] acknowledges an append only after `fdatasync`; [`Durability::Buffered`]
//! acknowledges at once and leaves the data in the page cache — as the datastore did before
//! the incident. After a crash, [`Log::open`] recovers: a torn tail (a partial or bad record
//! with nothing valid after it) is truncated and its bytes reported; a bad record followed by
//! valid ones is *corruption* and is reported, never silently dropped. [`check`] verifies a log
//! with every core; [`repair`] rewrites it without its bad records.

mod check;
mod scan;
pub mod serve;

pub use check::{check, repair, CheckReport, RepairReport};
pub use scan::{scan, Scan};

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bytes before each payload: length and checksum.
pub const HEADER: usize = 8;
/// The largest payload accepted (a length above it marks a bad record).
pub const MAX_RECORD: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: corruption: {count} bad record(s) before valid data, first at byte {first}; run `datastore repair` after saving a copy")]
    Corrupt {
        path: PathBuf,
        count: usize,
        first: u64,
    },
    #[error("record of {0} bytes is larger than the limit of {MAX_RECORD}")]
    TooLarge(usize),
    /// A record must hold something: a zero header is what a hole in the file reads as.
    #[error("an empty record cannot be appended")]
    Empty,
    /// fdatasync failed: whether the record (and what was written before it) reached the disk
    /// is unknown — the kernel may have dropped the pages it could not write.
    #[error("{path}: fsync failed: {source}")]
    Fsync { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After `fdatasync`: an acknowledged record survives a power cut.
    Durable,
    /// At once, before the data reaches the disk (the behaviour before the incident).
    Buffered,
    /// After `fdatasync`, retried until it succeeds when it fails — what PostgreSQL did
    /// before 2018 ("fsyncgate"): Linux may have dropped the pages the failed fsync could not
    /// write, so the retry succeeds with nothing to write and the record is acknowledged
    /// without being on the disk.
    DurableRetry,
    /// After `fdatasync`; when it fails the server exits (status 70) without answering, and
    /// the next start recovers what is on the disk — PostgreSQL's remedy (a PANIC, 2018).
    DurableExit,
}

/// What recovery found when the log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recovery {
    /// Valid records kept.
    pub records: u64,
    /// Bytes of a torn tail that were truncated.
    pub truncated_bytes: u64,
}

/// An open log, positioned at its end.
pub struct Log {
    path: PathBuf,
    file: File,
    durability: Durability,
    len: u64,
    records: u64,
}

/// Encodes one record.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

impl Log {
    /// Opens (creating if needed) and recovers the log: truncates a torn tail, refuses a
    /// corrupt log (bad records before valid ones) with [`Error::Corrupt`].
    pub fn open(path: &Path, durability: Durability) -> Result<(Log, Recovery), Error> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        let found = scan(&bytes);
        if let Some(first) = found.corrupt.first() {
            return Err(Error::Corrupt {
                path: path.into(),
                count: found.corrupt.len(),
                first: *first,
            });
        }
        let truncated_bytes = bytes.len() as u64 - found.valid_bytes;
        if truncated_bytes > 0 {
            file.set_len(found.valid_bytes).map_err(io_err(path))?;
            file.sync_all().map_err(io_err(path))?;
        }
        let recovery = Recovery {
            records: found.records,
            truncated_bytes,
        };
        let log = Log {
            path: path.into(),
            file,
            durability,
            len: found.valid_bytes,
            records: found.records,
        };
        Ok((log, recovery))
    }

    /// Appends one record; returns its index. Returns when the record is as durable as the
    /// log's mode promises.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, Error> {
        if payload.len() > MAX_RECORD {
            return Err(Error::TooLarge(payload.len()));
        }
        if payload.is_empty() {
            return Err(Error::Empty);
        }
        let record = encode(payload);
        self.file.write_all(&record).map_err(io_err(&self.path))?;
        if self.durability != Durability::Buffered {
            self.sync()?;
        }
        self.len += record.len() as u64;
        self.records += 1;
        Ok(self.records - 1)
    }

    /// `fdatasync`; in [`Durability::DurableRetry`] a failure is retried (up to 100 times,
    /// 10 ms apart) and forgotten once a retry succeeds.
    fn sync(&mut self) -> Result<(), Error> {
        let mut tries = 0;
        loop {
            match self.file.sync_data() {
                Ok(()) => return Ok(()),
                Err(e) if self.durability == Durability::DurableRetry && tries < 100 => {
                    eprintln!("datastore: fsync failed ({e}); retrying");
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(source) => {
                    return Err(Error::Fsync {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

/// Every valid record's payload, in order (for read-backs).
pub fn read_all(path: &Path) -> Result<Vec<Vec<u8>>, Error> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let found = scan(&bytes);
    Ok(found
        .offsets
        .iter()
        .map(|o| {
            let o = *o as usize;
            let len = u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes")) as usize;
            bytes[o + HEADER..o + HEADER + len].to_vec()
        })
        .collect())
}

#[cfg(test)]
mod tests;
