//! A `sick-link` fault's toxics, in Toxiproxy's vocabulary: the file's `toxics = { … }` table
//! ([`Toxics`], every toxic optional, units in the names) and the plan's typed [`Toxic`]s
//! (each holding exactly what it needs). `resolve/sick_link.rs` turns one into the other.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which stream of a connection the toxics act on (Toxiproxy's `stream`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkStream {
    /// Client → service: what clients send arrives late, slow, or not at all.
    Upstream,
    /// Service → client (Toxiproxy's default): the answers do.
    #[default]
    Downstream,
    /// Both ways.
    Both,
}

impl LinkStream {
    /// The name a file and the proxy's `--stream` use.
    pub fn name(self) -> &'static str {
        match self {
            LinkStream::Upstream => "upstream",
            LinkStream::Downstream => "downstream",
            LinkStream::Both => "both",
        }
    }
}

/// The file's `toxics = { … }` of a `sick-link` fault: at least one toxic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toxics {
    /// `upstream`, `downstream` (default) or `both`.
    #[serde(default)]
    pub stream: Option<LinkStream>,
    /// Every chunk of data (and the end of the stream) is held this long (`"300ms"`) …
    #[serde(default, with = "humantime_serde")]
    pub latency: Option<Duration>,
    /// … plus or minus up to this much, at random (seeded); at most `latency`.
    #[serde(default, with = "humantime_serde")]
    pub jitter: Option<Duration>,
    /// At most this many kB (1000 bytes) per second (Toxiproxy's `rate`).
    #[serde(default)]
    pub bandwidth_kb_per_s: Option<u32>,
    /// Data cut into slices of about this many bytes (Toxiproxy's `slicer`) …
    #[serde(default)]
    pub slicer_average_bytes: Option<u32>,
    /// … ± up to this many bytes (less than the average) …
    #[serde(default)]
    pub slicer_variation_bytes: Option<u32>,
    /// … with this pause after each slice.
    #[serde(default, with = "humantime_serde")]
    pub slicer_delay: Option<Duration>,
    /// The connection is closed once this many bytes went through.
    #[serde(default)]
    pub limit_data_bytes: Option<u64>,
    /// No data goes through; the connection is closed after this long (`"0s"`: held open,
    /// silent, until the heal).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// The client's connection is reset (TCP RST) this long after it was accepted.
    #[serde(default, with = "humantime_serde")]
    pub reset_peer: Option<Duration>,
    /// The end of the stream (the service closing) reaches the client this much later.
    #[serde(default, with = "humantime_serde")]
    pub slow_close: Option<Duration>,
}

/// One toxic of a sick link, with exactly what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Toxic {
    /// Each chunk held `latency` ± up to `jitter` (jitter ≤ latency).
    Latency { latency: Duration, jitter: Duration },
    /// At most `kb_per_s` × 1000 bytes per second (more than 0).
    Bandwidth { kb_per_s: u32 },
    /// Slices of `average_bytes` ± `variation_bytes` (less than the average), `delay` after each.
    Slicer {
        average_bytes: u32,
        variation_bytes: u32,
        delay: Duration,
    },
    /// Closed after `bytes` went through.
    LimitData { bytes: u64 },
    /// Nothing goes through; closed after `after` (zero: never, until the heal).
    Timeout { after: Duration },
    /// An RST to the client `after` its connection was accepted.
    ResetPeer { after: Duration },
    /// The end of the stream `delay` late.
    SlowClose { delay: Duration },
}

impl Toxic {
    /// The toxic's arguments to the proxy (`sicklink --latency 300ms …`).
    pub fn args(&self) -> Vec<String> {
        let d = |d: &Duration| format!("{}us", d.as_micros());
        let pairs: Vec<(&str, String)> = match self {
            Toxic::Latency { latency, jitter } => {
                vec![("--latency", d(latency)), ("--jitter", d(jitter))]
            }
            Toxic::Bandwidth { kb_per_s } => {
                vec![("--bandwidth", (*kb_per_s as u64 * 1000).to_string())]
            }
            Toxic::Slicer {
                average_bytes,
                variation_bytes,
                delay,
            } => vec![
                ("--slice-average", average_bytes.to_string()),
                ("--slice-variation", variation_bytes.to_string()),
                ("--slice-delay", d(delay)),
            ],
            Toxic::LimitData { bytes } => vec![("--limit-data", bytes.to_string())],
            Toxic::Timeout { after } => vec![("--timeout", d(after))],
            Toxic::ResetPeer { after } => vec![("--reset-peer", d(after))],
            Toxic::SlowClose { delay } => vec![("--slow-close", d(delay))],
        };
        pairs
            .into_iter()
            .flat_map(|(k, v)| [k.to_string(), v])
            .collect()
    }

    /// Toxiproxy's name of the toxic.
    pub fn name(&self) -> &'static str {
        match self {
            Toxic::Latency { .. } => "latency",
            Toxic::Bandwidth { .. } => "bandwidth",
            Toxic::Slicer { .. } => "slicer",
            Toxic::LimitData { .. } => "limit_data",
            Toxic::Timeout { .. } => "timeout",
            Toxic::ResetPeer { .. } => "reset_peer",
            Toxic::SlowClose { .. } => "slow_close",
        }
    }
}
