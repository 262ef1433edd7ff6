//! The counters in Redis, exact across instances: one admission script per call on Redis's
//! clock, a settlement script after it, each worker thread on a connection of its own.

use super::*;

/// Counters in Redis, shared by every instance.
#[derive(Debug)]
pub(super) struct Shared {
    /// The connection of background work (settlements), on the background runtime.
    pub(super) connection: Arc<ArcSwapOption<redis::aio::ConnectionManager>>,
    /// For each worker thread's own connection (admissions).
    pub(super) client: redis::Client,
    /// Names this limiter's connections among a thread's.
    pub(super) id: u64,
    pub(super) prefix: String,
    pub(super) timeout: Duration,
    pub(super) policy: OutagePolicy,
}

/// How long a worker waits before connecting again after its connection failed.
pub(super) const RECONNECT: Duration = Duration::from_secs(1);

thread_local! {
    /// This thread's connection to each limiter's Redis: a worker's admission scripts go out
    /// on a connection its own runtime drives, never crossing to another thread and back.
    static LINKS: std::cell::RefCell<HashMap<u64, Link>> = std::cell::RefCell::new(HashMap::new());
}

/// A worker thread's connection, or when it may try to connect again.
#[derive(Debug, Clone)]
pub(super) enum Link {
    Up(redis::aio::MultiplexedConnection),
    Down(tokio::time::Instant),
}

/// The admission script: every check decided on Redis's clock, applied only if all pass.
/// KEYS: the counters. ARGV: lease, lease milliseconds, then (measure, limit, cost) per key
/// (measure 0: rate, 1: in flight). Returns allowed, retry-after ms (-1: never), then
/// (passed, remaining, reset ms) per key.
pub(super) const ADMIT: &str = r"
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
pub(super) const SETTLE: &str = r"
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

/// The admission script, loaded once.
pub(super) fn admit_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(ADMIT))
}

/// The settlement script, loaded once.
pub(super) fn settle_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(SETTLE))
}

impl Shared {
    /// This worker thread's connection, made (on this thread's runtime) if it has none.
    pub(super) async fn worker_connection(
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
    pub(super) fn drop_worker_connection(&self) {
        let retry_at = tokio::time::Instant::now() + RECONNECT;
        LINKS.with_borrow_mut(|links| links.insert(self.id, Link::Down(retry_at)));
    }

    pub(super) async fn admit(
        &self,
        checks: &[Check],
        lease: &str,
    ) -> Result<Verdict, redis::RedisError> {
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

    pub(super) async fn run_admit(
        &self,
        mut connection: redis::aio::MultiplexedConnection,
        checks: &[Check],
        lease: &str,
    ) -> Result<Verdict, redis::RedisError> {
        let mut invocation = admit_script().prepare_invoke();
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

pub(super) async fn settle_redis(
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
    let mut invocation = settle_script().prepare_invoke();
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
