//! What has not reached the disk yet, and how a power failure loses it.
//!
//! The design follows LazyFS (Jepsen's): the file system keeps its own cache of written data
//! and writes a file's data to the backing directory only when the file is fsynced. Unlike
//! LazyFS it also loses directory operations and can tear writes:
//!
//! - **Data**: every write goes to a per-file [`Dirty`] overlay (sorted extents, a logical
//!   size, a truncation floor) and to the ordered list of pending writes. Reads see the
//!   backing file with the overlay on top. `fsync`/`fdatasync` of the file writes its overlay
//!   to the backing file and fsyncs that.
//! - **Entries**: create, mkdir, rename, unlink and rmdir are done in the backing directory at
//!   once (so paths stay simple), each with an undo: a removed or replaced entry is moved to a
//!   trash directory instead of being deleted. `fsync` of a directory commits the pending
//!   operations that touched it (and empties their trash); `fsync` of a file commits its own
//!   pending create (and the mkdirs above it).
//! - **Power failure** ([`State::lose`]): the overlays are dropped, the pending operations are
//!   undone newest first, the backing file system is synced, and the file system answers EIO
//!   until the power is back. [`State::tear`] first writes a seeded prefix of the pending
//!   writes, a whole number of sectors long, as a disk that loses power mid-write does.

use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The backing directory's hidden trash (removed entries wait here until committed).
pub const TRASH: &str = ".lossyfs-trash";

/// Inode number of the root.
pub const ROOT: u64 = 1;

/// The un-fsynced state of one file's data.
#[derive(Debug, Default)]
struct Dirty {
    /// The size the file has for its readers.
    size: u64,
    /// Backing bytes at or past this offset were truncated away (read as zeros).
    floor: u64,
    /// Written data, non-overlapping, by offset.
    extents: BTreeMap<u64, Vec<u8>>,
}

impl Dirty {
    fn put(&mut self, off: u64, data: &[u8]) {
        let end = off + data.len() as u64;
        // Fast path: an append to the extent that ends where this write starts.
        let nothing_after = self.extents.range(off..end).next().is_none();
        if let Some((&s, v)) = self.extents.range_mut(..=off).next_back() {
            if s + v.len() as u64 == off && nothing_after {
                v.extend_from_slice(data);
                self.size = self.size.max(end);
                return;
            }
        }
        // Extents are sorted and disjoint: walking back from `end`, the first one that ends
        // before `off` ends the overlap.
        let touching: Vec<u64> = self
            .extents
            .range(..=end)
            .rev()
            .take_while(|(s, v)| **s + v.len() as u64 >= off)
            .map(|(s, _)| *s)
            .collect();
        let start = touching.iter().copied().chain([off]).min().unwrap_or(off);
        let mut buf = vec![0u8; (end - start) as usize];
        for s in touching {
            let v = self.extents.remove(&s).unwrap_or_default();
            let at = (s - start) as usize;
            if buf.len() < at + v.len() {
                buf.resize(at + v.len(), 0);
            }
            buf[at..at + v.len()].copy_from_slice(&v);
        }
        let at = (off - start) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        self.extents.insert(start, buf);
        self.size = self.size.max(end);
    }

    fn truncate(&mut self, size: u64) {
        self.extents.retain(|s, _| *s < size);
        if let Some((&s, v)) = self.extents.range_mut(..size).next_back() {
            v.truncate((size - s).min(v.len() as u64) as usize);
        }
        self.size = size;
        self.floor = self.floor.min(size);
    }

    /// Copies the overlay's bytes in `[off, off + buf.len())` over `buf`.
    fn overlay(&self, off: u64, buf: &mut [u8]) {
        let end = off + buf.len() as u64;
        for (&s, v) in self
            .extents
            .range(..end)
            .rev()
            .take_while(|(s, v)| **s + v.len() as u64 > off)
        {
            let from = s.max(off);
            let to = (s + v.len() as u64).min(end);
            buf[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&v[(from - s) as usize..(to - s) as usize]);
        }
    }
}

/// A write not yet fsynced, in the order it came.
#[derive(Debug, Clone, Copy)]
struct Write {
    ino: u64,
    off: u64,
    len: u64,
}

