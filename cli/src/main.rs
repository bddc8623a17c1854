//! The `aftershock` command line (the CLI edge: the one module that prints): build images, run scenarios or the whole suite, render
//! reports, compute restart-collision odds, clean up. `--json` prints machine-readable output
//! on stdout (and hides progress); otherwise tables for people.

mod audit;
mod bench;
mod odds;
mod progress;

use crate::odds::Fleet;
use aftershock::admin::{self, suite, OutputEnv};
use aftershock::{Report, RunOptions, Written};
use aftershock_model::scenario;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Run scenario files and print their reports (HTML chart and JUnit next to report.json).
    Run {
        files: Vec<PathBuf>,
        /// Replay with this seed (every random choice comes from it).
        #[arg(long)]
        seed: Option<u64>,
        /// Print machine-readable JSON on stdout instead of tables.
        #[arg(long)]
        json: bool,
        /// When another run holds the machine-wide run lock, exit 2 at once (naming it)
        /// instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Run every scenario in a directory (default: scenarios/) and print the suite table.
    Suite {
        #[arg(default_value_os_t = admin::project_root().join("scenarios"))]
        dir: PathBuf,
        #[arg(long)]
        seed: Option<u64>,
        /// Run only share K of N of the files (`--partition 2/3`), for a CI matrix; join the
        /// shares with `aftershock report --merge DIR...`.
        #[arg(long, value_parser = parse_partition)]
        partition: Option<(usize, usize)>,
        /// Print machine-readable JSON on stdout instead of tables.
        #[arg(long)]
        json: bool,
        /// When another run holds the machine-wide run lock, exit 2 at once (naming it)
        /// instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Write report.html and junit.xml again from report.json files (or a demo report); with
    /// more than one, print the suite table of them.
    Report {
        /// Runs' report.json files (with --merge: directories to search for them).
        #[arg(required_unless_present = "demo")]
        files: Vec<PathBuf>,
        /// Join every report.json under the given directories (the shards of a suite) into
        /// one suite table, junit.xml and index.html.
        #[arg(long, conflicts_with = "demo")]
        merge: bool,
        /// Write a hand-made demo report instead (no Docker needed).
        #[arg(long, conflicts_with = "files")]
        demo: bool,
        /// Directory to write into (default: next to each report.json, or
        /// target/aftershock/demo); only with one report.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Odds that routine restarts take out a quorum: fleet of N nodes, clusters of k, each
    /// node restarting at a random minute of every interval, down for a while each time.
    Odds {
        #[arg(long, default_value_t = 200)]
        nodes: usize,
        #[arg(long, default_value_t = 3)]
        cluster_size: usize,
        /// How often each node restarts (a divisor of a day: 10m, 1h, 24h, …).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// How long one restart keeps a node down.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        restart: Duration,
        /// Simulated days for the Monte Carlo check (default: about 5 million draws).
        #[arg(long)]
        days: Option<u32>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
    /// Measure the harness on this machine, side by side with raw docker: kill spreads by
    /// method, bring-up and teardown, fault-apply latency, probe lag, per-run overhead.
    Bench {
        /// Print the measurements as JSON on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Repetitions of every figure (min / median / max over them). Two keep the whole
        /// bench within about 5 minutes on 2 cores; each more adds about 90 s.
        #[arg(long, default_value_t = 2)]
        reps: usize,
        /// Small and fast: N ≤ 10, 20 faults, 20 probes, a one-container run for the overhead.
        #[arg(long)]
        quick: bool,
        /// Only this: the bring-up of a Compose file to every service healthy, by aftershock
        /// and by `docker-compose` (Debian's package) side by side, `--reps` times each.
        #[arg(long)]
        compose: Option<std::path::PathBuf>,
    },
    /// Plan the catalogue of postmortems against a Compose file's architecture and run it:
    /// writes the scenario files it runs (edit them and run them again) and one suite report.
    Audit(audit::Args),
    /// Remove every container, network and volume any aftershock run left behind.
    Clean,
    /// Check scenario files without running them.
    Validate { files: Vec<PathBuf> },
    /// (Started by a run, in its own session.) Waits for the harness process `parent`
    /// (`pid@start time`) to die, then removes everything of run `run`.
    #[command(hide = true)]
    Watchdog {
        #[arg(long)]
        run: String,
        #[arg(long)]
        parent: String,
        /// A machine's engine the run placed services on (`URL`, or `URL#CERT_DIR` for https).
        #[arg(long = "machine")]
        machines: Vec<String>,
    },
}

/// The exit codes (README, "Exit codes").
pub mod exit {
    /// Every expectation passed.
    pub const PASSED: u8 = 0;
    /// An expectation failed or is unknown (the report says which and why).
    pub const NOT_PASSED: u8 = 1;
    /// The command could not do its work: a bad scenario file, no engine, an image that could
    /// not be built, the host lacks what the faults need, the run lock is taken and
    /// `--no-wait` was given.
    pub const ERROR: u8 = 2;
    /// Interrupted (Ctrl-C, SIGINT), after the run was torn down: 128 + SIGINT, as shells do.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Subcommand)]
enum ImagesAction {
    /// Build what is missing; a no-op when everything is up to date.
    Build,
}

/// A log writer that hides the values of every run's environment (`admin::hide_secrets`):
/// each event arrives whole in one write, so no value is split between two.
struct Hidden<W>(W);

impl<W: std::io::Write> std::io::Write for Hidden<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(aftershock::admin::hide_secrets(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Parses the arguments, runs the command, and gives the exit code.
fn main() -> std::process::ExitCode {
    // The library prints nothing itself: what it has to say (images built, the run's id and
    // seed, teardowns after an early exit) are tracing events, shown here on stderr; but an
    // insecure machine's line, which `insecure_header` prints itself (red on a terminal).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    "warn,aftershock=info,aftershock::insecure=off,zookeeper_client=error",
                )
            }),
        )
        .with_writer(|| Hidden(std::io::stderr()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let result = runtime.block_on(async {
        tokio::select! {
            r = command(cli.command) => r.map(|passed| if passed { exit::PASSED } else { exit::NOT_PASSED }),
            _ = tokio::signal::ctrl_c() => {
                eprintln!("aftershock: interrupted; tearing the run down");
                Ok(exit::INTERRUPTED)
            }
        }
    });
    // Dropping the runtime drops the cancelled run: its guard removes what it created.
    drop(runtime);
    match result {
        Ok(code) => {
            if code == exit::INTERRUPTED {
                eprintln!("aftershock: interrupted; torn down (exit {code})");
            }
            std::process::ExitCode::from(code)
        }
        Err(e) => {
            eprintln!(
                "aftershock: error: {}",
                aftershock::admin::hide_secrets(&format!("{e:#}"))
            );
            std::process::ExitCode::from(exit::ERROR)
        }
    }
}

/// Runs a command; `Ok(false)` when an expectation failed or is unknown.
async fn command(command: Command) -> Result<bool> {
    match command {
        Command::Images {
            action: ImagesAction::Build,
        } => build_images().await,
        Command::Run {
            files,
            seed,
            json,
            no_wait,
        } => run_scenarios(&files, seed, json, no_wait).await,
        Command::Suite {
            dir,
            seed,
            partition,
            json,
            no_wait,
        } => run_suite(&dir, seed, partition, json, no_wait).await,
        Command::Report {
            files,
            merge: true,
            out,
            ..
        } => merge_reports(&files, out.as_deref()),
        Command::Report {
            files, demo, out, ..
        } => write_reports(&files, demo, out.as_deref()),
        Command::Audit(args) => audit::run(args).await,
        Command::Odds {
            nodes,
            cluster_size,
            interval,
            restart,
            days,
            seed,
            json,
        } => {
            let fleet = Fleet {
                nodes,
                cluster_size,
                interval_minutes: (interval.as_secs() / 60) as u32,
                restart_seconds: restart.as_secs_f64(),
            };
            odds_of(&fleet, interval, days, seed, json)
        }
        Command::Bench {
            json,
            reps,
            quick,
            compose,
        } => bench::command(json, reps, quick, compose, &output_root()).await,
        Command::Clean => {
            let docker = admin::connect().await?;
            let removed = admin::remove_everything(&docker).await?;
            println!(
                "removed {} containers, {} networks, {} volumes, {} disks, the TLS keys of {} dead runs",
                removed.containers, removed.networks, removed.volumes, removed.disks, removed.keys
            );
            Ok(true)
        }
        Command::Watchdog {
            run,
            parent,
            machines,
        } => {
            let removed = admin::watchdog(&run, &parent, &machines).await?;
            eprintln!(
                "watchdog: run {run} removed: {} containers, {} networks, {} volumes, {} disks",
                removed.containers, removed.networks, removed.volumes, removed.disks
            );
            Ok(true)
        }
        Command::Validate { files } => {
            files.iter().try_for_each(|f| validate(f))?;
            Ok(true)
        }
    }
}

/// `validate`: the file planned, what its Compose file says is not acted on (stderr), ok.
fn validate(f: &std::path::Path) -> Result<()> {
    let plan = scenario::load(f)?;
    for note in &plan.notes {
        eprintln!("{}: {note}", f.display());
    }
    println!("{}: ok", f.display());
    Ok(())
}

/// `run`: the files in order, each report's table (or JSON).
async fn run_scenarios(
    files: &[PathBuf],
    seed: Option<u64>,
    json: bool,
    no_wait: bool,
) -> Result<bool> {
    if files.is_empty() {
        bail!("give at least one scenario file, e.g. `aftershock run scenarios/zookeeper-quorum-as-it-was.toml`");
    }
    let (runs, _) = run_files(files, seed, json, no_wait, false).await?;
    if json {
        print_json(&json!({ "passed": passed(&runs), "runs": runs_json(&runs) }))?;
    }
    Ok(passed(&runs))
}

/// `images build`: every project image, with its tag.
async fn build_images() -> Result<bool> {
    let docker = admin::connect().await?;
    let started = std::time::Instant::now();
    let set = admin::build_all_images(&docker, &output_root()).await?;
    println!("base      {}", set.base);
    for (name, tag) in &set.services {
        println!("{name:<9} {tag}");
    }
    println!("images ready in {:.1}s", started.elapsed().as_secs_f64());
    Ok(true)
}

/// `suite`: every scenario file of `dir`, then the suite table and files.
async fn run_suite(
    dir: &Path,
    seed: Option<u64>,
    partition: Option<(usize, usize)>,
    json: bool,
    no_wait: bool,
) -> Result<bool> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("read the scenario directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no *.toml scenario in {}", dir.display());
    }
    if let Some((k, n)) = partition {
        files = suite::partition(&files, k, n);
        if files.is_empty() {
            println!("share {k}/{n} of {} holds no scenario file", dir.display());
            return Ok(true);
        }
    }
    let (runs, every) = run_files(&files, seed, json, no_wait, true).await?;
    let reports: Vec<Report> = runs.iter().map(|(r, _)| r.clone()).collect();
    let suite_dir = output_root().join(format!("suite-{}", admin::new_run_id()));
    let files = suite::write(&suite_dir, &reports)
        .with_context(|| format!("write the suite files to {}", suite_dir.display()))?;
    if json {
        print_json(&json!({
            "passed": passed(&runs),
            "runs": runs_json(&runs),
            "every_run": runs_json(&every),
            "suite": files,
        }))?;
    } else {
        print!("{}", suite::table(&asks(&every)));
        println!("\n  charts, one per run:");
        for (r, w) in &every {
            println!("    {:<40} {}", r.scenario, w.html.display());
        }
        println!("  JUnit (all runs): {}", files.junit.display());
        println!("  index:            {}", files.index.display());
    }
    Ok(passed(&runs))
}

/// `report`: writes the HTML and JUnit of report.json files (and the demo) again.
fn write_reports(files: &[PathBuf], demo: bool, out: Option<&Path>) -> Result<bool> {
    let mut reports = vec![];
    for f in files {
        let report = Report::read(f).with_context(|| format!("read the report {}", f.display()))?;
        let dir = f
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        reports.push((report, dir));
    }
    if demo {
        reports.push((admin::demo_report(), output_root().join("demo")));
    }
    if out.is_some() && reports.len() > 1 {
        bail!("--out takes one report; each of several is written next to its report.json");
    }
    for (report, dir) in &reports {
        let dir = out.unwrap_or(dir);
        let written = report
            .write_to(dir)
            .with_context(|| format!("write the report into {}", dir.display()))?;
        println!("{}\n{}", written.html.display(), written.junit.display());
    }
    if reports.len() > 1 {
        let reports: Vec<Report> = reports.into_iter().map(|(r, _)| r).collect();
        print!("{}", suite::table(&reports));
    }
    Ok(true)
}

/// `report --merge`: the shards' reports joined into one suite table and suite files.
fn merge_reports(dirs: &[PathBuf], out: Option<&Path>) -> Result<bool> {
    let reports = suite::collect(dirs).context("collect the shards' report.json files")?;
    if reports.is_empty() {
        bail!("no report.json under {dirs:?}: give the directories the shards wrote (their output roots)");
    }
    let dir = out.map_or_else(
        || output_root().join(format!("suite-{}", admin::new_run_id())),
        Path::to_path_buf,
    );
    let files = suite::write(&dir, &reports)
        .with_context(|| format!("write the suite files to {}", dir.display()))?;
    print!("{}", suite::table(&reports));
    println!("  JUnit (all runs): {}", files.junit.display());
    println!("  index:            {}", files.index.display());
    Ok(reports.iter().all(Report::passed))
}

/// `K/N` with 1 ≤ K ≤ N.
fn parse_partition(text: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("`{text}`: a share is K/N with 1 ≤ K ≤ N, e.g. 2/3");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// `odds`: checks the interval is whole minutes, then [`print_odds`].
fn odds_of(
    fleet: &Fleet,
    interval: Duration,
    days: Option<u32>,
    seed: u64,
    json: bool,
) -> Result<bool> {
    if !interval.as_secs().is_multiple_of(60) {
        bail!(
            "the interval must be whole minutes (got {})",
            humantime::format_duration(interval)
        );
    }
    print_odds(fleet, days, seed, json)
}

/// `odds`: the closed form and the Monte Carlo for a fleet.
fn print_odds(fleet: &Fleet, days: Option<u32>, seed: u64, json: bool) -> Result<bool> {
    let exact = odds::closed_form(fleet)?;
    let draws_a_day =
        (fleet.clusters() * fleet.intervals_per_day() as usize * fleet.cluster_size).max(1);
    let days = days.unwrap_or((5_000_000 / draws_a_day).clamp(10, 1_000_000) as u32);
    let simulated = odds::monte_carlo(fleet, days, seed)?;
    if json {
        print_json(&json!({
            "fleet": fleet,
            "clusters": fleet.clusters(),
            "tolerated": fleet.tolerated(),
            "closed_form": exact,
            "monte_carlo": { "days": days, "seed": seed, "odds": simulated },
        }))?;
    } else {
        print!("{}", odds_text(fleet, exact, simulated, days, seed));
    }
    Ok(true)
}

/// Where the CLI's runs and builds keep their files: `$AFTERSHOCK_OUTPUT`, else the
/// aftershock workspace's `target/aftershock` (as `cargo run` from the workspace always had).
fn output_root() -> PathBuf {
    OutputEnv::from_process()
        .aftershock_output
        .unwrap_or_else(|| admin::project_root().join("target").join("aftershock"))
}

/// Runs the files, two at a time, and writes each report; prints each table unless `quiet`,
/// in the files' order. Two at a time: the run lock lets two runs that judge only seconds
/// and data share the machine and makes every other run wait for it to be alone, so
/// nothing timing-sensitive overlaps. With `again` (suites, audits), a scenario that came
/// out UNKNOWN (the harness could not tell: the machine stalled, an engine went silent) is
/// run once more, as the project's own tests do; a FAIL never is. Gives each scenario's last
/// run, and every run (an UNKNOWN first run, then its second).
async fn run_files(
    files: &[PathBuf],
    seed: Option<u64>,
    quiet: bool,
    no_wait: bool,
    again: bool,
) -> Result<(Vec<(Report, Written)>, Vec<(Report, Written)>)> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    // Validate everything first: a typo in the last file should not cost a run of the first.
    let scenarios = files
        .iter()
        .map(|f| scenario::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = RunOptions::default()
        .progress(progress::stderr(quiet))
        .output_dir(output_root())
        .no_wait(no_wait);
    options.seed = seed;
    options.watchdog = std::env::current_exe().ok();
    let options = &options;
    let asked: Vec<Vec<Report>> = stream::iter(&scenarios)
        .map(|s| ask(s, options, again))
        .buffered(2)
        .try_collect()
        .await?;
    let (mut last, mut every) = (vec![], vec![]);
    for runs in asked {
        for report in &runs {
            if !quiet {
                print!("{}", painted(&report.table()));
            }
            every.push((report.clone(), report.files())); // `run` wrote them
        }
        let report = runs.into_iter().last().expect("every scenario runs once");
        let written = report.files();
        last.push((report, written));
    }
    Ok((last, every))
}

/// Runs `s`, and once more when `again` and it came out UNKNOWN: every run's report.
async fn ask(s: &scenario::Plan, options: &RunOptions, again: bool) -> Result<Vec<Report>> {
    insecure_header(s);
    let first = aftershock::run(s, options).await?;
    if !(again && matches!(first.verdict, aftershock::Verdict::Unknown { .. })) {
        return Ok(vec![first]);
    }
    eprintln!(
        "{}: UNKNOWN in run {}: asking once more",
        s.name, first.run_id
    );
    let second = aftershock::run(s, options).await?;
    Ok(vec![first, second])
}

/// The run's header: a line per machine reached without TLS (`insecure = true`), red on a
/// terminal.
fn insecure_header(plan: &scenario::Plan) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    for (machine, url) in plan.insecure_machines() {
        let words = format!("INSECURE: machine `{machine}` is reached at {url} without TLS (insecure = true): whoever reaches that address controls its engine");
        eprintln!("{}", red(&words, tty));
    }
}

/// `text` in bold red when `tty`, else as it is.
fn red(text: &str, tty: bool) -> String {
    match tty {
        true => format!("\x1b[1;31m{text}\x1b[0m"),
        false => text.to_string(),
    }
}

/// A run's table for stdout, its INSECURE lines red on a terminal.
fn painted(table: &str) -> String {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let lines: Vec<String> = table
        .lines()
        .map(|l| match l.trim_start().starts_with("INSECURE") {
            true => red(l, tty),
            false => l.to_string(),
        })
        .collect();
    lines.join("\n") + "\n"
}

/// The reports of every run for the suite table: a scenario asked twice shows both runs, its
/// variant saying which ask each was.
fn asks(every: &[(Report, Written)]) -> Vec<Report> {
    let mut out: Vec<Report> = every.iter().map(|(r, _)| r.clone()).collect();
    for i in 1..out.len() {
        let unknown = matches!(out[i - 1].verdict, aftershock::Verdict::Unknown { .. });
        if unknown && out[i].scenario == out[i - 1].scenario && out[i].run_id != out[i - 1].run_id {
            out[i - 1].variant = format!("{} (1st ask)", out[i - 1].variant);
            out[i].variant = format!("{} (2nd ask)", out[i].variant);
        }
    }
    out
}

fn passed(runs: &[(Report, Written)]) -> bool {
    runs.iter().all(|(r, _)| r.passed())
}

/// The machine-readable summary of runs: verdicts, expectations, where the files are.
fn runs_json(runs: &[(Report, Written)]) -> serde_json::Value {
    runs.iter()
        .map(|(r, files)| {
            json!({
                "run_id": r.run_id,
                "scenario": r.scenario,
                "incident": r.incident,
                "variant": r.variant,
                "seed": r.seed,
                "verdict": r.verdict.label().to_lowercase(),
                "passed": r.passed(),
                "error": r.error,
                "platform": r.platform,
                "expectations": r.outcomes,
                "files": files,
            })
        })
        .collect()
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn odds_text(
    fleet: &Fleet,
    exact: Option<odds::Odds>,
    simulated: odds::Odds,
    days: u32,
    seed: u64,
) -> String {
    let mut out = format!(
        "{} nodes = {} clusters of {} (each survives {} down); every node restarts at a random \
minute of every {} min, down {} s each time\n",
        fleet.nodes,
        fleet.clusters(),
        fleet.cluster_size,
        fleet.tolerated(),
        fleet.interval_minutes,
        fleet.restart_seconds
    );
    let line = |name: &str, o: &odds::Odds| {
        format!(
            "  {name:<28} per cluster and interval {:.6}   per cluster-day {:.4}   any cluster per day {:.4}{}\n",
            o.per_interval,
            o.per_cluster_day,
            o.per_fleet_day,
            if o.per_fleet_day > 0.0 && o.per_fleet_day < 1.0 {
                format!(" (once every {:.1} days)", 1.0 / o.per_fleet_day)
            } else {
                String::new()
            }
        )
    };
    match &exact {
        Some(o) => out.push_str(&line("closed form", o)),
        None => out.push_str("  closed form                  none for clusters of 5 or more (the Monte Carlo answers)\n"),
    }
    out.push_str(&line(
        &format!("Monte Carlo ({days} days, seed {seed})"),
        &simulated,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written() -> Written {
        admin::demo_report().files()
    }

    #[test]
    fn a_scenario_asked_twice_shows_both_runs_in_the_table() {
        let mut first = admin::demo_report();
        first.verdict = aftershock::Verdict::Unknown {
            reason: "the load generator was 14.1 ms late".into(),
        };
        first.run_id = "run-1".into();
        let mut second = admin::demo_report();
        second.run_id = "run-2".into();
        let other = admin::demo_report();
        let every = [(first, written()), (second, written()), (other, written())];
        let reports = asks(&every);
        let variants: Vec<&str> = reports.iter().map(|r| r.variant.as_str()).collect();
        let v = &every[0].0.variant;
        assert_eq!(
            variants,
            [
                format!("{v} (1st ask)"),
                format!("{v} (2nd ask)"),
                v.to_string()
            ]
        );
        let table = suite::table(&reports);
        assert!(
            table.contains("1st ask") && table.contains("UNKNOWN"),
            "{table}"
        );
    }
}
