//! The config file's shape. Every struct rejects unknown keys; every default is written out in
//! its `Default` impl and shown in the README.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use switchyard_ledger::{Price, Rate};

use crate::router::strategy::Strategy;

mod cache;
mod guards;

pub use cache::{CacheBackend, CacheConfig, CacheScope, SemanticCacheConfig};
pub use guards::{
    CustomEntityConfig, DenyListConfig, GuardsConfig, InjectionConfig, OutputGuardsConfig,
    PiiConfig, SecretsConfig,
};

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
    /// Headers every export carries (a collector's or a vendor's key); unset: those of the
    /// `OTEL_EXPORTER_OTLP_HEADERS` environment variable (`name=value,name=value`).
    pub headers: std::collections::BTreeMap<String, Secret>,
}

impl Default for OtelConfig {
    fn default() -> OtelConfig {
        OtelConfig {
            endpoint: None,
            service_name: "switchyard".to_owned(),
            sample_ratio: 1.0,
            headers: std::collections::BTreeMap::new(),
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
