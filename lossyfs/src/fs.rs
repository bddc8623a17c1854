//! The FUSE side: each kernel request mapped onto [`State`].
//!
//! Attributes and entries are never cached by the kernel (TTL 0) and files are opened without
//! `KEEP_CACHE`, so after a power failure readers see what survived, not the kernel's copy.
//! While the power is off every request answers EIO. A tear armed through the control socket
//! ([`Shared::arm`]) fires at the next fsync that would make pending writes durable: the
//! power fails while the disk writes them, and that fsync answers EIO. A sick disk
//! ([`crate::sick`]) delays reads, writes and fsyncs (waiting with the lock released: fuser
//! runs several threads, so other requests are served meanwhile) or fails them.

use crate::sick::{Op, Sickness, Verdict};
use crate::state::{Loss, State, ROOT, TRASH};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TTL: Duration = Duration::ZERO;

/// A tear waiting for the next fsync.
#[derive(Debug, Clone, Copy)]
pub struct Armed {
    pub seed: u64,
    pub granularity: u64,
}

/// The state shared by the FUSE thread and the control socket.
#[derive(Debug)]
pub struct Inner {
    pub state: State,
    pub armed: Option<Armed>,
    /// What the last armed tear did (taken by the control thread).
    pub fired: Option<std::io::Result<Loss>>,
    /// Latency, errors, a full disk: set and healed through the control socket.
    pub sick: Sickness,
}

/// [`Inner`] behind a lock, with a condition variable for armed tears.
#[derive(Debug, Clone)]
pub struct Shared(pub Arc<(Mutex<Inner>, Condvar)>);

impl Shared {
    pub fn new(state: State) -> Shared {
        Shared(Arc::new((
            Mutex::new(Inner {
                state,
                armed: None,
                fired: None,
                sick: Sickness::default(),
            }),
            Condvar::new(),
        )))
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits out the delay an operation of kind `op` owes (the lock released meanwhile, so
    /// other requests go on; a heal ends the wait), then fails it if the disk says so.
    fn sicken<'a>(
        &'a self,
        mut inner: MutexGuard<'a, Inner>,
        op: Op,
        ino: u64,
        bytes: u64,
    ) -> Result<MutexGuard<'a, Inner>, Errno> {
        if let Some(delay) = inner.sick.delay_of(op) {
            let generation = inner.sick.generation;
            inner = self
                .0
                 .1
                .wait_timeout_while(inner, delay, |i| i.sick.generation == generation)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match inner.sick.after_wait(op, bytes) {
            Verdict::Fail(e) => {
                if op == Op::Fsync && inner.sick.forgets() {
                    let forgotten = inner.state.forget_writes(ino);
                    inner.sick.forgotten += forgotten;
                }
                Err(Errno::from_i32(e))
            }
            Verdict::Go | Verdict::Wait(_) => Ok(inner),
        }
    }

    /// Cures the disk (wakes every delayed request); what it did since the last heal.
    pub fn heal(&self) -> crate::sick::Done {
        let counts = self.lock().sick.heal();
        self.0 .1.notify_all();
        counts
    }

    /// Tears at the next fsync with pending writes, or at once if writes are pending now;
    /// gives up waiting after `wait` (then tears whatever is pending).
    pub fn arm(&self, armed: Armed, wait: Duration) -> std::io::Result<(Loss, Duration)> {
        let started = std::time::Instant::now();
        let mut inner = self.lock();
        if inner.state.pending().writes > 0 || wait.is_zero() {
            return Ok((
                inner.state.tear(armed.seed, armed.granularity)?,
                started.elapsed(),
            ));
        }
        inner.fired = None;
        inner.armed = Some(armed);
        let (mut inner, _) = self
            .0
             .1
            .wait_timeout_while(inner, wait, |i| i.fired.is_none())
            .unwrap_or_else(|e| e.into_inner());
        inner.armed = None;
        let loss = match inner.fired.take() {
            Some(r) => r?,
            None => inner.state.tear(armed.seed, armed.granularity)?,
        };
        Ok((loss, started.elapsed()))
    }
}

/// The file system handed to fuser.
pub struct LossyFs {
    pub shared: Shared,
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from(e)
}

fn attr(ino: u64, meta: &std::fs::Metadata, size: Option<u64>) -> FileAttr {
    let time = |s: i64, ns: i64| {
        UNIX_EPOCH + Duration::new(s.max(0) as u64, ns.clamp(0, 999_999_999) as u32)
    };
    let kind = if meta.is_dir() {
        FileType::Directory
    } else if meta.file_type().is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    };
    let size = size.unwrap_or(meta.len());
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: SystemTime::UNIX_EPOCH,
        kind,
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl LossyFs {
    /// Gives `ino` its owner (`None`: unchanged): the user who made it, or a chown's, so a
    /// service that checks who owns its files (PostgreSQL its data directory) runs here too.
    fn own(i: &Inner, ino: u64, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let rel = i.state.path(ino).ok_or(Errno::ENOENT)?;
        std::os::unix::fs::lchown(i.state.real(rel), uid, gid).map_err(errno)
    }

    /// Runs `f` on the state unless the power is off (EIO).
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T, Errno>) -> Result<T, Errno> {
        let mut inner = self.shared.lock();
        if !inner.state.powered {
            return Err(Errno::EIO);
        }
        f(&mut inner)
    }

