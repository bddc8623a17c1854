//! Building every image locally — nothing is ever pulled (no registry is reachable).
//!
//! `images/base/mkrootfs.sh` makes a Debian rootfs with debootstrap; it is imported through the
//! Engine API as `aftershock/base:<hash>`. Each `images/<service>/` directory is then built on
//! top of it with the classic builder (BuildKit needs the network). Tags are content hashes of
//! the inputs (files, and the sources of the workspace binaries an image lists in its `binaries`
//! file), so they are known without building anything and a second build is a no-op: a run
//! asks only for the images it uses ([`needed_for`], [`ensure`]) and, when their tags exist,
//! neither cargo nor debootstrap runs. Everything a build writes (release binaries, the rootfs
//! tar) goes under the run's output root (`crate::output`), never into the source tree. A file
//! lock keeps two processes from building at once.

use super::error::{EngineError, Result};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The service images, by the name of their directory in `images/`.
pub use crate::scenario::PROJECT_IMAGES as SERVICE_IMAGES;

/// The tags of the built images a run asked for (and the base they are built on).
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The base image's tag.
    pub base: String,
    /// Each project image's tag, by its name (`zookeeper`).
    pub services: BTreeMap<String, String>,
}

impl ImageSet {
    /// The tag of a service image (`zookeeper` → `aftershock/zookeeper:<hash>`).
    pub fn tag(&self, service: &str) -> Result<&str> {
        self.services
            .get(service)
            .map(String::as_str)
            .ok_or_else(|| EngineError::ImageMissing {
                image: format!("aftershock/{service}"),
            })
    }
}

/// The project's root (the workspace): `AFTERSHOCK_ROOT`, else where this crate was built.
/// Where the aftershock sources are (`images/`, the workspace crates); nothing is written here.
pub fn project_root() -> PathBuf {
    std::env::var_os("AFTERSHOCK_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
            harness.parent().unwrap_or(harness).to_path_buf()
        })
}

/// Machine-wide locks live here (`/run/aftershock` for root, see [`super::state`]): the engine
/// and the CPUs are shared by every checkout on the machine, so builds and timed runs must not
/// overlap across them either. Created private; refused when unsafe.
pub fn lock_dir() -> Result<PathBuf> {
    Ok(super::state::state_dir()?)
}

/// Images that an image's users need as well: a machine loads the unit image
/// (`machine-unit`: consul, the registry, machine-init) into its own engine.
const DEPENDS: &[(&str, &[&str])] = &[("machine", &["machine-unit"])];

/// The project images a run of `names` needs: the names and, transitively, what they depend on.
pub fn needed_for<I, S>(names: I) -> BTreeSet<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut needed = BTreeSet::new();
    let mut todo: Vec<String> = names.into_iter().map(|n| n.as_ref().to_string()).collect();
    while let Some(name) = todo.pop() {
        if let Some((_, deps)) = DEPENDS.iter().find(|(n, _)| *n == name) {
            todo.extend(deps.iter().map(|d| d.to_string()));
        }
        needed.insert(name);
    }
    needed
}

