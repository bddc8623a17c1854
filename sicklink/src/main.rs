//! `sicklink --upstream IP:PORT [--listen ADDR] [toxics…]`: listens (port 0: any free port),
//! says `listening ADDR` on stdout once it accepts, and forwards every connection to the
//! upstream through the toxics until its stdin closes (the harness that started it holds the
//! other end: when the harness goes, so does the proxy) or it is killed.

use clap::Parser;
use sicklink::{Slicer, Stream, Toxics};
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(Parser)]
#[command(about = "A TCP proxy with Toxiproxy's toxics")]
struct Cli {
    /// Where to listen (port 0: a free port, printed).
    #[arg(long, default_value = "0.0.0.0:0")]
    listen: SocketAddr,
    /// Where to forward.
    #[arg(long)]
    upstream: SocketAddr,
    /// upstream (client → server), downstream (server → client) or both.
    #[arg(long, default_value = "downstream")]
    stream: Stream,
    #[arg(long, value_parser = humantime::parse_duration)]
    latency: Option<Duration>,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    jitter: Duration,
    /// Bytes per second.
    #[arg(long)]
    bandwidth: Option<u64>,
    /// Slice size in bytes (with --slice-variation and --slice-delay).
    #[arg(long)]
    slice_average: Option<usize>,
    #[arg(long, default_value_t = 0)]
    slice_variation: usize,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    slice_delay: Duration,
    /// Bytes.
    #[arg(long)]
    limit_data: Option<u64>,
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    #[arg(long, value_parser = humantime::parse_duration)]
    reset_peer: Option<Duration>,
    #[arg(long, value_parser = humantime::parse_duration)]
    slow_close: Option<Duration>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl Cli {
    fn toxics(&self) -> Toxics {
        Toxics {
            stream: self.stream,
            latency: self.latency,
            jitter: self.jitter,
            bandwidth: self.bandwidth,
            slicer: self.slice_average.map(|average| Slicer {
                average,
                variation: self.slice_variation,
                delay: self.slice_delay,
            }),
            limit_data: self.limit_data,
            timeout: self.timeout,
            reset_peer: self.reset_peer,
            slow_close: self.slow_close,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let listener = match tokio::net::TcpListener::bind(cli.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sicklink: listen on {}: {e}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening {local}").and_then(|_| out.flush());
    let serving = sicklink::serve(listener, cli.upstream, cli.toxics(), cli.seed);
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        _ = serving => {}
        _ = stdin_closed => {}
    }
    ExitCode::SUCCESS
}
