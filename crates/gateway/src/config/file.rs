//! The config file's shape. Every struct rejects unknown keys; every default is written out in
//! its `Default` impl and shown in the README.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use switchyard_ledger::{Price, Rate};

use crate::router::strategy::Strategy;

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Listener and limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Retries, cooldowns and time limits shared by every group.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Model groups clients can ask for.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// Who may call: the master key, and whether model calls need a virtual key.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Where teams, users and keys are kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// How rate limits behave when Redis cannot answer.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Redis shared by several gateway instances: cooldowns, rate limits and key changes
    /// travel through it. Without it each instance keeps its own.
    #[serde(default)]
    pub redis: RedisConfig,
    /// Spend records and budgets.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// OpenTelemetry traces.
    #[serde(default)]
    pub otel: OtelConfig,
    /// The tamper-evident audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Guards on what goes to the model: personal data and secrets.
    #[serde(default)]
    pub guards: GuardsConfig,
    /// HTTP services every call is shown to, in order (see the README's webhook contract).
    #[serde(default)]
    pub hooks: Vec<WebhookConfig>,
    /// The answer cache.
    #[serde(default)]
    pub cache: CacheConfig,
}

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

/// A hook that is an HTTP service: shown each call before the model and, if asked, its whole
/// answer after; it allows, blocks or modifies.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for logs and records.
    pub name: String,
    /// Where calls are POSTed (`http://` or `https://`).
    pub url: String,
    /// `before_model`, `after_model` (whole answers; streams are not sent), or both.
    #[serde(default = "before_model")]
    pub points: Vec<String>,
    /// How long the service may take, milliseconds.
    #[serde(default = "webhook_timeout")]
    pub timeout_ms: u64,
    /// When the service times out, fails or answers garbage: `closed` refuses the call (503
    /// `hook_unavailable`), `open` lets it through (logged, and on the call's record).
    #[serde(default = "closed")]
    pub on_error: OutagePolicy,
    /// Headers sent with every call (an `authorization`, say).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Secret>,
    /// Only calls to these model groups (empty: all).
    #[serde(default)]
    pub models: Vec<String>,
}

fn before_model() -> Vec<String> {
    vec!["before_model".to_owned()]
}

fn webhook_timeout() -> u64 {
    1000
}

fn closed() -> OutagePolicy {
    OutagePolicy::Closed
}

/// Whether model calls need a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Every model call needs a virtual key (or the master key).
    Keys,
    /// No keys: anyone who reaches the port may call every model.
    None,
}

/// Who may call.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `keys` or `none`. Unset: `keys` when a master key is set; otherwise `none`, which is
    /// allowed only on a loopback address unless written here.
    pub mode: Option<AuthMode>,
    /// The admin key (at least 16 characters): every admin right, and the key that creates
    /// the first virtual keys. Also read from `SWITCHYARD_MASTER_KEY`.
    pub master_key: Option<Secret>,
    /// How long a looked-up key is used before it is read again (changes made through the
    /// admin API reach every instance at once; this bounds changes made any other way).
    pub key_cache_secs: Option<f64>,
}

/// Where teams, users and keys are kept.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (the embedded default: a file in the data folder) or
    /// `postgres://user:password@host/database` (shared by several instances).
    pub url: Secret,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a key lookup may wait for the database before the call gets a 503.
    pub timeout_secs: f64,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            url: Secret(SecretString::from("sqlite://switchyard-data/switchyard.db")),
            max_connections: 10,
            timeout_secs: 2.0,
        }
    }
}

/// What a rate-limit check does when its counter cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutagePolicy {
    /// Let the call through (logged and counted).
    #[default]
    Open,
    /// Refuse the call with a 503.
    Closed,
}

/// How rate limits behave.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// When Redis does not answer within `redis_timeout_ms`.
    pub on_redis_error: OutagePolicy,
    /// How long a check may wait for Redis.
    pub redis_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            on_redis_error: OutagePolicy::Open,
            redis_timeout_ms: 250,
        }
    }
}