/// How to take one step of an entry operation back.
#[derive(Debug, Clone)]
enum Undo {
    /// The entry was created: remove it.
    Remove(PathBuf),
    /// The entry was moved from `from` to `to` (a rename, or into the trash): move it back.
    Move { from: PathBuf, to: PathBuf },
}

/// An entry operation not yet made durable.
#[derive(Debug)]
struct Op {
    /// Undone last step first.
    undo: Vec<Undo>,
    /// The directories whose fsync commits it.
    dirs: Vec<PathBuf>,
    /// The file whose fsync commits it (its create).
    file: Option<PathBuf>,
    /// Trash entries deleted for real when it commits.
    trash: Vec<PathBuf>,
}

/// What a power failure did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Loss {
    /// Bytes of pending writes written to the disk anyway (a tear's prefix).
    pub kept_bytes: u64,
    /// Bytes of pending writes lost.
    pub dropped_bytes: u64,
    /// Pending writes there were.
    pub writes: usize,
    /// Entry operations undone.
    pub undone_ops: usize,
    /// Undo steps that failed (logged).
    pub undo_failures: usize,
}

/// A counted summary of what is pending.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pending {
    pub writes: usize,
    pub bytes: u64,
    pub ops: usize,
}

/// The file system's state: inode numbers, overlays, pending operations, power.
#[derive(Debug)]
pub struct State {
    backing: PathBuf,
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next_ino: u64,
    dirty: HashMap<u64, Dirty>,
    writes: Vec<Write>,
    ops: Vec<Op>,
    trash_seq: u64,
    /// False after a power failure: every operation answers EIO.
    pub powered: bool,
}

fn is_below(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir) && path != dir
}

impl State {
    /// A state over `backing` (which must exist); creates the trash directory.
    pub fn new(backing: &Path) -> io::Result<State> {
        fs::create_dir_all(backing.join(TRASH))?;
        let mut s = State {
            backing: backing.to_path_buf(),
            paths: HashMap::new(),
            inos: HashMap::new(),
            next_ino: ROOT + 1,
            dirty: HashMap::new(),
            writes: vec![],
            ops: vec![],
            trash_seq: 0,
            powered: true,
        };
        s.paths.insert(ROOT, PathBuf::new());
        s.inos.insert(PathBuf::new(), ROOT);
        Ok(s)
    }

    /// The path (relative to the backing directory) of an inode.
    pub fn path(&self, ino: u64) -> Option<&Path> {
        self.paths.get(&ino).map(PathBuf::as_path)
    }

