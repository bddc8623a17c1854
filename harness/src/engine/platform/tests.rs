//! Negotiation on the wire, against a fake engine on a unix socket that answers as Docker's
//! version middleware does: a request whose `/vX.Y` prefix is above the API version it offers
//! is refused (`client version 1.53 is too new`), as 20.10 refuses it. It records every path.
//! Seen with bollard 0.21.1: `/version`, `/_ping`, `/version`, `/info`, no prefix at all (its
//! URI joins the absolute path over `/v1.53`), so an engine answers in its own newest API.

use super::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// A fake engine offering API `offers`; returns its socket and the paths it was asked for.
fn fake_engine(dir: &std::path::Path, offers: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let socket = dir.join("engine.sock");
    let listener = UnixListener::bind(&socket).expect("bind the fake engine's socket");
    let paths = Arc::new(Mutex::new(vec![]));
    let seen = paths.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = conn.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..end + 4);
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                        seen.lock().unwrap().push(path.clone());
                        let (status, body) = answer(&path, offers);
                        let reply = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (socket.to_string_lossy().into_owned(), paths)
}

fn answer(path: &str, offers: &str) -> (&'static str, String) {
    let path = path.split('?').next().unwrap_or("");
    let path = path.trim_start_matches('/');
    let (version, rest) = match path.split_once('/') {
        Some((v, rest))
            if v.starts_with('v') && v[1..].starts_with(|c: char| c.is_ascii_digit()) =>
        {
            (Some(&v[1..]), rest)
        }
        _ => (None, path),
    };
    let number = |v: &str| -> (u32, u32) {
        let (a, b) = v.split_once('.').unwrap_or((v, "0"));
        (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
    };
    if let Some(v) = version.filter(|v| number(v) > number(offers)) {
        let message =
            format!("client version {v} is too new. Maximum supported API version is {offers}");
        return ("400 Bad Request", format!(r#"{{"message":"{message}"}}"#));
    }
    match rest {
        "version" => (
            "200 OK",
            format!(
                r#"{{"Version":"fake","ApiVersion":"{offers}","MinAPIVersion":"1.12","KernelVersion":"6.1.0-fake","Components":[{{"Name":"Engine","Version":"fake"}}]}}"#
            ),
        ),
        "info" => (
            "200 OK",
            r#"{"CgroupVersion":"1","CgroupDriver":"cgroupfs"}"#.to_string(),
        ),
        "_ping" => ("200 OK", "OK".to_string()),
        _ => ("404 Not Found", r#"{"message":"not here"}"#.to_string()),
    }
}

async fn negotiated_with(offers: &'static str) -> (Platform, Vec<String>) {
    let dir = std::env::temp_dir().join(format!(
        "aftershock-platform-test-{}-{offers}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let (socket, paths) = fake_engine(&dir, offers);
    let docker = Docker::connect_with_unix(&socket, 5, bollard::API_DEFAULT_VERSION)
        .expect("a client for the fake engine");
    let docker = negotiate(docker)
        .await
        .expect("negotiation with the fake engine");
    docker.ping().await.expect("a ping after negotiation");
    let platform = read(&docker).await;
    let paths = paths.lock().unwrap().clone();
    let _ = std::fs::remove_dir_all(&dir);
    (platform, paths)
}

#[tokio::test]
async fn an_engine_of_1_41_negotiates_down_and_is_never_asked_above_it() {
    let (platform, paths) = negotiated_with("1.41").await;
    assert_eq!(platform.negotiated, "1.41", "paths asked: {paths:?}");
    assert_eq!(platform.api, "1.41");
    assert_eq!(platform.engine, "Docker Engine fake");
    assert_eq!(
        (platform.cgroup.as_str(), platform.cgroup_driver.as_str()),
        ("1", "cgroupfs")
    );
    // The middleware refuses anything above 1.41 with a 400: had one been sent, negotiation
    // or the ping above would have failed. The paths say what was on the wire.
    assert!(paths.iter().any(|p| p.ends_with("/version")), "{paths:?}");
    assert!(paths.iter().any(|p| p.ends_with("/_ping")), "{paths:?}");
}

#[tokio::test]
async fn a_current_engine_negotiates_its_own_version_not_1_41() {
    let (platform, paths) = negotiated_with("1.45").await;
    assert_eq!(platform.negotiated, "1.45", "paths asked: {paths:?}");
    assert!(
        platform.words().contains("negotiated 1.45"),
        "{}",
        platform.words()
    );
}