    /// [`LossyFs::with`] for an operation a sick disk can delay or fail (`bytes`: written).
    fn with_op<T>(
        &self,
        op: Op,
        ino: INodeNo,
        bytes: u64,
        f: impl FnOnce(&mut Inner) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let inner = self.shared.lock();
        if !inner.state.powered {
            return Err(Errno::EIO);
        }
        let mut inner = self.shared.sicken(inner, op, ino.0, bytes)?;
        if !inner.state.powered {
            return Err(Errno::EIO);
        }
        f(&mut inner)
    }

    fn stat(inner: &mut Inner, ino: u64) -> Result<FileAttr, Errno> {
        let rel = inner.state.path(ino).ok_or(Errno::ENOENT)?.to_path_buf();
        let meta = std::fs::symlink_metadata(inner.state.real(&rel)).map_err(errno)?;
        Ok(attr(ino, &meta, inner.state.dirty_size(ino)))
    }

    fn child(inner: &Inner, parent: INodeNo, name: &OsStr) -> Result<std::path::PathBuf, Errno> {
        let dir = inner.state.path(parent.0).ok_or(Errno::ENOENT)?;
        if parent.0 == ROOT && name == TRASH {
            return Err(Errno::ENOENT);
        }
        Ok(dir.join(name))
    }
}

impl Filesystem for LossyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.with(|i| {
            let rel = Self::child(i, parent, name)?;
            std::fs::symlink_metadata(i.state.real(&rel)).map_err(errno)?;
            let ino = i.state.intern(&rel);
            Self::stat(i, ino)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(|i| Self::stat(i, ino.0)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self.with(|i| {
            if let Some(size) = size {
                i.state.truncate(ino.0, size).map_err(errno)?;
            }
            if let Some(mode) = mode {
                let rel = i.state.path(ino.0).ok_or(Errno::ENOENT)?.to_path_buf();
                let perm = std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777);
                std::fs::set_permissions(i.state.real(&rel), perm).map_err(errno)?;
            }
            if uid.is_some() || gid.is_some() {
                Self::own(i, ino.0, uid, gid)?;
            }
            Self::stat(i, ino.0)
        });
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.with(|i| {
            let dir = i.state.path(parent.0).ok_or(Errno::ENOENT)?.to_path_buf();
            let ino = i
                .state
                .mkdir(&dir, Path::new(name), mode & !umask)
                .map_err(errno)?;
            Self::own(i, ino, Some(req.uid()), Some(req.gid()))?;
            Self::stat(i, ino)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, false, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, true, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = self.with(|i| {
            if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                return Err(Errno::EINVAL);
            }
            let from = Self::child(i, parent, name)?;
            let to = Self::child(i, newparent, newname)?;
            let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
            i.state.rename(&from, &to, noreplace).map_err(errno)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let r = self.with(|i| {
            if flags.0 & libc::O_TRUNC != 0 {
                i.state.truncate(ino.0, 0).map_err(errno)?;
            }
            Ok(())
        });
        match r {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.with(|i| {
            let dir = i.state.path(parent.0).ok_or(Errno::ENOENT)?.to_path_buf();
            let rel = Self::child(i, parent, name)?;
            let ino = if i.state.real(&rel).exists() {
                if flags & libc::O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                let ino = i.state.intern(&rel);
                if flags & libc::O_TRUNC != 0 {
                    i.state.truncate(ino, 0).map_err(errno)?;
                }
                ino
            } else {
                let ino = i
                    .state
                    .create(&dir, Path::new(name), mode & !umask)
                    .map_err(errno)?;
                Self::own(i, ino, Some(req.uid()), Some(req.gid()))?;
                ino
            };
            Self::stat(i, ino)
        });
        match r {
            Ok(a) => reply.created(&TTL, &a, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        match self.with_op(Op::Read, ino, 0, |i| {
            i.state.read(ino.0, offset, size).map_err(errno)
        }) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let bytes = data.len() as u64;
        match self.with_op(Op::Write, ino, bytes, |i| {
            i.state.write(ino.0, offset, data).map_err(errno)
        }) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.with_op(Op::Fsync, ino, 0, |i| {
            if let Some(armed) = i.armed {
                if i.state.has_pending_writes(ino.0) {
                    // The power fails while the disk writes what this fsync asked for.
                    i.armed = None;
                    i.fired = Some(i.state.tear(armed.seed, armed.granularity));
                    self.shared.0 .1.notify_all();
                    return Err(Errno::EIO);
                }
            }
            i.state.fsync_file(ino.0).map_err(errno)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let r = self.with(|i| {
            let rel = i.state.path(ino.0).ok_or(Errno::ENOENT)?.to_path_buf();
            let mut entries = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            for e in std::fs::read_dir(i.state.real(&rel)).map_err(errno)? {
                let e = e.map_err(errno)?;
                let name = e.file_name();
                if ino.0 == ROOT && name == TRASH {
                    continue;
                }
                let kind = match e.file_type() {
                    Ok(t) if t.is_dir() => FileType::Directory,
                    Ok(t) if t.is_symlink() => FileType::Symlink,
                    _ => FileType::RegularFile,
                };
                let child = i.state.intern(&rel.join(&name));
                entries.push((child, kind, name));
            }
            Ok(entries)
        });
        match r {
            Ok(entries) => {
                for (n, (child, kind, name)) in
                    entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(child), n as u64 + 1, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.with_op(Op::Fsync, ino, 0, |i| {
            i.state.fsync_dir(ino.0).map_err(errno)
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

impl LossyFs {
    fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let r = self.with(|i| {
            let p = i.state.path(parent.0).ok_or(Errno::ENOENT)?.to_path_buf();
            if parent.0 == ROOT && name == TRASH {
                return Err(Errno::ENOENT);
            }
            i.state.remove(&p, Path::new(name), dir).map_err(errno)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
