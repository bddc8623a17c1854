//! The control socket: one command per line, one answer per line (`ok …` saying what was
//! done, or `err …`), so the caller knows the fault landed before it goes on.
//!
//! - `status` → `ok status power=on|off pending_writes=N pending_bytes=B pending_ops=M
//!   sick=yes|no delayed=D failed=F`
//! - `sync` → makes everything durable (as `syncfs`): `ok sync writes=N bytes=B ops=M`
//! - `lose` → the power fails: every un-fsynced write and entry operation is gone:
//!   `ok lose kept_bytes=0 dropped_bytes=B writes=N undone_ops=M power=off`
//! - `tear SEED 512|4096 [WAIT_MS]` → the power fails while the disk writes the pending
//!   writes: a seeded prefix, a whole number of sectors, survives; the rest is lost. With
//!   `WAIT_MS` and nothing pending, waits that long for the next fsync and fails during it
//!   (a durable writer has nothing pending between its writes). Answers like `lose`, plus
//!   `seed=`, `granularity=`, `waited_ms=`.
//! - `on` → the power comes back (the file system serves what survived).
//! - `delay MS OPS` → every operation of `OPS` (`read,write,fsync` or `all`; fsync covers
//!   fdatasync and a directory's fsync) waits `MS` ms first: `ok delay ms=MS ops=…`
//! - `fail ERRNO PERCENT OPS SEED [forget]` → `PERCENT` of the operations of `OPS` (drawn
//!   from `SEED`) answer `ERRNO` (`EIO`, `ENOSPC`, `EROFS`); with `forget`, a failed fsync
//!   forgets the file's pending writes (Linux marks the pages clean after a failed writeback:
//!   the retry succeeds, the data is gone — "fsyncgate"): `ok fail errno=… percent=… ops=…
//!   seed=… forget=true|false`
//! - `full BYTES` → the disk takes `BYTES` more written bytes, then every write answers
//!   ENOSPC: `ok full room=BYTES`
//! - `heal` → no more delays, errors or full disk (delayed requests are served at once):
//!   `ok heal delayed=N failed=M forgotten=B` (what the disk did since the last heal)
//! - `quit` → unmounts and exits.

use crate::fs::{Armed, Shared};
use crate::sick::{self, Fail, Ops};
use crate::state::Loss;
use crate::Error;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::Sender;
use std::time::Duration;

/// The longest a `tear` waits for an fsync.
const MAX_WAIT: Duration = Duration::from_secs(60);

fn loss_line(what: &str, loss: &Loss) -> String {
    format!(
        "ok {what} kept_bytes={} dropped_bytes={} writes={} undone_ops={} undo_failures={} power=off",
        loss.kept_bytes, loss.dropped_bytes, loss.writes, loss.undone_ops, loss.undo_failures
    )
}

