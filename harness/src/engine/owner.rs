//! Who owns a run's resources: a process identity (`<pid>@<start time>`, written into the
//! `aftershock.pid` label, the disk registry and the watchdog's arguments) and whether that
//! process still runs. Below `cleanup`, `disk` and `watchdog`, which all ask it.

/// The identity of this process as written into the `aftershock.pid` label: `<pid>@<start time>`,
/// so a recycled PID is not mistaken for a live run.
pub fn process_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime) counts after the command, which is in parentheses.
    let after = stat.rsplit_once(')')?.1;
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid}@{start}"))
}

/// Whether the process of an identity from [`process_identity`] still runs (a zombie, dead
/// but not yet waited for by its parent, does not).
pub fn alive(identity: &str) -> bool {
    let pid = identity
        .split('@')
        .next()
        .and_then(|p| p.parse::<u32>().ok());
    let Some(pid) = pid else {
        return false;
    };
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .map(|(_, a)| a.trim_start().chars().next());
        matches!(state, Some(Some('Z' | 'X')))
    });
    !zombie && process_identity(pid).as_deref() == Some(identity)
}
