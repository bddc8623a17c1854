//! Who leads a service that says how to ask (`leader = { exec | http … }` in the plan): every
//! replica is asked at once; the one that answers "I lead" is the leader. Presets that elect
//! one (ZooKeeper) answer through their own `PresetKind::leader` instead.

use super::generic::{exec, http_client, short};
use super::Addresses;
use crate::engine::RunEngine;
use crate::scenario::plan::{LeaderAsk, LeaderCheck, Service};

/// The one replica whose answer says it leads, or why there is none now.
pub async fn ask(
    engine: &RunEngine,
    service: &Service,
    check: &LeaderCheck,
    addresses: &Addresses,
) -> Result<String, String> {
    let client = http_client(check.timeout);
    let answers = service
        .replicas
        .iter()
        .zip(&check.per_replica)
        .map(|(replica, question)| {
            let client = &client;
            async move {
                let answer = tokio::time::timeout(
                    check.timeout,
                    one(engine, client, replica, question, addresses),
                )
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {:?}", check.timeout)));
                (replica, answer)
            }
        });
    let answers = futures_util::future::join_all(answers).await;
    let mut leaders = vec![];
    let mut others = vec![];
    for (replica, answer) in answers {
        match answer {
            Ok(text) if leads(&text, check.contains.as_deref()) => leaders.push(replica.clone()),
            Ok(_) => others.push(format!("{replica}: not the leader")),
            Err(e) => others.push(format!("{replica}: {e}")),
        }
    }
    match leaders.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no replica of `{}` answered its leader check as the leader ({})",
            service.name,
            others.join("; ")
        )),
        several => Err(format!(
            "{} replicas of `{}` answered its leader check as the leader: {}",
            several.len(),
            service.name,
            several.join(", ")
        )),
    }
}

fn leads(answer: &str, contains: Option<&str>) -> bool {
    contains.is_none_or(|c| answer.contains(c))
}

/// One replica's answer when it said yes (exit 0, the status), else what it said.
async fn one(
    engine: &RunEngine,
    client: &reqwest::Client,
    replica: &str,
    question: &LeaderAsk,
    addresses: &Addresses,
) -> Result<String, String> {
    match question {
        LeaderAsk::Exec(cmd) => match exec(engine, replica, cmd).await {
            Ok((0, output)) => Ok(output),
            Ok((code, output)) => Err(format!("exit {code}: {}", output.trim())),
            Err(miss) => Err(miss.to_string()),
        },
        LeaderAsk::Http {
            port,
            method,
            path,
            body,
            status,
        } => {
            let ip = addresses.get(replica).ok_or("no address")?;
            let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
            let mut request = client.request(method, format!("http://{ip}:{port}{path}"));
            if let Some(body) = body {
                request = request.body(body.clone());
            }
            let response = request.send().await.map_err(short)?;
            let got = response.status();
            let text = response.text().await.unwrap_or_default();
            match status.map_or(got.is_success(), |s| got.as_u16() == s) {
                true => Ok(text),
                false => Err(format!("{}", got.as_u16())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_answer_leads_when_it_contains_the_text() {
        assert!(super::leads("anything", None));
        assert!(super::leads("etcd_server_is_leader 1\n", Some("etcd_server_is_leader 1")));
        assert!(!super::leads("etcd_server_is_leader 0\n", Some("etcd_server_is_leader 1")));
    }
}
