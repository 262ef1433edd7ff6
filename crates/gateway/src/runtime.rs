//! The runtime built from a validated config: the upstream HTTP client, model groups with
//! their deployments, and the in-process mock provider when the config uses it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use switchyard_ledger::{Cost, Price, PriceTable};
use switchyard_mock::MockServer;
use switchyard_providers::openai::compat;
use switchyard_providers::{Caps, Provider, Timeouts, Upstream};
use switchyard_types::Usage;

use crate::background::Background;
use crate::config::file::{AzureAuth, Secret};
use crate::config::{ConfigFile, DeploymentConfig};
use crate::router::fleet::{Fleet, Remote};
use crate::router::health::{CooldownPolicy, Health};
use crate::router::{Deployment, ModelGroup};
use crate::shared::Shared;

/// Why a runtime could not be built from a valid config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The upstream HTTP client could not be created.
    #[error("cannot create the HTTP client: {0}")]
    Client(#[from] switchyard_providers::http::ClientError),
    /// A deployment's URL or key cannot be used (validation checks most; this is the rest).
    #[error("deployment {0}")]
    Endpoint(String),
    /// The in-process mock provider could not start.
    #[error("cannot start the built-in mock provider: {0}")]
    Mock(std::io::Error),
    /// The guards could not be built (validation checks this first).
    #[error("guards: {0}")]
    Guards(String),
}

/// Server settings in runtime form.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// Drain time on shutdown.
    pub shutdown_grace: Duration,
    /// Time to send a request's headers (also the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// Time to send a request's body.
    pub body_read_timeout: Duration,
    /// Request bodies held at once, for the whole process.
    pub max_body_bytes_in_flight: u64,
    /// Open client connections at once, for the whole process.
    pub max_connections: usize,
    /// Largest request head buffered per connection.
    pub max_header_bytes: usize,
    /// HTTP/2 keep-alive ping interval and timeout.
    pub http2_keep_alive: Duration,
}

/// Retry and time-limit settings in runtime form.
#[derive(Debug, Clone, Copy)]
pub struct RoutingSettings {
    /// First retry delay (doubles per retry, full jitter).
    pub backoff: Duration,
    /// Largest retry delay.
    pub backoff_max: Duration,
    /// Largest time limit a caller may ask for.
    pub max_timeout: Duration,
}

/// The health of every deployment, by a key that survives config reloads, shared by all
/// worker threads and, through Redis when configured, by every gateway instance.
#[derive(Debug, Default)]
pub struct HealthRegistry {
    by_key: std::sync::Mutex<HashMap<String, Arc<Health>>>,
    /// Cooldowns learned from other instances.
    pub(crate) remote: Remote,
    fleet: std::sync::OnceLock<Fleet>,
}

impl HealthRegistry {
    /// The health of the deployment called `key`, made on first use with `policy` (and any
    /// cooldown another instance has running on it).
    fn get(&self, key: String, policy: CooldownPolicy) -> Arc<Health> {
        let mut by_key = self
            .by_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let remote = self.remote.until(&key);
        Arc::clone(by_key.entry(key).or_insert_with(|| {
            let health = Arc::new(Health::new(policy));
            if let Some(until) = remote {
                health.open_until(until);
            }
            health
        }))
    }

