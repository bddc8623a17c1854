//! The clearbit-2016-06 Docker daemon restart, replayed on three Docker-in-Docker machines with
//! real dockerds: as it was (KV lost, registry down), remediated (everything recovers, timed) and
//! with live-restore (nothing notices). Needs a Docker engine; without one these tests fail and
//! say so. The live-restore run also proves the machines' engines authenticated: a plain
//! container on the run's network, without the run's client certificate, is refused at the TLS
//! handshake (and nothing answers on the old plain port 2375).

use aftershock::Report;
use aftershock_model::timeline::EventKind;
use aftershock_tests::knock::Knocking;
use aftershock_tests::run_passing;

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
    let knocking = Knocking::start("daemon-restart-live-restore");
    let report = run_passing("daemon-restart-live-restore").await;
    assert!(dockerd_was_killed_on_every_machine(&report));
    // Refused at the handshake (no client certificate): no container list, curl's TLS error.
    let knock = knocking.finish();
    knock
        .expect("no machine of the run listened while it ran")
        .assert_refused();
}
