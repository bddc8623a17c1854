//! Clock: the selected replicas' wall clock moved by an offset (forward or back) through the
//! libfaketime preloaded at bring-up (`engine::faketime`), the host's clock untouched; heal:
//! the offset back to 0. Verified inside the container: `date` through the preload between two
//! unfaked `date`s (the kernel's clock, the host's), so the measured offset carries its own
//! error bound, which with the distance to the requested offset must stay within
//! [`CLOCK_BUDGET_MS`]; the service's own process must have libfaketime mapped and not be a Go
//! binary (which reads the clock through the vDSO, past libc): otherwise the fault cannot have
//! taken effect on it, and the verification fails saying why. The host's clock is shown
//! untouched by its realtime − monotonic difference, the same at every look as when applied.
//! What the fault does not move is measured too: the container's monotonic clock (Perl's
//! `clock_gettime(CLOCK_MONOTONIC)` through the preload between two unfaked ones) must stay
//! within the budget of the kernel's (libfaketime fakes it too unless told not to), so a
//! service that measures durations with it is shown unaffected, not assumed so.

use super::common::applied;
use super::{Action, Cx, Look, Stage, Step, Unseen};
use crate::engine::faketime;
use crate::scenario::plan::CLOCK_BUDGET_MS;
use crate::timeline::{now, EventKind};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Moves the targets' wall clock.
pub(crate) struct Clock {
    pub offset_ms: i64,
    /// Strobing: the offset for this long, then 0 for as long, until the heal.
    pub strobe: Option<Duration>,
    /// The host's realtime − monotonic (ms) when the fault was applied.
    pub host_base: Mutex<Option<f64>>,
    /// The task that flips a strobing clock.
    strober: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Clock {
    /// A clock fault moving the wall clock by `offset_ms` (strobing with `strobe` as period).
    pub fn new(offset_ms: i64, strobe: Option<Duration>) -> Self {
        Clock {
            offset_ms,
            strobe,
            host_base: Default::default(),
            strober: Default::default(),
        }
    }

    /// The action of a clock fault (`kind`; any other kind: a clock that does not move).
    pub fn of(kind: &crate::scenario::plan::FaultKind) -> Self {
        match kind {
            crate::scenario::plan::FaultKind::Clock {
                offset_ms, strobe, ..
            } => Self::new(*offset_ms, *strobe),
            _ => Self::new(0, None),
        }
    }

    /// Stops the strobing task, if any.
    fn stop_strobing(&self) {
        if let Some(task) = self
            .strober
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        self.stop_strobing();
    }
}

impl Action for Clock {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            let since = now();
            *self.host_base.lock().unwrap_or_else(|e| e.into_inner()) = Some(host_drift());
            self.set_all(cx, self.offset_ms)?;
            let mut how = format!(
                "wall clock moved {} s (libfaketime's offset file)",
                faketime::offset_text(self.offset_ms)
            );
            if let Some(period) = self.strobe {
                let (dir, targets) = (Self::run_dir(cx), cx.targets.to_vec());
                let task = tokio::spawn(strobe(dir, targets, self.offset_ms, period));
                *self.strober.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
                let _ = write!(how, ", strobing: back to 0 and again every {period:?}");
            }
            applied(cx, since, &how);
            Ok(())
        })
    }

    fn undo<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            self.stop_strobing();
            self.set_all(cx, 0)
        })
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(async move {
            let preloaded = self.preloaded(cx, r).await?;
            if let (Stage::Applied, Some(period)) = (stage, self.strobe) {
                return self.verify_strobe(cx, r, period, &preloaded).await;
            }
            let want = if stage == Stage::Applied {
                self.offset_ms
            } else {
                0
            };
            let seen = self.look(cx, r).await?;
            cx.cluster.timeline.record(EventKind::Measurement {
                name: format!("{}/offset-{}-{r}", cx.fault.name, stage.name()),
                value: seen.offset,
                unit: "ms".into(),
                what: format!(
                    "{r}'s wall clock minus the kernel's, read inside ({} the fault)",
                    stage.name()
                ),
            });
            let words = format!("{}; {preloaded}", seen.words(want));
            match (seen.near(want), seen.consistent(want), seen.others_ok()) {
                (true, _, true) => Ok(words),
                // Within the budget or not, depending on where in its bound the read fell.
                (false, true, true) => Err(Unseen::Imprecise(format!(
                    "{words}: the read's ± {:.1} ms is too wide to tell (the host was busy)",
                    seen.bound
                ))),
                _ => Err(Unseen::Shows(words)),
            }
        })
    }
}

