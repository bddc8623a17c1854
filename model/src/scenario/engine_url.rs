//! The URL of a machine's Docker engine, parsed once: `unix://`, `tcp://`, `https://` (with a
//! certificate directory) or `ssh://`. Pure; `engine::remote` connects to what this describes.

use serde::Serialize;
use std::path::PathBuf;

/// Why a machine's engine URL was refused; each says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineUrlError {
    /// No `scheme://`.
    #[error("`{url}` is not an engine URL: write unix:///path, tcp://host:port, https://host:port or ssh://[user@]host[:port]")]
    NotAUrl { url: String },
    /// Certificates given for an engine that is not `https://`.
    #[error("`tls` is for https:// engines, not `{url}`")]
    TlsNotHttps { url: String },
    /// An SSH key given for an engine that is not `ssh://`.
    #[error("`ssh_key` is for ssh:// engines, not `{url}`")]
    KeyNotSsh { url: String },
    /// `unix://` with a relative path.
    #[error("`{url}`: a unix socket needs an absolute path (unix:///var/run/docker.sock)")]
    RelativeSocket { url: String },
    /// `https://` without a certificate directory.
    #[error("`{url}` needs `tls = \"dir\"`: a directory with ca.pem, cert.pem and key.pem")]
    NoCerts { url: String },
    /// `ssh://@host`.
    #[error("`{url}`: an empty user before `@`")]
    EmptyUser { url: String },
    /// `ssh://` without a host, or with a path.
    #[error("`{url}`: expected ssh://[user@]host[:port]")]
    NotSsh { url: String },
    /// A scheme other than unix, tcp, https, ssh.
    #[error(
        "`{url}`: unknown scheme `{scheme}`; an engine is unix://, tcp://, https:// or ssh://"
    )]
    UnknownScheme { url: String, scheme: String },
    /// `tcp://` or `https://` without a host.
    #[error("`{url}`: expected host:port")]
    NotHostPort { url: String },
    /// A port that is not a number in 1..=65535.
    #[error("`{url}`: `{port}` is not a port")]
    NotAPort { url: String, port: String },
}

/// Where a machine's engine answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EngineUrl {
    /// A local socket (`unix:///var/run/docker.sock`).
    Unix(PathBuf),
    /// Plain HTTP (`tcp://10.0.0.5:2375`).
    Tcp { host: String, port: u16 },
    /// HTTP over TLS with client certificates: `ca.pem`, `cert.pem`, `key.pem` in `certs`.
    Https {
        host: String,
        port: u16,
        certs: PathBuf,
    },
    /// The engine's socket through SSH (`ssh://user@host:22`, as `docker -H ssh://…`).
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        key: Option<PathBuf>,
    },
}

impl EngineUrl {
    /// Parses `url`; `certs` is needed (and only allowed) for `https://`, `key` only for `ssh://`.
    pub fn parse(
        url: &str,
        certs: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<EngineUrl, EngineUrlError> {
        let url_ = || url.to_string();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| EngineUrlError::NotAUrl { url: url_() })?;
        if certs.is_some() && scheme != "https" {
            return Err(EngineUrlError::TlsNotHttps { url: url_() });
        }
        if key.is_some() && scheme != "ssh" {
            return Err(EngineUrlError::KeyNotSsh { url: url_() });
        }
        match scheme {
            "unix" if rest.starts_with('/') => Ok(EngineUrl::Unix(rest.into())),
            "unix" => Err(EngineUrlError::RelativeSocket { url: url_() }),
            "tcp" => host_port(url, rest, 2375).map(|(host, port)| EngineUrl::Tcp { host, port }),
            "https" => {
                let certs = certs.ok_or_else(|| EngineUrlError::NoCerts { url: url_() })?;
                let (host, port) = host_port(url, rest, 2376)?;
                Ok(EngineUrl::Https { host, port, certs })
            }
            "ssh" => {
                let (user, at) = match rest.split_once('@') {
                    Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
                    Some(_) => return Err(EngineUrlError::EmptyUser { url: url_() }),
                    None => (None, rest),
                };
                let (host, port) = match at.rsplit_once(':') {
                    Some((h, p)) => (h, Some(port(url, p)?)),
                    None => (at, None),
                };
                if host.is_empty() || host.contains('/') {
                    return Err(EngineUrlError::NotSsh { url: url_() });
                }
                Ok(EngineUrl::Ssh {
                    user,
                    host: host.into(),
                    port,
                    key,
                })
            }
            other => Err(EngineUrlError::UnknownScheme {
                url: url_(),
                scheme: other.into(),
            }),
        }
    }

