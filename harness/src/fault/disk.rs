//! A sick disk — slow (`disk-latency`), failing (`disk-error`) or full (`disk-full`) — on a
//! `lossy = true` disk: lossyfs (`engine::lossy`), between the container and the disk, is told
//! on its control socket (`delay`, `fail`, `full`) and acknowledges; heal: `heal`, whose answer
//! counts the operations it delayed and failed (measurements `<fault>/delayed-<r>`,
//! `<fault>/failed-<r>`).
//!
//! Verified from inside the container, with its own tools and clock: a 4 KiB write (`dd`), its
//! fsync (`sync FILE`) and a read (`dd`) of a file on the disk, each timed with `date +%s%N`
//! and its error message kept — once before the fault (the baseline), during and after.
//! Latency: each hit operation took at least the latency during and less than half of it
//! after (`<fault>/<op>-<stage>-<r>`, ms). Errors: each hit operation answered the errno (its
//! share measured, `<fault>/failed-<op>-during-<r>`, %) and nothing else failed; after, nothing
//! fails. Full: a write past the room answered ENOSPC; after, a write succeeds. A replica that
//! is down when looked at (it crashed on the error) shows the fault only by lossyfs's count
//! of what it failed, and the verification says so.

use super::common::applied;
use super::{Action, Cx, Look, Stage, Step, Unseen};
use crate::engine::lossy::Lossy;
use crate::scenario::values::{disk_ops_word, DiskErrno, DiskOp};
use crate::timeline::{now, EventKind};
use std::sync::Arc;
use std::time::Duration;

/// What ails the disk.
pub(crate) enum Sick {
    Latency {
        latency: Duration,
        ops: Vec<DiskOp>,
    },
    Error {
        errno: DiskErrno,
        percent: f64,
        ops: Vec<DiskOp>,
        /// A failed fsync forgets the writes it was to flush.
        forget: bool,
    },
    Full {
        room_bytes: u64,
    },
}

/// Makes the targets' disks sick.
pub(crate) struct Disk {
    pub sick: Sick,
}

/// A slow disk's action.
pub(crate) fn latency(latency: Duration, ops: &[DiskOp]) -> Box<dyn Action> {
    let ops = ops.to_vec();
    Box::new(Disk {
        sick: Sick::Latency { latency, ops },
    })
}

/// A failing disk's action.
pub(crate) fn error(
    errno: DiskErrno,
    percent: f64,
    ops: &[DiskOp],
    forget: bool,
) -> Box<dyn Action> {
    let ops = ops.to_vec();
    Box::new(Disk {
        sick: Sick::Error {
            errno,
            percent,
            ops,
            forget,
        },
    })
}

/// A full disk's action.
pub(crate) fn full(room_bytes: u64) -> Box<dyn Action> {
    Box::new(Disk {
        sick: Sick::Full { room_bytes },
    })
}

/// One timed operation inside the container.
#[derive(Debug)]
struct Timed {
    op: DiskOp,
    ok: bool,
    ms: f64,
    message: String,
}

impl Action for Disk {
    fn apply<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            for r in cx.targets {
                if let Ok(before) = self.probe(cx, r, 1).await {
                    self.record(cx, r, "before", &before);
                }
            }
            let since = now();
            let mut answers = vec![];
            for (i, r) in cx.targets.iter().enumerate() {
                let line = self.command(cx.seed.wrapping_add(i as u64));
                let answer = command(cx, r, line).await?;
                answers.push(format!("{r}: lossyfs {answer}"));
            }
            applied(cx, since, &answers.join("; "));
            Ok(())
        })
    }

    fn undo<'a>(&'a self, cx: &'a Cx<'a>) -> Step<'a> {
        Box::pin(async move {
            for r in cx.targets {
                let answer = command(cx, r, "heal".into()).await?;
                for (key, unit, words) in [
                    ("delayed", "ops", "operations the sick disk delayed"),
                    ("failed", "ops", "operations the sick disk failed"),
                    ("forgotten", "bytes", "written bytes failed fsyncs forgot"),
                ] {
                    if let Some(n) = field(&answer, key) {
                        cx.cluster.timeline.record(EventKind::Measurement {
                            name: format!("{}/{key}-{r}", cx.fault.name),
                            value: n,
                            unit: unit.into(),
                            what: format!("{words} on {r} (lossyfs's count)"),
                        });
                    }
                }
            }
            Ok(())
        })
    }

    fn verify<'a>(&'a self, cx: &'a Cx<'a>, r: &'a str, stage: Stage) -> Look<'a> {
        Box::pin(self.look(cx, r, stage == Stage::Applied))
    }
}

impl Disk {
    /// lossyfs's command for this sickness.
    fn command(&self, seed: u64) -> String {
        match &self.sick {
            Sick::Latency { latency, ops } => {
                format!("delay {} {}", latency.as_millis(), disk_ops_word(ops))
            }
            Sick::Error {
                errno,
                percent,
                ops,
                forget,
            } => format!(
                "fail {} {percent} {} {seed}{}",
                errno.name(),
                disk_ops_word(ops),
                if *forget { " forget" } else { "" }
            ),
            Sick::Full { room_bytes } => format!("full {room_bytes}"),
        }
    }

