//! A `sick-link` fault: its `toxics = { … }` table into typed toxics, each checked for what
//! it needs (a jitter within its latency, a slicer's variation below its average, a
//! bandwidth above zero), at least one of them.

use super::{at_name, Invalid};
use crate::scenario::file;
use crate::scenario::plan::FaultKind;
use crate::scenario::toxics::{Toxic, Toxics};
use std::time::Duration;

pub(super) fn kind(f: &file::Fault, port: u16) -> Result<FaultKind, Invalid> {
    let Some(t) = &f.toxics else {
        return Err(bad(f, NONE));
    };
    let toxics = toxics(f, t)?;
    if toxics.is_empty() {
        return Err(bad(f, NONE));
    }
    Ok(FaultKind::SickLink {
        down_for: f.down_for,
        port,
        stream: t.stream.unwrap_or_default(),
        toxics,
    })
}

/// The fault's problem, at its name's line.
fn bad(f: &file::Fault, problem: impl std::fmt::Display) -> Invalid {
    at_name(&f.name, format!("sick-link fault `{}`: {problem}", f.name))
}

const NONE: &str = "give it at least one toxic: `toxics = { latency = \"300ms\" }` (or jitter with a latency, bandwidth_kb_per_s, slicer_average_bytes, limit_data_bytes, timeout, reset_peer, slow_close)";

/// The typed toxics of the table, or what is wrong with it.
fn toxics(f: &file::Fault, t: &Toxics) -> Result<Vec<Toxic>, Invalid> {
    let mut out = vec![];
    match (t.latency, t.jitter) {
        (None, Some(_)) => {
            return Err(bad(f, "`jitter` spreads a `latency`: give the latency too"))
        }
        (Some(latency), jitter) if jitter.unwrap_or_default() > latency => {
            let jitter = jitter.unwrap_or_default();
            return Err(bad(f, format!("`jitter` ({jitter:?}) is more than the `latency` ({latency:?}): a chunk cannot arrive before it was sent")));
        }
        (Some(latency), jitter) => out.push(Toxic::Latency {
            latency,
            jitter: jitter.unwrap_or_default(),
        }),
        (None, None) => {}
    }
    match t.bandwidth_kb_per_s {
        Some(0) => {
            return Err(bad(
                f,
                "`bandwidth_kb_per_s = 0` lets nothing through: use `timeout` for that",
            ))
        }
        Some(kb_per_s) => out.push(Toxic::Bandwidth { kb_per_s }),
        None => {}
    }
    out.extend(slicer(f, t)?);
    if let Some(bytes) = t.limit_data_bytes {
        out.push(Toxic::LimitData { bytes });
    }
    if let Some(after) = t.timeout {
        out.push(Toxic::Timeout { after });
    }
    if let Some(after) = t.reset_peer {
        out.push(Toxic::ResetPeer { after });
    }
    if let Some(delay) = t.slow_close {
        out.push(Toxic::SlowClose { delay });
    }
    Ok(out)
}

fn slicer(f: &file::Fault, t: &Toxics) -> Result<Option<Toxic>, Invalid> {
    let Some(average_bytes) = t.slicer_average_bytes else {
        if t.slicer_variation_bytes.is_some() || t.slicer_delay.is_some() {
            return Err(bad(f, "`slicer_variation_bytes` and `slicer_delay` belong to a slicer: give `slicer_average_bytes` too"));
        }
        return Ok(None);
    };
    let variation_bytes = t.slicer_variation_bytes.unwrap_or(0);
    if average_bytes == 0 || variation_bytes >= average_bytes {
        return Err(bad(f, format!("a slicer needs `slicer_average_bytes` above 0 and `slicer_variation_bytes` below it (got {average_bytes} ± {variation_bytes})")));
    }
    Ok(Some(Toxic::Slicer {
        average_bytes,
        variation_bytes,
        delay: t.slicer_delay.unwrap_or(Duration::ZERO),
    }))
}
