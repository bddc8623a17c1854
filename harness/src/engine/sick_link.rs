//! A sick link as the host's kernel and the `sicklink` proxy make it: the proxy (a workspace
//! binary built for the host, as lossyfs is) started with `nsenter -t <pid> -n` inside a
//! container's network namespace, listening on a free port there, and an iptables `nat
//! PREROUTING` `REDIRECT` of new TCP connections to the service's port onto it, tagged with
//! the fault's name. PREROUTING sees only what arrives from outside the namespace: a client
//! inside the container (loopback) is not redirected, and the proxy's own connection to the
//! service (the container's address, from inside) is not either. Connections open before the
//! rule keep their way (conntrack decided it at their first packet).
//!
//! And the measurement: one exchange through a port from the harness's (the host's)
//! namespace, timed — a request (or nothing), the write side closed (unless HTTP), everything
//! read to the end: how many bytes, how long, how it ended (end of stream, reset, silence).
//! Nothing here talks to Docker; the PIDs come from `RunEngine::status`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// What went wrong starting the proxy or redirecting to it.
#[derive(Debug, thiserror::Error)]
pub enum SickLinkError {
    /// The proxy could not be started, or did not say where it listens.
    #[error("the sicklink proxy in the namespace of pid {pid}: {detail}")]
    Proxy { pid: i64, detail: String },
    /// iptables in the namespace failed.
    #[error(transparent)]
    Netns(#[from] super::netns::NetnsError),
}

/// A running proxy: stopped when dropped (its stdin closes, and it is killed).
#[derive(Debug)]
pub struct Proxy {
    child: tokio::process::Child,
    /// Where it listens inside the namespace.
    pub port: u16,
}

impl Proxy {
    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it (SIGKILL) and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Starts `binary` in the network namespace of `pid`, forwarding to `upstream` with `args`
/// (the toxics), and waits (5 s at most) for the port it listens on.
pub async fn start(
    binary: &Path,
    pid: i64,
    upstream: SocketAddr,
    args: &[String],
) -> Result<Proxy, SickLinkError> {
    let fail = |detail: String| SickLinkError::Proxy { pid, detail };
    let mut child = tokio::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n"])
        .arg(binary)
        .args(["--upstream", &upstream.to_string()])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("nsenter {}: {e}", binary.display())))?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    let said = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::BufReader::new(stdout).read_line(&mut line),
    )
    .await;
    let port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .map(|a| a.port());
    match (said, port) {
        (Ok(Ok(_)), Some(port)) => Ok(Proxy { child, port }),
        _ => {
            let _ = child.kill().await;
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err).await;
            }
            Err(fail(format!(
                "no `listening` line (said {line:?}): {}",
                err.trim()
            )))
        }
    }
}

/// The REDIRECT rule (without table, action and chain): TCP to `port` goes to `to`.
pub fn rule(port: u16, to: u16, tag: &str) -> Vec<String> {
    let (port, to) = (port.to_string(), to.to_string());
    [
        "-p",
        "tcp",
        "--dport",
        &port,
        "-m",
        "comment",
        "--comment",
        tag,
        "-j",
        "REDIRECT",
        "--to-ports",
        &to,
    ]
    .map(String::from)
    .to_vec()
}

/// Inserts (`add`) or deletes `rule` on the nat table's PREROUTING chain of the namespace of
/// `pid`.
pub async fn set(pid: i64, rule: &[String], add: bool) -> Result<(), SickLinkError> {
    let mut args = vec!["iptables", "-w", "-t", "nat", if add { "-I" } else { "-D" }];
    args.push("PREROUTING");
    args.extend(rule.iter().map(String::as_str));
    super::netns::run_in(pid, &args).await?;
    Ok(())
}

/// The nat PREROUTING rules tagged `tag` in the namespace of `pid`, as `iptables -S` lists
/// them.
pub async fn listed(pid: i64, tag: &str) -> Result<Vec<String>, SickLinkError> {
    let args = ["iptables", "-w", "-t", "nat", "-S", "PREROUTING"];
    let rules = super::netns::run_in(pid, &args).await?;
    Ok(rules
        .lines()
        .filter(|l| l.contains(tag) && l.contains("REDIRECT"))
        .map(str::to_string)
        .collect())
}