/// The ledger: a spend record per call, daily aggregates, budgets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Record spend and enforce budgets (in the store, `store.url`).
    pub enabled: bool,
    /// Days raw spend records are kept (the daily aggregates stay); 0 keeps them forever.
    pub retention_days: u32,
    /// Records waiting to be written, at most; past it a record is dropped and counted.
    pub queue_capacity: usize,
    /// Output tokens a budget reserves for a call that sets no `max_tokens` on a model whose
    /// output limit the price table does not know.
    pub reserve_output_tokens: u64,
    /// Where a budget passing its `soft_usd` is told (a JSON POST, once per period).
    pub budget_webhook_url: Option<String>,
}

impl Default for LedgerConfig {
    fn default() -> LedgerConfig {
        LedgerConfig {
            enabled: true,
            retention_days: 90,
            queue_capacity: 65_536,
            reserve_output_tokens: 32_768,
            budget_webhook_url: None,
        }
    }
}

/// The audit log: a record per model call and per admin change, in a Merkle tree whose heads
/// are signed as checkpoints.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Keep the audit log (in the store, `store.url`).
    pub enabled: bool,
    /// The log's name, the first line of every checkpoint: a URL without scheme that no other
    /// log uses (`audit.example.com/gateway`). Also the signing key's name when it is made here.
    pub origin: String,
    /// The signing key (`PRIVATE+KEY+…`, as `switchyard audit new-key` prints it). Also read from
    /// `SWITCHYARD_AUDIT_SIGNING_KEY`. Instances sharing a PostgreSQL store should share it.
    pub signing_key: Option<Secret>,
    /// A file holding the signing key, made at first start when missing. Unset: the
    /// SQLite store's folder (`audit-signing.key` beside the database), or
    /// `switchyard-data/audit-signing.key` with PostgreSQL.
    pub signing_key_file: Option<String>,
    /// Seconds between checkpoints (each signs the tree as it then is, if it grew).
    pub checkpoint_interval_secs: f64,
    /// Days records are kept (their hashes stay in the tree, so later records keep their
    /// proofs); 0 keeps them forever.
    pub retention_days: u32,
    /// Records waiting to be written, at most; past it a record is dropped and counted.
    pub queue_capacity: usize,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            enabled: true,
            origin: "switchyard.local/audit".to_owned(),
            signing_key: None,
            signing_key_file: None,
            checkpoint_interval_secs: 10.0,
            retention_days: 365,
            queue_capacity: 65_536,
        }
    }
}

/// Guards on every chat call's request: personal data and secrets found in its messages and
/// tool calls, and what becomes of them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GuardsConfig {
    /// Personal data.
    pub pii: PiiConfig,
    /// Credentials.
    pub secrets: SecretsConfig,
    /// The key of the `hash` operator's HMAC-SHA256 (at least 16 characters). Unset: a key
    /// made for the process (hashes then differ across restarts and instances).
    pub hash_key: Option<Secret>,
    /// Guards on what the model answers.
    pub output: OutputGuardsConfig,
    /// Prompt-injection and jailbreak detection on user messages and tool results.
    pub injection: InjectionConfig,
    /// Requests with more guarded text than this are inspected off the worker thread.
    pub offload_bytes: Option<usize>,
    /// How long the input guards may take on one request, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// When they fail or run out of time: `closed` (503 `guard_unavailable`) or `open`.
    pub on_error: Option<String>,
    /// Named policies (each a `guards` section of its own, without `policies`), chosen by a
    /// key's or team's `metadata.guard_policy` or a model group's `guard_policy`.
    pub policies: std::collections::BTreeMap<String, GuardsConfig>,
}

