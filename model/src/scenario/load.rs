//! Reading a scenario file: TOML → the file form → [`Plan`]. Errors name file:line:column.

use super::error::ScenarioError;
use super::{compose, file, resolve, Plan};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

/// The place of a table's `name = "..."` (or of the quoted word) in the text; the start if absent.
fn find_name(source: &str, name: &str) -> Range<usize> {
    let quoted = format!("\"{name}\"");
    let at = source
        .find(&format!("name = {quoted}"))
        .or_else(|| source.find(&quoted));
    at.map_or(0..0, |i| i..i + quoted.len())
}

/// Reads the scenario file at `path` and resolves it into a plan.
pub fn load(path: &Path) -> Result<Plan, ScenarioError> {
    let source = read(path).map_err(|source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&path.display().to_string(), &source)
}

/// The most the loader reads of one file (a scenario, a Compose file, an `.env`, an
/// `env_file`, a secret): as much as the Compose front end lets aliases expand to.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// The one read of the file system in `scenario/`: scenario files and what they bring in
/// (a Compose file, its `.env`, `env_file`s and secrets). Only a regular file of at most
/// [`MAX_FILE_BYTES`] is read: `/dev/zero`, a FIFO or a huge file is refused at once instead
/// of read forever. Opened without blocking (a FIFO with no writer would block the open),
/// then checked on the open file, so a file swapped after a check is no way around it.
fn read(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a directory, a device, a FIFO or a socket): name a regular file",
        ));
    }
    let too_big = || {
        std::io::Error::other(format!(
            "over {} MiB, the most aftershock reads of one file: name a smaller file",
            MAX_FILE_BYTES >> 20
        ))
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    // A file that grows while it is read (or says it is empty, as /proc's do) is capped too.
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(text)
}

/// Parses scenario text and resolves it into a plan; `file` names it in error messages, and
/// what it brings in (`compose`, `build` contexts) is found relative to its directory.
pub fn parse(file: &str, source: &str) -> Result<Plan, ScenarioError> {
    let mut scenario: file::Scenario = toml::from_str(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        ScenarioError::at(file, source, span, message)
    })?;
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let brought = bring_in(&mut scenario, dir);
    brought.map_err(|e| match e {
        // An env file the scenario names: said at its key.
        ScenarioError::Read { path, source: why }
            if scenario.topology.compose_env_files.iter().any(|f| dir.join(f) == path) =>
        {
            let at = source.find("compose_env_files").unwrap_or(0);
            let message = format!("the env file {} cannot be read: {why} (check `compose_env_files`: paths are relative to the scenario file)", path.display());
            ScenarioError::at(file, source, at..at, message)
        }
        other => other,
    })?;
    resolve::resolve(&scenario).map_err(|resolve::Invalid { anchor, message }| {
        let span = match anchor {
            resolve::Anchor::Span(span) => span,
            resolve::Anchor::Name(name) => find_name(source, &name),
        };
        ScenarioError::at(file, source, span, message)
    })
}

/// The services of the Compose file at `path` (interpolated with the process environment and
/// its `.env`), dependencies first, as a scenario's services, with its extensions' write
/// templates (`aftershock audit`).
pub fn load_compose(path: &Path) -> Result<compose::Topology, ScenarioError> {
    load_composes(&[path])
}

/// The Compose files at `paths` as one (`docker compose -f a.yml -f b.yml`).
pub fn load_composes(paths: &[&Path]) -> Result<compose::Topology, ScenarioError> {
    load_composes_with(paths, &compose::Options::default())
}

/// [`load_composes`] with `--env-file` and `--profile` ([`compose::Options`]).
pub fn load_composes_with(
    paths: &[&Path],
    options: &compose::Options,
) -> Result<compose::Topology, ScenarioError> {
    let env = |name: &str| std::env::var(name).ok();
    compose::services_with(paths, &read, &env, options)
}

