//! Model groups and their deployments, and the choice of a deployment for each attempt.
//!
//! # Layout
//! - [`strategy`]: how one deployment is chosen among the available ones (pure).
//! - [`health`]: in-flight calls, latency, errors and the circuit breaker of a deployment.
//! - [`fleet`]: cooldowns shared between gateway instances through Redis.
//! - [`checks`]: active health checks at a group's configured interval.

pub mod checks;
pub mod fleet;
pub mod health;
pub mod strategy;

use std::sync::Arc;
use std::time::Duration;

use switchyard_providers::Upstream;
use tokio::time::Instant;

use self::health::{Call, Health};
use self::strategy::{Candidate, Strategy};

/// A deployment's `provider/model`: text for logs, and the `x-switchyard-deployment` header
/// value, both built once.
#[derive(Debug, Clone)]
pub struct Label {
    text: Arc<str>,
    header: Option<http::HeaderValue>,
}

impl Label {
    /// The label `text`.
    pub fn new(text: &str) -> Label {
        Label {
            text: Arc::from(text),
            header: http::HeaderValue::from_str(text).ok(),
        }
    }

    /// As a header value (`None` for a name no header can carry).
    pub fn header(&self) -> Option<&http::HeaderValue> {
        self.header.as_ref()
    }
}

impl std::ops::Deref for Label {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// One upstream endpoint serving a model group.
#[derive(Debug)]
pub struct Deployment {
    /// `provider/model`, for logs and response headers.
    pub label: Label,
    /// The provider's name in config (`openai`, `groq`, `anthropic`, ...).
    pub provider: String,
    /// Identifies the deployment across reloads and instances (group, provider, model, base).
    pub key: String,
    /// Where and how to call.
    pub upstream: Upstream,
    /// Its own HTTP client when it sets its own connect timeout; else the runtime's.
    pub client: Option<switchyard_providers::http::Client>,
    /// Share of the group's traffic under weighted random.
    pub weight: f64,
    /// Tier: lower tiers are used first.
    pub priority: u32,
    /// The model's input limit in tokens, when known.
    pub max_input_tokens: Option<u64>,
    /// Whether a caller's own provider key may replace the configured one.
    pub allow_client_key: bool,
    /// Price of a typical call, for the cost strategy.
    pub cost: f64,
    /// What its tokens cost: the shipped table's prices with the config's over them.
    pub price: Arc<switchyard_ledger::Price>,
    /// Its provider as the GenAI semantic conventions name it (`gen_ai.provider.name`).
    pub genai_provider: &'static str,
    /// Shared by every worker thread, kept across config reloads.
    pub health: Arc<Health>,
}

/// A name clients use and the deployments behind it.
#[derive(Debug)]
pub struct ModelGroup {
    /// The group's name.
    pub name: String,
    /// The name as a metric label (shared: recording a call clones no string).
    pub label: Arc<String>,
    /// Other names clients may use for it.
    pub aliases: Vec<String>,
    /// Its deployments (never empty: config validation guarantees it).
    pub deployments: Vec<Deployment>,
    /// How calls are spread.
    pub strategy: Strategy,
    /// Further attempts after a retryable failure.
    pub retries: u32,
    /// Groups tried in order when this one fails.
    pub fallbacks: Vec<String>,
    /// Groups tried when the prompt is too long for this one.
    pub context_window_fallbacks: Vec<String>,
    /// Groups tried when this one's content policy refuses.
    pub content_policy_fallbacks: Vec<String>,
    /// Interval of active health checks, when the group wants them.
    pub health_check_interval: Option<Duration>,
    /// The guard policy for calls to this group (`guards.policies`), unless the caller names one.
    pub guard_policy: Option<String>,
    /// Whether its answers are cached (`None`: as `cache.enabled` says).
    pub cache: Option<bool>,
}

/// The outcome of choosing a deployment for one attempt.
#[derive(Debug)]
pub enum Pick<'a> {
    /// Call this deployment (its index in the group); report the call's end on `call`.
    Call(usize, &'a Deployment, Call),
    /// Every deployment is cooling down; the first is back after this long.
    AllCooling(Duration),
}

impl Deployment {
    /// The client to call it with: its own, or the shared one.
    pub fn client<'a>(
        &'a self,
        shared: &'a switchyard_providers::http::Client,
    ) -> &'a switchyard_providers::http::Client {
        self.client.as_ref().unwrap_or(shared)
    }
}

