//! Inner engines: the dockerd inside each machine (Docker-in-Docker), reached through the Engine
//! API at the machine's address on the run's network (`https://<ip>:2376`, with the run's client
//! certificate: `tls`), exactly as the engine of a separate host would be — so a topology can
//! later map machines to remote engines.
//!
//! Here: connecting and waiting for an inner engine, loading images into it (`docker save` from
//! the host engine once, cached on disk, then `docker load` into each machine), following its
//! event stream across its crashes, and the image operations of the push/pull probe.
//! Still the engine layer: nothing outside `engine/` uses bollard.

use super::error::{EngineError, Result};
use super::tls::RunTls;
use crate::scenario::engine_url::EngineUrl;
use crate::timeline::{now, Event, EventKind, Timeline};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, EventsOptionsBuilder, ImportImageOptionsBuilder,
    PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Where each machine's dockerd listens on the run's network (TLS, client certificates verified).
pub const PORT: u16 = crate::scenario::Preset::Machine.port();
/// The API version an inner engine's client starts from: bollard's own, lowered to the engine's
/// once it answers ([`Inner::wait_up`], `platform::negotiate`).
const API: &ClientVersion = bollard::API_DEFAULT_VERSION;
/// The tiny image the push/pull probe sends through the registry (one file, a few hundred bytes).
pub const PROBE_IMAGE: &str = "aftershock/probe";

/// The directory of the client certificate a machine of the run is reached with.
fn client_certs<'a>(machine: &str, ip: &str, tls: Option<&'a RunTls>) -> Result<&'a Path> {
    tls.map(|t| t.client.as_path())
        .ok_or_else(|| EngineError::MachineUnreachable {
            machine: machine.into(),
            url: format!("https://{ip}:{PORT}"),
            detail: "the run made no client certificate for its machines".into(),
        })
}

/// The URL of the engine of a machine of the run: https, with the run's client certificate.
pub fn url(machine: &str, ip: &str, tls: Option<&RunTls>) -> Result<EngineUrl> {
    Ok(EngineUrl::Https {
        host: ip.into(),
        port: PORT,
        certs: client_certs(machine, ip, tls)?.to_path_buf(),
    })
}

/// The engine of one machine.
#[derive(Clone)]
pub struct Inner {
    /// The machine's replica name (`m1`).
    pub machine: String,
    pub docker: Docker,
}

impl Inner {
    /// A client for the engine of `machine` at `ip`, presenting the run's client certificate
    /// (does not check that it answers).
    pub fn connect(
        machine: &str,
        ip: &str,
        tls: Option<&RunTls>,
        timeout: Duration,
    ) -> Result<Inner> {
        let certs = client_certs(machine, ip, tls)?;
        let docker = Docker::connect_with_ssl(
            &format!("tcp://{ip}:{PORT}"),
            &certs.join("key.pem"),
            &certs.join("cert.pem"),
            &certs.join("ca.pem"),
            timeout.as_secs().max(1),
            API,
        )
        .map_err(EngineError::refused(format!(
            "connect to {machine}'s engine"
        )))?;
        Ok(Inner {
            machine: machine.into(),
            docker,
        })
    }

