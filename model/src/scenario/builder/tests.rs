//! The builder's own promises: per-replica values, leader checks, refusals at plan time.

use super::{Experiment, Fault, Probe, Service};
use crate::scenario::file::{LeaderCheck, Select};
use crate::scenario::plan::{LeaderAsk, ProbeKind};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn trio(leader: Option<LeaderCheck>) -> Experiment {
    let mut x = Experiment::new("trio", secs(10));
    let mut etcd = Service::generic("etcd", "etcd:local")
        .replicas(3)
        .command(&["etcd", "--name", "{replica}"])
        .env("ID", "{index}");
    if let Some(l) = leader {
        etcd = etcd.leader(l);
    }
    let etcd = x.service(etcd);
    x.probe(Probe::exec("who", &etcd, &["echo", "{replica}"]).on(etcd.replica(2)));
    x.fault(Fault::kill("follower", &etcd).select(Select::Followers(1)));
    x
}

#[test]
fn followers_of_a_service_that_cannot_say_who_leads_are_refused_by_the_plan() {
    let e = trio(None).plan().unwrap_err().to_string();
    assert!(e.contains("nothing says who leads `etcd`"), "{e}");
    assert!(e.contains("LeaderCheck::http"), "says how to fix it: {e}");
}

#[test]
fn a_leader_check_and_per_replica_values_reach_the_plan() {
    let check = LeaderCheck::http(2379, "/metrics").contains("etcd_server_is_leader 1");
    let plan = trio(Some(check)).plan().unwrap();
    let etcd = &plan.services[0];
    assert_eq!(etcd.per_replica[2].command, ["etcd", "--name", "etcd3"]);
    assert_eq!(etcd.per_replica[0].env, ["ID=1"]);
    let leader = etcd.leader.as_ref().unwrap();
    assert!(matches!(&leader.per_replica[1], LeaderAsk::Http { path, .. } if path == "/metrics"));
    assert!(matches!(
        &plan.probes[0].kind,
        ProbeKind::Check { replica, check: crate::scenario::Check::Exec(cmd) }
            if replica == "etcd3" && cmd[1] == "etcd3"
    ));
}
