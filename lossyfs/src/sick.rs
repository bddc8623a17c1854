//! A sick disk: what the control socket sets besides power — latency on chosen operations
//! (dm-delay's read / write / flush classes), errors with a probability (chaos-mesh IOChaos's
//! `fault`, dm-flakey's `error_writes`), a full disk (ENOSPC once `room` bytes more are
//! written) — and counts of what it did, until `heal`. No FUSE here: [`Sickness::delay_of`]
//! and [`Sickness::after_wait`] decide, `fs.rs` waits or answers the errno.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::time::Duration;

/// The kinds of operation a sickness can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `read`.
    Read,
    /// `write` (data written into a file).
    Write,
    /// `fsync`, `fdatasync` and the fsync of a directory (a flush to the disk).
    Fsync,
}

/// A set of [`Op`]s: `read,write,fsync` (or `all`) on the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ops {
    pub read: bool,
    pub write: bool,
    pub fsync: bool,
}

impl Ops {
    /// Parses `read,write,fsync` (any non-empty subset, any order) or `all`.
    pub fn parse(text: &str) -> Option<Ops> {
        if text == "all" {
            return Some(Ops {
                read: true,
                write: true,
                fsync: true,
            });
        }
        let mut ops = Ops::default();
        for word in text.split(',') {
            match word {
                "read" => ops.read = true,
                "write" => ops.write = true,
                "fsync" => ops.fsync = true,
                _ => return None,
            }
        }
        Some(ops)
    }

    /// Whether `op` is in the set.
    pub fn has(self, op: Op) -> bool {
        match op {
            Op::Read => self.read,
            Op::Write => self.write,
            Op::Fsync => self.fsync,
        }
    }
}

impl fmt::Display for Ops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.read, "read"),
            (self.write, "write"),
            (self.fsync, "fsync"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&names.join(","))
    }
}

/// The errnos a failing disk answers, by name.
pub const ERRNOS: [(&str, i32); 3] = [
    ("EIO", libc::EIO),
    ("ENOSPC", libc::ENOSPC),
    ("EROFS", libc::EROFS),
];

/// An errno by its name (`EIO`, `ENOSPC`, `EROFS`).
pub fn errno(name: &str) -> Option<i32> {
    ERRNOS.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
}

/// Errors on `ops`: `percent` of them (seeded) answer `errno`.
#[derive(Debug)]
pub struct Fail {
    pub errno: i32,
    pub percent: f64,
    pub ops: Ops,
    /// A failed fsync forgets the file's pending writes (Linux marks the pages clean after a
    /// failed writeback: a retried fsync succeeds, the data never reaches the disk).
    pub forget: bool,
    rng: ChaCha8Rng,
}

impl Fail {
    pub fn new(errno: i32, percent: f64, ops: Ops, seed: u64) -> Fail {
        Fail {
            errno,
            percent,
            ops,
            forget: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

/// What the disk does to one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Served now.
    Go,
    /// Served after this long (unless the disk is healed first).
    Wait(Duration),
    /// Answered with this errno.
    Fail(i32),
}

/// Everything that ails the disk, and what it did since the last heal.
#[derive(Debug, Default)]
pub struct Sickness {
    pub delay: Option<(Duration, Ops)>,
    pub fail: Option<Fail>,
    /// A full disk: how many bytes more it takes before every write answers ENOSPC.
    pub room: Option<u64>,
    /// Bumped by every heal: a request waiting out a delay is served at once.
    pub generation: u64,
    /// Operations delayed since the last heal.
    pub delayed: u64,
    /// Operations failed since the last heal.
    pub failed: u64,
    /// Bytes of pending writes failed fsyncs forgot since the last heal.
    pub forgotten: u64,
}

/// What a sick disk did between two heals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub delayed: u64,
    pub failed: u64,
    pub forgotten: u64,
}

impl Sickness {
    /// The wait an operation of kind `op` owes (checked before [`Sickness::after_wait`]).
    pub fn delay_of(&mut self, op: Op) -> Option<Duration> {
        let (d, ops) = self.delay?;
        (ops.has(op) && !d.is_zero()).then(|| {
            self.delayed += 1;
            d
        })
    }

