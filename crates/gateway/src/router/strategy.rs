//! How a model group picks among its available deployments. Pure: candidates and randomness
//! come in, a choice comes out.

use serde::Deserialize;

/// A group's load-balancing strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Random, in proportion to the deployments' weights.
    #[default]
    WeightedRandom,
    /// The deployment with the fewest calls in flight.
    LeastInFlight,
    /// Power of two choices over peak-EWMA latency × (calls in flight + 1), penalised by recent
    /// errors.
    Latency,
    /// The cheapest deployment (price per token from config).
    Cost,
}

/// A deployment the strategy may choose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Its weight (weighted random).
    pub weight: f64,
    /// Calls in flight.
    pub in_flight: u32,
    /// Peak-EWMA latency in microseconds, 0 when never measured.
    pub latency_us: f64,
    /// Recent error rate, 0..1.
    pub error_rate: f64,
    /// Price of a typical call (cost strategy).
    pub cost: f64,
}

/// The position in `candidates` of the one to call, `None` when there are none.
pub fn choose(
    strategy: Strategy,
    candidates: &[Candidate],
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    match candidates.len() {
        0 => return None,
        1 => return Some(0),
        _ => {}
    }
    match strategy {
        Strategy::WeightedRandom => weighted(candidates, rng, |_| true),
        Strategy::LeastInFlight => {
            let least = candidates.iter().map(|c| c.in_flight).min()?;
            weighted(candidates, rng, |c| c.in_flight == least)
        }
        Strategy::Latency => {
            // Unmeasured deployments go first so that every one gets a latency.
            if let Some(fresh) = candidates.iter().position(|c| c.latency_us == 0.0) {
                return Some(fresh);
            }
            let a = rng.usize(..candidates.len());
            let mut b = rng.usize(..candidates.len() - 1);
            if b >= a {
                b += 1;
            }
            Some(if load(&candidates[a]) <= load(&candidates[b]) {
                a
            } else {
                b
            })
        }
        Strategy::Cost => {
            let cheapest = candidates
                .iter()
                .map(|c| c.cost)
                .fold(f64::INFINITY, f64::min);
            weighted(candidates, rng, |c| c.cost <= cheapest)
        }
    }
}

/// The latency strategy's score: lower is better.
fn load(candidate: &Candidate) -> f64 {
    candidate.latency_us * f64::from(candidate.in_flight + 1) * (1.0 + 4.0 * candidate.error_rate)
}

/// A weighted random pick among the candidates `keep` accepts.
fn weighted(
    candidates: &[Candidate],
    rng: &mut fastrand::Rng,
    keep: impl Fn(&Candidate) -> bool,
) -> Option<usize> {
    let total: f64 = candidates
        .iter()
        .filter(|c| keep(c))
        .map(|c| c.weight.max(0.0))
        .sum();
    let kept = || candidates.iter().enumerate().filter(|(_, c)| keep(c));
    if total <= 0.0 {
        // All weights zero: uniform among the kept.
        let count = kept().count();
        return kept().nth(rng.usize(..count.max(1))).map(|(i, _)| i);
    }
    let mut point = rng.f64() * total;
    let mut last = None;
    for (index, candidate) in kept() {
        point -= candidate.weight.max(0.0);
        last = Some(index);
        if point < 0.0 {
            return Some(index);
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(weight: f64) -> Candidate {
        Candidate {
            weight,
            in_flight: 0,
            latency_us: 0.0,
            error_rate: 0.0,
            cost: 1.0,
        }
    }

    fn shares(strategy: Strategy, candidates: &[Candidate], draws: usize) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = vec![0usize; candidates.len()];
        for _ in 0..draws {
            counts[choose(strategy, candidates, &mut rng).expect("a choice")] += 1;
        }
        counts.iter().map(|&n| n as f64 / draws as f64).collect()
    }

    #[test]
    fn weighted_random_follows_the_weights() {
        // 10,000 draws: the standard error of a 0.5 share is 0.005, so 0.02 is four of them.
        let observed = shares(
            Strategy::WeightedRandom,
            &[candidate(1.0), candidate(3.0), candidate(6.0)],
            10_000,
        );
        for (share, expected) in observed.iter().zip([0.1, 0.3, 0.6]) {
            assert!((share - expected).abs() < 0.02, "{observed:?}");
        }
    }

    #[test]
    fn least_in_flight_picks_the_idlest() {
        let mut busy = candidate(1.0);
        busy.in_flight = 5;
        let mut idle = candidate(1.0);
        idle.in_flight = 1;
        let observed = shares(Strategy::LeastInFlight, &[busy, idle, busy], 100);
        assert_eq!(observed, vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn latency_prefers_the_faster_deployment() {
        let mut fast = candidate(1.0);
        fast.latency_us = 10_000.0;
        let mut slow = candidate(1.0);
        slow.latency_us = 50_000.0;
        let observed = shares(Strategy::Latency, &[fast, slow], 1_000);
        assert!(observed[0] >= 0.99, "{observed:?}");
        // A busy fast deployment loses to an idle slow one.
        fast.in_flight = 9;
        let observed = shares(Strategy::Latency, &[fast, slow], 1_000);
        assert!(observed[1] >= 0.99, "{observed:?}");
    }

    #[test]
    fn latency_measures_new_deployments_first() {
        let mut known = candidate(1.0);
        known.latency_us = 1.0;
        assert_eq!(
            choose(
                Strategy::Latency,
                &[known, candidate(1.0)],
                &mut fastrand::Rng::with_seed(1)
            ),
            Some(1)
        );
    }

    #[test]
    fn cost_picks_the_cheapest() {
        let mut cheap = candidate(1.0);
        cheap.cost = 0.1;
        let observed = shares(Strategy::Cost, &[candidate(1.0), cheap], 100);
        assert_eq!(observed, vec![0.0, 1.0]);
    }

    #[test]
    fn zero_weights_fall_back_to_uniform() {
        let observed = shares(
            Strategy::WeightedRandom,
            &[candidate(0.0), candidate(0.0)],
            1_000,
        );
        assert!(observed.iter().all(|share| *share > 0.4), "{observed:?}");
    }
}
