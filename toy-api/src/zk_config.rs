//! The ZooKeeper-backed configuration holder, with the session-expiry policy of the toy API.
//!
//! A background task connects to the ensemble (retrying every [`RETRY_DELAY`] until it works),
//! reads the config znode with a watch and reads it again on every change, and follows the
//! session state from the client's state stream. What it knows is published as a [`Snapshot`]
//! that the HTTP side reads without ever waiting on ZooKeeper.
//!
//! An expired session is terminal for its client. With [`ExpiryPolicy::StayBroken`] the task
//! keeps the dead client and does nothing more, as the 2016 real-time pipeline did: only a
//! restart of the process (a "cold start") brings the service back. With
//! [`ExpiryPolicy::Reconnect`] it replaces the client with a new one (a new session) and reads
//! the configuration again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info, warn};
use zookeeper_client::{Client, EventType, SessionState, WatchedEvent};

use crate::settings::ExpiryPolicy;

/// Pause between two failed attempts (to connect, or to read the znode).
pub const RETRY_DELAY: Duration = Duration::from_millis(500);

/// What the ZooKeeper side needs to know.
#[derive(Clone, Debug)]
pub struct ZkSettings {
    pub connect: String,
    pub config_path: String,
    pub session_timeout: Duration,
    pub on_expiry: ExpiryPolicy,
}

/// The session as the HTTP side reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    /// No session yet: the first one, or the replacement of an expired one, is being set up.
    Connecting,
    /// The session is established and the client is connected to a server.
    Connected,
    /// The client lost its connection; the session may still be recovered.
    Disconnected,
    /// The session is gone for good (expired, or the client was closed or failed to authenticate)
    /// and this process keeps it: nothing recovers without a restart.
    Expired,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Connecting => "connecting",
            SessionStatus::Connected => "connected",
            SessionStatus::Disconnected => "disconnected",
            SessionStatus::Expired => "expired",
        }
    }
}

/// One successful read of the config znode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigValue {
    /// The znode's data, as UTF-8 (invalid sequences replaced by U+FFFD).
    pub data: String,
    /// The znode's data version (`Stat::version`).
    pub version: i32,
    pub read_at: Instant,
}

/// What the current session knows about the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigState {
    /// Not read yet on the current session.
    Unknown,
    /// The znode does not exist; an exists-watch waits for its creation.
    Missing,
    Known(ConfigValue),
}

/// Everything the ZooKeeper side knows, as of its last change.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub on_expiry: ExpiryPolicy,
    pub config_path: String,
    pub session: SessionStatus,
    /// The ZooKeeper state behind [`SessionStatus::Expired`] (`Expired`, `Closed`, `AuthFailed`).
    pub terminal_state: Option<String>,
    /// Id of the current (or, when expired, the dead) session, as `0x…`.
    pub session_id: Option<String>,
    /// Session timeout negotiated with the server.
    pub negotiated_timeout: Option<Duration>,
    pub session_changed_at: Instant,
    pub config: ConfigState,
    /// The last configuration read by any session; kept across session replacements.
    pub last_config: Option<ConfigValue>,
    /// Last successful read of the znode (data, or the fact that it does not exist).
    pub last_read_at: Option<Instant>,
    /// Sessions established since the process started.
    pub sessions_established: u64,
    /// Expired sessions replaced by a new established one (only with `reconnect`).
    pub session_replacements: u64,
    /// Sessions that ended for good (expired, closed, auth failed).
    pub expirations: u64,
    pub last_expired_at: Option<Instant>,
    /// Failed connection attempts since the process started.
    pub connect_failures: u64,
    /// Failed attempts in the current connecting round (reset once a session is established).
    pub connect_attempts: u64,
    pub last_error: Option<String>,
}

impl Snapshot {
    pub fn new(settings: &ZkSettings, now: Instant) -> Self {
        Snapshot {
            on_expiry: settings.on_expiry,
            config_path: settings.config_path.clone(),
            session: SessionStatus::Connecting,
            terminal_state: None,
            session_id: None,
            negotiated_timeout: None,
            session_changed_at: now,
            config: ConfigState::Unknown,
            last_config: None,
            last_read_at: None,
            sessions_established: 0,
            session_replacements: 0,
            expirations: 0,
            last_expired_at: None,
            connect_failures: 0,
            connect_attempts: 0,
            last_error: None,
        }
    }

    fn set_session(&mut self, status: SessionStatus) {
        if self.session != status {
            self.session = status;
            self.session_changed_at = Instant::now();
        }
    }
}