impl ModelGroup {
    /// The providers behind the group, each once, in config order.
    pub fn providers(&self) -> Vec<&str> {
        let mut providers: Vec<&str> = Vec::new();
        for deployment in &self.deployments {
            if !providers.contains(&deployment.provider.as_str()) {
                providers.push(&deployment.provider);
            }
        }
        providers
    }

    /// Chooses the deployment for the next attempt at `now`. Deployments in `excluded` are
    /// never chosen; those in `tried` are avoided while another one is available; within the
    /// lowest tier that has an available deployment, the group's strategy chooses.
    pub fn pick(
        &self,
        now: Instant,
        excluded: &[usize],
        tried: &[usize],
        rng: &mut fastrand::Rng,
    ) -> Pick<'_> {
        // One deployment (the common case): no choice to make, nothing to allocate.
        if let [deployment] = self.deployments.as_slice()
            && excluded.is_empty()
        {
            if let Some(call) = deployment.health.begin(now) {
                return Pick::Call(0, deployment, call);
            }
            let back_in = deployment
                .health
                .snapshot(now)
                .cooling_until
                .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
            return Pick::AllCooling(back_in);
        }
        let snapshots: Vec<_> = self
            .deployments
            .iter()
            .map(|deployment| deployment.health.snapshot(now))
            .collect();
        let mut open: Vec<usize> = (0..self.deployments.len())
            .filter(|&i| snapshots[i].available && !excluded.contains(&i))
            .collect();
        if open.iter().any(|i| !tried.contains(i)) {
            open.retain(|i| !tried.contains(i));
        }
        while !open.is_empty() {
            let tier = open
                .iter()
                .map(|&i| self.deployments[i].priority)
                .min()
                .unwrap_or_default();
            let in_tier: Vec<usize> = open
                .iter()
                .copied()
                .filter(|&i| self.deployments[i].priority == tier)
                .collect();
            let candidates: Vec<Candidate> = in_tier
                .iter()
                .map(|&i| Candidate {
                    weight: self.deployments[i].weight * headroom_factor(snapshots[i].headroom),
                    in_flight: snapshots[i].in_flight,
                    latency_us: snapshots[i].latency_us,
                    error_rate: snapshots[i].error_rate,
                    cost: self.deployments[i].cost,
                })
                .collect();
            let Some(chosen) = strategy::choose(self.strategy, &candidates, rng) else {
                break;
            };
            let index = in_tier[chosen];
            let deployment = &self.deployments[index];
            // Another call may have taken the half-open probe since the snapshot.
            match deployment.health.begin(now) {
                Some(call) => return Pick::Call(index, deployment, call),
                None => open.retain(|&i| i != index),
            }
        }
        let back_in = snapshots
            .iter()
            .enumerate()
            .filter(|(i, _)| !excluded.contains(i))
            .filter_map(|(_, snapshot)| snapshot.cooling_until)
            .min()
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        Pick::AllCooling(back_in)
    }
}

/// Below this share of its rate limit left, a deployment's share of traffic shrinks with it.
const HEADROOM_KNEE: f64 = 0.2;

