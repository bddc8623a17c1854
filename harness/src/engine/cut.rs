//! Cuts between chosen containers, as the host's kernel makes them: iptables DROP rules by
//! source address in the receiving container's own network namespace (`nsenter -t <pid> -n`
//! with the host's `iptables`, as [`super::netns`] does for netem's loss; the images need no
//! tools), each tagged with a comment naming the fault so it is listed and deleted exactly;
//! and TCP connections made *from inside* a container's namespace (a thread of the harness
//! that `setns(2)`s into it), which is how a cut is verified from each side.
//!
//! A two-way cut of `a` from `b` is a rule in `b` dropping every packet from `a` and one in `a`
//! dropping every packet from `b`. A one-way cut (`a`'s messages do not reach `b`, `b`'s reach
//! `a`) is a rule in `b` dropping only the packets `a` sends in the *original* direction of a
//! connection (conntrack's `--ctdir ORIGINAL`): `a`'s connections to `b` get no answer, while
//! `b`'s connections to `a` and `a`'s answers on them pass.
//! Nothing here talks to Docker; the PIDs come from `RunEngine::status`.

use std::time::{Duration, Instant};

/// What went wrong cutting or measuring.
#[derive(Debug, thiserror::Error)]
pub enum CutError {
    /// `iptables` in the namespace failed (or `nsenter` could not run).
    #[error("iptables in the namespace of pid {pid}: {detail}")]
    Iptables { pid: i64, detail: String },
    /// Entering the namespace of `pid` for a connection failed.
    #[error("entering the network namespace of pid {pid}: {source}")]
    Enter { pid: i64, source: std::io::Error },
    /// A replica's address that does not parse.
    #[error("`{0}` is not an IP address")]
    NotAnAddress(String),
    /// The connecting thread died without an answer.
    #[error("the thread connecting from the namespace of pid {pid} ended without an answer")]
    Lost { pid: i64 },
}

/// One DROP rule in a receiver's INPUT chain: packets from `from` (one-way: only those it sends
/// in the original direction of a connection), tagged `tag`.
pub fn rule(from: &str, one_way: bool, tag: &str) -> Vec<String> {
    let mut rule = vec!["-s".to_string(), format!("{from}/32")];
    if one_way {
        rule.extend(["-m", "conntrack", "--ctdir", "ORIGINAL"].map(String::from));
    }
    rule.extend(["-m", "comment", "--comment", tag, "-j", "DROP"].map(String::from));
    rule
}

/// Inserts (`add`) or deletes `rule` on the INPUT chain of the namespace of `pid`.
pub async fn set(pid: i64, rule: &[String], add: bool) -> Result<(), CutError> {
    let mut args = vec!["iptables", "-w", if add { "-I" } else { "-D" }, "INPUT"];
    args.extend(rule.iter().map(String::as_str));
    super::netns::run_in(pid, &args)
        .await
        .map(drop)
        .map_err(|e| CutError::Iptables {
            pid,
            detail: e.to_string(),
        })
}

/// The rules tagged `tag` in the namespace of `pid`, as `iptables -S` lists them.
pub async fn listed(pid: i64, tag: &str) -> Result<Vec<String>, CutError> {
    let rules = super::netns::run_in(pid, &["iptables", "-w", "-S", "INPUT"])
        .await
        .map_err(|e| CutError::Iptables {
            pid,
            detail: e.to_string(),
        })?;
    Ok(rules
        .lines()
        .filter(|l| l.contains(tag) && l.contains("DROP"))
        .map(str::to_string)
        .collect())
}

/// What a connection from inside a namespace got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reached {
    /// An answer (accepted, or refused by the peer's kernel) after this long.
    Answered(Duration),
    /// No answer within the timeout (or the network said unreachable).
    Silent,
}

/// A TCP connection to `ip:port` from inside the network namespace of `pid`, given `timeout`:
/// made on a thread of its own that enters the namespace (`setns`, needs root) and ends with
/// the connection, so no other task of the harness ever runs in the container's namespace.
pub async fn connect_from(
    pid: i64,
    ip: &str,
    port: u16,
    timeout: Duration,
) -> Result<Reached, CutError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ip: std::net::IpAddr = ip.parse().map_err(|_| CutError::NotAnAddress(ip.into()))?;
    std::thread::spawn(move || {
        let _ = tx.send(enter_and_connect(pid, (ip, port).into(), timeout));
    });
    rx.await.map_err(|_| CutError::Lost { pid })?
}

fn enter_and_connect(
    pid: i64,
    to: std::net::SocketAddr,
    timeout: Duration,
) -> Result<Reached, CutError> {
    use std::os::fd::AsRawFd;
    let enter = |source| CutError::Enter { pid, source };
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(enter)?;
    // SAFETY: setns on a valid descriptor; it changes only this thread, which ends after
    // this one connection.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(enter(std::io::Error::last_os_error()));
    }
    let started = Instant::now();
    match std::net::TcpStream::connect_timeout(&to, timeout) {
        Ok(_) => Ok(Reached::Answered(started.elapsed())),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Ok(Reached::Answered(started.elapsed()))
        }
        Err(_) => Ok(Reached::Silent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_way_rule_drops_only_the_original_direction() {
        let two = rule("10.0.0.1", false, "aftershock-cut-c");
        assert_eq!(
            two.join(" "),
            "-s 10.0.0.1/32 -m comment --comment aftershock-cut-c -j DROP"
        );
        let one = rule("10.0.0.1", true, "t").join(" ");
        assert!(one.contains("-m conntrack --ctdir ORIGINAL"), "{one}");
    }
}
