//! The gray-failure archetypes of one service: its wall clock stepped back (Cloudflare's 2017
//! leap second: 1 s back, here for 5 s) where a clock fault can reach it — libfaketime is
//! preloaded from the image, so the project's images and Compose builds are planned (the run
//! checks the service's process maps it, and is UNKNOWN saying why where it does not: a build
//! on another base, a static or Go binary), an image not built here and a known Go store are
//! skipped, saying so — and a slow disk under each data store (every fsync 500 ms for 5 s,
//! through lossyfs: a lossy disk, made of its named volume when the file declares none, the
//! declared disk made lossy for that run when the file does not say `lossy: true`).

use super::{infer, Audit, Cx, DEFAULT_DISK_MB};
use crate::scenario::PROJECT_IMAGES;
use std::fmt::Write as _;

pub(super) const CLOCK_JUMP: &str = "clock jump";
pub(super) const SLOW_DISK: &str = "slow disk";

/// How long a gray fault lasts, in seconds, and the fsync latency of a slow disk.
const DOWN_S: u64 = 5;
const FSYNC_LATENCY: &str = "500ms";

/// Stores written in Go: they read the clock through the vDSO, past libfaketime.
const GO_STORES: &[&str] = &["etcd", "Consul", "CockroachDB", "NATS", "MinIO"];

/// Both archetypes on `cx.s`.
pub(super) fn plan(cx: Cx, audit: &mut Audit) {
    plan_clock(cx, audit);
    plan_slow_disk(cx, audit);
}

/// Why a clock fault cannot reach `s`, if it cannot.
fn clock_unreachable(cx: &Cx) -> Option<String> {
    let s = cx.s;
    if !cx.observed(s) {
        return Some("no probe, so no availability verdict".into());
    }
    if let Some((st, shown)) = infer::store_of(s).filter(|(st, _)| GO_STORES.contains(&st.name)) {
        return Some(format!(
            "{} ({shown}) is a Go binary: it reads the clock through the vDSO, past libfaketime",
            st.name
        ));
    }
    match s.image.as_deref() {
        Some(i) if s.build.is_none() && !PROJECT_IMAGES.contains(&i) => Some(format!("image `{i}` is not built here: a clock fault preloads libfaketime from the image, known only in the project's images and builds on its base (`FROM aftershock/base:latest`)")),
        _ => None,
    }
}

fn plan_clock(cx: Cx, audit: &mut Audit) {
    let s = &cx.s.name;
    match clock_unreachable(&cx) {
        Some(why) => audit.skipped(s, CLOCK_JUMP, why),
        None => {
            let whose = match &cx.s.build {
                Some(b) => format!("libfaketime from its image, built from `{}`: a build on the project's base has it; where its process does not map it the run is UNKNOWN, saying why", b.context),
                None => "libfaketime".into(),
            };
            let note = format!("its wall clock 1 s back for {DOWN_S} s ({whose}; its monotonic clock and the host's untouched)");
            audit.planned(s, CLOCK_JUMP, cx.clock_jump(), note);
        }
    }
}

fn plan_slow_disk(cx: Cx, audit: &mut Audit) {
    let s = cx.s;
    let skip = |audit: &mut Audit, why: String| audit.skipped(&s.name, SLOW_DISK, why);
    if s.disk.is_none() && s.volumes.is_empty() {
        return skip(audit, "no named volume (no disk to slow)".into());
    }
    if !cx.observed(s) {
        return skip(audit, "no probe, so no availability verdict".into());
    }
    if let Some(d) = &s.disk {
        let mut note = format!(
            "every fsync on the disk at {} {FSYNC_LATENCY} for {DOWN_S} s",
            d.path
        );
        if !d.lossy {
            note.push_str(", the disk (`x-aftershock`, not `lossy: true`) made lossy for this run (`compose_lossy`: lossyfs, which slows its fsyncs, between it and the service)");
        }
        return audit.planned(
            &s.name,
            SLOW_DISK,
            cx.slow_disk(Disk::Declared(d.lossy)),
            note,
        );
    }
    let store = match infer::store_of(s) {
        Some((st, shown)) if st.stateful => format!("{} by {shown}", st.name),
        Some((st, _)) => {
            return skip(audit, format!("{} keeps nothing on disk", st.name));
        }
        None => {
            return skip(
                audit,
                "named volumes, but not a recognised data store".into(),
            )
        }
    };
    for v in &s.volumes {
        let (volume, path) = v.split_once(':').unwrap_or((v, ""));
        let suffix = if s.volumes.len() > 1 {
            format!("-{volume}")
        } else {
            String::new()
        };
        let note = format!("every fsync on volume `{volume}` at {path} {FSYNC_LATENCY} for {DOWN_S} s, the volume a lossy {DEFAULT_DISK_MB} MB disk ({store})");
        let file = cx.slow_disk(Disk::Volume(volume, &suffix));
        audit.planned(&s.name, SLOW_DISK, file, note);
    }
}