    /// The health of `key`, if a deployment of that key was built.
    pub(crate) fn existing(&self, key: &str) -> Option<Arc<Health>> {
        self.by_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Shares cooldowns with the other instances through Redis at `url`; the tasks doing it
    /// are `background` work.
    pub async fn connect_redis(
        self: &Arc<HealthRegistry>,
        url: &str,
        prefix: &str,
        background: &Background,
    ) -> Result<(), redis::RedisError> {
        let fleet = Fleet::connect(url, prefix, Arc::downgrade(self), background).await?;
        let _ = self.fleet.set(fleet);
        Ok(())
    }

    /// Tells the other instances that deployment `key` cools down until `until`.
    pub fn share_cooldown(&self, key: &str, until: tokio::time::Instant) {
        if let Some(fleet) = self.fleet.get() {
            fleet.share(key, until);
        }
    }
}

/// Everything the request path reads: built once, shared by every request.
#[derive(Debug)]
pub struct Runtime {
    /// Listener and limits.
    pub server: ServerSettings,
    /// Retries and time limits.
    pub routing: RoutingSettings,
    /// Deployment health, shared with the other workers (and instances).
    pub health: Arc<HealthRegistry>,
    /// The shared upstream client.
    pub client: switchyard_providers::http::Client,
    /// Model groups in config order.
    pub groups: Vec<Arc<ModelGroup>>,
    /// The smallest `max_input_tokens` of any deployment: a prompt whose byte length is
    /// above it is counted (off the worker) before routing.
    pub smallest_input_limit: Option<u64>,
    /// The guards on requests (`None`: all off).
    pub guards: Option<Arc<crate::guards::Guards>>,
    /// The named guard policies (`None`: a policy with every guard off).
    pub guard_policies: HashMap<String, Option<Arc<crate::guards::Guards>>>,
    /// Lookup by name and alias.
    by_name: HashMap<String, Arc<ModelGroup>>,
    /// Kept alive while the runtime is: `mock` deployments point at it.
    _mock: Option<MockServer>,
}

impl Runtime {
    /// Opens the client (and the mock provider if needed) for a validated config; deployment
    /// health comes from (and stays in) `shared`.
    pub async fn build(config: &ConfigFile, shared: &Shared) -> Result<Runtime, BuildError> {
        let health = &shared.health;
        let routing = &config.routing;
        let policy = CooldownPolicy {
            failures: routing.cooldown_failures,
            window: secs(routing.cooldown_window_secs),
            cooldown: secs(routing.cooldown_secs),
        };
        let client = switchyard_providers::http::client(secs(config.server.connect_timeout_secs))?;
        let uses_mock = config.models.iter().any(|model| {
            model
                .deployments
                .iter()
                .any(|deployment| deployment.provider.starts_with("mock"))
        });
        let mock = if uses_mock {
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            Some(
                MockServer::start(loopback)
                    .await
                    .map_err(BuildError::Mock)?,
            )
        } else {
            None
        };
        let mock_base = mock.as_ref().map(MockServer::base_url);
        let smallest_input_limit = config
            .models
            .iter()
            .flat_map(|model| &model.deployments)
            .filter_map(|deployment| deployment.max_input_tokens)
            .min();
        if smallest_input_limit.is_some() {
            crate::tokens::warm();
        }
        let caps = Caps {
            body: usize::try_from(config.server.upstream_body_limit_bytes).unwrap_or(usize::MAX),
            event: usize::try_from(config.server.upstream_event_limit_bytes).unwrap_or(usize::MAX),
        };
        let mut groups = Vec::with_capacity(config.models.len());
        let mut by_name = HashMap::new();
        for model in &config.models {
            let deployments = model
                .deployments
                .iter()
                .map(|deployment| {
                    let key = format!(
                        "{}|{}|{}|{}",
                        model.name,
                        deployment.provider,
                        deployment.model,
                        deployment.api_base.as_deref().unwrap_or_default()
                    );
                    build_deployment(deployment, mock_base.as_deref(), key, policy, health, caps)
                })
                .collect::<Result<_, _>>()?;
            let group = Arc::new(ModelGroup {
                name: model.name.clone(),
                label: Arc::new(model.name.clone()),
                aliases: model.aliases.clone(),
                deployments,
                strategy: model.strategy,
                retries: model.retries,
                fallbacks: model.fallbacks.clone(),
                context_window_fallbacks: model.context_window_fallbacks.clone(),
                content_policy_fallbacks: model.content_policy_fallbacks.clone(),
                health_check_interval: model.health_check_interval_secs.map(secs),
                guard_policy: model.guard_policy.clone(),
                cache: model.cache,
            });
            for name in std::iter::once(&model.name).chain(&model.aliases) {
                by_name.insert(name.clone(), Arc::clone(&group));
            }
            groups.push(group);
        }
        Ok(Runtime {
            server: ServerSettings {
                listen: config
                    .server
                    .listen
                    .parse()
                    .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4000))),
                body_limit: usize::try_from(config.server.body_limit_bytes).unwrap_or(usize::MAX),
                shutdown_grace: secs(config.server.shutdown_grace_secs),
                header_read_timeout: secs(config.server.header_read_timeout_secs),
                body_read_timeout: secs(config.server.body_read_timeout_secs),
                max_body_bytes_in_flight: config.server.max_body_bytes_in_flight,
                max_connections: config.server.max_connections,
                max_header_bytes: config.server.max_header_bytes,
                http2_keep_alive: secs(config.server.http2_keep_alive_secs),
            },
            routing: RoutingSettings {
                backoff: Duration::from_millis(routing.retry_backoff_ms),
                backoff_max: Duration::from_millis(routing.retry_backoff_max_ms),
                max_timeout: secs(routing.max_timeout_secs),
            },
            client,
            health: Arc::clone(health),
            groups,
            smallest_input_limit,
            guard_policies: config
                .guards
                .policies
                .iter()
                .map(|(name, policy)| {
                    crate::guards::Guards::build(policy)
                        .map(|guards| (name.clone(), guards.map(Arc::new)))
                        .map_err(|problems| BuildError::Guards(format!("{name}: {problems:?}")))
                })
                .collect::<Result<_, _>>()?,
            guards: crate::guards::Guards::build(&config.guards)
                .map_err(|problems| {
                    BuildError::Guards(
                        problems
                            .into_iter()
                            .map(|(path, message)| format!("{path}: {message}"))
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                })?
                .map(Arc::new),
            by_name,
            _mock: mock,
        })
    }

    /// The model group a client's `model` names.
    pub fn group(&self, name: &str) -> Option<&Arc<ModelGroup>> {
        self.by_name.get(name)
    }
}

