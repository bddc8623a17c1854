//! toy-api: the small HTTP API that aftershock's scenarios break.
//!
//! It models the real-time pipeline of a 2016 postmortem that read its configuration from a
//! 3-node ZooKeeper ensemble and stayed broken after a quorum loss until a "cold start". This
//! file reads the environment ([`settings`]), starts the HTTP server at once ([`http`]) and the
//! ZooKeeper side in the background ([`zk_config`]), and stops on SIGTERM or Ctrl-C.

mod http;
mod settings;
mod zk_config;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use crate::settings::Settings;
use crate::zk_config::{ZkConfig, ZkSettings};

#[tokio::main]
async fn main() -> ExitCode {
    let started_at = Instant::now();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("toy-api: bad configuration: {err:#}");
            return ExitCode::from(2);
        }
    };

    let listener = match tokio::net::TcpListener::bind(settings.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("toy-api: cannot listen on {}: {err}", settings.listen);
            return ExitCode::from(1);
        }
    };
    info!(
        listen = %settings.listen,
        zk = %settings.zk_connect,
        config_path = %settings.config_path,
        session_timeout_ms = settings.session_timeout.as_millis() as u64,
        on_expiry = %settings.on_expiry,
        "toy-api starting"
    );

    let disconnect_grace = settings.disconnect_grace;
    let zk = ZkConfig::spawn(ZkSettings {
        connect: settings.zk_connect,
        config_path: settings.config_path,
        session_timeout: settings.session_timeout,
        on_expiry: settings.on_expiry,
    });
    let app = http::router(http::AppState {
        zk,
        started_at,
        disconnect_grace,
    });

    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        error!(error = %err, "http server failed");
        return ExitCode::from(1);
    }
    info!("toy-api stopped");
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM (what `docker stop` sends; PID 1 would otherwise ignore it) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C: shutting down"),
        () = term => info!("SIGTERM: shutting down"),
    }
}
