//! The Prometheus metrics: Switchyard's own (`switchyard_*`) and the OpenTelemetry GenAI
//! semantic conventions' (`gen_ai_*`, their dots written as underscores), recorded when a
//! request ends and encoded as OpenMetrics text on `/metrics`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use switchyard_types::{ErrorKind, Origin};

use crate::pipeline::{Ctx, End};
use crate::runtime::Runtime;

/// A model group (the configured name; `unknown` when the request named none that exists).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: Arc<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: Arc<String>,
    kind: &'static str,
    stream: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    model: Arc<String>,
    kind: &'static str,
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: Arc<String>,
    team: Arc<String>,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpendLabels {
    model: Arc<String>,
    team: Arc<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuardLabels {
    entity: String,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    model: Arc<String>,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheWriteLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    model: String,
    deployment: String,
}

/// The GenAI conventions' attributes (`gen_ai.operation.name`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenAiLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: Arc<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenAiTokenLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: Arc<String>,
    gen_ai_token_type: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the gateway keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<SpendLabels, Counter<f64, AtomicU64>>,
    duration: Histograms<ModelLabels>,
    first_token: Histograms<ModelLabels>,
    overhead: Histogram,
    in_flight: Gauge,
    attempts: Family<ModelLabels, Counter>,
    queue_depth: Family<QueueLabels, Gauge>,
    queue_dropped: Family<QueueLabels, Gauge>,
    guard_verdicts: Family<GuardLabels, Counter>,
    deployment_up: Family<DeploymentLabels, Gauge>,
    deployment_in_flight: Family<DeploymentLabels, Gauge>,
    genai_tokens: Histograms<GenAiTokenLabels>,
    genai_duration: Histograms<GenAiLabels>,
    genai_first_token: Histograms<GenAiLabels>,
    cache_lookups: Family<CacheLabels, Counter>,
    cache_writes: Family<CacheWriteLabels, Counter>,
    cache_saved_tokens: Family<ModelLabels, Counter>,
    cache_saved_cost: Family<ModelLabels, Counter<f64, AtomicU64>>,
    cache_entries: Gauge,
    cache_rejections: Family<CacheWriteLabels, Counter>,
    cache_bytes: Gauge,
    /// The label of a model that does not exist.
    unknown: Arc<String>,
    /// The team label of a call without a team.
    no_team: Arc<String>,
    /// Series found once per model group, operation and provider (see [`Metrics::handles`]).
    handles: std::sync::Mutex<HashMap<HandlesKey, Arc<Handles>>>,
}

/// A model group's label (by address), an operation and a provider.
type HandlesKey = (usize, &'static str, &'static str);

/// The token types of `switchyard_tokens_total`, in [`Handles::tokens`]' order.
const TOKEN_TYPES: [&str; 5] = [
    "prompt",
    "completion",
    "cache_read",
    "cache_write",
    "reasoning",
];

/// The series one model group, operation and provider's answers add to (no team).
#[derive(Debug)]
struct Handles {
    /// `switchyard_requests_total` with status 200: not streamed, streamed.
    requests: [Counter; 2],
    attempts: Counter,
    duration: Histogram,
    first_token: Histogram,
    tokens: [Counter; 5],
    cost: Counter<f64, AtomicU64>,
    genai_duration: Histogram,
    genai_first_token: Histogram,
    /// `gen_ai_client_token_usage`: input, output.
    genai_tokens: [Histogram; 2],
}

/// Request durations: 5 ms to about 20 minutes.
fn seconds() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        600.0, 1200.0,
    ])
}

/// The gateway's own time on a call: 10 µs to 1 s.
fn overhead() -> Histogram {
    Histogram::new([
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
        0.025, 0.05, 0.1, 0.25, 1.0,
    ])
}

/// `gen_ai.client.token.usage`'s advised buckets: 1, 4, 16, … 67,108,864.
fn genai_tokens() -> Histogram {
    Histogram::new((0..14).map(|power| 4f64.powi(power)))
}

