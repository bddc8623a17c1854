//! `aftershock bench`: runs the library's bench (`aftershock::admin::bench`), writes `bench.json` under the output root,
//! prints the table (or the JSON).

use aftershock::admin::{self, BenchOptions as Options};
use anyhow::{bail, Context, Result};
use std::path::Path;

pub(super) async fn command(
    json: bool,
    reps: usize,
    quick: bool,
    compose: Option<std::path::PathBuf>,
    output: &Path,
) -> Result<bool> {
    if reps == 0 {
        bail!("--reps must be at least 1");
    }
    if let Some(file) = compose {
        return self::compose(&file, json, reps, output).await;
    }
    let options = Options {
        reps,
        quick,
        overhead_runs: 1,
        output: output.to_path_buf(),
    };
    let measured = admin::bench(&options).await?;
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "bench": measured,
        "targets": measured.targets(),
    }))?;
    let dir = output.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let file = dir.join("bench.json");
    std::fs::write(&file, &text).with_context(|| format!("write {}", file.display()))?;
    if json {
        println!("{text}");
    } else {
        print!("{}", measured.table());
        println!("\n(JSON: {})", file.display());
    }
    let problems = measured.problems();
    for p in &problems {
        eprintln!("aftershock bench: incomplete: {p}");
    }
    Ok(problems.is_empty())
}

/// `aftershock bench --compose FILE`: the Compose bring-up side by side, written to
/// `bench/compose.json` under the output root; true when the ratio meets its target.
async fn compose(file: &Path, json: bool, reps: usize, output: &Path) -> Result<bool> {
    let file = std::fs::canonicalize(file)
        .with_context(|| format!("the Compose file {}", file.display()))?;
    let measured = admin::bench_compose(&file, reps, output).await?;
    let text = serde_json::to_string_pretty(&measured)?;
    let dir = output.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join("compose.json");
    std::fs::write(&path, &text).with_context(|| format!("write {}", path.display()))?;
    match json {
        true => println!("{text}"),
        false => print!("{}\n(JSON: {})\n", measured.table(), path.display()),
    }
    Ok(measured.ratio <= measured.target)
}
