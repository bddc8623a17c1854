//! Compose files as topologies, against real containers: the leak → OOM archetype inside a
//! service that only a Compose file describes (built from its own Dockerfile, no preset, no
//! agent in its image), a missing image that no registry serves, refused before anything
//! starts, and a file whose keys reach the host and the engine (bind mount, secret, config,
//! two networks, `container_name`, `build.target`), each seen to take effect in the replicas,
//! the same file end to end through `aftershock audit`, and a wait on an image's own health
//! check (refused before bring-up when the image has none) and on a one-shot job.

use aftershock::Error;
use aftershock_model::timeline::EventKind;
use aftershock_tests::{run_scenario, scenario_at};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_to_oom_works_on_a_compose_service_that_is_no_preset() {
    aftershock::base_image(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = scenario_at("examples/compose/leak.toml");
    let cache = &plan.services[0];
    assert_eq!(cache.preset(), None, "a generic service, from Compose");
    let started = Instant::now();
    let report = run_scenario(&plan).await;
    println!("run took {:.1}s", started.elapsed().as_secs_f64());
    let kills: Vec<_> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OomKill { process, .. } => Some((e.at, process.clone())),
            _ => None,
        })
        .collect();
    assert!(!kills.is_empty(), "no OOM kill recorded");
    let applied = report
        .timeline
        .iter()
        .find(|e| matches!(&e.kind, EventKind::FaultApplied { fault, .. } if fault == "leak"))
        .map(|e| e.at)
        .expect("the leak was applied");
    println!(
        "OOM kill of {} {:.2}s after the leak started",
        kills[0].1,
        (kills[0].0 as f64 - applied as f64) / 1e9
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_no_registry_serves_is_refused_before_anything_starts() {
    let dir = std::env::temp_dir().join(format!("aftershock-compose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let compose = "services:\n  ghost:\n    image: aftershock-test/absent:1\n";
    std::fs::write(dir.join("compose.yml"), compose).unwrap();
    let toml =
        "name = \"missing-image\"\nduration = \"2s\"\n[topology]\ncompose = \"compose.yml\"\n";
    let file = dir.join("missing.toml");
    std::fs::write(&file, toml).unwrap();
    let plan = aftershock_model::scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let error = aftershock::run(&plan, &Default::default())
        .await
        .unwrap_err();
    println!(
        "refused in {:.2}s: {error}",
        started.elapsed().as_secs_f64()
    );
    assert!(matches!(error, Error::UnknownImage { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("ghost") && text.contains("aftershock-test/absent:1"),
        "{text}"
    );
    let ours = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=aftershock.scenario=missing-image",
        ])
        .output()
        .expect("docker ps");
    assert!(
        ours.stdout.is_empty(),
        "a container of the refused run exists"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_on_a_compose_volume_loses_no_fsynced_write_of_the_generic_probe() {
    aftershock::base_image(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = scenario_at("examples/compose/journal.toml");
    assert!(plan.services[0].disk.is_some(), "the volume is a disk");
    let started = Instant::now();
    let report = run_scenario(&plan).await;
    println!("run took {:.1}s", started.elapsed().as_secs_f64());
    let (acknowledged, present) = report
        .timeline
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ReadBack {
                acknowledged,
                present,
                ..
            } => Some((acknowledged.len(), present.len())),
            _ => None,
        })
        .expect("the journal was read back");
    println!("{acknowledged} writes acknowledged, {present} present after the cut");
    assert!(acknowledged > 10, "the probe wrote: {acknowledged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_files_mounts_secrets_networks_aliases_and_target_take_effect() {
    aftershock::base_image(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = scenario_at("tests/fixtures/compose-keys/keys.toml");
    let backend = plan.services.iter().find(|s| s.name == "backend").unwrap();
    assert!(
        matches!(&backend.image, aftershock_model::scenario::plan::Image::Build { target: Some(t), .. } if t == "builder"),
        "{:?}",
        backend.image
    );
    let started = Instant::now();
    // Every probe asks a replica whether one key took effect: the stage `builder` was built,
    // the bind mount is there (read-only), the secret and the config are readable, and
    // `flask-backend` resolves from a service on each network (it is no alias on the run's
    // own network, so only the file's networks can answer).
    let report = run_scenario(&plan).await;
    let own = (report.finished_at - report.started_at) as f64 / 1e9;
    println!(
        "run took {:.1}s ({own:.1}s from the run's start to its teardown; the rest: images and the run lock)",
        started.elapsed().as_secs_f64()
    );
    // What the file says that the run does not act on is in the report and its table.
    let ports = "service `backend`: `ports`: not published on the host";
    assert!(
        report.notes.iter().any(|n| n.contains(ports)),
        "{:#?}",
        report.notes
    );
    assert!(report.table().contains(ports));
    for probe in &plan.probes {
        let ok = report
            .timeline
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::Sample { probe: p, ok: true, .. } if *p == probe.name))
            .count();
        assert!(ok > 0, "probe `{}` never answered", probe.name);
    }
}

/// `aftershock audit -f compose.yaml -f compose.override.yaml` on the file of every key
/// (tests/fixtures/compose-keys; images built from Debian packages, a few MB each): the CLI
/// plans it and writes its scenario files, and the engine crash it planned runs end to end
/// (the services on a machine, bind mount, secret, config, two networks, `container_name`,
/// `build.target`), with every key the files say that the run ignores in the report. The
/// audit's second file (the same crash with live-restore) is left out to keep the cost down:
/// its run takes 50–60 s (50.8 and 59.4 s measured, 2026-12-03; 172 s with the images built on the
/// 825 MB base, before they were slimmed), of which the machine's engine is most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_runs_the_file_of_every_key_end_to_end() {
    aftershock::base_image(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = aftershock_tests::root().join("tests/fixtures/compose-keys");
    let out = std::env::temp_dir().join(format!("aftershock-audit-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let audit = std::process::Command::new(aftershock_tests::cli_binary())
        .current_dir(&dir)
        .args([
            "audit",
            "--plan-only",
            "-f",
            "compose.yaml",
            "-f",
            "compose.override.yaml",
            // The machine's engine was back in 4.2 s and every service 0.2 s after it
            // (2026-12-03): a 15 s budget judges that, in a run 15 s shorter than at 30 s.
            "--recover-within",
            "15s",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("run the aftershock CLI");
    let said = String::from_utf8_lossy(&audit.stderr);
    assert!(audit.status.success(), "{said}");
    let files = [dir.join("compose.yaml"), dir.join("compose.override.yaml")];
    let paths: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let topology =
        aftershock_model::scenario::load_composes(&paths).unwrap_or_else(|e| panic!("{e}"));
    let ignored: Vec<String> = topology.notes.iter().map(|n| n.to_string()).collect();
    assert!(ignored.iter().any(|n| n.contains("`ports`")), "{ignored:?}");
    let plan = aftershock_model::scenario::load(&out.join("audit-engine-crash.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let report = run_scenario(&plan).await;
    let own = (report.finished_at - report.started_at) as f64 / 1e9;
    println!(
        "run took {:.1}s ({own:.1}s from the run's start to its teardown; the rest: images and the run lock)",
        started.elapsed().as_secs_f64()
    );
    assert!(
        matches!(report.verdict, aftershock::Verdict::Pass),
        "{:?}\n{}",
        report.verdict,
        report.table()
    );
    for note in &ignored {
        assert!(report.notes.contains(note), "not in the report: {note}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_on_an_images_own_health_check_and_on_a_job_as_compose_does() {
    aftershock::base_image(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // An image without a health check: refused before bring-up, where the wait is written.
    let plan = scenario_at("tests/fixtures/compose-health/no-health.toml");
    let started = Instant::now();
    let error = aftershock::run(&plan, &Default::default())
        .await
        .unwrap_err();
    println!(
        "refused in {:.1}s: {error}",
        started.elapsed().as_secs_f64()
    );
    let text = error.to_string();
    assert!(matches!(error, Error::NoHealthCheck { .. }), "{text}");
    assert!(
        text.contains("no-health.yml:8: service `app` waits for `dns`")
            && text.contains("give `dns` a `healthcheck:`"),
        "{text}"
    );
    // The image's HEALTHCHECK is the ready check; the job has exited 0 before `app` starts.
    let plan = scenario_at("tests/fixtures/compose-health/health.toml");
    let dns = plan.services.iter().find(|s| s.name == "dns").unwrap();
    assert!(dns.ready.is_none() && dns.extras.image_health.is_some());
    let started = Instant::now();
    let report = run_scenario(&plan).await;
    println!("run took {:.1}s", started.elapsed().as_secs_f64());
    let ready_at = |name: &str| {
        let prefix = format!("service {name} ready");
        report.timeline.iter().find_map(|e| match &e.kind {
            EventKind::Note { text } if text.starts_with(&prefix) => Some(e.at),
            _ => None,
        })
    };
    let (dns, migrate, app) = (ready_at("dns"), ready_at("migrate"), ready_at("app"));
    println!("ready at {dns:?} (dns), {migrate:?} (migrate), {app:?} (app)");
    let (dns, migrate, app) = (dns.unwrap(), migrate.unwrap(), app.unwrap());
    assert!(
        dns < app && migrate < app,
        "app was ready before what it waits on"
    );
}
