//! The `cache` section: the exact and the semantic answer cache.

use serde::Deserialize;

/// Where cached answers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    /// In this process, bounded by `cache.max_bytes` (W-TinyLFU eviction).
    #[default]
    Memory,
    /// In Redis (`redis.url`), shared by every instance.
    Redis,
}

/// Whose cached answers a call may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Its key's team (or the key itself, for a key without a team).
    #[default]
    Team,
    /// Its key alone.
    Key,
    /// Every caller: one tenant.
    Global,
}

/// The answer cache: a call identical to an earlier one (same scope, model group and
/// everything that decides the answer) gets the earlier answer, whole or replayed as a stream.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Cache the answers of every model group (a group's own `cache` says otherwise for it).
    pub enabled: bool,
    /// `memory` (this process) or `redis` (`redis.url`, shared by every instance).
    pub backend: CacheBackend,
    /// How long an answer is kept, seconds (a request's `x-switchyard-cache-ttl` may say
    /// otherwise, up to `max_ttl_secs`).
    pub ttl_secs: f64,
    /// The longest a request may ask an answer to be kept, seconds.
    pub max_ttl_secs: f64,
    /// What the in-process cache may hold, bytes (answers' sizes).
    pub max_bytes: u64,
    /// A larger answer is not kept, bytes.
    pub max_entry_bytes: u64,
    /// Whose answers a call may be given: `team`, `key` or `global`.
    pub scope: CacheScope,
    /// Identical calls at once wait for the first one's answer instead of each calling the
    /// model.
    pub single_flight: bool,
    /// How long such a call waits for it, at most, milliseconds.
    pub single_flight_wait_ms: u64,
    /// Streamed answers are kept too (gathered as they pass to the client).
    pub streams: bool,
    /// How long a Redis read or write may take; past it a read is a miss (never an error).
    pub redis_timeout_ms: u64,
    /// Answers for requests that mean the same as an earlier one.
    pub semantic: SemanticCacheConfig,
}

/// The semantic cache: a request whose last user message means what an earlier one's did, in
/// the same scope, gets its answer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SemanticCacheConfig {
    /// Look answers up by meaning too (needs `model_dir` and a build with the
    /// `semantic-cache` feature).
    pub enabled: bool,
    /// The sentence-embedding model's folder (`model.safetensors`, `tokenizer.json`,
    /// `config.json`; `scripts/fetch-models` fetches all-MiniLM-L6-v2).
    pub model_dir: Option<String>,
    /// Or one of this gateway's embeddings groups (a `models` name), called through the
    /// gateway itself.
    pub embeddings_model: Option<String>,
    /// The cosine similarity a kept request needs to be a candidate.
    pub threshold: f32,
    /// Candidates must agree with the request on numbers, names, days, negation, opposites
    /// and format.
    pub verify: bool,
    /// Requests sampled hotter than this are never answered by meaning (no temperature
    /// counts as 1).
    pub max_temperature: f64,
    /// Vectors kept, at most (the oldest go first).
    pub max_entries: usize,
    /// A scope holding this many vectors or more is searched approximately (sign sketches
    /// pick the rows whose cosine is computed).
    pub approximate_above: usize,
}

impl Default for SemanticCacheConfig {
    fn default() -> SemanticCacheConfig {
        SemanticCacheConfig {
            enabled: false,
            model_dir: None,
            embeddings_model: None,
            threshold: 0.90,
            verify: true,
            max_temperature: 1.0,
            max_entries: 100_000,
            approximate_above: 20_000,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            enabled: false,
            backend: CacheBackend::Memory,
            ttl_secs: 3600.0,
            max_ttl_secs: 7.0 * 86_400.0,
            max_bytes: 256 * 1024 * 1024,
            max_entry_bytes: 4 * 1024 * 1024,
            scope: CacheScope::Team,
            single_flight: true,
            single_flight_wait_ms: 30_000,
            streams: true,
            redis_timeout_ms: 100,
            semantic: SemanticCacheConfig::default(),
        }
    }
}
