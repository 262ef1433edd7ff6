//! Chat through the gateway in front of the mock provider, in both dialects and
//! across them.

use super::support;

use serde_json::{Value, json};
use support::{openai_stream_text, sse_events, standard};

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

#[tokio::test]
async fn openai_client_openai_upstream() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({"model": "gpt", "messages": user("hello there")}))
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(
        response.headers()["x-switchyard-deployment"],
        "openai_compatible/echo"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "hello there");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["completion_tokens"], 2);
    assert!(body["usage"]["prompt_tokens"].as_u64().expect("count") > 0);
}

#[tokio::test]
async fn aliases_and_the_unprefixed_route_work() {
    let setup = standard().await;
    let response = setup
        .client
        .post(setup.url("/chat/completions"))
        .json(&json!({"model": "gpt-alias", "messages": user("hi")}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn openai_stream_with_usage() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({
            "model": "gpt",
            "messages": user("one two three"),
            "stream": true,
            "stream_options": {"include_usage": true}
        }))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_events(response).await;
    assert_eq!(events.last().map(|(_, data)| data.as_str()), Some("[DONE]"));
    assert_eq!(openai_stream_text(&events), "one two three");
    let usage: Value = serde_json::from_str(&events[events.len() - 2].1).expect("usage chunk");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn openai_stream_without_usage_has_no_usage_chunk() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({"model": "gpt", "messages": user("a b"), "stream": true}))
        .await;
    let events = sse_events(response).await;
    for (_, data) in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(data).expect("chunk");
        assert!(chunk.get("usage").is_none(), "{chunk}");
        assert_eq!(chunk["choices"].as_array().map(Vec::len), Some(1));
    }
}

#[tokio::test]
async fn anthropic_client_anthropic_upstream() {
    let setup = standard().await;
    let response = setup
        .anthropic(&json!({
            "model": "claude",
            "max_tokens": 100,
            "system": "Be brief.",
            "messages": user("hello claude")
        }))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(
        body["content"][0],
        json!({"type": "text", "text": "hello claude"})
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn anthropic_client_reaches_an_openai_upstream() {
    let setup = standard().await;
    let response = setup
        .anthropic(&json!({
            "model": "gpt",
            "max_tokens": 100,
            "system": "Be brief.",
            "messages": user("cross the border")
        }))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["content"][0]["text"], "cross the border");
    assert_eq!(body["stop_reason"], "end_turn");
}

#[tokio::test]
async fn openai_client_reaches_an_anthropic_upstream() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({"model": "claude", "messages": user("the other way")}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "the other way");
    assert_eq!(body["object"], "chat.completion");
}

#[tokio::test]
async fn anthropic_stream_event_sequence_from_an_openai_upstream() {
    let setup = standard().await;
    let response = setup
        .anthropic(&json!({
            "model": "gpt",
            "max_tokens": 100,
            "stream": true,
            "messages": user("stream me please")
        }))
        .await;
    assert_eq!(response.status(), 200);
    let events = sse_events(response).await;
    let names: Vec<&str> = events
        .iter()
        .map(|(name, _)| name.as_deref().unwrap_or("?"))
        .collect();
    assert_eq!(names[0], "message_start");
    assert_eq!(names[1], "ping");
    assert_eq!(names[2], "content_block_start");
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
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
    assert_eq!(text, "stream me please");
    let delta: Value = serde_json::from_str(&events[events.len() - 2].1).expect("json");
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn openai_stream_from_an_anthropic_upstream() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({
            "model": "claude",
            "messages": user("from claude"),
            "stream": true,
            "stream_options": {"include_usage": true}
        }))
        .await;
    let events = sse_events(response).await;
    assert_eq!(openai_stream_text(&events), "from claude");
    let usage: Value = serde_json::from_str(&events[events.len() - 2].1).expect("usage chunk");
    assert_eq!(usage["usage"]["completion_tokens"], 2);
    assert!(usage["usage"]["prompt_tokens"].as_u64().expect("count") > 0);
}

#[tokio::test]
async fn unknown_fields_reach_an_openai_upstream_unchanged() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({
            "model": "gpt-request-echo",
            "messages": user("hi"),
            "logit_bias": {"50256": -100},
            "frequency_penalty": 0.5,
            "some_future_field": {"nested": [1, 2, 3]}
        }))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let forwarded: Value = serde_json::from_str(
        body["choices"][0]["message"]["content"]
            .as_str()
            .expect("content"),
    )
    .expect("the mock echoes the request it got");
    assert_eq!(forwarded["model"], "echo?echo=request");
    assert_eq!(forwarded["logit_bias"], json!({"50256": -100}));
    assert_eq!(forwarded["frequency_penalty"], 0.5);
    assert_eq!(forwarded["some_future_field"], json!({"nested": [1, 2, 3]}));
}

