//! Building every image locally — nothing is ever pulled (no registry is reachable).
//!
//! `images/base/mkrootfs.sh` makes a Debian rootfs with debootstrap; it is imported through the
//! Engine API as `aftershock/base:<hash>`. Each `images/<service>/` directory is then built on
//! top of it with the classic builder (BuildKit needs the network). Tags are content hashes of
//! the inputs (files, and the workspace binaries an image lists in its `binaries` file), so a
//! second build is a no-op. A file lock keeps two processes from building at once.

use crate::error::{HarnessError, Result};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The service images, by the name of their directory in `images/`.
pub const SERVICE_IMAGES: &[&str] = &[
    "zookeeper",
    "consul",
    "memcached",
    "registry",
    "postgres",
    "toy-api",
    "datastore",
    "machine",
    "machine-unit",
];

/// The tags of a complete, built image set.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub base: String,
    pub services: BTreeMap<String, String>,
}

impl ImageSet {
    /// The tag of a service image (`zookeeper` → `aftershock/zookeeper:<hash>`).
    pub fn tag(&self, service: &str) -> Result<&str> {
        self.services
            .get(service)
            .map(String::as_str)
            .ok_or_else(|| HarnessError::ImageMissing {
                image: format!("aftershock/{service}"),
            })
    }
}

/// The project's root (the workspace): `AFTERSHOCK_ROOT`, else where this crate was built.
pub fn project_root() -> PathBuf {
    std::env::var_os("AFTERSHOCK_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
            harness.parent().unwrap_or(harness).to_path_buf()
        })
}

/// Where runs and builds keep their files: `<root>/target/aftershock`.
pub fn work_dir() -> PathBuf {
    project_root().join("target").join("aftershock")
}

/// Machine-wide locks live here (`/tmp/aftershock`): the engine and the CPUs are shared by
/// every checkout on the machine, so builds and timed runs must not overlap across them either.
pub fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("aftershock")
}

