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

/// Counters in Redis, shared by every instance.
#[derive(Debug)]
struct Shared {
    /// The connection of background work (settlements), on the background runtime.
    connection: Arc<ArcSwapOption<redis::aio::ConnectionManager>>,
    /// For each worker thread's own connection (admissions).
    client: redis::Client,
    /// Names this limiter's connections among a thread's.
    id: u64,
    prefix: String,
    timeout: Duration,
    policy: OutagePolicy,
}

/// How long a worker waits before connecting again after its connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

thread_local! {
    /// This thread's connection to each limiter's Redis: a worker's admission scripts go out
    /// on a connection its own runtime drives, never crossing to another thread and back.
    static LINKS: std::cell::RefCell<HashMap<u64, Link>> = std::cell::RefCell::new(HashMap::new());
}

/// A worker thread's connection, or when it may try to connect again.
#[derive(Debug, Clone)]
enum Link {
    Up(redis::aio::MultiplexedConnection),
    Down(tokio::time::Instant),
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

/// Counters in this process.
#[derive(Debug, Default)]
struct Local {
    counters: Mutex<HashMap<Counter, State, BuildHasherDefault<Hashed>>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// Theoretical arrival time, Unix milliseconds.
    tat: f64,
    /// Calls in flight.
    in_flight: u64,
}

/// Counters held before idle ones are swept out.
const SWEEP_AT: usize = 50_000;

impl Local {
    fn admit(&self, checks: &[Check], now: f64) -> Verdict {
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

    fn settle(&self, adjustments: &[(Check, i64)]) {
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
fn decide(
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

fn millis(ms: f64) -> Duration {
    Duration::from_secs_f64((ms / 1000.0).max(0.0))
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64() * 1000.0)
}

/// The admission script: every check decided on Redis's clock, applied only if all pass.
/// KEYS: the counters. ARGV: lease, lease milliseconds, then (measure, limit, cost) per key
/// (measure 0: rate, 1: in flight). Returns allowed, retry-after ms (-1: never), then
/// (passed, remaining, reset ms) per key.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local lease = ARGV[1]
local lease_ms = tonumber(ARGV[2])
local period = 60000
local allowed = 1
local retry = 0
local out = {}
local new = {}
for i = 1, #KEYS do
  local measure = tonumber(ARGV[3 * i])
  local limit = tonumber(ARGV[3 * i + 1])
  local cost = tonumber(ARGV[3 * i + 2])
  if measure == 0 then
    local interval = period / limit
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if tat < now then tat = now end
    local new_tat = tat + cost * interval
    local ahead = new_tat - now
    if ahead <= period then
      new[i] = new_tat
      out[#out + 1] = 1
      out[#out + 1] = math.floor((period - ahead) / interval)
      out[#out + 1] = math.ceil(ahead)
    else
      allowed = 0
      if cost > limit then retry = -1 elseif retry >= 0 then retry = math.max(retry, math.ceil(ahead - period)) end
      out[#out + 1] = 0
      out[#out + 1] = math.max(0, math.floor((period - (tat - now)) / interval))
      out[#out + 1] = math.ceil(tat - now)
    end
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local count = redis.call('ZCARD', KEYS[i])
    if count + cost <= limit then
      new[i] = -1
      out[#out + 1] = 1
      out[#out + 1] = limit - count - cost
    else
      allowed = 0
      if retry >= 0 then retry = math.max(retry, 1000) end
      out[#out + 1] = 0
      out[#out + 1] = 0
    end
    out[#out + 1] = 0
  end
end
if allowed == 1 then
  for i = 1, #KEYS do
    if new[i] == -1 then
      redis.call('ZADD', KEYS[i], now + lease_ms, lease)
      redis.call('PEXPIRE', KEYS[i], lease_ms + 1000)
    else
      redis.call('SET', KEYS[i], string.format('%.3f', new[i]), 'PX', math.ceil(new[i] - now) + 1000)
    end
  end
  retry = 0
end
local result = {allowed, retry}
for i = 1, #out do result[#result + 1] = out[i] end
return result
";

/// The settlement script. KEYS: counters. ARGV: lease, then (measure, limit, delta) per key.
const SETTLE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
for i = 1, #KEYS do
  local measure = tonumber(ARGV[3 * i - 1])
  local limit = tonumber(ARGV[3 * i])
  local delta = tonumber(ARGV[3 * i + 1])
  if measure == 0 then
    local tat = tonumber(redis.call('GET', KEYS[i]))
    if tat then
      tat = tat + delta * 60000 / limit
      if tat > now then
        redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
      else
        redis.call('DEL', KEYS[i])
      end
    end
  else
    redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
return 1
";

fn script(code: &'static str) -> &'static redis::Script {
    static ADMIT_SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    static SETTLE_SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    let cell = if std::ptr::eq(code, ADMIT) {
        &ADMIT_SCRIPT
    } else {
        &SETTLE_SCRIPT
    };
    cell.get_or_init(|| redis::Script::new(code))
}

impl Shared {
    /// This worker thread's connection, made (on this thread's runtime) if it has none.
    async fn worker_connection(
        &self,
    ) -> Result<redis::aio::MultiplexedConnection, redis::RedisError> {
        let now = tokio::time::Instant::now();
        match LINKS.with_borrow(|links| links.get(&self.id).cloned()) {
            Some(Link::Up(connection)) => return Ok(connection),
            Some(Link::Down(retry_at)) if now < retry_at => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "reconnecting to Redis",
                )));
            }
            _ => {}
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let made = tokio::time::timeout(
            self.timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timed out connecting")))
        .and_then(|result| result);
        let link = match &made {
            Ok(connection) => Link::Up(connection.clone()),
            Err(_) => Link::Down(now + RECONNECT),
        };
        LINKS.with_borrow_mut(|links| links.insert(self.id, link));
        made
    }

    /// Forgets this worker thread's connection after it failed.
    fn drop_worker_connection(&self) {
        let retry_at = tokio::time::Instant::now() + RECONNECT;
        LINKS.with_borrow_mut(|links| links.insert(self.id, Link::Down(retry_at)));
    }

    async fn admit(&self, checks: &[Check], lease: &str) -> Result<Verdict, redis::RedisError> {
        let connection = self.worker_connection().await?;
        let result = self.run_admit(connection, checks, lease).await;
        // Anything but an error the server answered (a script error) may mean a broken
        // connection: make a new one (after a pause).
        if let Err(error) = &result
            && !matches!(error.kind(), redis::ErrorKind::Server(_))
        {
            self.drop_worker_connection();
        }
        result
    }

    async fn run_admit(
        &self,
        mut connection: redis::aio::MultiplexedConnection,
        checks: &[Check],
        lease: &str,
    ) -> Result<Verdict, redis::RedisError> {
        let mut invocation = script(ADMIT).prepare_invoke();
        invocation.arg(lease).arg(LEASE.as_millis() as u64);
        for check in checks {
            invocation
                .key(format!("{}{}", self.prefix, check.counter.name()))
                .arg(u8::from(check.measure == Measure::Parallel))
                .arg(check.limit.max(1))
                .arg(check.cost);
        }
        let reply: Vec<i64> =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timed out")))??;
        let (allowed, retry) = (
            reply.first() == Some(&1),
            reply.get(1).copied().unwrap_or(0),
        );
        let states = reply[2.min(reply.len())..]
            .chunks_exact(3)
            .map(|triple| {
                (
                    triple[0] == 1,
                    u64::try_from(triple[1]).unwrap_or(0),
                    Duration::from_millis(u64::try_from(triple[2]).unwrap_or(0)),
                )
            })
            .collect();
        Ok(Verdict {
            allowed,
            retry_after: u64::try_from(retry).ok().map(Duration::from_millis),
            states,
        })
    }
}

async fn settle_redis(
    connection: &ArcSwapOption<redis::aio::ConnectionManager>,
    prefix: &str,
    timeout: Duration,
    adjustments: &[(Check, i64)],
    lease: &str,
) -> Result<(), redis::RedisError> {
    let Some(connection) = connection.load_full() else {
        return Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "not connected to Redis",
        )));
    };
    let mut connection = (*connection).clone();
    let mut invocation = script(SETTLE).prepare_invoke();
    invocation.arg(lease);
    for (check, delta) in adjustments {
        invocation
            .key(format!("{prefix}{}", check.counter.name()))
            .arg(u8::from(check.measure == Measure::Parallel))
            .arg(check.limit.max(1))
            .arg(*delta);
    }
    tokio::time::timeout(timeout * 4, invocation.invoke_async::<i64>(&mut connection))
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timed out")))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(measure: Measure, limit: u64, cost: u64) -> Check {
        Check {
            counter: Counter::named(&format!("key:k:{measure:?}")),
            measure,
            limit,
            cost,
            owner: Arc::from("key `k`"),
        }
    }

    #[test]
    fn a_rate_admits_its_limit_at_once_then_one_per_interval() {
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
    fn checks_pass_all_or_nothing_and_tokens_settle() {
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
    fn calls_in_flight_are_counted_until_they_end() {
        let local = Local::default();
        let parallel = check(Measure::Parallel, 2, 1);
        assert!(local.admit(std::slice::from_ref(&parallel), 0.0).allowed);
        assert!(local.admit(std::slice::from_ref(&parallel), 0.0).allowed);
        assert!(!local.admit(std::slice::from_ref(&parallel), 0.0).allowed);
        local.settle(&[(parallel.clone(), 0)]);
        assert!(local.admit(&[parallel], 0.0).allowed);
    }
}
