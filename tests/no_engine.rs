//! Without a reachable Docker engine a run fails at once with a message that says what is
//! wrong and how to fix it — it never passes silently and never hangs.

use aftershock::EngineError;
use aftershock::Error as HarnessError;
use aftershock::RunOptions;
use assert_matches::assert_matches;

#[tokio::test]
async fn an_unreachable_engine_is_a_clear_error() {
    // This test binary runs alone in its process: pointing DOCKER_HOST elsewhere touches no other test.
    std::env::set_var("DOCKER_HOST", "unix:///nonexistent/aftershock-test.sock");
    let s = aftershock_tests::scenario("zookeeper-quorum-remediated");
    let started = std::time::Instant::now();
    let error = aftershock::run(&s, &RunOptions::default())
        .await
        .unwrap_err();
    assert_matches!(error, HarnessError::Engine(EngineError::Unreachable { .. }));
    let text = error.to_string();
    assert!(text.contains("cannot reach the Docker engine"), "{text}");
    assert!(
        text.contains("dockerd"),
        "the message should say how to start one: {text}"
    );
    assert!(
        started.elapsed().as_secs() < 30,
        "it should fail fast, not hang"
    );
}
