//! The run's certificates against a real TLS server that verifies clients as dockerd's
//! `--tlsverify` does (a client certificate signed by the run's CA is required).

use super::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::sync::Arc;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aftershock-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// [`super::make`] with a registry of its own inside the run directory (not the machine's).
fn make(run_dir: &Path, addresses: &[String]) -> Result<RunTls, TlsError> {
    let registry = run_dir.join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    make_registered(run_dir, addresses, &registry)
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn roots(dir: &Path) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&dir.join("ca.pem")) {
        roots.add(c).unwrap();
    }
    Arc::new(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server with the machines' certificate that requires a client certificate of the CA:
/// answers `ok` to one client, or gives the handshake's error.
fn serve_once(tls: &RunTls) -> (u16, std::thread::JoinHandle<Result<(), String>>) {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots(&tls.machine),
        provider(),
    )
    .build()
    .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls.machine.join("key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&tls.machine.join("cert.pem")), key)
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        let conn = rustls::ServerConnection::new(Arc::new(config)).map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        let mut asked = [0u8; 4];
        stream.read_exact(&mut asked).map_err(|e| e.to_string())?;
        stream.write_all(b"ok").map_err(|e| e.to_string())?;
        stream.conn.send_close_notify();
        stream.flush().map_err(|e| e.to_string())
    });
    (port, server)
}

/// Asks the server once, presenting the client certificate of `with` (None: no certificate).
fn ask(port: u16, ca: &Path, with: Option<&Path>) -> Result<String, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(ca));
    let config = match with {
        Some(dir) => builder
            .with_client_auth_cert(
                certs(&dir.join("cert.pem")),
                PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    stream.write_all(b"ping").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(answer)
}

#[test]
fn the_harness_s_certificate_is_accepted_by_a_machine() {
    let run = scratch("accepted");
    let tls = make(&run, &["127.0.0.1".into(), "10.0.0.2".into()]).unwrap();
    let (port, server) = serve_once(&tls);
    let answer = ask(port, &tls.client, Some(&tls.client));
    assert_eq!(answer.as_deref(), Ok("ok"), "{:?}", server.join());
    let _ = std::fs::remove_dir_all(run);
}

#[test]
fn a_client_without_a_certificate_is_refused_at_the_handshake() {
    let run = scratch("refused");
    let tls = make(&run, &["127.0.0.1".into()]).unwrap();
    let (port, server) = serve_once(&tls);
    let answer = ask(port, &tls.client, None);
    assert!(answer.is_err(), "{answer:?}");
    let refused = server.join().unwrap().expect_err("the server refuses");
    assert!(refused.contains("certificate"), "{refused}");
    let _ = std::fs::remove_dir_all(run);
}

#[test]
fn a_certificate_of_another_run_is_refused() {
    let (ours, theirs) = (scratch("ours"), scratch("theirs"));
    let tls = make(&ours, &["127.0.0.1".into()]).unwrap();
    let other = make(&theirs, &["127.0.0.1".into()]).unwrap();
    let (port, server) = serve_once(&tls);
    let answer = ask(port, &tls.client, Some(&other.client));
    assert!(answer.is_err(), "{answer:?}");
    assert!(server.join().unwrap().is_err());
    let _ = std::fs::remove_dir_all(ours);
    let _ = std::fs::remove_dir_all(theirs);
}

#[test]
fn the_set_is_private_and_the_ca_key_is_never_written() {
    use std::os::unix::fs::MetadataExt;
    let run = scratch("files");
    let tls = make(&run, &["10.0.0.2".into()]).unwrap();
    for dir in [&tls.machine, &tls.client] {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["ca.pem", "cert.pem", "key.pem"]);
        assert_eq!(std::fs::metadata(dir).unwrap().mode() & 0o777, 0o700);
        let key = std::fs::metadata(dir.join("key.pem")).unwrap();
        assert_eq!(key.mode() & 0o777, 0o600);
    }
    let all = std::fs::read_dir(run.join("tls")).unwrap().count();
    assert_eq!(all, 2, "machine/ and client/ only: no CA key");
    let bad = make(&scratch("bad"), &["m1".into()]).unwrap_err();
    assert!(matches!(bad, TlsError::Address { .. }), "{bad}");
    let _ = std::fs::remove_dir_all(run);
}

#[test]
fn removing_the_certificates_leaves_the_rest_of_the_run_directory() {
    let run = scratch("removed");
    let tls = make(&run, &["10.0.0.2".into()]).unwrap();
    std::fs::write(run.join("report.json"), "{}").unwrap();
    tls.remove();
    assert!(
        !run.join("tls").exists(),
        "the certificates are still there"
    );
    assert!(
        run.join("report.json").exists(),
        "removed more than the certificates"
    );
    tls.remove(); // a second time (down, then drop) is quiet
    let _ = std::fs::remove_dir_all(run);
}

