//! Rate limits: requests per minute, tokens per minute and requests in flight, per key, team,
//! user and key-and-model, checked together before a call and settled after it.
//!
//! Per-minute limits are GCRA (the generic cell rate algorithm): each counter is one number,
//! the theoretical arrival time (TAT); a call of cost `c` against a limit of `L` per minute
//! moves it `c × 60 s / L` ahead, and is refused when that would put it more than a minute
//! ahead of now. A limit of `L` thus admits `L` at once and then one every `60 s / L`: never
//! more than `L` in any minute, with no window edges to burst across. Tokens are reserved
//! before the call (the prompt's estimate plus `max_tokens`) and settled after it with the
//! usage the provider reported, streams included: the difference moves the TAT back or on.
//!
//! Every check of a call is decided at once, all or nothing: a call refused by its team's
//! limit takes nothing from its key's. Alone, an instance keeps its counters in memory (one
//! lock, a few hundred nanoseconds); with Redis, one Lua script per call decides every check
//! on Redis's clock, so a limit holds exactly across any number of instances. When Redis
//! does not answer within `limits.redis_timeout_ms`, `limits.on_redis_error` decides: `open`
//! falls back to this instance's own counters, `closed` refuses with a 503.
//!
//! # Layout
//! - `local`: the counters of this process, and the GCRA decision itself.
//! - `remote`: the counters in Redis: the admission and settlement scripts, and each worker
//!   thread's connection.

mod local;
mod remote;

use local::{Local, now_ms};
use remote::{Shared, settle_redis};

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use switchyard_types::{ApiError, ErrorKind, Origin};
use tracing::warn;

use super::principal::Principal;
use crate::config::OutagePolicy;

/// The period of every rate: a minute, in milliseconds.
const PERIOD_MS: f64 = 60_000.0;

/// How long a call counts as in flight if its end is never heard of (a crashed instance).
const LEASE: Duration = Duration::from_secs(15 * 60);

/// What a check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Requests per minute.
    Requests,
    /// Tokens per minute.
    Tokens,
    /// Requests in flight.
    Parallel,
}

/// One limit a call must pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The counter: `key:<id>:rpm`, `team:<id>:tpm`, `key:<id>:model:<group>:rpm`…
    pub counter: Counter,
    /// What the check counts.
    pub measure: Measure,
    /// The limit.
    pub limit: u64,
    /// What this call takes from it (1 request; estimated tokens; 1 in flight).
    pub cost: u64,
    /// Who the limit belongs to, for the refusal's message.
    pub owner: Arc<str>,
}

/// What a client is told of its limits: OpenAI's `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quota {
    /// The tightest request limit: (limit, remaining, time until full again).
    pub requests: Option<(u64, u64, Duration)>,
    /// The tightest token limit.
    pub tokens: Option<(u64, u64, Duration)>,
}

/// A call let through: what it holds until it ends.
#[derive(Debug)]
pub struct Admission {
    checks: Vec<Check>,
    /// The call's mark in Redis's in-flight sets (decided by Redis, and settled there too);
    /// `None` when this instance decided.
    lease: Option<String>,
}

/// A call refused.
#[derive(Debug)]
pub struct Refusal {
    /// The error for the client (429 with `Retry-After`, or 503 when Redis is down and the
    /// policy is closed).
    pub error: ApiError,
    /// For the response's headers.
    pub quota: Quota,
}

/// The checks of a principal, made once when its key is read: those of every call, and
/// those of calls to each model group with limits of its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    every: Vec<Check>,
    models: HashMap<String, Vec<Check>>,
}

impl Plan {
    /// The checks of `principal`'s key, team, user and key-and-model limits.
    pub fn of(principal: &Principal) -> Plan {
        let key_owner = match &principal.alias {
            Some(alias) => format!("key `{alias}`"),
            None => format!("key {}", principal.key_id),
        };
        let mut plan = Plan::default();
        let key_scope = format!("key:{}", principal.key_id);
        let scopes = [
            Some((key_scope.clone(), key_owner.clone(), &principal.key_limits)),
            principal.team_id.as_ref().map(|team| {
                (
                    format!("team:{team}"),
                    format!("team {team}"),
                    &principal.team_limits,
                )
            }),
            principal.user_id.as_ref().map(|user| {
                (
                    format!("user:{user}"),
                    format!("user {user}"),
                    &principal.user_limits,
                )
            }),
        ];
        for (scope, owner, limits) in scopes.into_iter().flatten() {
            add(
                &mut plan.every,
                &scope,
                &owner,
                limits.rpm,
                limits.tpm,
                limits.max_parallel,
            );
        }
        for (group, model) in &principal.key_limits.models {
            let mut checks = Vec::new();
            add(
                &mut checks,
                &format!("{key_scope}:model:{group}"),
                &format!("{key_owner} on `{group}`"),
                model.rpm,
                model.tpm,
                None,
            );
            plan.models.insert(group.clone(), checks);
        }
        plan
    }