/// Handle on the configuration holder; cheap to clone.
#[derive(Clone)]
pub struct ZkConfig {
    tx: Arc<watch::Sender<Snapshot>>,
}

impl ZkConfig {
    /// A holder that nothing updates (for tests, and as the starting point of [`Self::spawn`]).
    pub fn new(settings: &ZkSettings) -> Self {
        let (tx, _rx) = watch::channel(Snapshot::new(settings, Instant::now()));
        ZkConfig { tx: Arc::new(tx) }
    }

    /// Creates the holder and starts its background task on the current tokio runtime.
    pub fn spawn(settings: ZkSettings) -> Self {
        let holder = Self::new(&settings);
        let task = Task {
            settings,
            holder: holder.clone(),
        };
        tokio::spawn(task.run());
        holder
    }

    /// What is known right now.
    pub fn snapshot(&self) -> Snapshot {
        self.tx.borrow().clone()
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        self.tx.send_modify(f);
    }
}

struct Task {
    settings: ZkSettings,
    holder: ZkConfig,
}

impl Task {
    async fn run(self) {
        loop {
            let client = self.connect_with_retry().await;
            let end = self.serve_session(&client).await;
            let session_id = client.session_id();
            self.holder.update(|s| {
                s.expirations += 1;
                s.last_expired_at = Some(Instant::now());
                s.terminal_state = Some(end.to_string());
                s.last_error = Some(format!("zookeeper session {session_id} ended: {end}"));
            });
            match self.settings.on_expiry {
                ExpiryPolicy::StayBroken => {
                    warn!(
                        session = %session_id,
                        state = %end,
                        "zookeeper session is gone for good; policy stay-broken keeps it: \
                         this process needs a restart (cold start)"
                    );
                    self.holder
                        .update(|s| s.set_session(SessionStatus::Expired));
                    // Keep the dead client, like the 2016 pipeline did, and never look again.
                    let _dead = client;
                    std::future::pending::<()>().await;
                }
                ExpiryPolicy::Reconnect => {
                    warn!(
                        session = %session_id,
                        state = %end,
                        "zookeeper session is gone for good; policy reconnect replaces it with a new session"
                    );
                    self.holder
                        .update(|s| s.set_session(SessionStatus::Connecting));
                    drop(client);
                }
            }
        }
    }

