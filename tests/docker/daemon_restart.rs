//! The clearbit-2016-06 Docker daemon restart, replayed on three Docker-in-Docker machines with
//! real dockerds: as it was (KV lost, registry down), remediated (everything recovers, timed) and
//! with live-restore (nothing notices). Needs a Docker engine; without one these tests fail and
//! say so. The live-restore run also proves the machines' engines authenticated: a plain
//! container on the run's network, without the run's client certificate, is refused at the TLS
//! handshake (and nothing answers on the old plain port 2375).

use aftershock::Report;
use aftershock_model::timeline::EventKind;
use aftershock_tests::run_passing;

/// What a plain container on the run's network (no client certificate) got from a machine's
/// engine: `curl` on the TLS port and on the old plain port, with curl's exit codes.
struct Knock {
    tls: String,
    plain: String,
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

/// A machine of a running `scenario` of this process (never another's run of it, such as a
/// CI's): (its run id, network, address, image), once one exists.
fn a_machine(scenario: &str) -> Option<(String, String, String, String)> {
    let filter = format!("label=aftershock.scenario={scenario}");
    let (_, ids) = docker(&["ps", "-q", "--filter", &filter]);
    let ours = format!("{}@", std::process::id());
    ids.lines().find_map(|id| {
        let format = "{{index .Config.Labels \"aftershock.pid\"}} {{index .Config.Labels \"aftershock.run\"}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}{{end}} {{.Config.Image}}";
        let (ok, seen) = docker(&["inspect", "-f", format, id.trim()]);
        let f: Vec<&str> = seen.split_whitespace().collect();
        match (ok, f.as_slice()) {
            (true, [pid, run, net, ip, image])
                if pid.starts_with(&ours) && image.contains("aftershock/machine:") =>
            {
                Some((run.to_string(), net.to_string(), ip.to_string(), image.to_string()))
            }
            _ => None,
        }
    })
}

/// Knocks on a machine's engine of the running `scenario` from a plain container on its
/// network, once that engine listens (before: curl's "connection refused", exit 7). The
/// container carries the run's label, so the run's teardown removes it if it lingers.
fn knock(scenario: &str) -> Knock {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1200);
    while std::time::Instant::now() < deadline {
        let Some((run, net, ip, image)) = a_machine(scenario) else {
            std::thread::sleep(std::time::Duration::from_millis(500));
            continue;
        };
        let script = format!(
            "curl -sS -k --max-time 5 https://{ip}:2376/containers/json; echo \" exit=$?\"; \
             echo ---; curl -sS --max-time 5 http://{ip}:2375/containers/json; echo \" exit=$?\""
        );
        let label = format!("aftershock.run={run}");
        let (_, out) = docker(&[
            "run",
            "--rm",
            "--network",
            &net,
            "--label",
            &label,
            "--entrypoint",
            "sh",
            &image,
            "-c",
            &script,
        ]);
        let Some((tls, plain)) = out.split_once("---") else {
            continue;
        };
        if tls.contains("exit=7") {
            std::thread::sleep(std::time::Duration::from_millis(500));
            continue; // dockerd does not listen yet
        }
        println!(
            "knocked on {ip} (run {run}):\n  :2376 {}\n  :2375 {}",
            tls.trim(),
            plain.trim()
        );
        return Knock {
            tls: tls.trim().into(),
            plain: plain.trim().into(),
        };
    }
    panic!("no machine of {scenario} listened within 20 minutes");
}

/// Whether the timeline shows real daemons: each machine's init logged dockerd's SIGKILL exit.
fn dockerd_was_killed_on_every_machine(report: &Report) -> bool {
    let killed: std::collections::BTreeSet<&str> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Unit {
                machine,
                unit,
                state,
                detail,
            } if unit == "dockerd" && state == "exited" && detail.contains("signal 9") => {
                Some(machine.as_str())
            }
            _ => None,
        })
        .collect();
    killed.len() == 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_it_was_loses_the_kv_data_and_the_registry() {
    let report = run_passing("daemon-restart-as-it-was").await;
    assert!(dockerd_was_killed_on_every_machine(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediated_recovers_kv_leader_and_deploys() {
    let report = run_passing("daemon-restart-remediated").await;
    assert!(dockerd_was_killed_on_every_machine(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_restore_keeps_every_container_running() {
    let knocking = tokio::task::spawn_blocking(|| knock("daemon-restart-live-restore"));
    let report = run_passing("daemon-restart-live-restore").await;
    assert!(dockerd_was_killed_on_every_machine(&report));
    let knock = knocking.await.expect("the knocking thread");
    // Refused at the handshake (no client certificate): no container list, curl's TLS error.
    assert!(
        !knock.tls.contains('['),
        "listed without a certificate: {}",
        knock.tls
    );
    assert!(
        ["exit=35", "exit=56"].iter().any(|c| knock.tls.contains(c)),
        "not a refused handshake: {}",
        knock.tls
    );
    assert!(
        knock.plain.contains("exit=7"),
        "port 2375 answered: {}",
        knock.plain
    );
}
