//! Per-replica values: `{replica}` (the replica's name, `etcd2`) and `{index}` (its number,
//! counted from 1 as in its name) replaced once, here, in a service's entrypoint, command and
//! environment, in its leader check, and in the templates of the probes that observe one
//! replica. Nothing downstream substitutes: the plan holds every replica's own values.

use crate::scenario::file;
use crate::scenario::plan::{LeaderAsk, LeaderCheck, ReplicaValues};
use std::time::Duration;

/// The default wait for one replica's answer to a leader check.
const LEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// One replica's name and number, what `{replica}` and `{index}` stand for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replica<'a> {
    pub name: &'a str,
    /// 1-based, as in the replica's name.
    pub index: usize,
}

impl<'a> Replica<'a> {
    /// The replicas of a service, in order.
    pub fn all(names: &'a [String]) -> impl Iterator<Item = Replica<'a>> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| Replica { name, index: i + 1 })
    }

    /// The replica `name` among `names` (index 1 when it is not one of them).
    pub fn of(names: &'a [String], name: &'a str) -> Replica<'a> {
        let index = names.iter().position(|n| n == name).map_or(1, |i| i + 1);
        Replica { name, index }
    }

    /// `text` with `{replica}` and `{index}` replaced (any other `{…}`, e.g. `{n}`, stays).
    pub fn fill(&self, text: &str) -> String {
        text.replace("{replica}", self.name)
            .replace("{index}", &self.index.to_string())
    }

    /// Every word of `words` filled.
    pub fn fill_all(&self, words: &[String]) -> Vec<String> {
        words.iter().map(|w| self.fill(w)).collect()
    }
}

/// Each replica's entrypoint, command and environment.
pub(super) fn values(svc: &file::Service, replicas: &[String]) -> Vec<ReplicaValues> {
    Replica::all(replicas)
        .map(|r| ReplicaValues {
            entrypoint: svc.entrypoint.as_deref().map(|e| r.fill_all(e)),
            command: r.fill_all(&svc.command),
            env: svc
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", r.fill(v)))
                .collect(),
        })
        .collect()
}

/// Why a service's `leader` table cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LeaderCheckError {
    #[error("`leader.timeout` must be above 0")]
    ZeroTimeout,
    #[error("`leader` needs exactly one of `exec = [\"cmd\", …]` (exit 0: this replica leads) or `http = <port>` (with `path`, and `contains` for the answer that means it leads)")]
    NotOneAsk,
    #[error("`leader.path`, `method` and `body` belong to an `http` leader check, not `exec`")]
    HttpFieldsOnExec,
    #[error("`leader.path` must start with `/`")]
    RelativePath,
}

/// The service's leader check, one question per replica; an error when it is not exactly one
/// of `exec` and `http`.
pub(super) fn leader(
    svc: &file::Service,
    replicas: &[String],
) -> Result<Option<LeaderCheck>, LeaderCheckError> {
    let Some(check) = &svc.leader else {
        return Ok(None);
    };
    let timeout = check.timeout.unwrap_or(LEADER_TIMEOUT);
    if timeout.is_zero() {
        return Err(LeaderCheckError::ZeroTimeout);
    }
    let ask = |r: Replica| match (&check.exec, check.http) {
        (Some(cmd), None) if !cmd.is_empty() => Ok(LeaderAsk::Exec(r.fill_all(cmd))),
        (None, Some(port)) => Ok(LeaderAsk::Http {
            port,
            method: check
                .method
                .clone()
                .unwrap_or_else(|| if check.body.is_some() { "POST" } else { "GET" }.into())
                .to_uppercase(),
            path: r.fill(check.path.as_deref().unwrap_or("/")),
            body: check.body.as_deref().map(|b| r.fill(b)),
            status: check.status,
        }),
        _ => Err(LeaderCheckError::NotOneAsk),
    };
    let http_only = check.path.is_some() || check.method.is_some() || check.body.is_some();
    if check.exec.is_some() && check.http.is_none() && http_only {
        return Err(LeaderCheckError::HttpFieldsOnExec);
    }
    if check.path.as_deref().is_some_and(|p| !p.starts_with('/')) {
        return Err(LeaderCheckError::RelativePath);
    }
    Ok(Some(LeaderCheck {
        per_replica: Replica::all(replicas).map(ask).collect::<Result<_, _>>()?,
        contains: check.contains.clone(),
        timeout,
    }))
}

