//! A deployment's health: calls in flight, a peak-EWMA of latency, a decaying error rate, and a
//! circuit breaker (closed → open after failures or a rate limit → half-open probe → closed).
//!
//! Shared by every worker thread. Time is passed in (`now`), never read here, so tests drive
//! it directly.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use switchyard_providers::Headroom;
use tokio::time::Instant;

/// When a deployment is taken out of rotation and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CooldownPolicy {
    /// Failures within `window` that open the circuit.
    pub failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long an open circuit stays open (after a rate limit, its `Retry-After` when shorter).
    pub cooldown: Duration,
}

impl Default for CooldownPolicy {
    fn default() -> CooldownPolicy {
        CooldownPolicy {
            failures: 3,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
        }
    }
}

/// How a call ended, as far as the deployment's health is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Answered; the latency is to the first byte for streams, the whole call otherwise.
    Success(Duration),
    /// Rate limited, with the upstream's requested wait if it gave one.
    RateLimited(Option<Duration>),
    /// A 5xx, a timeout, a broken connection.
    Failure,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Circuit {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct State {
    circuit: Circuit,
    failures: VecDeque<Instant>,
    /// Peak-EWMA latency in microseconds (0 until the first sample).
    latency_us: f64,
    last_sample: Option<Instant>,
    /// Decaying share of recent calls that failed, 0..1.
    error_rate: f64,
}

/// The health of one deployment.
#[derive(Debug)]
pub struct Health {
    /// The rate-limit headroom the deployment's answers report (passive health).
    pub headroom: Arc<Headroom>,
    policy: CooldownPolicy,
    in_flight: AtomicU32,
    state: Mutex<State>,
}

/// What the router sees of a deployment at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Whether a call may be sent now (closed, or half-open with no probe out).
    pub available: bool,
    /// When an open circuit closes to a probe.
    pub cooling_until: Option<Instant>,
    /// Calls in flight.
    pub in_flight: u32,
    /// Peak-EWMA latency, microseconds (0 if never measured).
    pub latency_us: f64,
    /// Recent error rate, 0..1.
    pub error_rate: f64,
    /// Share of its rate limit the upstream last reported left, 0..1.
    pub headroom: f64,
}

/// Decay time constant of the latency and error averages.
const DECAY: Duration = Duration::from_secs(10);