/// What the output guards do with what the model wrote (whole answers and streams).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputGuardsConfig {
    /// Credentials in the answer: `off`, `redact` (replaced by their kind) or `block` (the
    /// answer ends with a `content_filter` finish).
    #[serde(deserialize_with = "switch")]
    pub secrets: String,
    /// Personal data the model wrote (the PII guard's entities and thresholds; values it was
    /// given as placeholders are not counted): `off`, `redact` or `block`.
    #[serde(deserialize_with = "switch")]
    pub pii: String,
    /// Markdown images pointing at a URL (`![x](https://…)`), the way injected instructions
    /// carry data out of a chat: `off`, `redact` or `block`.
    #[serde(deserialize_with = "switch")]
    pub markdown_images: String,
    /// Terms of `banned` in the answer: `off`, `redact` (replaced by the list's name) or
    /// `block`.
    #[serde(deserialize_with = "switch")]
    pub banned_terms: String,
    /// Named lists of banned terms (a topic, a competitor's products), matched whole-word,
    /// case aside.
    pub banned: Vec<DenyListConfig>,
    /// The system prompt copied into the answer (a run of eight or more of its words) or its
    /// canary: `off`, `redact` or `block`.
    #[serde(deserialize_with = "switch")]
    pub system_prompt_leak: String,
    /// Adds a canary (a keyed hash of the system prompt, the same for the same prompt) to the
    /// system prompt, for `system_prompt_leak` to catch.
    pub canary: bool,
    /// Answers to requests that ask for JSON (`response_format` `json_schema` or
    /// `json_object`) checked against the request's schema: `off`, `flag` (counted on the
    /// call's records) or `block` (502 `invalid_structured_output` for a whole answer; a
    /// stream is held whole until it can be checked).
    #[serde(deserialize_with = "switch")]
    pub json_schema: String,
}

/// A guard's action as text; YAML's `off` (which YAML 1.1 reads as `false`) is `off`.
fn switch<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Switch {
        Flag(bool),
        Text(String),
    }
    Ok(match Switch::deserialize(deserializer)? {
        Switch::Flag(false) => "off".to_owned(),
        Switch::Flag(true) => "on".to_owned(),
        Switch::Text(text) => text,
    })
}

impl Default for OutputGuardsConfig {
    fn default() -> OutputGuardsConfig {
        OutputGuardsConfig {
            secrets: "off".to_owned(),
            pii: "off".to_owned(),
            markdown_images: "off".to_owned(),
            banned_terms: "off".to_owned(),
            banned: Vec::new(),
            system_prompt_leak: "off".to_owned(),
            canary: false,
            json_schema: "off".to_owned(),
        }
    }
}

/// What the PII guard does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// `off`, `tokenize` (placeholders the answer gets its values back for), `redact`, `mask`,
    /// `label`, `hash`, or `flag` (counted on the call's records, nothing changed).
    #[serde(deserialize_with = "switch")]
    pub action: String,
    /// Built-in entities to look for (`EMAIL`, `PHONE`, `CREDIT_CARD`, `IBAN`, `US_SSN`,
    /// `IP_ADDRESS`, `DATE_OF_BIRTH`, `CRYPTO_WALLET`); empty: all of them.
    pub entities: Vec<String>,
    /// The score a finding needs (0 to 1).
    pub threshold: f32,
    /// Per-entity thresholds over `threshold`.
    pub thresholds: std::collections::HashMap<String, f32>,
    /// Patterns of your own.
    pub custom: Vec<CustomEntityConfig>,
    /// Exact terms of your own (case-insensitive, whole words).
    pub deny_lists: Vec<DenyListConfig>,
}

impl Default for PiiConfig {
    fn default() -> PiiConfig {
        PiiConfig {
            action: "off".to_owned(),
            entities: Vec::new(),
            threshold: 0.5,
            thresholds: std::collections::HashMap::new(),
            custom: Vec::new(),
            deny_lists: Vec::new(),
        }
    }
}