/// Flips the targets' offset between `offset_ms` and 0 every `period`, until aborted.
async fn strobe(dir: PathBuf, targets: Vec<String>, offset_ms: i64, period: Duration) {
    let mut at_offset = true;
    loop {
        tokio::time::sleep(period).await;
        at_offset = !at_offset;
        let to = if at_offset { offset_ms } else { 0 };
        for r in &targets {
            if let Err(e) = faketime::set(&dir, r, to) {
                // The verification sees a clock that no longer strobes.
                tracing::warn!(error = %e, "the strobing clock stopped");
                return;
            }
        }
    }
}

/// One look inside a container: its clocks against the kernel's and the host's own.
struct Seen {
    offset: f64,
    bound: f64,
    /// The monotonic clock's offset and bound, where Perl could read it.
    monotonic: Option<(f64, f64)>,
    /// How far the host's wall clock moved since the fault was applied (ms).
    host: f64,
}

impl Seen {
    /// Whether the wall clock is within the budget of `want` (ms from the kernel's).
    fn near(&self, want: i64) -> bool {
        (self.offset - want as f64).abs() + self.bound <= CLOCK_BUDGET_MS
    }

    /// Whether the read, with its error bound, cannot be told from `want` (ms): how a strobing
    /// clock's reads are sorted (its two states are far apart; a slow read is still sorted).
    fn consistent(&self, want: i64) -> bool {
        (self.offset - want as f64).abs() <= CLOCK_BUDGET_MS + self.bound
    }

    /// Whether what the fault must not move did not: the monotonic clock, the host's clock.
    fn others_ok(&self) -> bool {
        let mono = self
            .monotonic
            .is_none_or(|(m, b)| m.abs() <= CLOCK_BUDGET_MS + b);
        mono && self.host.abs() < 5.0
    }

    fn words(&self, want: i64) -> String {
        let mono = match self.monotonic {
            Some((m, b)) if m.abs() <= CLOCK_BUDGET_MS + b => {
                format!("monotonic clock {m:+.1} ms ± {b:.1} from the kernel's (not moved)")
            }
            Some((m, b)) => format!("monotonic clock {m:+.1} ms ± {b:.1} from the kernel's: MOVED"),
            None => "monotonic clock not measured (no perl inside)".into(),
        };
        format!(
            "wall clock offset {:+.1} ms ± {:.1} (requested {want:+} ms, budget {CLOCK_BUDGET_MS} ms); {mono}; host's clock moved {:+.2} ms",
            self.offset, self.bound, self.host
        )
    }
}

impl Clock {
    fn run_dir(cx: &Cx<'_>) -> PathBuf {
        cx.cluster.output.join(&cx.cluster.engine.run_id)
    }

    /// Reads `r`'s clocks and the host's drift since the fault was applied.
    async fn look(&self, cx: &Cx<'_>, r: &str) -> Result<Seen, Unseen> {
        let Read {
            wall: (offset, bound),
            monotonic,
        } = read_clock(cx, r).await?;
        let base = *self.host_base.lock().unwrap_or_else(|e| e.into_inner());
        let drift = host_drift();
        Ok(Seen {
            offset,
            bound,
            monotonic,
            host: drift - base.unwrap_or(drift),
        })
    }