/// A Vertex deployment's service account (its key file read and checked now, so a bad key
/// stops the start) and API base; `mock_vertex` talks to the mock's token endpoint and routes.
fn vertex_account(
    config: &DeploymentConfig,
    mock_base: &str,
) -> Result<(switchyard_providers::vertex::ServiceAccount, String), BuildError> {
    use switchyard_providers::vertex;
    let fail = |what: String| BuildError::Endpoint(format!("{}: {what}", config.model));
    let path = config.credentials_file.as_deref().unwrap_or_default();
    let text = std::fs::read_to_string(path)
        .map_err(|error| fail(format!("cannot read credentials_file {path}: {error}")))?;
    let mut account = vertex::ServiceAccount::from_json(&text)
        .map_err(|error| fail(format!("credentials_file {path}: {error}")))?;
    let mock = config.provider == "mock_vertex";
    let token_uri = match (&config.token_uri, mock) {
        (Some(uri), _) => Some(uri.clone()),
        (None, true) => Some(format!("{mock_base}/token")),
        (None, false) => None,
    };
    if let Some(uri) = token_uri {
        account = account
            .with_token_uri(&uri)
            .map_err(|error| fail(format!("token_uri: {error}")))?;
    }
    let project = config
        .vertex_project
        .clone()
        .unwrap_or_else(|| account.project_id().to_owned());
    let location = config
        .vertex_location
        .clone()
        .unwrap_or_else(|| "us-central1".to_owned());
    let base = if mock {
        format!("{mock_base}{}", vertex::resource_path(&project, &location))
    } else {
        vertex::api_base(&project, &location)
    };
    Ok((account, base))
}

/// The region and credentials a Bedrock deployment signs with: from its config, else the
/// standard AWS environment variables; the mock's fixed test credentials for `mock_bedrock`.
fn aws_signing(
    config: &DeploymentConfig,
) -> Result<(String, switchyard_providers::bedrock::sign::Credentials), BuildError> {
    use switchyard_providers::bedrock::sign::Credentials;
    if config.provider == "mock_bedrock" {
        return Ok((
            "us-east-1".to_owned(),
            Credentials {
                access_key_id: "AKIDMOCK".to_owned(),
                secret_access_key: SecretString::from("mock-secret".to_owned()),
                session_token: None,
            },
        ));
    }
    let region = config
        .aws_region
        .clone()
        .unwrap_or_else(|| "us-east-1".to_owned());
    let credentials = match (&config.aws_access_key_id, &config.aws_secret_access_key) {
        (Some(id), Some(secret)) => Some(Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.to_secret_string(),
            session_token: config
                .aws_session_token
                .as_ref()
                .filter(|token| !token.expose().is_empty())
                .map(Secret::to_secret_string),
        }),
        _ => Credentials::from_env(|name| std::env::var(name).ok()),
    };
    let credentials = credentials.ok_or_else(|| {
        BuildError::Endpoint(format!(
            "{}: no AWS credentials (set aws_access_key_id and aws_secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            config.model
        ))
    })?;
    Ok((region, credentials))
}

fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::from_secs(600))
}