    /// The full backing path of a relative path.
    pub fn real(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    /// The inode of a relative path, allocating one the first time.
    pub fn intern(&mut self, rel: &Path) -> u64 {
        if let Some(i) = self.inos.get(rel) {
            return *i;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.paths.insert(ino, rel.to_path_buf());
        self.inos.insert(rel.to_path_buf(), ino);
        ino
    }

    /// The size readers see, when the file has un-fsynced changes.
    pub fn dirty_size(&self, ino: u64) -> Option<u64> {
        self.dirty.get(&ino).map(|d| d.size)
    }

    fn dirty_mut(&mut self, ino: u64) -> io::Result<&mut Dirty> {
        if !self.dirty.contains_key(&ino) {
            let rel = self.paths.get(&ino).ok_or(io::ErrorKind::NotFound)?;
            let len = fs::metadata(self.backing.join(rel))?.len();
            self.dirty.insert(
                ino,
                Dirty {
                    size: len,
                    floor: len,
                    extents: BTreeMap::new(),
                },
            );
        }
        Ok(self.dirty.get_mut(&ino).expect("inserted above"))
    }

    /// Reads through the overlay.
    pub fn read(&self, ino: u64, off: u64, size: u32) -> io::Result<Vec<u8>> {
        let rel = self.paths.get(&ino).ok_or(io::ErrorKind::NotFound)?;
        let file = File::open(self.backing.join(rel))?;
        let backing_len = file.metadata()?.len();
        let dirty = self.dirty.get(&ino);
        let len = dirty.map_or(backing_len, |d| d.size);
        let valid = dirty.map_or(backing_len, |d| d.floor.min(backing_len));
        let end = len.min(off + u64::from(size));
        if off >= end {
            return Ok(vec![]);
        }
        let mut buf = vec![0u8; (end - off) as usize];
        if off < valid {
            let n = (valid.min(end) - off) as usize;
            file.read_exact_at(&mut buf[..n], off)?;
        }
        if let Some(d) = dirty {
            d.overlay(off, &mut buf);
        }
        Ok(buf)
    }

    /// Writes into the overlay (nothing reaches the disk before an fsync).
    pub fn write(&mut self, ino: u64, off: u64, data: &[u8]) -> io::Result<()> {
        self.dirty_mut(ino)?.put(off, data);
        self.writes.push(Write {
            ino,
            off,
            len: data.len() as u64,
        });
        Ok(())
    }

    /// Changes the size in the overlay.
    pub fn truncate(&mut self, ino: u64, size: u64) -> io::Result<()> {
        self.dirty_mut(ino)?.truncate(size);
        Ok(())
    }

    /// Forgets the file's pending writes, as if the disk had written them and they were lost
    /// (Linux after a failed writeback: the pages marked clean); returns their bytes.
    pub fn forget_writes(&mut self, ino: u64) -> u64 {
        let bytes = self
            .writes
            .iter()
            .filter(|w| w.ino == ino)
            .map(|w| w.len)
            .sum();
        self.writes.retain(|w| w.ino != ino);
        self.dirty.remove(&ino);
        bytes
    }

    /// Whether the file has pending writes.
    pub fn has_pending_writes(&self, ino: u64) -> bool {
        self.writes.iter().any(|w| w.ino == ino)
    }

    /// What is pending, counted.
    pub fn pending(&self) -> Pending {
        Pending {
            writes: self.writes.len(),
            bytes: self.writes.iter().map(|w| w.len).sum(),
            ops: self.ops.len(),
        }
    }

    /// Moves an entry in the backing directory and renumbers what is below it.
    fn move_entry(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(self.backing.join(from), self.backing.join(to))?;
        let moved: Vec<(u64, PathBuf)> = self
            .paths
            .iter()
            .filter(|(_, p)| p.starts_with(from))
            .map(|(i, p)| (*i, p.clone()))
            .collect();
        for (ino, old) in moved {
            // (`join("")` would add a trailing slash.)
            let new = match old.strip_prefix(from) {
                Ok(rest) if !rest.as_os_str().is_empty() => to.join(rest),
                _ => to.to_path_buf(),
            };
            self.inos.remove(&old);
            // An inode already known at the destination was replaced (moved to the trash first).
            self.inos.insert(new.clone(), ino);
            self.paths.insert(ino, new);
        }
        Ok(())
    }

    fn trash_path(&mut self) -> PathBuf {
        self.trash_seq += 1;
        Path::new(TRASH).join(self.trash_seq.to_string())
    }

    /// Creates a regular file (or opens an existing one) and records the create.
    pub fn create(&mut self, parent: &Path, name: &Path, mode: u32) -> io::Result<u64> {
        let rel = parent.join(name);
        std::os::unix::fs::OpenOptionsExt::mode(
            OpenOptions::new().write(true).create_new(true),
            mode,
        )
        .open(self.backing.join(&rel))?;
        self.ops.push(Op {
            undo: vec![Undo::Remove(rel.clone())],
            dirs: vec![parent.to_path_buf()],
            file: Some(rel.clone()),
            trash: vec![],
        });
        Ok(self.intern(&rel))
    }

    /// Creates a directory and records it.
    pub fn mkdir(&mut self, parent: &Path, name: &Path, mode: u32) -> io::Result<u64> {
        let rel = parent.join(name);
        std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), mode)
            .create(self.backing.join(&rel))?;
        self.ops.push(Op {
            undo: vec![Undo::Remove(rel.clone())],
            dirs: vec![parent.to_path_buf()],
            file: None,
            trash: vec![],
        });
        Ok(self.intern(&rel))
    }

    /// Removes a file or an empty directory: moves it to the trash, recorded.
    pub fn remove(&mut self, parent: &Path, name: &Path, dir: bool) -> io::Result<()> {
        let rel = parent.join(name);
        let meta = fs::symlink_metadata(self.backing.join(&rel))?;
        if dir != meta.is_dir() {
            return Err(io::Error::from_raw_os_error(if dir {
                libc::ENOTDIR
            } else {
                libc::EISDIR
            }));
        }
        if dir && fs::read_dir(self.backing.join(&rel))?.next().is_some() {
            return Err(io::Error::from_raw_os_error(libc::ENOTEMPTY));
        }
        let trash = self.trash_path();
        self.move_entry(&rel, &trash)?;
        self.ops.push(Op {
            undo: vec![Undo::Move {
                from: rel,
                to: trash.clone(),
            }],
            dirs: vec![parent.to_path_buf()],
            file: None,
            trash: vec![trash],
        });
        Ok(())
    }

