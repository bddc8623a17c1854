//! "At the same instant" must mean it: two of three ZooKeeper nodes are killed through their
//! pidfds, ten times, and the spread of their exits is measured at the processes (the kernel's
//! exit records). The median must be ≤ 1 ms; the pidfd spread (exit + teardown) and the
//! engine's `die`-event spread are printed beside it for comparison.

use aftershock::cluster::{new_run_id, Cluster};
use aftershock::engine::{self, images};
use aftershock::timeline::{now, Timeline};
use aftershock::{Experiment, Preset, Service, Signal};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_nodes_die_within_a_millisecond() {
    let docker = engine::connect().await.unwrap_or_else(|e| panic!("{e}"));
    let _lock = aftershock::run::exclusive().await.unwrap();
    let images = images::ensure(
        &docker,
        &images::needed_for(["zookeeper"]),
        &aftershock::output::default_root(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut x = Experiment::new("kill-skew", Duration::from_secs(60));
    x.service(Service::preset("zk", Preset::Zookeeper).replicas(3));
    let scenario = x.plan().unwrap();
    let output = aftershock::output::default_root();
    let cluster = Cluster::up(
        &output,
        docker,
        &new_run_id(),
        &scenario,
        &images,
        Timeline::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let service = scenario.services[0].clone();
    let all = service.replicas.clone();
    let mut skews = vec![];
    for i in 0..10 {
        let pair = vec![all[i % 3].clone(), all[(i + 1) % 3].clone()];
        let since = now();
        let k = cluster.kill_together(&pair, Signal::Kill).await.unwrap();
        assert!(
            k.direct,
            "the engine is local here: the kill must go through pidfds"
        );
        let skew = k.exit_skew.unwrap() as f64 / 1e6;
        let die = cluster.die_event_spread(&pair, since).await;
        assert!(
            k.from_taskstats,
            "as root the kernel's exit records must be available"
        );
        println!(
            "kill {i}: {pair:?} exited {skew:.3} ms apart (signals {:.3} ms apart; pidfds, after teardown, {:.3} ms apart); engine `die` events {} ms apart",
            k.signal_spread.unwrap() as f64 / 1e6,
            k.reaped_skew.unwrap() as f64 / 1e6,
            die.map_or("?".into(), |d| format!("{d:.1}"))
        );
        skews.push(skew);
        cluster.start_stopped(&pair).await.unwrap();
        cluster
            .wait_ready(&service, &all, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let removed = cluster.down().await.unwrap();
    assert_eq!(removed.containers, 3);
    skews.sort_by(f64::total_cmp);
    let median = (skews[4] + skews[5]) / 2.0;
    println!(
        "exit skew over 10 kills: median {median:.3} ms, max {:.3} ms",
        skews[9]
    );
    assert!(
        median <= 1.0,
        "median exit skew {median:.3} ms exceeds 1 ms"
    );
}
