//! machine-init: the init of an aftershock machine (a container running its own dockerd).
//!
//! Like systemd on the machines of 2016 it keeps two kinds of things running:
//! - `dockerd` (restarted `restart_ms` after it exits, like `Restart=always`), and
//! - the machine's **units**: each is a foreground `docker run --rm --name NAME …` (the
//!   `ExecStart=` of a unit file), restarted `restart_ms` after it exits. Style `rm-then-run`
//!   first runs `docker rm -f NAME` (the `ExecStartPre=-docker rm -f NAME` remedy); a unit may use
//!   an old client API (`DOCKER_API_VERSION`, e.g. 1.24, whose CLI removes `--rm` containers
//!   itself). A unit whose container is already running (after a live-restore) is adopted.
//!
//! Every state change is one line on stdout, `aftershock-machine <unix ns> <dockerd|unit> <name>
//! <state> <detail>`, which the harness reads back from the machine container's log.
//!
//! Subcommands used inside unit containers: `fetch-then-exec URL FILE CMD…` (writes the body of
//! an HTTP GET to FILE, then execs CMD: the registry reading its configuration from consul) and
//! `pause` (sleeps until SIGTERM/SIGINT: the stale-name and restart-policy canaries).
//!
//! Runs under `tini` (the machine's PID 1), which reaps orphans such as a dead dockerd's shims.

use serde::Deserialize;
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The machine's configuration, from the environment variable `MACHINE_CONFIG` (JSON).
#[derive(Debug, Deserialize)]
struct Config {
    /// Arguments of dockerd.
    dockerd: Vec<String>,
    /// Delay before restarting dockerd or a unit after it exited (systemd's `RestartSec`).
    restart_ms: u64,
    units: Vec<UnitSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Style {
    /// `docker run --rm --name NAME …` as is.
    DockerRunRm,
    /// `docker rm -f NAME` first, then `docker run --rm --name NAME …`.
    RmThenRun,
}

#[derive(Debug, Clone, Deserialize)]
struct UnitSpec {
    name: String,
    style: Style,
    /// `DOCKER_API_VERSION` for this unit's docker client (None: the client's own).
    client_api: Option<String>,
    /// `docker run` options between `--name NAME` and the image.
    run: Vec<String>,
    image: String,
    cmd: Vec<String>,
    /// Started once with `docker run -d` (no `--rm`; its restart policy is in `run`) and then
    /// left to the engine: the restart-policy canaries.
    #[serde(default)]
    detach: bool,
    /// `--rm` on the foreground `docker run` (default true, as in 2016).
    #[serde(default = "yes")]
    rm: bool,
}

fn yes() -> bool {
    true
}

const TICK: Duration = Duration::from_millis(200);
const SOCKET: &str = "/var/run/docker.sock";

fn log(kind: &str, name: &str, state: &str, detail: &str) {
    let detail = detail.replace('\n', " ");
    let mut out = std::io::stdout().lock();
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let _ = writeln!(
        out,
        "aftershock-machine {at} {kind} {name} {state} {detail}"
    );
    let _ = out.flush();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("fetch-then-exec") if args.len() >= 5 => {
            fetch_then_exec(&args[2], &args[3], &args[4..])
        }
        Some("pause") => pause(),
        Some("host") if args.len() >= 4 => host(&args[2], &args[3..]),
        Some("connect") if args.len() == 4 => connect(&args[2], &args[3]),
        Some("init") | None => init(),
        _ => {
            eprintln!("usage: machine-init [init] | fetch-then-exec URL FILE CMD... | pause | host ROOT CMD... | connect HOST:PORT TIMEOUT_MS");
            64
        }
    };
    std::process::exit(code);
}