    /// Renames, replacing an existing target (moved to the trash), recorded.
    pub fn rename(&mut self, from: &Path, to: &Path, noreplace: bool) -> io::Result<()> {
        let target = self.backing.join(to);
        let mut undo = vec![];
        let mut trashed = vec![];
        if let Ok(meta) = fs::symlink_metadata(&target) {
            if noreplace {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            if meta.is_dir() && fs::read_dir(&target)?.next().is_some() {
                return Err(io::Error::from_raw_os_error(libc::ENOTEMPTY));
            }
            let trash = self.trash_path();
            self.move_entry(to, &trash)?;
            undo.push(Undo::Move {
                from: to.to_path_buf(),
                to: trash.clone(),
            });
            trashed.push(trash);
        }
        self.move_entry(from, to)?;
        undo.push(Undo::Move {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        let parent = |p: &Path| p.parent().unwrap_or(Path::new("")).to_path_buf();
        self.ops.push(Op {
            undo,
            dirs: vec![parent(from), parent(to)],
            file: None,
            trash: trashed,
        });
        Ok(())
    }

    /// fsync of a file: its data to the backing file (then fsync it), and its own pending
    /// create (with the mkdirs above it) made durable.
    pub fn fsync_file(&mut self, ino: u64) -> io::Result<()> {
        let rel = self
            .paths
            .get(&ino)
            .cloned()
            .ok_or(io::ErrorKind::NotFound)?;
        let real = self.backing.join(&rel);
        let file = OpenOptions::new().write(true).open(&real)?;
        if let Some(d) = self.dirty.remove(&ino) {
            if d.floor < file.metadata()?.len() {
                file.set_len(d.floor)?;
            }
            file.set_len(d.size)?;
            for (off, data) in &d.extents {
                file.write_all_at(data, *off)?;
            }
        }
        file.sync_all()?;
        self.writes.retain(|w| w.ino != ino);
        let creates: Vec<usize> = (0..self.ops.len())
            .filter(|&i| {
                let op = &self.ops[i];
                op.file.as_deref() == Some(&rel)
                    || (op.file.is_none()
                        && matches!(op.undo.as_slice(), [Undo::Remove(p)] if is_below(&rel, p)))
            })
            .collect();
        self.commit(&creates)
    }

    /// fsync of a directory: the pending entry operations in it made durable.
    pub fn fsync_dir(&mut self, ino: u64) -> io::Result<()> {
        let rel = self
            .paths
            .get(&ino)
            .cloned()
            .ok_or(io::ErrorKind::NotFound)?;
        let touching: Vec<usize> = (0..self.ops.len())
            .filter(|&i| self.ops[i].dirs.contains(&rel))
            .collect();
        self.commit(&touching)
    }

    /// Makes the given operations durable: empties their trash, fsyncs their directories.
    fn commit(&mut self, which: &[usize]) -> io::Result<()> {
        let mut dirs = vec![];
        for &i in which.iter().rev() {
            let op = self.ops.remove(i);
            for t in &op.trash {
                let real = self.backing.join(t);
                let _ = fs::remove_dir(&real).or_else(|_| fs::remove_file(&real));
            }
            dirs.extend(op.dirs);
        }
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            if let Ok(f) = File::open(self.backing.join(&d)) {
                f.sync_all()?;
            }
        }
        Ok(())
    }

    /// Makes everything durable (as `syncfs` would).
    pub fn sync_all(&mut self) -> io::Result<Pending> {
        let pending = self.pending();
        let inos: Vec<u64> = self.dirty.keys().copied().collect();
        for ino in inos {
            match self.fsync_file(ino) {
                // Written, then removed (its trash emptied by a later directory fsync): there
                // is nothing left to make durable (PostgreSQL's set-up does this).
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.dirty.remove(&ino);
                    self.writes.retain(|w| w.ino != ino);
                }
                done => done?,
            }
        }
        let all: Vec<usize> = (0..self.ops.len()).collect();
        self.commit(&all)?;
        self.syncfs();
        Ok(pending)
    }

    fn syncfs(&self) {
        if let Ok(f) = File::open(&self.backing) {
            // SAFETY: syncfs on a descriptor we own.
            unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
        }
    }

    /// A power failure: every pending write is lost, every pending entry operation undone
    /// (newest first), the backing file system synced; then the power stays off.
    pub fn lose(&mut self) -> Loss {
        let mut loss = Loss {
            dropped_bytes: self.writes.iter().map(|w| w.len).sum(),
            writes: self.writes.len(),
            undone_ops: self.ops.len(),
            ..Loss::default()
        };
        self.writes.clear();
        self.dirty.clear();
        let ops = std::mem::take(&mut self.ops);
        for step in ops
            .into_iter()
            .rev()
            .flat_map(|op| op.undo.into_iter().rev())
        {
            let done = match &step {
                Undo::Remove(p) => {
                    let real = self.backing.join(p);
                    fs::remove_file(&real).or_else(|_| fs::remove_dir(&real))
                }
                Undo::Move { from, to } => self.move_entry(to, from),
            };
            if let Err(e) = done {
                tracing::warn!(?step, error = %e, "undo failed");
                loss.undo_failures += 1;
            }
        }
        self.syncfs();
        self.powered = false;
        loss
    }

    /// A power failure during the pending writes: a prefix of them, `k × granularity` bytes
    /// long with `k` drawn from `seed` (at least one sector kept and one lost when there are
    /// two sectors' worth), reaches the disk; the rest is lost as in [`State::lose`].
    pub fn tear(&mut self, seed: u64, granularity: u64) -> io::Result<Loss> {
        let total: u64 = self.writes.iter().map(|w| w.len).sum();
        let sectors = total.div_ceil(granularity.max(1));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let k = if sectors >= 2 {
            rng.gen_range(1..sectors)
        } else {
            0
        };
        let kept = (k * granularity).min(total);
        let mut left = kept;
        let mut touched = vec![];
        for w in self.writes.clone() {
            if left == 0 {
                break;
            }
            let take = w.len.min(left);
            left -= take;
            let data = self.read(w.ino, w.off, take as u32)?;
            let rel = self.paths.get(&w.ino).ok_or(io::ErrorKind::NotFound)?;
            let file = OpenOptions::new()
                .write(true)
                .open(self.backing.join(rel))?;
            file.write_all_at(&data, w.off)?;
            touched.push(file);
        }
        for f in touched {
            f.sync_all()?;
        }
        let mut loss = self.lose();
        loss.kept_bytes = kept;
        loss.dropped_bytes = total - kept;
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::{Dirty, State, ROOT};
    use std::path::Path;

    #[test]
    fn a_file_written_then_removed_for_good_does_not_stop_a_sync() {
        let dir = std::env::temp_dir().join(format!("lossyfs-removed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = State::new(&dir).unwrap();
        let root = Path::new("");
        let ino = s.create(root, Path::new("tmp"), 0o600).unwrap();
        s.write(ino, 0, b"pending").unwrap();
        s.remove(root, Path::new("tmp"), false).unwrap();
        // The directory's fsync makes the removal durable: its trash is emptied.
        s.fsync_dir(ROOT).unwrap();
        s.sync_all().unwrap();
        assert!(s.dirty.is_empty() && s.writes.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn contents(d: &Dirty, len: usize) -> Vec<u8> {
        let mut buf = vec![b'.'; len];
        d.overlay(0, &mut buf);
        buf
    }

    #[test]
    fn extents_merge_and_overlay() {
        let mut d = Dirty::default();
        d.put(0, b"aaaa");
        d.put(4, b"bb");
        d.put(8, b"cc");
        assert_eq!(d.extents.len(), 2);
        d.put(5, b"XXXX");
        assert_eq!(d.extents.len(), 1);
        assert_eq!(contents(&d, 12), b"aaaabXXXXc..");
        assert_eq!(d.size, 10);
        d.truncate(3);
        assert_eq!(contents(&d, 6), b"aaa...");
        assert_eq!(d.size, 3);
    }
}