/// Makes `build` contexts absolute and puts the services of the `compose` file (if any)
/// before the file's own.
fn bring_in(scenario: &mut file::Scenario, dir: &Path) -> Result<(), ScenarioError> {
    for s in &mut scenario.topology.services {
        if let Some(b) = &mut s.build {
            b.context = dir.join(&b.context).display().to_string();
        }
    }
    let Some(compose) = &scenario.topology.compose else {
        return Ok(());
    };
    let paths: Vec<_> = compose.0.iter().map(|f| dir.join(f)).collect();
    let options = compose::Options {
        env_files: (scenario.topology.compose_env_files.iter())
            .map(|f| dir.join(f))
            .collect(),
        profiles: scenario.topology.compose_profiles.clone(),
    };
    let paths_ref: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let topology = load_composes_with(&paths_ref, &options)?;
    scenario.topology.notes = topology.notes;
    scenario.topology.compose_secrets = topology.secrets;
    let mut services = topology.services;
    for (service, disk) in &scenario.topology.compose_disks {
        make_disk(&mut services, service, disk).map_err(|e| ScenarioError::At {
            file: paths[0].display().to_string(),
            line: 0,
            column: 0,
            message: e.to_string(),
        })?;
    }
    for service in &scenario.topology.compose_lossy {
        make_lossy(&mut services, service).map_err(|e| ScenarioError::At {
            file: paths[0].display().to_string(),
            line: 0,
            column: 0,
            message: e.to_string(),
        })?;
    }
    for (service, mib) in &scenario.topology.compose_memory {
        let s = services.iter_mut().find(|s| &s.name == service);
        let s = s.ok_or_else(|| ScenarioError::At {
            file: paths[0].display().to_string(),
            line: 0,
            column: 0,
            message: format!(
                "`compose_memory` names `{service}`, which is no service of the Compose file"
            ),
        })?;
        s.memory_mib = Some(*mib);
    }
    if let Some(on) = &scenario.topology.compose_machines {
        let placement = &scenario.topology.compose_placement;
        place_compose(&mut services, &scenario.topology.services, on, placement).map_err(|e| {
            ScenarioError::At {
                file: paths[0].display().to_string(),
                line: 0,
                column: 0,
                message: e.to_string(),
            }
        })?;
    }
    services.append(&mut scenario.topology.services);
    scenario.topology.services = services;
    Ok(())
}

/// Why `compose_machines` cannot place the Compose services, or `compose_disks` make a disk.
#[derive(Debug, thiserror::Error)]
enum PlaceError {
    #[error(
        "`compose_machines = \"{on}\"` names no `preset = \"machine\"` service of the scenario"
    )]
    NoMachines { on: String },
    #[error("Compose service `{service}` has {replicas} replicas but `{on}` only {machines} machines; give it `replicas = {machines}`")]
    TooFewMachines {
        service: String,
        replicas: usize,
        on: String,
        machines: usize,
    },
    #[error("`compose_placement` names `{service}`, which is no service of the Compose file")]
    PlacedUnknown { service: String },
    #[error("`compose_placement`: `{service}` has {replicas} replicas but {given} machines are named; name one machine per replica")]
    PlacedCount {
        service: String,
        replicas: usize,
        given: usize,
    },
    #[error("`compose_placement`: `{service}` is put on `{machine}`, which is no machine of `{on}` (its machines: {machines})")]
    PlacedNowhere {
        service: String,
        machine: String,
        on: String,
        machines: String,
    },
    #[error("`compose_disks`: Compose service `{service}` has no named volume `{volume}`")]
    NoVolume { service: String, volume: String },
    #[error("`compose_disks`: Compose service `{service}` has a disk already (a service has at most one)")]
    TwoDisks { service: String },
    #[error("`compose_lossy` names `{service}`, which is no Compose service with a disk (declare its volume one: `x-aftershock: {{ disk: {{ size_mb: 256 }} }}`, or `compose_disks` with `lossy = true`)")]
    NoDisk { service: String },
}

/// `compose_disks = { service = { volume, size_mb } }`: that named volume of the service is
/// a disk that can lose power.
fn make_disk(
    services: &mut [file::Service],
    service: &str,
    disk: &file::ComposeDisk,
) -> Result<(), PlaceError> {
    let missing = || PlaceError::NoVolume {
        service: service.into(),
        volume: disk.volume.clone(),
    };
    let s = services
        .iter_mut()
        .find(|s| s.name == service)
        .ok_or_else(missing)?;
    // The front end names a volume as written, `_` made `-`.
    let prefix = format!("{}:", disk.volume.replace('_', "-"));
    let i = s
        .volumes
        .iter()
        .position(|v| v.starts_with(&prefix))
        .ok_or_else(missing)?;
    if s.disk.is_some() {
        return Err(PlaceError::TwoDisks {
            service: service.into(),
        });
    }
    let path = s.volumes.remove(i)[prefix.len()..].to_string();
    s.disk = Some(file::DiskSpec {
        size_mb: disk.size_mb,
        path,
        lossy: disk.lossy,
    });
    Ok(())
}

/// `compose_lossy = [service]`: the disk the service declares is lossy for this run.
fn make_lossy(services: &mut [file::Service], service: &str) -> Result<(), PlaceError> {
    let disk = services
        .iter_mut()
        .find(|s| s.name == service)
        .and_then(|s| s.disk.as_mut());
    let disk = disk.ok_or_else(|| PlaceError::NoDisk {
        service: service.into(),
    })?;
    disk.lossy = true;
    Ok(())
}

