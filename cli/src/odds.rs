//! Restart-collision odds: how likely is the real-time postmortem's "bad luck"?
//!
//! The model (`aftershock odds`): a fleet of `nodes` nodes in clusters of `cluster_size`
//! (`nodes / cluster_size` whole clusters); every `interval` each node restarts once, at a
//! minute drawn uniformly from the interval's `M` minutes (Chef's jitter), independently of
//! everything else, and is down for `restart` seconds from the start of that minute. A cluster of
//! `k` tolerates `f = (k - 1) / 2` nodes down; it **loses quorum** when `f + 1` are down at once.
//! Restarts overlapping across an interval boundary are not counted (they need restarts longer
//! than a minute in the boundary minutes; the Monte Carlo uses the same rule).
//!
//! Two restarts at minutes `a ≤ b` overlap iff `60·(b − a) < d`, i.e. `b − a < w` with
//! `w = ⌈d / 60⌉`; `f + 1` restarts are down together iff, sorted, some `s[i+f] − s[i] < w`.
//!
//! **Closed form** for `f = 1` (`k` = 3 or 4): no two of the `k` minutes may be closer than `w`.
//! The `k`-subsets of `{0..M−1}` with all gaps `≥ w` number `C(M − (k−1)(w−1), k)`, and `k!`
//! orders assign them to the nodes, so with `A = M − (k−1)(w−1)`:
//!
//! ```text
//! P(no loss in one interval) = A·(A−1)···(A−k+1) / M^k        (0 when A < k)
//! p        = 1 − that                                           per cluster and interval
//! per day  = 1 − (1 − p)^I          I = 1440 / M intervals a day
//! fleet    = 1 − (1 − p)^(I·C)      C clusters
//! ```
//!
//! For `f = 0` (`k` ≤ 2) every restart loses quorum (`p = 1`). For `f ≥ 2` (`k` ≥ 5) there is
//! no closed form here (a scan statistic); the seeded Monte Carlo answers alone.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

const MINUTES_A_DAY: u32 = 1440;

/// A fleet and its restart schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fleet {
    pub nodes: usize,
    pub cluster_size: usize,
    /// Every node restarts once per interval of this many minutes (must divide a day).
    pub interval_minutes: u32,
    /// How long one restart keeps a node down.
    pub restart_seconds: f64,
}

/// A fleet the model cannot answer for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OddsError {
    #[error("a cluster needs at least one node (cluster size {0})")]
    EmptyCluster(usize),
    #[error("{nodes} nodes make no whole cluster of {cluster_size}")]
    NoCluster { nodes: usize, cluster_size: usize },
    #[error(
        "the interval ({0} minutes) must divide a day (1440 minutes): 10, 30, 60, 120, 1440, …"
    )]
    Interval(u32),
    #[error("a restart must take some time (got {0} s)")]
    Restart(f64),
}

/// The probabilities of losing quorum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Odds {
    /// One cluster, one interval.
    pub per_interval: f64,
    /// One cluster, one day.
    pub per_cluster_day: f64,
    /// Any cluster of the fleet, one day.
    pub per_fleet_day: f64,
}

impl Fleet {
    pub fn validate(&self) -> Result<(), OddsError> {
        if self.cluster_size == 0 {
            return Err(OddsError::EmptyCluster(self.cluster_size));
        }
        if self.clusters() == 0 {
            return Err(OddsError::NoCluster {
                nodes: self.nodes,
                cluster_size: self.cluster_size,
            });
        }
        if self.interval_minutes == 0 || !MINUTES_A_DAY.is_multiple_of(self.interval_minutes) {
            return Err(OddsError::Interval(self.interval_minutes));
        }
        if self.restart_seconds.is_nan() || self.restart_seconds <= 0.0 {
            return Err(OddsError::Restart(self.restart_seconds));
        }
        Ok(())
    }

    /// Whole clusters in the fleet.
    pub fn clusters(&self) -> usize {
        self.nodes.checked_div(self.cluster_size).unwrap_or(0)
    }

    /// Nodes a cluster can lose and keep quorum.
    pub fn tolerated(&self) -> usize {
        self.cluster_size.saturating_sub(1) / 2
    }

    pub fn intervals_per_day(&self) -> u32 {
        MINUTES_A_DAY / self.interval_minutes
    }

