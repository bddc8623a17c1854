//! HTTP routes of the toy API and the state they share.
//!
//! The handlers never wait on ZooKeeper: they map the latest [`Snapshot`] of the configuration
//! holder to a status code and a JSON body. The mapping is in plain functions
//! ([`realtime_response`], [`status_body`]) so it is unit-tested without a server.
//!
//! Routes:
//! - `GET /healthz`: 200 `{"status":"ok"}` whenever the process is up.
//! - `GET /realtime`: the configuration, 200 only while the session is connected and the config
//!   is known (or the connection was lost less than the grace period ago); 503 with the reason otherwise.
//! - `GET /status`: 200, what the process knows about its session and configuration.
//! - `GET /item/{id}`: the cache-aside item store ([`crate::items`]), when `TOY_PG` is set.
//! - `GET /resolve`: one lookup of the resolver ([`crate::resolver`]), when `TOY_CLOCK` is set:
//!   200 with the upstream and the round trip measured, 503 SERVFAIL when the lookup failed.
//!
//! Each read path is optional: without `TOY_ZK`, `/realtime` and `/status` answer 503
//! "not configured"; without `TOY_PG`, `/item/{id}` does.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::items::Items;
use crate::resolver::Resolver;
use crate::settings::ExpiryPolicy;
use crate::zk_config::{ConfigState, SessionStatus, Snapshot, ZkConfig};

