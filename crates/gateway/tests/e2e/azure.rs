//! Azure OpenAI upstreams: deployment URLs with `api-version`, `api-key` or Entra ID bearer
//! auth, the v1 API, and Azure's content filter (the mock plays Azure).

use serde_json::{Value, json};

use super::support::{self, sse_events};

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

const AZURE: &str = r#"
models:
  - name: azure
    deployments:
      - provider: azure
        model: my-gpt4o
        api_base: "{MOCK_ROOT}"
        api_key: azure-key
  - name: azure-bearer
    deployments:
      - provider: azure
        model: my-gpt4o
        api_base: "{MOCK_ROOT}"
        api_key: entra-token
        auth: bearer
        api_version: "2025-04-01-preview"
  - name: azure-v1
    deployments:
      - provider: azure
        model: my-gpt4o
        api_base: "{MOCK_ROOT}"
        api_key: azure-key
        api_version: v1
  - name: azure-filtered
    retries: 0
    content_policy_fallbacks: [lenient]
    deployments:
      - provider: azure
        model: "strict;fail=content_filter"
        api_base: "{MOCK_ROOT}"
        api_key: azure-key
  - name: lenient
    deployments:
      - provider: anthropic
        model: echo
        api_base: "{MOCK}"
        api_key: k
"#;

#[tokio::test]
async fn openai_clients_get_azure_answers_with_their_filter_results() {
    let setup = support::start(AZURE).await;
    for model in ["azure", "azure-bearer", "azure-v1"] {
        let response = setup
            .openai(&json!({"model": model, "messages": user("hello azure")}))
            .await;
        assert_eq!(response.status(), 200, "{model}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body["choices"][0]["message"]["content"], "hello azure",
            "{model}"
        );
        assert_eq!(
            body["choices"][0]["content_filter_results"]["hate"]["filtered"], false,
            "{model}: Azure's annotations reach an OpenAI client"
        );
    }
}

#[tokio::test]
async fn anthropic_clients_stream_from_azure() {
    let setup = support::start(AZURE).await;
    let events = sse_events(
        setup
            .anthropic(&json!({"model": "azure", "max_tokens": 50, "stream": true, "messages": user("via azure")}))
            .await,
    )
    .await;
    let text: String = events
        .iter()
        .filter(|(name, _)| name.as_deref() == Some("content_block_delta"))
        .map(|(_, data)| {
            let event: Value = serde_json::from_str(data).expect("json");
            event["delta"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "via azure");
}

#[tokio::test]
async fn azures_content_filter_is_a_400_or_a_content_policy_fallback() {
    let setup = support::start(AZURE).await;
    let response = setup
        .openai_with(
            ("x-switchyard-fallbacks", "off"),
            &json!({"model": "azure-filtered", "messages": user("x")}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "content_filter");

    let response = setup
        .openai(&json!({"model": "azure-filtered", "messages": user("try elsewhere")}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-fallback"], "lenient");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "try elsewhere");
}