/// `compose_machines = "m"`: every Compose service on the replicas of machine service `m`,
/// replica i on machine i unless `placement` names its machines; a disk becomes a named
/// volume on the machine.
fn place_compose(
    services: &mut [file::Service],
    own: &[file::Service],
    on: &file::Ref,
    placement: &BTreeMap<String, Vec<String>>,
) -> Result<(), PlaceError> {
    let machines = own
        .iter()
        .find(|s| &s.name == on.get_ref() && s.preset == Some(file::Preset::Machine))
        .map(file::Scenario::replica_names)
        .ok_or_else(|| PlaceError::NoMachines {
            on: on.get_ref().clone(),
        })?;
    if let Some(service) = placement
        .keys()
        .find(|p| !services.iter().any(|s| &s.name == *p))
    {
        return Err(PlaceError::PlacedUnknown {
            service: service.clone(),
        });
    }
    for s in services {
        let on_machines = match placement.get(&s.name) {
            Some(named) => placed_on(s, named, on, &machines)?,
            None if s.replicas > machines.len() => {
                return Err(PlaceError::TooFewMachines {
                    service: s.name.clone(),
                    replicas: s.replicas,
                    on: on.get_ref().clone(),
                    machines: machines.len(),
                });
            }
            None => machines[..s.replicas].to_vec(),
        };
        s.machine = Some(file::MachineField::On(on_machines));
        if let Some(disk) = s.disk.take() {
            s.volumes.push(format!("disk:{}", disk.path));
        }
    }
    Ok(())
}

/// The machines `compose_placement` names for `s`, checked: one per replica, each a machine
/// of `on`.
fn placed_on(
    s: &file::Service,
    named: &[String],
    on: &file::Ref,
    machines: &[String],
) -> Result<Vec<String>, PlaceError> {
    if named.len() != s.replicas {
        return Err(PlaceError::PlacedCount {
            service: s.name.clone(),
            replicas: s.replicas,
            given: named.len(),
        });
    }
    if let Some(m) = named.iter().find(|m| !machines.contains(m)) {
        return Err(PlaceError::PlacedNowhere {
            service: s.name.clone(),
            machine: m.clone(),
            on: on.get_ref().clone(),
            machines: machines.join(", "),
        });
    }
    Ok(named.to_vec())
}

/// Where a problem found in a file form made in code is: a source file, line and column.
pub(crate) type Located = (String, usize, usize);