fn build_deployment(
    config: &DeploymentConfig,
    mock_base: Option<&str>,
    key: String,
    policy: CooldownPolicy,
    registry: &HealthRegistry,
    caps: Caps,
) -> Result<Deployment, BuildError> {
    let health = registry.get(key.clone(), policy);
    let provider = match config.provider.as_str() {
        "anthropic" | "mock_anthropic" => Provider::Anthropic,
        "gemini" | "mock_gemini" => Provider::Gemini,
        "bedrock" | "mock_bedrock" => Provider::Bedrock,
        "vertex" | "mock_vertex" => Provider::Vertex,
        "azure" | "mock_azure" => Provider::Azure {
            bearer: config.auth == Some(AzureAuth::Bearer),
        },
        _ => Provider::OpenAi,
    };
    let mock_base = mock_base.unwrap_or("http://127.0.0.1:4010");
    let default_base = match config.provider.as_str() {
        "anthropic" => "https://api.anthropic.com/v1".to_owned(),
        "gemini" => "https://generativelanguage.googleapis.com/v1beta".to_owned(),
        "mock" | "mock_anthropic" => format!("{mock_base}/v1"),
        "mock_gemini" => format!("{mock_base}/v1beta"),
        "mock_azure" | "mock_bedrock" => mock_base.to_owned(),
        "bedrock" => switchyard_providers::bedrock::endpoint(
            config.aws_region.as_deref().unwrap_or("us-east-1"),
        ),
        other => {
            compat::preset(other).map_or_else(String::new, |preset| preset.api_base.to_owned())
        }
    };
    let vertex = match provider {
        Provider::Vertex => Some(vertex_account(config, mock_base)?),
        _ => None,
    };
    let default_base = match &vertex {
        Some((_, base)) => base.clone(),
        None => default_base,
    };
    let base = config.api_base.as_deref().unwrap_or(&default_base);
    // The mock checks that a key is present, as the real providers do.
    let api_key = match (&config.api_key, config.provider.starts_with("mock")) {
        (Some(key), _) => Some(key.to_secret_string()),
        (None, true) => Some(SecretString::from("mock-key".to_owned())),
        (None, false) => None,
    };
    let total = secs(config.timeout_secs);
    let timeouts = Timeouts {
        total,
        first_byte: config.ttft_timeout_secs.map_or(total, secs),
    };
    let upstream = Upstream::new(
        provider,
        base,
        config.model.clone(),
        api_key,
        timeouts,
        config.api_version.as_deref(),
    )
    .map_err(|error| BuildError::Endpoint(format!("{}: {error}", config.model)))?
    .with_headroom(Arc::clone(&health.headroom))
    .with_caps(caps)
    .with_quirks(compat::quirks(&config.provider));
    let upstream = match (provider, vertex) {
        (Provider::Bedrock, _) => {
            let (region, credentials) = aws_signing(config)?;
            upstream.with_aws(region, credentials)
        }
        (Provider::Vertex, Some((account, _))) => upstream.with_google(Arc::new(
            switchyard_providers::vertex::TokenSource::new(account),
        )),
        _ => upstream,
    };
    let price = Arc::new(price_of(config));
    if !price.is_priced() && !config.provider.starts_with("mock") && !local(&config.provider) {
        tracing::warn!(
            deployment = %format!("{}/{}", config.provider, config.model),
            "No price for this deployment in the shipped table: its calls are recorded at $0 \
             (set `price` or `base_model` on it)"
        );
    }
    // The cost strategy compares a call of 1,000 input and 500 output tokens.
    let cost = Cost::of(
        &price,
        &Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            ..Usage::default()
        },
        0,
    )
    .total
    .nanos() as f64;
    let client = match config.connect_timeout_secs {
        Some(connect) => Some(switchyard_providers::http::client(secs(connect))?),
        None => None,
    };
    Ok(Deployment {
        label: crate::router::Label::new(&format!("{}/{}", config.provider, config.model)),
        client,
        provider: config.provider.clone(),
        key,
        upstream,
        weight: config.weight,
        priority: config.priority,
        max_input_tokens: config.max_input_tokens,
        allow_client_key: config.allow_client_key,
        cost,
        price,
        genai_provider: genai_provider(&config.provider),
        health,
    })
}

/// A config provider's name as the GenAI semantic conventions have it
/// (`gen_ai.provider.name`); OpenAI-compatible servers speak OpenAI's API.
fn genai_provider(provider: &str) -> &'static str {
    match provider {
        "anthropic" | "mock_anthropic" => "anthropic",
        "azure" | "mock_azure" => "azure.ai.openai",
        "bedrock" | "mock_bedrock" => "aws.bedrock",
        "gemini" | "mock_gemini" => "gcp.gemini",
        "vertex" | "mock_vertex" => "gcp.vertex_ai",
        "groq" => "groq",
        "mistral" => "mistral_ai",
        "deepseek" => "deepseek",
        "xai" => "x_ai",
        "perplexity" => "perplexity",
        "together" => "together",
        "openrouter" => "openrouter",
        "fireworks" => "fireworks",
        "cerebras" => "cerebras",
        _ => "openai",
    }
}

/// Whether `provider` runs on the user's own machines (its calls cost nothing by default).
fn local(provider: &str) -> bool {
    matches!(provider, "vllm" | "ollama" | "lmstudio")
}

/// A deployment's prices: the shipped table's for its model (or `base_model`), with the
/// config's own over them.
fn price_of(config: &DeploymentConfig) -> Price {
    let model = config.base_model.as_deref().unwrap_or(&config.model);
    let table = PriceTable::shipped()
        .get(&config.provider, model)
        .cloned()
        .unwrap_or_default();
    let mut own = config.price.clone().unwrap_or_default();
    own.input = own.input.or(config.input_cost_per_mtok);
    own.output = own.output.or(config.output_cost_per_mtok);
    table.overlaid(&own)
}
