//! Who a `cut` fault cuts from whom: the shape (Jepsen's partition shapes) turned into
//! directed edges between replicas. An edge `(a, b)` means `a`'s messages do not reach `b`: a
//! connection from `a` to `b` gets no answer. A two-way cut of `a` and `b` is both edges.
//! Pure: the random choices (a bridge's halves, a ring's order) come from the fault's seed.

use crate::scenario::file::CutShape;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `from`'s messages do not reach `to`.
pub(crate) type Edge = (String, String);

/// The edges of a cut of `shape` among `replicas` (every replica of the service), the selected
/// `targets`, the `peers` of an isolation (empty: everyone else), with `seed` for the shuffles.
pub(crate) fn edges(
    shape: CutShape,
    replicas: &[String],
    targets: &[String],
    peers: &[String],
    one_way: bool,
    seed: u64,
) -> Vec<Edge> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let others = |except: &[String]| -> Vec<String> {
        replicas
            .iter()
            .filter(|r| !except.contains(r))
            .cloned()
            .collect()
    };
    match shape {
        CutShape::Isolate => {
            let side_b = if peers.is_empty() {
                others(targets)
            } else {
                peers
                    .iter()
                    .filter(|p| !targets.contains(p))
                    .cloned()
                    .collect()
            };
            between(targets, &side_b, one_way)
        }
        CutShape::Bridge => {
            let mut rest = others(targets);
            rest.shuffle(&mut rng);
            let (left, right) = rest.split_at(rest.len() / 2);
            between(left, right, false)
        }
        CutShape::MajoritiesRing => {
            let mut ring = replicas.to_vec();
            ring.shuffle(&mut rng);
            ring_edges(&ring)
        }
    }
}

/// Every `a` of `left` cut from every `b` of `right` (one way: only `a`'s messages to `b`).
fn between(left: &[String], right: &[String], one_way: bool) -> Vec<Edge> {
    let mut out = vec![];
    for a in left {
        for b in right {
            out.push((a.clone(), b.clone()));
            if !one_way {
                out.push((b.clone(), a.clone()));
            }
        }
    }
    out
}

/// A ring in which each replica reaches its `d` nearest neighbours on each side, `d` the
/// fewest that make itself and them a majority (`2d + 1 ≥ n/2 + 1`); farther pairs are cut.
fn ring_edges(ring: &[String]) -> Vec<Edge> {
    let n = ring.len();
    let majority = n / 2 + 1;
    let d = majority / 2;
    let mut out = vec![];
    for i in 0..n {
        for j in 0..n {
            let apart = i.abs_diff(j).min(n - i.abs_diff(j));
            if i != j && apart > d {
                out.push((ring[i].clone(), ring[j].clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("r{i}")).collect()
    }

    /// Who each replica reaches (itself included).
    fn sees(replicas: &[String], edges: &[Edge]) -> Vec<Vec<String>> {
        replicas
            .iter()
            .map(|a| {
                let reach = |b: &&String| !edges.contains(&(a.clone(), (*b).clone()));
                replicas.iter().filter(reach).cloned().collect()
            })
            .collect()
    }

    #[test]
    fn isolating_one_replica_cuts_it_both_ways_and_leaves_the_others() {
        let r = names(3);
        let e = edges(CutShape::Isolate, &r, &r[..1], &[], false, 1);
        assert_eq!(e.len(), 4);
        assert!(!e.contains(&("r2".into(), "r3".into())));
        let one = edges(CutShape::Isolate, &r, &r[..1], &r[1..2], true, 1);
        assert_eq!(one, vec![("r1".to_string(), "r2".to_string())]);
    }

    #[test]
    fn a_bridge_reaches_both_halves_which_do_not_reach_each_other() {
        let r = names(5);
        let e = edges(CutShape::Bridge, &r, &r[2..3], &[], false, 7);
        assert_eq!(e.len(), 8, "2 × 2 pairs, both ways: {e:?}");
        assert!(e.iter().all(|(a, b)| a != "r3" && b != "r3"));
    }

    #[test]
    fn in_a_majorities_ring_each_sees_a_majority_and_no_two_the_same() {
        for n in [4, 5, 6, 7] {
            let r = names(n);
            let seen = sees(&r, &edges(CutShape::MajoritiesRing, &r, &r, &[], false, 3));
            for s in &seen {
                assert!(s.len() > n / 2, "{n}: {seen:?}");
                assert!(s.len() < n, "{n}: someone sees everyone: {seen:?}");
            }
            let mut distinct = seen.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), n, "{n}: {seen:?}");
        }
    }
}
