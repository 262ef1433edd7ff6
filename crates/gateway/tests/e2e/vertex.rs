//! Google Vertex AI upstreams: a service account's signed JWT exchanged for a token at the
//! (mock) token endpoint, then Gemini's format under the project's path.

use serde_json::{Value, json};

use super::support::{self, openai_stream_text, sse_events};

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn config() -> String {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../providers/tests/fixtures/vertex/service_account.json"
    );
    format!(
        r#"
models:
  - name: vertex
    deployments:
      - provider: mock_vertex
        model: echo
        credentials_file: "{key}"
        vertex_location: europe-west4
  - name: vertex-429
    retries: 0
    deployments:
      - provider: mock_vertex
        model: "echo;fail=429,retry_after=7"
        credentials_file: "{key}"
"#
    )
}

#[tokio::test]
async fn clients_reach_vertex_with_a_service_account_token() {
    let setup = support::start(&config()).await;
    for _ in 0..3 {
        let body: Value = setup
            .openai(&json!({"model": "vertex", "messages": user("hello vertex")}))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(
            body["choices"][0]["message"]["content"], "hello vertex",
            "{body}"
        );
    }
    let events = sse_events(
        setup
            .openai(&json!({"model": "vertex", "messages": user("one two three"), "stream": true}))
            .await,
    )
    .await;
    assert_eq!(openai_stream_text(&events), "one two three");

    setup.assert_anthropic_streamed_tool_call("vertex").await;

    let response = setup
        .openai(&json!({"model": "vertex-429", "messages": user("x")}))
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
}
