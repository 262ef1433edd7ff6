//! The runtime built from a validated config: the upstream HTTP client, model groups with
//! their deployments, and the in-process mock provider when the config uses it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use switchyard_mock::MockServer;
use switchyard_providers::openai::compat;
use switchyard_providers::{Provider, Upstream};

use crate::config::{ConfigFile, DeploymentConfig};
use crate::router::{Deployment, ModelGroup};

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
}

/// Everything the request path reads: built once, shared by every request.
#[derive(Debug)]
pub struct Runtime {
    /// Listener and limits.
    pub server: ServerSettings,
    /// The shared upstream client.
    pub client: switchyard_providers::http::Client,
    /// Model groups in config order.
    pub groups: Vec<Arc<ModelGroup>>,
    /// Lookup by name and alias.
    by_name: HashMap<String, Arc<ModelGroup>>,
    /// Kept alive while the runtime is: `mock` deployments point at it.
    _mock: Option<MockServer>,
}

impl Runtime {
    /// Opens the client (and the mock provider if needed) for a validated config.
    pub async fn build(config: &ConfigFile) -> Result<Runtime, BuildError> {
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
        let mock_base = mock.as_ref().map(|mock| format!("{}/v1", mock.base_url()));
        let mut groups = Vec::with_capacity(config.models.len());
        let mut by_name = HashMap::new();
        for model in &config.models {
            let deployments = model
                .deployments
                .iter()
                .map(|deployment| build_deployment(deployment, mock_base.as_deref()))
                .collect::<Result<_, _>>()?;
            let group = Arc::new(ModelGroup::new(model.name.clone(), deployments));
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
            },
            client,
            groups,
            by_name,
            _mock: mock,
        })
    }

    /// The model group a client's `model` names.
    pub fn group(&self, name: &str) -> Option<&Arc<ModelGroup>> {
        self.by_name.get(name)
    }
}

fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::from_secs(600))
}

fn build_deployment(
    config: &DeploymentConfig,
    mock_base: Option<&str>,
) -> Result<Deployment, BuildError> {
    let provider = match config.provider.as_str() {
        "anthropic" | "mock_anthropic" => Provider::Anthropic,
        _ => Provider::OpenAi,
    };
    let default_base = match config.provider.as_str() {
        "anthropic" => "https://api.anthropic.com/v1",
        "mock" | "mock_anthropic" => mock_base.unwrap_or("http://127.0.0.1:4010/v1"),
        other => compat::preset(other).map_or("", |preset| preset.api_base),
    };
    let base = config
        .api_base
        .as_deref()
        .unwrap_or(default_base)
        .trim_end_matches('/');
    // The mock checks that a key is present, as the real providers do.
    let api_key = match (&config.api_key, config.provider.starts_with("mock")) {
        (Some(key), _) => Some(SecretString::from(key.clone())),
        (None, true) => Some(SecretString::from("mock-key".to_owned())),
        (None, false) => None,
    };
    let url = format!("{base}{}", provider.chat_path());
    let url = url
        .parse()
        .map_err(|_| BuildError::Endpoint(format!("{}: not a URL: {url}", config.model)))?;
    let upstream = Upstream::new(
        provider,
        url,
        config.model.clone(),
        api_key,
        secs(config.timeout_secs),
    )
    .map_err(|_| {
        BuildError::Endpoint(format!(
            "{}: the API key is not a valid header value",
            config.model
        ))
    })?;
    Ok(Deployment {
        label: format!("{}/{}", config.provider, config.model),
        upstream,
    })
}