#[cfg(test)]
mod tests {
    use crate::scenario::parse;
    use crate::scenario::plan::LeaderAsk;

    const ETCD: &str = r#"
name = "t"
duration = "10s"
[[topology.service]]
name = "etcd"
image = "etcd:local"
replicas = 3
command = ["etcd", "--name", "{replica}", "--data-dir", "/var/lib/{replica}-{index}"]
env = { ETCD_NAME = "{replica}", PLAIN = "no {braces} here" }
leader = { http = 2379, path = "/metrics", contains = "etcd_server_is_leader 1" }
[[probe]]
name = "on-two"
kind = "exec"
target = "etcd"
on = "etcd2"
command = ["echo", "{replica}", "{index}"]
[[probe]]
name = "writes"
kind = "write"
target = "etcd"
on = "etcd3"
port = 2379
path = "/v3/kv/put"
body = '{"key": "{replica}-{n}"}'
read_path = "/{index}"
"#;

    #[test]
    fn replica_and_index_are_replaced_per_replica_and_nothing_else_is() {
        let plan = parse("t.toml", ETCD).unwrap();
        let etcd = &plan.services[0];
        assert_eq!(
            etcd.command[2], "{replica}",
            "the service's own command as written"
        );
        let second = &etcd.per_replica[1];
        assert_eq!(
            second.command,
            ["etcd", "--name", "etcd2", "--data-dir", "/var/lib/etcd2-2"]
        );
        assert_eq!(second.env, ["ETCD_NAME=etcd2", "PLAIN=no {braces} here"]);
        assert_eq!(etcd.per_replica[0].command[2], "etcd1");
        let leader = etcd.leader.as_ref().unwrap();
        assert_eq!(leader.per_replica.len(), 3);
        assert!(
            matches!(&leader.per_replica[2], LeaderAsk::Http { port: 2379, method, .. } if method == "GET")
        );
        let text = format!("{:?}", plan.probes);
        assert!(text.contains(r#"["echo", "etcd2", "2"]"#), "{text}");
        assert!(
            text.contains(r#"etcd3-{n}"#),
            "{{n}} stays for the probe: {text}"
        );
        assert!(text.contains(r#"read_path: "/3""#), "{text}");
    }

    #[test]
    fn a_leader_check_needs_exactly_one_way_to_ask() {
        let both = ETCD.replace(
            "leader = { http = 2379,",
            "leader = { exec = [\"true\"], http = 2379,",
        );
        let e = parse("t.toml", &both).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:5:"), "{e}");
        assert!(e.contains("exactly one of `exec"), "{e}");
    }

    #[test]
    fn selecting_the_leader_of_a_service_without_a_leader_check_is_refused_where_the_fault_is() {
        let fault = "\n[[fault]]\nname = \"chef\"\nkind = \"kill\"\nat = \"1s\"\ntarget = \"etcd\"\nselect = \"leader\"\n";
        assert!(parse("t.toml", &(ETCD.to_string() + fault)).is_ok());
        let without = ETCD.replace("leader = {", "# leader = {");
        let e = parse("t.toml", &(without + fault)).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:28:"), "at the fault's name: {e}");
        assert!(e.contains("fault `chef`"), "{e}");
        assert!(e.contains("select = \"leader\""), "{e}");
        assert!(e.contains("leader = { http = <port>"), "says how: {e}");
    }
}