/// A pattern of one's own.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomEntityConfig {
    /// The entity's name (`EMPLOYEE_ID`): letters, digits and `_`.
    pub name: String,
    /// A regular expression (linear-time syntax: no look-around, no back-references).
    pub pattern: String,
    /// Its score (default 1.0).
    #[serde(default = "one")]
    pub score: f32,
    /// Words that raise the score when shortly before a match.
    #[serde(default)]
    pub context: Vec<String>,
}

fn one() -> f32 {
    1.0
}

/// Terms of one's own.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DenyListConfig {
    /// The entity's name (`PROJECT`).
    pub name: String,
    /// The terms.
    pub terms: Vec<String>,
}

/// What the injection guard does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// `off`, `block` (400 `prompt_injection_detected`) or `flag` (on the call's records).
    #[serde(deserialize_with = "switch")]
    pub action: String,
    /// The score that counts as an injection (0 to 1).
    pub threshold: f32,
    /// Whether the trained n-gram tier runs beside the phrase tiers (the shipped model; its
    /// scores are calibrated so that 0.8 means the same as for the phrases).
    pub model: bool,
    /// Whether the similarity tier runs: closeness to the shipped sketches of known jailbreaks
    /// (0.8 when half their word 3-grams are shared).
    pub similarity: bool,
}

impl Default for InjectionConfig {
    fn default() -> InjectionConfig {
        InjectionConfig {
            action: "off".to_owned(),
            threshold: 0.8,
            model: true,
            similarity: true,
        }
    }
}

/// What the secrets guard does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// `off`, `block` (the call is refused, 400 `secret_detected`), `redact` (replaced by the
    /// secret's kind), or `flag`.
    #[serde(deserialize_with = "switch")]
    pub action: String,
}

impl Default for SecretsConfig {
    fn default() -> SecretsConfig {
        SecretsConfig {
            action: "off".to_owned(),
        }
    }
}

/// Prometheus metrics.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Keep metrics and serve them on `/metrics`.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig { enabled: true }
    }
}

/// OpenTelemetry traces, exported over OTLP/HTTP when an endpoint is set.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtelConfig {
    /// The collector's OTLP/HTTP endpoint (`http://collector:4318`); unset: the
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` environment variable, else no traces.
    pub endpoint: Option<String>,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Share of calls traced when the caller's `traceparent` does not decide, 0 to 1.
    pub sample_ratio: f64,
}

impl Default for OtelConfig {
    fn default() -> OtelConfig {
        OtelConfig {
            endpoint: None,
            service_name: "switchyard".to_owned(),
            sample_ratio: 1.0,
        }
    }
}

/// Redis shared by several instances.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:6379/`.
    pub url: Option<Secret>,
    /// Prefix of the Redis keys and channels.
    pub prefix: String,
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig {
            url: None,
            prefix: "switchyard".to_owned(),
        }
    }
}

/// Retries, cooldowns and time limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Failures within `cooldown_window_secs` that take a deployment out of rotation.
    pub cooldown_failures: u32,
    /// The window failures are counted in.
    pub cooldown_window_secs: f64,
    /// How long a failing deployment stays out before one probe call (after a rate limit,
    /// the upstream's `Retry-After` when that is shorter).
    pub cooldown_secs: f64,
    /// First retry delay; it doubles per retry, with full jitter.
    pub retry_backoff_ms: u64,
    /// Largest retry delay.
    pub retry_backoff_max_ms: u64,
    /// Largest time limit a caller may ask for with `x-switchyard-timeout`.
    pub max_timeout_secs: f64,
}

impl Default for RoutingConfig {
    fn default() -> RoutingConfig {
        RoutingConfig {
            cooldown_failures: 3,
            cooldown_window_secs: 60.0,
            cooldown_secs: 30.0,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 5000,
            max_timeout_secs: 600.0,
        }
    }
}