/// Resets (`ss -K`, the kernel's socket destroy) the TCP connections established to `port`
/// in the namespace of `pid`, except those from `own` (the container's own address: the
/// proxy's connections to the service), so that their clients, connecting again, come
/// through the proxy. Returns the connections reset.
pub async fn reset_established(pid: i64, port: u16, own: &str) -> Result<usize, SickLinkError> {
    let sport = format!(":{port}");
    let args = [
        "ss",
        "-K",
        "-t",
        "-n",
        "-H",
        "state",
        "established",
        "(",
        "sport",
        "=",
        &sport,
        ")",
        "and",
        "not",
        "dst",
        own,
    ];
    let killed = super::netns::run_in(pid, &args).await?;
    Ok(killed.lines().filter(|l| !l.trim().is_empty()).count())
}

/// How an exchange ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// The peer closed (end of stream).
    Eof,
    /// The connection was reset.
    Reset,
    /// Nothing ended it within the time given.
    Silent,
    /// The connection could not be made, or failed otherwise.
    Failed(String),
}

/// One timed exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub bytes: usize,
    /// From the connection's start to the first byte received.
    pub first_byte: Option<Duration>,
    /// From the connection's start to its end (or to the deadline).
    pub took: Duration,
    pub ended: Ended,
}

impl Exchange {
    /// `1234 B in 301.2 ms (first byte 300.9 ms), end of stream`
    pub fn words(&self) -> String {
        let first = self
            .first_byte
            .map(|t| format!(" (first byte {:.1} ms)", ms(t)))
            .unwrap_or_default();
        let ended = match &self.ended {
            Ended::Eof => "end of stream".to_string(),
            Ended::Reset => "reset by the peer".to_string(),
            Ended::Silent => "still open, silent".to_string(),
            Ended::Failed(e) => format!("failed: {e}"),
        };
        format!(
            "{} B in {:.1} ms{first}, {ended}",
            self.bytes,
            ms(self.took)
        )
    }
}

/// Connects to `to`, sends `request` (None: nothing, and closes the write side at once;
/// `Some`: the request, and keeps it open, as an HTTP/1.0 client does), reads to the end
/// within `within`.
pub async fn exchange(to: SocketAddr, request: Option<&[u8]>, within: Duration) -> Exchange {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + within;
    let (mut bytes, mut first_byte) = (0, None);
    let connected = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(to)).await;
    let ended = 'talk: {
        let mut s = match connected {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => break 'talk Ended::Failed(e.to_string()),
            Err(_) => break 'talk Ended::Silent,
        };
        let sent = match request {
            Some(r) => s.write_all(r).await,
            None => s.shutdown().await,
        };
        if let Err(e) = sent {
            break 'talk Ended::Failed(e.to_string());
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Err(_) => break 'talk Ended::Silent,
                Ok(Ok(0)) => break 'talk Ended::Eof,
                Ok(Ok(n)) => {
                    first_byte.get_or_insert(started.elapsed());
                    bytes += n;
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    break 'talk Ended::Reset
                }
                Ok(Err(e)) => break 'talk Ended::Failed(e.to_string()),
            }
        }
    };
    Exchange {
        bytes,
        first_byte,
        took: started.elapsed(),
        ended,
    }
}

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_redirects_the_port_and_carries_the_tag() {
        let r = rule(8080, 40001, "aftershock-sick-f").join(" ");
        assert_eq!(
            r,
            "-p tcp --dport 8080 -m comment --comment aftershock-sick-f -j REDIRECT --to-ports 40001"
        );
    }

    #[tokio::test]
    async fn an_exchange_times_a_reply_and_its_end() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            // Read the request: closing with unread data would be an RST.
            let mut request = [0u8; 18];
            s.read_exact(&mut request).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.write_all(b"hi").await.unwrap();
        });
        let e = exchange(
            addr,
            Some(b"GET / HTTP/1.0\r\n\r\n"),
            Duration::from_secs(2),
        )
        .await;
        assert_eq!((e.bytes, &e.ended), (2, &Ended::Eof), "{}", e.words());
        assert!(e.first_byte.unwrap() >= Duration::from_millis(50));
        let closed = exchange(addr, None, Duration::from_millis(300)).await;
        assert!(
            matches!(closed.ended, Ended::Failed(_)),
            "{}",
            closed.words()
        );
    }
}