fn hash_dir(hasher: &mut Sha256, dir: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(HarnessError::io(format!("read {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in files {
        let bytes = std::fs::read(&f).map_err(HarnessError::io(format!("read {}", f.display())))?;
        hasher.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(())
}

fn short(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The workspace binaries an image needs (its `binaries` file, one name per line).
fn binaries_of(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("binaries"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Builds the workspace binaries with one cargo invocation (release) and returns their paths.
fn build_binaries(names: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let root = project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--quiet", "--workspace"]);
    for n in names {
        cmd.args(["--bin", n]);
    }
    let status = cmd
        .status()
        .map_err(HarnessError::io("run cargo to build the image binaries"))?;
    if !status.success() {
        return Err(HarnessError::ImageBuild {
            image: names.join(", "),
            message: format!("`cargo build --release` of {names:?} failed ({status})"),
        });
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(names
        .iter()
        .map(|n| (n.clone(), target.join("release").join(n)))
        .collect())
}

/// Builds a workspace binary that runs on the host (lossyfs) with `cargo build --release`,
/// holding the build lock, and returns its path.
pub async fn host_binary(name: &str) -> Result<PathBuf> {
    let _lock = FileLock::acquire(lock_dir().join("images.lock")).await?;
    let names = vec![name.to_string()];
    let built = tokio::task::spawn_blocking(move || build_binaries(&names))
        .await
        .expect("build thread panicked")?;
    Ok(built.into_iter().next().map(|(_, p)| p).unwrap_or_default())
}

async fn image_exists(docker: &Docker, tag: &str) -> bool {
    docker.inspect_image(tag).await.is_ok()
}

/// An exclusive lock on a file, released on drop.
pub struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    /// Blocks (in a blocking thread) until the lock at `path` is ours.
    pub async fn acquire(path: PathBuf) -> Result<Self> {
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(HarnessError::io(format!("create {}", dir.display())))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(HarnessError::io(format!("open lock {}", path.display())))?;
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(HarnessError::io(format!("lock {}", path.display()))(
                    std::io::Error::last_os_error(),
                ));
            }
            Ok(FileLock { _file: file })
        })
        .await
        .expect("lock thread panicked")
    }
}

/// Makes sure every image exists, building what is missing. Returns the tags.
pub async fn ensure(docker: &Docker) -> Result<ImageSet> {
    let _lock = FileLock::acquire(lock_dir().join("images.lock")).await?;
    let root = project_root().join("images");
    // The workspace binaries and the base rootfs do not depend on each other: cargo (CPU)
    // runs while debootstrap (mostly downloads and unpacking) does, which saves most of the
    // shorter of the two on a cold machine.
    let wanted: Vec<String> = SERVICE_IMAGES
        .iter()
        .flat_map(|name| binaries_of(&root.join(name)))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let cargo = tokio::task::spawn_blocking(move || build_binaries(&wanted));
    let mut hasher = Sha256::new();
    hash_dir(&mut hasher, &root.join("base"))?;
    let base = format!("aftershock/base:{}", short(hasher));
    let base_built = if image_exists(docker, &base).await {
        Ok(())
    } else {
        build_base(docker, &root.join("base"), &base).await
    };
    let built = cargo.await.map_err(|e| HarnessError::ImageBuild {
        image: "workspace binaries".into(),
        message: e.to_string(),
    })??;
    base_built?;
    let mut services = BTreeMap::new();
    for name in SERVICE_IMAGES {
        let dir = root.join(name);
        let binaries: Vec<(String, PathBuf)> = binaries_of(&dir)
            .into_iter()
            .map(|n| {
                let path = built[&n].clone();
                (n, path)
            })
            .collect();
        let mut hasher = Sha256::new();
        hasher.update(base.as_bytes());
        hash_dir(&mut hasher, &dir)?;
        for (_, path) in &binaries {
            let bytes = std::fs::read(path)
                .map_err(HarnessError::io(format!("read {}", path.display())))?;
            hasher.update(&bytes);
        }
        let tag = format!("aftershock/{name}:{}", short(hasher));
        if !image_exists(docker, &tag).await {
            let started = Instant::now();
            build_service(docker, &dir, &binaries, &base, &tag).await?;
            tracing::info!(image = %tag, seconds = started.elapsed().as_secs_f64(), "built");
            eprintln!(
                "aftershock: built {tag} in {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        services.insert(name.to_string(), tag);
    }
    Ok(ImageSet { base, services })
}

async fn build_base(docker: &Docker, dir: &Path, tag: &str) -> Result<()> {
    let started = Instant::now();
    let tmp = work_dir().join("tmp");
    std::fs::create_dir_all(&tmp).map_err(HarnessError::io(format!("create {}", tmp.display())))?;
    let tar = tmp.join("base-rootfs.tar");
    eprintln!("aftershock: building the base rootfs with debootstrap (about 80 s, once)...");
    let script = dir.join("mkrootfs.sh");
    let status = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(&tar)
        .kill_on_drop(true)
        .status()
        .await
        .map_err(HarnessError::io(format!("run {}", script.display())))?;
    if !status.success() {
        return Err(HarnessError::ImageBuild {
            image: tag.into(),
            message: format!(
                "{} failed ({status}); its output above says why",
                script.display()
            ),
        });
    }
    let (repo, version) = tag.split_once(':').unwrap_or((tag, "latest"));
    let file = tokio::fs::File::open(&tar)
        .await
        .map_err(HarnessError::io(format!("open {}", tar.display())))?;
    let body = file_chunks(file);
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .build();
    let mut stream = docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    while let Some(item) = stream.next().await {
        item.map_err(|e| HarnessError::ImageBuild {
            image: tag.into(),
            message: format!("import: {e}"),
        })?;
    }
    let _ = std::fs::remove_file(&tar);
    eprintln!(
        "aftershock: built {tag} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A file as a stream of 1 MiB chunks (request bodies: image imports and loads).
pub(crate) fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::result::Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}

/// The build context of a service image: its directory, plus `bin/<name>` for each binary.
fn context_tar(dir: &Path, binaries: &[(String, PathBuf)]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.sparse(false); // the classic builder rejects GNU sparse headers
    let err = |e| HarnessError::io(format!("pack the build context of {}", dir.display()))(e);
    builder.append_dir_all(".", dir).map_err(err)?;
    for (name, path) in binaries {
        builder
            .append_path_with_name(path, format!("bin/{name}"))
            .map_err(err)?;
    }
    builder.into_inner().map_err(err)
}

async fn build_service(
    docker: &Docker,
    dir: &Path,
    binaries: &[(String, PathBuf)],
    base: &str,
    tag: &str,
) -> Result<()> {
    let context = context_tar(dir, binaries)?;
    let args = HashMap::from([("BASE", base)]);
    let labels = HashMap::from([("aftershock.image", "true")]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&args)
        .labels(&labels)
        .version(BuilderVersion::BuilderV1)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut log = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = info.stream {
                    log.push_str(&s);
                }
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    return Err(HarnessError::ImageBuild {
                        image: tag.into(),
                        message: format!("{e}\n{log}"),
                    });
                }
            }
            Err(e) => {
                return Err(HarnessError::ImageBuild {
                    image: tag.into(),
                    message: format!("{e}\n{log}"),
                })
            }
        }
    }
    if !image_exists(docker, tag).await {
        return Err(HarnessError::ImageBuild {
            image: tag.into(),
            message: format!("the build ended without an image\n{log}"),
        });
    }
    Ok(())
}