    /// A strobing clock: reads over two and a half periods (at least four) must each be at
    /// the offset or at 0, both seen, with the monotonic and the host's clocks unmoved.
    async fn verify_strobe(
        &self,
        cx: &Cx<'_>,
        r: &str,
        period: Duration,
        preloaded: &str,
    ) -> Result<String, Unseen> {
        let started = std::time::Instant::now();
        let (mut at_offset, mut at_zero, mut odd) = (0, 0, vec![]);
        while started.elapsed() < period * 5 / 2 || at_offset + at_zero + odd.len() < 4 {
            let seen = self.look(cx, r).await?;
            match (
                seen.consistent(self.offset_ms),
                seen.consistent(0),
                seen.others_ok(),
            ) {
                (true, _, true) => at_offset += 1,
                (_, true, true) => at_zero += 1,
                _ => odd.push(seen.words(self.offset_ms)),
            }
            tokio::time::sleep(period / 3).await;
        }
        cx.cluster.timeline.record(EventKind::Measurement {
            name: format!("{}/strobe-at-offset-{r}", cx.fault.name),
            value: at_offset as f64,
            unit: "reads".into(),
            what: format!(
                "reads of {r}'s wall clock at the offset (of {}: {at_zero} at 0, {} neither)",
                at_offset + at_zero + odd.len(),
                odd.len()
            ),
        });
        let words = format!(
            "strobing: {at_offset} reads at {:+} ms, {at_zero} at 0, {} neither{} (the monotonic clock and the host's never moved); {preloaded}",
            self.offset_ms,
            odd.len(),
            odd.first()
                .map(|w| format!(" (first: {w})"))
                .unwrap_or_default()
        );
        if at_offset > 0 && at_zero > 0 && odd.is_empty() {
            Ok(words)
        } else {
            Err(Unseen::Shows(words))
        }
    }

    fn set_all(&self, cx: &Cx<'_>, offset_ms: i64) -> crate::error::Result<()> {
        for r in cx.targets {
            faketime::set(&Self::run_dir(cx), r, offset_ms)
                .map_err(|e| cx.failed(e.to_string()))?;
        }
        Ok(())
    }

    /// Whether the service's own process has libfaketime mapped and is not a Go binary.
    async fn preloaded(&self, cx: &Cx<'_>, r: &str) -> Result<String, Unseen> {
        let status = cx
            .cluster
            .engine
            .status(r)
            .await
            .map_err(|e| e.to_string())?;
        let pid = status.pid;
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map_err(|e| format!("/proc/{pid}/maps: {e}"))?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if !maps.contains("libfaketime") {
            return Err(Unseen::Unreachable(format!("{r}'s process {pid} ({exe}) has no libfaketime mapped (its image lacks the library — built on another base than the project's —, a static binary, or LD_PRELOAD cleared): its clock did not move")));
        }
        let binary = std::fs::read(format!("/proc/{pid}/exe")).unwrap_or_default();
        if binary.windows(14).any(|w| w == b"\xff Go buildinf:") {
            return Err(Unseen::Unreachable(format!("{r}'s process {pid} ({exe}) is a Go binary: it reads the clock through the vDSO, past libfaketime, so its clock did not move")));
        }
        Ok(format!("libfaketime mapped in {r}'s process {pid} ({exe})"))
    }
}

/// What a look inside a container read: each clock's faked minus unfaked reading (ms) with its
/// error bound (half the time between the two unfaked readings around the faked one).
struct Read {
    wall: (f64, f64),
    /// `None` where the image has no Perl to read it with.
    monotonic: Option<(f64, f64)>,
}

/// Reads the wall clock with `date` and the monotonic clock with Perl's `Time::HiRes`, each
/// through the preload between two unfaked readings. The wall clock, which is judged to
/// [`CLOCK_BUDGET_MS`], is read [`READS`] times and the tightest read kept (a process
/// descheduled between two readings on a busy host widens one read's bound, rarely all); the
/// monotonic clock, which must only not have moved (its bound widens what passes), once.
async fn read_clock(cx: &Cx<'_>, r: &str) -> Result<Read, Unseen> {
    let script = format!(
        "for k in {reads}; do env -u LD_PRELOAD date +w$k' %s.%N'; date +w$k' %s.%N'; env -u LD_PRELOAD date +w$k' %s.%N'; done; \
        m='use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC); printf qq(m1 %.9f\\n), clock_gettime(CLOCK_MONOTONIC)'; \
        env -u LD_PRELOAD perl -e \"$m\" && perl -e \"$m\" && env -u LD_PRELOAD perl -e \"$m\"; true",
        reads = (1..=READS).map(|k| k.to_string()).collect::<Vec<_>>().join(" ")
    );
    let (code, out) = cx
        .cluster
        .engine
        .exec_to_end(r, &["sh", "-c", &script])
        .await
        .map_err(|e| e.to_string())?;
    let Some(wall) = tightest(&out, 'w') else {
        return Err(format!("`date` inside {r} (exit {code}): {out:?}").into());
    };
    Ok(Read {
        wall,
        monotonic: tightest(&out, 'm'),
    })
}