    /// The operations the fault hits.
    fn hits(&self, op: DiskOp) -> bool {
        match &self.sick {
            Sick::Latency { ops, .. } | Sick::Error { ops, .. } => ops.contains(&op),
            Sick::Full { .. } => op == DiskOp::Write,
        }
    }

    /// Rounds of write, fsync, read in one look: enough to see a share of errors.
    fn rounds(&self, applied: bool) -> u32 {
        match &self.sick {
            Sick::Error { percent, .. } if applied => {
                (300.0 / percent).ceil().clamp(1.0, 60.0) as u32
            }
            Sick::Error { .. } | Sick::Latency { .. } | Sick::Full { .. } => 1,
        }
    }

    /// Bytes the write of a look writes: past a full disk's room.
    fn write_bytes(&self) -> u64 {
        match &self.sick {
            Sick::Full { room_bytes } => room_bytes + 4096,
            Sick::Latency { .. } | Sick::Error { .. } => 4096,
        }
    }

    /// `rounds` of write, fsync, read timed inside replica `r`.
    async fn probe(&self, cx: &Cx<'_>, r: &str, rounds: u32) -> Result<Vec<Timed>, Unseen> {
        let path = cx
            .cluster
            .plan
            .service(cx.fault.target)
            .disk
            .as_ref()
            .map(|d| d.path.clone())
            .ok_or_else(|| Unseen::Shows(format!("{r} has no disk")))?;
        let file = format!("{path}/.aftershock-disk-{}", cx.fault.name);
        let blocks = self.write_bytes().div_ceil(4096).to_string();
        let rounds = rounds.to_string();
        let (code, out) = cx
            .cluster
            .engine
            .exec_to_end(r, &["sh", "-c", PROBE, "probe", &file, &blocks, &rounds])
            .await?;
        let timed = parse(&out);
        if timed.is_empty() {
            return Err(format!("the timed write/fsync/read inside {r} gave nothing (exit {code}; needs sh, dd, sync and GNU date): {out:?}").into());
        }
        Ok(timed)
    }

    /// Records each operation's time (ms) at `label` (the last of each kind).
    fn record(&self, cx: &Cx<'_>, r: &str, label: &str, timed: &[Timed]) {
        for op in [DiskOp::Write, DiskOp::Fsync, DiskOp::Read] {
            let Some(t) = timed.iter().rev().find(|t| t.op == op) else {
                continue;
            };
            cx.cluster.timeline.record(EventKind::Measurement {
                name: format!("{}/{}-{label}-{r}", cx.fault.name, op.name()),
                value: t.ms,
                unit: "ms".into(),
                what: format!(
                    "a 4 KiB {} on {r}'s disk, timed inside the container {label} the fault",
                    op.name()
                ),
            });
        }
    }
}

/// Write, fsync and read a file `rounds` times, each timed (`date +%s%N`) with its exit code
/// and first error line: `op code ns message`.
const PROBE: &str = r#"f="$1"; blocks="$2"; rounds="$3"
op() { name=$1; shift; s=$(date +%s%N); m=$("$@" 2>&1 >/dev/null); c=$?; e=$(date +%s%N)
  echo "$name $c $((e - s)) $(echo $m)"; }
i=0; while [ "$i" -lt "$rounds" ]; do i=$((i + 1))
  op write dd if=/dev/zero of="$f" bs=4096 count="$blocks" status=none
  op fsync sync "$f"
  op read dd if="$f" of=/dev/null bs=4096 count=1 status=none
done; rm -f "$f""#;

/// The probe's lines.
fn parse(out: &str) -> Vec<Timed> {
    out.lines()
        .filter_map(|line| {
            let mut w = line.splitn(4, ' ');
            let op = match w.next()? {
                "write" => DiskOp::Write,
                "fsync" => DiskOp::Fsync,
                "read" => DiskOp::Read,
                _ => return None,
            };
            let code: i32 = w.next()?.parse().ok()?;
            let ns: f64 = w.next()?.parse().ok()?;
            Some(Timed {
                op,
                ok: code == 0,
                ms: ns / 1e6,
                message: w.next().unwrap_or_default().trim().to_string(),
            })
        })
        .collect()
}

