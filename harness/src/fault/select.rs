//! Resolving a [`Select`] to replica names at the moment a fault is applied. Random choices
//! come from the run's seeded generator, so `--seed` replays the same schedule.

use crate::scenario::plan::Service;
use crate::scenario::Select;
use crate::services::LeaderError;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Why a selection cannot be resolved now.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// `Leader` / `Followers` of a service whose leader is not known now.
    #[error(transparent)]
    Leader(#[from] LeaderError),
}

/// The replicas a selection names now (sorted), or why it cannot be resolved. `leader` is
/// awaited only when the selection needs the leader (`services::leader`).
pub async fn resolve(
    select: &Select,
    service: &Service,
    leader: impl std::future::Future<Output = Result<String, LeaderError>>,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<String>, SelectError> {
    let all = service.replicas.clone();
    let n = all.len();
    let pick = |pool: Vec<String>, k: usize, rng: &mut ChaCha8Rng| {
        let mut chosen: Vec<String> = pool.choose_multiple(rng, k).cloned().collect();
        chosen.sort();
        chosen
    };
    Ok(match select {
        Select::One => pick(all, 1, rng),
        Select::All => all,
        Select::Count(k) => pick(all, *k, rng),
        Select::Minority => pick(all, (n - 1) / 2, rng),
        Select::Majority => pick(all, n / 2 + 1, rng),
        Select::Named(names) => names.clone(),
        Select::Leader => vec![leader.await?],
        Select::Followers(k) => {
            let l = leader.await?;
            pick(all.into_iter().filter(|r| *r != l).collect(), *k, rng)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::generator;
    use crate::scenario::builder::{Experiment, Service as S};
    use crate::scenario::plan::Plan;
    use crate::scenario::Preset;
    use std::time::Duration;

    fn plan(replicas: usize) -> Plan {
        let mut x = Experiment::new("s", Duration::from_secs(1));
        x.service(S::preset("zk", Preset::Zookeeper).replicas(replicas));
        x.plan().unwrap()
    }

    async fn chosen(select: &Select, seed: u64, fault: usize) -> Vec<String> {
        let mut rng = generator(seed, fault);
        let plan = plan(7);
        let leader = async {
            Err(LeaderError::NoneNow {
                service: "not asked".into(),
            })
        };
        resolve(select, &plan.services[0], leader, &mut rng)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_same_seed_selects_the_same_replicas() {
        for select in [
            Select::One,
            Select::Count(2),
            Select::Minority,
            Select::Majority,
        ] {
            for seed in [0, 1, 42, u64::MAX] {
                let first = chosen(&select, seed, 0).await;
                assert_eq!(
                    first,
                    chosen(&select, seed, 0).await,
                    "{select:?} seed {seed}"
                );
            }
        }
    }

    #[tokio::test]
    async fn different_seeds_select_differently() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..20 {
            seen.insert(chosen(&Select::Count(2), seed, 0).await);
        }
        assert!(seen.len() > 3, "20 seeds chose only {seen:?}");
        let mut sizes = vec![];
        for s in [
            Select::One,
            Select::Count(2),
            Select::Minority,
            Select::Majority,
        ] {
            sizes.push(chosen(&s, 5, 1).await.len());
        }
        assert_eq!(sizes, [1, 2, 3, 4]);
        // Two faults of one run draw from different streams.
        let mut same = 0;
        for seed in 0..10 {
            same += (chosen(&Select::Count(3), seed, 0).await
                == chosen(&Select::Count(3), seed, 1).await) as usize;
        }
        assert!(
            same < 5,
            "faults 0 and 1 chose alike for {same} of 10 seeds"
        );
    }
}