    /// The checks a call to `group` of about `tokens` tokens must pass.
    pub fn checks(&self, group: &str, tokens: u64) -> Vec<Check> {
        let per_model = self.models.get(group).map_or(&[][..], Vec::as_slice);
        let mut checks = Vec::with_capacity(self.every.len() + per_model.len());
        for check in self.every.iter().chain(per_model) {
            let mut check = check.clone();
            if check.measure == Measure::Tokens {
                check.cost = tokens;
            }
            checks.push(check);
        }
        checks
    }

    /// Whether no limit applies.
    pub fn is_empty(&self) -> bool {
        self.every.is_empty() && self.models.is_empty()
    }
}

/// Adds the checks of one scope's limits to `checks`.
fn add(
    checks: &mut Vec<Check>,
    scope: &str,
    owner: &str,
    rpm: Option<u64>,
    tpm: Option<u64>,
    parallel: Option<u64>,
) {
    let owner: Arc<str> = Arc::from(owner);
    for (limit, measure, suffix) in [
        (rpm, Measure::Requests, "rpm"),
        (tpm, Measure::Tokens, "tpm"),
        (parallel, Measure::Parallel, "parallel"),
    ] {
        if let Some(limit) = limit {
            checks.push(Check {
                counter: Counter::named(&format!("{scope}:{suffix}")),
                measure,
                limit,
                cost: 1,
                owner: Arc::clone(&owner),
            });
        }
    }
}

/// The limiter of the process: local counters, and Redis when configured.
#[derive(Debug)]
pub struct Limiter {
    local: Local,
    redis: Option<Shared>,
    leases: AtomicU64,
    /// Checks Redis did not answer (decided by the outage policy instead).
    pub redis_failures: AtomicU64,
}

impl Limiter {
    /// A limiter with counters in this process only.
    pub fn local() -> Limiter {
        Limiter {
            local: Local::default(),
            redis: None,
            leases: AtomicU64::new(0),
            redis_failures: AtomicU64::new(0),
        }
    }

    /// A limiter whose counters live in Redis (`connection`, filled in once it connects),
    /// under `prefix`.
    pub fn shared(
        connection: Arc<ArcSwapOption<redis::aio::ConnectionManager>>,
        client: redis::Client,
        prefix: &str,
        timeout: Duration,
        policy: OutagePolicy,
    ) -> Limiter {
        static IDS: AtomicU64 = AtomicU64::new(0);
        Limiter {
            redis: Some(Shared {
                connection,
                client,
                id: IDS.fetch_add(1, Ordering::Relaxed),
                prefix: format!("{prefix}:rl:"),
                timeout,
                policy,
            }),
            ..Limiter::local()
        }
    }

    /// Decides `checks` for one call, all or nothing; what the caller is told of its limits
    /// comes with the answer.
    pub async fn admit(&self, checks: Vec<Check>) -> Result<(Admission, Quota), Box<Refusal>> {
        if let Some(redis) = &self.redis {
            let lease = format!(
                "{:x}-{}",
                std::process::id(),
                self.leases.fetch_add(1, Ordering::Relaxed)
            );
            match redis.admit(&checks, &lease).await {
                Ok(verdict) => return verdict.into_result(checks, Some(lease)),
                Err(error) => {
                    let failures = self.redis_failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if failures.is_power_of_two() {
                        warn!(%error, failures, policy = ?redis.policy, "Rate limits: Redis did not answer");
                    }
                    if redis.policy == OutagePolicy::Closed {
                        let mut error = ApiError::new(
                            ErrorKind::Unavailable,
                            Origin::Internal,
                            "Rate limits cannot be checked right now; try again shortly",
                        )
                        .with_code("rate_limiter_unavailable");
                        error.retry_after = Some(Duration::from_secs(1));
                        return Err(Box::new(Refusal {
                            error,
                            quota: Quota::default(),
                        }));
                    }
                }
            }
        }
        self.local
            .admit(&checks, now_ms())
            .into_result(checks, None)
    }

