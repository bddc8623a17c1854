//! The realtime-2016-06 ZooKeeper quorum incident, replayed against a real 3-node ensemble:
//! as it was (two nodes restarted at the same instant) and remediated (a serialised restart).
//! Needs a Docker engine; without one these tests fail and say so.

use aftershock_tests::run_passing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_it_was_two_simultaneous_restarts_lose_quorum_and_need_a_cold_start() {
    run_passing("zookeeper-quorum-as-it-was").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediated_serialised_restarts_never_lose_a_write() {
    run_passing("zookeeper-quorum-remediated").await;
}
