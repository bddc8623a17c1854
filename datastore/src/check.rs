//! The integrity checker (`check`) and `repair`. The checker walks the record headers once,
//! then verifies the checksums of contiguous slices of records on every core, and reports
//! its throughput — the clerk postmortem's improved checker ran 32× faster by using all CPUs.

use crate::scan::{record_at, scan};
use crate::{io_err, Error, HEADER};
use std::path::Path;
use std::time::Instant;

/// What `check` found and how fast.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckReport {
    pub bytes: u64,
    pub records: u64,
    /// Records whose checksum did not match on the parallel pass (0 for a log that scans clean).
    pub bad_checksums: u64,
    /// Bad records before valid data (corruption), by offset.
    pub corrupt: Vec<u64>,
    /// Bytes after the last valid record (a torn tail).
    pub torn_tail_bytes: u64,
    pub threads: usize,
    pub seconds: f64,
    /// Checksummed bytes per second, in GB/s (10^9).
    pub gb_per_s: f64,
}

/// Checks the log at `path` with `threads` threads (0: every core).
pub fn check(path: &Path, threads: usize) -> Result<CheckReport, Error> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let started = Instant::now();
    // Pass 1: record boundaries. Pass 2: checksums, a contiguous slice of records per thread.
    let found = scan_headers(&bytes);
    let per = found.len().div_ceil(threads).max(1);
    let bad: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = found
            .chunks(per)
            .map(|chunk| {
                let bytes = &bytes;
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter(|o| record_at(bytes, **o as usize).is_none())
                        .count() as u64
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(u64::MAX))
            .sum()
    });
    let seconds = started.elapsed().as_secs_f64();
    let end = found.last().map_or(0, |o| {
        let o = *o as usize;
        o + HEADER + u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes")) as usize
    });
    let mut report = CheckReport {
        bytes: bytes.len() as u64,
        records: found.len() as u64 - bad,
        bad_checksums: bad,
        corrupt: vec![],
        torn_tail_bytes: (bytes.len() - end.min(bytes.len())) as u64,
        threads,
        seconds,
        gb_per_s: bytes.len() as f64 / seconds.max(1e-9) / 1e9,
    };
    if bad > 0 || report.torn_tail_bytes > 0 {
        // Something is wrong: the careful sequential walk tells a torn tail from corruption.
        let full = scan(&bytes);
        let last_valid_end = full.offsets.last().map_or(0, |o| {
            *o as usize + record_at(&bytes, *o as usize).expect("scan lists valid records")
        });
        report.records = full.records;
        report.corrupt = full.corrupt;
        report.torn_tail_bytes = (bytes.len() - last_valid_end) as u64;
    }
    Ok(report)
}

/// Offsets of every record whose header fits in the file, trusting the lengths (the parallel
/// pass checks the checksums). Stops at a length that runs past the end.
fn scan_headers(bytes: &[u8]) -> Vec<u64> {
    let mut out = vec![];
    let mut at = 0usize;
    while at + HEADER <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len > crate::MAX_RECORD || at + HEADER + len > bytes.len() {
            break;
        }
        out.push(at as u64);
        at += HEADER + len;
    }
    out
}

/// What `repair` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    pub kept: u64,
    pub dropped_bad: u64,
    pub dropped_bytes: u64,
}

/// Rewrites the log with only its valid records (through a temporary file, fsynced and
/// renamed, the directory fsynced too).
pub fn repair(path: &Path) -> Result<RepairReport, Error> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let found = scan(&bytes);
    let mut out = Vec::with_capacity(bytes.len());
    for o in &found.offsets {
        let o = *o as usize;
        let n = record_at(&bytes, o).expect("scan only lists valid records");
        out.extend_from_slice(&bytes[o..o + n]);
    }
    let tmp = path.with_extension("repair");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&out).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(RepairReport {
        kept: found.records,
        dropped_bad: found.corrupt.len() as u64
            + u64::from(found.valid_bytes < bytes.len() as u64 && found.corrupt.is_empty()),
        dropped_bytes: (bytes.len() - out.len()) as u64,
    })
}
