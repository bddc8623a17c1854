//! The Compose corpus (tests/fixtures/compose-corpus/, real files from public projects, their
//! sources in its README): every file is planned as `aftershock audit --plan-only` plans it
//! (the Compose file read, the archetypes planned, every scenario file checked). Pure: no
//! Docker, no images.

use aftershock_model::audit::{self, Budgets};
use aftershock_model::scenario;
use std::path::{Path, PathBuf};

/// Files refused, and the words their refusal must hold. Three need the `.env` their project
/// tells its users to write (`docker compose` refuses them without it too); mailcow waits for
/// a service to be healthy by its image's own health check, which the plan cannot see.
const REFUSED: &[(&str, &str)] = &[
    ("firefly-iii", "compose.yaml:9:5: service `app`: env_file"),
    ("hoppscotch", "compose.yaml:39:5: service `hoppscotch-backend`: env_file"),
    ("redash", "compose.yaml:10:3: service `server`: env_file"),
    (
        "mailcow",
        "compose.yaml:70:7: service `clamd-mailcow`: depends on `unbound-mailcow` being healthy, but `unbound-mailcow` has no healthcheck",
    ),
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

/// The audit's plan-only path: the Compose file, its archetypes, each scenario file checked.
fn plan_only(compose: &Path) -> Result<usize, String> {
    let topology = scenario::load_compose(compose).map_err(|e| e.to_string())?;
    let plan = audit::plan(compose, &topology, Budgets::default());
    for (name, text) in &plan.scenarios {
        let file = compose.with_file_name(name).display().to_string();
        scenario::parse(&file, text).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(plan.scenarios.len())
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
        match (plan_only(file), expected) {
            (Ok(_), None) => planned += 1,
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
