//! Shared setup: a mock provider and a gateway on ephemeral ports, and small HTTP helpers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard_gateway::audit::Audit;
use switchyard_gateway::background::Background;
use switchyard_gateway::cache::Cache;
use switchyard_gateway::config::validate;
use switchyard_gateway::governance::Governance;
use switchyard_gateway::ledger::Ledger;
use switchyard_gateway::pipeline::Hook;
use switchyard_gateway::telemetry::{Metrics, Traces};
use switchyard_gateway::{Gateway, Runtime, Shared};
use switchyard_mock::MockServer;

/// A mock provider and a gateway whose config points at it.
pub struct Setup {
    pub mock: MockServer,
    pub gateway: Gateway,
    pub client: reqwest::Client,
}

/// Starts a mock, then a gateway whose config is `models_yaml` with `{MOCK}` replaced by the
/// mock's `/v1` base URL and `{MOCK_ROOT}` by its bare address.
pub async fn start(models_yaml: &str) -> Setup {
    start_with(models_yaml, Vec::new()).await
}

/// Shared state for a test gateway, with `hooks`.
pub fn shared(hooks: Vec<Arc<dyn Hook>>) -> Arc<Shared> {
    let mut shared = Shared::new(Background::on(tokio::runtime::Handle::current()));
    shared.hooks = hooks;
    Arc::new(shared)
}

/// [`start`] with `hooks` on every call.
pub async fn start_with(models_yaml: &str, hooks: Vec<Arc<dyn Hook>>) -> Setup {
    let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock starts");
    let text = models_yaml
        .replace("{MOCK}", &format!("{}/v1", mock.base_url()))
        .replace("{MOCK_ROOT}", &mock.base_url());
    let config = validate(&text, &HashMap::<String, String>::new()).expect("valid test config");
    let mut shared = Shared::new(Background::on(tokio::runtime::Handle::current()));
    shared.hooks = hooks;
    for hook in &config.hooks {
        shared.hooks.push(Arc::new(
            switchyard_gateway::webhook::Webhook::new(hook).expect("the hook builds"),
        ));
    }
    if config.metrics.enabled {
        shared = shared.with_metrics(Arc::new(Metrics::new()));
    }
    if config.otel.endpoint.is_some() {
        let traces = Traces::start(&config.otel, &shared.background).expect("the exporter starts");
        shared = shared.with_traces(Arc::new(traces));
    }
    if Cache::wanted(&config) {
        let cache = Cache::start(&config, &shared).expect("the cache starts");
        shared = shared.with_cache(Arc::new(cache));
    }
    let shared = Arc::new(shared);
    let runtime = Runtime::build(&config, &shared)
        .await
        .expect("runtime builds");
    let gateway = Gateway::start(runtime, shared)
        .await
        .expect("gateway starts");
    let client = test_client(Duration::from_secs(5));
    Setup {
        mock,
        gateway,
        client,
    }
}

/// The audit signing key of [`start_keys`] gateways whose YAML has no `audit` section.
pub const AUDIT_KEY: &str =
    "PRIVATE+KEY+switchyard.test/audit+3fafa11e+AXHf2X892WR9j2LoaMo5t7Ce2dg0JUDaspiyFTxJbQwd";

/// Two groups on the test mock's echo model, one per dialect: `gpt` (OpenAI) and `claude`
/// (Anthropic).
pub const ECHO_MODELS: &str = r#"
models:
  - name: gpt
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
  - name: claude
    deployments:
      - provider: anthropic
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
"#;

/// The master key of [`start_keys`] gateways.
pub const MASTER: &str = "sy-master-key-for-tests-0123456789";

/// A gateway that requires keys (master key [`MASTER`]), its store in memory unless the YAML
/// names one; `models_yaml` as for [`start`].
pub async fn start_keys(models_yaml: &str) -> Setup {
    let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock starts");
    let mut text = models_yaml
        .replace("{MOCK}", &format!("{}/v1", mock.base_url()))
        .replace("{MOCK_ROOT}", &mock.base_url());
    if !text.contains("\nauth:") {
        text.push_str(&format!("\nauth:\n  master_key: {MASTER}\n"));
    }
    if !text.contains("\nstore:") {
        text.push_str("store:\n  url: \"sqlite::memory:\"\n");
    }
    if !text.contains("\naudit:") {
        // One key for every test instance, so that none makes a key file of its own.
        text.push_str(&format!("audit:\n  signing_key: \"{AUDIT_KEY}\"\n"));
    }
    let config = validate(&text, &HashMap::<String, String>::new()).expect("valid test config");
    let background = Background::on(tokio::runtime::Handle::current());
    let governance = Governance::open(&config, background.clone())
        .await
        .expect("store opens");
    let mut shared = Shared::new(background.clone());
    if config.ledger.enabled {
        shared = shared.with_ledger(Arc::new(Ledger::start(
            governance.store().clone(),
            &config,
            &background,
            governance.redis(),
        )));
    }
    if config.audit.enabled {
        let (signer, _) = switchyard_gateway::audit::signing_key(&config).expect("audit key");
        shared = shared.with_audit(Arc::new(Audit::start(
            governance.store().clone(),
            &config,
            &background,
            signer,
        )));
    }
    if config.metrics.enabled {
        shared = shared.with_metrics(Arc::new(Metrics::new()));
    }
    if config.otel.endpoint.is_some() {
        let traces = Traces::start(&config.otel, &background).expect("the exporter starts");
        shared = shared.with_traces(Arc::new(traces));
    }
    if Cache::wanted(&config) {
        let cache = Cache::start(&config, &shared).expect("the cache starts");
        shared = shared.with_cache(Arc::new(cache));
    }
    let shared = Arc::new(shared.with_governance(Arc::new(governance)));
    let runtime = Runtime::build(&config, &shared)
        .await
        .expect("runtime builds");
    let gateway = Gateway::start(runtime, shared)
        .await
        .expect("gateway starts");
    Setup {
        mock,
        gateway,
        client: test_client(Duration::from_secs(5)),
    }
}

