//! The Compose corpus (tests/fixtures/compose-corpus/, real files from public projects, their
//! sources in its README): every file is planned as `aftershock audit --plan-only` plans it
//! (the Compose file read, the archetypes planned, every scenario file checked). Pure: no
//! Docker, no images.

use aftershock_model::audit::{self, Budgets};
use aftershock_model::scenario;
use std::path::{Path, PathBuf};

/// Files refused, and the words their refusal must hold (none since issue 21's held-out
/// fixes; kept for the next file that is).
const REFUSED: &[(&str, &str)] = &[];

/// Files that plan with a warning a run stops on (listed with the plan), and the words it must
/// hold: an `env_file` (`.env`) their projects tell users to write first, a required variable
/// of a container left unset (`docker compose` refuses them without these too).
const WARNED: &[(&str, &str)] = &[
    (
        "firefly-iii",
        "compose.yaml:9: service `app`: warning: `env_file`: `.env`",
    ),
    (
        "hoppscotch",
        "compose.yaml:39: service `hoppscotch-backend`: warning: `env_file`: `./.env`",
    ),
    (
        "redash",
        "compose.yaml:10: service `server`: warning: `env_file`: `.env`",
    ),
    ("authentik", "compose.yaml:16: service `postgresql`: warning: `environment.POSTGRES_PASSWORD`: PG_PASS is unset"),
    ("calcom", "compose.yaml:19: service `database`: warning: `env_file`: `.env`"),
    ("graylog-open-core", "compose.yaml:28: service `datanode`: warning: `environment.GRAYLOG_DATANODE_PASSWORD_SECRET`"),
    ("immich", "compose.yaml:23: service `immich-server`: warning: `env_file`: `.env`"),
    ("rocketchat", "compose.yaml:295: service `traefik`: warning: `command`: LETSENCRYPT_EMAIL is unset"),
];

/// Every corpus file (`<dir>/compose.yaml`), sorted.
fn corpus() -> Vec<PathBuf> {
    let dir = aftershock_tests::root().join("tests/fixtures/compose-corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("compose.yaml"))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The audit's plan-only path: the Compose file, its archetypes, each scenario file checked;
/// the warnings a run stops on.
fn plan_only(compose: &Path) -> Result<Vec<String>, String> {
    let topology = scenario::load_compose(compose).map_err(|e| e.to_string())?;
    let plan = audit::plan(compose, &topology, Budgets::default());
    for (name, text) in &plan.scenarios {
        let file = compose.with_file_name(name).display().to_string();
        scenario::parse(&file, text).map_err(|e| format!("{name}: {e}"))?;
    }
    let blocking = scenario::values::Note::blocking(&topology.notes);
    Ok(blocking.map(|n| n.to_string()).collect())
}

#[test]
fn every_corpus_file_plans() {
    let files = corpus();
    assert!(files.len() >= 30, "the corpus has {} files", files.len());
    let mut wrong = vec![];
    let mut planned = 0;
    for file in &files {
        let dir = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy();
        let expected = REFUSED.iter().find(|(d, _)| *d == dir).map(|(_, w)| *w);
        let warned = WARNED.iter().find(|(d, _)| *d == dir).map(|(_, w)| *w);
        match (plan_only(file), expected) {
            (Ok(warnings), None) => {
                planned += 1;
                let said = |w: &str| warnings.iter().any(|n| n.contains(w));
                match warned {
                    Some(w) if !said(w) => {
                        wrong.push(format!("{dir}: no warning with `{w}` in {warnings:?}"))
                    }
                    None if !warnings.is_empty() => {
                        wrong.push(format!("{dir}: warned {warnings:?}"))
                    }
                    _ => {}
                }
            }
            (Err(e), Some(words)) if e.contains(words) => {}
            (Ok(_), Some(words)) => {
                wrong.push(format!("{dir}: planned, expected a refusal with `{words}`"))
            }
            (Err(e), _) => wrong.push(format!("{dir}: {e}")),
        }
    }
    eprintln!("compose corpus: {planned} of {} files plan", files.len());
    assert!(
        wrong.is_empty(),
        "{} of {} files:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
}