/// The weight multiplier for a deployment with `headroom` of its rate limit left: 1 above the
/// knee, then falling linearly, never below 5% so that it keeps reporting.
fn headroom_factor(headroom: f64) -> f64 {
    (headroom / HEADROOM_KNEE).clamp(0.05, 1.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::SecretString;
    use switchyard_providers::{Provider, Timeouts};

    use super::health::{CooldownPolicy, Outcome};
    use super::*;

    fn deployment(label: &str, priority: u32) -> Deployment {
        Deployment {
            label: Label::new(label),
            provider: "openai_compatible".to_owned(),
            key: label.to_owned(),
            upstream: Upstream::new(
                Provider::OpenAi,
                "http://127.0.0.1:1/v1",
                label.to_owned(),
                Some(SecretString::from("k".to_owned())),
                Timeouts {
                    total: Duration::from_secs(1),
                    first_byte: Duration::from_secs(1),
                },
                None,
            )
            .expect("upstream"),
            client: None,
            weight: 1.0,
            priority,
            max_input_tokens: None,
            allow_client_key: false,
            cost: 0.0,
            price: Arc::default(),
            genai_provider: "openai",
            health: Arc::new(Health::new(CooldownPolicy {
                failures: 1,
                window: Duration::from_secs(60),
                cooldown: Duration::from_secs(30),
            })),
        }
    }

    fn group(deployments: Vec<Deployment>) -> ModelGroup {
        ModelGroup {
            name: "g".into(),
            label: Arc::new("g".into()),
            aliases: Vec::new(),
            deployments,
            strategy: Strategy::WeightedRandom,
            retries: 2,
            fallbacks: Vec::new(),
            context_window_fallbacks: Vec::new(),
            content_policy_fallbacks: Vec::new(),
            health_check_interval: None,
            guard_policy: None,
            cache: None,
        }
    }

    fn picked(pick: Pick<'_>) -> usize {
        match pick {
            Pick::Call(index, _, _) => index,
            Pick::AllCooling(_) => panic!("expected a deployment"),
        }
    }

    #[test]
    fn a_second_tier_is_used_only_when_the_first_is_cooling() {
        let group = group(vec![deployment("a", 1), deployment("b", 2)]);
        let mut rng = fastrand::Rng::with_seed(3);
        let now = Instant::now();
        for _ in 0..20 {
            assert_eq!(picked(group.pick(now, &[], &[], &mut rng)), 0);
        }
        let Pick::Call(_, _, call) = group.pick(now, &[], &[], &mut rng) else {
            panic!("a call");
        };
        call.finish(Outcome::Failure, now);
        assert_eq!(picked(group.pick(now, &[], &[], &mut rng)), 1);
    }

    #[test]
    fn retries_avoid_deployments_already_tried() {
        let group = group(vec![deployment("a", 1), deployment("b", 1)]);
        let mut rng = fastrand::Rng::with_seed(3);
        let now = Instant::now();
        for _ in 0..20 {
            assert_eq!(picked(group.pick(now, &[], &[0], &mut rng)), 1);
        }
        // Every one tried: the same may be tried again.
        assert!(matches!(
            group.pick(now, &[], &[0, 1], &mut rng),
            Pick::Call(..)
        ));
    }

    #[test]
    fn latency_aware_share_follows_the_measured_latency() {
        let mut group = group(vec![deployment("fast", 1), deployment("slow", 1)]);
        group.strategy = Strategy::Latency;
        let mut rng = fastrand::Rng::with_seed(11);
        let mut now = Instant::now();
        let mut run = |latencies: [u64; 2], now: &mut Instant| {
            let mut served = [0u32; 2];
            for _ in 0..1_000 {
                let Pick::Call(index, _, call) = group.pick(*now, &[], &[], &mut rng) else {
                    panic!("a call");
                };
                served[index] += 1;
                *now += Duration::from_millis(5);
                call.finish(
                    Outcome::Success(Duration::from_millis(latencies[index])),
                    *now,
                );
            }
            served
        };
        let served = run([10, 50], &mut now);
        assert!(served[0] >= 800, "{served:?}");
        // The fast one slows down: the share moves.
        let served = run([200, 50], &mut now);
        assert!(served[1] >= 800, "{served:?}");
    }

    #[test]
    fn a_deployment_near_its_rate_limit_gets_less_traffic() {
        let group = group(vec![deployment("roomy", 1), deployment("tight", 1)]);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-ratelimit-remaining-requests",
            http::HeaderValue::from_static("2"),
        );
        headers.insert(
            "x-ratelimit-limit-requests",
            http::HeaderValue::from_static("100"),
        );
        group.deployments[1].health.headroom.record(&headers);
        let mut rng = fastrand::Rng::with_seed(5);
        let now = Instant::now();
        let tight = (0..2_000)
            .filter(|_| picked(group.pick(now, &[], &[], &mut rng)) == 1)
            .count();
        // 2% left: a tenth of its weight, about 9% of the calls.
        assert!((100..260).contains(&tight), "{tight} of 2000");
    }

    #[test]
    fn all_cooling_says_when_the_first_is_back() {
        let group = group(vec![deployment("a", 1)]);
        let mut rng = fastrand::Rng::with_seed(3);
        let now = Instant::now();
        let Pick::Call(_, _, call) = group.pick(now, &[], &[], &mut rng) else {
            panic!("a call");
        };
        call.finish(Outcome::RateLimited(Some(Duration::from_secs(9))), now);
        match group.pick(now + Duration::from_secs(2), &[], &[], &mut rng) {
            Pick::AllCooling(back_in) => assert_eq!(back_in, Duration::from_secs(7)),
            Pick::Call(..) => panic!("everything is cooling"),
        }
    }
}