/// Listener and request limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: u64,
    /// On SIGTERM/SIGINT, how long in-flight requests and streams may take to finish.
    pub shutdown_grace_secs: f64,
    /// Time allowed to open a connection to an upstream.
    pub connect_timeout_secs: f64,
    /// Time a client has to send a request's headers, from the moment the connection is ready
    /// for one (opened, or idle after a response): also the idle keep-alive timeout.
    pub header_read_timeout_secs: f64,
    /// Request bodies the whole process holds at once, in bytes (at least `body_limit_bytes`);
    /// a request whose body would go past it is refused with a 503 rather than let memory grow
    /// with what clients send.
    pub max_body_bytes_in_flight: u64,
    /// Time a client has to send a request's body once its headers arrived (408 after it).
    pub body_read_timeout_secs: f64,
    /// Open client connections the process serves at once; past it, new connections wait in
    /// the listen backlog.
    pub max_connections: usize,
    /// Largest request head (request line and headers) a connection buffers, in bytes (at
    /// least 8192); a larger one is refused (431).
    pub max_header_bytes: usize,
    /// HTTP/2: interval of keep-alive pings on a connection, and how long a ping may go
    /// unanswered before the connection is closed.
    pub http2_keep_alive_secs: f64,
    /// Largest whole (non-streamed) upstream answer held, in bytes; a larger one is a 502.
    pub upstream_body_limit_bytes: u64,
    /// Largest unfinished upstream stream event (SSE line or event, Bedrock frame) held, in
    /// bytes; a larger one ends the stream with an error.
    pub upstream_event_limit_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: "127.0.0.1:4000".to_owned(),
            body_limit_bytes: 32 * 1024 * 1024,
            shutdown_grace_secs: 30.0,
            connect_timeout_secs: 10.0,
            header_read_timeout_secs: 30.0,
            body_read_timeout_secs: 60.0,
            max_body_bytes_in_flight: 1024 * 1024 * 1024,
            max_connections: 10_000,
            max_header_bytes: 64 * 1024,
            http2_keep_alive_secs: 20.0,
            upstream_body_limit_bytes: 64 * 1024 * 1024,
            upstream_event_limit_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A model group: the name clients use and the deployments that serve it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients put in `model`.
    pub name: String,
    /// Other names that reach the same group.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Where calls go (at least one).
    #[serde(default)]
    pub deployments: Vec<DeploymentConfig>,
    /// How calls are spread over the deployments.
    #[serde(default)]
    pub strategy: Strategy,
    /// Further attempts after a retryable failure (on another deployment when there is one).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Groups tried in order when this one fails.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Groups tried when the prompt is too long for this one.
    #[serde(default)]
    pub context_window_fallbacks: Vec<String>,
    /// Groups tried when this one's content policy refuses the request.
    #[serde(default)]
    pub content_policy_fallbacks: Vec<String>,
    /// Send every deployment a one-token request this often (active health checks); off when
    /// absent.
    #[serde(default)]
    pub health_check_interval_secs: Option<f64>,
    /// The guard policy (a name under `guards.policies`) for calls to this group, unless the
    /// caller's key or team names one.
    #[serde(default)]
    pub guard_policy: Option<String>,
    /// Whether this group's answers are cached (default: `cache.enabled`).
    #[serde(default)]
    pub cache: Option<bool>,
}

/// Two retries: three attempts in all.
pub fn default_retries() -> u32 {
    2
}

