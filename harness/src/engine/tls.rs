//! The certificates that authenticate a run's machine engines: each run makes its own CA,
//! one server certificate for every machine's dockerd (its addresses on the run's network as
//! IP subject names) and one client certificate for the harness. They are written only under
//! the run's directory (`<run dir>/tls/`, private, removed with it): `machine/` holds what a
//! dockerd needs (`ca.pem`, `cert.pem`, `key.pem` for `--tlsverify --tlscacert --tlscert
//! --tlskey`), `client/` what the harness's client needs (the same names, as bollard's TLS
//! connector and `docker --tlsverify` read them). The CA's key is never written: nothing can
//! sign another certificate once the set is made.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub mod registry;

/// Why a run's certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Generating a key or signing a certificate failed.
    #[error("making the run's {what}: {source}")]
    Generate {
        /// Which certificate.
        what: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// A machine address is not an IP address.
    #[error("machine address `{address}` is not an IP address; the machines' certificate names them by IP")]
    Address {
        /// The address given.
        address: String,
    },
    /// The directory is unsafe (see `state`).
    #[error(transparent)]
    UnsafeDir(#[from] super::state::UnsafeDirError),
    /// Writing a file failed.
    #[error("write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Where a run's certificates are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTls {
    /// What every machine's dockerd reads (bind-mounted read-only into the machines).
    pub machine: PathBuf,
    /// What the harness's client presents.
    pub client: PathBuf,
    /// Its entry in the machine-wide registry (`registry`), removed with it.
    entry: Option<PathBuf>,
}

impl RunTls {
    /// Removes the run's certificates (once its machines are gone); what cannot be removed
    /// is logged.
    pub fn remove(&self) {
        let Some(dir) = self.machine.parent() else {
            return;
        };
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the run's certificates")
            }
            _ => {
                if let Some(entry) = &self.entry {
                    let _ = std::fs::remove_file(entry);
                }
            }
        }
    }
}

fn generate(what: &'static str) -> impl FnOnce(rcgen::Error) -> TlsError {
    move |source| TlsError::Generate { what, source }
}

/// Makes the run's CA, the machines' server certificate (for `addresses`) and the harness's
/// client certificate, writes them under `<run_dir>/tls/` and registers them machine-wide
/// (`registry`: whatever kills this process, the keys are removed after it).
pub fn make(run_dir: &Path, addresses: &[String]) -> Result<RunTls, TlsError> {
    make_registered(run_dir, addresses, &registry::dir()?)
}

/// [`make`], registered in `registry`.
pub fn make_registered(
    run_dir: &Path,
    addresses: &[String],
    registry: &Path,
) -> Result<RunTls, TlsError> {
    let dir = run_dir.join("tls");
    let run = run_dir.file_name().unwrap_or_default().to_string_lossy();
    // Registered before anything is written: a kill between the two leaves no key unlisted.
    let entry = registry::register(registry, &run, &dir)?;
    match write(run_dir, addresses) {
        Ok(tls) => Ok(RunTls {
            entry: Some(entry),
            ..tls
        }),
        Err(e) => {
            let _ = std::fs::remove_file(entry);
            Err(e)
        }
    }
}

/// Makes the set and writes it under `<run_dir>/tls/`.
fn write(run_dir: &Path, addresses: &[String]) -> Result<RunTls, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(generate("CA"))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "aftershock run CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(generate("CA key"))?;
    let ca_pem = ca.self_signed(&ca_key).map_err(generate("CA"))?.pem();
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::new(vec!["localhost".to_string()])
        .map_err(generate("machine certificate"))?;
    for address in addresses {
        let ip: IpAddr = address.parse().map_err(|_| TlsError::Address {
            address: address.clone(),
        })?;
        server.subject_alt_names.push(SanType::IpAddress(ip));
    }
    server
        .distinguished_name
        .push(DnType::CommonName, "aftershock machine");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(generate("machine key"))?;
    let server_pem = server
        .signed_by(&server_key, &issuer)
        .map_err(generate("machine certificate"))?
        .pem();

    let mut client =
        CertificateParams::new(Vec::<String>::new()).map_err(generate("client certificate"))?;
    client
        .distinguished_name
        .push(DnType::CommonName, "aftershock harness");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().map_err(generate("client key"))?;
    let client_pem = client
        .signed_by(&client_key, &issuer)
        .map_err(generate("client certificate"))?
        .pem();

    let dir = run_dir.join("tls");
    std::fs::create_dir_all(run_dir).map_err(|source| TlsError::Write {
        path: run_dir.to_path_buf(),
        source,
    })?;
    super::state::private_dir(&dir)?;
    let tls = RunTls {
        machine: dir.join("machine"),
        client: dir.join("client"),
        entry: None,
    };
    write_set(
        &tls.machine,
        &ca_pem,
        &server_pem,
        &server_key.serialize_pem(),
    )?;
    write_set(
        &tls.client,
        &ca_pem,
        &client_pem,
        &client_key.serialize_pem(),
    )?;
    Ok(tls)
}

/// Writes `ca.pem`, `cert.pem` and `key.pem` (mode 0600, never through a link) into `dir`.
fn write_set(dir: &Path, ca: &str, cert: &str, key: &str) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    super::state::private_dir(dir)?;
    for (name, text) in [("ca.pem", ca), ("cert.pem", cert), ("key.pem", key)] {
        let path = dir.join(name);
        let written = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        written.map_err(|source| TlsError::Write { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