    /// `w`: restarts fewer than this many minutes apart overlap.
    fn overlap_minutes(&self) -> u32 {
        (self.restart_seconds / 60.0).ceil() as u32
    }

    /// Spreads a per-interval probability over a day and over the fleet.
    fn spread(&self, per_interval: f64) -> Odds {
        let per_day = self.intervals_per_day() as f64;
        let keep = 1.0 - per_interval;
        Odds {
            per_interval,
            per_cluster_day: 1.0 - keep.powf(per_day),
            per_fleet_day: 1.0 - keep.powf(per_day * self.clusters() as f64),
        }
    }
}

/// The exact odds where the model has a closed form (`k` ≤ 4); `None` for larger clusters.
pub fn closed_form(fleet: &Fleet) -> Result<Option<Odds>, OddsError> {
    fleet.validate()?;
    let p = match fleet.tolerated() {
        0 => 1.0,
        1 => {
            let m = fleet.interval_minutes as f64;
            let k = fleet.cluster_size;
            let a = m - (k as f64 - 1.0) * (fleet.overlap_minutes() as f64 - 1.0);
            let none_overlap = if a < k as f64 {
                0.0
            } else {
                (0..k).map(|i| (a - i as f64) / m).product()
            };
            1.0 - none_overlap
        }
        _ => return Ok(None),
    };
    Ok(Some(fleet.spread(p)))
}

/// Whether `f + 1` of these restart minutes are down at the same moment (sorts `starts`).
fn loses_quorum(starts: &mut [u32], tolerated: usize, overlap_minutes: u32) -> bool {
    starts.sort_unstable();
    starts
        .windows(tolerated + 1)
        .any(|w| w[tolerated] - w[0] < overlap_minutes)
}