/// State shared by all handlers: the handle of each configured read path.
#[derive(Clone)]
pub struct AppState {
    /// The ZooKeeper-backed configuration (`TOY_ZK`).
    pub zk: Option<ZkConfig>,
    /// The cache-aside item store (`TOY_PG`).
    pub items: Option<Items>,
    /// The resolver (`TOY_CLOCK`).
    pub resolver: Option<Resolver>,
    pub started_at: Instant,
    /// How long a lost connection is tolerated while the last configuration is served.
    pub disconnect_grace: Duration,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/realtime", get(realtime))
        .route("/status", get(status))
        .route("/item/{id}", get(item))
        .route("/resolve", get(resolve))
        .with_state(state)
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

fn not_configured(what: &str, variable: &str) -> Response {
    let body = json!({"error": format!("{what} is not configured (set {variable})")});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn realtime(State(state): State<AppState>) -> Response {
    let Some(zk) = &state.zk else {
        return not_configured("zookeeper", "TOY_ZK");
    };
    let (code, body) = realtime_response(&zk.snapshot(), state.disconnect_grace, Instant::now());
    (code, Json(body)).into_response()
}

async fn status(State(state): State<AppState>) -> Response {
    let Some(zk) = &state.zk else {
        return not_configured("zookeeper", "TOY_ZK");
    };
    Json(status_body(
        &zk.snapshot(),
        state.started_at,
        Instant::now(),
    ))
    .into_response()
}

async fn resolve(State(state): State<AppState>) -> Response {
    let Some(resolver) = &state.resolver else {
        return not_configured("the resolver", "TOY_CLOCK");
    };
    match resolver.resolve().await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => {
            let body = json!({
                "error": e.to_string(),
                "clock": resolver.clock().as_str(),
                "failures": resolver.failures(),
            });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

async fn item(State(state): State<AppState>, Path(id): Path<u32>) -> Response {
    match &state.items {
        Some(items) => items.get(id).await,
        None => not_configured("the item store", "TOY_PG"),
    }
}

/// `GET /realtime`: what a client of the real-time pipeline gets.
/// A connection lost for less than `grace` (the session may still be recovered) keeps serving
/// the last configuration, marked stale: a brief reconnect to another server is not an outage.
pub fn realtime_response(s: &Snapshot, grace: Duration, now: Instant) -> (StatusCode, Value) {
    let session = s.session.as_str();
    let error = match (s.session, &s.config) {
        (SessionStatus::Disconnected, ConfigState::Known(config))
            if now.saturating_duration_since(s.session_changed_at) < grace =>
        {
            return (
                StatusCode::OK,
                json!({"config": config.data, "version": config.version, "session": session, "stale": true}),
            );
        }
        (SessionStatus::Connected, ConfigState::Known(config)) => {
            return (
                StatusCode::OK,
                json!({"config": config.data, "version": config.version, "session": session}),
            );
        }
        (SessionStatus::Connected, ConfigState::Missing) => {
            format!("config znode {} does not exist (watching for its creation)", s.config_path)
        }
        (SessionStatus::Connected, ConfigState::Unknown) => {
            format!("config znode {} not read yet on this session", s.config_path)
        }
        (SessionStatus::Disconnected, _) => format!(
            "zookeeper connection lost for more than {} ms: waiting for the ensemble (the session may still be recovered)",
            grace.as_millis()
        ),
        (SessionStatus::Expired, _) => match s.terminal_state.as_deref() {
            None | Some("Expired") => "zookeeper session expired: this process needs a restart (cold start)".to_owned(),
            Some(other) => {
                format!("zookeeper client terminated ({other}): this process needs a restart (cold start)")
            }
        },
        (SessionStatus::Connecting, _) => {
            let mut text = if s.expirations > 0 && s.on_expiry == ExpiryPolicy::Reconnect {
                "zookeeper session expired: establishing a new session".to_owned()
            } else {
                "connecting to zookeeper".to_owned()
            };
            if s.connect_attempts > 0 {
                text.push_str(&format!(" ({} failed attempts", s.connect_attempts));
                if let Some(last) = &s.last_error {
                    text.push_str(&format!(", last: {last}"));
                }
                text.push(')');
            }
            text
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": error, "session": session}),
    )
}

/// `GET /status`: for probes and debugging. Durations are in milliseconds; unknowns are null.
pub fn status_body(s: &Snapshot, started_at: Instant, now: Instant) -> Value {
    let age = |t: Option<Instant>| t.map(|t| millis(now.saturating_duration_since(t)));
    let (config_state, config_version) = match &s.config {
        ConfigState::Unknown => ("unknown", None),
        ConfigState::Missing => ("missing", None),
        ConfigState::Known(c) => ("known", Some(c.version)),
    };
    json!({
        "session": s.session.as_str(),
        "session_id": s.session_id,
        "terminal_state": s.terminal_state,
        "negotiated_session_timeout_ms": s.negotiated_timeout.map(millis),
        "session_state_age_ms": millis(now.saturating_duration_since(s.session_changed_at)),
        "on_expiry": s.on_expiry.as_str(),
        "config_path": s.config_path,
        "config_state": config_state,
        "config_version": config_version,
        "last_config_version": s.last_config.as_ref().map(|c| c.version),
        "config_read_age_ms": age(s.last_read_at),
        "sessions_established": s.sessions_established,
        "session_replacements": s.session_replacements,
        "expirations": s.expirations,
        "last_expired_age_ms": age(s.last_expired_at),
        "connect_failures": s.connect_failures,
        "last_error": s.last_error,
        "uptime_ms": millis(now.saturating_duration_since(started_at)),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk_config::{ConfigValue, ZkSettings};

    fn snapshot(policy: ExpiryPolicy) -> Snapshot {
        let settings = ZkSettings {
            connect: "zk1:2181".into(),
            config_path: "/aftershock/realtime".into(),
            session_timeout: Duration::from_secs(6),
            on_expiry: policy,
        };
        Snapshot::new(&settings, Instant::now())
    }

    fn known(version: i32, data: &str) -> ConfigState {
        ConfigState::Known(ConfigValue {
            data: data.into(),
            version,
            read_at: Instant::now(),
        })
    }

    fn error_of(s: &Snapshot) -> (StatusCode, String, String) {
        let (code, body) = realtime_response(s, Duration::ZERO, Instant::now());
        (
            code,
            body["error"].as_str().unwrap().to_owned(),
            body["session"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn connected_and_known_is_200() {
        let mut s = snapshot(ExpiryPolicy::StayBroken);
        s.session = SessionStatus::Connected;
        s.config = known(3, "mode=fast");
        let (code, body) = realtime_response(&s, Duration::ZERO, Instant::now());
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            json!({"config": "mode=fast", "version": 3, "session": "connected"})
        );
    }

    #[test]
    fn initial_state_is_503_connecting() {
        let mut s = snapshot(ExpiryPolicy::StayBroken);
        let (code, error, session) = error_of(&s);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(session, "connecting");
        assert_eq!(error, "connecting to zookeeper");

        s.connect_attempts = 2;
        s.last_error = Some("connect to zk1:2181: no available hosts".into());
        let (_, error, _) = error_of(&s);
        assert_eq!(error, "connecting to zookeeper (2 failed attempts, last: connect to zk1:2181: no available hosts)");
    }

    #[test]
    fn connected_without_config_is_503() {
        let mut s = snapshot(ExpiryPolicy::StayBroken);
        s.session = SessionStatus::Connected;
        let (code, error, session) = error_of(&s);
        assert_eq!(
            (code, session.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "connected")
        );
        assert!(error.contains("not read yet"), "{error}");

        s.config = ConfigState::Missing;
        let (code, error, _) = error_of(&s);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            error,
            "config znode /aftershock/realtime does not exist (watching for its creation)"
        );
    }

    #[test]
    fn a_brief_disconnect_serves_the_last_config_as_stale() {
        let mut s = snapshot(ExpiryPolicy::StayBroken);
        s.session = SessionStatus::Disconnected;
        s.config = known(1, "x");
        let grace = Duration::from_secs(2);
        let (code, body) =
            realtime_response(&s, grace, s.session_changed_at + Duration::from_millis(500));
        assert_eq!(
            (code, body["stale"].as_bool()),
            (StatusCode::OK, Some(true))
        );
        let (code, _) = realtime_response(&s, grace, s.session_changed_at + Duration::from_secs(3));
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn disconnected_beyond_the_grace_is_503_even_with_a_known_config() {
        let mut s = snapshot(ExpiryPolicy::StayBroken);
        s.session = SessionStatus::Disconnected;
        s.config = known(1, "x");
        let (code, error, session) = error_of(&s);
        assert_eq!(
            (code, session.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "disconnected")
        );
        assert!(error.starts_with("zookeeper connection lost"), "{error}");
    }

    #[test]
    fn expired_says_cold_start() {
        let mut s = snapshot(ExpiryPolicy::StayBroken);
        s.session = SessionStatus::Expired;
        s.terminal_state = Some("Expired".into());
        s.config = known(1, "x");
        let (code, error, session) = error_of(&s);
        assert_eq!(
            (code, session.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "expired")
        );
        assert_eq!(
            error,
            "zookeeper session expired: this process needs a restart (cold start)"
        );

        s.terminal_state = Some("AuthFailed".into());
        let (_, error, session) = error_of(&s);
        assert_eq!(session, "expired");
        assert_eq!(
            error,
            "zookeeper client terminated (AuthFailed): this process needs a restart (cold start)"
        );
    }

    #[test]
    fn reconnect_after_expiry_is_503_connecting() {
        let mut s = snapshot(ExpiryPolicy::Reconnect);
        s.expirations = 1;
        s.session = SessionStatus::Connecting;
        let (code, error, session) = error_of(&s);
        assert_eq!(
            (code, session.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "connecting")
        );
        assert_eq!(
            error,
            "zookeeper session expired: establishing a new session"
        );
    }

    #[test]
    fn status_reports_versions_counts_and_ages() {
        let started = Instant::now();
        let mut s = snapshot(ExpiryPolicy::Reconnect);
        let now = started + Duration::from_millis(5000);
        s.session = SessionStatus::Connected;
        s.session_id = Some("0x1".into());
        s.config = known(7, "x");
        s.last_config = Some(ConfigValue {
            data: "x".into(),
            version: 7,
            read_at: started,
        });
        s.last_read_at = Some(started + Duration::from_millis(1500));
        s.session_replacements = 2;
        s.expirations = 2;
        let body = status_body(&s, started, now);
        assert_eq!(body["session"], "connected");
        assert_eq!(body["session_id"], "0x1");
        assert_eq!(body["on_expiry"], "reconnect");
        assert_eq!(body["config_state"], "known");
        assert_eq!(body["config_version"], 7);
        assert_eq!(body["last_config_version"], 7);
        assert_eq!(body["config_read_age_ms"], 3500);
        assert_eq!(body["session_replacements"], 2);
        assert_eq!(body["expirations"], 2);
        assert_eq!(body["uptime_ms"], 5000);
        assert_eq!(body["last_expired_age_ms"], Value::Null);
    }

    #[test]
    fn status_before_any_read_has_nulls() {
        let started = Instant::now();
        let s = snapshot(ExpiryPolicy::StayBroken);
        let body = status_body(&s, started, started);
        assert_eq!(body["session"], "connecting");
        assert_eq!(body["config_state"], "unknown");
        assert_eq!(body["config_version"], Value::Null);
        assert_eq!(body["config_read_age_ms"], Value::Null);
        assert_eq!(body["session_replacements"], 0);
    }

    /// One request over a real socket (no HTTP client dependency): status code and body.
    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let code = response.split(' ').nth(1).unwrap().parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
        (code, body)
    }

    #[tokio::test]
    async fn routes_answer_over_http() {
        let settings = ZkSettings {
            connect: "zk1:2181".into(),
            config_path: "/c".into(),
            session_timeout: Duration::from_secs(6),
            on_expiry: ExpiryPolicy::StayBroken,
        };
        let app = router(AppState {
            zk: Some(ZkConfig::new(&settings)),
            items: None,
            resolver: Some(Resolver::spawn(crate::resolver::ClockMode::Monotonic)),
            started_at: Instant::now(),
            disconnect_grace: Duration::ZERO,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        assert_eq!(
            get(addr, "/healthz").await,
            (200, r#"{"status":"ok"}"#.to_owned())
        );
        let (code, body) = get(addr, "/realtime").await;
        assert_eq!(code, 503);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"error": "connecting to zookeeper", "session": "connecting"})
        );
        let (code, body) = get(addr, "/status").await;
        assert_eq!(code, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["config_path"], "/c");
        assert_eq!(get(addr, "/nope").await.0, 404);
        let (code, body) = get(addr, "/item/1").await;
        assert_eq!(code, 503);
        assert!(body.contains("TOY_PG"), "{body}");
        let (code, body) = get(addr, "/resolve").await;
        assert_eq!(code, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["clock"], "monotonic");
        assert!(body["rtt_ms"].as_f64().unwrap() >= 10.0, "{body}");
        server.abort();
    }
}