impl Health {
    /// A healthy deployment under `policy`.
    pub fn new(policy: CooldownPolicy) -> Health {
        Health {
            headroom: Arc::default(),
            policy,
            in_flight: AtomicU32::new(0),
            state: Mutex::new(State {
                circuit: Circuit::Closed,
                failures: VecDeque::new(),
                latency_us: 0.0,
                last_sample: None,
                error_rate: 0.0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The deployment as the router sees it at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let state = self.lock();
        let (available, cooling_until) = match state.circuit {
            Circuit::Closed => (true, None),
            Circuit::Open { until } if now >= until => (true, None),
            Circuit::Open { until } => (false, Some(until)),
            Circuit::HalfOpen { probing } => (!probing, None),
        };
        Snapshot {
            available,
            cooling_until,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency_us: state.latency_us,
            error_rate: state.error_rate,
            headroom: self.headroom.fraction(),
        }
    }

    /// Starts a call if the circuit lets one through now; a call after a cooldown is the probe.
    pub fn begin(self: &Arc<Health>, now: Instant) -> Option<Call> {
        let mut state = self.lock();
        let probe = match state.circuit {
            Circuit::Closed => false,
            Circuit::Open { until } if now < until => return None,
            Circuit::Open { .. } | Circuit::HalfOpen { probing: false } => {
                state.circuit = Circuit::HalfOpen { probing: true };
                true
            }
            Circuit::HalfOpen { probing: true } => return None,
        };
        drop(state);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Call {
            health: Arc::clone(self),
            probe,
            finished: false,
        })
    }

    /// Opens the circuit until `until` (a cooldown another instance decided), unless it is
    /// already open for longer.
    pub fn open_until(&self, until: Instant) {
        let mut state = self.lock();
        match state.circuit {
            Circuit::Open { until: current } if current >= until => {}
            _ => state.circuit = Circuit::Open { until },
        }
    }

    /// Records an active health check: a success closes the circuit at once (the deployment
    /// is back before its cooldown ends); a failure counts like a failed call. Returns the
    /// end of the cooldown if this opened one.
    pub fn record_check(&self, healthy: bool, now: Instant) -> Option<Instant> {
        if healthy {
            let mut state = self.lock();
            state.circuit = Circuit::Closed;
            state.failures.clear();
            None
        } else {
            let open = matches!(self.lock().circuit, Circuit::Open { until } if until > now);
            if open {
                return None;
            }
            self.finish(Outcome::Failure, false, now)
        }
    }

    fn finish(&self, outcome: Outcome, probe: bool, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        let decay = state.last_sample.map_or(0.0, |last| {
            decay_weight(now.saturating_duration_since(last))
        });
        state.last_sample = Some(now);
        match outcome {
            Outcome::Success(latency) => {
                let sample = latency.as_secs_f64() * 1e6;
                // Peak EWMA: a slower sample is taken at once, a faster one is blended in.
                state.latency_us = if sample > state.latency_us || state.latency_us == 0.0 {
                    sample
                } else {
                    state.latency_us * decay + sample * (1.0 - decay)
                };
                state.error_rate *= decay;
                if probe || matches!(state.circuit, Circuit::HalfOpen { .. }) {
                    state.circuit = Circuit::Closed;
                    state.failures.clear();
                }
            }
            Outcome::RateLimited(_) | Outcome::Failure => {
                state.error_rate = state.error_rate * decay + (1.0 - decay);
                let window_start = now.checked_sub(self.policy.window);
                while let (Some(first), Some(start)) = (state.failures.front(), window_start) {
                    if *first >= start {
                        break;
                    }
                    state.failures.pop_front();
                }
                state.failures.push_back(now);
                while state.failures.len() > self.policy.failures.max(1) as usize {
                    state.failures.pop_front();
                }
                let open_for = match outcome {
                    Outcome::RateLimited(wait) => Some(
                        wait.map_or(self.policy.cooldown, |wait| wait.min(self.policy.cooldown)),
                    ),
                    _ if probe => Some(self.policy.cooldown),
                    _ if state.failures.len() >= self.policy.failures.max(1) as usize => {
                        Some(self.policy.cooldown)
                    }
                    _ => None,
                };
                if let Some(open_for) = open_for {
                    let until = now + open_for;
                    state.circuit = Circuit::Open { until };
                    state.failures.clear();
                    return Some(until);
                } else if probe {
                    state.circuit = Circuit::HalfOpen { probing: false };
                }
            }
        }
        None
    }
}

/// The weight of the old average after `elapsed`: `e^(-elapsed/DECAY)`.
fn decay_weight(elapsed: Duration) -> f64 {
    (-elapsed.as_secs_f64() / DECAY.as_secs_f64()).exp()
}

/// One call in flight on a deployment. Report how it ended with [`Call::finish`]; dropped
/// unfinished (the client left), it counts as neither success nor failure.
#[derive(Debug)]
pub struct Call {
    health: Arc<Health>,
    probe: bool,
    finished: bool,
}

impl Call {
    /// Records how the call ended; returns the end of the cooldown if this opened one.
    pub fn finish(mut self, outcome: Outcome, now: Instant) -> Option<Instant> {
        self.finished = true;
        self.health.finish(outcome, self.probe, now)
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.health.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.probe && !self.finished {
            // The probe never reported: let another one through.
            let mut state = self.health.lock();
            if state.circuit == (Circuit::HalfOpen { probing: true }) {
                state.circuit = Circuit::HalfOpen { probing: false };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(failures: u32) -> Arc<Health> {
        Arc::new(Health::new(CooldownPolicy {
            failures,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
        }))
    }

    fn fail(health: &Arc<Health>, now: Instant) {
        health
            .begin(now)
            .expect("admitted")
            .finish(Outcome::Failure, now);
    }

    #[test]
    fn opens_after_failures_in_the_window_then_probes_then_closes() {
        let health = health(3);
        let t0 = Instant::now();
        fail(&health, t0);
        fail(&health, t0 + Duration::from_secs(1));
        assert!(health.snapshot(t0).available, "two failures are not enough");
        fail(&health, t0 + Duration::from_secs(2));
        let later = t0 + Duration::from_secs(10);
        let snapshot = health.snapshot(later);
        assert!(!snapshot.available);
        assert_eq!(snapshot.cooling_until, Some(t0 + Duration::from_secs(32)));
        assert!(health.begin(later).is_none());
        // After the cooldown exactly one probe goes through.
        let after = t0 + Duration::from_secs(33);
        let probe = health.begin(after).expect("probe");
        assert!(health.begin(after).is_none(), "one probe at a time");
        probe.finish(Outcome::Success(Duration::from_millis(5)), after);
        assert!(health.snapshot(after).available);
        assert!(health.begin(after).is_some());
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let health = health(3);
        let t0 = Instant::now();
        fail(&health, t0);
        fail(&health, t0 + Duration::from_secs(1));
        fail(&health, t0 + Duration::from_secs(100));
        assert!(health.snapshot(t0 + Duration::from_secs(100)).available);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let health = health(1);
        let t0 = Instant::now();
        fail(&health, t0);
        let after = t0 + Duration::from_secs(31);
        health
            .begin(after)
            .expect("probe")
            .finish(Outcome::Failure, after);
        assert!(!health.snapshot(after + Duration::from_secs(1)).available);
    }

    #[test]
    fn a_rate_limit_cools_down_for_its_retry_after() {
        let health = health(5);
        let t0 = Instant::now();
        health
            .begin(t0)
            .expect("admitted")
            .finish(Outcome::RateLimited(Some(Duration::from_secs(7))), t0);
        assert_eq!(
            health.snapshot(t0).cooling_until,
            Some(t0 + Duration::from_secs(7))
        );
        assert!(health.snapshot(t0 + Duration::from_secs(7)).available);
    }

    #[test]
    fn an_abandoned_probe_lets_another_through() {
        let health = health(1);
        let t0 = Instant::now();
        fail(&health, t0);
        let after = t0 + Duration::from_secs(31);
        drop(health.begin(after).expect("probe"));
        assert!(health.begin(after).is_some());
    }

    #[test]
    fn a_passing_check_brings_a_deployment_back_early() {
        let health = health(1);
        let t0 = Instant::now();
        fail(&health, t0);
        assert!(!health.snapshot(t0).available);
        assert_eq!(health.record_check(true, t0 + Duration::from_secs(1)), None);
        assert!(health.snapshot(t0 + Duration::from_secs(1)).available);
        let later = t0 + Duration::from_secs(2);
        assert_eq!(
            health.record_check(false, later),
            Some(later + Duration::from_secs(30)),
            "a failing check counts like a failed call"
        );
    }

    #[test]
    fn latency_is_a_peak_ewma_and_calls_are_counted() {
        let health = health(3);
        let t0 = Instant::now();
        let call = health.begin(t0).expect("admitted");
        assert_eq!(health.snapshot(t0).in_flight, 1);
        call.finish(Outcome::Success(Duration::from_millis(10)), t0);
        assert_eq!(health.snapshot(t0).in_flight, 0);
        let slow = t0 + Duration::from_secs(1);
        health
            .begin(slow)
            .expect("admitted")
            .finish(Outcome::Success(Duration::from_millis(50)), slow);
        assert_eq!(
            health.snapshot(slow).latency_us,
            50_000.0,
            "peaks are taken at once"
        );
        let fast = slow + Duration::from_secs(10);
        health
            .begin(fast)
            .expect("admitted")
            .finish(Outcome::Success(Duration::from_millis(10)), fast);
        let latency = health.snapshot(fast).latency_us;
        assert!(latency > 10_000.0 && latency < 50_000.0, "{latency}");
    }
}
