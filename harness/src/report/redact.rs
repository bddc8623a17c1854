//! Secrets stay secret: the values of a scenario's environment (a service's `env`, Compose
//! `environment` and `env_file`) and of its Compose file's `secrets` never appear
//! in what a run writes or says — `report.json`, `report.html`, `junit.xml`, progress events
//! and the log lines the CLI prints.
//!
//! [`Secrets::of`] collects every such value of a plan; [`Secrets::text`] replaces each in a
//! text with [`HIDDEN`], and [`Secrets::report`] does so in every string of a report (the
//! timeline's notes and details, the verdicts' reasons, the harness error), before anything
//! is rendered from it. A run also [`Secrets::remember`]s its values for the rest of the
//! process, so [`logged`] (the CLI's log writer, the progress events) hides them too. Values
//! shorter than [`MIN_LEN`] characters (`1`, `true`, a port) are not looked for in texts: they
//! are too likely to be ordinary words and numbers there.

use super::Report;
use crate::scenario::Plan;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::RwLock;

/// What a hidden value is replaced with.
pub const HIDDEN: &str = "…";

/// The shortest value looked for in texts.
pub const MIN_LEN: usize = 6;

/// Every value remembered by a run of this process (for log lines and progress events).
static REMEMBERED: RwLock<BTreeSet<String>> = RwLock::new(BTreeSet::new());

/// The values of a plan's environment that must not be shown, longest first (so a value that
/// contains another is hidden whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// Every value of every service's environment (as written and per replica) of `plan`, and
    /// of its Compose file's `secrets`.
    pub fn of(plan: &Plan) -> Secrets {
        let env = plan.services.iter().flat_map(|s| {
            s.env
                .iter()
                .chain(s.per_replica.iter().flat_map(|r| r.env.iter()))
        });
        // A value that is one of the plan's own names (a replica named in `ZK_MY_ID`-style
        // settings, `etcd-1`) is no secret: the report shows that name everywhere, and hiding
        // it would blank every replica's rows.
        let names = plan_names(plan);
        let env = env
            .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
            .filter(|v| !names.contains(v));
        Secrets::from_values(env.chain(plan.secrets.iter().map(String::as_str)))
    }

    fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Secrets {
        let set: BTreeSet<&str> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_LEN)
            .collect();
        let mut values: Vec<String> = set.into_iter().map(str::to_string).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Secrets { values }
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every value replaced by [`HIDDEN`].
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        hide(&self.values, text)
    }

    /// `report` with every value hidden in each of its strings.
    pub fn report(&self, report: Report) -> Report {
        if self.is_empty() {
            return report;
        }
        let dir = report.dir.clone();
        let Ok(mut value) = serde_json::to_value(&report) else {
            return report;
        };
        self.json(&mut value);
        match serde_json::from_value::<Report>(value) {
            Ok(mut hidden) => {
                hidden.dir = dir;
                hidden
            }
            Err(_) => report,
        }
    }

    /// Hides every value in each string (and object key) of `value`.
    pub fn json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                if let Cow::Owned(hidden) = self.text(s) {
                    *s = hidden;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.json(&mut v);
                    map.insert(self.text(&key).into_owned(), v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Remembers the values for the rest of the process: [`logged`] hides them from then on.
    pub fn remember(&self) {
        if self.is_empty() {
            return;
        }
        let mut known = REMEMBERED.write().unwrap_or_else(|e| e.into_inner());
        known.extend(self.values.iter().cloned());
    }
}

/// `text` (a log line, a progress message) with every value a run of this process remembered
/// replaced by [`HIDDEN`].
pub fn logged(text: &str) -> Cow<'_, str> {
    let known = REMEMBERED.read().unwrap_or_else(|e| e.into_inner());
    if known.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut values: Vec<&String> = known.iter().collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    Cow::Owned(hide(&values, text).into_owned())
}

fn hide<'a, S: AsRef<str>>(values: &[S], text: &'a str) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for v in values {
        let v = v.as_ref();
        if out.contains(v) {
            out = Cow::Owned(out.replace(v, HIDDEN));
        }
    }
    out
}