/// A gateway with both dialects of the test mock and the fault models the tests use:
/// `gpt-fail-X` and `claude-fail-X` answer with the mock's fault `X`.
pub async fn standard() -> Setup {
    let mut yaml = STANDARD.to_owned();
    for fault in FAULTS {
        for (prefix, provider) in [("gpt", "openai_compatible"), ("claude", "anthropic")] {
            yaml.push_str(&format!(
                "  - name: {prefix}-fail-{fault}\n    retries: 0\n    deployments:\n      - provider: {provider}\n        model: \"echo?fail={fault}&retry_after=7&cut_after=3&chunk_delay_ms=5\"\n        api_base: \"{{MOCK}}\"\n        api_key: test-key\n"
            ));
        }
    }
    start(&yaml).await
}

/// The mock faults the standard setup has models for.
pub const FAULTS: &[&str] = &[
    "400",
    "401",
    "429",
    "500",
    "503",
    "529",
    "reset",
    "cut",
    "malformed",
];

pub const STANDARD: &str = r#"
server:
  body_limit_bytes: 65536
  shutdown_grace_secs: 5
routing:
  cooldown_secs: 0
models:
  - name: gpt
    aliases: [gpt-alias]
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
  - name: claude
    deployments:
      - provider: anthropic
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
  - name: gemini
    deployments:
      - provider: gemini
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
  - name: gemini-429
    retries: 0
    deployments:
      - provider: gemini
        model: "echo;fail=429,retry_after=7"
        api_base: "{MOCK}"
        api_key: test-key
  - name: gemini-safety
    deployments:
      - provider: gemini
        model: "echo;fail=safety"
        api_base: "{MOCK}"
        api_key: test-key
  - name: gemini-blocked
    deployments:
      - provider: gemini
        model: "echo;fail=blocked"
        api_base: "{MOCK}"
        api_key: test-key
  - name: gpt-request-echo
    deployments:
      - provider: openai_compatible
        model: "echo?echo=request"
        api_base: "{MOCK}"
        api_key: test-key
  - name: claude-request-echo
    deployments:
      - provider: anthropic
        model: "echo?echo=request"
        api_base: "{MOCK}"
        api_key: test-key
  - name: gpt-slow
    deployments:
      - provider: openai_compatible
        model: "echo?tokens=50&chunk_delay_ms=40"
        api_base: "{MOCK}"
        api_key: test-key
  - name: gpt-hang
    retries: 0
    deployments:
      - provider: openai_compatible
        model: "echo?fail=hang"
        api_base: "{MOCK}"
        api_key: test-key
        timeout_secs: 0.5
  - name: claude-hang
    retries: 0
    deployments:
      - provider: anthropic
        model: "echo?fail=hang"
        api_base: "{MOCK}"
        api_key: test-key
        timeout_secs: 0.5
  - name: unreachable
    retries: 0
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "http://127.0.0.1:9/v1"
  - name: claude-unreachable
    retries: 0
    deployments:
      - provider: anthropic
        model: echo
        api_base: "http://127.0.0.1:9/v1"
        api_key: test-key
  - name: gpt-bad-key
    retries: 0
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: invalid
"#;

