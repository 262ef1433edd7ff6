//! The counters of this process: one map under one lock, decided by GCRA.

use super::*;

/// Counters in this process.
#[derive(Debug, Default)]
pub(super) struct Local {
    counters: Mutex<HashMap<Counter, State, BuildHasherDefault<Hashed>>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct State {
    /// Theoretical arrival time, Unix milliseconds.
    tat: f64,
    /// Calls in flight.
    in_flight: u64,
}

/// Counters held before idle ones are swept out.
pub(super) const SWEEP_AT: usize = 50_000;

impl Local {
    pub(super) fn admit(&self, checks: &[Check], now: f64) -> Verdict {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if counters.len() >= SWEEP_AT {
            counters.retain(|_, counter| counter.tat > now || counter.in_flight > 0);
        }
        let mut verdict = Verdict {
            allowed: true,
            retry_after: Some(Duration::ZERO),
            states: Vec::with_capacity(checks.len()),
        };
        let mut next = Vec::with_capacity(checks.len());
        for check in checks {
            let counter = counters.get(&check.counter).copied().unwrap_or_default();
            let (allowed, remaining, reset, wait, updated) = decide(check, counter, now);
            verdict.states.push((allowed, remaining, reset));
            if !allowed {
                verdict.allowed = false;
                verdict.retry_after = match (verdict.retry_after, wait) {
                    (Some(longest), Some(wait)) => Some(longest.max(wait)),
                    _ => None,
                };
            }
            next.push(updated);
        }
        if verdict.allowed {
            for (check, updated) in checks.iter().zip(next) {
                match counters.get_mut(&check.counter) {
                    Some(counter) => *counter = updated,
                    None => {
                        counters.insert(check.counter.clone(), updated);
                    }
                }
            }
        }
        verdict
    }

    pub(super) fn settle(&self, adjustments: &[(Check, i64)]) {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        for (check, delta) in adjustments {
            let Some(counter) = counters.get_mut(&check.counter) else {
                continue;
            };
            match check.measure {
                Measure::Parallel => counter.in_flight = counter.in_flight.saturating_sub(1),
                Measure::Tokens => {
                    counter.tat += *delta as f64 * PERIOD_MS / check.limit as f64;
                }
                Measure::Requests => {}
            }
        }
    }
}

/// One check against its counter at `now`: (allowed, remaining, time until full, wait before
/// it could pass (`None`: never), the counter if allowed).
pub(super) fn decide(
    check: &Check,
    counter: State,
    now: f64,
) -> (bool, u64, Duration, Option<Duration>, State) {
    let limit = check.limit.max(1);
    if check.measure == Measure::Parallel {
        let allowed = counter.in_flight + check.cost <= limit;
        let remaining = limit.saturating_sub(counter.in_flight + u64::from(allowed));
        let updated = State {
            in_flight: counter.in_flight + u64::from(allowed),
            ..counter
        };
        return (
            allowed,
            remaining,
            Duration::ZERO,
            Some(Duration::from_secs(1)),
            updated,
        );
    }
    let interval = PERIOD_MS / limit as f64;
    let tat = counter.tat.max(now);
    let new_tat = tat + check.cost as f64 * interval;
    let ahead = new_tat - now;
    if ahead <= PERIOD_MS {
        let remaining = ((PERIOD_MS - ahead) / interval).floor() as u64;
        let updated = State {
            tat: new_tat,
            ..counter
        };
        return (
            true,
            remaining,
            millis(ahead),
            Some(Duration::ZERO),
            updated,
        );
    }
    let remaining = ((PERIOD_MS - (tat - now)) / interval).floor().max(0.0) as u64;
    let wait = (check.cost <= limit).then(|| millis(ahead - PERIOD_MS));
    (false, remaining, millis(tat - now), wait, counter)
}

pub(super) fn millis(ms: f64) -> Duration {
    Duration::from_secs_f64((ms / 1000.0).max(0.0))
}

pub(super) fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn check(measure: Measure, limit: u64, cost: u64) -> Check {
        Check {
            counter: Counter::named(&format!("key:k:{measure:?}")),
            measure,
            limit,
            cost,
            owner: Arc::from("key `k`"),
        }
    }

    #[test]
    pub(super) fn a_rate_admits_its_limit_at_once_then_one_per_interval() {
        let local = Local::default();
        let now = 1_000_000.0;
        let rpm = [check(Measure::Requests, 100, 1)];
        for index in 0..100 {
            let verdict = local.admit(&rpm, now);
            assert!(verdict.allowed, "call {index}");
            assert_eq!(verdict.states[0].1, 99 - index);
        }
        let refused = local.admit(&rpm, now);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Some(Duration::from_millis(600)));
        assert!(!local.admit(&rpm, now + 599.0).allowed);
        assert!(local.admit(&rpm, now + 600.0).allowed);
        // A minute later the whole limit is back.
        let later = now + 600.0 + PERIOD_MS;
        for _ in 0..100 {
            assert!(local.admit(&rpm, later).allowed);
        }
        assert!(!local.admit(&rpm, later).allowed);
    }

    #[test]
    pub(super) fn checks_pass_all_or_nothing_and_tokens_settle() {
        let local = Local::default();
        let now = 5_000_000.0;
        let key = check(Measure::Requests, 10, 1);
        let mut team = check(Measure::Requests, 1, 1);
        team.counter = Counter::named("team:t:rpm");
        assert!(local.admit(&[key.clone(), team.clone()], now).allowed);
        // The team refuses: the key's counter must not move.
        for _ in 0..5 {
            assert!(!local.admit(&[key.clone(), team.clone()], now).allowed);
        }
        let alone = local.admit(std::slice::from_ref(&key), now);
        assert_eq!(alone.states[0].1, 8);

        // 1000 tokens a minute: reserve 800, use 100, and 900 are left.
        let tokens = check(Measure::Tokens, 1000, 800);
        assert!(local.admit(std::slice::from_ref(&tokens), now).allowed);
        assert!(
            !local
                .admit(&[check(Measure::Tokens, 1000, 300)], now)
                .allowed
        );
        local.settle(&[(tokens.clone(), 100 - 800)]);
        let after = local.admit(&[check(Measure::Tokens, 1000, 900)], now);
        assert!(after.allowed);
        // More than the limit can never pass: no Retry-After.
        let huge = local.admit(&[check(Measure::Tokens, 1000, 5000)], now + 1e9);
        assert!(!huge.allowed);
        assert_eq!(huge.retry_after, None);
    }

    #[test]
    pub(super) fn calls_in_flight_are_counted_until_they_end() {
        let local = Local::default();
        let parallel = check(Measure::Parallel, 2, 1);
        assert!(local.admit(std::slice::from_ref(&parallel), 0.0).allowed);
        assert!(local.admit(std::slice::from_ref(&parallel), 0.0).allowed);
        assert!(!local.admit(std::slice::from_ref(&parallel), 0.0).allowed);
        local.settle(&[(parallel.clone(), 0)]);
        assert!(local.admit(&[parallel], 0.0).allowed);
    }
}
