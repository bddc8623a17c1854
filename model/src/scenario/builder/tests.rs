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

#[test]
fn a_problem_names_the_line_of_the_callers_code_that_added_the_part() {
    let mut x = Experiment::new("lines", secs(10));
    let cache = x.service(Service::generic("cache", "memcached").replicas(2));
    let line = line!() + 1;
    x.probe(Probe::tcp("port", &cache, 11211).on("nope"));
    let e = x.plan().unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:{line}:", file!())), "{e}");
    assert!(e.contains("`on` names the replica"), "{e}");

    let mut x = Experiment::new("lines", secs(10));
    let cache = x.service(Service::generic("cache", "memcached"));
    let line = line!() + 1;
    x.fault(Fault::kill("late", &cache).at(secs(20)));
    let e = x.plan().unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:{line}:", file!())),
        "by name: {e}"
    );

    let x = Experiment::new("empty", secs(10));
    let line = line!() + 1;
    let e = x.plan().unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:{line}:", file!())),
        "at plan(): {e}"
    );
}

#[test]
fn replica_handles_are_what_probes_and_faults_take_and_another_experiments_are_refused() {
    let mut x = Experiment::new("handles", secs(10));
    let cache = x.service(Service::generic("cache", "memcached").replicas(3));
    let second = cache.replica(1);
    assert_eq!((second.name(), second.service()), ("cache2", "cache"));
    x.probe(Probe::tcp("port", &cache, 11211).on(&second));
    x.fault(Fault::kill("k", &cache).select(Select::named([cache.replica(2)])));
    let plan = x.plan().unwrap();
    assert!(
        matches!(&plan.probes[0].kind, ProbeKind::Check { replica, .. } if replica == "cache2")
    );
    assert_eq!(plan.faults[0].select, Select::Named(vec!["cache3".into()]));

    let mut other = Experiment::new("other", secs(10));
    let theirs = other.service(Service::generic("cache", "memcached").replicas(3));
    let line = line!() + 1;
    x.probe(Probe::tcp("theirs", &cache, 11211).on(theirs.replica(0)));
    let e = x.plan().unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:{line}:", file!())), "{e}");
    assert!(e.contains("`cache1` of another experiment"), "{e}");
}
