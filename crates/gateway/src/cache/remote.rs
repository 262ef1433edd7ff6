//! The Redis backend, shared by every instance: an answer is a JSON string under
//! `{prefix}:cache:{key}` that expires with its time to live. Sorted sets index the keys by
//! what invalidation names (everything, a namespace, a tag; overall and per team), scored by
//! expiry so each write trims what has expired; invalidating one deletes the keys it holds.
//! Every operation has a time limit: past it a read is a miss and a write is dropped, never a
//! failed call. One Redis (not a cluster: a write's keys would span slots).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;

use super::entry::{Entry, FORMAT};
use super::key::Key;
use super::{Selector, Stats, What};

/// Sets the entry and adds it to each index (KEYS[2..]), scored by its expiry; trims what has
/// expired from each index and keeps each index until its last member expires.
const STORE: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local now = tonumber(ARGV[3])
local expires = now + tonumber(ARGV[2])
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], expires, KEYS[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[i], last[2])
end
return 1
";

/// Deletes every entry an index holds (that has not expired), then the index; how many.
const DROP: &str = r"
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000
local members = redis.call('ZRANGEBYSCORE', KEYS[1], ms, '+inf')
local dropped = 0
for i = 1, #members, 500 do
  local last = math.min(i + 499, #members)
  dropped = dropped + redis.call('DEL', unpack(members, i, last))
end
redis.call('DEL', KEYS[1])
return dropped
";

/// The answers every instance shares.
pub(super) struct Remote {
    connection: Arc<ArcSwapOption<ConnectionManager>>,
    prefix: String,
    timeout: Duration,
    store: redis::Script,
    drop: redis::Script,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What went wrong with Redis.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Not connected yet, or the connection failed.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within the time limit.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Not connected.
    #[error("not connected to Redis")]
    Unconnected,
}

impl Remote {
    pub(super) fn new(
        connection: Arc<ArcSwapOption<ConnectionManager>>,
        prefix: &str,
        timeout: Duration,
    ) -> Remote {
        Remote {
            connection,
            prefix: format!("{prefix}:cache"),
            timeout,
            store: redis::Script::new(STORE),
            drop: redis::Script::new(DROP),
        }
    }

    fn entry_key(&self, key: &Key) -> String {
        format!("{}:{}", self.prefix, key.hex())
    }

    /// The index of `what` (overall, or of `team`'s entries).
    fn index(&self, team: Option<&str>, what: &What) -> String {
        let selector = match what {
            What::All | What::Key(_) => "all".to_owned(),
            What::Namespace(namespace) => format!("ns:{namespace}"),
            What::Tag(tag) => format!("tag:{tag}"),
        };
        match team {
            Some(team) => format!("{}:index:team:{team}:{selector}", self.prefix),
            None => format!("{}:index:all:{selector}", self.prefix),
        }
    }

    async fn run<T>(
        &self,
        work: impl AsyncFnOnce(ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, RemoteError> {
        let connection = self
            .connection
            .load_full()
            .ok_or(RemoteError::Unconnected)?;
        match tokio::time::timeout(self.timeout, work((*connection).clone())).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(RemoteError::Timeout(self.timeout)),
        }
    }

    pub(super) async fn get(&self, key: &Key) -> Result<Option<Entry>, RemoteError> {
        let name = self.entry_key(key);
        let bytes: Option<Vec<u8>> = self
            .run(async move |mut connection| {
                redis::cmd("GET")
                    .arg(&name)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(bytes
            .and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok())
            .filter(|entry| entry.format == FORMAT))
    }

    pub(super) async fn put(
        &self,
        key: &Key,
        entry: &Entry,
        ttl: Duration,
    ) -> Result<(), RemoteError> {
        let Ok(json) = serde_json::to_vec(entry) else {
            return Ok(());
        };
        let mut whats = vec![What::All];
        if let Some(namespace) = &entry.namespace {
            whats.push(What::Namespace(namespace.clone()));
        }
        whats.extend(entry.tags.iter().cloned().map(What::Tag));
        let mut keys = vec![self.entry_key(key)];
        for what in &whats {
            keys.push(self.index(None, what));
            if let Some(team) = &entry.team {
                keys.push(self.index(Some(team), what));
            }
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let now = switchyard_store::now_ms();
        let script = &self.store;
        self.run(async move |mut connection| {
            let mut invocation = script.prepare_invoke();
            for key in &keys {
                invocation.key(key);
            }
            invocation.arg(json).arg(ttl_ms).arg(now);
            invocation.invoke_async::<i64>(&mut connection).await
        })
        .await?;
        Ok(())
    }

    pub(super) async fn invalidate(&self, selector: &Selector) -> Result<u64, RemoteError> {
        if let What::Key(key) = &selector.what {
            let name = self.entry_key(key);
            if let Some(team) = &selector.team {
                // Only a team's own entry.
                match self.get(key).await? {
                    Some(entry) if entry.team.as_deref() == Some(team.as_str()) => {}
                    _ => return Ok(0),
                }
            }
            let dropped: u64 = self
                .run(async move |mut connection| {
                    redis::cmd("DEL")
                        .arg(&name)
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            return Ok(dropped);
        }
        let index = self.index(selector.team.as_deref(), &selector.what);
        let script = &self.drop;
        self.run(async move |mut connection| {
            script
                .key(&index)
                .invoke_async::<u64>(&mut connection)
                .await
        })
        .await
    }

    /// The channel semantic filings travel on.
    pub(super) fn filed_channel(&self) -> String {
        format!("{}:filed", self.prefix)
    }

    /// Tells every instance about a filing (`payload`).
    pub(super) async fn publish(&self, payload: String) -> Result<(), RemoteError> {
        let channel = self.filed_channel();
        self.run(async move |mut connection| {
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&payload)
                .query_async::<i64>(&mut connection)
                .await
        })
        .await?;
        Ok(())
    }

    pub(super) async fn stats(&self) -> Result<Stats, RemoteError> {
        let index = self.index(None, &What::All);
        let now = switchyard_store::now_ms();
        let entries: u64 = self
            .run(async move |mut connection| {
                redis::cmd("ZCOUNT")
                    .arg(&index)
                    .arg(now)
                    .arg("+inf")
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(Stats {
            entries,
            bytes: None,
        })
    }
}
