//! `aftershock audit COMPOSE_FILE` (or `-f a.yml -f b.yml`): plans the archetypes that apply ([`aftershock_model::audit`]), writes
//! their scenario files, checks each, and runs them as a suite.

use aftershock_model::audit::{self, Budgets};
use aftershock_model::scenario;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The Compose file of the architecture.
    compose: Option<PathBuf>,
    /// A Compose file, again for each more (`-f compose.yaml -f compose.override.yaml`): laid
    /// over each other in order, as `docker compose -f … -f …` does.
    #[arg(short = 'f', long = "file")]
    files: Vec<PathBuf>,
    /// An env file read in place of the project's `.env`, again for each more (a later one's
    /// values over an earlier's), as `docker compose --env-file`.
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    /// A profile whose services start too, again for each more (`*`: all), as `docker compose
    /// --profile`; none: services without `profiles` (and `COMPOSE_PROFILES`'s).
    #[arg(long = "profile")]
    profiles: Vec<String>,
    /// Where to write the scenario files (default: `<output root>/audit-<id>/`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only write and check the scenario files; run nothing.
    #[arg(long)]
    plan_only: bool,
    /// Budget: a replica's health check passes again within this of the heal.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    recover_within: Duration,
    /// Budget: the OOM killer acts within this of the leak starting.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    oom_within: Duration,
    #[arg(long)]
    seed: Option<u64>,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> Result<bool> {
    let given: Vec<&PathBuf> = args.compose.iter().chain(&args.files).collect();
    anyhow::ensure!(
        !given.is_empty(),
        "name the Compose file (`aftershock audit compose.yaml`, or `-f a.yml -f b.yml`)"
    );
    let compose = given
        .iter()
        .map(|f| {
            std::fs::canonicalize(f).with_context(|| format!("the Compose file {}", f.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let paths: Vec<&std::path::Path> = compose.iter().map(|p| p.as_path()).collect();
    let env_files = args
        .env_files
        .iter()
        .map(|f| {
            std::fs::canonicalize(f).with_context(|| {
                format!(
                    "--env-file {}: cannot be read (check the path)",
                    f.display()
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let options = scenario::compose::Options {
        env_files,
        profiles: args.profiles.clone(),
    };
    let services = scenario::load_composes_with(&paths, &options)?;
    let budgets = Budgets {
        recover: args.recover_within,
        oom: args.oom_within,
    };
    let plan = audit::plan_files_with(&paths, &options, &services, budgets);
    let dir = args.out.unwrap_or_else(|| {
        super::output_root().join(format!("audit-{}", aftershock::admin::new_run_id()))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, text) in &plan.scenarios {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        scenario::load(&path)?;
    }
    for note in &services.notes {
        eprintln!("aftershock audit: {note}");
    }
    if !args.json {
        print!("{}", plan.table());
    }
    eprintln!(
        "aftershock audit: {} scenario files in {} (edit them and run again with `aftershock run`)",
        plan.scenarios.len(),
        dir.display()
    );
    if args.plan_only || plan.scenarios.is_empty() {
        return Ok(true);
    }
    super::run_suite(&dir, args.seed, None, args.json, false).await
}