fn hash_dir(hasher: &mut Sha256, dir: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(EngineError::io(format!("read {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in files {
        let bytes = std::fs::read(&f).map_err(EngineError::io(format!("read {}", f.display())))?;
        hasher.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(())
}

pub(crate) fn short(hasher: Sha256) -> String {
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

fn read_toml(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .map_err(EngineError::io(format!("read {}", path.display())))?;
    text.parse().map_err(|e| EngineError::ImageBuild {
        image: "workspace binaries".into(),
        message: format!("{}: {e}", path.display()),
    })
}

/// The sources of the workspace's binaries, read without cargo: which crate directory makes
/// each binary (package and `[[bin]]` names of the members) and each crate's path dependencies.
struct Workspace {
    root: PathBuf,
    /// Binary (or package) name → the member's directory, relative to the root.
    crates: BTreeMap<String, PathBuf>,
    /// A member's directory → the directories of its path dependencies, relative to the root.
    deps: BTreeMap<PathBuf, Vec<PathBuf>>,
}

impl Workspace {
    fn read(root: &Path) -> Result<Workspace> {
        let manifest = read_toml(&root.join("Cargo.toml"))?;
        let workspace = manifest.get("workspace").and_then(|w| w.as_table());
        let members: Vec<PathBuf> = workspace
            .and_then(|w| w.get("members"))
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(PathBuf::from))
            .collect();
        // `foo.workspace = true` dependencies that are paths in [workspace.dependencies].
        let shared: BTreeMap<String, PathBuf> = workspace
            .and_then(|w| w.get("dependencies"))
            .and_then(|d| d.as_table())
            .into_iter()
            .flatten()
            .filter_map(|(name, d)| Some((name.clone(), PathBuf::from(d.get("path")?.as_str()?))))
            .collect();
        let mut crates = BTreeMap::new();
        let mut deps = BTreeMap::new();
        for member in members {
            let cargo = read_toml(&root.join(&member).join("Cargo.toml"))?;
            let package = cargo.get("package").and_then(|p| p.get("name"));
            let bins = cargo
                .get("bin")
                .and_then(|b| b.as_array())
                .into_iter()
                .flatten()
                .filter_map(|b| b.get("name"));
            for name in package.into_iter().chain(bins).filter_map(|n| n.as_str()) {
                crates.insert(name.to_string(), member.clone());
            }
            let mut paths = vec![];
            for table in ["dependencies", "build-dependencies"] {
                for (name, dep) in cargo
                    .get(table)
                    .and_then(|d| d.as_table())
                    .into_iter()
                    .flatten()
                {
                    if let Some(path) = dep.get("path").and_then(|p| p.as_str()) {
                        paths.push(normalise(&member.join(path)));
                    } else if dep.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
                        paths.extend(shared.get(name).cloned());
                    }
                }
            }
            deps.insert(member, paths);
        }
        Ok(Workspace {
            root: root.to_path_buf(),
            crates,
            deps,
        })
    }

    /// A hash of everything a binary is built from: the workspace's `Cargo.toml` and
    /// `Cargo.lock`, and every file of its crate and of its path dependencies (by relative path).
    /// Equal sources give equal hashes wherever the tree lies; no cargo runs.
    fn source_hash(&self, binary: &str) -> Result<String> {
        let Some(dir) = self.crates.get(binary) else {
            return Err(EngineError::ImageBuild {
                image: binary.into(),
                message: format!(
                    "no workspace member in {} builds `{binary}`",
                    self.root.display()
                ),
            });
        };
        let mut dirs = BTreeSet::new();
        let mut todo = vec![dir.clone()];
        while let Some(d) = todo.pop() {
            if dirs.insert(d.clone()) {
                todo.extend(self.deps.get(&d).into_iter().flatten().cloned());
            }
        }
        let mut hasher = Sha256::new();
        hasher.update(binary.as_bytes());
        for file in ["Cargo.toml", "Cargo.lock"] {
            hash_file(&mut hasher, &self.root, Path::new(file))?;
        }
        for d in &dirs {
            let mut files = vec![];
            list_files(&self.root, d, &mut files)?;
            files.sort();
            for f in files {
                hash_file(&mut hasher, &self.root, &f)?;
            }
        }
        Ok(format!("{:x}", hasher.finalize()))
    }
}

/// `a/./b/../c` → `a/c` (member paths of path dependencies, without touching the disk).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Every file under `root/dir` (relative to `root`), skipping `target` and hidden directories.
pub(crate) fn list_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let full = root.join(dir);
    let entries =
        std::fs::read_dir(&full).map_err(EngineError::io(format!("read {}", full.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let relative = dir.join(&name);
        let kind = entry
            .file_type()
            .map_err(EngineError::io(format!("stat {}", relative.display())))?;
        if kind.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                list_files(root, &relative, out)?;
            }
        } else if kind.is_file() {
            out.push(relative);
        }
    }
    Ok(())
}

pub(crate) fn hash_file(hasher: &mut Sha256, root: &Path, relative: &Path) -> Result<()> {
    let path = root.join(relative);
    let bytes =
        std::fs::read(&path).map_err(EngineError::io(format!("read {}", path.display())))?;
    hasher.update(relative.as_os_str().as_encoded_bytes());
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(&bytes);
    Ok(())
}

/// Where release binaries are built: `<output root>/build` (never the source tree's target/).
fn build_dir(output: &Path) -> PathBuf {
    output.join("build")
}

/// The release binaries, from one cargo invocation in the source tree with `--locked` and the
/// target directory under the output root. Each binary carries a stamp of the source hash it
/// was built from: when every binary's stamp matches its sources, cargo is not run at all.
fn build_binaries(names: &[String], output: &Path) -> Result<BTreeMap<String, PathBuf>> {
    build_binaries_as(names, output, false)
}

/// [`build_binaries`], or with `statically` linked (glibc's `crt-static`, in a target directory
/// of their own): binaries that run in any container (`leak-agent` copied into any image).
fn build_binaries_as(
    names: &[String],
    output: &Path,
    statically: bool,
) -> Result<BTreeMap<String, PathBuf>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let root = project_root();
    let workspace = Workspace::read(&root)?;
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let (target, release) = if statically {
        let target = output.join("build-static");
        (target.clone(), target.join(&triple).join("release"))
    } else {
        (build_dir(output), build_dir(output).join("release"))
    };
    let stamps = target.join("aftershock-stamps");
    let mut wanted = BTreeMap::new();
    for n in names {
        wanted.insert(n.clone(), workspace.source_hash(n)?);
    }
    let path = |n: &str| release.join(n);
    let fresh = |n: &str, hash: &str| {
        path(n).is_file() && std::fs::read_to_string(stamps.join(n)).is_ok_and(|s| s == hash)
    };
    for (n, hash) in &wanted {
        if !fresh(n, hash) && super::bin_cache::restore(n, hash, statically, &path(n)) {
            std::fs::create_dir_all(&stamps)
                .and_then(|()| std::fs::write(stamps.join(n), hash))
                .map_err(EngineError::io(format!("write the stamp of {n}")))?;
        }
    }
    if wanted.iter().any(|(n, h)| !fresh(n, h)) {
        let started = Instant::now();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.current_dir(&root)
            .args(["build", "--release", "--locked", "--quiet", "--workspace"])
            .arg("--target-dir")
            .arg(&target);
        if statically {
            cmd.args(["--target", &triple])
                .env("RUSTFLAGS", "-C target-feature=+crt-static");
        }
        for n in names {
            cmd.args(["--bin", n]);
        }
        let out = cmd
            .output()
            .map_err(EngineError::io("run cargo to build the image binaries"))?;
        if !out.status.success() {
            return Err(EngineError::ImageBuild {
                image: names.join(", "),
                message: format!(
                    "`cargo build --release --locked` of {names:?} in {} failed ({}):\n{}",
                    root.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        std::fs::create_dir_all(&stamps)
            .map_err(EngineError::io(format!("create {}", stamps.display())))?;
        for (n, hash) in &wanted {
            std::fs::write(stamps.join(n), hash)
                .map_err(EngineError::io(format!("write the stamp of {n}")))?;
            super::bin_cache::keep(n, hash, statically, &path(n));
        }
        tracing::info!(
            binaries = ?names,
            seconds = started.elapsed().as_secs_f64(),
            "built the workspace binaries"
        );
    }
    Ok(names.iter().map(|n| (n.clone(), path(n))).collect())
}

/// A workspace binary that runs on the host (lossyfs), built under the output root with the
/// build lock held (no cargo at all when it is up to date); returns its path.
pub async fn host_binary(name: &str, output: &Path) -> Result<PathBuf> {
    binary(name, output, false).await
}

/// A workspace binary linked statically, to copy into containers of any image (`leak-agent`).
pub async fn static_binary(name: &str, output: &Path) -> Result<PathBuf> {
    binary(name, output, true).await
}

async fn binary(name: &str, output: &Path, statically: bool) -> Result<PathBuf> {
    let _lock = FileLock::acquire(lock_dir()?.join("images.lock")).await?;
    let names = vec![name.to_string()];
    let output = output.to_path_buf();
    let built = tokio::task::spawn_blocking(move || build_binaries_as(&names, &output, statically))
        .await
        .expect("build thread panicked")?;
    Ok(built.into_iter().next().map(|(_, p)| p).unwrap_or_default())
}

pub(crate) async fn image_exists(docker: &Docker, tag: &str) -> bool {
    docker.inspect_image(tag).await.is_ok()
}

/// A lock on a file (`flock`), exclusive unless taken shared, released on drop.
pub struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    /// The exclusive lock at `path` if it is free now, `None` when someone holds it.
    pub fn try_acquire(path: PathBuf) -> Result<Option<Self>> {
        Self::try_flock(path, libc::LOCK_EX)
    }

    /// The lock at `path` shared with other shared holders, if no one holds it exclusively now.
    pub fn try_acquire_shared(path: PathBuf) -> Result<Option<Self>> {
        Self::try_flock(path, libc::LOCK_SH)
    }

    fn try_flock(path: PathBuf, op: libc::c_int) -> Result<Option<Self>> {
        let file = open_lock(&path)?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) } == 0 {
            return Ok(Some(FileLock { _file: file }));
        }
        let error = std::io::Error::last_os_error();
        match error.kind() {
            std::io::ErrorKind::WouldBlock => Ok(None),
            _ => Err(EngineError::io(format!("lock {}", path.display()))(error)),
        }
    }

    /// Blocks (in a blocking thread) until the lock at `path` is ours.
    pub async fn acquire(path: PathBuf) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::acquire_blocking(path))
            .await
            .expect("lock thread panicked")
    }

    /// Blocks this thread until the lock at `path` is ours (queued in the kernel: first come,
    /// first served among blocked takers).
    pub fn acquire_blocking(path: PathBuf) -> Result<Self> {
        Self::flock(path, libc::LOCK_EX)
    }

    /// Blocks this thread until the lock at `path` is ours, shared with other shared holders.
    pub fn acquire_shared_blocking(path: PathBuf) -> Result<Self> {
        Self::flock(path, libc::LOCK_SH)
    }

    fn flock(path: PathBuf, op: libc::c_int) -> Result<Self> {
        let file = open_lock(&path)?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
            return Err(EngineError::io(format!("lock {}", path.display()))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(FileLock { _file: file })
    }
}