/// `key=N` of a lossyfs answer.
fn field(answer: &str, key: &str) -> Option<f64> {
    answer
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn lossy<'a>(cx: &'a Cx<'a>, r: &str) -> std::result::Result<&'a Arc<Lossy>, String> {
    cx.cluster
        .lossy
        .get(r)
        .ok_or_else(|| format!("{r} has no lossy disk (lossyfs) to make sick"))
}

/// Sends `line` to replica `r`'s lossyfs; its `ok …` answer.
async fn command(cx: &Cx<'_>, r: &str, line: String) -> crate::error::Result<String> {
    let l = lossy(cx, r).map_err(|e| cx.failed(e))?.clone();
    let answer = tokio::task::spawn_blocking(move || l.command(&line))
        .await
        .map_err(|e| cx.failed(format!("lossyfs thread: {e}")))?;
    Ok(answer?)
}

impl Disk {
    /// One look at `r`: the timed operations inside show the fault (`applied`) or the heal.
    async fn look(&self, cx: &Cx<'_>, r: &str, applied: bool) -> Result<String, Unseen> {
        if !cx.cluster.engine.status(r).await?.running {
            return self.down(cx, r, applied).await;
        }
        let timed = self.probe(cx, r, self.rounds(applied)).await?;
        let label = if applied { "during" } else { "after" };
        self.record(cx, r, label, &timed);
        let seen = match &self.sick {
            Sick::Latency { latency, .. } => self.slow(&timed, *latency, applied),
            Sick::Error { errno, .. } => self.failing(cx, r, &timed, *errno, applied),
            Sick::Full { .. } => self.failing(cx, r, &timed, DiskErrno::Enospc, applied),
        };
        seen.map_err(Unseen::Shows)
    }

    /// Latency: every hit operation took at least `latency` (applied), under half of it after.
    fn slow(&self, timed: &[Timed], latency: Duration, applied: bool) -> Result<String, String> {
        let want = latency.as_secs_f64() * 1e3;
        let mut good = true;
        let mut words = vec![];
        for t in timed.iter().filter(|t| self.hits(t.op)) {
            good &= t.ok
                && if applied {
                    t.ms >= want
                } else {
                    t.ms < want / 2.0
                };
            words.push(format!("{} {:.1} ms{}", t.op.name(), t.ms, error_words(t)));
        }
        let bound = if applied { "at least" } else { "under half of" };
        let words = format!("{} ({bound} {want:.0} ms)", words.join(", "));
        if good {
            Ok(words)
        } else {
            Err(words)
        }
    }

    /// Errors: every hit operation answered `errno` at least once and nothing failed otherwise
    /// (applied); nothing failed (after).
    fn failing(
        &self,
        cx: &Cx<'_>,
        r: &str,
        timed: &[Timed],
        errno: DiskErrno,
        applied: bool,
    ) -> Result<String, String> {
        let mut good = true;
        let mut words = vec![];
        for op in [DiskOp::Write, DiskOp::Fsync, DiskOp::Read] {
            let of: Vec<&Timed> = timed.iter().filter(|t| t.op == op).collect();
            let failed: Vec<&&Timed> = of.iter().filter(|t| !t.ok).collect();
            let wrong = failed.iter().find(|t| !t.message.contains(errno.message()));
            let share = 100.0 * failed.len() as f64 / of.len().max(1) as f64;
            good &= match (applied && self.hits(op), wrong) {
                (_, Some(_)) => false,
                (true, None) => !failed.is_empty(),
                (false, None) => failed.is_empty(),
            };
            if applied && self.hits(op) {
                cx.cluster.timeline.record(EventKind::Measurement {
                    name: format!("{}/failed-{}-during-{r}", cx.fault.name, op.name()),
                    value: share,
                    unit: "%".into(),
                    what: format!(
                        "share of {} {}s inside {r} that failed during the fault",
                        of.len(),
                        op.name()
                    ),
                });
            }
            let example = failed.first().map(|t| error_words(t)).unwrap_or_default();
            words.push(format!(
                "{} failed {} of {}{example}",
                op.name(),
                failed.len(),
                of.len()
            ));
        }
        let want = if applied {
            format!("{} expected on the hit operations", errno.name())
        } else {
            "none expected".into()
        };
        let words = format!("{} ({want})", words.join(", "));
        if good {
            Ok(words)
        } else {
            Err(words)
        }
    }

    /// A replica that is down: during the fault, lossyfs's own count shows whether the disk
    /// acted on it (it may have crashed on the error); after the heal, down is not healed.
    async fn down(&self, cx: &Cx<'_>, r: &str, applied: bool) -> Result<String, Unseen> {
        let status = command(cx, r, "status".into()).await?;
        let (delayed, failed) = (field(&status, "delayed"), field(&status, "failed"));
        let acted = delayed.unwrap_or(0.0) + failed.unwrap_or(0.0) > 0.0;
        let words = format!(
            "{r} is not running, so nothing was timed inside; lossyfs delayed {} and failed {} of its operations",
            delayed.unwrap_or(0.0),
            failed.unwrap_or(0.0)
        );
        if applied && acted {
            Ok(words)
        } else {
            Err(Unseen::Shows(words))
        }
    }
}

fn error_words(t: &Timed) -> String {
    if t.ok {
        String::new()
    } else {
        format!(" ({})", t.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_s_lines_parse() {
        let out = "write 0 1500000 \nfsync 1 502000000 sync: error syncing 'f': Input/output error\nnoise\nread 0 900000 ";
        let t = parse(out);
        assert_eq!(t.len(), 3);
        assert_eq!((t[1].op, t[1].ok, t[1].ms), (DiskOp::Fsync, false, 502.0));
        assert!(t[1].message.contains(DiskErrno::Eio.message()));
        assert_eq!(field("ok heal delayed=12 failed=3", "failed"), Some(3.0));
    }
}