/// Runs a command of the machine's own root file system (bind-mounted at `root`): chroot,
/// then exec. With `--network host` that is the machine's `iptables` on the machine's network —
/// how the harness changes a machine's firewall through nothing but its engine.
fn host(root: &str, cmd: &[String]) -> i32 {
    use std::os::unix::process::CommandExt;
    if let Err(e) = std::os::unix::fs::chroot(root).and_then(|()| std::env::set_current_dir("/")) {
        eprintln!("machine-init host: chroot {root}: {e}");
        return 125;
    }
    let e = Command::new(&cmd[0]).args(&cmd[1..]).exec();
    eprintln!("machine-init host: exec {}: {e}", cmd[0]);
    127
}

/// Exits 0 when a TCP connection to `address` is made within `timeout_ms`, 1 when it is
/// refused or times out (the message says which).
fn connect(address: &str, timeout_ms: &str) -> i32 {
    use std::net::ToSocketAddrs;
    let timeout = Duration::from_millis(timeout_ms.parse().unwrap_or(1000));
    let Some(to) = address.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        eprintln!("machine-init connect: `{address}` is not HOST:PORT");
        return 64;
    };
    match std::net::TcpStream::connect_timeout(&to, timeout) {
        Ok(_) => {
            println!("connected to {address}");
            0
        }
        Err(e) => {
            println!("{address}: {e}");
            1
        }
    }
}

/// Sleeps until SIGTERM or SIGINT, then exits 128 + the signal, like a well-behaved service.
/// As its container's PID 1 it has no default action for SIGTERM: without this, a daemon
/// stopping it waits the whole stop timeout (10 s) and then SIGKILLs — which made the canaries,
/// not the incident, add 10 s to every restarting dockerd's downtime.
fn pause() -> i32 {
    // SAFETY: plain libc calls on a sigset_t owned by this frame; the signals are blocked in the
    // only thread before sigwait takes them.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut signal = 0;
        libc::sigwait(&set, &mut signal);
        128 + signal
    }
}

// ---------------------------------------------------------------------------------------------
// init

fn init() -> i32 {
    let config: Config = match std::env::var("MACHINE_CONFIG")
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("machine-init: MACHINE_CONFIG is missing or malformed: {e}");
            return 64;
        }
    };
    for dir in ["/var/log/units", "/run/units"] {
        let _ = std::fs::create_dir_all(dir);
    }
    let restart = Duration::from_millis(config.restart_ms);
    let mut daemon = Daemon {
        child: None,
        start_at: Instant::now(),
    };
    let mut units: Vec<Unit> = config
        .units
        .iter()
        .map(|spec| Unit {
            spec: spec.clone(),
            state: UnitState::Waiting,
            child: None,
            next: Instant::now(),
        })
        .collect();
    log(
        "dockerd",
        "dockerd",
        "machine-up",
        &format!("{} units", units.len()),
    );
    loop {
        daemon.tick(&config.dockerd, restart);
        let engine_up = ping();
        for unit in &mut units {
            unit.tick(engine_up, restart);
        }
        std::thread::sleep(TICK);
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown".into(),
    }
}

struct Daemon {
    child: Option<Child>,
    start_at: Instant,
}

impl Daemon {
    fn tick(&mut self, args: &[String], restart: Duration) {
        if let Some(child) = &mut self.child {
            if let Ok(Some(status)) = child.try_wait() {
                log("dockerd", "dockerd", "exited", &describe(status));
                self.child = None;
                self.start_at = Instant::now() + restart;
            }
            return;
        }
        if Instant::now() < self.start_at {
            return;
        }
        let logfile = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/var/log/dockerd.log");
        let (out, err) = match logfile.and_then(|f| Ok((f.try_clone()?, f))) {
            Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
            Err(_) => (Stdio::null(), Stdio::null()),
        };
        match Command::new("dockerd")
            .args(args)
            .stdout(out)
            .stderr(err)
            .spawn()
        {
            Ok(c) => {
                log("dockerd", "dockerd", "started", &format!("pid {}", c.id()));
                self.child = Some(c);
            }
            Err(e) => {
                log(
                    "dockerd",
                    "dockerd",
                    "failed",
                    &format!("cannot start: {e}"),
                );
                self.start_at = Instant::now() + restart;
            }
        }
    }
}

