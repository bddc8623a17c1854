//! Configuration of the toy API from environment variables.
//!
//! Parsing takes a lookup function instead of reading the process environment directly, so the
//! rules (defaults, required variables, what counts as a bad value) are unit-tested without
//! touching global state. A variable that is set but empty counts as unset.
//!
//! Two read paths can be configured, each optional: the ZooKeeper-backed real-time
//! configuration (`TOY_ZK`) and the cache-aside item store (`TOY_MEMCACHED` + `TOY_PG`).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::resolver::ClockMode;

/// Address the HTTP server listens on.
pub const ENV_LISTEN: &str = "TOY_LISTEN";
/// ZooKeeper connect string, e.g. `zk1:2181,zk2:2181,zk3:2181`; unset: no `/realtime`.
pub const ENV_ZK: &str = "TOY_ZK";
/// Path of the znode that holds the configuration.
pub const ENV_CONFIG_PATH: &str = "TOY_CONFIG_PATH";
/// Requested ZooKeeper session timeout, in milliseconds.
pub const ENV_SESSION_TIMEOUT_MS: &str = "TOY_SESSION_TIMEOUT_MS";
/// What to do when the ZooKeeper session expires: `stay-broken` or `reconnect`.
pub const ENV_ON_EXPIRY: &str = "TOY_ON_EXPIRY";
pub const ENV_DISCONNECT_GRACE_MS: &str = "TOY_DISCONNECT_GRACE_MS";

/// PostgreSQL host (`pg` or `pg:5432`) of the item store; unset: no `/item/{id}`.
pub const ENV_PG: &str = "TOY_PG";
/// memcached nodes in front of PostgreSQL, e.g. `mc1:11211,mc2:11211`; unset: no cache.
pub const ENV_MEMCACHED: &str = "TOY_MEMCACHED";
/// `single` (one node, the 2017 set-up) or `mirrored` (write to all, read from any).
pub const ENV_CACHE_MODE: &str = "TOY_CACHE_MODE";
/// Connections in the bounded PostgreSQL pool.
pub const ENV_PG_POOL: &str = "TOY_PG_POOL";
/// Cost of one item query, spent inside PostgreSQL (`pg_sleep`), in milliseconds.
pub const ENV_QUERY_MS: &str = "TOY_QUERY_MS";
/// Size of one item's payload in bytes.
pub const ENV_VALUE_BYTES: &str = "TOY_VALUE_BYTES";
/// Items exist for ids 1..=TOY_KEYS.
pub const ENV_KEYS: &str = "TOY_KEYS";
/// Deadline of one memcached operation (connect, read, write), in milliseconds.
pub const ENV_CACHE_TIMEOUT_MS: &str = "TOY_CACHE_TIMEOUT_MS";
/// How long a memcached node that failed is skipped before it is tried again, in milliseconds.
pub const ENV_CACHE_RETRY_MS: &str = "TOY_CACHE_RETRY_MS";
/// Mirrored reads: after this many milliseconds without an answer from the preferred node,
/// the next node is asked too (a hedged read).
pub const ENV_CACHE_HEDGE_MS: &str = "TOY_CACHE_HEDGE_MS";
/// The clock the resolver measures round trips with: `wall`, or `mono` (`monotonic`); unset: no
/// `/resolve`.
pub const ENV_CLOCK: &str = "TOY_CLOCK";

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_CONFIG_PATH: &str = "/aftershock/realtime";
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 6000;
pub const DEFAULT_DISCONNECT_GRACE_MS: u64 = 2000;
/// Bounds on the session timeout we accept. ZooKeeper negotiates it into
/// `[2 × tickTime, 20 × tickTime]` anyway; these only reject obvious typos.
pub const MIN_SESSION_TIMEOUT_MS: u64 = 100;
pub const MAX_SESSION_TIMEOUT_MS: u64 = 600_000;

/// What the service does once its ZooKeeper session has expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryPolicy {
    /// Keep the dead session forever, as the 2016 pipeline did: the service stays broken until
    /// the process is restarted (the "cold start").
    StayBroken,
    /// Replace the expired session with a new client and read the configuration again.
    Reconnect,
}

impl ExpiryPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryPolicy::StayBroken => "stay-broken",
            ExpiryPolicy::Reconnect => "reconnect",
        }
    }
}

impl fmt::Display for ExpiryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExpiryPolicy {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "stay-broken" => Ok(ExpiryPolicy::StayBroken),
            "reconnect" => Ok(ExpiryPolicy::Reconnect),
            other => Err(anyhow!(
                "expected `stay-broken` or `reconnect`, got `{other}`"
            )),
        }
    }
}

/// How reads use the memcached nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// One node: a dead node means no cache.
    Single,
    /// Writes go to every node, reads to any (the key's preferred node first), failing over on
    /// a miss, an error or a timeout.
    Mirrored,
}

