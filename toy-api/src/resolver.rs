//! The CNAME path of Cloudflare's RRDNS on 2017-01-01, in miniature (`TOY_CLOCK`, optional):
//! each lookup goes to one of three upstream resolvers, chosen at random weighted by how fast
//! each has been (a smoothed round-trip time, `srtt`, updated from every lookup's measured
//! round trip). The round trip is measured with the clock `TOY_CLOCK` names:
//!
//! - `wall` (as it was): `SystemTime`, the wall clock, as Go's `time.Now()` was in 2016. When
//!   the wall clock steps back during a lookup, the measured round trip is negative, the
//!   smoothing carries it into the upstream's `srtt`, the weights sum below zero and the
//!   weighted pick panics (`gen_range` on an empty range, as Go's `rand.Int63n` on a
//!   non-positive argument). The panic is caught, as RRDNS's `recover` caught it, and the
//!   lookup fails (SERVFAIL). No lookup succeeds any more, so no new measurement repairs the
//!   `srtt`: the resolver stays broken until it restarts.
//! - `mono` or `monotonic` (remediated): `Instant`, the monotonic clock, which a wall-clock step does
//!   not move (Go's `time.Now()` carries such a reading since Go 1.9).
//!
//! A background task keeps one lookup in flight at all times, as other clients' traffic did:
//! a clock step lands inside a lookup, not between two.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use serde::Serialize;
use tracing::warn;

/// The clock a lookup's round trip is measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// `SystemTime`: moves when the wall clock is set (as it was).
    Wall,
    /// `Instant`: never goes back (remediated).
    Monotonic,
}

impl ClockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockMode::Wall => "wall",
            ClockMode::Monotonic => "monotonic",
        }
    }

    fn now(self) -> Stamp {
        match self {
            ClockMode::Wall => Stamp::Wall(SystemTime::now()),
            ClockMode::Monotonic => Stamp::Monotonic(Instant::now()),
        }
    }
}

/// A lookup's start, on the chosen clock.
enum Stamp {
    Wall(SystemTime),
    Monotonic(Instant),
}

impl Stamp {
    /// Nanoseconds since the stamp, signed like Go's `time.Now().Sub(start)`: negative when the
    /// wall clock stepped back past the start.
    fn elapsed_ns(&self) -> i64 {
        match self {
            Stamp::Wall(t) => match SystemTime::now().duration_since(*t) {
                Ok(d) => d.as_nanos() as i64,
                Err(back) => -(back.duration().as_nanos() as i64),
            },
            Stamp::Monotonic(t) => t.elapsed().as_nanos() as i64,
        }
    }
}

/// One upstream resolver: how long it takes to answer, and how fast it has been measured.
struct Upstream {
    answers_in: Duration,
    srtt_ns: AtomicI64,
}

/// A lookup's answer.
#[derive(Debug, Serialize)]
pub struct Answer {
    pub upstream: usize,
    pub rtt_ms: f64,
    pub clock: &'static str,
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
#[error("SERVFAIL: the weighted choice of an upstream panicked ({panic}); srtt of each upstream: {srtt_ms:?} ms")]
pub struct Servfail {
    pub panic: String,
    pub srtt_ms: Vec<f64>,
}

/// The resolver, shared by the handlers and the background traffic.
#[derive(Clone)]
pub struct Resolver {
    clock: ClockMode,
    upstreams: Arc<Vec<Upstream>>,
    failures: Arc<AtomicU64>,
}

impl Resolver {
    /// Three upstreams answering in 10, 20 and 30 ms, and the background traffic started.
    pub fn spawn(clock: ClockMode) -> Self {
        let upstreams = [10, 20, 30]
            .map(|ms| Upstream {
                answers_in: Duration::from_millis(ms),
                srtt_ns: AtomicI64::new(ms as i64 * 1_000_000),
            })
            .into();
        let resolver = Resolver {
            clock,
            upstreams: Arc::new(upstreams),
            failures: Arc::default(),
        };
        let traffic = resolver.clone();
        tokio::spawn(async move {
            loop {
                if traffic.resolve().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        resolver
    }

    pub fn clock(&self) -> ClockMode {
        self.clock
    }

    /// Lookups failed so far (the background traffic's included).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// One lookup: an upstream chosen by weight, asked, its round trip measured and smoothed in.
    pub async fn resolve(&self) -> Result<Answer, Servfail> {
        let srtt: Vec<i64> = self
            .upstreams
            .iter()
            .map(|u| u.srtt_ns.load(Ordering::Relaxed))
            .collect();
        let chosen = catch_unwind(AssertUnwindSafe(|| {
            weighted_pick(&srtt, &mut rand::thread_rng())
        }));
        let i = match chosen {
            Ok(i) => i,
            Err(panic) => {
                let panic = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                let srtt_ms = srtt.iter().map(|ns| *ns as f64 / 1e6).collect();
                self.failures.fetch_add(1, Ordering::Relaxed);
                let e = Servfail { panic, srtt_ms };
                warn!(error = %e, "lookup failed");
                return Err(e);
            }
        };
        let upstream = &self.upstreams[i];
        let start = self.clock.now();
        tokio::time::sleep(upstream.answers_in).await;
        let rtt = start.elapsed_ns();
        let old = upstream.srtt_ns.load(Ordering::Relaxed);
        upstream
            .srtt_ns
            .store(smoothed(old, rtt), Ordering::Relaxed);
        if rtt < 0 {
            warn!(upstream = i, rtt_ns = rtt, "a round trip measured negative");
        }
        Ok(Answer {
            upstream: i,
            rtt_ms: rtt as f64 / 1e6,
            clock: self.clock.as_str(),
        })
    }
}

/// The smoothed round trip after a new measurement: 7/8 of the old plus 1/8 of the new.
fn smoothed(srtt: i64, rtt: i64) -> i64 {
    srtt + (rtt - srtt) / 8
}

/// An upstream index, the faster ones likelier: upstream `i` weighs the sum of the others'
/// `srtt`. Panics when the weights sum to zero or less (a negative `srtt` does it), as Go's
/// `rand.Int63n` does on a non-positive argument.
fn weighted_pick(srtt: &[i64], rng: &mut impl Rng) -> usize {
    let sum: i64 = srtt.iter().sum();
    let weights: Vec<i64> = srtt.iter().map(|s| sum - s).collect();
    let total: i64 = weights.iter().sum();
    let mut r = rng.gen_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i;
        }
        r -= w.max(&0);
    }
    srtt.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_faster_upstream_is_likelier() {
        let mut rng = rand::thread_rng();
        let mut counts = [0; 3];
        for _ in 0..3000 {
            counts[weighted_pick(&[10, 20, 30], &mut rng)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[2], "{counts:?}");
    }

    #[test]
    fn a_wall_clock_step_back_poisons_the_choice() {
        // A 30 ms lookup during which the wall clock steps back 1 s measures -970 ms.
        let poisoned = smoothed(30_000_000, 30_000_000 - 1_000_000_000);
        assert!(poisoned < 0, "{poisoned}");
        let srtt = [10_000_000, 20_000_000, poisoned];
        let picked = catch_unwind(|| weighted_pick(&srtt, &mut rand::thread_rng()));
        assert!(picked.is_err(), "a negative srtt must make the pick panic");
    }

    #[test]
    fn monotonic_elapsed_is_never_negative() {
        assert!(ClockMode::Monotonic.now().elapsed_ns() >= 0);
        assert!(ClockMode::Wall.now().elapsed_ns() > -1_000_000_000);
    }
}
