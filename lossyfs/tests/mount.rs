//! A real lossyfs mount on a temporary directory (needs root and /dev/fuse), driven through
//! its control socket: what survives `lose` and `tear`. Every mount is unmounted by a guard,
//! also when a test fails.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A running lossyfs: killed and unmounted on drop.
struct Mount {
    dir: PathBuf,
    child: Child,
}

fn mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let target = path.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&target))
}

impl Mount {
    fn new() -> Mount {
        let dir = std::env::temp_dir().join(format!(
            "lossyfs-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("backing")).unwrap();
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_lossyfs"))
            .arg("--backing")
            .arg(dir.join("backing"))
            .arg("--mount")
            .arg(dir.join("mnt"))
            .arg("--control")
            .arg(dir.join("control.sock"))
            .spawn()
            .expect("start lossyfs");
        let m = Mount { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(mounted(&m.mnt()) && m.dir.join("control.sock").exists()) {
            assert!(Instant::now() < deadline, "lossyfs did not mount");
            std::thread::sleep(Duration::from_millis(10));
        }
        m
    }

    fn mnt(&self) -> PathBuf {
        self.dir.join("mnt")
    }

    fn backing(&self, name: &str) -> PathBuf {
        self.dir.join("backing").join(name)
    }

    fn ctl(&self, command: &str) -> String {
        let mut s = UnixStream::connect(self.dir.join("control.sock")).expect("connect");
        s.write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        assert!(line.starts_with("ok "), "{command}: {line}");
        line.trim().to_string()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if mounted(&self.mnt()) {
            let _ = Command::new("umount").arg("-l").arg(self.mnt()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `key=N` out of an answer line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {line}"))
        .parse()
        .unwrap()
}

fn append(path: &Path, data: &[u8]) -> std::fs::File {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
    f
}

#[test]
fn unsynced_write_is_lost_fsynced_write_survives() {
    let m = Mount::new();
    let log = m.mnt().join("log");
    append(&log, b"durable;").sync_data().unwrap();
    append(&log, b"volatile;");
    assert_eq!(std::fs::read(&log).unwrap(), b"durable;volatile;");
    assert_eq!(std::fs::read(m.backing("log")).unwrap(), b"durable;");
    let answer = m.ctl("lose");
    assert_eq!(field(&answer, "dropped_bytes"), 9, "{answer}");
    assert!(std::fs::read(&log).is_err(), "the power is off: EIO");
    m.ctl("on");
    assert_eq!(std::fs::read(&log).unwrap(), b"durable;");
}

#[test]
fn unsynced_create_rename_unlink_are_undone_and_a_dir_fsync_keeps_them() {
    let m = Mount::new();
    for name in ["a", "b"] {
        append(&m.mnt().join(name), name.as_bytes())
            .sync_all()
            .unwrap();
    }
    std::fs::File::open(m.mnt()).unwrap().sync_all().unwrap();
    std::fs::write(m.mnt().join("new"), b"x").unwrap();
    std::fs::rename(m.mnt().join("a"), m.mnt().join("a2")).unwrap();
    std::fs::remove_file(m.mnt().join("b")).unwrap();
    std::fs::create_dir(m.mnt().join("d")).unwrap();
    let status = m.ctl("status");
    assert_eq!(field(&status, "pending_ops"), 4, "{status}");
    let answer = m.ctl("lose");
    assert_eq!(field(&answer, "undone_ops"), 4, "{answer}");
    assert_eq!(field(&answer, "undo_failures"), 0, "{answer}");
    m.ctl("on");
    let mut names: Vec<String> = std::fs::read_dir(m.mnt())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(std::fs::read(m.mnt().join("b")).unwrap(), b"b");
    // The same operations, then an fsync of the directory: they survive.
    std::fs::rename(m.mnt().join("a"), m.mnt().join("a2")).unwrap();
    std::fs::remove_file(m.mnt().join("b")).unwrap();
    std::fs::File::open(m.mnt()).unwrap().sync_all().unwrap();
    m.ctl("lose");
    m.ctl("on");
    assert!(m.mnt().join("a2").exists() && !m.mnt().join("b").exists());
    assert_eq!(std::fs::read(m.backing("a2")).unwrap(), b"a");
}

#[test]
fn fsync_of_a_new_file_keeps_its_create() {
    let m = Mount::new();
    append(&m.mnt().join("f"), b"data").sync_data().unwrap();
    let answer = m.ctl("lose");
    assert_eq!(field(&answer, "undone_ops"), 0, "{answer}");
    m.ctl("on");
    assert_eq!(std::fs::read(m.mnt().join("f")).unwrap(), b"data");
}

/// Un-fsynced writes after a durable prefix; a tear; what reached the backing file.
fn torn(seed: u64, granularity: u64) -> (u64, Vec<u8>) {
    let m = Mount::new();
    let log = m.mnt().join("log");
    append(&log, &[b'D'; 100]).sync_data().unwrap();
    let mut written = vec![];
    let f = append(&log, b"");
    for (i, len) in [3000usize, 5000, 2500].into_iter().enumerate() {
        let chunk = vec![b'a' + i as u8; len];
        f.write_all_at(&chunk, 100 + written.len() as u64).unwrap();
        written.extend(chunk);
    }
    let answer = m.ctl(&format!("tear {seed} {granularity}"));
    let kept = field(&answer, "kept_bytes");
    assert_eq!(kept + field(&answer, "dropped_bytes"), written.len() as u64);
    let survived = std::fs::read(m.backing("log")).unwrap();
    assert_eq!(&survived[..100], &[b'D'; 100]);
    assert_eq!(
        &survived[100..],
        &written[..kept as usize],
        "a prefix survives"
    );
    (kept, survived)
}

#[test]
fn tear_keeps_a_seeded_prefix_of_whole_sectors() {
    for granularity in [512, 4096] {
        let mut seen = std::collections::BTreeSet::new();
        for seed in [1, 2, 3, 42] {
            let (kept, survived) = torn(seed, granularity);
            assert_eq!(
                kept % granularity,
                0,
                "{kept} is whole {granularity} B sectors"
            );
            assert!(
                kept > 0 && kept < 10_500,
                "something kept, something lost: {kept}"
            );
            assert_eq!(
                torn(seed, granularity),
                (kept, survived),
                "seed {seed} replays"
            );
            seen.insert(kept);
        }
        assert!(seen.len() > 1, "different seeds tear differently: {seen:?}");
    }
}

#[test]
fn an_armed_tear_fails_the_next_fsync() {
    let m = Mount::new();
    let log = m.mnt().join("log");
    let f = append(&log, b"first;");
    f.sync_data().unwrap();
    let path = log.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let f = append(&path, &[b'x'; 1500]);
        f.sync_data()
    });
    let answer = m.ctl("tear 7 512 5000");
    assert!(
        writer.join().unwrap().is_err(),
        "the fsync during the cut fails"
    );
    let kept = field(&answer, "kept_bytes");
    assert!(kept == 512 || kept == 1024, "{answer}");
    let survived = std::fs::read(m.backing("log")).unwrap();
    assert_eq!(survived.len() as u64, 6 + kept);
}

/// How long `f` takes.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

#[test]
fn a_delayed_fsync_takes_the_delay_and_other_requests_go_on_meanwhile() {
    let m = Mount::new();
    let log = m.mnt().join("log");
    let f = append(&log, b"first;");
    m.ctl("delay 400 fsync");
    let (r, took) = timed(|| f.sync_data());
    r.unwrap();
    assert!(took >= Duration::from_millis(400), "fsync took {took:?}");
    // Writes are not delayed, and a read is served while an fsync waits.
    let (_, wrote) = timed(|| append(&log, b"second;"));
    assert!(wrote < Duration::from_millis(200), "write took {wrote:?}");
    let path = log.clone();
    let slow = std::thread::spawn(move || timed(|| append(&path, b"").sync_data()).1);
    std::thread::sleep(Duration::from_millis(100));
    let (read, took) = timed(|| std::fs::read(&log));
    assert_eq!(read.unwrap(), b"first;second;");
    assert!(took < Duration::from_millis(200), "read waited {took:?}");
    assert!(slow.join().unwrap() >= Duration::from_millis(400));
    let status = m.ctl("status");
    assert_eq!(field(&status, "delayed"), 2, "{status}");
    // A heal wakes a waiting fsync at once and counts what was done.
    m.ctl("delay 5000 all");
    let path = log.clone();
    let waiting = std::thread::spawn(move || timed(|| append(&path, b"").sync_data()).1);
    std::thread::sleep(Duration::from_millis(200));
    let healed = m.ctl("heal");
    assert_eq!(field(&healed, "delayed"), 3, "{healed}");
    assert!(waiting.join().unwrap() < Duration::from_secs(2));
    let (_, took) = timed(|| f.sync_data().unwrap());
    assert!(
        took < Duration::from_millis(200),
        "healed fsync took {took:?}"
    );
}

fn raw_errno(r: std::io::Result<()>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn a_failing_disk_answers_its_errno_and_a_full_one_enospc() {
    let m = Mount::new();
    let log = m.mnt().join("log");
    let mut f = append(&log, b"kept;");
    f.sync_data().unwrap();
    m.ctl("fail EIO 100 fsync 7");
    f.write_all(b"written;").unwrap();
    assert_eq!(raw_errno(f.sync_data()), Some(libc::EIO), "fsync fails");
    assert_eq!(std::fs::read(&log).unwrap(), b"kept;written;", "reads work");
    m.ctl("fail EROFS 100 write 7");
    assert_eq!(raw_errno(f.write_all(b"x")), Some(libc::EROFS));
    let healed = m.ctl("heal");
    assert_eq!(field(&healed, "failed"), 2, "{healed}");
    f.write_all(b"after;").unwrap();
    f.sync_data().unwrap();
    m.ctl("full 10");
    f.write_all(b"123456").unwrap();
    assert_eq!(raw_errno(f.write_all(b"123456")), Some(libc::ENOSPC));
    f.sync_data().unwrap();
    m.ctl("heal");
    assert_eq!(
        std::fs::read(m.backing("log")).unwrap(),
        b"kept;written;after;123456"
    );
}

#[test]
fn a_failed_fsync_that_forgets_loses_the_write_and_the_retry_succeeds() {
    let m = Mount::new();
    let log = m.mnt().join("log");
    let mut f = append(&log, b"kept;");
    f.sync_data().unwrap();
    m.ctl("fail EIO 100 fsync 1 forget");
    f.write_all(b"acknowledged?").unwrap();
    assert_eq!(raw_errno(f.sync_data()), Some(libc::EIO));
    let healed = m.ctl("heal");
    assert_eq!(field(&healed, "forgotten"), 13, "{healed}");
    f.sync_data()
        .expect("the retry succeeds: nothing is left to write");
    assert_eq!(std::fs::read(m.backing("log")).unwrap(), b"kept;");
}
