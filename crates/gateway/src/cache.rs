//! The answer cache: a call identical to an earlier one in the same scope gets the earlier
//! answer, whole, or replayed as a stream in the client's dialect.
//!
//! # Layout
//! - [`key`]: the key, a hash of the scope and of what in the request decides the answer.
//! - [`entry`]: what is kept of an answer; the whole answer or a stream's events back out.
//! - `memory`: in this process (moka, bounded by bytes). `remote`: in Redis, shared.
//!
//! Lookups happen in the pipeline's cache stage (`pipeline/cache.rs`); writes are queued when
//! a call ends and done in the background, where an answer relayed as the upstream wrote it is
//! decoded. Identical calls at once wait for the first one's answer (single flight, in one
//! process): the first holds a [`Flight`] until its answer is written or it ends without one.

pub mod entry;
pub mod key;
mod memory;
mod remote;
pub mod semantic;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use switchyard_types::{ChatResponse, Usage, WireFormat};
use tokio::sync::watch;
use tracing::warn;

use crate::background::Queue;
use crate::config::{CacheBackend, CacheScope, ConfigFile};
use entry::{Entry, FORMAT, Relayed, Stored};
use key::Key;

/// Answers waiting to be written, at most; past it an answer is not kept.
const WRITE_QUEUE: usize = 4096;

/// How long the writer waits for more answers once one arrives.
const WRITE_LINGER: Duration = Duration::from_millis(10);

/// How the cache behaves (from `cache` in the config).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Groups without a `cache` setting of their own are cached.
    pub default_on: bool,
    /// How long an answer is kept unless a request says otherwise.
    pub ttl: Duration,
    /// The longest a request may ask for.
    pub max_ttl: Duration,
    /// A larger answer is not kept.
    pub max_entry_bytes: usize,
    /// Whose answers a call may be given.
    pub scope: CacheScope,
    /// Identical calls at once wait for the first one's answer.
    pub single_flight: bool,
    /// How long they wait, at most.
    pub wait: Duration,
    /// Streamed answers are kept.
    pub streams: bool,
}

/// What invalidation names: entries of one team (or every team's), and which of them.
#[derive(Debug, Clone)]
pub struct Selector {
    /// Only this team's entries (`None`: anyone's).
    pub team: Option<String>,
    /// Which entries.
    pub what: What,
}

/// Which entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// The one under this key.
    Key(Key),
    /// Those of a namespace.
    Namespace(String),
    /// Those of calls with this tag.
    Tag(String),
    /// All.
    All,
}

/// How much the cache holds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Entries (approximate for Redis: those its index holds that have not expired).
    pub entries: u64,
    /// Their size, bytes (in-process only).
    pub bytes: Option<u64>,
}

/// An answer to keep, as the call ended.
#[derive(Debug)]
pub struct Write {
    /// Its key.
    pub key: Key,
    /// What it is filed under and what it cost (its `answer` is filled in when written).
    pub meta: Entry,
    /// How long to keep it.
    pub ttl: Duration,
    /// The answer.
    pub answer: Captured,
    /// What the call used (a relayed stream may not have shown its usage to the client).
    pub usage: Usage,
    /// The single flight it leads, ended once the answer is written.
    pub flight: Option<Flight>,
    /// Where the semantic index files it, once written: its scope, its question's vector and
    /// text.
    pub meaning: Option<Meaning>,
}

/// A question's place in the semantic index.
#[derive(Debug, Clone)]
pub struct Meaning {
    /// The scope (`key::context_of`).
    pub scope: Key,
    /// The last user message's vector.
    pub vector: Vec<f32>,
    /// The last user message.
    pub text: Arc<str>,
}

/// The semantic cache's parts.
#[derive(Debug)]
pub struct Semantic {
    /// Text to vectors.
    pub embedder: Arc<dyn semantic::Embedder>,
    /// The vectors of kept answers.
    pub index: semantic::Index,
    /// The similarity a candidate needs.
    pub threshold: f32,
    /// Candidates must pass [`semantic::verify`].
    pub verify: bool,
    /// The hottest sampling answered by meaning.
    pub max_temperature: f64,
}