/// `gen_ai.server.request.duration`'s advised buckets.
fn genai_duration() -> Histogram {
    Histogram::new([
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ])
}

/// `gen_ai.server.time_to_first_token`'s advised buckets.
fn genai_first_token() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ])
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            requests: Family::default(),
            errors: Family::default(),
            rejections: Family::default(),
            tokens: Family::default(),
            cost: Family::default(),
            duration: Family::new_with_constructor(seconds as fn() -> Histogram),
            first_token: Family::new_with_constructor(seconds as fn() -> Histogram),
            overhead: overhead(),
            in_flight: Gauge::default(),
            attempts: Family::default(),
            queue_depth: Family::default(),
            queue_dropped: Family::default(),
            guard_verdicts: Family::default(),
            deployment_up: Family::default(),
            deployment_in_flight: Family::default(),
            genai_tokens: Family::new_with_constructor(genai_tokens as fn() -> Histogram),
            genai_duration: Family::new_with_constructor(genai_duration as fn() -> Histogram),
            genai_first_token: Family::new_with_constructor(genai_first_token as fn() -> Histogram),
            cache_lookups: Family::default(),
            cache_writes: Family::default(),
            cache_saved_tokens: Family::default(),
            cache_saved_cost: Family::default(),
            cache_entries: Gauge::default(),
            cache_rejections: Family::default(),
            cache_bytes: Gauge::default(),
            registry: Registry::default(),
            unknown: Arc::new("unknown".to_owned()),
            no_team: Arc::new(String::new()),
            handles: std::sync::Mutex::default(),
        };
        registry.register(
            "switchyard_requests",
            "Model calls that ended, by model group, kind, stream and the status the client got",
            metrics.requests.clone(),
        );
        registry.register(
            "switchyard_request_errors",
            "Model calls that ended in an error, by kind and by whose it was (client, upstream, internal)",
            metrics.errors.clone(),
        );
        registry.register(
            "switchyard_rejections",
            "Calls refused by the gateway before any upstream: rate_limit, budget, auth, forbidden",
            metrics.rejections.clone(),
        );
        registry.register(
            "switchyard_tokens",
            "Tokens by model group, team and type (prompt, completion, cache_read, cache_write, reasoning)",
            metrics.tokens.clone(),
        );
        registry.register(
            "switchyard_cost_usd",
            "What calls cost in US dollars, by model group and team",
            metrics.cost.clone(),
        );
        registry.register_with_unit(
            "switchyard_request_duration",
            "From a request's arrival to its end (a stream's last event), by model group",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        registry.register_with_unit(
            "switchyard_time_to_first_token",
            "From a streamed request's arrival to its first event, by model group",
            Unit::Seconds,
            metrics.first_token.clone(),
        );
        registry.register_with_unit(
            "switchyard_overhead",
            "The gateway's own time on a call: everything but waiting on providers",
            Unit::Seconds,
            metrics.overhead.clone(),
        );
        registry.register(
            "switchyard_requests_in_flight",
            "Model calls received and not yet ended",
            metrics.in_flight.clone(),
        );
        registry.register(
            "switchyard_upstream_attempts",
            "Upstream calls made (retries and fallbacks included), by model group",
            metrics.attempts.clone(),
        );
        registry.register(
            "switchyard_queue_depth",
            "Items waiting in a background queue",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "switchyard_queue_dropped",
            "Items a full background queue refused since start",
            metrics.queue_dropped.clone(),
        );
        registry.register(
            "switchyard_guard_verdicts",
            "What the guards and hooks found and did: entity (or hook) and action, counted",
            metrics.guard_verdicts.clone(),
        );
        registry.register(
            "switchyard_deployment_available",
            "1 when a deployment takes calls, 0 while it cools down after failures",
            metrics.deployment_up.clone(),
        );
        registry.register(
            "switchyard_deployment_in_flight",
            "Calls in flight to a deployment",
            metrics.deployment_in_flight.clone(),
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens used per call (GenAI semantic conventions: gen_ai.client.token.usage)",
            metrics.genai_tokens.clone(),
        );
        registry.register_with_unit(
            "gen_ai_server_request_duration",
            "Call duration (GenAI semantic conventions: gen_ai.server.request.duration)",
            Unit::Seconds,
            metrics.genai_duration.clone(),
        );
        registry.register_with_unit(
            "gen_ai_server_time_to_first_token",
            "Time to the first token of a stream (GenAI semantic conventions: gen_ai.server.time_to_first_token)",
            Unit::Seconds,
            metrics.genai_first_token.clone(),
        );
        registry.register(
            "switchyard_cache_lookups",
            "Calls to cached model groups by what the cache did: hit, miss, bypass (the request asked)",
            metrics.cache_lookups.clone(),
        );
        registry.register(
            "switchyard_cache_writes",
            "Answers offered to the cache: stored, too_large, refused (filtered or undecodable), failed",
            metrics.cache_writes.clone(),
        );
        registry.register(
            "switchyard_cache_saved_tokens",
            "Tokens the answers served from the cache had cost their first call, by model group",
            metrics.cache_saved_tokens.clone(),
        );
        registry.register(
            "switchyard_cache_saved_usd",
            "What the answers served from the cache had cost their first call, US dollars",
            metrics.cache_saved_cost.clone(),
        );
        registry.register(
            "switchyard_cache_verifier_rejections",
            "Semantic candidates the verifier refused, by what differed (numbers, names, time, negation, opposites, format, substitution)",
            metrics.cache_rejections.clone(),
        );
        registry.register(
            "switchyard_cache_entries",
            "Answers the in-process cache holds",
            metrics.cache_entries.clone(),
        );
        registry.register_with_unit(
            "switchyard_cache_size",
            "What the in-process cache holds",
            Unit::Bytes,
            metrics.cache_bytes.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// A cache lookup for a call to `model` came out as `result`.
    pub fn cache_lookup(&self, model: &Arc<String>, result: &'static str) {
        self.cache_lookups
            .get_or_create(&CacheLabels {
                model: Arc::clone(model),
                result,
            })
            .inc();
    }

    /// A hit saved what the call that made its answer used and cost.
    pub fn cache_saved(&self, model: &Arc<String>, usage: &switchyard_types::Usage, nanos: i64) {
        let labels = ModelLabels {
            model: Arc::clone(model),
        };
        self.cache_saved_tokens
            .get_or_create(&labels)
            .inc_by(usage.total_tokens());
        self.cache_saved_cost
            .get_or_create(&labels)
            .inc_by(nanos.max(0) as f64 / 1e9);
    }

    /// The verifier refused a semantic candidate for `reason`.
    pub fn cache_rejected(&self, reason: &'static str) {
        self.cache_rejections
            .get_or_create(&CacheWriteLabels { result: reason })
            .inc();
    }

    /// What became of an answer offered to the cache.
    pub fn cache_write(&self, kept: crate::cache::Kept) {
        self.cache_writes
            .get_or_create(&CacheWriteLabels {
                result: kept.name(),
            })
            .inc();
    }

    /// What the in-process cache holds.
    pub fn cache_size(&self, stats: crate::cache::Stats) {
        self.cache_entries
            .set(i64::try_from(stats.entries).unwrap_or(i64::MAX));
        if let Some(bytes) = stats.bytes {
            self.cache_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// A request began.
    pub fn started(&self) {
        self.in_flight.inc();
    }

    /// The series a call of `model`, `operation` and `provider` adds to when it succeeds
    /// without a team: found once (hashing label sets is most of what recording costs) and
    /// kept. They hold their model's label, so a key's address is never reused.
    fn handles(
        &self,
        model: &Arc<String>,
        operation: &'static str,
        provider: &'static str,
    ) -> Arc<Handles> {
        let key = (Arc::as_ptr(model) as usize, operation, provider);
        let mut cache = self
            .handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(cache.entry(key).or_insert_with(|| {
            let request = |stream| {
                self.requests
                    .get_or_create(&RequestLabels {
                        model: Arc::clone(model),
                        kind: operation,
                        stream,
                        status: 200,
                    })
                    .clone()
            };
            let by_model = ModelLabels {
                model: Arc::clone(model),
            };
            let token = |kind| {
                self.tokens
                    .get_or_create(&TokenLabels {
                        model: Arc::clone(model),
                        team: Arc::clone(&self.no_team),
                        r#type: kind,
                    })
                    .clone()
            };
            let genai = GenAiLabels {
                gen_ai_operation_name: operation,
                gen_ai_provider_name: provider,
                gen_ai_request_model: Arc::clone(model),
            };
            let genai_token = |token_type| {
                self.genai_tokens
                    .get_or_create(&GenAiTokenLabels {
                        gen_ai_operation_name: operation,
                        gen_ai_provider_name: provider,
                        gen_ai_request_model: Arc::clone(model),
                        gen_ai_token_type: token_type,
                    })
                    .clone()
            };
            Arc::new(Handles {
                requests: [request("false"), request("true")],
                attempts: self.attempts.get_or_create(&by_model).clone(),
                duration: self.duration.get_or_create(&by_model).clone(),
                first_token: self.first_token.get_or_create(&by_model).clone(),
                tokens: [
                    token("prompt"),
                    token("completion"),
                    token("cache_read"),
                    token("cache_write"),
                    token("reasoning"),
                ],
                cost: self
                    .cost
                    .get_or_create(&SpendLabels {
                        model: Arc::clone(model),
                        team: Arc::clone(&self.no_team),
                    })
                    .clone(),
                genai_duration: self.genai_duration.get_or_create(&genai).clone(),
                genai_first_token: self.genai_first_token.get_or_create(&genai).clone(),
                genai_tokens: [genai_token("input"), genai_token("output")],
            })
        }))
    }

    /// `ctx`'s request ended with `end`.
    pub fn ended(&self, ctx: &Ctx, end: &End) {
        self.in_flight.dec();
        for verdict in &ctx.verdicts {
            self.guard_verdicts
                .get_or_create(&GuardLabels {
                    entity: verdict.entity.to_string(),
                    action: verdict.action,
                })
                .inc_by(u64::from(verdict.count));
        }
        let model = ctx.group.as_ref().map_or_else(
            || Arc::clone(&self.unknown),
            |group| Arc::clone(&group.label),
        );
        let elapsed = ctx.route.received_at.elapsed();
        let status = end.client_status(ctx.streamed);
        let operation = ctx.kind.name();
        let provider = ctx.route.provider.unwrap_or("unknown");
        let team = ctx.principal.as_ref().and_then(|p| p.team_id.as_ref());
        // The common case (an answer, no team) adds to series found once.
        let handles = (status == 200 && ctx.route.attempts > 0)
            .then(|| self.handles(&model, operation, provider));
        match &handles {
            Some(handles) => {
                handles.requests[usize::from(ctx.streamed)].inc();
            }
            None => {
                self.requests
                    .get_or_create(&RequestLabels {
                        model: Arc::clone(&model),
                        kind: operation,
                        stream: if ctx.streamed { "true" } else { "false" },
                        status,
                    })
                    .inc();
            }
        }
        if let End::Failed(error) = end {
            self.errors
                .get_or_create(&ErrorLabels {
                    model: Arc::clone(&model),
                    kind: kind_name(error.kind),
                    origin: match error.origin {
                        Origin::Client => "client",
                        Origin::Upstream => "upstream",
                        Origin::Internal => "internal",
                    },
                })
                .inc();
            if error.origin == Origin::Client
                && let Some(reason) = rejection(error.kind)
            {
                self.rejections
                    .get_or_create(&RejectionLabels { reason })
                    .inc();
            }
        }
        if ctx.route.attempts == 0 {
            return;
        }
        let handles = handles.unwrap_or_else(|| self.handles(&model, operation, provider));
        handles.attempts.inc_by(u64::from(ctx.route.attempts));
        handles.duration.observe(elapsed.as_secs_f64());
        self.overhead.observe(
            elapsed
                .saturating_sub(ctx.route.upstream_wait)
                .as_secs_f64(),
        );
        let usage = &ctx.usage;
        let counts = [
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
        ];
        let cost = ctx
            .cost
            .as_ref()
            .map_or(0, |cost| cost.total.nanos().max(0));
        match team {
            None => {
                for (counter, count) in handles.tokens.iter().zip(counts) {
                    if count > 0 {
                        counter.inc_by(count);
                    }
                }
                if cost > 0 {
                    handles.cost.inc_by(cost as f64 / 1e9);
                }
            }
            Some(team) => {
                let team = Arc::new(team.clone());
                for (kind, count) in TOKEN_TYPES.into_iter().zip(counts) {
                    if count > 0 {
                        self.tokens
                            .get_or_create(&TokenLabels {
                                model: Arc::clone(&model),
                                team: Arc::clone(&team),
                                r#type: kind,
                            })
                            .inc_by(count);
                    }
                }
                if cost > 0 {
                    self.cost
                        .get_or_create(&SpendLabels {
                            model: Arc::clone(&model),
                            team,
                        })
                        .inc_by(cost as f64 / 1e9);
                }
            }
        }
        handles.genai_duration.observe(elapsed.as_secs_f64());
        if let Some(first) = ctx.route.first_event {
            handles.first_token.observe(first.as_secs_f64());
            handles.genai_first_token.observe(first.as_secs_f64());
        }
        for (histogram, count) in handles
            .genai_tokens
            .iter()
            .zip([usage.prompt_tokens, usage.completion_tokens])
        {
            if count > 0 {
                histogram.observe(count as f64);
            }
        }
    }

    /// Sets a background queue's depth and refusals (read when scraped).
    pub fn queue(&self, name: &'static str, depth: usize, dropped: u64) {
        let labels = QueueLabels { queue: name };
        self.queue_depth
            .get_or_create(&labels)
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.queue_dropped
            .get_or_create(&labels)
            .set(i64::try_from(dropped).unwrap_or(i64::MAX));
    }

    /// Sets every deployment's availability and calls in flight from `runtime` (read when
    /// scraped).
    pub fn deployments(&self, runtime: &Runtime) {
        let now = tokio::time::Instant::now();
        for group in &runtime.groups {
            for deployment in &group.deployments {
                let snapshot = deployment.health.snapshot(now);
                let labels = DeploymentLabels {
                    model: group.name.clone(),
                    deployment: deployment.label.to_string(),
                };
                self.deployment_up
                    .get_or_create(&labels)
                    .set(i64::from(snapshot.available));
                self.deployment_in_flight
                    .get_or_create(&labels)
                    .set(i64::from(snapshot.in_flight));
            }
        }
    }

    /// Every metric as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// An error kind's name in labels.
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "invalid_request",
        ErrorKind::Authentication => "authentication",
        ErrorKind::PermissionDenied => "permission_denied",
        ErrorKind::BudgetExceeded => "budget_exceeded",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::PayloadTooLarge => "payload_too_large",
        ErrorKind::RequestTimeout => "request_timeout",
        ErrorKind::Unprocessable => "unprocessable",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::Internal => "internal",
        ErrorKind::BadGateway => "bad_gateway",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Overloaded => "overloaded",
    }
}

/// The gateway's own refusals worth counting apart.
fn rejection(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::RateLimited => Some("rate_limit"),
        ErrorKind::BudgetExceeded => Some("budget"),
        ErrorKind::Authentication => Some("auth"),
        ErrorKind::PermissionDenied => Some("forbidden"),
        _ => None,
    }
}
