//! The audit's grid: one line per service, group or chain, its probe, then one column per
//! archetype, each cell planned, judged or skipped with a numbered reason (every reason said
//! once, below the grid), then what each planned file does. A cell no row speaks of says why
//! it does not apply.

use super::infer::Probe;
use super::{Outcome, Row};
use crate::scenario::file::Check;
use std::fmt::Write as _;

/// The archetypes, in the grid's order, with their short column names.
const COLUMNS: [(&str, &str); 10] = [
    (super::MAJORITY, "majority"),
    (super::ROLLING, "rolling"),
    (super::PARTIAL_PARTITION, "partial partition"),
    (super::POWER_CUT, "power cut"),
    (super::gray::SLOW_DISK, "slow disk"),
    (super::gray::CLOCK_JUMP, "clock jump"),
    (super::LEAK, "leak→OOM"),
    (super::LOST_WRITES, "lost writes"),
    (super::CACHE_LOSS, "cache loss"),
    (super::ENGINE_CRASH, "engine crash"),
];

/// Why a subject has no row for an archetype.
fn absent(subject: &str, archetype: &str) -> String {
    let whole = archetype == super::ENGINE_CRASH;
    let chain = archetype == super::CACHE_LOSS;
    let quorum = archetype == super::MAJORITY || archetype == super::ROLLING;
    if subject.starts_with("group ") {
        "not applicable to a group: planned on each member (its own line)".into()
    } else if subject == "every service" {
        "not applicable to every service at once: planned per service (their lines)".into()
    } else if subject.contains(" → ") {
        if quorum || whole {
            "not applicable to a chain: planned per service or group".into()
        } else {
            "not applicable to a chain: planned per service (their lines)".into()
        }
    } else if whole {
        "planned on every service at once (line `every service`)".into()
    } else if chain {
        "a chain is a front with its cache and database (line `every service` or `FRONT → CACHE, DB`)".into()
    } else {
        "not applicable".into()
    }
}

/// A probe in a few words: `healthcheck`, `tcp 80`, `http 8080`, `none`.
fn short(p: &Probe) -> String {
    if let (Some(kind), Some(_)) = (p.protocol, &p.check) {
        return kind.into();
    }
    match &p.check {
        Some(Check::Exec(_)) if p.why.starts_with("its declared") => "healthcheck".into(),
        Some(Check::Exec(_)) => "exec".into(),
        Some(Check::Tcp(port)) => format!("tcp {port}"),
        Some(Check::Http { port, .. }) => format!("http {port}"),
        None => "none".into(),
    }
}

/// The grid of `rows` (each service with its probe, from `probes`), the reasons numbered
/// once, and the planned files' notes.
pub fn grid(rows: &[Row], probes: &[(String, Probe)]) -> String {
    let mut subjects: Vec<&str> = vec![];
    for r in rows {
        if !subjects.contains(&r.subject.as_str()) {
            subjects.push(&r.subject);
        }
    }
    let mut reasons: Vec<String> = vec![];
    let mut number = |why: String| match reasons.iter().position(|r| *r == why) {
        Some(i) => i + 1,
        None => {
            reasons.push(why);
            reasons.len()
        }
    };
    let mut cells: Vec<Vec<String>> = vec![];
    for subject in &subjects {
        let mut line = vec![subject.to_string()];
        line.push(match probes.iter().find(|(s, _)| s == subject) {
            Some((_, p)) => format!("{} ({})", short(p), number(p.why.clone())),
            None => "·".into(),
        });
        for (archetype, _) in COLUMNS {
            let here: Vec<&Outcome> = rows
                .iter()
                .filter(|r| r.subject == *subject && r.archetype == archetype)
                .map(|r| &r.outcome)
                .collect();
            let planned = here
                .iter()
                .filter(|o| matches!(o, Outcome::Planned { .. }))
                .count();
            let cell = match here.first() {
                _ if planned > 1 => format!("planned ×{planned}"),
                _ if planned == 1 => "planned".into(),
                Some(Outcome::Judged(_)) => "judged".into(),
                Some(Outcome::Skipped(why)) => format!("– ({})", number(why.clone())),
                _ => format!("· ({})", number(absent(subject, archetype))),
            };
            line.push(cell);
        }
        cells.push(line);
    }
    let mut header = vec!["SERVICE / GROUP".to_string(), "probe".to_string()];
    header.extend(COLUMNS.iter().map(|(_, short)| short.to_string()));
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header)
                .chain(&cells)
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut t = String::new();
    for line in std::iter::once(&header).chain(&cells) {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(t, "{}", padded.join("  ").trim_end());
    }
    notes(&mut t, rows, &reasons);
    t
}

/// Below the grid: what each planned file does and how writes are judged, then the reasons.
fn notes(t: &mut String, rows: &[Row], reasons: &[String]) {
    let _ = writeln!(t, "(probe: how the service is observed; planned: a scenario file is written; judged: lost writes are checked in each run that hits the service; –: skipped; ·: not applicable; (n): the reason below)");
    let planned: Vec<String> = rows
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Planned { file, note } => Some(format!("  {file}: {note}")),
            Outcome::Judged(how) => Some(format!("  {} lost writes: {how}", r.subject)),
            Outcome::Skipped(_) => None,
        })
        .collect();
    if !planned.is_empty() {
        let _ = writeln!(
            t,
            "\nPlanned, and how writes are judged:\n{}",
            planned.join("\n")
        );
    }
    let mut idle: Vec<&str> = vec![];
    for r in rows {
        let busy = rows
            .iter()
            .any(|o| o.subject == r.subject && !matches!(o.outcome, Outcome::Skipped(_)));
        if !busy && !idle.contains(&r.subject.as_str()) {
            idle.push(&r.subject);
        }
    }
    if !idle.is_empty() {
        let _ = writeln!(
            t,
            "\nNothing found to run on {} (each cell of their lines says why).",
            idle.join(", ")
        );
    }
    if !reasons.is_empty() {
        let _ = writeln!(
            t,
            "\nReasons (a probe: why that one; a cell: why skipped or not applicable):"
        );
        for (i, why) in reasons.iter().enumerate() {
            let _ = writeln!(t, "  ({}) {why}", i + 1);
        }
    }
}