/// An `https://` machine is verified by bollard's client as the harness makes it
/// (`remote::client`): a server whose certificate another CA signed fails the handshake, and
/// the same server is spoken to (the handshake done, both certificates accepted) with the CA
/// that signed it.
#[tokio::test]
async fn an_https_machine_is_verified_against_its_ca() {
    use crate::scenario::engine_url::EngineUrl;
    let (ours, theirs) = (scratch("https-ours"), scratch("https-theirs"));
    let tls = make(&ours, &["127.0.0.1".into()]).unwrap();
    let other = make(&theirs, &["127.0.0.1".into()]).unwrap();
    let url = |port: u16, certs: &Path| {
        let text = format!("https://127.0.0.1:{port}");
        EngineUrl::parse(&text, Some(certs.to_path_buf()), None).unwrap()
    };
    let wait = std::time::Duration::from_secs(5);
    let (port, server) = serve_once(&tls);
    let e = crate::engine::remote::connect("east", &url(port, &other.client), wait)
        .await
        .expect_err("a machine another CA vouches for is refused");
    let refused = tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    assert!(refused.is_err(), "the handshake completed: {e}");
    let (port, server) = serve_once(&tls);
    // Not an engine (it answers `ok`, not HTTP), but the TLS handshake completes.
    let _ = crate::engine::remote::connect("east", &url(port, &tls.client), wait).await;
    let spoken = tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    assert_eq!(spoken, Ok(()), "the right CA and client certificate");
    let _ = std::fs::remove_dir_all(ours);
    let _ = std::fs::remove_dir_all(theirs);
}

/// Rewrites a registry entry's owner (as if another process had made the set).
fn owned_by(registry: &Path, run: &str, owner: &str) {
    let entry = registry.join(run);
    let text = std::fs::read_to_string(&entry).unwrap();
    let (_, dir) = text.split_once('\n').unwrap();
    std::fs::write(entry, format!("{owner}\n{dir}")).unwrap();
}

/// The identity of a process that was SIGKILLed (and waited for).
fn killed_process() -> String {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let owner = crate::engine::owner::process_identity(child.id()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    owner
}

#[test]
fn a_killed_run_s_keys_are_reaped_and_a_live_run_s_are_kept() {
    let root = scratch("reap");
    let registry = root.join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let (dead, live) = (root.join("run-dead"), root.join("run-live"));
    let a = make_registered(&dead, &["10.0.0.2".into()], &registry).unwrap();
    let b = make_registered(&live, &["10.0.0.3".into()], &registry).unwrap();
    std::fs::write(dead.join("report.json"), "{}").unwrap();
    owned_by(&registry, "run-dead", &killed_process());
    assert_eq!(registry::reap_dead_in(&registry), 1, "one dead run");
    assert!(!dead.join("tls").exists(), "the dead run's keys are left");
    assert!(
        dead.join("report.json").exists(),
        "removed more than the keys"
    );
    assert!(!registry.join("run-dead").exists(), "its entry is left");
    assert!(
        b.client.join("key.pem").exists(),
        "a live run's keys were removed"
    );
    assert_eq!(registry::reap_dead_in(&registry), 0);
    // The watchdog's path: one run's keys, by its id, once its process is gone.
    assert!(registry::remove_run_in(&registry, "run-live"));
    assert!(!live.join("tls").exists() && !registry.join("run-live").exists());
    // The normal path: removed with the set, entry included.
    let c = make_registered(&root.join("run-done"), &["10.0.0.4".into()], &registry).unwrap();
    c.remove();
    assert_eq!(std::fs::read_dir(&registry).unwrap().count(), 0);
    drop(a);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_reaper_never_follows_a_link_where_a_run_s_keys_were() {
    let root = scratch("reap-link");
    let registry = root.join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let run = root.join("run-x");
    make_registered(&run, &["10.0.0.2".into()], &registry).unwrap();
    let elsewhere = root.join("someone-else");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("keep"), "x").unwrap();
    std::fs::remove_dir_all(run.join("tls")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, run.join("tls")).unwrap();
    owned_by(&registry, "run-x", &killed_process());
    assert_eq!(registry::reap_dead_in(&registry), 0);
    assert!(elsewhere.join("keep").exists(), "followed the link");
    assert!(
        !registry.join("run-x").exists(),
        "the entry is gone all the same"
    );
    let _ = std::fs::remove_dir_all(root);
}
