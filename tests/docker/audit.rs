//! `aftershock audit` on the example architecture (`examples/compose/shop.compose.yml`): every
//! applicable archetype runs, the exit code is 0 or 1 (never 2 on a valid file), the scenario
//! files it ran are left to edit, one suite report is written, and nothing else is left behind.

use aftershock_tests::{cli_binary, root};
use std::process::Command;
use std::time::Instant;

#[test]
fn auditing_the_example_runs_every_applicable_archetype_and_leaves_nothing_behind() {
    let out = std::env::temp_dir().join(format!("aftershock-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let run = Command::new(cli_binary())
        .current_dir(root())
        .args(["audit", "examples/compose/shop.compose.yml", "--out"])
        .arg(&out)
        .output()
        .expect("run aftershock audit");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("{stdout}");
    println!("audit took {:.1}s", started.elapsed().as_secs_f64());
    let code = run.status.code();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {stderr}");
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "audit-engine-crash-live-restore.toml",
            "audit-engine-crash.toml",
            "audit-leak-cache.toml",
            "audit-leak-db.toml",
            "audit-majority-restart-cache.toml",
            "audit-power-cut-db.toml",
            "audit-rolling-restart-cache.toml"
        ]
    );
    for archetype in [
        "majority-restart",
        "rolling-restart",
        "power-cut",
        "leak",
        "engine-crash",
    ] {
        assert!(
            stdout.contains(archetype),
            "{archetype} not in the suite table"
        );
    }
    assert!(
        !stderr.contains("engine crash"),
        "planned, not skipped: {stderr}"
    );
    assert!(stdout.contains("index:"), "one suite report");
    for file in &files {
        let label = format!(
            "label=aftershock.scenario={}",
            file.trim_end_matches(".toml")
        );
        for kind in [
            &["ps", "-aq"][..],
            &["network", "ls", "-q"],
            &["volume", "ls", "-q"],
        ] {
            let left = Command::new("docker")
                .args(kind)
                .args(["--filter", &label])
                .output()
                .unwrap();
            assert!(
                left.stdout.is_empty(),
                "{file}: `docker {kind:?}` finds leftovers"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