/// Opens (creating it and its directory) a lock file.
fn open_lock(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(EngineError::io(format!("create {}", dir.display())))?;
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
        .map_err(EngineError::io(format!("open lock {}", path.display())))
}

/// The tag of every image in `names` (content hashes of the image's directory, the base's tag
/// and the sources of its binaries): computed without building anything.
/// Tags by image name.
type Tags = BTreeMap<String, String>;

fn tags(root: &Path, base: &str, names: &BTreeSet<String>) -> Result<Tags> {
    let mut workspace = None;
    let mut tags = BTreeMap::new();
    for name in names {
        let dir = root.join("images").join(name);
        let mut hasher = Sha256::new();
        hasher.update(base.as_bytes());
        hash_dir(&mut hasher, &dir)?;
        for binary in binaries_of(&dir) {
            if workspace.is_none() {
                workspace = Some(Workspace::read(root)?);
            }
            let sources = workspace
                .as_ref()
                .expect("read above")
                .source_hash(&binary)?;
            hasher.update(binary.as_bytes());
            hasher.update(sources.as_bytes());
        }
        tags.insert(name.clone(), format!("aftershock/{name}:{}", short(hasher)));
    }
    Ok(tags)
}

/// Makes sure every project image of `names` exists — and every image they need
/// ([`needed_for`]) — building what is missing (and the base, when something is). Returns the
/// tags of those images. When every tag exists nothing is built: no cargo, no debootstrap.
/// Files of the build (binaries, temporary files) go under `output`.
pub async fn ensure(docker: &Docker, names: &BTreeSet<String>, output: &Path) -> Result<ImageSet> {
    let names = needed_for(names);
    if let Some(unknown) = names.iter().find(|n| !SERVICE_IMAGES.contains(&n.as_str())) {
        return Err(EngineError::ImageMissing {
            image: format!("aftershock/{unknown}"),
        });
    }
    let _lock = FileLock::acquire(lock_dir()?.join("images.lock")).await?;
    let root = project_root();
    let images = root.join("images");
    let mut hasher = Sha256::new();
    hash_dir(&mut hasher, &images.join("base"))?;
    let base = format!("aftershock/base:{}", short(hasher));
    let services = {
        let (root, base, names) = (root.clone(), base.clone(), names.clone());
        tokio::task::spawn_blocking(move || tags(&root, &base, &names))
            .await
            .expect("hash thread panicked")?
    };
    let mut missing = vec![];
    for (name, tag) in &services {
        if !image_exists(docker, tag).await {
            missing.push(name.clone());
        }
    }
    if missing.is_empty() {
        return Ok(ImageSet { base, services });
    }
    // The workspace binaries and the base rootfs do not depend on each other: cargo (CPU)
    // runs while debootstrap (mostly downloads and unpacking) does, which saves most of the
    // shorter of the two on a cold machine.
    let wanted: Vec<String> = missing
        .iter()
        .flat_map(|name| binaries_of(&images.join(name)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let out = output.to_path_buf();
    let cargo = tokio::task::spawn_blocking(move || build_binaries(&wanted, &out));
    let base_built = if image_exists(docker, &base).await {
        Ok(())
    } else {
        build_base(docker, &images.join("base"), &base, output).await
    };
    let built = cargo.await.map_err(|e| EngineError::ImageBuild {
        image: "workspace binaries".into(),
        message: e.to_string(),
    })??;
    base_built?;
    for name in &missing {
        let dir = images.join(name);
        let binaries: Vec<(String, PathBuf)> = binaries_of(&dir)
            .into_iter()
            .map(|n| {
                let path = built[&n].clone();
                (n, path)
            })
            .collect();
        let tag = &services[name];
        let started = Instant::now();
        build_service(docker, &dir, &binaries, &base, tag).await?;
        tracing::info!(image = %tag, seconds = started.elapsed().as_secs_f64(), "built {tag}");
    }
    Ok(ImageSet { base, services })
}

/// The stable tag of the base image (Debian bookworm with the project's packages), for
/// Dockerfiles of your own: `FROM aftershock/base:latest`.
pub const BASE_LATEST: &str = "aftershock/base:latest";

/// The base image's content tag, `aftershock/base:<hash of images/base>` (built or not).
pub fn base_tag() -> Result<String> {
    let mut hasher = Sha256::new();
    hash_dir(&mut hasher, &project_root().join("images").join("base"))?;
    Ok(format!("aftershock/base:{}", short(hasher)))
}

/// Makes sure the base image exists (debootstrap once, minutes) and is tagged [`BASE_LATEST`].
pub async fn base(docker: &Docker, output: &Path) -> Result<String> {
    let _lock = FileLock::acquire(lock_dir()?.join("images.lock")).await?;
    let images = project_root().join("images");
    let base = base_tag()?;
    if !image_exists(docker, &base).await {
        build_base(docker, &images.join("base"), &base, output).await?;
    }
    let (repo, tag) = BASE_LATEST
        .split_once(':')
        .unwrap_or((BASE_LATEST, "latest"));
    let options = bollard::query_parameters::TagImageOptionsBuilder::default()
        .repo(repo)
        .tag(tag)
        .build();
    docker
        .tag_image(&base, Some(options))
        .await
        .map_err(EngineError::refused(format!("tag {base} as {BASE_LATEST}")))?;
    Ok(BASE_LATEST.to_string())
}

/// Makes sure every project image exists ([`ensure`] of [`SERVICE_IMAGES`]).
pub async fn ensure_all(docker: &Docker, output: &Path) -> Result<ImageSet> {
    ensure(docker, &needed_for(SERVICE_IMAGES), output).await
}

async fn build_base(docker: &Docker, dir: &Path, tag: &str, output: &Path) -> Result<()> {
    let started = Instant::now();
    let tmp = output.join("tmp");
    std::fs::create_dir_all(output)
        .map_err(EngineError::io(format!("create {}", output.display())))?;
    super::state::private_dir(&tmp)?;
    let tar = tmp.join("base-rootfs.tar");
    let log_path = tmp.join("base-rootfs.log");
    tracing::info!(
        log = %log_path.display(),
        "building the base rootfs with debootstrap (about 80 s, once)..."
    );
    let log = std::fs::File::create(&log_path)
        .map_err(EngineError::io(format!("create {}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(EngineError::io(format!("open {}", log_path.display())))?;
    let script = dir.join("mkrootfs.sh");
    let status = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(&tar)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .status()
        .await
        .map_err(EngineError::io(format!("run {}", script.display())))?;
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        return Err(EngineError::ImageBuild {
            image: tag.into(),
            message: format!(
                "{} failed ({status}); the end of {}:\n{tail}",
                script.display(),
                log_path.display()
            ),
        });
    }
    let (repo, version) = tag.split_once(':').unwrap_or((tag, "latest"));
    let file = tokio::fs::File::open(&tar)
        .await
        .map_err(EngineError::io(format!("open {}", tar.display())))?;
    let body = file_chunks(file);
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .build();
    let mut stream = docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    while let Some(item) = stream.next().await {
        item.map_err(|e| EngineError::ImageBuild {
            image: tag.into(),
            message: format!("import: {e}"),
        })?;
    }
    let _ = std::fs::remove_file(&tar);
    tracing::info!(image = %tag, seconds = started.elapsed().as_secs_f64(), "built {tag}");
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
pub(crate) fn context_tar(dir: &Path, binaries: &[(String, PathBuf)]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.sparse(false); // the classic builder rejects GNU sparse headers
    let err = |e| EngineError::io(format!("pack the build context of {}", dir.display()))(e);
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
    build_tar(docker, context, "Dockerfile", &args, None, tag).await
}

/// Builds a packed context with the classic builder (BuildKit needs the network) as `tag`;
/// `target`: the stage of a multi-stage Dockerfile (None: the last).
pub(crate) async fn build_tar(
    docker: &Docker,
    context: Vec<u8>,
    dockerfile: &str,
    args: &HashMap<&str, &str>,
    target: Option<&str>,
    tag: &str,
) -> Result<()> {
    let labels = HashMap::from([("aftershock.image", "true")]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile(dockerfile)
        .target(target.unwrap_or_default())
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(args)
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
                    return Err(EngineError::ImageBuild {
                        image: tag.into(),
                        message: format!("{e}\n{log}"),
                    });
                }
            }
            Err(e) => {
                return Err(EngineError::ImageBuild {
                    image: tag.into(),
                    message: format!("{e}\n{log}"),
                })
            }
        }
    }
    if !image_exists(docker, tag).await {
        return Err(EngineError::ImageBuild {
            image: tag.into(),
            message: format!("the build ended without an image\n{log}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_needs_the_unit_image_too() {
        assert_eq!(
            needed_for(["machine"]),
            BTreeSet::from(["machine".to_string(), "machine-unit".to_string()])
        );
        assert_eq!(
            needed_for(["postgres", "zookeeper"]),
            BTreeSet::from(["postgres".to_string(), "zookeeper".to_string()])
        );
        assert_eq!(needed_for(Vec::<String>::new()), BTreeSet::new());
        assert_eq!(needed_for(["machine-unit", "machine"]).len(), 2);
    }

    #[test]
    fn every_dependency_is_a_project_image() {
        for (name, deps) in DEPENDS {
            for image in std::iter::once(name).chain(deps.iter()) {
                assert!(SERVICE_IMAGES.contains(image), "{image}");
            }
        }
        assert_eq!(needed_for(SERVICE_IMAGES).len(), SERVICE_IMAGES.len());
    }

    #[test]
    fn every_image_binary_has_a_source_hash_without_cargo() {
        let root = project_root();
        let workspace = Workspace::read(&root).unwrap();
        let mut hashes = BTreeSet::new();
        for name in SERVICE_IMAGES {
            for binary in binaries_of(&root.join("images").join(name)) {
                let hash = workspace.source_hash(&binary).unwrap();
                assert_eq!(hash, workspace.source_hash(&binary).unwrap(), "stable");
                hashes.insert((binary, hash));
            }
        }
        let distinct: BTreeSet<&String> = hashes.iter().map(|(_, h)| h).collect();
        assert_eq!(distinct.len(), hashes.len(), "one hash per binary");
        assert!(
            workspace.source_hash("lossyfs").is_ok() && workspace.source_hash("sicklink").is_ok(),
            "host binaries too"
        );
        assert!(workspace.source_hash("no-such-binary").is_err());
    }

    #[test]
    fn tags_do_not_depend_on_what_else_is_asked_for() {
        let root = project_root();
        let one = tags(&root, "aftershock/base:x", &needed_for(["toy-api"])).unwrap();
        let all = tags(&root, "aftershock/base:x", &needed_for(SERVICE_IMAGES)).unwrap();
        assert_eq!(one["toy-api"], all["toy-api"]);
        assert!(one["toy-api"].starts_with("aftershock/toy-api:"));
        let other_base = tags(&root, "aftershock/base:y", &needed_for(["toy-api"])).unwrap();
        assert_ne!(one["toy-api"], other_base["toy-api"]);
    }

    #[test]
    fn dependency_paths_are_normalised() {
        assert_eq!(normalise(Path::new("a/./b/../c")), PathBuf::from("a/c"));
    }
}