/// Resolves a file form made in code (the builder), its `compose` file relative to the current
/// directory; `locate` says where (in the caller's code) a problem is.
pub(crate) fn resolve_built(
    scenario: &file::Scenario,
    locate: impl Fn(&resolve::Anchor) -> Located,
) -> Result<Plan, ScenarioError> {
    let mut scenario = scenario.clone();
    bring_in(&mut scenario, Path::new(""))?;
    resolve::resolve(&scenario).map_err(|resolve::Invalid { anchor, message }| {
        let (file, line, column) = locate(&anchor);
        ScenarioError::At {
            file,
            line,
            column,
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("aftershock-load-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Loads `scenario.toml` (with `text`) in `dir`: the error, which must come at once.
    fn refused(dir: &Path, text: &str) -> String {
        let file = dir.join("scenario.toml");
        std::fs::write(&file, text).unwrap();
        let started = Instant::now();
        let e = load(&file).expect_err("refused").to_string();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}: {e}",
            started.elapsed()
        );
        e
    }

    const HEAD: &str = "name = \"t\"\nduration = \"2s\"\n";

    #[test]
    fn devices_fifos_and_directories_are_refused_at_once() {
        let dir = scratch("special");
        let fifo = dir.join("fifo.yml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo touches nothing else.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for compose in ["/dev/zero", fifo.to_str().unwrap(), dir.to_str().unwrap()] {
            let e = refused(
                &dir,
                &format!("{HEAD}[topology]\ncompose = \"{compose}\"\n"),
            );
            assert!(
                e.contains(compose) && e.contains("not a regular file"),
                "{e}"
            );
        }
        for scenario in [Path::new("/dev/zero"), &fifo] {
            let e = load(scenario).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn profiles_and_env_files_of_a_scenario_choose_the_services_and_values() {
        let dir = scratch("profiles");
        let compose = "services:\n  api:\n    image: \"api:${TAG:-dev}\"\n  debug:\n    image: d\n    profiles: [debug]\n";
        std::fs::write(dir.join("compose.yml"), compose).unwrap();
        std::fs::write(dir.join(".env"), "TAG=from-dotenv\n").unwrap();
        std::fs::write(dir.join("test.env"), "TAG=from-test\n").unwrap();
        let names = |text: &str| {
            let file = dir.join("scenario.toml");
            std::fs::write(&file, text).unwrap();
            let plan = load(&file).unwrap_or_else(|e| panic!("{e}"));
            let images: Vec<String> = plan
                .services
                .iter()
                .map(|s| format!("{}={:?}", s.name, s.image))
                .collect();
            images.join(" ")
        };
        let plain = names(&format!("{HEAD}[topology]\ncompose = \"compose.yml\"\n"));
        assert!(
            plain.contains("from-dotenv") && !plain.contains("debug"),
            "{plain}"
        );
        let both = names(&format!("{HEAD}[topology]\ncompose = [\"compose.yml\"]\ncompose_profiles = [\"debug\"]\ncompose_env_files = [\"test.env\"]\n"));
        assert!(
            both.contains("from-test") && both.contains("debug="),
            "{both}"
        );
        let e = refused(
            &dir,
            &format!(
                "{HEAD}[topology]\ncompose = \"compose.yml\"\ncompose_env_files = [\"nope.env\"]\n"
            ),
        );
        assert!(
            e.contains("scenario.toml:5:")
                && e.contains("nope.env")
                && e.contains("check `compose_env_files`"),
            "{e}"
        );
        let e = refused(
            &dir,
            &format!(
                "{HEAD}[topology]\ncompose = \"compose.yml\"\ncompose_profiles = [\"debgu\"]\n"
            ),
        );
        assert!(
            e.contains("compose.yml:1:") && e.contains("`debgu`") && e.contains("profiles: debug"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn files_over_the_cap_are_refused_wherever_they_are_named() {
        let dir = scratch("huge");
        let huge = std::fs::File::create(dir.join("huge")).unwrap();
        huge.set_len(MAX_FILE_BYTES + 1).unwrap(); // sparse: nothing written
        let e = load(&dir.join("huge")).unwrap_err().to_string();
        assert!(e.contains("over 4 MiB"), "{e}");
        let compose = format!("{HEAD}[topology]\ncompose = \"huge\"\n");
        assert!(refused(&dir, &compose).contains("over 4 MiB"));
        std::fs::write(
            dir.join("compose.yml"),
            "services:\n  web:\n    image: nginx\n    env_file: huge\n",
        )
        .unwrap();
        let compose = format!("{HEAD}[topology]\ncompose = \"compose.yml\"\n");
        let e = refused(&dir, &compose);
        assert!(e.contains("huge") && e.contains("over 4 MiB"), "{e}");
        std::fs::write(
            dir.join("compose.yml"),
            "services:\n  web:\n    image: nginx\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join(".env")).unwrap();
        let e = refused(&dir, &compose);
        assert!(
            e.contains(".env") && e.contains("not a regular file"),
            "{e}"
        );
        std::fs::remove_file(dir.join(".env")).unwrap();
        // Just under the cap is read.
        let fits = std::fs::File::create(dir.join(".env")).unwrap();
        fits.set_len(MAX_FILE_BYTES).unwrap();
        std::fs::write(dir.join("scenario.toml"), &compose).unwrap();
        let e = load(&dir.join("scenario.toml"))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(!format!("{e:?}").contains("over 4 MiB"), "{e:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn compose_lossy_makes_a_declared_disk_lossy_and_names_what_has_none() {
        let dir = scratch("lossy");
        let compose = "services:\n  j:\n    image: j\n    volumes: [data:/data]\n  k:\n    image: k\nvolumes:\n  data:\n    x-aftershock:\n      disk: { size_mb: 64 }\n";
        std::fs::write(dir.join("compose.yml"), compose).unwrap();
        let lossy = |text: &str| {
            let file = dir.join("scenario.toml");
            std::fs::write(&file, text).unwrap();
            let plan = load(&file).unwrap_or_else(|e| panic!("{e}"));
            let j = plan.services.iter().find(|s| s.name == "j").unwrap();
            j.disk
                .as_ref()
                .map(|d| (d.lossy, d.size_mb, d.path.clone()))
        };
        let top = format!("{HEAD}[topology]\ncompose = \"compose.yml\"\n");
        assert_eq!(lossy(&top), Some((false, 64, "/data".into())));
        let made = format!("{top}compose_lossy = [\"j\"]\n");
        assert_eq!(lossy(&made), Some((true, 64, "/data".into())));
        for who in ["k", "nope"] {
            let e = refused(&dir, &format!("{top}compose_lossy = [\"{who}\"]\n"));
            assert!(
                e.contains(&format!("`compose_lossy` names `{who}`")) && e.contains("x-aftershock"),
                "{e}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