impl CacheMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Single => "single",
            CacheMode::Mirrored => "mirrored",
        }
    }
}

/// The cache-aside item store: memcached in front of PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemSettings {
    /// `host:port` of each memcached node (empty: every read goes to PostgreSQL).
    pub memcached: Vec<String>,
    pub mode: CacheMode,
    /// `host:port` of PostgreSQL (user postgres, database aftershock, trust auth).
    pub pg: String,
    pub pool: usize,
    pub query_cost: Duration,
    pub value_bytes: usize,
    pub keys: u32,
    pub cache_timeout: Duration,
    pub retry_after: Duration,
    pub hedge: Duration,
}

/// A whole number in `range` from the variable `name`, or `default` when unset.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64> {
    match get(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                anyhow!(
                    "{name}=`{raw}` must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                )
            }),
    }
}

impl ItemSettings {
    /// `None` when `TOY_PG` is unset.
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(pg) = get(ENV_PG) else {
            return Ok(None);
        };
        let pg = with_port(pg.trim(), 5432);
        validate_connect_string(&pg).with_context(|| format!("{ENV_PG}=`{pg}` is not valid"))?;
        let memcached: Vec<String> = get(ENV_MEMCACHED)
            .map(|m| m.split(',').map(|n| with_port(n.trim(), 11211)).collect())
            .unwrap_or_default();
        for node in &memcached {
            validate_connect_string(node)
                .with_context(|| format!("{ENV_MEMCACHED}: node `{node}` is not valid"))?;
        }
        let mode = match get(ENV_CACHE_MODE).as_deref().map(str::trim) {
            None | Some("single") => CacheMode::Single,
            Some("mirrored") => CacheMode::Mirrored,
            Some(other) => bail!("{ENV_CACHE_MODE}=`{other}`: expected `single` or `mirrored`"),
        };
        if mode == CacheMode::Single && memcached.len() > 1 {
            bail!(
                "{ENV_CACHE_MODE}=single takes one memcached node, {ENV_MEMCACHED} names {}",
                memcached.len()
            );
        }
        if mode == CacheMode::Mirrored && memcached.len() < 2 {
            bail!("{ENV_CACHE_MODE}=mirrored needs at least two nodes in {ENV_MEMCACHED}");
        }
        Ok(Some(ItemSettings {
            memcached,
            mode,
            pg,
            pool: number(get, ENV_PG_POOL, 8, 1..=256)? as usize,
            query_cost: Duration::from_millis(number(get, ENV_QUERY_MS, 50, 0..=10_000)?),
            value_bytes: number(get, ENV_VALUE_BYTES, 4096, 32..=1_000_000)? as usize,
            keys: number(get, ENV_KEYS, 500, 1..=1_000_000)? as u32,
            cache_timeout: Duration::from_millis(number(
                get,
                ENV_CACHE_TIMEOUT_MS,
                100,
                1..=10_000,
            )?),
            retry_after: Duration::from_millis(number(get, ENV_CACHE_RETRY_MS, 1000, 0..=60_000)?),
            hedge: Duration::from_millis(number(get, ENV_CACHE_HEDGE_MS, 10, 1..=10_000)?),
        }))
    }
}