impl Setup {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.base_url())
    }

    /// Calls the admin API with `key`: `method` on `path`, with a JSON body unless `Null`.
    /// Returns the status and the JSON answer.
    pub async fn admin(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(key);
        if !body.is_null() {
            request = request.json(body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A chat call in `format` (`openai` or `anthropic`) with `key`, as each SDK sends it.
    pub async fn chat_as(&self, key: &str, format: &str, model: &str) -> (u16, Value) {
        let body = serde_json::json!({
            "model": model,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hello"}],
        });
        let request = if format == "anthropic" {
            self.client
                .post(self.url("/v1/messages"))
                .header("x-api-key", key)
                .header("anthropic-version", "2023-06-01")
        } else {
            self.client
                .post(self.url("/v1/chat/completions"))
                .bearer_auth(key)
        };
        let response = request.json(&body).send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GETs a path of the gateway.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs JSON to an OpenAI route.
    pub async fn openai(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .bearer_auth("sk-anything")
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs JSON to an OpenAI route with one more request header (`x-switchyard-*`).
    /// POSTs an OpenAI chat request and reads its whole answer as JSON.
    pub async fn openai_json(&self, body: &Value) -> Value {
        self.openai(body).await.json().await.expect("json")
    }

    pub async fn openai_with(&self, header: (&str, &str), body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .bearer_auth("sk-anything")
            .header(header.0, header.1)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs JSON to the Anthropic route.
    pub async fn anthropic(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/messages"))
            .header("x-api-key", "sk-anything")
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .expect("request sent")
    }
}

/// Reads a whole SSE body into `(event name, data)` pairs.
pub async fn sse_events(response: reqwest::Response) -> Vec<(Option<String>, String)> {
    let text = response.text().await.unwrap_or_default();
    parse_sse(&text)
}

pub fn parse_sse(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            (event, data)
        })
        .collect()
}

/// The text of an OpenAI stream's content deltas, concatenated.
pub fn openai_stream_text(events: &[(Option<String>, String)]) -> String {
    events
        .iter()
        .filter(|(_, data)| data != "[DONE]")
        .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// An Anthropic stream's tool-call arguments (the `input_json_delta` pieces, joined) and its
/// stop reason.
/// An OpenAI stream's text and its last finish reason.
pub fn openai_stream_text_and_finish(body: &str) -> (String, String) {
    let events = parse_sse(body);
    let finish = events
        .iter()
        .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["finish_reason"]
                .as_str()
                .map(str::to_owned)
        })
        .next_back()
        .unwrap_or_default();
    (openai_stream_text(&events), finish)
}

pub fn anthropic_tool_arguments(events: &[(Option<String>, String)]) -> (String, Value) {
    let mut arguments = String::new();
    let mut stop_reason = Value::Null;
    for (name, data) in events {
        let event: Value = serde_json::from_str(data).expect("json");
        match name.as_deref() {
            Some("content_block_delta") if event["delta"]["type"] == "input_json_delta" => {
                arguments.push_str(event["delta"]["partial_json"].as_str().unwrap_or_default());
            }
            Some("message_delta") => stop_reason = event["delta"]["stop_reason"].clone(),
            _ => {}
        }
    }
    (arguments, stop_reason)
}

impl Setup {
    /// An Anthropic client streams a weather question with a `get_weather` tool to `model`:
    /// the answer must be a `tool_use` stop with arguments `{"city": "mock"}`.
    pub async fn assert_anthropic_streamed_tool_call(&self, model: &str) {
        let events = sse_events(
            self.anthropic(&serde_json::json!({
                "model": model,
                "max_tokens": 100,
                "stream": true,
                "messages": [{"role": "user", "content": "weather?"}],
                "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
            }))
            .await,
        )
        .await;
        let (arguments, stop_reason) = anthropic_tool_arguments(&events);
        assert_eq!(stop_reason, "tool_use", "{model}: {events:?}");
        assert_eq!(
            serde_json::from_str::<Value>(&arguments).expect("json"),
            serde_json::json!({"city": "mock"}),
            "{model}"
        );
    }
}

/// A plain HTTP client for calling the gateway as a user would (reqwest needs a rustls
/// provider installed even when it never opens a TLS connection).
pub fn test_client(connect_timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .build()
        .expect("client")
}

/// The spend records of `key_id` in `setup`'s store, once `count` of them are written (the
/// ledger's queue writes in the background; after ten seconds, whatever is there).
pub async fn spend_records(
    setup: &Setup,
    key_id: &str,
    count: usize,
) -> Vec<switchyard_store::SpendRecord> {
    let ledger = setup.gateway.shared().ledger.clone().expect("a ledger");
    let query = switchyard_store::SpendQuery {
        key_id: Some(key_id.to_owned()),
        ..switchyard_store::SpendQuery::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = ledger.store().spend_records(&query).await.expect("records");
        if found.len() >= count || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The local model `scripts/fetch-models` fetches, when it is there.
#[cfg(feature = "semantic-cache")]
pub fn model_dir() -> Option<String> {
    let folder = std::env::var("SWITCHYARD_TEST_MODEL_DIR").map_or_else(
        |_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../.cache/models/all-minilm-l6-v2")
        },
        std::path::PathBuf::from,
    );
    if folder.join("model.safetensors").exists() {
        Some(folder.display().to_string())
    } else {
        eprintln!(
            "skipped: no model in {} (scripts/fetch-models)",
            folder.display()
        );
        None
    }
}
