//! The `aftershock` command line: build images, run scenarios or the whole suite, clean up.

use aftershock::check::Verdict;
use aftershock::engine::{self, cleanup, images};
use aftershock::report::{render, Report};
use aftershock::{scenario, RunOptions};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "aftershock",
    version,
    about = "Replays real outages against real containers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build every image locally (debootstrap + the Engine API; nothing is pulled).
    Images {
        #[command(subcommand)]
        action: ImagesAction,
    },
    /// Run scenario files and print their reports.
    Run {
        files: Vec<PathBuf>,
        /// Replay with this seed (every random choice comes from it).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run every scenario in a directory (default: scenarios/) and print the suite table.
    Suite {
        #[arg(default_value_os_t = images::project_root().join("scenarios"))]
        dir: PathBuf,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Remove every container, network and volume any aftershock run left behind.
    Clean,
    /// Check scenario files without running them.
    Validate { files: Vec<PathBuf> },
}

#[derive(Subcommand)]
enum ImagesAction {
    /// Build what is missing; a no-op when everything is up to date.
    Build,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,zookeeper_client=error")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let result = runtime.block_on(async {
        tokio::select! {
            r = command(cli.command) => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("aftershock: interrupted; tearing the run down");
                Ok(false)
            }
        }
    });
    // Dropping the runtime drops the cancelled run: its guard removes what it created.
    drop(runtime);
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("aftershock: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs a command; `Ok(false)` when an expectation failed or is unknown.
async fn command(command: Command) -> Result<bool> {
    match command {
        Command::Images {
            action: ImagesAction::Build,
        } => {
            let docker = engine::connect().await?;
            let started = std::time::Instant::now();
            let set = images::ensure(&docker).await?;
            println!("base      {}", set.base);
            for (name, tag) in &set.services {
                println!("{name:<9} {tag}");
            }
            println!("images ready in {:.1}s", started.elapsed().as_secs_f64());
            Ok(true)
        }
        Command::Run { files, seed } => {
            if files.is_empty() {
                bail!("give at least one scenario file, e.g. `aftershock run scenarios/zookeeper-quorum-as-it-was.toml`");
            }
            let reports = run_files(&files, seed).await?;
            Ok(reports.iter().all(Report::passed))
        }
        Command::Suite { dir, seed } => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("read the scenario directory {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            if files.is_empty() {
                bail!("no *.toml scenario in {}", dir.display());
            }
            let reports = run_files(&files, seed).await?;
            print!("{}", suite_table(&reports));
            Ok(reports.iter().all(Report::passed))
        }
        Command::Clean => {
            let docker = engine::connect().await?;
            let removed = cleanup::remove_labelled(&docker, None).await?;
            println!(
                "removed {} containers, {} networks, {} volumes",
                removed.containers, removed.networks, removed.volumes
            );
            Ok(true)
        }
        Command::Validate { files } => {
            for f in &files {
                scenario::load(f)?;
                println!("{}: ok", f.display());
            }
            Ok(true)
        }
    }
}

async fn run_files(files: &[PathBuf], seed: Option<u64>) -> Result<Vec<Report>> {
    // Validate everything first: a typo in the last file should not cost a run of the first.
    let scenarios = files
        .iter()
        .map(|f| scenario::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut reports = vec![];
    for s in &scenarios {
        let report = aftershock::run(s, &RunOptions { seed }).await?;
        print!("{}", report.table());
        reports.push(report);
    }
    Ok(reports)
}

/// One row per run: incident, variant, key timings against budgets, verdict.
fn suite_table(reports: &[Report]) -> String {
    let rows: Vec<[String; 5]> = reports
        .iter()
        .map(|r| {
            let timings = r
                .outcomes
                .iter()
                .filter(|o| o.measured_seconds.is_some())
                .map(|o| format!("{} [{}]", o.measured, o.budget))
                .collect::<Vec<_>>()
                .join("; ");
            let failed = r
                .outcomes
                .iter()
                .filter(|o| o.verdict != Verdict::Pass)
                .count();
            [
                r.incident.clone().unwrap_or_else(|| r.scenario.clone()),
                r.variant.clone(),
                format!(
                    "{}/{} expectations hold",
                    r.outcomes.len() - failed,
                    r.outcomes.len()
                ),
                timings,
                r.verdict.label().to_string(),
            ]
        })
        .collect();
    format!(
        "\n== suite\n{}",
        render(
            [
                "incident",
                "variant",
                "observed",
                "key timings [budget]",
                "verdict"
            ],
            &rows
        )
    )
}