    /// After any wait: whether the operation (`bytes` written, for a write) fails.
    pub fn after_wait(&mut self, op: Op, bytes: u64) -> Verdict {
        if let Some(fail) = &mut self.fail {
            if fail.ops.has(op) && fail.rng.gen_range(0.0..100.0) < fail.percent {
                self.failed += 1;
                return Verdict::Fail(fail.errno);
            }
        }
        if let (Op::Write, Some(room)) = (op, &mut self.room) {
            if bytes > *room {
                self.failed += 1;
                return Verdict::Fail(libc::ENOSPC);
            }
            *room -= bytes;
        }
        Verdict::Go
    }

    /// Whether anything ails the disk.
    pub fn sick(&self) -> bool {
        self.delay.is_some() || self.fail.is_some() || self.room.is_some()
    }

    /// Whether a failed fsync forgets the file's pending writes.
    pub fn forgets(&self) -> bool {
        self.fail.as_ref().is_some_and(|f| f.forget)
    }

    /// Cures everything; returns what it did since the last heal.
    pub fn heal(&mut self) -> Done {
        let counts = Done {
            delayed: self.delayed,
            failed: self.failed,
            forgotten: self.forgotten,
        };
        *self = Sickness {
            generation: self.generation + 1,
            ..Sickness::default()
        };
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_parse_and_print() {
        let fsync = Ops::parse("fsync").unwrap();
        assert!(fsync.has(Op::Fsync) && !fsync.has(Op::Write) && !fsync.has(Op::Read));
        assert_eq!(Ops::parse("all").unwrap().to_string(), "read,write,fsync");
        assert_eq!(
            Ops::parse("fsync,write").unwrap().to_string(),
            "write,fsync"
        );
        assert_eq!(Ops::parse("flush"), None);
        assert_eq!(Ops::parse(""), None);
    }

    #[test]
    fn a_delay_hits_only_its_ops_and_a_heal_counts_and_cures() {
        let mut s = Sickness {
            delay: Some((Duration::from_millis(500), Ops::parse("fsync").unwrap())),
            ..Default::default()
        };
        assert_eq!(s.delay_of(Op::Write), None);
        assert_eq!(s.delay_of(Op::Fsync), Some(Duration::from_millis(500)));
        assert_eq!(s.after_wait(Op::Fsync, 0), Verdict::Go);
        let done = s.heal();
        assert_eq!((done.delayed, done.failed), (1, 0));
        assert!(!s.sick());
        assert_eq!(s.generation, 1);
        assert_eq!(s.delay_of(Op::Fsync), None);
    }

    #[test]
    fn errors_are_seeded_and_near_their_share() {
        let run = |seed| {
            let mut s = Sickness {
                fail: Some(Fail::new(
                    libc::EIO,
                    30.0,
                    Ops::parse("write").unwrap(),
                    seed,
                )),
                ..Default::default()
            };
            (0..1000)
                .map(|_| s.after_wait(Op::Write, 1) == Verdict::Fail(libc::EIO))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7), "the same seed fails the same operations");
        let failed = a.iter().filter(|f| **f).count();
        assert!((250..350).contains(&failed), "{failed} of 1000 at 30 %");
        let mut every = Sickness {
            fail: Some(Fail::new(libc::EIO, 100.0, Ops::parse("fsync").unwrap(), 1)),
            ..Default::default()
        };
        assert_eq!(every.after_wait(Op::Fsync, 0), Verdict::Fail(libc::EIO));
        assert_eq!(every.after_wait(Op::Read, 0), Verdict::Go);
    }

    #[test]
    fn a_full_disk_takes_its_room_then_answers_enospc() {
        let mut s = Sickness {
            room: Some(10),
            ..Default::default()
        };
        assert_eq!(s.after_wait(Op::Write, 6), Verdict::Go);
        assert_eq!(s.after_wait(Op::Write, 6), Verdict::Fail(libc::ENOSPC));
        assert_eq!(s.after_wait(Op::Write, 4), Verdict::Go);
        assert_eq!(s.after_wait(Op::Write, 1), Verdict::Fail(libc::ENOSPC));
        assert_eq!(s.after_wait(Op::Fsync, 0), Verdict::Go);
        assert_eq!(s.after_wait(Op::Read, 0), Verdict::Go);
        assert_eq!(errno("ENOSPC"), Some(libc::ENOSPC));
        assert_eq!(errno("EAGAIN"), None);
    }
}
