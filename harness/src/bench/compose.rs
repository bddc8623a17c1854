//! Bring-up of a Compose file side by side (`aftershock bench --compose FILE`): the harness's
//! (`Cluster::up` of the file's services: its network, every container, each replica's health
//! check passing) against `docker-compose up -d` of the same file (Debian's `docker-compose`;
//! its images built first, untimed), then polling every 100 ms until each container of its
//! project with a health check is healthy. Teardown is untimed for both; `docker-compose down
//! -v` runs after each repetition (and `--rmi local` at the end: the images it built), the
//! harness's run guard removes its own by label.

use super::Stats;
use crate::cluster::{new_run_id, Cluster};
use crate::engine::{images, Docker};
use crate::error::{HarnessError, Result};
use crate::timeline::Timeline;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Seconds from nothing to every service healthy, the harness's and docker-compose's, over
/// the repetitions, and the ratio of their medians (harness / docker-compose).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComposeBench {
    /// The Compose file brought up.
    pub file: PathBuf,
    /// The harness's bring-up (s).
    pub up_s: Option<Stats>,
    /// docker-compose's bring-up (s).
    pub compose_up_s: Option<Stats>,
    /// The harness's median over docker-compose's.
    pub ratio: f64,
    /// The bench's target: the ratio at most this.
    pub target: f64,
    /// The lock wait (s): another timed run held the machine.
    pub lock_wait_s: f64,
}

impl ComposeBench {
    /// Two lines: both medians (min–max) and the ratio against its target.
    pub fn table(&self) -> String {
        let show = |s: &Option<Stats>| match s {
            Some(s) => format!("{:.2} s ({:.2}–{:.2}, n={})", s.median, s.min, s.max, s.n),
            None => "–".into(),
        };
        format!(
            "bring-up of {} to every service healthy:\n  aftershock      {}\n  docker-compose  {}\n  ratio {:.2}× (target ≤ {:.1}×: {})\n",
            self.file.display(),
            show(&self.up_s),
            show(&self.compose_up_s),
            self.ratio,
            self.target,
            if self.ratio <= self.target { "met" } else { "NOT met" }
        )
    }
}

/// The harness and docker-compose in turn, `reps` times each, under the run lock.
pub async fn run(file: &Path, reps: usize, output: &Path) -> Result<ComposeBench> {
    let docker = crate::engine::connect().await?;
    let waiting = Instant::now();
    let lock = crate::run::exclusive().await?;
    let lock_wait_s = waiting.elapsed().as_secs_f64();
    let plan = plan_of(file)?;
    let needed = images::needed_for(plan.project_images());
    let mut set = images::ensure(&docker, &needed, output).await?;
    crate::run::build_own(&docker, &plan, &mut set, output).await?;
    let project = format!("aftershock-bench-{}", std::process::id());
    compose(file, &project, &["build", "-q"])?;
    let (mut ours, mut theirs) = (vec![], vec![]);
    for _ in 0..reps.max(1) {
        ours.push(harness(&docker, &plan, &set, output).await?);
        let up = docker_compose_up(file, &project).await;
        let down = compose(file, &project, &["down", "-v", "--remove-orphans"]);
        theirs.push(up?);
        down?;
    }
    // The images docker-compose built for the bench are its own: removed with the project.
    compose(file, &project, &["down", "--rmi", "local"])?;
    drop(lock);
    let (up_s, compose_up_s) = (Stats::of(ours), Stats::of(theirs));
    Ok(ComposeBench {
        file: file.to_path_buf(),
        ratio: super::ratio(up_s, compose_up_s),
        up_s,
        compose_up_s,
        target: 1.2,
        lock_wait_s,
    })
}

/// The plan of a scenario that is the Compose file alone.
fn plan_of(file: &Path) -> Result<crate::scenario::plan::Plan> {
    let text = format!(
        "name = \"bench-compose\"\nduration = \"1s\"\n[topology]\ncompose = {:?}\n",
        file.display().to_string()
    );
    let at = file.with_file_name("bench-compose.toml");
    crate::scenario::parse(&at.display().to_string(), &text)
        .map_err(|e| HarnessError::io("the bench's Compose plan")(std::io::Error::other(e)))
}

/// The harness: seconds from nothing to every replica ready; then torn down (untimed).
async fn harness(
    docker: &Docker,
    plan: &crate::scenario::plan::Plan,
    set: &images::ImageSet,
    output: &Path,
) -> Result<f64> {
    let started = Instant::now();
    let run_id = new_run_id();
    let cluster = Cluster::up(output, docker.clone(), &run_id, plan, set, Timeline::new()).await?;
    let up = started.elapsed().as_secs_f64();
    cluster.down().await?;
    Ok(up)
}

/// `docker-compose -p PROJECT -f FILE ARGS…`, its output kept for the error.
fn compose(file: &Path, project: &str, args: &[&str]) -> Result<()> {
    let out = Command::new("docker-compose")
        .args(["-p", project, "-f"])
        .arg(file)
        .args(args)
        .output()
        .map_err(HarnessError::io(
            "run docker-compose (Debian's `docker-compose` package)",
        ))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(HarnessError::io(format!(
            "docker-compose {}",
            args.join(" ")
        ))(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))),
    }
}

/// `docker-compose up -d`, then every 100 ms until each of the project's containers is
/// healthy (or running, without a health check); up to 120 s.
async fn docker_compose_up(file: &Path, project: &str) -> Result<f64> {
    let started = Instant::now();
    compose(file, project, &["up", "-d"])?;
    let deadline = started + Duration::from_secs(120);
    loop {
        let out = Command::new("docker")
            .args(["ps", "-a", "--format", "{{.Status}}", "--filter"])
            .arg(format!("label=com.docker.compose.project={project}"))
            .output()
            .map_err(HarnessError::io("docker ps"))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let states: Vec<&str> = text.lines().collect();
        let ready = |s: &&str| s.contains("(healthy)") || (s.starts_with("Up") && !s.contains('('));
        if !states.is_empty() && states.iter().all(ready) {
            return Ok(started.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            return Err(HarnessError::io("docker-compose up")(
                std::io::Error::other(format!(
                    "not every container healthy within 120 s: {states:?}"
                )),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
