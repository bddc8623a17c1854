//! toy-api: the small HTTP API that aftershock's scenarios break.
//!
//! It models the real-time pipeline of a 2016 postmortem that read its configuration from a
//! 3-node ZooKeeper ensemble and stayed broken after a quorum loss until a "cold start"
//! ([`zk_config`], optional: `TOY_ZK`), and the API of a 2017 postmortem that read through a
//! memcached cache in front of its database ([`items`], optional: `TOY_PG`), and the DNS
//! resolver of a 2017 postmortem that measured round trips with the wall clock ([`resolver`],
//! optional: `TOY_CLOCK`). This file reads
//! the environment ([`settings`]), starts the HTTP server at once ([`http`]) and the
//! ZooKeeper side in the background, and stops on SIGTERM or Ctrl-C.

mod cache;
mod db;
mod http;
mod items;
mod resolver;
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
        zk = settings.zk_connect.as_deref().unwrap_or("-"),
        pg = settings.items.as_ref().map_or("-", |i| i.pg.as_str()),
        memcached = settings.items.as_ref().map_or(String::new(), |i| i.memcached.join(",")),
        cache_mode = settings.items.as_ref().map_or("-", |i| i.mode.as_str()),
        clock = settings.clock.map_or("-", |c| c.as_str()),
        config_path = %settings.config_path,
        session_timeout_ms = settings.session_timeout.as_millis() as u64,
        on_expiry = %settings.on_expiry,
        "toy-api starting"
    );

    let disconnect_grace = settings.disconnect_grace;
    let zk = settings.zk_connect.map(|connect| {
        ZkConfig::spawn(ZkSettings {
            connect,
            config_path: settings.config_path,
            session_timeout: settings.session_timeout,
            on_expiry: settings.on_expiry,
        })
    });
    let items = settings.items.as_ref().map(items::Items::new);
    let resolver = settings.clock.map(resolver::Resolver::spawn);
    let app = http::router(http::AppState {
        zk,
        items,
        resolver,
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
