//! The gray-failure archetypes of one service: its wall clock stepped back (Cloudflare's 2017
//! leap second: 1 s back, here for 5 s) where a clock fault can reach it — libfaketime is
//! preloaded into the project's own images only, so a Compose service (its own image or
//! build) is skipped, saying so — and a slow disk under each data store (every
//! fsync 500 ms for 5 s, through lossyfs: a lossy disk, made of its named volume when the file
//! declares none).

use super::{infer, Audit, Cx, DEFAULT_DISK_MB};
use crate::scenario::PROJECT_IMAGES;
use std::fmt::Write as _;

pub(super) const CLOCK_JUMP: &str = "clock jump";
pub(super) const SLOW_DISK: &str = "slow disk";

/// How long a gray fault lasts, in seconds, and the fsync latency of a slow disk.
const DOWN_S: u64 = 5;
const FSYNC_LATENCY: &str = "500ms";

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
    if let Some(b) = &s.build {
        return Some(format!("built from `{}`: a clock fault preloads libfaketime into the project's own images only (`image = \"memcached\"` in a scenario), where it is known to be and to reach the service's process", b.context));
    }
    match s.image.as_deref() {
        Some(i) if !PROJECT_IMAGES.contains(&i) => Some(format!("image `{i}` is not one of the project's: a clock fault preloads libfaketime into the project's own images only")),
        _ => None,
    }
}

fn plan_clock(cx: Cx, audit: &mut Audit) {
    let s = &cx.s.name;
    match clock_unreachable(&cx) {
        Some(why) => audit.skipped(s, CLOCK_JUMP, why),
        None => {
            let note = format!("its wall clock 1 s back for {DOWN_S} s (libfaketime; its monotonic clock and the host's untouched)");
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
        if !d.lossy {
            return skip(audit, "its disk (`x-aftershock`) is not `lossy: true`: lossyfs, which slows its fsyncs, sits only under a lossy disk".into());
        }
        let note = format!(
            "every fsync on the disk at {} {FSYNC_LATENCY} for {DOWN_S} s",
            d.path
        );
        return audit.planned(&s.name, SLOW_DISK, cx.slow_disk(None), note);
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
        let file = cx.slow_disk(Some((volume, &suffix)));
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

    /// A slow disk: every fsync [`FSYNC_LATENCY`] for [`DOWN_S`] s. `volume`: a named volume
    /// made a lossy disk of [`DEFAULT_DISK_MB`], `(name, file name suffix)`; else the lossy
    /// disk the file declares.
    fn slow_disk(&self, volume: Option<(&str, &str)>) -> (String, String) {
        let s = &self.s.name;
        let name = format!("audit-slow-disk-{s}{}", volume.map_or("", |v| v.1));
        let summary = format!("Every fsync on `{s}`'s disk takes {FSYNC_LATENCY} for {DOWN_S} s (lossyfs): is it still served, and does it come back?");
        let mut t = self.head(&name, "gray-slow-disk", &summary, &[], 20);
        if let Some((v, _)) = volume {
            let compose = format!("compose = {}\n", self.compose);
            let disks = format!("compose_disks = {{ {s} = {{ volume = {v:?}, size_mb = {DEFAULT_DISK_MB}, lossy = true }} }}\n");
            t = t.replacen(&compose, &format!("{compose}{disks}"), 1);
        }
        let _ = write!(t, "\n[[fault]]\nname = \"slow-disk\"\nkind = \"disk-latency\"\ntarget = \"{s}\"\nlatency = \"{FSYNC_LATENCY}\"\nops = [\"fsync\"]\nat = \"4s\"\ndown_for = \"{DOWN_S}s\"\n");
        t.push_str("\n[[expect]]\nkind = \"fault-verified\"\nfault = \"slow-disk\"\n");
        t.push_str(&self.recovers("slow-disk", &[self.s]));
        (format!("{name}.toml"), t)
    }
}
