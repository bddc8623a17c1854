//! Pull when a registry answers: an image the local engine lacks is pulled before anything
//! starts, from the project's own registry image run as a container here (nothing else is
//! reachable). The image is tiny: the static leak agent alone, imported with a command.

use aftershock::admin;
use aftershock_tests::run_scenario;
use std::process::Command;
use std::time::{Duration, Instant};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes what this test made, whatever happens.
struct Made(Vec<(&'static str, String)>);

impl Drop for Made {
    fn drop(&mut self) {
        for (what, name) in self.0.iter().rev() {
            let _ = Command::new("docker").args([what, "-f", name]).output();
        }
    }
}

/// A tiny image: the static leak agent, leaking 1 MiB/s up to 30 MiB (it runs ~30 s).
fn tiny_image(tag: &str, agent: &std::path::Path) {
    let dir = std::env::temp_dir().join(format!("aftershock-pull-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(agent, dir.join("leak-agent")).unwrap();
    let tar = dir.join("rootfs.tar");
    let ok = Command::new("tar")
        .args([
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            "leak-agent",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let cmd = r#"CMD ["/leak-agent", "--rate-mib", "1", "--chunk-mib", "1", "--max-mib", "30"]"#;
    docker(&["import", "-c", cmd, tar.to_str().unwrap(), tag]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_the_engine_lacks_is_pulled_from_a_registry_that_serves_it() {
    let t0 = Instant::now();
    let d = admin::connect().await.unwrap_or_else(|e| panic!("{e}"));
    let output = admin::output_root();
    // An image or a release binary to build (a fresh clone has no binary yet) loads the
    // machine: not beside another test's timed run.
    let lock = admin::exclusive().await.unwrap();
    let set = admin::ensure_images(&d, &["registry"], &output)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let agent = admin::static_binary("leak-agent", &output).await.unwrap();
    drop(lock);
    let mut made = Made(vec![]);
    let name = format!("aftershock-pull-registry-{}", std::process::id());
    let registry = set.tag("registry").unwrap();
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1::5000",
        registry,
    ]);
    made.0.push(("rm", name.clone()));
    let port = docker(&["port", &name, "5000/tcp"]);
    let address = port.lines().next().unwrap().to_string(); // 127.0.0.1:NNNNN
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(Instant::now() < deadline, "the registry never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let image = format!("{address}/aftershock/tiny:{}", std::process::id());
    tiny_image(&image, &agent);
    println!(
        "registry up, image made: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    docker(&["push", &image]);
    println!("pushed: {:.1}s", t0.elapsed().as_secs_f64());
    docker(&["rmi", &image]);
    made.0.push(("rmi", image.clone()));
    // The pull alone, timed (the run below waits for the machine-wide run lock as well).
    let pulled = Instant::now();
    admin::pull_image(&d, &image)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!("pull alone: {:.2}s", pulled.elapsed().as_secs_f64());
    docker(&["rmi", &image]);

    let mut x = aftershock::Experiment::new("pull", Duration::from_secs(2)).seed(1);
    let tiny = x.service(aftershock::Service::generic("tiny", &image));
    let kill = x.fault(aftershock::Fault::kill("kill", &tiny).at(Duration::from_secs(1)));
    x.expect(aftershock::Expect::fault_verified(&kill));
    let plan = x.plan().unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let report = run_scenario(&plan).await;
    println!(
        "run with the pull took {:.2}s ({})",
        started.elapsed().as_secs_f64(),
        report.run_id
    );
    assert!(admin::has_image(&d, &image).await.unwrap(), "pulled");
}