/// `host` with `:port` appended when it has none.
fn with_port(host: &str, port: u16) -> String {
    if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

/// Everything the process needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `None`: no ZooKeeper, `/realtime` answers 503 "not configured".
    pub zk_connect: Option<String>,
    pub config_path: String,
    pub session_timeout: Duration,
    pub on_expiry: ExpiryPolicy,
    /// How long a lost connection is tolerated while serving the last configuration.
    pub disconnect_grace: Duration,
    /// The cache-aside item store, when `TOY_PG` is set.
    pub items: Option<ItemSettings>,
    /// The resolver's clock, when `TOY_CLOCK` is set.
    pub clock: Option<ClockMode>,
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable name to its value, if set).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let listen_raw = get(ENV_LISTEN).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_raw.trim().parse().with_context(|| {
            format!("{ENV_LISTEN}=`{listen_raw}` is not a socket address like `0.0.0.0:8080`")
        })?;

        let zk_connect = get(ENV_ZK).map(|z| z.trim().to_owned());
        if let Some(zk) = &zk_connect {
            validate_connect_string(zk).with_context(|| format!("{ENV_ZK}=`{zk}` is not valid"))?;
        }

        let config_path = get(ENV_CONFIG_PATH).unwrap_or_else(|| DEFAULT_CONFIG_PATH.to_owned());
        validate_znode_path(&config_path).with_context(|| {
            format!("{ENV_CONFIG_PATH}=`{config_path}` is not a valid znode path")
        })?;

        let session_timeout_ms = match get(ENV_SESSION_TIMEOUT_MS) {
            None => DEFAULT_SESSION_TIMEOUT_MS,
            Some(raw) => {
                let ms: u64 = raw.trim().parse().map_err(|_| {
                    anyhow!(
                        "{ENV_SESSION_TIMEOUT_MS}=`{raw}` is not a whole number of milliseconds"
                    )
                })?;
                if !(MIN_SESSION_TIMEOUT_MS..=MAX_SESSION_TIMEOUT_MS).contains(&ms) {
                    bail!(
                        "{ENV_SESSION_TIMEOUT_MS}={ms} is out of range \
                         ({MIN_SESSION_TIMEOUT_MS}..={MAX_SESSION_TIMEOUT_MS} ms)"
                    );
                }
                ms
            }
        };

        let on_expiry = match get(ENV_ON_EXPIRY) {
            None => ExpiryPolicy::StayBroken,
            Some(raw) => raw
                .trim()
                .parse()
                .with_context(|| format!("{ENV_ON_EXPIRY}=`{raw}` is not valid"))?,
        };

        let grace_ms = match get(ENV_DISCONNECT_GRACE_MS) {
            None => DEFAULT_DISCONNECT_GRACE_MS,
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 60_000)
                .ok_or_else(|| {
                    anyhow!("{ENV_DISCONNECT_GRACE_MS}=`{raw}` must be 0 to 60000 (milliseconds)")
                })?,
        };

        let items = ItemSettings::from_lookup(&get)?;
        let clock = match get(ENV_CLOCK).as_deref().map(str::trim) {
            None => None,
            Some("wall") => Some(ClockMode::Wall),
            Some("mono" | "monotonic") => Some(ClockMode::Monotonic),
            Some(other) => bail!("{ENV_CLOCK}=`{other}`: expected `wall` or `monotonic`"),
        };

        Ok(Settings {
            items,
            clock,
            disconnect_grace: Duration::from_millis(grace_ms),
            listen,
            zk_connect,
            config_path,
            session_timeout: Duration::from_millis(session_timeout_ms),
            on_expiry,
        })
    }
}

/// Catches the mistakes the ZooKeeper client would only report on every connection attempt.
fn validate_connect_string(s: &str) -> Result<()> {
    // An optional chroot follows the host list: `h1:2181,h2:2181/chroot`.
    let hosts = s.split_once('/').map_or(s, |(hosts, _)| hosts);
    for host in hosts.split(',') {
        let host = host.trim();
        if host.is_empty() {
            bail!("empty host in the host list");
        }
        if host.chars().any(char::is_whitespace) {
            bail!("host `{host}` contains whitespace");
        }
        if let Some((_, port)) = host.rsplit_once(':') {
            if !host.ends_with(']') && port.parse::<u16>().is_err() {
                bail!("host `{host}` has a bad port `{port}`");
            }
        }
    }
    Ok(())
}