    /// Whether the engine answers `/_ping` within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        self.answers(timeout).await.is_ok()
    }

    /// The engine's answer to `/_ping` within `timeout`, or why there is none (a refused
    /// handshake, no listener, no answer in time).
    pub async fn answers(&self, timeout: Duration) -> Result<()> {
        match tokio::time::timeout(timeout, self.docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(EngineError::refused(format!(
                "answer /_ping on {}'s engine",
                self.machine
            ))(e)),
            Err(_) => Err(EngineError::TimedOut {
                what: format!("{}'s engine", self.machine),
                timeout,
                last: "no answer to /_ping".into(),
            }),
        }
    }

    /// Polls `/_ping` until it answers; returns how long that took.
    pub async fn wait_up(&self, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        let mut last = "no answer to /_ping".to_string();
        while started.elapsed() < timeout {
            match self.answers(Duration::from_millis(500)).await {
                // Clones share the negotiated version: every holder of this client speaks it.
                Ok(()) => match super::platform::negotiate(self.docker.clone()).await {
                    Ok(_) => return Ok(started.elapsed()),
                    Err(e) => last = format!("negotiate the API version: {e}"),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(EngineError::TimedOut {
            what: format!("{}'s engine", self.machine),
            timeout,
            last,
        })
    }

    /// `docker load` of a saved image file.
    pub async fn load(&self, saved: &std::path::Path) -> Result<()> {
        let file = tokio::fs::File::open(saved)
            .await
            .map_err(EngineError::io(format!("open {}", saved.display())))?;
        let body = super::images::file_chunks(file);
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut stream = self.docker.import_image_stream(options, body, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(EngineError::refused(format!(
                "load {} into {}'s engine",
                saved.display(),
                self.machine
            )))?;
            if let Some(e) = info.error_detail.and_then(|d| d.message) {
                return Err(EngineError::ImageBuild {
                    image: saved.display().to_string(),
                    message: format!("docker load into {}: {e}", self.machine),
                });
            }
        }
        Ok(())
    }

    /// Imports the probe's tiny image (`docker import` of a one-file rootfs).
    pub async fn import_probe_image(&self) -> Result<()> {
        let mut builder = tar::Builder::new(Vec::new());
        let text = b"aftershock push/pull probe\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let err = |e| EngineError::io("pack the probe image")(e);
        builder
            .append_data(&mut header, "aftershock-probe", &text[..])
            .map_err(err)?;
        let rootfs = builder.into_inner().map_err(err)?;
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(PROBE_IMAGE)
            .tag("latest")
            .build();
        let mut stream =
            self.docker
                .create_image(Some(options), Some(bollard::body_full(rootfs.into())), None);
        while let Some(item) = stream.next().await {
            item.map_err(EngineError::refused(format!(
                "import the probe image into {}",
                self.machine
            )))?;
        }
        Ok(())
    }

    /// Tags the probe image as `<registry>/aftershock/probe:<tag>` and pushes it.
    pub async fn push(&self, registry: &str, tag: &str) -> Result<()> {
        let repo = format!("{registry}/{PROBE_IMAGE}");
        self.docker
            .tag_image(
                PROBE_IMAGE,
                Some(
                    TagImageOptionsBuilder::default()
                        .repo(&repo)
                        .tag(tag)
                        .build(),
                ),
            )
            .await
            .map_err(EngineError::refused(format!("tag {repo}:{tag}")))?;
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self.docker.push_image(&repo, Some(options), None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(EngineError::refused(format!("push {repo}:{tag}")))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                let action = format!("push {repo}:{tag}");
                return Err(EngineError::Reported { action, message });
            }
        }
        Ok(())
    }

    /// Removes the local `<registry>/aftershock/probe:<tag>`, then pulls it from the registry.
    pub async fn pull(&self, registry: &str, tag: &str) -> Result<()> {
        let repo = format!("{registry}/{PROBE_IMAGE}");
        let name = format!("{repo}:{tag}");
        let _ = self
            .docker
            .remove_image(
                &name,
                Some(RemoveImageOptionsBuilder::default().noprune(true).build()),
                None,
            )
            .await;
        let options = CreateImageOptionsBuilder::default()
            .from_image(&repo)
            .tag(tag)
            .build();
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(EngineError::refused(format!("pull {name}")))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                let action = format!("pull {name}");
                return Err(EngineError::Reported { action, message });
            }
        }
        self.docker
            .inspect_image(&name)
            .await
            .map(|_| ())
            .map_err(EngineError::refused(format!(
                "inspect {name} (the pull ended without the image)"
            )))
    }
}

impl Inner {
    /// Every container of the engine as `name: state (status)`, for the end-of-run note.
    pub async fn container_states(&self) -> Result<Vec<String>> {
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .build();
        let list =
            self.docker
                .list_containers(Some(options))
                .await
                .map_err(EngineError::refused(format!(
                    "list {}'s containers",
                    self.machine
                )))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_default();
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                format!(
                    "{}: {state} ({})",
                    name.trim_start_matches('/'),
                    c.status.unwrap_or_default()
                )
            })
            .collect())
    }
}