    /// Whether this is plain HTTP (`tcp://`) to an address other than loopback: whoever
    /// reaches that address (a container under test included) controls the engine.
    pub fn plain_off_loopback(&self) -> bool {
        match self {
            EngineUrl::Tcp { host, .. } => !is_loopback(host),
            EngineUrl::Unix(_) | EngineUrl::Https { .. } | EngineUrl::Ssh { .. } => false,
        }
    }

    /// The host part, where services placed on the machine are reached unless it says otherwise.
    pub fn host(&self) -> Option<&str> {
        match self {
            EngineUrl::Unix(_) => None,
            EngineUrl::Tcp { host, .. }
            | EngineUrl::Https { host, .. }
            | EngineUrl::Ssh { host, .. } => Some(host),
        }
    }
}

impl std::fmt::Display for EngineUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            EngineUrl::Unix(path) => write!(f, "unix://{}", path.display()),
            EngineUrl::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            EngineUrl::Https { host, port, .. } => write!(f, "https://{host}:{port}"),
            EngineUrl::Ssh {
                user, host, port, ..
            } => {
                write!(f, "ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                write!(f, "{host}")?;
                if let Some(p) = port {
                    write!(f, ":{p}")?;
                }
                Ok(())
            }
        }
    }
}

/// `localhost`, 127.0.0.0/8 or `::1` (bracketed or not).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<core::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn host_port(url: &str, rest: &str, default: u16) -> Result<(String, u16), EngineUrlError> {
    let rest = rest.trim_end_matches('/');
    let (host, p) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, port(url, p)?),
        None => (rest, default),
    };
    if host.is_empty() || host.contains(['/', '@']) {
        return Err(EngineUrlError::NotHostPort { url: url.into() });
    }
    Ok((host.to_string(), p))
}

fn port(url: &str, p: &str) -> Result<u16, EngineUrlError> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| EngineUrlError::NotAPort {
            url: url.into(),
            port: p.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::EngineUrl;

    #[test]
    fn every_scheme_parses_and_prints_back() {
        for url in [
            "unix:///var/run/docker.sock",
            "tcp://10.0.0.5:2375",
            "ssh://root@build-3:2222",
            "ssh://build-3",
        ] {
            let certs = None;
            assert_eq!(EngineUrl::parse(url, certs, None).unwrap().to_string(), url);
        }
        let https = EngineUrl::parse("https://h:2376", Some("certs".into()), None).unwrap();
        assert_eq!(https.to_string(), "https://h:2376");
        assert_eq!(
            EngineUrl::parse("tcp://h", None, None).unwrap().to_string(),
            "tcp://h:2375"
        );
        let ssh = EngineUrl::parse("ssh://me@h:22", None, Some("k".into())).unwrap();
        assert_eq!(
            ssh,
            EngineUrl::Ssh {
                user: Some("me".into()),
                host: "h".into(),
                port: Some(22),
                key: Some("k".into())
            }
        );
        assert_eq!(ssh.host(), Some("h"));
    }

    #[test]
    fn plain_tcp_off_loopback_is_told_apart() {
        let plain = |u: &str| {
            EngineUrl::parse(u, None, None)
                .unwrap()
                .plain_off_loopback()
        };
        for off in [
            "tcp://10.0.0.5:2375",
            "tcp://build-3",
            "tcp://127.example:1",
        ] {
            assert!(plain(off), "{off}");
        }
        for local in [
            "tcp://127.0.0.1:2375",
            "tcp://127.3.2.1:1",
            "tcp://localhost:2375",
            "tcp://[::1]:2375",
            "unix:///var/run/docker.sock",
            "ssh://root@10.0.0.5",
        ] {
            assert!(!plain(local), "{local}");
        }
        let https = EngineUrl::parse("https://10.0.0.5", Some("c".into()), None).unwrap();
        assert!(!https.plain_off_loopback());
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        let e = |u: &str| EngineUrl::parse(u, None, None).unwrap_err().to_string();
        assert!(e("10.0.0.5:2375").contains("not an engine URL"));
        assert!(e("http://h:1").contains("unknown scheme `http`"));
        assert!(e("tcp://h:port").contains("not a port"));
        assert!(e("https://h:2376").contains("tls"));
        assert!(e("unix://relative").contains("absolute"));
        assert!(e("ssh://@h").contains("empty user"));
        assert!(EngineUrl::parse("tcp://h:1", Some("c".into()), None)
            .unwrap_err()
            .to_string()
            .contains("`tls` is for https"));
    }
}