    /// Ends a call: its tokens settled at `used` (the reservation given back or topped up),
    /// its place in flight freed. Runs where the call was admitted; Redis work goes to the
    /// background.
    pub fn settle(
        self: &Arc<Self>,
        admission: Admission,
        used: u64,
        background: &crate::background::Background,
    ) {
        let adjustments: Vec<(Check, i64)> = admission
            .checks
            .into_iter()
            .filter(|check| check.measure != Measure::Requests)
            .map(|check| {
                let delta = i64::try_from(used).unwrap_or(i64::MAX)
                    - i64::try_from(check.cost).unwrap_or(i64::MAX);
                (check, delta)
            })
            .filter(|(check, delta)| check.measure == Measure::Parallel || *delta != 0)
            .collect();
        if adjustments.is_empty() {
            return;
        }
        if let (Some(lease), Some(redis)) = (admission.lease, &self.redis) {
            let this = Arc::clone(self);
            let (prefix, connection, timeout) = (
                redis.prefix.clone(),
                Arc::clone(&redis.connection),
                redis.timeout,
            );
            background.spawn(async move {
                if let Err(error) =
                    settle_redis(&connection, &prefix, timeout, &adjustments, &lease).await
                {
                    this.redis_failures.fetch_add(1, Ordering::Relaxed);
                    warn!(%error, "Rate limits: could not settle a call in Redis");
                }
            });
            return;
        }
        self.local.settle(&adjustments);
    }
}

/// What deciding a call's checks found.
#[derive(Debug)]
struct Verdict {
    allowed: bool,
    /// The longest wait any refusing check asks for; `None` when one can never pass.
    retry_after: Option<Duration>,
    /// Per check: whether it passed, what remains after this call (or now, if refused), and
    /// the time until it is full again.
    states: Vec<(bool, u64, Duration)>,
}

impl Verdict {
    fn into_result(
        self,
        checks: Vec<Check>,
        lease: Option<String>,
    ) -> Result<(Admission, Quota), Box<Refusal>> {
        let quota = quota(&checks, &self.states);
        if self.allowed {
            return Ok((Admission { checks, lease }, quota));
        }
        // Name the first check that refused: the one a client can act on.
        let refused = checks
            .iter()
            .zip(&self.states)
            .find(|(_, (passed, _, _))| !passed)
            .map(|(check, _)| check)
            .or(checks.first());
        let message = match refused {
            Some(check) => {
                let what = match check.measure {
                    Measure::Requests => format!("{} requests per minute", check.limit),
                    Measure::Tokens => format!("{} tokens per minute", check.limit),
                    Measure::Parallel => format!("{} requests at once", check.limit),
                };
                if check.cost > check.limit {
                    format!(
                        "Request too large for {}: it needs about {} tokens, over the limit of {what}",
                        check.owner, check.cost
                    )
                } else {
                    format!("Rate limit reached for {}: {what}", check.owner)
                }
            }
            None => "Rate limit reached".to_owned(),
        };
        let mut error = ApiError::new(ErrorKind::RateLimited, Origin::Client, message)
            .with_code("rate_limit_exceeded");
        error.retry_after = self.retry_after;
        Err(Box::new(Refusal { error, quota }))
    }
}

/// The tightest request and token limits among `checks`, for the client's headers.
fn quota(checks: &[Check], states: &[(bool, u64, Duration)]) -> Quota {
    let mut quota = Quota::default();
    for (check, &(_, remaining, reset)) in checks.iter().zip(states) {
        let slot = match check.measure {
            Measure::Requests => &mut quota.requests,
            Measure::Tokens => &mut quota.tokens,
            Measure::Parallel => continue,
        };
        if slot.is_none_or(|(_, tightest, _)| remaining < tightest) {
            *slot = Some((check.limit, remaining, reset));
        }
    }
    quota
}

/// A counter's name, hashed once when the principal's checks are made: the request path
/// compares names but never hashes them again.
#[derive(Debug, Clone)]
pub struct Counter {
    hash: u64,
    name: Arc<str>,
}

impl Counter {
    /// The counter called `name`.
    pub fn named(name: &str) -> Counter {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        hasher.write(name.as_bytes());
        Counter {
            hash: hasher.finish(),
            name: Arc::from(name),
        }
    }

    /// The counter's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl PartialEq for Counter {
    fn eq(&self, other: &Counter) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.name, &other.name) || self.name == other.name)
    }
}

impl Eq for Counter {}

impl std::hash::Hash for Counter {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A hasher for keys that carry their hash already: passes it through.
#[derive(Debug, Default)]
pub struct Hashed(u64);

impl std::hash::Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is meant to be used; anything else still hashes, if poorly.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}