#[tokio::test]
async fn an_anthropic_upstream_gets_a_valid_messages_request_from_an_openai_client() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({
            "model": "claude-request-echo",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "logit_bias": {"1": 1}
        }))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let forwarded: Value = serde_json::from_str(
        body["choices"][0]["message"]["content"]
            .as_str()
            .expect("content"),
    )
    .expect("the mock echoes the request it got");
    assert_eq!(forwarded["system"], "Be brief.");
    assert!(forwarded["max_tokens"].as_u64().is_some());
    assert!(
        forwarded.get("logit_bias").is_none(),
        "OpenAI-only fields stay behind"
    );
    assert_eq!(forwarded["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(
        forwarded["messages"][1]["content"][0]["input"],
        json!({"city": "Paris"})
    );
    assert_eq!(forwarded["messages"][2]["role"], "user");
    assert_eq!(
        forwarded["messages"][2]["content"][0]["type"],
        "tool_result"
    );
    assert_eq!(
        forwarded["messages"][2]["content"][0]["tool_use_id"],
        "call_1"
    );
    assert_eq!(forwarded["tools"][0]["input_schema"]["type"], "object");
}

#[tokio::test]
async fn tool_calls_round_trip_across_dialects() {
    let setup = standard().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    for model in ["gpt", "claude"] {
        let response = setup
            .openai(&json!({"model": model, "messages": user("weather in Paris?"), "tools": tools}))
            .await;
        let body: Value = response.json().await.expect("json");
        let call = &body["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(
            body["choices"][0]["finish_reason"], "tool_calls",
            "{model}: {body}"
        );
        assert_eq!(call["function"]["name"], "get_weather");
        let arguments: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().expect("args"))
                .expect("json args");
        assert_eq!(arguments, json!({"city": "mock"}));
    }
}

#[tokio::test]
async fn streamed_tool_calls_reach_an_anthropic_client_from_an_openai_upstream() {
    let setup = standard().await;
    let response = setup
        .anthropic(&json!({
            "model": "gpt",
            "max_tokens": 100,
            "stream": true,
            "messages": user("use get_weather and get_time"),
            "tools": [
                {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}
            ]
        }))
        .await;
    let events = sse_events(response).await;
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut stop_reason = Value::Null;
    for (name, data) in &events {
        let event: Value = serde_json::from_str(data).expect("json");
        match name.as_deref() {
            Some("content_block_start") if event["content_block"]["type"] == "tool_use" => {
                blocks.push((
                    event["content_block"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    String::new(),
                ));
            }
            Some("content_block_delta") if event["delta"]["type"] == "input_json_delta" => {
                if let Some(block) = blocks.last_mut() {
                    block
                        .1
                        .push_str(event["delta"]["partial_json"].as_str().unwrap_or_default());
                }
            }
            Some("message_delta") => stop_reason = event["delta"]["stop_reason"].clone(),
            _ => {}
        }
    }
    assert_eq!(stop_reason, "tool_use");
    assert_eq!(blocks.len(), 2, "{events:?}");
    assert_eq!(blocks[0].0, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&blocks[0].1).expect("json"),
        json!({"city": "mock"})
    );
    assert_eq!(blocks[1].0, "get_time");
    assert_eq!(
        serde_json::from_str::<Value>(&blocks[1].1).expect("json"),
        json!({"zone": "mock"})
    );
}

#[tokio::test]
async fn models_lists_the_groups_in_both_shapes() {
    let setup = standard().await;
    let body: Value = setup.get("/v1/models").await.json().await.expect("json");
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "gpt");
    assert_eq!(body["data"][0]["providers"], json!(["openai_compatible"]));
    let body: Value = setup
        .client
        .get(setup.url("/v1/models"))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["data"][1],
        json!({"type": "model", "id": "claude", "display_name": "claude", "created_at": "1970-01-01T00:00:00Z", "providers": ["anthropic"]})
    );
}

