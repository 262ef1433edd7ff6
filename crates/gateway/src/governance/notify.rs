//! Redis for governance: the connection the rate limits use, and key changes told to every
//! instance.
//!
//! An admin change (a key blocked, a team's models changed) is published on
//! `{prefix}:keys` right after it is stored; every instance subscribes and drops what the
//! change touched from its key cache, so the next call reads the key again: a blocked key is
//! refused everywhere within milliseconds. If Redis is down when a change is made, the other
//! instances see it when their cached entry expires (`auth.key_cache_secs`).
//!
//! Neither the connection nor the subscription holds up the start: both are made (and remade
//! after Redis restarts) by background tasks; until then the limits follow
//! `limits.on_redis_error`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::{debug, info, warn};

use super::{Changed, Governance};
use crate::background::{Background, Queue};

/// A connection to Redis through `client`, made by a background task that tries every second
/// until Redis answers (saying `ready` then, and `waiting` the first time it does not); empty
/// until then. The connection remakes itself after Redis restarts.
pub(crate) fn connect(
    client: &redis::Client,
    background: &Background,
    ready: &'static str,
    waiting: &'static str,
) -> Arc<ArcSwapOption<ConnectionManager>> {
    let connection: Arc<ArcSwapOption<ConnectionManager>> = Arc::new(ArcSwapOption::empty());
    let (client, slot, closing) = (
        client.clone(),
        Arc::clone(&connection),
        background.closing(),
    );
    background.spawn(async move {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let mut warned = false;
        loop {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(manager) => {
                    slot.store(Some(Arc::new(manager)));
                    info!("{ready}");
                    return;
                }
                Err(error) if !warned => {
                    warn!(%error, "{waiting}");
                    warned = true;
                }
                Err(error) => debug!(%error, "Redis still unreachable"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = closing.cancelled() => return,
            }
        }
    });
    connection
}

/// Changes queued for publishing at most.
const QUEUE: usize = 4096;

/// The Redis link of the governance state.
#[derive(Debug)]
pub struct Notify {
    client: redis::Client,
    channel: String,
    connection: Arc<ArcSwapOption<ConnectionManager>>,
    publish: Queue<String>,
}

impl Notify {
    /// Starts connecting to Redis at `url` in the background; changes are told on
    /// `{prefix}:keys`.
    pub fn start(
        url: &str,
        prefix: &str,
        background: &Background,
    ) -> Result<Notify, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let connection = connect(
            &client,
            background,
            "Rate limits and key changes shared through Redis",
            "Cannot reach Redis yet: limits are per instance until it answers",
        );
        let channel = format!("{prefix}:keys");
        let (slot, publish_channel) = (Arc::clone(&connection), channel.clone());
        let publish = background.queue("key changes", QUEUE, 64, move |batch: Vec<String>| {
            let connection = slot.load_full();
            let channel = publish_channel.clone();
            async move {
                let Some(connection) = connection else {
                    warn!(
                        changes = batch.len(),
                        "Key changes not told to other instances: Redis is not connected"
                    );
                    return;
                };
                let mut connection = (*connection).clone();
                let mut pipe = redis::pipe();
                for message in &batch {
                    pipe.cmd("PUBLISH").arg(&channel).arg(message).ignore();
                }
                let result: redis::RedisResult<()> = pipe.query_async(&mut connection).await;
                if let Err(error) = result {
                    warn!(%error, changes = batch.len(), "Key changes not told to other instances");
                }
            }
        });
        Ok(Notify {
            client,
            channel,
            connection,
            publish,
        })
    }

    /// The Redis client, to open more connections.
    pub fn client(&self) -> redis::Client {
        self.client.clone()
    }

    /// The connection, once made.
    pub fn connection(&self) -> Arc<ArcSwapOption<ConnectionManager>> {
        Arc::clone(&self.connection)
    }

    /// Tells the other instances about `changed`.
    pub fn publish(&self, changed: Changed) {
        self.publish.push(encode(&changed));
    }

    /// Listens for changes made on other instances (and this one), dropping what they touch
    /// from `governance`'s cache, until shutdown or until `governance` is gone.
    pub fn listen(&self, governance: Weak<Governance>, background: &Background) {
        let on_subscribed = governance.clone();
        subscribe(
            self.client.clone(),
            self.channel.clone(),
            background,
            "key changes",
            // Changes made while the subscription was down are unknown: start from an empty
            // cache.
            move || match on_subscribed.upgrade() {
                Some(governance) => {
                    governance.forget_all();
                    true
                }
                None => false,
            },
            move |payload| {
                let Some(governance) = governance.upgrade() else {
                    return false;
                };
                if let Some(changed) = String::from_utf8(payload)
                    .ok()
                    .and_then(|payload| decode(&payload))
                {
                    governance.forget(&changed);
                }
                true
            },
        );
    }
}

/// Subscribes to `channel` through `client` in a background task, and keeps subscribing after
/// Redis restarts, until shutdown: `subscribed` runs each time the subscription is made,
/// `message` for each message's payload; either returning false ends the task.
pub(crate) fn subscribe<S, M>(
    client: redis::Client,
    channel: String,
    background: &Background,
    what: &'static str,
    mut subscribed: S,
    mut message: M,
) where
    S: FnMut() -> bool + Send + 'static,
    M: FnMut(Vec<u8>) -> bool + Send + 'static,
{
    let closing = background.closing();
    background.spawn(async move {
        loop {
            let made = match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                    Ok(()) => Ok(pubsub),
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            };
            match made {
                Ok(mut pubsub) => {
                    if !subscribed() {
                        return;
                    }
                    let mut messages = pubsub.on_message();
                    loop {
                        let next = tokio::select! {
                            next = messages.next() => next,
                            () = closing.cancelled() => return,
                        };
                        let Some(next) = next else {
                            break;
                        };
                        if !message(next.get_payload_bytes().to_vec()) {
                            return;
                        }
                    }
                    warn!(what, "Lost a Redis subscription; reconnecting");
                }
                Err(error) => debug!(%error, what, "Redis unreachable for a subscription"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = closing.cancelled() => return,
            }
        }
    });
}

/// A change as published: `key <hash> <hash>…`, `team <id>`, `user <id>`.
pub(crate) fn encode(changed: &Changed) -> String {
    match changed {
        Changed::Key(hashes) => format!("key {}", hashes.join(" ")),
        Changed::Team(id) => format!("team {id}"),
        Changed::User(id) => format!("user {id}"),
    }
}

pub(crate) fn decode(message: &str) -> Option<Changed> {
    let (kind, rest) = message.split_once(' ')?;
    match kind {
        "key" => Some(Changed::Key(rest.split(' ').map(str::to_owned).collect())),
        "team" => Some(Changed::Team(rest.to_owned())),
        "user" => Some(Changed::User(rest.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip() {
        for changed in [
            Changed::Key(vec!["ab".into(), "cd".into()]),
            Changed::Team("team_1".into()),
            Changed::User("user_1".into()),
        ] {
            assert_eq!(decode(&encode(&changed)), Some(changed));
        }
        assert_eq!(decode("nonsense"), None);
    }
}
