//! The config file's shape. Every struct rejects unknown keys; every default is written out in
//! its `Default` impl and shown in the README.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Listener and limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Model groups clients can ask for.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
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
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: "127.0.0.1:4000".to_owned(),
            body_limit_bytes: 32 * 1024 * 1024,
            shutdown_grace_secs: 30.0,
            connect_timeout_secs: 10.0,
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
}

/// One upstream endpoint of a model group.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// `openai`, `anthropic`, an OpenAI-compatible preset (`groq`, `mistral`, `deepseek`,
    /// `together`, `openrouter`, `vllm`, `ollama`), `openai_compatible` (needs `api_base`),
    /// or `mock` / `mock_anthropic` (the built-in mock provider, run in-process).
    pub provider: String,
    /// The model name the upstream knows.
    pub model: String,
    /// The API base URL (for OpenAI-compatible servers, up to and including `/v1`).
    #[serde(default)]
    pub api_base: Option<String>,
    /// The provider key; use `${ENV_VAR}` to read it from the environment.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Total time for a call; for streams, time to first byte and between chunks.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: f64,
}

/// The default upstream timeout: long generations take minutes.
pub fn default_timeout_secs() -> f64 {
    600.0
}
