//! The in-process backend: moka's concurrent cache (W-TinyLFU admission, so a burst of
//! one-off answers does not push out the ones that get asked again), bounded by the answers'
//! sizes, each entry expiring after its own time to live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;

use super::entry::Entry;
use super::key::Key;
use super::{Selector, Stats, What};

/// One kept answer, its time to live and its size.
#[derive(Debug, Clone)]
struct Held {
    entry: Arc<Entry>,
    ttl: Duration,
    weight: u32,
}

/// Each entry lives for its own time.
struct OwnTime;

impl Expiry<Key, Held> for OwnTime {
    fn expire_after_create(&self, _key: &Key, held: &Held, _created: Instant) -> Option<Duration> {
        Some(held.ttl)
    }
}

/// The answers this process keeps.
pub(super) struct Memory {
    cache: moka::sync::Cache<Key, Held>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl Memory {
    /// A cache of at most `max_bytes` of answers.
    pub(super) fn new(max_bytes: u64) -> Memory {
        Memory {
            cache: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_key: &Key, held: &Held| held.weight)
                .expire_after(OwnTime)
                .build(),
        }
    }

    pub(super) fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        self.cache.get(key).map(|held| held.entry)
    }

    pub(super) fn put(&self, key: Key, entry: Arc<Entry>, ttl: Duration) {
        let weight = u32::try_from(entry.weight()).unwrap_or(u32::MAX);
        self.cache.insert(key, Held { entry, ttl, weight });
    }

    pub(super) fn remove(&self, key: &Key) {
        self.cache.invalidate(key);
    }

    /// Drops what `selector` names; how many it dropped.
    pub(super) fn invalidate(&self, selector: &Selector) -> u64 {
        let of_team = |entry: &Entry| {
            selector
                .team
                .as_deref()
                .is_none_or(|team| entry.team.as_deref() == Some(team))
        };
        if let What::Key(key) = &selector.what {
            return match self.cache.get(key) {
                Some(held) if of_team(&held.entry) => {
                    self.cache.invalidate(key);
                    1
                }
                _ => 0,
            };
        }
        let mut dropped = 0;
        for (key, held) in &self.cache {
            let entry = &held.entry;
            let named = match &selector.what {
                What::All => true,
                What::Namespace(namespace) => entry.namespace.as_deref() == Some(namespace),
                What::Tag(tag) => entry.tags.iter().any(|own| own == tag),
                What::Key(_) => false,
            };
            if named && of_team(entry) {
                self.cache.invalidate(&*key);
                dropped += 1;
            }
        }
        dropped
    }

    pub(super) fn stats(&self) -> Stats {
        self.cache.run_pending_tasks();
        Stats {
            entries: self.cache.entry_count(),
            bytes: Some(self.cache.weighted_size()),
        }
    }
}
