//! OpenAI and Anthropic clients reaching AWS Bedrock (the mock plays Bedrock and checks the
//! SigV4 signature of every request it gets).

use serde_json::{Value, json};

use super::support::{self, openai_stream_text, sse_events};

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

const BEDROCK: &str = r#"
models:
  - name: claude-bedrock
    deployments:
      - provider: mock_bedrock
        model: "anthropic.claude-3-5-sonnet-20240620-v1:0"
        api_base: "{MOCK_ROOT}"
  - name: bedrock-wrong-key
    retries: 0
    deployments:
      - provider: bedrock
        model: "anthropic.claude-3-5-sonnet-20240620-v1:0"
        api_base: "{MOCK_ROOT}"
        aws_region: us-east-1
        aws_access_key_id: AKIDMOCK
        aws_secret_access_key: not-the-secret
  - name: bedrock-exception
    retries: 0
    deployments:
      - provider: mock_bedrock
        model: "echo;fail=stream_exception,cut_after=3"
        api_base: "{MOCK_ROOT}"
  - name: bedrock-throttled
    retries: 0
    deployments:
      - provider: mock_bedrock
        model: "echo;fail=429,retry_after=7"
        api_base: "{MOCK_ROOT}"
"#;

#[tokio::test]
async fn signed_calls_reach_bedrock_from_both_dialects() {
    let setup = support::start(BEDROCK).await;
    let body: Value = setup
        .openai(&json!({"model": "claude-bedrock", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello bedrock"}]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["choices"][0]["message"]["content"], "hello bedrock",
        "{body}"
    );
    assert!(body["usage"]["prompt_tokens"].as_u64().expect("count") > 0);

    let events = sse_events(
        setup
            .openai(&json!({"model": "claude-bedrock", "messages": user("one two three"), "stream": true, "stream_options": {"include_usage": true}}))
            .await,
    )
    .await;
    assert_eq!(openai_stream_text(&events), "one two three");

    setup
        .assert_anthropic_streamed_tool_call("claude-bedrock")
        .await;
}

#[tokio::test]
async fn bedrock_refusals_reach_the_client_in_its_shape() {
    let setup = support::start(BEDROCK).await;
    let response = setup
        .openai(&json!({"model": "bedrock-wrong-key", "messages": user("x")}))
        .await;
    assert_eq!(
        response.status(),
        401,
        "a bad signature is an authentication error"
    );
    let response = setup
        .anthropic(&json!({"model": "bedrock-throttled", "max_tokens": 10, "messages": user("x")}))
        .await;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

/// Regression: events decoded from the same upstream chunk as a failure were dropped with it
/// (Bedrock writes the exception frame right after the last deltas).
#[tokio::test]
async fn text_before_a_mid_stream_exception_reaches_the_client() {
    let setup = support::start(BEDROCK).await;
    let events = sse_events(
        setup
            .openai(&json!({"model": "bedrock-exception", "messages": user("one two three four five six seven"), "stream": true}))
            .await,
    )
    .await;
    assert_eq!(openai_stream_text(&events), "one two three", "{events:?}");
    let last: Value = serde_json::from_str(&events.last().expect("events").1).expect("json");
    assert!(last["error"].is_object(), "{last}");
}

#[tokio::test]
async fn the_stop_sequence_that_ended_a_bedrock_claude_answer_is_reported() {
    let setup = support::start(BEDROCK).await;
    let request = json!({"model": "claude-bedrock", "max_tokens": 50, "stop_sequences": ["three"], "messages": user("one two three four")});
    let body: Value = setup.anthropic(&request).await.json().await.expect("json");
    assert_eq!(body["stop_reason"], "stop_sequence", "{body}");
    assert_eq!(body["stop_sequence"], "three", "{body}");

    let mut streamed = request;
    streamed["stream"] = json!(true);
    let events = sse_events(setup.anthropic(&streamed).await).await;
    let delta = events
        .iter()
        .find(|(event, _)| event.as_deref() == Some("message_delta"))
        .map(|(_, data)| serde_json::from_str::<Value>(data).expect("JSON"))
        .expect("a message_delta");
    assert_eq!(delta["delta"]["stop_reason"], "stop_sequence", "{delta}");
    assert_eq!(delta["delta"]["stop_sequence"], "three", "{delta}");
}
