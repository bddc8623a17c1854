//! `aftershock bench --quick --reps 1 --json` against real containers (N ≤ 10, one repetition):
//! every section is present, every figure a finite number, and nothing of its runs is left.

use std::process::Command;

#[test]
fn a_quick_bench_gives_complete_json_and_leaves_nothing() {
    let before = bench_resources();
    let started = std::time::Instant::now();
    let out = Command::new(aftershock_tests::cli_binary())
        .args(["bench", "--quick", "--reps", "1", "--json"])
        .output()
        .expect("run aftershock bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    println!("bench took {:.1}s", started.elapsed().as_secs_f64());
    let bench = &json["bench"];
    for section in [
        "machine",
        "kill",
        "lifecycle",
        "fault_apply",
        "probe_lag",
        "overhead",
    ] {
        assert!(!bench[section].is_null(), "section {section} missing");
    }
    let sizes: Vec<u64> = bench["kill"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [2, 3, 10]);
    for row in bench["kill"].as_array().unwrap() {
        for method in ["pidfd", "api", "cli"] {
            for figure in ["exit_spread_ms", "signal_spread_ms", "die_spread_ms"] {
                let s = &row[method][figure];
                for k in ["min", "median", "max"] {
                    let v = s[k].as_f64().unwrap_or(f64::NAN);
                    assert!(
                        v.is_finite() && v >= 0.0,
                        "kill N={} {method} {figure}.{k}: {s}",
                        row["n"]
                    );
                }
            }
        }
    }
    let mut nulls = vec![];
    find_nulls(bench, "bench", &mut nulls);
    assert!(nulls.is_empty(), "missing figures: {nulls:?}");
    assert!(!json["targets"].as_array().unwrap().is_empty());
    // The bench's runs carry these scenario names: none of the containers, networks or
    // volumes this bench created stays (what an earlier run left is not this one's). The kill
    // section's containers have no network, so the bench no longer churns fifty containers of
    // one network: what made Docker 20.10 keep a network with "active endpoints" after a run,
    // moby#42119.
    let left: Vec<String> = bench_resources().difference(&before).cloned().collect();
    assert!(left.is_empty(), "the bench left {left:?}");
    println!(
        "left nothing (checked in {:.1}s)",
        started.elapsed().as_secs_f64()
    );
}

/// Every container, network and volume of the bench's scenarios now, as `kind scenario id`.
fn bench_resources() -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for scenario in ["bench", "bench-up", "bench-raw", "bench-overhead"] {
        let filter = format!("label=aftershock.scenario={scenario}");
        for what in [
            &["ps", "-aq"][..],
            &["network", "ls", "-q"],
            &["volume", "ls", "-q"],
        ] {
            for id in docker(&[what, &["--filter", &filter]].concat()).lines() {
                found.insert(format!("{} {scenario} {id}", what[0]));
            }
        }
    }
    found
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn find_nulls(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Null => out.push(path.to_string()),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                find_nulls(x, &format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                find_nulls(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}