#[tokio::test]
async fn health_endpoints_answer() {
    let setup = standard().await;
    for path in ["/health/liveness", "/health/readiness"] {
        let response = setup.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_cancels_the_upstream_call() {
    let setup = standard().await;
    let mut response = setup
        .openai(&json!({"model": "gpt-slow", "messages": user("x"), "stream": true}))
        .await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.expect("read").expect("a chunk");
    assert!(!first.is_empty());
    drop(response);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stats = setup.mock.stats();
        if stats.cancelled_streams == 1 {
            assert_eq!(stats.completed_streams, 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream never cancelled: {stats:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_lets_a_running_stream_finish() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({"model": "gpt-slow", "messages": user("x"), "stream": true}))
        .await;
    assert_eq!(response.status(), 200);
    let support::Setup {
        gateway,
        mock,
        client,
    } = setup;
    let addr = gateway.base_url();
    let shutdown = tokio::spawn(gateway.shutdown());
    let events = sse_events(response).await;
    assert_eq!(events.last().map(|(_, data)| data.as_str()), Some("[DONE]"));
    assert_eq!(openai_stream_text(&events).split(' ').count(), 50);
    shutdown.await.expect("joined").expect("clean shutdown");
    let refused = client.get(format!("{addr}/health/liveness")).send().await;
    assert!(refused.is_err(), "no longer accepting");
    drop(mock);
}

#[tokio::test]
async fn same_dialect_answers_keep_fields_the_gateway_does_not_know() {
    let setup = standard().await;
    // The mock writes `annotations` and `service_tier`, which the canonical model does not
    // hold: they reach an OpenAI client only because same-dialect answers are relayed.
    let body: Value = setup
        .openai(&json!({"model": "gpt", "messages": user("hi")}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["message"]["annotations"], json!([]));
    let events = sse_events(
        setup
            .openai(&json!({"model": "gpt", "messages": user("hi"), "stream": true}))
            .await,
    )
    .await;
    let chunk: Value = serde_json::from_str(&events[0].1).expect("chunk");
    assert_eq!(chunk["service_tier"], "default", "{chunk}");
    // Across dialects the answer is rebuilt from the canonical model.
    let body: Value = setup
        .openai(&json!({"model": "claude", "messages": user("hi")}))
        .await
        .json()
        .await
        .expect("json");
    assert!(body["choices"][0]["message"].get("annotations").is_none());
}

/// Claude models by name on the mock, which checks thinking as Anthropic does for each.
const CLAUDES: &str = r#"
models:
  - name: opus-4-7
    deployments:
      - provider: anthropic
        model: claude-opus-4-7
        api_base: "{MOCK}"
        api_key: test-key
  - name: opus-echo
    deployments:
      - provider: anthropic
        model: "claude-opus-4-7?echo=request"
        api_base: "{MOCK}"
        api_key: test-key
  - name: sonnet-4-5
    deployments:
      - provider: anthropic
        model: claude-sonnet-4-5-20250929
        api_base: "{MOCK}"
        api_key: test-key
  - name: adaptive-then-budget
    retries: 0
    deployments:
      - provider: anthropic
        model: "claude-opus-4-7?fail=500"
        api_base: "{MOCK}"
        api_key: test-key
    fallbacks: [sonnet-4-5]
"#;

#[tokio::test]
async fn an_openai_reasoning_effort_thinks_on_every_claude_generation() {
    let setup = support::start(CLAUDES).await;
    // What reaches a 4.7 model: adaptive thinking at the client's effort, room to think, and
    // no temperature (thinking takes none).
    let body = setup
        .openai_json(&json!({"model": "opus-echo", "messages": user("why is the sky blue"), "reasoning_effort": "high", "temperature": 0.2}))
        .await;
    let sent: Value = serde_json::from_str(
        body["choices"][0]["message"]["content"]
            .as_str()
            .expect("the echoed request"),
    )
    .expect("JSON");
    assert_eq!(sent["thinking"], json!({"type": "adaptive"}), "{sent}");
    assert_eq!(sent["output_config"], json!({"effort": "high"}));
    assert!(sent.get("temperature").is_none(), "{sent}");
    // As an OpenAI SDK agent sends it: an effort, a temperature, no limit.
    for model in ["opus-4-7", "sonnet-4-5", "adaptive-then-budget"] {
        let response = setup
            .openai(&json!({"model": model, "messages": user("why is the sky blue"), "reasoning_effort": "high", "temperature": 0.2}))
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 200, "{model}: {body}");
        assert!(
            body["choices"][0]["message"]["reasoning_content"].is_string(),
            "{model} thought: {body}"
        );
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "why is the sky blue"
        );
    }
    // `xhigh` (OpenAI's newest) reaches a 4.7 model as its own `xhigh`.
    let response = setup
        .openai(&json!({"model": "opus-4-7", "messages": user("think hard"), "reasoning_effort": "xhigh", "max_completion_tokens": 2000}))
        .await;
    assert_eq!(response.status(), 200);
}
