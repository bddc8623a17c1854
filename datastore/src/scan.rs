//! Walking a log's bytes: which records are valid, where a torn tail starts, and which bad
//! records sit before valid data (corruption).

use crate::{HEADER, MAX_RECORD};

/// What a walk over a log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Offsets of the valid records, in order.
    pub offsets: Vec<u64>,
    pub records: u64,
    /// Bytes up to the end of the last valid record that has no bad record before it.
    pub valid_bytes: u64,
    /// Offsets of bad records that have valid records after them.
    pub corrupt: Vec<u64>,
}

/// The length of a valid record at `at`, if there is one. An empty payload is never valid:
/// its header would be all zeros, which is what a hole in the file reads as (a write the disk
/// lost while a later one landed after it).
pub(crate) fn record_at(bytes: &[u8], at: usize) -> Option<usize> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let payload = bytes.get(at + HEADER..at + HEADER + len)?;
    (crc32c::crc32c(payload) == crc).then_some(HEADER + len)
}

/// Walks the records. At a bad record it looks for the next valid one byte by byte: finding
/// one means corruption (data after it was written over or lost); finding none means a torn
/// tail, which recovery may truncate.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut s = Scan::default();
    let mut at = 0usize;
    let mut clean = true;
    while at < bytes.len() {
        match record_at(bytes, at) {
            Some(n) => {
                s.offsets.push(at as u64);
                s.records += 1;
                at += n;
                if clean {
                    s.valid_bytes = at as u64;
                }
            }
            None => match (at + 1..bytes.len()).find(|i| record_at(bytes, *i).is_some()) {
                Some(next) => {
                    s.corrupt.push(at as u64);
                    clean = false;
                    at = next;
                }
                None => break,
            },
        }
    }
    s
}