/// An answer as the call had it.
#[derive(Debug)]
pub enum Captured {
    /// Decoded (a whole answer, or a stream gathered event by event).
    Response(ChatResponse),
    /// A whole answer relayed as the upstream wrote it, in `format`.
    Body {
        /// Its dialect.
        format: WireFormat,
        /// The body.
        bytes: Bytes,
    },
    /// A stream relayed as the upstream wrote it, in `format`.
    Stream {
        /// Its dialect.
        format: WireFormat,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

/// The answer cache.
#[derive(Debug)]
pub struct Cache {
    backend: Arc<Backend>,
    /// Lookups by meaning (`None`: exact only).
    pub semantic: Option<Arc<Semantic>>,
    /// How it behaves.
    pub settings: Settings,
    flights: Arc<Flights>,
    writes: Queue<Write>,
}

#[derive(Debug)]
enum Backend {
    Memory(memory::Memory),
    Remote(remote::Remote),
}

impl Cache {
    /// The cache `config` describes; writes run on `shared`'s background runtime, counted in
    /// its metrics.
    pub fn start(config: &ConfigFile, shared: &crate::shared::Shared) -> Result<Cache, String> {
        let (background, metrics) = (&shared.background, shared.metrics.clone());
        let cache = &config.cache;
        let mut redis_client = None;
        let backend = Arc::new(match cache.backend {
            CacheBackend::Memory => Backend::Memory(memory::Memory::new(cache.max_bytes)),
            CacheBackend::Redis => {
                let url = config
                    .redis
                    .url
                    .as_ref()
                    .ok_or("cache.backend: `redis` needs redis.url")?;
                let client = redis::Client::open(url.expose())
                    .map_err(|error| format!("redis.url: {error}"))?;
                let connection = crate::governance::notify::connect(
                    &client,
                    background,
                    "Answers cached in Redis",
                    "Cannot reach Redis yet: every cache lookup misses until it answers",
                );
                redis_client = Some(client);
                Backend::Remote(remote::Remote::new(
                    connection,
                    &config.redis.prefix,
                    Duration::from_millis(cache.redis_timeout_ms),
                ))
            }
        });
        let seconds = |value: f64| Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO);
        let settings = Settings {
            default_on: cache.enabled,
            ttl: seconds(cache.ttl_secs),
            max_ttl: seconds(cache.max_ttl_secs),
            max_entry_bytes: usize::try_from(cache.max_entry_bytes).unwrap_or(usize::MAX),
            scope: cache.scope,
            single_flight: cache.single_flight,
            wait: Duration::from_millis(cache.single_flight_wait_ms),
            streams: cache.streams,
        };
        let semantic = semantic_part(config, &shared.listening)?.map(Arc::new);
        // With Redis, every instance files what any of them kept (from when it subscribed).
        if let (Some(semantic), Some(client), Backend::Remote(remote)) =
            (&semantic, redis_client, &*backend)
        {
            let semantic = Arc::clone(semantic);
            crate::governance::notify::subscribe(
                client,
                remote.filed_channel(),
                background,
                "semantic filings",
                || true,
                move |payload| {
                    if let Some((scope, item, vector)) = read_filing(&payload) {
                        semantic.index.insert(scope, &vector, item);
                    }
                    true
                },
            );
        }
        let writes = {
            let (backend, max_entry_bytes) = (Arc::clone(&backend), settings.max_entry_bytes);
            let index = semantic.clone();
            // Lingering a little: under load, writes go in batches rather than a wake-up of
            // the background thread per answer (a call waiting on a flight waits that too).
            background.lingering_queue(
                "cache writes",
                WRITE_QUEUE,
                64,
                WRITE_LINGER,
                move |batch: Vec<Write>| {
                    let (backend, metrics, index) =
                        (Arc::clone(&backend), metrics.clone(), index.clone());
                    async move {
                        for mut write in batch {
                            let (key, meaning) = (write.key, write.meaning.take());
                            let outcome = keep(&backend, write, max_entry_bytes).await;
                            if let (Kept::Stored, Some(meaning), Some(semantic)) =
                                (outcome, meaning, &index)
                            {
                                if let Backend::Remote(remote) = &*backend
                                    && let Err(error) = remote.publish(filing(&meaning, &key)).await
                                {
                                    warn!(%error, "A kept question not told to other instances");
                                }
                                semantic.index.insert(
                                    meaning.scope,
                                    &meaning.vector,
                                    semantic::Item {
                                        key,
                                        text: meaning.text,
                                    },
                                );
                            }
                            if let Some(metrics) = &metrics {
                                metrics.cache_write(outcome);
                                if let Backend::Memory(memory) = &*backend {
                                    metrics.cache_size(memory.stats());
                                }
                            }
                        }
                    }
                },
            )
        };
        Ok(Cache {
            backend,
            semantic,
            settings,
            flights: Arc::new(Flights::default()),
            writes,
        })
    }

    /// Whether `config` caches any group's answers.
    pub fn wanted(config: &ConfigFile) -> bool {
        config.cache.enabled || config.models.iter().any(|model| model.cache == Some(true))
    }

    /// Whether calls to a group with `own` (its `cache` setting) are cached.
    pub fn covers(&self, own: Option<bool>) -> bool {
        own.unwrap_or(self.settings.default_on)
    }

    /// The entry under `key`, if there is one no older than `max_age`.
    pub async fn get(&self, key: &Key, max_age: Option<Duration>) -> Option<Arc<Entry>> {
        let entry = match &*self.backend {
            Backend::Memory(memory) => memory.get(key),
            Backend::Remote(remote) => match remote.get(key).await {
                Ok(entry) => entry.map(Arc::new),
                Err(error) => {
                    warn!(%error, "Cache lookup failed: answered as a miss");
                    None
                }
            },
        }?;
        let age = age_of(&entry);
        max_age.is_none_or(|max| age <= max).then_some(entry)
    }

    /// `entry` (under `key`) ready to be given out: a relayed answer decoded, and kept
    /// decoded from now on; `None` when it does not decode or a filter stopped it (an entry in
    /// memory is then dropped).
    pub fn ready(&self, key: &Key, entry: Arc<Entry>) -> Option<Arc<Entry>> {
        if entry.relayed.is_none() {
            return Some(entry);
        }
        let Some(decoded) = entry.decoded() else {
            if let Backend::Memory(memory) = &*self.backend {
                memory.remove(key);
            }
            return None;
        };
        let now = u64::try_from(switchyard_store::now_ms()).unwrap_or(0);
        let ttl = Duration::from_millis(decoded.expires_at.saturating_sub(now).max(1));
        let decoded = Arc::new(decoded);
        match &*self.backend {
            Backend::Memory(memory) => memory.put(*key, Arc::clone(&decoded), ttl),
            Backend::Remote(_) => {
                self.writes.push(Write {
                    key: *key,
                    meta: (*decoded).clone(),
                    ttl,
                    answer: Captured::Response(decoded.answer.response()),
                    usage: decoded.answer.usage,
                    flight: None,
                    meaning: None,
                });
            }
        }
        Some(decoded)
    }

    /// Writes `entry` under `key` now (what the background writer does with each answer).
    pub async fn insert(&self, key: Key, entry: Entry, ttl: Duration) -> Kept {
        store(&self.backend, key, entry, ttl).await
    }

    /// Queues `write`; false when the queue is full (the answer is not kept).
    pub fn put(&self, write: Write) -> bool {
        self.writes.push(write)
    }

    /// Leads the single flight of `key`, or follows the one in the air.
    pub fn join(&self, key: Key) -> Join {
        let mut flights = self
            .flights
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = flights.get(&key) {
            return Join::Follow(sender.subscribe());
        }
        let (sender, _) = watch::channel(());
        flights.insert(key, sender);
        Join::Lead(Flight {
            key,
            flights: Arc::clone(&self.flights),
        })
    }

    /// Drops what `selector` names; how many entries.
    pub async fn invalidate(&self, selector: &Selector) -> Result<u64, String> {
        match &*self.backend {
            Backend::Memory(memory) => Ok(memory.invalidate(selector)),
            Backend::Remote(remote) => remote
                .invalidate(selector)
                .await
                .map_err(|error| error.to_string()),
        }
    }

    /// How much it holds.
    pub async fn stats(&self) -> Result<Stats, String> {
        match &*self.backend {
            Backend::Memory(memory) => Ok(memory.stats()),
            Backend::Remote(remote) => remote.stats().await.map_err(|error| error.to_string()),
        }
    }

    /// `memory` or `redis`.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Memory(_) => "memory",
            Backend::Remote(_) => "redis",
        }
    }
}

