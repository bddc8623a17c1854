//! Who leads a service that says how to ask (`leader = { exec | http … }` in the plan): every
//! replica is asked at once; the one that answers "I lead" is the leader. Presets that elect
//! one (ZooKeeper) answer through their own `PresetKind::leader` instead.

use super::generic::{exec, http_client, short};
use super::{Addresses, Miss, ServiceError};
use crate::engine::RunEngine;
use crate::scenario::plan::{LeaderAsk, LeaderCheck, Service};

/// Why a service's leader is not known now.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// No replica answered its leader check as the leader.
    #[error("no replica of `{service}` answered its leader check as the leader ({answers})")]
    NoAnswer {
        /// The service.
        service: String,
        /// Each replica's answer.
        answers: String,
    },
    /// Several replicas answered as the leader.
    #[error("{} replicas of `{service}` answered its leader check as the leader: {}", leaders.len(), leaders.join(", "))]
    Several {
        /// The service.
        service: String,
        /// Who said it leads.
        leaders: Vec<String>,
    },
    /// The service has no way to say who leads (the plan refuses this: a harness bug if seen).
    #[error("`{service}` has no leader to select: it has no `leader` check (the plan should have refused this)")]
    NoWay {
        /// The service.
        service: String,
    },
    /// Its preset knows no leader now.
    #[error("`{service}` has no leader to select")]
    NoneNow {
        /// The service.
        service: String,
    },
    /// No leader was known for as long as a fault waits for an election.
    #[error("{last}, asked for {:.1}s (no election ended; {busy})", waited.as_secs_f64())]
    NoneWithin {
        /// How long it was asked.
        waited: std::time::Duration,
        /// How busy the host's CPUs were then ([`crate::engine::host::busy`]).
        busy: String,
        /// The last answer.
        last: Box<LeaderError>,
    },
    /// Asking the preset for its leader failed.
    #[error("`{service}`'s leader is not known: {source}")]
    Asking {
        /// The service.
        service: String,
        /// What the asking met.
        #[source]
        source: ServiceError,
    },
}

/// The one replica whose answer says it leads, or why there is none now.
pub async fn ask(
    engine: &RunEngine,
    service: &Service,
    check: &LeaderCheck,
    addresses: &Addresses,
) -> Result<String, LeaderError> {
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
                .unwrap_or_else(|_| {
                    Err(Miss::Failed(format!(
                        "no answer within {:?}",
                        check.timeout
                    )))
                });
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
        [] => Err(LeaderError::NoAnswer {
            service: service.name.clone(),
            answers: others.join("; "),
        }),
        several => Err(LeaderError::Several {
            service: service.name.clone(),
            leaders: several.to_vec(),
        }),
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
) -> Result<String, Miss> {
    let failed = |text: String| Miss::Failed(text);
    match question {
        LeaderAsk::Exec(cmd) => match exec(engine, replica, cmd).await {
            Ok((0, output)) => Ok(output),
            Ok((code, output)) => Err(failed(format!("exit {code}: {}", output.trim()))),
            Err(miss) => Err(miss),
        },
        LeaderAsk::Http {
            port,
            method,
            path,
            body,
            status,
        } => {
            let ip = addresses
                .get(replica)
                .ok_or_else(|| failed("no address".into()))?;
            let method = reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|e| failed(e.to_string()))?;
            let mut request = client.request(method, format!("http://{ip}:{port}{path}"));
            if let Some(body) = body {
                request = request.body(body.clone());
            }
            let response = request.send().await.map_err(|e| failed(short(e)))?;
            let got = response.status();
            let text = response.text().await.unwrap_or_default();
            match status.map_or(got.is_success(), |s| got.as_u16() == s) {
                true => Ok(text),
                false => Err(failed(format!("{}", got.as_u16()))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_leader_after_the_wait_names_each_member_s_mode_and_the_wait() {
        let last = super::LeaderError::Asking {
            service: "zk".into(),
            source: crate::services::ServiceError::Leaderless {
                modes: vec![
                    ("zk-1".into(), Some("follower".into())),
                    ("zk-2".into(), None),
                ],
            },
        };
        let e = super::LeaderError::NoneWithin {
            waited: std::time::Duration::from_millis(25_300),
            busy: "load average 7.91 on 2 CPU(s)".into(),
            last: Box::new(last),
        };
        assert_eq!(
            e.to_string(),
            "`zk`'s leader is not known: no member leads: zk-1 follower, zk-2 did not answer, \
             asked for 25.3s (no election ended; load average 7.91 on 2 CPU(s))"
        );
    }

    #[test]
    fn an_answer_leads_when_it_contains_the_text() {
        assert!(super::leads("anything", None));
        assert!(super::leads(
            "etcd_server_is_leader 1\n",
            Some("etcd_server_is_leader 1")
        ));
        assert!(!super::leads(
            "etcd_server_is_leader 0\n",
            Some("etcd_server_is_leader 1")
        ));
    }
}