/// Simulates `days` days of the fleet with a generator seeded from `seed`, counting lost
/// intervals, cluster-days and fleet-days directly (no independence assumed).
pub fn monte_carlo(fleet: &Fleet, days: u32, seed: u64) -> Result<Odds, OddsError> {
    fleet.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (clusters, k, f) = (fleet.clusters(), fleet.cluster_size, fleet.tolerated());
    let (intervals, w, m) = (
        fleet.intervals_per_day(),
        fleet.overlap_minutes(),
        fleet.interval_minutes,
    );
    let mut starts = vec![0u32; k];
    let (mut lost_intervals, mut lost_cluster_days, mut lost_fleet_days) = (0u64, 0u64, 0u64);
    for _ in 0..days {
        let mut fleet_lost = false;
        for _ in 0..clusters {
            let mut cluster_lost = false;
            for _ in 0..intervals {
                for s in starts.iter_mut() {
                    *s = rng.gen_range(0..m);
                }
                if loses_quorum(&mut starts, f, w) {
                    lost_intervals += 1;
                    cluster_lost = true;
                }
            }
            lost_cluster_days += cluster_lost as u64;
            fleet_lost |= cluster_lost;
        }
        lost_fleet_days += fleet_lost as u64;
    }
    let days = days.max(1) as f64;
    Ok(Odds {
        per_interval: lost_intervals as f64 / (days * clusters as f64 * intervals as f64),
        per_cluster_day: lost_cluster_days as f64 / (days * clusters as f64),
        per_fleet_day: lost_fleet_days as f64 / days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(nodes: usize, k: usize, interval_minutes: u32, restart_seconds: f64) -> Fleet {
        Fleet {
            nodes,
            cluster_size: k,
            interval_minutes,
            restart_seconds,
        }
    }

    fn relative_error(a: f64, b: f64) -> f64 {
        (a - b).abs() / b
    }

    /// Closed form against the seeded Monte Carlo on three fleets, within 2 % relative error
    /// on each of the three probabilities.
    #[test]
    fn closed_form_agrees_with_monte_carlo_on_three_fleets() {
        let cases = [
            // The postmortem's fleet: 200 nodes, hourly runs, 30 s restarts.
            (fleet(200, 3, 60, 30.0), 600),
            // A small fleet with daily runs and slow (5 min) restarts: a rare event.
            (fleet(30, 3, 1440, 300.0), 200_000),
            // Clusters of four (still one failure tolerated), every two hours, 90 s restarts.
            (fleet(400, 4, 120, 90.0), 250),
        ];
        for (i, (fleet, days)) in cases.iter().enumerate() {
            let exact = closed_form(fleet)
                .unwrap()
                .expect("k ≤ 4 has a closed form");
            let simulated = monte_carlo(fleet, *days, 7 + i as u64).unwrap();
            for (what, a, b) in [
                ("per interval", simulated.per_interval, exact.per_interval),
                (
                    "per cluster-day",
                    simulated.per_cluster_day,
                    exact.per_cluster_day,
                ),
                (
                    "per fleet-day",
                    simulated.per_fleet_day,
                    exact.per_fleet_day,
                ),
            ] {
                let e = relative_error(a, b);
                println!(
                    "{fleet:?} {what}: closed form {b:.5}, Monte Carlo {a:.5}, error {:.2} %",
                    e * 100.0
                );
                assert!(
                    e < 0.02,
                    "{fleet:?} {what}: closed form {b}, Monte Carlo {a}"
                );
            }
        }
    }

    #[test]
    fn closed_form_matches_the_birthday_problem() {
        // Restarts within one minute collide only in the same minute: 1 − 60·59·58 / 60³.
        let odds = closed_form(&fleet(3, 3, 60, 30.0)).unwrap().unwrap();
        let expected = 1.0 - (60.0 * 59.0 * 58.0) / 60f64.powi(3);
        assert!((odds.per_interval - expected).abs() < 1e-12, "{odds:?}");
        assert!((odds.per_fleet_day - odds.per_cluster_day).abs() < 1e-12);
    }

    #[test]
    fn hundreds_of_nodes_make_a_collision_likely_every_day() {
        let odds = closed_form(&fleet(200, 3, 60, 30.0)).unwrap().unwrap();
        assert!(odds.per_fleet_day > 0.99, "{odds:?}");
        let few = closed_form(&fleet(3, 3, 1440, 30.0)).unwrap().unwrap();
        assert!(few.per_fleet_day < 0.01, "{few:?}");
    }

    #[test]
    fn edge_cases() {
        // Two nodes tolerate no failure: every restart loses quorum.
        assert_eq!(
            closed_form(&fleet(2, 2, 60, 1.0))
                .unwrap()
                .unwrap()
                .per_interval,
            1.0
        );
        // Restarts longer than the interval always overlap.
        assert_eq!(
            closed_form(&fleet(3, 3, 10, 3600.0))
                .unwrap()
                .unwrap()
                .per_interval,
            1.0
        );
        // Five nodes tolerate two: no closed form, but the Monte Carlo answers, and lower.
        let five = fleet(50, 5, 60, 30.0);
        assert_eq!(closed_form(&five).unwrap(), None);
        let mc = monte_carlo(&five, 100, 1).unwrap();
        let three = closed_form(&fleet(50, 3, 60, 30.0)).unwrap().unwrap();
        assert!(
            mc.per_interval > 0.0 && mc.per_interval < three.per_interval,
            "{mc:?}"
        );
        assert_eq!(
            fleet(2, 3, 60, 1.0).validate(),
            Err(OddsError::NoCluster {
                nodes: 2,
                cluster_size: 3
            })
        );
        assert_eq!(fleet(3, 3, 7, 1.0).validate(), Err(OddsError::Interval(7)));
        assert_eq!(
            fleet(3, 3, 60, 0.0).validate(),
            Err(OddsError::Restart(0.0))
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_estimate() {
        let f = fleet(30, 3, 60, 45.0);
        assert_eq!(
            monte_carlo(&f, 20, 3).unwrap(),
            monte_carlo(&f, 20, 3).unwrap()
        );
        assert_ne!(
            monte_carlo(&f, 20, 3).unwrap(),
            monte_carlo(&f, 20, 4).unwrap()
        );
    }

    #[test]
    fn overlap_rule() {
        assert!(loses_quorum(&mut [5, 9, 5], 1, 1));
        assert!(!loses_quorum(&mut [5, 9, 6], 1, 1));
        assert!(loses_quorum(&mut [5, 9, 6], 1, 2));
        assert!(!loses_quorum(&mut [1, 2, 3, 10, 20], 2, 2));
        assert!(loses_quorum(&mut [1, 2, 3, 10, 20], 2, 3));
    }
}