/// The semantic part `config` asks for, its model loaded.
fn semantic_part(
    file: &ConfigFile,
    listening: &Arc<std::sync::OnceLock<std::net::SocketAddr>>,
) -> Result<Option<Semantic>, String> {
    let config = &file.cache.semantic;
    if !config.enabled {
        return Ok(None);
    }
    let embedder = match &config.embeddings_model {
        Some(model) => Arc::new(semantic::through::Through::new(
            Arc::clone(listening),
            model,
            file.auth
                .master_key
                .as_ref()
                .map(|key| key.expose().to_owned()),
        )) as Arc<dyn semantic::Embedder>,
        None => load_embedder(config.model_dir.as_deref().unwrap_or_default())?,
    };
    Ok(Some(Semantic {
        index: semantic::Index::new(config.max_entries, config.approximate_above),
        embedder,
        threshold: config.threshold,
        verify: config.verify,
        max_temperature: config.max_temperature,
    }))
}

#[cfg(feature = "semantic-cache")]
fn load_embedder(dir: &str) -> Result<Arc<dyn semantic::Embedder>, String> {
    semantic::minilm::MiniLm::load(std::path::Path::new(dir))
        .map(|model| Arc::new(model) as Arc<dyn semantic::Embedder>)
        .map_err(|error| format!("cache.semantic.model_dir: {error}"))
}