/// How many times a look reads each clock.
const READS: usize = 3;

/// Of the reads tagged `clock` (lines `w1 <seconds>`, `m2 <seconds>`, three to a read), the
/// one with the smallest bound, as [`faked_minus_unfaked`] gives it.
fn tightest(out: &str, clock: char) -> Option<(f64, f64)> {
    (1..=READS)
        .filter_map(|k| {
            let tag = format!("{clock}{k} ");
            let times: Vec<f64> = out
                .lines()
                .filter_map(|l| l.trim().strip_prefix(tag.as_str())?.trim().parse().ok())
                .collect();
            faked_minus_unfaked(&times)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// From three readings (unfaked, faked, unfaked; seconds): the faked minus the middle of the
/// unfaked ones, and half their distance (ms).
fn faked_minus_unfaked(times: &[f64]) -> Option<(f64, f64)> {
    let [before, faked, after] = times[..] else {
        return None;
    };
    let middle = (before + after) / 2.0;
    Some(((faked - middle) * 1e3, (after - before) / 2.0 * 1e3))
}

/// The host's realtime minus its monotonic clock, in ms: it changes only when someone sets or
/// slews the host's wall clock.
fn host_drift() -> f64 {
    let read = |clock| {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given.
        unsafe { libc::clock_gettime(clock, &mut t) };
        t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
    };
    // The realtime reading between two monotonic ones, the tightest pair of a few: a thread
    // descheduled between two readings (a loaded machine) would otherwise show the host's
    // clock moved by tens of ms.
    (0..8)
        .map(|_| {
            let before = read(libc::CLOCK_MONOTONIC);
            let realtime = read(libc::CLOCK_REALTIME);
            let after = read(libc::CLOCK_MONOTONIC);
            (after - before, realtime - (before + after) / 2.0)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, drift)| drift)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tightest_of_the_reads_is_kept_and_a_partial_read_is_skipped() {
        // w1 spans 40 ms (a busy host), w2 2 ms, w3 only two lines (cut short).
        let out = "w1 100.000\nw1 99.000\nw1 100.040\nw2 200.000\nw2 199.001\nw2 200.002\n\
                   w3 300.0\nw3 299.0\nm1 5.000\nm1 5.000\nm1 5.010\n";
        let (offset, bound) = super::tightest(out, 'w').unwrap();
        assert!((offset + 1000.0).abs() < 0.01, "{offset}");
        assert!((bound - 1.0).abs() < 0.01, "{bound}");
        let (m, mb) = super::tightest(out, 'm').unwrap();
        assert!(m.abs() < 5.01 && (mb - 5.0).abs() < 0.01, "{m} {mb}");
        assert_eq!(super::tightest("no clock here\n", 'w'), None);
    }

    #[test]
    fn a_read_too_loose_to_tell_is_neither_near_nor_shown_wrong() {
        let seen = |offset: f64, bound: f64| super::Seen {
            offset,
            bound,
            monotonic: None,
            host: 0.0,
        };
        // 1 s back, read within 2 ms: near.
        assert!(seen(-1001.0, 2.0).near(-1000));
        // The same read ± 30 ms: not near, but consistent (the harness could not tell).
        let loose = seen(-1001.0, 30.0);
        assert!(!loose.near(-1000) && loose.consistent(-1000));
        // Not moved at all, read ± 30 ms: not consistent with 1 s back (really wrong).
        assert!(!seen(0.0, 30.0).consistent(-1000));
    }
}
