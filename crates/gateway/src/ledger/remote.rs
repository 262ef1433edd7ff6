//! Budgets in Redis, exact across instances: one script reserves on every budget of a call or
//! on none, on Redis's clock; another settles. Each budget and period is a hash (`spent`,
//! `reserved`, one `l:<lease>` field per call in flight) and a sorted set of those calls'
//! leases by expiry, so that the hold of an instance that died mid-call is released when its
//! lease runs out rather than held until the period ends.
//!
//! A budget Redis has no state for (its first call, or after Redis lost it) starts from the
//! store's daily aggregates for its period, read by the instance that needs it.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;
use switchyard_ledger::{Budget, Day, Period, Usd};
use switchyard_store::Store;

use super::budget::{Crossed, Exceeded, Reservation, Scope};

/// How long a call's hold lasts at most: past it, the hold of a call whose instance never
/// settled is released.
const LEASE: Duration = Duration::from_secs(30 * 60);

/// How long the state of a budget that never resets is kept after its last use.
const TOTAL_TTL: Duration = Duration::from_secs(400 * 86_400);

/// KEYS: (hash, leases) per budget. ARGV: lease, lease ms, amount, ttl ms, then each budget's
/// limit. Returns {1} (held), {0, index, spent and held} (refused), or {-1, indexes…} (no
/// state: read the store, INIT, and try again).
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS / 2
local missing = {-1}
for i = 1, n do
  if redis.call('HEXISTS', KEYS[2 * i - 1], 'spent') == 0 then missing[#missing + 1] = i end
end
if #missing > 1 then return missing end
local amount = tonumber(ARGV[3])
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, old in ipairs(expired) do
    local held = tonumber(redis.call('HGET', h, 'l:' .. old) or '0')
    redis.call('HINCRBY', h, 'reserved', -held)
    redis.call('HDEL', h, 'l:' .. old)
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
end
for i = 1, n do
  local h = KEYS[2 * i - 1]
  local held = tonumber(redis.call('HGET', h, 'spent')) + tonumber(redis.call('HGET', h, 'reserved') or '0')
  if held + amount > tonumber(ARGV[4 + i]) then return {0, i, held} end
end
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HINCRBY', h, 'reserved', amount)
  redis.call('HSET', h, 'l:' .. ARGV[1], amount)
  redis.call('ZADD', z, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', h, ARGV[4])
  redis.call('PEXPIRE', z, ARGV[4])
end
return {1}
";

/// KEYS: a budget's hash. ARGV: its spend from the store, ttl ms.
const INIT: &str = r"
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  redis.call('HSETNX', KEYS[1], 'reserved', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1}
";

/// KEYS: (hash, leases) of each budget's reservation period, then each budget's hash for
/// today's period. ARGV: lease, cost, then (ttl ms, soft limit or -1) per budget. Returns
/// (index, spent) for each budget this took past its soft limit, first in its period.
const SETTLE: &str = r"
local n = #KEYS / 3
local crossed = {}
for i = 1, n do
  local h, z, today = KEYS[2 * i - 1], KEYS[2 * i], KEYS[2 * n + i]
  local held = redis.call('HGET', h, 'l:' .. ARGV[1])
  if held then
    redis.call('HINCRBY', h, 'reserved', -tonumber(held))
    redis.call('HDEL', h, 'l:' .. ARGV[1])
    redis.call('ZREM', z, ARGV[1])
  end
  local spent = redis.call('HINCRBY', today, 'spent', ARGV[2])
  redis.call('PEXPIRE', today, ARGV[1 + 2 * i])
  local soft = tonumber(ARGV[2 + 2 * i])
  if soft >= 0 and spent >= soft and redis.call('HSETNX', today, 'warned', 1) == 1 then
    crossed[#crossed + 1] = i
    crossed[#crossed + 1] = spent
  end
end
return crossed
";

/// Budgets kept in Redis.
#[derive(Debug)]
pub struct RemoteBudgets {
    connection: Arc<ArcSwapOption<ConnectionManager>>,
    prefix: String,
    timeout: Duration,
}

impl RemoteBudgets {
    /// Budgets on the Redis behind `connection`, under `prefix`, each call within `timeout`.
    pub fn new(
        connection: Arc<ArcSwapOption<ConnectionManager>>,
        prefix: &str,
        timeout: Duration,
    ) -> RemoteBudgets {
        RemoteBudgets {
            connection,
            prefix: prefix.to_owned(),
            timeout,
        }
    }

    fn hash(&self, scope: &Scope, period: Day) -> String {
        format!(
            "{}:budget:{}:{}:{}",
            self.prefix,
            scope.dimension.as_str(),
            scope.id,
            period
        )
    }

    fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        self.connection
            .load_full()
            .map(|connection| (*connection).clone())
            .ok_or_else(|| {
                redis::RedisError::from((redis::ErrorKind::Io, "not connected to Redis"))
            })
    }

    async fn invoke(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<Vec<i64>, redis::RedisError> {
        let mut connection = self.connection()?;
        tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection))
            .await
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timed out")))?
    }

    /// Reserves `amount` on every budget of `applying` at day `today`, or says which it would
    /// exceed; budgets Redis has no state for start from `store`'s spend.
    pub async fn reserve(
        &self,
        applying: &[(Scope, Budget)],
        amount: Usd,
        today: Day,
        store: &Store,
    ) -> Result<Result<Reservation, Exceeded>, RemoteError> {
        let lease = switchyard_store::new_id("hold");
        let amount = amount.nanos().max(0);
        let periods: Vec<Day> = applying
            .iter()
            .map(|(_, budget)| budget.period.start(today))
            .collect();
        for _ in 0..3 {
            let reserve = script(Lua::Reserve);
            let mut invocation = reserve.prepare_invoke();
            invocation
                .arg(&lease)
                .arg(LEASE.as_millis() as u64)
                .arg(amount)
                .arg(ttl_ms(applying, today));
            for ((scope, budget), period) in applying.iter().zip(&periods) {
                let hash = self.hash(scope, *period);
                invocation
                    .key(&hash)
                    .key(format!("{hash}:leases"))
                    .arg(budget.max_usd.nanos());
            }
            let reply = self.invoke(invocation).await?;
            match reply.first() {
                Some(1) => {
                    return Ok(Ok(Reservation {
                        scopes: applying
                            .iter()
                            .map(|(scope, _)| scope.clone())
                            .zip(periods)
                            .collect(),
                        amount,
                        lease: Some(lease),
                    }));
                }
                Some(0) => {
                    let index = reply
                        .get(1)
                        .and_then(|i| usize::try_from(*i).ok())
                        .unwrap_or(1);
                    let (scope, budget) = &applying[index.clamp(1, applying.len()) - 1];
                    return Ok(Err(Exceeded {
                        scope: scope.clone(),
                        budget: budget.clone(),
                        spent: Usd::from_nanos(reply.get(2).copied().unwrap_or(0)),
                        resets: budget.period.next_start(budget.period.start(today)),
                    }));
                }
                _ => {
                    for index in reply.iter().skip(1) {
                        let Some((scope, budget)) = usize::try_from(*index)
                            .ok()
                            .and_then(|i| applying.get(i.wrapping_sub(1)))
                        else {
                            continue;
                        };
                        let period = budget.period.start(today);
                        let spent = store
                            .spent_since(scope.dimension, &scope.id, period)
                            .await
                            .map_err(RemoteError::Store)?;
                        let init = script(Lua::Init);
                        let mut invocation = init.prepare_invoke();
                        invocation
                            .key(self.hash(scope, period))
                            .arg(spent)
                            .arg(ttl_ms(
                                std::slice::from_ref(&(scope.clone(), budget.clone())),
                                today,
                            ));
                        self.invoke(invocation).await?;
                    }
                }
            }
        }
        Err(RemoteError::Redis(redis::RedisError::from((
            redis::ErrorKind::Io,
            "budget state kept disappearing",
        ))))
    }

    /// Releases `reservation` and adds the call's `cost` to each budget's spend in today's
    /// period; returns the budgets this took past their soft limit (first in the fleet).
    pub async fn settle(
        &self,
        reservation: &Reservation,
        cost: Usd,
        applying: &[(Scope, Budget)],
        today: Day,
    ) -> Result<Vec<Crossed>, redis::RedisError> {
        let Some(lease) = &reservation.lease else {
            return Ok(Vec::new());
        };
        let settle = script(Lua::Settle);
        let mut invocation = settle.prepare_invoke();
        invocation.arg(lease).arg(cost.nanos());
        let mut current = Vec::new();
        for (scope, period) in &reservation.scopes {
            let hash = self.hash(scope, *period);
            invocation.key(&hash).key(format!("{hash}:leases"));
            // The budget as it is now (it may have changed since the call began).
            let budget = applying
                .iter()
                .find(|(applies, _)| applies == scope)
                .map(|(_, budget)| budget.clone());
            current.push(budget);
        }
        for ((scope, period), budget) in reservation.scopes.iter().zip(&current) {
            let today_period = budget
                .as_ref()
                .map_or(*period, |budget| budget.period.start(today));
            invocation.key(self.hash(scope, today_period));
        }
        for ((scope, _), budget) in reservation.scopes.iter().zip(&current) {
            let (ttl, soft) = match budget {
                Some(budget) => (
                    ttl_ms(
                        std::slice::from_ref(&(scope.clone(), budget.clone())),
                        today,
                    ),
                    budget.soft_usd.map_or(-1, Usd::nanos),
                ),
                None => (TOTAL_TTL.as_millis() as u64, -1),
            };
            invocation.arg(ttl).arg(soft);
        }
        let reply = self.invoke(invocation).await?;
        Ok(reply
            .chunks_exact(2)
            .filter_map(|pair| {
                let index = usize::try_from(pair[0]).ok()?.checked_sub(1)?;
                let (scope, _) = reservation.scopes.get(index)?;
                let budget = current.get(index)?.clone()?;
                Some(Crossed {
                    scope: scope.clone(),
                    budget,
                    spent: Usd::from_nanos(pair[1]),
                })
            })
            .collect())
    }
}

/// Why Redis could not decide.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Redis did not answer, or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The store's spend for a budget could not be read.
    #[error("store: {0}")]
    Store(switchyard_store::StoreError),
}

/// How long the state of `applying`'s budgets is kept: past the end of the longest period, a
/// day more; a budget that never resets, long after its last use.
fn ttl_ms(applying: &[(Scope, Budget)], today: Day) -> u64 {
    let now = switchyard_store::now_ms();
    applying
        .iter()
        .map(|(_, budget)| match budget.period {
            Period::None => TOTAL_TTL.as_millis() as u64,
            period => period
                .next_start(period.start(today))
                .map_or(TOTAL_TTL.as_millis() as u64, |next| {
                    u64::try_from(next.next().start_ms() - now).unwrap_or(86_400_000)
                }),
        })
        .max()
        .unwrap_or(86_400_000)
}

/// The scripts, each loaded once (by name, not by its text's address: two uses of one
/// constant need not share it).
#[derive(Debug, Clone, Copy)]
enum Lua {
    Reserve,
    Init,
    Settle,
}

fn script(which: Lua) -> &'static redis::Script {
    static SCRIPTS: [std::sync::OnceLock<redis::Script>; 3] = [
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
    ];
    let (index, code) = match which {
        Lua::Reserve => (0, RESERVE),
        Lua::Init => (1, INIT),
        Lua::Settle => (2, SETTLE),
    };
    SCRIPTS[index].get_or_init(|| redis::Script::new(code))
}