/// The names a plan gives (services, replicas, machines): what its report shows anyway.
fn plan_names(plan: &Plan) -> BTreeSet<&str> {
    let services = plan.services.iter().flat_map(|s| {
        std::iter::once(s.name.as_str()).chain(s.replicas.iter().map(String::as_str))
    });
    services
        .chain(plan.machines.iter().map(|m| m.name.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_hidden_longest_first_and_short_ones_are_left_alone() {
        let s = Secrets::from_values(["hunter22", "hunter22-and-more", "1", "true"]);
        assert_eq!(
            s.text("pw=hunter22-and-more, or hunter22; id 1 true"),
            "pw=…, or …; id 1 true"
        );
        assert!(matches!(s.text("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_value_that_is_one_of_the_plan_s_names_is_not_hidden() {
        let mut plan = compose_plan();
        let db = &mut plan.services[0];
        db.replicas[0] = "catalog-db-1".into();
        let replica = db.replicas[0].clone();
        db.env.push(format!("MY_NAME={replica}"));
        let s = Secrets::of(&plan);
        let line = format!("{replica}: {IN_ENVIRONMENT}");
        assert_eq!(s.text(&line), format!("{replica}: {HIDDEN}"));
    }

    #[test]
    fn every_string_and_key_of_a_json_value_is_hidden() {
        let s = Secrets::from_values(["s3cr3t-value"]);
        let mut v = serde_json::json!({
            "a": ["x s3cr3t-value y", 3, null],
            "s3cr3t-value": {"b": "s3cr3t-value"}
        });
        s.json(&mut v);
        let text = v.to_string();
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert_eq!(v["a"][0], "x … y");
    }

    const IN_ENVIRONMENT: &str = "marker-environment-7f3a9c";
    const IN_ENV_FILE: &str = "marker-env-file-2b8d41";
    const IN_BUILDER: &str = "marker-builder-env-5e6f0a";
    const IN_SECRET_FILE: &str = "marker-secret-file-9c1e77";

    /// A scenario on a Compose file whose service has a secret in `environment`, one in its
    /// `env_file` and one in a Compose `secrets` file (which it uses).
    fn compose_plan() -> Plan {
        let dir = std::env::temp_dir().join(format!("aftershock-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let compose = format!(
            "services:\n  db:\n    image: postgres\n    environment:\n      \
DB_PASSWORD: {IN_ENVIRONMENT}\n      PORT: \"5432\"\n    env_file: db.env\n    \
secrets: [db_root]\nsecrets:\n  db_root:\n    file: ./db_root.txt\n"
        );
        std::fs::write(dir.join("compose.yml"), compose).unwrap();
        std::fs::write(dir.join("db.env"), format!("API_TOKEN={IN_ENV_FILE}\n")).unwrap();
        std::fs::write(dir.join("db_root.txt"), format!("{IN_SECRET_FILE}\n")).unwrap();
        let toml = "name = \"secrets\"\nduration = \"2s\"\n[topology]\ncompose = \"compose.yml\"\n";
        std::fs::write(dir.join("secrets.toml"), toml).unwrap();
        let plan =
            crate::scenario::load(&dir.join("secrets.toml")).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_dir_all(&dir);
        plan
    }

    /// Events that carry a secret where a real run could put one: a note, a fault's details,
    /// a probe's error text, an unplanned event.
    fn leaky_timeline(secret: &str) -> Vec<crate::timeline::Event> {
        use crate::timeline::{Cause, Event, EventKind};
        let kinds = [
            EventKind::Note {
                text: format!("started db with DB_PASSWORD={secret}"),
            },
            EventKind::FaultApplied {
                fault: "f".into(),
                targets: vec!["db".into()],
                detail: format!("exec `psql -c {secret}`"),
            },
            EventKind::Sample {
                probe: "p".into(),
                ok: false,
                latency: 1,
                detail: Some(format!("refused: password {secret} rejected")),
                late: None,
            },
            EventKind::Unplanned {
                cause: Cause::Container,
                subject: "db".into(),
                lasted: 0,
                detail: format!("died: {secret}"),
            },
        ];
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Event {
                at: 1_000_000_000 * (i as i64 + 1),
                kind,
            })
            .collect()
    }

    #[test]
    fn no_report_file_of_a_run_contains_a_compose_secret() {
        let plan = compose_plan();
        let secrets = Secrets::of(&plan);
        for marker in [IN_ENVIRONMENT, IN_ENV_FILE, IN_SECRET_FILE] {
            assert!(secrets.values.iter().any(|v| v == marker), "{secrets:?}");
            let info = super::super::RunInfo {
                run_id: "secrets-test".into(),
                seed: 1,
                started_at: 0,
                finished_at: 10_000_000_000,
                error: Some(format!("exec `login {marker}` failed")),
            };
            let report = Report::new(&plan, info, vec![], leaky_timeline(marker));
            let dir = std::env::temp_dir().join(format!(
                "aftershock-secrets-report-{}-{}",
                std::process::id(),
                marker.len()
            ));
            let written = report.write_to(&dir).unwrap();
            for file in [&written.json, &written.html, &written.junit] {
                let text = std::fs::read_to_string(file).unwrap();
                assert!(!text.contains(marker), "{} holds {marker}", file.display());
                assert!(
                    text.contains(HIDDEN),
                    "{} shows where it hid",
                    file.display()
                );
            }
            assert!(!report.table().contains(marker), "the table for people");
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn a_run_s_values_are_hidden_from_log_lines_and_progress_events() {
        use crate::scenario::builder::{Experiment, Service};
        let mut x = Experiment::new("builder-secret", std::time::Duration::from_secs(2));
        x.service(Service::generic("api", "busybox:latest").env("TOKEN", IN_BUILDER));
        let plan = x.plan().unwrap_or_else(|e| panic!("{e}"));
        let line = format!("warn: exec `curl -H {IN_BUILDER}` failed");
        assert_eq!(logged(&line), line, "not remembered yet");
        Secrets::of(&plan).remember();
        assert_eq!(logged(&line), "warn: exec `curl -H …` failed");
        let secret = format!("error: login with {IN_SECRET_FILE} refused");
        Secrets::of(&compose_plan()).remember();
        assert_eq!(logged(&secret), "error: login with … refused");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let progress = crate::Progress::to({
            let seen = seen.clone();
            move |e| seen.lock().unwrap().push(format!("{e:?}"))
        });
        progress.step(format!("bringing up api with {IN_BUILDER}"));
        let seen = seen.lock().unwrap().join("\n");
        assert!(!seen.contains(IN_BUILDER) && seen.contains('…'), "{seen}");
    }
}