impl Cx<'_> {
    /// Cloudflare 2017: the service's wall clock 1 s back for [`DOWN_S`] s, every replica.
    fn clock_jump(&self) -> (String, String) {
        let s = &self.s.name;
        let name = format!("audit-clock-jump-{s}");
        let summary = format!("The wall clock of every `{s}` replica steps back 1 s for {DOWN_S} s (Cloudflare's 2017 leap second; libfaketime, the host's clock untouched): does it keep serving, and recover?");
        let mut t = self.head(&name, "cloudflare-2017-leap-second", &summary, &[], 20);
        let _ = write!(t, "\n[[fault]]\nname = \"clock\"\nkind = \"clock\"\ntarget = \"{s}\"\nselect = \"all\"\noffset = \"-1s\"\nat = \"4s\"\ndown_for = \"{DOWN_S}s\"\n");
        t.push_str("\n[[expect]]\nkind = \"fault-verified\"\nfault = \"clock\"\n");
        t.push_str(&self.recovers("clock", &[self.s]));
        (format!("{name}.toml"), t)
    }

    /// A slow disk: every fsync [`FSYNC_LATENCY`] for [`DOWN_S`] s, on `disk`.
    fn slow_disk(&self, disk: Disk) -> (String, String) {
        let s = &self.s.name;
        let suffix = match disk {
            Disk::Volume(_, suffix) => suffix,
            Disk::Declared(_) => "",
        };
        let name = format!("audit-slow-disk-{s}{suffix}");
        let summary = format!("Every fsync on `{s}`'s disk takes {FSYNC_LATENCY} for {DOWN_S} s (lossyfs): is it still served, and does it come back?");
        let mut t = self.head(&name, "gray-slow-disk", &summary, &[], 20);
        let topology = match disk {
            Disk::Volume(v, _) => format!("compose_disks = {{ {s} = {{ volume = {v:?}, size_mb = {DEFAULT_DISK_MB}, lossy = true }} }}\n"),
            Disk::Declared(false) => format!("compose_lossy = [{s:?}]\n"),
            Disk::Declared(true) => String::new(),
        };
        let compose = format!("compose = {}\n", self.compose);
        t = t.replacen(&compose, &format!("{compose}{topology}"), 1);
        let _ = write!(t, "\n[[fault]]\nname = \"slow-disk\"\nkind = \"disk-latency\"\ntarget = \"{s}\"\nlatency = \"{FSYNC_LATENCY}\"\nops = [\"fsync\"]\nat = \"4s\"\ndown_for = \"{DOWN_S}s\"\n");
        t.push_str("\n[[expect]]\nkind = \"fault-verified\"\nfault = \"slow-disk\"\n");
        t.push_str(&self.recovers("slow-disk", &[self.s]));
        (format!("{name}.toml"), t)
    }
}

/// The disk a slow disk slows.
#[derive(Clone, Copy)]
enum Disk<'a> {
    /// A named volume made a lossy disk of [`DEFAULT_DISK_MB`]: (its name, the file name's
    /// suffix).
    Volume(&'a str, &'a str),
    /// The disk the file declares (whether it says `lossy: true`; if not, made lossy).
    Declared(bool),
}
