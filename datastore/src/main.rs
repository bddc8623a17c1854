//! `datastore`: check, repair or benchmark an append-only log (prints JSON).

use clap::{Parser, Subcommand};
use datastore::{check, repair, Durability, Log};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Check, repair or benchmark an aftershock datastore log")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify every record's checksum; exit 1 on corruption.
    Check {
        log: PathBuf,
        /// Threads (0: every core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Rewrite the log without its bad records.
    Repair { log: PathBuf },
    /// Serve the log on TCP (line protocol: `append P`, `dump`, `stats`).
    Serve {
        log: PathBuf,
        #[arg(long, default_value = "0.0.0.0:7000")]
        listen: String,
        /// `durable` (fsync before the answer; a failed fsync answers an error),
        /// `durable-retry` (a failed fsync is retried until it succeeds, then acknowledged:
        /// PostgreSQL before 2018), `durable-exit` (a failed fsync exits, status 70, and the
        /// next start recovers what is on the disk: PostgreSQL's PANIC since 2018) or
        /// `buffered` (answer at once).
        #[arg(long, default_value = "durable")]
        mode: String,
    },
    /// Write a log of `mb` MiB in `dir`, then check it with 1 thread and with every core.
    Bench {
        dir: PathBuf,
        #[arg(long, default_value_t = 256)]
        mb: usize,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("datastore: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, datastore::Error> {
    match command {
        Command::Check { log, threads } => {
            let report = check(&log, threads)?;
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            Ok(if report.corrupt.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Serve { log, listen, mode } => {
            let mode = match mode.as_str() {
                "durable" => Durability::Durable,
                "buffered" => Durability::Buffered,
                "durable-retry" => Durability::DurableRetry,
                "durable-exit" => Durability::DurableExit,
                other => {
                    eprintln!("datastore: --mode must be durable, durable-retry, durable-exit or buffered, not {other}");
                    return Ok(ExitCode::from(2));
                }
            };
            datastore::serve::serve(&listen, log, mode)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Repair { log } => {
            println!(
                "{}",
                serde_json::to_string(&repair(&log)?).unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { dir, mb } => {
            let path = dir.join("bench.log");
            let _ = std::fs::remove_file(&path);
            let (mut log, _) = Log::open(&path, Durability::Buffered)?;
            let payload = vec![0x5au8; 4088];
            while log.len() < (mb as u64) << 20 {
                log.append(&payload)?;
            }
            for threads in [1, 0] {
                let r = check(&path, threads)?;
                println!(
                    "{{\"threads\":{},\"bytes\":{},\"seconds\":{:.4},\"gb_per_s\":{:.3}}}",
                    r.threads, r.bytes, r.seconds, r.gb_per_s
                );
            }
            let _ = std::fs::remove_file(&path);
            Ok(ExitCode::SUCCESS)
        }
    }
}
