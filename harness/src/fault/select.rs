//! Resolving a [`Select`] to replica names at the moment a fault is applied. Random choices
//! come from the run's seeded generator, so `--seed` replays the same schedule.

use crate::scenario::{Scenario, Select, Service};
use crate::services::{self, Addresses};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The replicas a selection names now (sorted), or why it cannot be resolved.
pub async fn resolve(
    select: &Select,
    service: &Service,
    addresses: &Addresses,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<String>, String> {
    let all = Scenario::replica_names(service);
    let n = all.len();
    let pick = |pool: Vec<String>, k: usize, rng: &mut ChaCha8Rng| {
        let mut chosen: Vec<String> = pool.choose_multiple(rng, k).cloned().collect();
        chosen.sort();
        chosen
    };
    let leader = || async {
        services::leader(service, addresses)
            .await
            .ok_or_else(|| format!("`{}` has no leader to select", service.name))
    };
    Ok(match select {
        Select::One => pick(all, 1, rng),
        Select::All => all,
        Select::Count(k) => pick(all, *k, rng),
        Select::Minority => pick(all, (n - 1) / 2, rng),
        Select::Majority => pick(all, n / 2 + 1, rng),
        Select::Named(names) => names.clone(),
        Select::Leader => vec![leader().await?],
        Select::Followers(k) => {
            let l = leader().await?;
            pick(all.into_iter().filter(|r| *r != l).collect(), *k, rng)
        }
    })
}
