//! Knocking on a machine's engine from a plain container beside it (no client certificate):
//! the proof that a service under test cannot take a machine. Used while machine scenarios
//! run (`daemon_restart`, `audit`'s engine crash) and on the URL-machine fleet
//! (`multi_machine`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a plain container (no client certificate) got from a machine's engine: `curl` on the
/// TLS port and on the old plain port, with curl's exit codes.
#[derive(Debug)]
pub struct Knock {
    pub tls: String,
    pub plain: String,
}

impl Knock {
    /// Asserts the engine was not taken: no container list, the TLS handshake refused (curl's
    /// 35 or 56) and nothing listening on the old plain port 2375 (curl's 7).
    #[track_caller]
    pub fn assert_refused(&self) {
        assert!(
            !self.tls.contains('['),
            "listed without a certificate: {}",
            self.tls
        );
        assert!(
            ["exit=35", "exit=56"].iter().any(|c| self.tls.contains(c)),
            "not a refused handshake: {}",
            self.tls
        );
        assert!(
            self.plain.contains("exit=7"),
            "port 2375 answered: {}",
            self.plain
        );
    }
}

fn docker(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker CLI");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Whether a `pid@start` owner label is this process or a child of it (the CLI it runs).
fn ours(owner: &str) -> bool {
    let me = std::process::id();
    let Some(pid) = owner.split('@').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.to_string();
            after.split_whitespace().nth(1)?.parse::<u32>().ok()
        });
    pid == me || parent == Some(me)
}

/// A machine of a running `scenario` of this process or its child (never another's run of
/// it, such as a CI's): (its run id, network, address, image), once one exists.
fn a_machine(scenario: &str) -> Option<(String, String, String, String)> {
    let filter = format!("label=aftershock.scenario={scenario}");
    let (_, ids) = docker(&["ps", "-q", "--filter", &filter]);
    ids.lines().find_map(|id| {
        let format = "{{index .Config.Labels \"aftershock.pid\"}} {{index .Config.Labels \"aftershock.run\"}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}{{end}} {{.Config.Image}}";
        let (ok, seen) = docker(&["inspect", "-f", format, id.trim()]);
        let f: Vec<&str> = seen.split_whitespace().collect();
        match (ok, f.as_slice()) {
            (true, [pid, run, net, ip, image])
                if ours(pid) && image.contains("aftershock/machine:") =>
            {
                Some((run.to_string(), net.to_string(), ip.to_string(), image.to_string()))
            }
            _ => None,
        }
    })
}

/// Knocks once on the engine at `ip` from a plain container of `image` on `network`, labelled
/// as run `run` (its teardown removes it if it lingers); None while nothing listens on 2376
/// yet (curl's "connection refused", exit 7).
pub fn knock_once(run: &str, network: &str, ip: &str, image: &str) -> Option<Knock> {
    let script = format!(
        "curl -sS -k --max-time 5 https://{ip}:2376/containers/json; echo \" exit=$?\"; \
         echo ---; curl -sS --max-time 5 http://{ip}:2375/containers/json; echo \" exit=$?\""
    );
    let label = format!("aftershock.run={run}");
    let (_, out) = docker(&[
        "run",
        "--rm",
        "--network",
        network,
        "--label",
        &label,
        "--entrypoint",
        "sh",
        image,
        "-c",
        &script,
    ]);
    let (tls, plain) = out.split_once("---")?;
    if tls.contains("exit=7") {
        return None;
    }
    println!(
        "knocked on {ip} (run {run}):\n  :2376 {}\n  :2375 {}",
        tls.trim(),
        plain.trim()
    );
    Some(Knock {
        tls: tls.trim().into(),
        plain: plain.trim().into(),
    })
}

/// Knocks on a machine's engine of the running `scenario` (of this process or the CLI it
/// runs) from a plain container on the run's network, once that engine listens. None when
/// `done` is set first (the run ended without a machine listening) or after 20 minutes.
pub fn knock(scenario: &str, done: &AtomicBool) -> Option<Knock> {
    let deadline = Instant::now() + Duration::from_secs(1200);
    while Instant::now() < deadline && !done.load(Ordering::Relaxed) {
        let knocked = a_machine(scenario)
            .and_then(|(run, net, ip, image)| knock_once(&run, &net, &ip, &image));
        match knocked {
            Some(k) => return Some(k),
            None => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    None
}

/// [`knock`] on a thread of its own while a run goes on: [`Knocking::finish`] after the run
/// gives what it got; dropped (a test that panicked), it stops knocking.
pub struct Knocking {
    done: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Option<Knock>>>,
}

impl Knocking {
    /// Starts knocking on the machines of `scenario`.
    pub fn start(scenario: &str) -> Knocking {
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (done, scenario) = (done.clone(), scenario.to_string());
            move || knock(&scenario, &done)
        });
        Knocking {
            done,
            thread: Some(thread),
        }
    }

    /// Stops knocking (the run is over) and gives what a knock got, if one was answered.
    pub fn finish(mut self) -> Option<Knock> {
        self.done.store(true, Ordering::Relaxed);
        self.thread.take()?.join().expect("the knocking thread")
    }
}

impl Drop for Knocking {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}