#[cfg(not(feature = "semantic-cache"))]
fn load_embedder(_dir: &str) -> Result<Arc<dyn semantic::Embedder>, String> {
    Err(
        "cache.semantic: this build has no local embedder (build with --features semantic-cache)"
            .into(),
    )
}

/// A filing as published to the other instances.
fn filing(meaning: &Meaning, key: &Key) -> String {
    serde_json::json!({
        "scope": meaning.scope.hex(),
        "key": key.hex(),
        "text": &*meaning.text,
        "vector": meaning.vector,
    })
    .to_string()
}

/// A published filing read back.
fn read_filing(payload: &[u8]) -> Option<(Key, semantic::Item, Vec<f32>)> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let scope = Key::parse(value["scope"].as_str()?)?;
    let key = Key::parse(value["key"].as_str()?)?;
    let vector: Vec<f32> = value["vector"]
        .as_array()?
        .iter()
        .map(|number| number.as_f64().map(|number| number as f32))
        .collect::<Option<_>>()?;
    let text: Arc<str> = value["text"].as_str()?.into();
    Some((scope, semantic::Item { key, text }, vector))
}

/// How old an entry is.
pub fn age_of(entry: &Entry) -> Duration {
    let now = u64::try_from(switchyard_store::now_ms()).unwrap_or(0);
    Duration::from_millis(now.saturating_sub(entry.stored_at))
}

/// What became of an answer to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Written.
    Stored,
    /// Larger than `cache.max_entry_bytes`.
    TooLarge,
    /// Stopped by a filter, or not decodable: never kept.
    Refused,
    /// The backend failed.
    Failed,
}

impl Kept {
    /// Its label on `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Kept::Stored => "stored",
            Kept::TooLarge => "too_large",
            Kept::Refused => "refused",
            Kept::Failed => "failed",
        }
    }
}

/// Writes one answer; its flight ends when this returns (followers then look again).
async fn keep(backend: &Backend, write: Write, max_entry_bytes: usize) -> Kept {
    let Write {
        key,
        mut meta,
        ttl,
        answer,
        usage,
        flight,
        meaning: _,
    } = write;
    let _flight = flight;
    // A relayed answer is kept as written, decoded when first given out (most never are).
    let relayed = match answer {
        Captured::Response(response) => {
            let stored = Stored::of(&response);
            if stored.filtered() {
                return Kept::Refused;
            }
            meta.answer = stored;
            None
        }
        Captured::Body { format, bytes } => Relayed::of(format, false, bytes.to_vec()),
        Captured::Stream { format, bytes } => Relayed::of(format, true, bytes),
    };
    if let Some(relayed) = relayed {
        meta.relayed = Some(relayed);
        meta.answer = Stored::default();
    } else if meta.answer.is_empty() {
        return Kept::Refused;
    }
    if meta.answer.usage.total_tokens() == 0 {
        meta.answer.usage = usage;
    }
    if meta.weight() > max_entry_bytes {
        return Kept::TooLarge;
    }
    meta.format = FORMAT;
    meta.expires_at = meta
        .stored_at
        .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    store(backend, key, meta, ttl).await
}

/// Writes one entry.
async fn store(backend: &Backend, key: Key, entry: Entry, ttl: Duration) -> Kept {
    match backend {
        Backend::Memory(memory) => {
            memory.put(key, Arc::new(entry), ttl);
            Kept::Stored
        }
        Backend::Remote(remote) => match remote.put(&key, &entry, ttl).await {
            Ok(()) => Kept::Stored,
            Err(error) => {
                warn!(%error, "Answer not cached");
                Kept::Failed
            }
        },
    }
}

/// The single flights in the air, by key.
#[derive(Debug, Default)]
struct Flights(Mutex<HashMap<Key, watch::Sender<()>>>);

/// Leading a single flight: identical calls wait until it is dropped (the answer written, or
/// the call ended without one).
#[derive(Debug)]
pub struct Flight {
    key: Key,
    flights: Arc<Flights>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        // Dropping the sender wakes every follower.
        self.flights
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// A call's place in the single flight of its key.
#[derive(Debug)]
pub enum Join {
    /// It calls the model; the others wait for it.
    Lead(Flight),
    /// Another call is in the air: wait for it to end.
    Follow(watch::Receiver<()>),
}
