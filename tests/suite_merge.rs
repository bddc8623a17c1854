//! A suite split across CI runners and joined again tells the same story as one whole run:
//! `suite --partition K/N` gives every scenario file to exactly one share, and
//! `report --merge` of the shares' report.json files (recorded from real runs in
//! `tests/fixtures/reports/`) gives the same verdicts, counts and JUnit as the whole. No Docker.

use aftershock::admin::suite;
use aftershock::Report;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    aftershock_tests::root().join("tests/fixtures/reports")
}

/// A fresh directory under the system's temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aftershock-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies each recorded run into the shard that `--partition` gives its scenario file.
fn shard(reports: &[Report], n: usize, into: &Path) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = reports
        .iter()
        .map(|r| PathBuf::from(format!("scenarios/{}.toml", r.scenario)))
        .collect();
    (1..=n)
        .map(|k| {
            let dir = into.join(format!("share-{k}"));
            for file in suite::partition(&files, k, n) {
                let r = &reports[files.iter().position(|f| *f == file).unwrap()];
                let run = dir.join(&r.run_id);
                std::fs::create_dir_all(&run).unwrap();
                std::fs::copy(r.dir().join("report.json"), run.join("report.json")).unwrap();
            }
            dir
        })
        .collect()
}

/// (scenario, verdict, expectations, failed, unknown) of each run, in order.
fn summary(reports: &[Report]) -> Vec<(String, String, usize, usize, usize)> {
    reports
        .iter()
        .map(|r| {
            let count = |label: &str| {
                r.outcomes
                    .iter()
                    .filter(|o| o.verdict.label() == label)
                    .count()
            };
            (
                r.scenario.clone(),
                r.verdict.label().to_string(),
                r.outcomes.len(),
                count("FAIL"),
                count("UNKNOWN"),
            )
        })
        .collect()
}

#[test]
fn the_merged_shares_equal_the_whole_suite() {
    let whole = suite::collect(&[fixtures()]).unwrap();
    assert!(whole.len() >= 3, "recorded reports: {}", whole.len());
    assert!(
        whole.iter().any(|r| !r.passed()) && whole.iter().any(Report::passed),
        "the fixtures mix passing and failing runs"
    );
    let tmp = scratch("merge");
    let shares = shard(&whole, 3, &tmp);
    let merged = suite::collect(&shares).unwrap();
    assert_eq!(summary(&merged), summary(&whole));
    let (a, b) = (tmp.join("whole"), tmp.join("merged"));
    let whole_files = suite::write(&a, &whole).unwrap();
    let merged_files = suite::write(&b, &merged).unwrap();
    // The same JUnit, whole or merged, but for where each run's page is.
    let junit = |path: PathBuf| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("<property name=\"report\""))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(junit(whole_files.junit), junit(merged_files.junit));
    assert_eq!(suite::table(&whole), suite::table(&merged));
    // The merged index links each run's page where the shard keeps it.
    let index = std::fs::read_to_string(merged_files.index).unwrap();
    for r in &merged {
        assert!(index.contains("../share-"), "{index}");
        assert!(index.contains(&r.run_id), "{index}");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn the_cli_merges_shares_and_exits_by_their_verdicts() {
    let tmp = scratch("merge-cli");
    let whole = suite::collect(&[fixtures()]).unwrap();
    let shares = shard(&whole, 2, &tmp);
    let out = std::process::Command::new(aftershock_tests::cli_binary())
        .arg("report")
        .arg("--merge")
        .args(&shares)
        .arg("--out")
        .arg(tmp.join("suite"))
        .output()
        .expect("run the CLI");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed run in the shares: exit 1\n{stdout}"
    );
    let passing = whole.iter().filter(|r| r.passed()).count();
    assert!(
        stdout.contains(&format!("{passing} of {} runs pass", whole.len())),
        "{stdout}"
    );
    assert!(tmp.join("suite/junit.xml").is_file() && tmp.join("suite/index.html").is_file());
    std::fs::remove_dir_all(&tmp).unwrap();
}
