//! leak-agent: the "monitoring application" of the clerk 2017-03 postmortem, which leaked
//! memory on the central cache server until the kernel killed something.
//!
//! It allocates memory at a fixed rate and *touches* every page it allocates (an untouched
//! page is not charged to the cgroup, so it would never cause an OOM), and keeps all of it.
//! It first sets its own `oom_score_adj` (an unprivileged process may lower it back to 0 after
//! inheriting a higher value from the container), so the kernel's choice of victim is
//! decided by the container's settings, not by chance.
//!
//! Usage: `leak-agent [--rate-mib N] [--chunk-mib N] [--max-mib N] [--oom-score-adj N]`
//! (defaults 32 MiB/s in 4 MiB chunks, at most 4096 MiB, oom_score_adj untouched).
//! Progress goes to stderr; it exits 0 after `--max-mib` (a bound, so it never runs away).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;
const PAGE: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
struct Options {
    rate_mib: u32,
    chunk_mib: u32,
    max_mib: u32,
    oom_score_adj: Option<i32>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        rate_mib: 32,
        chunk_mib: 4,
        max_mib: 4096,
        oom_score_adj: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .as_str();
        let number = |v: &str| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} `{v}` must be a whole number above 0"))
        };
        match flag.as_str() {
            "--rate-mib" => o.rate_mib = number(value)?,
            "--chunk-mib" => o.chunk_mib = number(value)?,
            "--max-mib" => o.max_mib = number(value)?,
            "--oom-score-adj" => {
                o.oom_score_adj = Some(
                    value
                        .parse::<i32>()
                        .ok()
                        .filter(|n| (-1000..=1000).contains(n))
                        .ok_or_else(|| format!("--oom-score-adj `{value}` must be -1000..=1000"))?,
                )
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(o)
}

/// Allocates `mib` MiB and writes one byte in every page, so the kernel must back it.
fn touched_chunk(mib: usize) -> Vec<u8> {
    let mut chunk = vec![0u8; mib * MIB];
    for i in (0..chunk.len()).step_by(PAGE) {
        chunk[i] = 1;
    }
    chunk
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("leak-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(adj) = o.oom_score_adj {
        if let Err(e) = std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
            eprintln!("leak-agent: cannot set oom_score_adj to {adj}: {e}");
            return ExitCode::from(1);
        }
    }
    let adj = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    eprintln!(
        "leak-agent: pid {} oom_score_adj {} leaking {} MiB/s in {} MiB chunks",
        std::process::id(),
        adj.trim(),
        o.rate_mib,
        o.chunk_mib
    );
    let tick = Duration::from_secs_f64(f64::from(o.chunk_mib) / f64::from(o.rate_mib));
    let started = Instant::now();
    let mut kept: Vec<Vec<u8>> = vec![];
    let mut leaked = 0u32;
    while leaked < o.max_mib {
        kept.push(touched_chunk(o.chunk_mib as usize));
        leaked += o.chunk_mib;
        eprintln!(
            "leak-agent: {leaked} MiB after {:.2}s",
            started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
        let next = tick * (leaked / o.chunk_mib);
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    eprintln!("leak-agent: reached --max-mib {}, exiting", o.max_mib);
    drop(kept);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn defaults_and_flags() {
        assert_eq!(parse(&[]).unwrap().rate_mib, 32);
        let o = parse(&args(
            "--rate-mib 16 --chunk-mib 2 --max-mib 64 --oom-score-adj 0",
        ))
        .unwrap();
        assert_eq!(
            o,
            Options {
                rate_mib: 16,
                chunk_mib: 2,
                max_mib: 64,
                oom_score_adj: Some(0)
            }
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        assert!(parse(&args("--rate-mib 0"))
            .unwrap_err()
            .contains("--rate-mib"));
        assert!(parse(&args("--rate-mib"))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&args("--oom-score-adj 5000"))
            .unwrap_err()
            .contains("-1000"));
        assert!(parse(&args("--nope 1")).unwrap_err().contains("unknown"));
    }

    #[test]
    fn chunks_are_touched() {
        let c = touched_chunk(1);
        assert_eq!(c.len(), MIB);
        assert_eq!(c.iter().filter(|b| **b == 1).count(), MIB / PAGE);
    }
}