/// One upstream endpoint of a model group.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// `openai`, `anthropic`, `gemini`, an OpenAI-compatible preset (`groq`, `mistral`,
    /// `deepseek`, `together`, `openrouter`, `vllm`, `ollama`), `openai_compatible` (needs
    /// `api_base`), or `mock` / `mock_anthropic` / `mock_gemini` (the built-in mock provider,
    /// run in-process).
    pub provider: String,
    /// The model name the upstream knows.
    pub model: String,
    /// The API base URL (for OpenAI-compatible servers, up to and including `/v1`).
    #[serde(default)]
    pub api_base: Option<String>,
    /// The provider key; use `${ENV_VAR}` to read it from the environment.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// AWS Bedrock: the region (`us-east-1`); use `${AWS_REGION}` to take it from the
    /// environment.
    #[serde(default)]
    pub aws_region: Option<String>,
    /// AWS Bedrock: the access key id; without it, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` are read at startup.
    #[serde(default)]
    pub aws_access_key_id: Option<String>,
    /// AWS Bedrock: the secret access key.
    #[serde(default)]
    pub aws_secret_access_key: Option<Secret>,
    /// AWS Bedrock: the session token of temporary credentials.
    #[serde(default)]
    pub aws_session_token: Option<Secret>,
    /// Google Vertex AI: the service-account key file (JSON, as Google issues it).
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// Google Vertex AI: the project (default: the key file's `project_id`).
    #[serde(default)]
    pub vertex_project: Option<String>,
    /// Google Vertex AI: the location (default `us-central1`; `global` for the global endpoint).
    #[serde(default)]
    pub vertex_location: Option<String>,
    /// Google Vertex AI: where to exchange the service account's JWT for a token (default:
    /// the key file's `token_uri`).
    #[serde(default)]
    pub token_uri: Option<String>,
    /// Azure OpenAI: the `api-version` (default `2024-10-21`; `v1` for the v1 API).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Azure OpenAI: `api_key` (the `api-key` header, default) or `bearer` (a Microsoft Entra
    /// ID token in `Authorization`).
    #[serde(default)]
    pub auth: Option<AzureAuth>,
    /// Total time for a call, stream included.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: f64,
    /// Time to open a connection to this deployment (default `server.connect_timeout_secs`).
    #[serde(default)]
    pub connect_timeout_secs: Option<f64>,
    /// Time to the first byte of the answer (for streams, the first token); default
    /// `timeout_secs`.
    #[serde(default)]
    pub ttft_timeout_secs: Option<f64>,
    /// Share of the group's traffic (weighted random), relative to the other deployments.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Tier: a deployment is used only when no deployment of a lower tier is available.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Whether a caller may send its own provider key (`x-switchyard-provider-key`), used for
    /// that call only and never logged or stored.
    #[serde(default)]
    pub allow_client_key: bool,
    /// The model's input limit in tokens: a longer prompt never reaches this deployment (the
    /// group's `context_window_fallbacks` take it when no deployment can).
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
    /// Price in USD per million input tokens: `price.input` in short.
    #[serde(default)]
    pub input_cost_per_mtok: Option<Rate>,
    /// Price in USD per million output tokens: `price.output` in short.
    #[serde(default)]
    pub output_cost_per_mtok: Option<Rate>,
    /// This deployment's prices (USD per million tokens: `input`, `output`, `cache_read`,
    /// `cache_write`, `reasoning`, `tiers`…), over the shipped table's, field by field.
    #[serde(default)]
    pub price: Option<Price>,
    /// The model name to look prices up under, when `model` is a name of the user's own (an
    /// Azure deployment, a fine-tune): `gpt-4o`.
    #[serde(default)]
    pub base_model: Option<String>,
}

/// How an Azure OpenAI deployment authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AzureAuth {
    /// The `api-key` header.
    ApiKey,
    /// `Authorization: Bearer` with an Entra ID token.
    Bearer,
}

/// Equal shares.
pub fn default_weight() -> f64 {
    1.0
}

/// The first tier.
pub fn default_priority() -> u32 {
    1
}

/// The default upstream timeout: long generations take minutes.
pub fn default_timeout_secs() -> f64 {
    600.0
}

/// A secret from the config (a provider key, an AWS secret): its `Debug` prints nothing, so a
/// config printed for a bug report or a log line never carries it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// As the `SecretString` the upstream client keeps.
    pub fn to_secret_string(&self) -> SecretString {
        self.0.clone()
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Secret {
        Secret(SecretString::from(secret))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Configs compare by what they hold (a reload compares the new file with the old).
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}