    /// Connects a new client (new session), trying again every [`RETRY_DELAY`] until it works.
    async fn connect_with_retry(&self) -> Client {
        loop {
            let result = Client::connector()
                .with_session_timeout(self.settings.session_timeout)
                // Give up after one pass over the hosts instead of cycling for a whole session
                // timeout, so that every failed attempt is logged and paced by us.
                .with_fail_eagerly()
                .connect(&self.settings.connect)
                .await;
            match result {
                Ok(client) => return client,
                Err(err) => {
                    let mut attempts = 0;
                    self.holder.update(|s| {
                        s.connect_failures += 1;
                        s.connect_attempts += 1;
                        attempts = s.connect_attempts;
                        s.last_error = Some(format!("connect to {}: {err}", self.settings.connect));
                    });
                    warn!(
                        zk = %self.settings.connect,
                        attempt = attempts,
                        error = %err,
                        "zookeeper connection attempt failed; retrying in {} ms",
                        RETRY_DELAY.as_millis()
                    );
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }

    /// Follows one session until it ends for good; returns the terminal state.
    async fn serve_session(&self, client: &Client) -> SessionState {
        let mut states = client.state_watcher();
        let session_id = client.session_id().to_string();
        let timeout = client.session_timeout();
        info!(session = %session_id, negotiated_timeout_ms = timeout.as_millis() as u64, "zookeeper session established");
        self.holder.update(|s| {
            if s.expirations > 0 {
                s.session_replacements += 1;
            }
            s.sessions_established += 1;
            s.session_id = Some(session_id.clone());
            s.negotiated_timeout = Some(timeout);
            s.terminal_state = None;
            s.config = ConfigState::Unknown;
            s.connect_attempts = 0;
        });
        let current = states.state();
        if current.is_terminated() {
            return current;
        }
        self.apply_state(current);

        let config_loop = self.watch_config(client);
        tokio::pin!(config_loop);
        let mut config_loop_done = false;
        loop {
            tokio::select! {
                state = states.changed() => {
                    info!(session = %session_id, state = %state, "zookeeper session state changed");
                    if state.is_terminated() {
                        return state;
                    }
                    self.apply_state(state);
                }
                () = &mut config_loop, if !config_loop_done => {
                    // It only stops on a terminal error; the state stream reports the end.
                    config_loop_done = true;
                }
            }
        }
    }

    fn apply_state(&self, state: SessionState) {
        let status = match state {
            SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                SessionStatus::Connected
            }
            SessionState::Disconnected => SessionStatus::Disconnected,
            // Terminal states are handled by the caller.
            SessionState::Expired | SessionState::Closed | SessionState::AuthFailed => {
                SessionStatus::Expired
            }
        };
        self.holder.update(|s| s.set_session(status));
    }

    /// Reads the config znode with a watch, again after every event, for as long as the session
    /// lives. Returns only on an error that ends the session.
    async fn watch_config(&self, client: &Client) {
        let path = self.settings.config_path.as_str();
        loop {
            match client.get_and_watch_data(path).await {
                Ok((data, stat, watcher)) => {
                    let value = ConfigValue {
                        data: String::from_utf8_lossy(&data).into_owned(),
                        version: stat.version,
                        read_at: Instant::now(),
                    };
                    info!(
                        path,
                        version = stat.version,
                        bytes = data.len(),
                        "read config znode"
                    );
                    self.holder.update(|s| {
                        s.last_read_at = Some(value.read_at);
                        s.last_config = Some(value.clone());
                        s.config = ConfigState::Known(value);
                    });
                    if !continue_after(watcher.changed().await) {
                        return;
                    }
                }
                Err(zookeeper_client::Error::NoNode) => {
                    match client.check_and_watch_stat(path).await {
                        Ok((None, watcher)) => {
                            info!(
                                path,
                                "config znode does not exist; watching for its creation"
                            );
                            self.holder.update(|s| {
                                s.last_read_at = Some(Instant::now());
                                s.config = ConfigState::Missing;
                            });
                            if !continue_after(watcher.changed().await) {
                                return;
                            }
                        }
                        // Created between the two calls: read it.
                        Ok((Some(_), _watcher)) => {}
                        Err(err) => {
                            if !self.retry_after(err).await {
                                return;
                            }
                        }
                    }
                }
                Err(err) => {
                    if !self.retry_after(err).await {
                        return;
                    }
                }
            }
        }
    }

    /// Logs a failed read; pauses and returns true when it is worth trying again.
    async fn retry_after(&self, err: zookeeper_client::Error) -> bool {
        use zookeeper_client::Error as E;
        if matches!(
            err,
            E::SessionExpired | E::SessionMoved | E::ClientClosed | E::AuthFailed
        ) {
            debug!(error = %err, "config read stopped: the session is over");
            return false;
        }
        warn!(path = %self.settings.config_path, error = %err, "reading the config znode failed; retrying in {} ms", RETRY_DELAY.as_millis());
        self.holder
            .update(|s| s.last_error = Some(format!("read {}: {err}", self.settings.config_path)));
        tokio::time::sleep(RETRY_DELAY).await;
        true
    }
}

/// Whether a watch event leaves the session usable (every node event does).
fn continue_after(event: WatchedEvent) -> bool {
    debug!(event_type = %event.event_type, state = %event.session_state, path = %event.path, "config watch fired");
    !(event.event_type == EventType::Session && event.session_state.is_terminated())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_session_events_stop_the_config_loop() {
        assert!(!continue_after(WatchedEvent::new_session(
            SessionState::Expired
        )));
        assert!(!continue_after(WatchedEvent::new_session(
            SessionState::Closed
        )));
        assert!(continue_after(WatchedEvent::new(
            EventType::NodeDataChanged,
            "/x"
        )));
        assert!(continue_after(WatchedEvent::new(
            EventType::NodeCreated,
            "/x"
        )));
        assert!(continue_after(WatchedEvent::new(
            EventType::NodeDeleted,
            "/x"
        )));
    }

    #[test]
    fn session_changed_at_moves_only_on_change() {
        let settings = ZkSettings {
            connect: "zk:2181".into(),
            config_path: "/c".into(),
            session_timeout: Duration::from_secs(6),
            on_expiry: ExpiryPolicy::StayBroken,
        };
        let t0 = Instant::now() - Duration::from_secs(10);
        let mut s = Snapshot::new(&settings, t0);
        s.set_session(SessionStatus::Connecting);
        assert_eq!(s.session_changed_at, t0);
        s.set_session(SessionStatus::Connected);
        assert!(s.session_changed_at > t0);
    }
}
