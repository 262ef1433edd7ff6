//! Cooldowns shared between gateway instances through Redis.
//!
//! When an instance opens a deployment's circuit, it writes `{prefix}:cooldown:{key}` (the
//! cooldown's end, Unix milliseconds, expiring with it) and publishes it on
//! `{prefix}:cooldowns`. Every instance subscribes and opens the same circuit locally, and on
//! connecting reads the cooldowns already running. No request waits on Redis: publishing goes
//! through a bounded background queue (written out on shutdown), and a Redis outage leaves
//! each instance with its own cooldowns.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::background::{Background, Queue};
use crate::runtime::HealthRegistry;

/// Cooldowns waiting to be published; beyond this many, new ones are dropped (and logged).
const QUEUE: usize = 1024;

/// The link from one instance's health registry to the others.
#[derive(Debug)]
pub struct Fleet {
    publish: Queue<(String, u64)>,
}

/// Cooldowns learned from other instances, by deployment key: their end as Unix milliseconds.
#[derive(Debug, Default)]
pub struct Remote {
    until: Mutex<HashMap<String, u64>>,
}

impl Remote {
    /// When the cooldown another instance opened for `key` ends, if one is running.
    pub fn until(&self, key: &str) -> Option<Instant> {
        let until = self.lock().get(key).copied()?;
        instant_of(until)
    }

    fn record(&self, key: String, until: u64) {
        let mut map = self.lock();
        let now = now_ms();
        map.retain(|_, end| *end > now);
        let end = map.entry(key).or_insert(until);
        *end = (*end).max(until);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.until.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Fleet {
    /// Connects to Redis at `url`, reads the cooldowns already running and starts the
    /// publisher and subscriber tasks on the current runtime, which must outlive them.
    pub async fn connect(
        url: &str,
        prefix: &str,
        registry: Weak<HealthRegistry>,
        background: &Background,
    ) -> Result<Fleet, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let channel = format!("{prefix}:cooldowns");
        let key_prefix = format!("{prefix}:cooldown:");

        // Cooldowns already running elsewhere (SCAN, not KEYS: never block a shared Redis).
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{key_prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for key in keys {
            let until: Option<u64> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut connection)
                .await?;
            if let (Some(until), Some(registry)) = (until, registry.upgrade()) {
                registry.remote_cooldown(key[key_prefix.len()..].to_owned(), until);
            }
        }

        let (publish_channel, publish_prefix) = (channel.clone(), key_prefix.clone());
        // Cooldowns opened just before shutdown are still written: the queue is flushed.
        let publish = background.queue("cooldowns", QUEUE, 64, move |batch: Vec<(String, u64)>| {
            let mut connection = connection.clone();
            let mut pipe = redis::pipe();
            for (key, until) in &batch {
                let ttl = until.saturating_sub(now_ms()).max(1);
                pipe.cmd("SET")
                    .arg(format!("{publish_prefix}{key}"))
                    .arg(*until)
                    .arg("PX")
                    .arg(ttl)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(&publish_channel)
                    .arg(format!("{until} {key}"))
                    .ignore();
            }
            async move {
                let result: redis::RedisResult<()> = pipe.query_async(&mut connection).await;
                if let Err(error) = result {
                    warn!(%error, cooldowns = batch.len(), "Cannot share cooldowns through Redis");
                }
            }
        });

        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&channel).await?;
        let closing = background.closing();
        background.spawn(async move {
            loop {
                {
                    let mut messages = pubsub.on_message();
                    loop {
                        let message = tokio::select! {
                            message = messages.next() => message,
                            () = closing.cancelled() => return,
                        };
                        let Some(message) = message else {
                            break;
                        };
                        let Ok(payload) = message.get_payload::<String>() else {
                            continue;
                        };
                        let Some((until, key)) = payload.split_once(' ') else {
                            continue;
                        };
                        let (Ok(until), Some(registry)) =
                            (until.parse::<u64>(), registry.upgrade())
                        else {
                            continue;
                        };
                        debug!(deployment = key, "Cooldown from another instance");
                        registry.remote_cooldown(key.to_owned(), until);
                    }
                }
                if registry.upgrade().is_none() {
                    return;
                }
                // The subscription broke: resubscribe with a pause between tries.
                warn!("Lost the Redis cooldown subscription; reconnecting");
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = closing.cancelled() => return,
                    }
                    match client.get_async_pubsub().await {
                        Ok(mut fresh) => {
                            if fresh.subscribe(&channel).await.is_ok() {
                                pubsub = fresh;
                                break;
                            }
                        }
                        Err(error) => debug!(%error, "Redis still unreachable"),
                    }
                }
            }
        });
        Ok(Fleet { publish })
    }

    /// Tells the other instances that `key` cools down until `until`.
    pub fn share(&self, key: &str, until: Instant) {
        let ms = until.saturating_duration_since(Instant::now()).as_millis();
        let end = now_ms().saturating_add(u64::try_from(ms).unwrap_or(u64::MAX));
        // A full queue is logged by the queue itself.
        self.publish.push((key.to_owned(), end));
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The local instant of a Unix-milliseconds time, if it is still ahead.
fn instant_of(until: u64) -> Option<Instant> {
    let now = now_ms();
    (until > now).then(|| Instant::now() + Duration::from_millis(until - now))
}

/// Applies a remote cooldown ending at `until` (Unix milliseconds) to `open`.
pub(crate) fn apply(until: u64, open: impl FnOnce(Instant)) {
    if let Some(until) = instant_of(until) {
        open(until);
    }
}

impl HealthRegistry {
    /// Records a cooldown another instance opened and applies it to the local deployment.
    pub(crate) fn remote_cooldown(&self, key: String, until: u64) {
        if let Some(health) = self.existing(&key) {
            apply(until, |until| health.open_until(until));
        }
        self.remote.record(key, until);
    }
}
