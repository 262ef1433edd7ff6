//! Usage and cost exact for every provider format: the spend record of a call holds the
//! tokens the client was told, at the deployment's price, whole or streamed.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{MASTER, parse_sse, spend_records, start_keys};

/// Input $1 and output $1,000 per million tokens: 1,000 and 1,000,000 nano-dollars a token.
fn config() -> String {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../providers/tests/fixtures/vertex/service_account.json"
    );
    let price = "        price: {input: 1, output: 1000}\n";
    format!(
        r#"
models:
  - name: openai
    deployments:
      - provider: openai_compatible
        model: "echo?tokens=9"
        api_base: "{{MOCK}}"
        api_key: k
{price}  - name: anthropic
    deployments:
      - provider: anthropic
        model: "echo?tokens=9"
        api_base: "{{MOCK}}"
        api_key: k
{price}  - name: gemini
    deployments:
      - provider: gemini
        model: "echo;tokens=9"
        api_base: "{{MOCK}}"
        api_key: k
{price}  - name: bedrock
    deployments:
      - provider: mock_bedrock
        model: "echo;tokens=9"
        api_base: "{{MOCK_ROOT}}"
{price}  - name: azure
    deployments:
      - provider: azure
        model: "echo;tokens=9"
        api_base: "{{MOCK_ROOT}}"
        api_key: azure-key
{price}  - name: vertex
    deployments:
      - provider: mock_vertex
        model: "echo;tokens=9"
        credentials_file: "{key}"
{price}"#
    )
}

#[tokio::test]
async fn every_provider_format_is_recorded_with_the_usage_the_client_saw() {
    let setup = start_keys(&config()).await;
    for provider in [
        "openai",
        "anthropic",
        "gemini",
        "bedrock",
        "azure",
        "vertex",
    ] {
        let (status, key) = setup
            .admin(
                MASTER,
                Method::POST,
                "/admin/keys",
                &json!({"alias": provider}),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        let (secret, id) = (
            key["key"].as_str().expect("secret"),
            key["id"].as_str().expect("id"),
        );
        let mut told = Vec::new();
        for stream in [false, true] {
            let response = setup
                .client
                .post(setup.url("/v1/chat/completions"))
                .bearer_auth(secret)
                .json(&json!({"model": provider, "stream": stream,
                    "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
                    "messages": [{"role": "user", "content": format!("what does {provider} charge")}]}))
                .send()
                .await
                .expect("sent");
            assert_eq!(response.status(), 200, "{provider}");
            let usage = if stream {
                let events = parse_sse(&response.text().await.expect("stream"));
                events
                    .iter()
                    .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
                    .find(|chunk| chunk["usage"].is_object())
                    .map(|chunk| chunk["usage"].clone())
                    .unwrap_or_else(|| panic!("{provider}: no usage chunk in {events:?}"))
            } else {
                response.json::<Value>().await.expect("json")["usage"].clone()
            };
            let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
            let completion = usage["completion_tokens"].as_u64().unwrap_or(0);
            assert!(
                prompt > 0 && completion == 9,
                "{provider}, stream {stream}: {usage}"
            );
            told.push((stream, prompt, completion));
        }
        let found = spend_records(&setup, id, 2).await;
        assert_eq!(found.len(), 2, "{provider}: {found:?}");
        for (record, (stream, prompt, completion)) in found.iter().zip(told) {
            assert_eq!(record.stream, stream, "{provider}");
            assert_eq!(
                (record.prompt_tokens, record.completion_tokens),
                (prompt, completion),
                "{provider}, stream {stream}"
            );
            assert!(
                !record.estimated,
                "{provider}, stream {stream}: reported, not estimated"
            );
            assert_eq!(
                record.cost_nanos,
                prompt as i64 * 1_000 + completion as i64 * 1_000_000,
                "{provider}, stream {stream}"
            );
        }
    }
}