/// `docker save` of `image` from the host engine, cached in `<output root>/saved/` by tag
/// (tags are content hashes, so a cached file is never stale; the files of the image's older
/// tags are removed when a new one is saved). Returns the file.
pub async fn saved(host: &Docker, image: &str, output: &std::path::Path) -> Result<PathBuf> {
    let dir = output.join("saved");
    std::fs::create_dir_all(&dir).map_err(EngineError::io(format!("create {}", dir.display())))?;
    let file = dir.join(format!("{}.tar", image.replace(['/', ':'], "_")));
    if file.is_file() {
        return Ok(file);
    }
    // Two saves of one image at once (machines given it concurrently) each write their own.
    let partial = file.with_extension(format!(
        "partial-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut out = tokio::fs::File::create(&partial)
        .await
        .map_err(EngineError::io(format!("create {}", partial.display())))?;
    let mut stream = host.export_image(image);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(EngineError::refused(format!("save image {image}")))?;
        tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
            .await
            .map_err(EngineError::io(format!("write {}", partial.display())))?;
    }
    tokio::io::AsyncWriteExt::flush(&mut out)
        .await
        .map_err(EngineError::io(format!("write {}", partial.display())))?;
    std::fs::rename(&partial, &file)
        .map_err(EngineError::io(format!("rename to {}", file.display())))?;
    remove_older_tags(&dir, image);
    Ok(file)
}

/// Removes the saved files of `image`'s other tags (a run loading one still reads it: an open
/// file outlives its name).
fn remove_older_tags(dir: &std::path::Path, image: &str) {
    let Some((repository, tag)) = image.rsplit_once(':') else {
        return;
    };
    let prefix = format!("{}_", repository.replace('/', "_"));
    let keep = format!("{prefix}{tag}.tar");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let older = name
            .strip_prefix(&prefix)
            .is_some_and(|rest| name != keep && rest.ends_with(".tar") && !rest.contains('_'));
        if older {
            tracing::debug!(file = %name, "removing the saved file of an older tag of {repository}");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Follows one machine's engine events (containers only) onto the timeline as
/// `<machine>/<container>` (a replica placed there: by its replica name, as on the host), reconnecting after each crash of its dockerd and asking the new
/// daemon for what happened since the last event seen (so the deaths and removals of its
/// restore are recorded too). Runs until aborted.
pub fn record(inner: Inner, timeline: Timeline, run: super::RunEngine) -> JoinHandle<()> {
    tokio::spawn(async move {
        let filters = HashMap::from([("type".to_string(), vec!["container".to_string()])]);
        let mut since = now() - 1_000_000_000;
        let mut connected = true;
        // Bounded: one attempt per 200 ms for a day at most; the run aborts the task long before.
        for _ in 0..432_000u32 {
            let from = format!("{}.{:09}", since / 1_000_000_000, since % 1_000_000_000);
            let options = EventsOptionsBuilder::default()
                .since(&from)
                .filters(&filters)
                .build();
            let mut stream = inner.docker.events(Some(options));
            while let Some(item) = stream.next().await {
                let Ok(message) = item else { break };
                if !connected {
                    connected = true;
                    timeline.note(format!("{}: event stream reconnected", inner.machine));
                }
                let at = message.time_nano.unwrap_or_else(now);
                if at <= since {
                    continue;
                }
                since = at;
                let action = message.action.unwrap_or_default();
                if action.starts_with("exec_") || action == "attach" || action == "resize" {
                    continue;
                }
                let attributes = message.actor.and_then(|a| a.attributes).unwrap_or_default();
                let name = attributes.get("name").cloned().unwrap_or_default();
                let action = match (action.as_str(), attributes.get("exitCode")) {
                    ("die", Some(code)) => format!("die (exit {code})"),
                    _ => action,
                };
                let container = match run.replica_of(&name) {
                    Some(replica) if matches!(run.route(&replica), super::Route::Machine(_)) => {
                        replica
                    }
                    _ => format!("{}/{name}", inner.machine),
                };
                timeline.push(Event {
                    at,
                    kind: EventKind::Container { container, action },
                });
            }
            connected = false;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn saving_a_new_tag_removes_the_files_of_the_older_tags_of_that_image_only() {
        let dir = std::env::temp_dir().join(format!("aftershock-saved-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = [
            "aftershock_machine_old1.tar",
            "aftershock_machine_new2.tar",
            "aftershock_machine-unit_old1.tar",
            "aftershock_zookeeper_old1.tar",
        ];
        for name in names {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        super::remove_older_tags(&dir, "aftershock/machine:new2");
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            left,
            [
                "aftershock_machine-unit_old1.tar",
                "aftershock_machine_new2.tar",
                "aftershock_zookeeper_old1.tar"
            ]
        );
    }
}