/// Carries out one command line; the answer, and whether to quit.
pub fn execute(shared: &Shared, line: &str) -> Result<(String, bool), Error> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let bad = || Error::BadCommand(line.to_string());
    let answer = match words.as_slice() {
        ["status"] => {
            let inner = shared.lock();
            let p = inner.state.pending();
            format!(
                "ok status power={} pending_writes={} pending_bytes={} pending_ops={} sick={} delayed={} failed={}",
                if inner.state.powered { "on" } else { "off" },
                p.writes,
                p.bytes,
                p.ops,
                if inner.sick.sick() { "yes" } else { "no" },
                inner.sick.delayed,
                inner.sick.failed
            )
        }
        ["sync"] => {
            let p = shared.lock().state.sync_all().map_err(Error::io("sync"))?;
            format!(
                "ok sync writes={} bytes={} ops={}",
                p.writes, p.bytes, p.ops
            )
        }
        ["lose"] => loss_line("lose", &shared.lock().state.lose()),
        ["tear", seed, granularity, wait @ ..] => {
            tear(shared, seed, granularity, wait).ok_or_else(bad)??
        }
        ["delay", ms, ops] => {
            let ms: u64 = ms.parse().map_err(|_| bad())?;
            let ops = Ops::parse(ops).ok_or_else(bad)?;
            shared.lock().sick.delay = Some((Duration::from_millis(ms), ops));
            format!("ok delay ms={ms} ops={ops}")
        }
        ["fail", name, percent, ops, seed, rest @ ..] => {
            fail(shared, name, percent, ops, seed, rest).ok_or_else(bad)?
        }
        ["full", room] => {
            let room: u64 = room.parse().map_err(|_| bad())?;
            shared.lock().sick.room = Some(room);
            format!("ok full room={room}")
        }
        ["heal"] => {
            let done = shared.heal();
            format!(
                "ok heal delayed={} failed={} forgotten={}",
                done.delayed, done.failed, done.forgotten
            )
        }
        ["on"] => {
            shared.lock().state.powered = true;
            "ok on".to_string()
        }
        ["quit"] => return Ok(("ok quit".to_string(), true)),
        _ => return Err(bad()),
    };
    Ok((answer, false))
}

/// `tear SEED 512|4096 [WAIT_MS]`: the last writes torn at the next cut (None: bad words).
fn tear(
    shared: &Shared,
    seed: &str,
    granularity: &str,
    wait: &[&str],
) -> Option<Result<String, Error>> {
    let seed: u64 = seed.parse().ok()?;
    let granularity: u64 = match granularity {
        "512" => 512,
        "4096" => 4096,
        _ => return None,
    };
    let wait = match wait {
        [] => Duration::ZERO,
        [ms] => Duration::from_millis(ms.parse().ok()?).min(MAX_WAIT),
        _ => return None,
    };
    let armed = shared.arm(Armed { seed, granularity }, wait);
    Some(armed.map_err(Error::io("tear")).map(|(loss, waited)| {
        format!(
            "{} seed={seed} granularity={granularity} waited_ms={}",
            loss_line("tear", &loss),
            waited.as_millis()
        )
    }))
}

/// `fail ERRNO PERCENT OPS SEED [forget]`: operations answer an errno (None: bad words).
fn fail(
    shared: &Shared,
    name: &str,
    percent: &str,
    ops: &str,
    seed: &str,
    rest: &[&str],
) -> Option<String> {
    let forget = match rest {
        [] => false,
        ["forget"] => true,
        _ => return None,
    };
    let errno = sick::errno(name)?;
    let percent: f64 = percent.parse().ok()?;
    if !(0.0..=100.0).contains(&percent) {
        return None;
    }
    let ops = Ops::parse(ops)?;
    let seed: u64 = seed.parse().ok()?;
    let mut fail = Fail::new(errno, percent, ops, seed);
    fail.forget = forget;
    shared.lock().sick.fail = Some(fail);
    Some(format!(
        "ok fail errno={name} percent={percent} ops={ops} seed={seed} forget={forget}"
    ))
}

fn serve_one(shared: &Shared, stream: UnixStream, quit: &Sender<()>) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    for line in BufReader::new(stream).lines().take(100_000) {
        let line = line?;
        let (answer, stop) = match execute(shared, line.trim()) {
            Ok(a) => a,
            Err(e) => (format!("err {e}"), false),
        };
        tracing::info!(command = line.trim(), %answer, "control");
        out.write_all(answer.as_bytes())?;
        out.write_all(b"\n")?;
        if stop {
            let _ = quit.send(());
            return Ok(());
        }
    }
    Ok(())
}

/// Serves the control socket until the process ends; connections one at a time.
pub fn serve(shared: Shared, listener: UnixListener, quit: Sender<()>) {
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                if let Err(e) = serve_one(&shared, s, &quit) {
                    tracing::warn!(error = %e, "control connection");
                }
            }
            Err(e) => tracing::warn!(error = %e, "control accept"),
        }
    }
}