/// Whether the local engine answers `/_ping`.
fn ping() -> bool {
    let ask = || -> std::io::Result<bool> {
        let mut s = std::os::unix::net::UnixStream::connect(SOCKET)?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.set_write_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"))
    };
    ask().unwrap_or(false)
}

/// Runs a command to completion within `timeout`: `Some((success, output))`, None on timeout.
fn run(args: &[&str], timeout: Duration) -> Option<(bool, String)> {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let output = child.wait_with_output().ok()?;
    let mut text = String::from_utf8_lossy(&output.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Some((output.status.success(), text.trim().to_string()))
}

/// Whether the container `name` is running (None: no such container, or no engine).
fn running(name: &str) -> Option<bool> {
    match run(
        &["docker", "inspect", "-f", "{{.State.Running}}", name],
        Duration::from_secs(5),
    ) {
        Some((true, out)) => Some(out == "true"),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitState {
    /// Not started yet: waiting for the engine and the unit's image.
    Waiting,
    /// `docker run` spawned, container not running yet.
    Starting,
    /// Our `docker run` is attached to the running container.
    Active,
    /// The container was already running (live-restore); watched by polling.
    Adopted,
    /// Exited or failed; restarted at `next`.
    Down,
    /// A detached unit, started once and left to the engine.
    Detached,
}

struct Unit {
    spec: UnitSpec,
    state: UnitState,
    child: Option<Child>,
    /// When to act next (restart, or poll).
    next: Instant,
}

impl Unit {
    fn set(&mut self, state: UnitState, word: &str, detail: &str) {
        self.state = state;
        log("unit", &self.spec.name, word, detail);
    }

    fn err_path(&self) -> String {
        format!("/run/units/{}.err", self.spec.name)
    }

    fn tick(&mut self, engine_up: bool, restart: Duration) {
        if let Some(child) = &mut self.child {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    let err = std::fs::read_to_string(self.err_path()).unwrap_or_default();
                    let last = err.lines().last().unwrap_or("").to_string();
                    let detail = format!("{}: {last}", describe(status));
                    let word = if err.contains("is already in use") {
                        "name-conflict"
                    } else {
                        "exited"
                    };
                    self.set(UnitState::Down, word, &detail);
                    self.next = Instant::now() + restart;
                }
                Ok(None) if self.state == UnitState::Starting && Instant::now() >= self.next => {
                    if running(&self.spec.name) == Some(true) {
                        self.set(UnitState::Active, "active", "container running");
                    }
                    self.next = Instant::now() + Duration::from_millis(500);
                }
                _ => {}
            }
            return;
        }
        if Instant::now() < self.next || !engine_up {
            return;
        }
        match self.state {
            UnitState::Adopted => {
                if running(&self.spec.name) != Some(true) && ping() {
                    self.set(UnitState::Down, "exited", "adopted container stopped");
                    self.next = Instant::now() + restart;
                } else {
                    self.next = Instant::now() + Duration::from_secs(1);
                }
            }
            UnitState::Waiting | UnitState::Down => self.start(),
            UnitState::Detached => {}
            UnitState::Starting | UnitState::Active => {
                // The child is gone but its exit was not seen: start over.
                self.state = UnitState::Down;
            }
        }
    }

    fn start(&mut self) {
        let name = self.spec.name.clone();
        let image = run(
            &["docker", "image", "inspect", "-f", "ok", &self.spec.image],
            Duration::from_secs(5),
        );
        if !matches!(image, Some((true, _))) {
            if self.state != UnitState::Waiting {
                self.set(UnitState::Waiting, "waiting", "image not loaded yet");
            }
            self.next = Instant::now() + Duration::from_secs(1);
            return;
        }
        if running(&name) == Some(true) {
            self.set(
                UnitState::Adopted,
                "active",
                "adopted the running container",
            );
            self.next = Instant::now() + Duration::from_secs(1);
            return;
        }
        if self.spec.detach {
            self.start_detached(&name);
            return;
        }
        if self.spec.style == Style::RmThenRun {
            let removed = run(&["docker", "rm", "-f", &name], Duration::from_secs(15));
            let detail = match removed {
                Some((true, _)) => "docker rm -f done".to_string(),
                Some((false, out)) => format!("nothing to remove: {out}"),
                None => "docker rm -f timed out".to_string(),
            };
            log("unit", &name, "pre-start", &detail);
        }
        self.spawn(&name);
    }

    /// `docker run -d` of a unit the engine keeps (live-restore, restart policies): started once.
    fn start_detached(&mut self, name: &str) {
        let mut args = vec!["docker", "run", "-d", "--name", name, "--pull", "never"];
        args.extend(self.spec.run.iter().map(String::as_str));
        args.push(&self.spec.image);
        args.extend(self.spec.cmd.iter().map(String::as_str));
        match run(&args, Duration::from_secs(30)) {
            Some((true, _)) => self.set(
                UnitState::Detached,
                "started-detached",
                &self.spec.run.join(" "),
            ),
            Some((false, out)) => self.set(UnitState::Detached, "failed", &out),
            None => self.set(UnitState::Detached, "failed", "docker run -d timed out"),
        }
    }

    /// `docker run` of a unit this init watches, its output to the unit's log.
    fn spawn(&mut self, name: &str) {
        let mut cmd = Command::new("docker");
        cmd.arg("run");
        if self.spec.rm {
            cmd.arg("--rm");
        }
        cmd.args(["--name", name, "--pull", "never"])
            .args(&self.spec.run)
            .arg(&self.spec.image)
            .args(&self.spec.cmd)
            .stdin(Stdio::null());
        if let Some(api) = &self.spec.client_api {
            cmd.env("DOCKER_API_VERSION", api);
        }
        let files = std::fs::File::create(self.err_path()).and_then(|err| {
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(format!("/var/log/units/{name}.log"))?;
            Ok((out, err))
        });
        if let Ok((out, err)) = files {
            cmd.stdout(out).stderr(err);
        }
        match cmd.spawn() {
            Ok(child) => {
                let api = self.spec.client_api.as_deref().unwrap_or("current");
                self.child = Some(child);
                self.next = Instant::now() + Duration::from_millis(300);
                self.set(
                    UnitState::Starting,
                    "starting",
                    &format!("client API {api}"),
                );
            }
            Err(e) => {
                self.set(
                    UnitState::Down,
                    "failed",
                    &format!("cannot run docker: {e}"),
                );
                self.next = Instant::now() + Duration::from_secs(1);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fetch-then-exec

/// GETs `url` (plain HTTP), writes the body to `file` and execs `cmd`; exit 1 when the answer
/// is not 200 (the registry cannot read its configuration, so it does not start).
fn fetch_then_exec(url: &str, file: &str, cmd: &[String]) -> i32 {
    match http_get(url) {
        Ok(body) => {
            if let Err(e) = std::fs::write(file, body) {
                eprintln!("fetch-then-exec: cannot write {file}: {e}");
                return 1;
            }
            use std::os::unix::process::CommandExt;
            let e = Command::new(&cmd[0]).args(&cmd[1..]).exec();
            eprintln!("fetch-then-exec: cannot exec {}: {e}", cmd[0]);
            1
        }
        Err(e) => {
            eprintln!("fetch-then-exec: configuration {url} unavailable: {e}");
            1
        }
    }
}

fn http_get(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or(format!("{host}: no address"))?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {host}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = vec![];
    s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP answer")?;
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered `{status}`"));
    }
    Ok(answer[split + 4..].to_vec())
}
