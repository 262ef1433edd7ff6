//! Keys looked up recently, so that a call with a known key never waits on the database.
//!
//! Bounded in entries; each is used for `ttl` before it is read again, and dropped at once when
//! the key, its team or its user changes (on this instance directly, on others through Redis
//! or PostgreSQL notifications). While the database cannot answer, expired entries keep
//! serving: a store outage does not lock out keys already in use. Unknown keys are remembered
//! briefly too, so a client retrying a wrong key does not reach the database each time.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::principal::Principal;
use super::secret::Digest;

/// How long an unknown key is remembered as unknown.
const UNKNOWN_TTL: Duration = Duration::from_secs(5);

/// The lookup cache.
#[derive(Debug)]
pub struct KeyCache {
    known: Mutex<HashMap<Digest, Entry, BuildHasherDefault<DigestHasher>>>,
    unknown: Mutex<HashMap<Digest, Instant, BuildHasherDefault<DigestHasher>>>,
    capacity: usize,
    ttl: Duration,
}

#[derive(Debug)]
struct Entry {
    principal: Arc<Principal>,
    fetched: Instant,
}

/// What the cache knows of a key.
#[derive(Debug, Clone)]
pub enum Cached {
    /// Read within the ttl.
    Fresh(Arc<Principal>),
    /// Read longer ago: read it again, and use this only if the database cannot answer.
    Stale(Arc<Principal>),
    /// Looked up moments ago and not found.
    Unknown,
    /// Never seen.
    Miss,
}

impl KeyCache {
    /// A cache of at most `capacity` keys, each used for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> KeyCache {
        KeyCache {
            known: Mutex::new(HashMap::default()),
            unknown: Mutex::new(HashMap::default()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// What the cache knows of the key with digest `digest`.
    pub fn get(&self, digest: &Digest) -> Cached {
        let now = Instant::now();
        if let Some(entry) = lock(&self.known).get(digest) {
            return if now.duration_since(entry.fetched) < self.ttl {
                Cached::Fresh(Arc::clone(&entry.principal))
            } else {
                Cached::Stale(Arc::clone(&entry.principal))
            };
        }
        match lock(&self.unknown).get(digest) {
            Some(at) if now.duration_since(*at) < UNKNOWN_TTL => Cached::Unknown,
            _ => Cached::Miss,
        }
    }

    /// Remembers the key with digest `digest`.
    pub fn insert(&self, digest: Digest, principal: Arc<Principal>) {
        let now = Instant::now();
        let mut known = lock(&self.known);
        if known.len() >= self.capacity && !known.contains_key(&digest) {
            make_room(&mut known, self.capacity, |entry| {
                now.duration_since(entry.fetched) >= self.ttl
            });
        }
        known.insert(
            digest,
            Entry {
                principal,
                fetched: now,
            },
        );
        lock(&self.unknown).remove(&digest);
    }

    /// Remembers that no key has digest `digest`.
    pub fn insert_unknown(&self, digest: Digest) {
        let now = Instant::now();
        let mut unknown = lock(&self.unknown);
        if unknown.len() >= self.capacity && !unknown.contains_key(&digest) {
            make_room(&mut unknown, self.capacity, |at| {
                now.duration_since(*at) >= UNKNOWN_TTL
            });
        }
        unknown.insert(digest, now);
    }

    /// Drops every entry `stale` says no longer holds.
    pub fn forget(&self, stale: impl Fn(&Principal) -> bool) {
        lock(&self.known).retain(|_, entry| !stale(&entry.principal));
    }

    /// Drops every entry.
    pub fn clear(&self) {
        lock(&self.known).clear();
        lock(&self.unknown).clear();
    }

    /// Drops what is remembered as unknown.
    pub fn forget_unknown(&self) {
        lock(&self.unknown).clear();
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        lock(&self.known).len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Frees room in a full map: expired entries first, then an eighth of the rest.
fn make_room<V>(
    map: &mut HashMap<Digest, V, BuildHasherDefault<DigestHasher>>,
    capacity: usize,
    expired: impl Fn(&V) -> bool,
) {
    map.retain(|_, value| !expired(value));
    if map.len() >= capacity {
        let mut drop = (capacity / 8).max(1);
        map.retain(|_, _| {
            if drop == 0 {
                return true;
            }
            drop -= 1;
            false
        });
    }
}

/// The hasher of digests: a SHA-256 is already uniformly spread, and no one can choose one
/// (that would take a preimage), so its last eight bytes serve as its hash.
#[derive(Debug, Default)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A digest hashes as its length, then its bytes: keep the last eight bytes seen.
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }
}

/// The map, even if a thread panicked while holding it (every change to it is one call).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::super::secret::digest;
    use super::*;

    fn principal(team: &str) -> Arc<Principal> {
        let mut principal = Principal::master();
        principal.team_id = Some(team.to_owned());
        Arc::new(principal)
    }

    #[tokio::test(start_paused = true)]
    async fn entries_go_stale_after_the_ttl_and_unknowns_expire() {
        let cache = KeyCache::new(10, Duration::from_secs(60));
        let (a, b) = (digest("a"), digest("b"));
        assert!(matches!(cache.get(&a), Cached::Miss));
        cache.insert(a, principal("t"));
        cache.insert_unknown(b);
        assert!(matches!(cache.get(&a), Cached::Fresh(_)));
        assert!(matches!(cache.get(&b), Cached::Unknown));
        tokio::time::advance(UNKNOWN_TTL).await;
        assert!(matches!(cache.get(&b), Cached::Miss));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(matches!(cache.get(&a), Cached::Stale(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn changes_drop_what_they_touch_and_the_size_is_bounded() {
        let cache = KeyCache::new(16, Duration::from_secs(60));
        for index in 0..100 {
            cache.insert(
                digest(&index.to_string()),
                principal(if index % 2 == 0 { "even" } else { "odd" }),
            );
            assert!(cache.len() <= 16);
        }
        cache.forget(|principal| principal.team_id.as_deref() == Some("odd"));
        assert!(!cache.is_empty());
        for index in (1..100).step_by(2) {
            assert!(matches!(
                cache.get(&digest(&index.to_string())),
                Cached::Miss
            ));
        }
        assert!(matches!(cache.get(&digest("98")), Cached::Fresh(_)));
    }
}