fn validate_znode_path(path: &str) -> Result<()> {
    if !path.starts_with('/') {
        bail!("it must start with `/`");
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        bail!("it must not end with `/`");
    }
    if path
        .split('/')
        .skip(1)
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        bail!("it has an empty, `.` or `..` component");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    fn err(vars: &[(&str, &str)]) -> String {
        format!("{:#}", parse(vars).unwrap_err())
    }

    #[test]
    fn defaults_with_only_zk() {
        let s = parse(&[("TOY_ZK", "zk1:2181,zk2:2181,zk3:2181")]).unwrap();
        assert_eq!(s.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.zk_connect.as_deref(), Some("zk1:2181,zk2:2181,zk3:2181"));
        assert_eq!(s.config_path, "/aftershock/realtime");
        assert_eq!(s.session_timeout, Duration::from_millis(6000));
        assert_eq!(s.on_expiry, ExpiryPolicy::StayBroken);
    }

    #[test]
    fn all_set() {
        let s = parse(&[
            ("TOY_LISTEN", "127.0.0.1:18080"),
            ("TOY_ZK", "127.0.0.1:2181"),
            ("TOY_CONFIG_PATH", "/a/b"),
            ("TOY_SESSION_TIMEOUT_MS", "4000"),
            ("TOY_ON_EXPIRY", "reconnect"),
        ])
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:18080".parse().unwrap());
        assert_eq!(s.config_path, "/a/b");
        assert_eq!(s.session_timeout, Duration::from_secs(4));
        assert_eq!(s.on_expiry, ExpiryPolicy::Reconnect);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let s = parse(&[
            ("TOY_ZK", "zk:2181"),
            ("TOY_LISTEN", ""),
            ("TOY_ON_EXPIRY", " "),
        ])
        .unwrap();
        assert_eq!(s.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.on_expiry, ExpiryPolicy::StayBroken);
    }

    #[test]
    fn zk_is_optional() {
        assert_eq!(parse(&[]).unwrap().zk_connect, None);
        assert_eq!(parse(&[("TOY_ZK", "")]).unwrap().zk_connect, None);
    }

    #[test]
    fn bad_values_are_named() {
        assert!(err(&[("TOY_ZK", "zk:2181"), ("TOY_LISTEN", "8080")]).contains("TOY_LISTEN=`8080`"));
        assert!(err(&[("TOY_ZK", "zk1:2181,,zk3:2181")]).contains("empty host"));
        assert!(err(&[("TOY_ZK", "zk1:notaport")]).contains("bad port"));
        assert!(
            err(&[("TOY_ZK", "zk:2181"), ("TOY_CONFIG_PATH", "relative")])
                .contains("must start with `/`")
        );
        assert!(err(&[("TOY_ZK", "zk:2181"), ("TOY_CONFIG_PATH", "/a/")]).contains("must not end"));
        assert!(err(&[("TOY_ZK", "zk:2181"), ("TOY_CONFIG_PATH", "/a//b")]).contains("empty"));
        assert!(
            err(&[("TOY_ZK", "zk:2181"), ("TOY_SESSION_TIMEOUT_MS", "6s")])
                .contains("whole number")
        );
        assert!(
            err(&[("TOY_ZK", "zk:2181"), ("TOY_SESSION_TIMEOUT_MS", "0")]).contains("out of range")
        );
        let e = err(&[("TOY_ZK", "zk:2181"), ("TOY_ON_EXPIRY", "restart")]);
        assert!(
            e.contains("TOY_ON_EXPIRY=`restart`") && e.contains("stay-broken"),
            "{e}"
        );
    }

    #[test]
    fn connect_string_forms() {
        for ok in [
            "zk",
            "zk:2181",
            "a:1,b:2,c:3",
            "a:1,b:2/chroot",
            "[::1]:2181",
            "127.0.0.1:2181",
        ] {
            validate_connect_string(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn item_store_settings() {
        assert_eq!(parse(&[]).unwrap().items, None);
        let s = parse(&[("TOY_PG", "pg"), ("TOY_MEMCACHED", "mc")]).unwrap();
        let items = s.items.unwrap();
        assert_eq!(items.pg, "pg:5432");
        assert_eq!(items.memcached, vec!["mc:11211".to_string()]);
        assert_eq!(items.mode, CacheMode::Single);
        assert_eq!((items.pool, items.keys), (8, 500));
        assert_eq!(items.query_cost, Duration::from_millis(50));
        let s = parse(&[
            ("TOY_PG", "pg:5433"),
            ("TOY_MEMCACHED", "mc1:11211, mc2"),
            ("TOY_CACHE_MODE", "mirrored"),
            ("TOY_PG_POOL", "4"),
        ])
        .unwrap();
        let items = s.items.unwrap();
        assert_eq!(items.memcached, vec!["mc1:11211", "mc2:11211"]);
        assert_eq!((items.mode, items.pool), (CacheMode::Mirrored, 4));
    }

    #[test]
    fn bad_item_store_settings_are_named() {
        let e = err(&[("TOY_PG", "pg"), ("TOY_MEMCACHED", "a,b")]);
        assert!(e.contains("single takes one"), "{e}");
        let e = err(&[
            ("TOY_PG", "pg"),
            ("TOY_MEMCACHED", "a"),
            ("TOY_CACHE_MODE", "mirrored"),
        ]);
        assert!(e.contains("at least two"), "{e}");
        let e = err(&[("TOY_PG", "pg"), ("TOY_CACHE_MODE", "ring")]);
        assert!(e.contains("TOY_CACHE_MODE=`ring`"), "{e}");
        let e = err(&[("TOY_PG", "pg"), ("TOY_PG_POOL", "0")]);
        assert!(e.contains("TOY_PG_POOL=`0`"), "{e}");
    }

    #[test]
    fn the_resolver_s_clock() {
        assert_eq!(parse(&[]).unwrap().clock, None);
        assert_eq!(
            parse(&[("TOY_CLOCK", "wall")]).unwrap().clock,
            Some(ClockMode::Wall)
        );
        assert_eq!(
            parse(&[("TOY_CLOCK", "monotonic")]).unwrap().clock,
            Some(ClockMode::Monotonic)
        );
        assert_eq!(
            parse(&[("TOY_CLOCK", "mono")]).unwrap().clock,
            Some(ClockMode::Monotonic)
        );
        let e = err(&[("TOY_CLOCK", "tai")]);
        assert!(
            e.contains("TOY_CLOCK=`tai`") && e.contains("monotonic"),
            "{e}"
        );
    }

    #[test]
    fn policy_round_trips() {
        for p in [ExpiryPolicy::StayBroken, ExpiryPolicy::Reconnect] {
            assert_eq!(p.as_str().parse::<ExpiryPolicy>().unwrap(), p);
        }
    }
}
