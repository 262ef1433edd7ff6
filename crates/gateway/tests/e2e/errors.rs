//! Bad input and upstream faults: each gets the documented status and an error in the client's
//! own shape, and the gateway keeps serving afterwards.

use super::support;

use serde_json::{Value, json};
use support::{Setup, sse_events, standard};

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

async fn openai_raw(setup: &Setup, body: &'static str) -> reqwest::Response {
    setup
        .client
        .post(setup.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent")
}

async fn anthropic_raw(setup: &Setup, body: &'static str) -> reqwest::Response {
    setup
        .client
        .post(setup.url("/v1/messages"))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(body)
        .send()
        .await
        .expect("sent")
}

async fn openai_error(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error body is JSON");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
    assert!(
        body["error"].get("param").is_some() && body["error"].get("code").is_some(),
        "{body}"
    );
    (status, body)
}

async fn anthropic_error(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    (status, body)
}

#[tokio::test]
async fn malformed_json_is_a_400_in_each_shape() {
    let setup = standard().await;
    let (status, body) = openai_error(openai_raw(&setup, "{\"model\": \"gpt\", ").await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, body) = anthropic_error(anthropic_raw(&setup, "not json").await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn wrong_types_name_the_field() {
    let setup = standard().await;
    let (status, body) = openai_error(
        openai_raw(
            &setup,
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"max_tokens":"ten"}"#,
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "max_tokens");
    let (status, body) = anthropic_error(
        anthropic_raw(
            &setup,
            r#"{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":7}]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("messages[0].content"), "{message}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let setup = standard().await;
    let big = "x".repeat(70_000);
    let response = setup
        .openai(&json!({"model": "gpt", "messages": user(&big)}))
        .await;
    let (status, body) = openai_error(response).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "request_too_large");
    let response = setup
        .anthropic(&json!({"model": "claude", "max_tokens": 5, "messages": user(&big)}))
        .await;
    let (status, body) = anthropic_error(response).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["type"], "request_too_large");
}

#[tokio::test]
async fn an_unknown_model_is_a_404() {
    let setup = standard().await;
    let (status, body) = openai_error(
        setup
            .openai(&json!({"model": "nope", "messages": user("x")}))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    let (status, body) = anthropic_error(
        setup
            .anthropic(&json!({"model": "nope", "max_tokens": 5, "messages": user("x")}))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "not_found_error");
    // Regression: a model name of 60 kB came back whole (and went to the log whole).
    let long = "m".repeat(60_000);
    let (status, body) = openai_error(
        setup
            .openai(&json!({"model": long, "messages": user("x")}))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.len() < 400, "{} bytes", message.len());
    assert!(message.contains("[cut: 60000 bytes]"), "{message}");
}

#[tokio::test]
async fn upstream_errors_keep_their_status_in_the_clients_shape() {
    let setup = standard().await;
    // (fault, status an OpenAI client sees, status an Anthropic client sees)
    let cases = [
        ("400", 400, 400),
        ("401", 401, 401),
        ("429", 429, 429),
        ("500", 500, 500),
        ("503", 503, 503),
        ("529", 503, 529),
    ];
    for upstream in ["gpt", "claude"] {
        for (fault, openai_status, anthropic_status) in cases {
            let model = format!("{upstream}-fail-{fault}");
            let (status, body) = openai_error(
                setup
                    .openai(&json!({"model": model, "messages": user("x")}))
                    .await,
            )
            .await;
            assert_eq!(status, openai_status, "{model} to an OpenAI client: {body}");
            let (status, body) = anthropic_error(
                setup
                    .anthropic(&json!({"model": model, "max_tokens": 5, "messages": user("x")}))
                    .await,
            )
            .await;
            assert_eq!(
                status, anthropic_status,
                "{model} to an Anthropic client: {body}"
            );
        }
    }
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let setup = standard().await;
    for model in ["gpt-fail-429", "claude-fail-429"] {
        let response = setup
            .openai(&json!({"model": model, "messages": user("x")}))
            .await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7", "{model}");
        let (_, body) = openai_error(response).await;
        assert_eq!(body["error"]["type"], "rate_limit_error");
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    let setup = standard().await;
    let (status, _) = openai_error(
        setup
            .openai(&json!({"model": "unreachable", "messages": user("x")}))
            .await,
    )
    .await;
    assert_eq!(status, 502);
    let (status, body) = anthropic_error(
        setup
            .anthropic(
                &json!({"model": "claude-unreachable", "max_tokens": 5, "messages": user("x")}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["type"], "api_error");
}

#[tokio::test]
async fn a_hanging_upstream_is_a_504() {
    let setup = standard().await;
    let (status, body) = openai_error(
        setup
            .openai(&json!({"model": "gpt-hang", "messages": user("x")}))
            .await,
    )
    .await;
    assert_eq!(status, 504);
    assert_eq!(body["error"]["code"], "upstream_timeout");
    let response = setup
        .anthropic(&json!({"model": "claude-hang", "max_tokens": 5, "stream": true, "messages": user("x")}))
        .await;
    let (status, body) = anthropic_error(response).await;
    assert_eq!(status, 504);
    assert_eq!(body["error"]["type"], "timeout_error");
}

#[tokio::test]
async fn a_reset_connection_is_a_502() {
    let setup = standard().await;
    for model in ["gpt-fail-reset", "claude-fail-reset"] {
        let (status, _) = openai_error(
            setup
                .openai(&json!({"model": model, "messages": user("x")}))
                .await,
        )
        .await;
        assert_eq!(status, 502, "{model}");
        let response = setup
            .openai(&json!({"model": model, "messages": user("x"), "stream": true}))
            .await;
        assert_eq!(response.status(), 502, "{model} streamed");
    }
}

#[tokio::test]
async fn a_stream_cut_midway_ends_with_an_error_event() {
    let setup = standard().await;
    for upstream in ["gpt", "claude"] {
        let model = format!("{upstream}-fail-cut");
        let response = setup
            .openai(&json!({"model": model, "messages": user("one two three four five six seven"), "stream": true}))
            .await;
        assert_eq!(response.status(), 200, "{model}");
        let events = sse_events(response).await;
        let last: Value = serde_json::from_str(&events.last().expect("events").1).expect("json");
        assert_eq!(last["error"]["type"], "server_error", "{model}: {events:?}");
        assert!(events.iter().all(|(_, data)| data != "[DONE]"));

        let response = setup
            .anthropic(&json!({"model": model, "max_tokens": 50, "messages": user("one two three four five six seven"), "stream": true}))
            .await;
        let events = sse_events(response).await;
        let (name, data) = events.last().expect("events");
        assert_eq!(name.as_deref(), Some("error"), "{model}: {events:?}");
        let error: Value = serde_json::from_str(data).expect("json");
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "api_error");
        assert!(
            events
                .iter()
                .all(|(name, _)| name.as_deref() != Some("message_stop"))
        );
    }
}

#[tokio::test]
async fn a_malformed_chunk_ends_the_stream_with_an_error_event() {
    let setup = standard().await;
    for upstream in ["gpt", "claude"] {
        let model = format!("{upstream}-fail-malformed");
        let response = setup
            .openai(&json!({"model": model, "messages": user("one two three four five six"), "stream": true}))
            .await;
        let events = sse_events(response).await;
        let last: Value = serde_json::from_str(&events.last().expect("events").1).expect("json");
        assert!(
            last["error"]["message"]
                .as_str()
                .expect("message")
                .contains("malformed"),
            "{model}: {last}"
        );
    }
}

#[tokio::test]
async fn the_gateway_keeps_serving_after_faults() {
    let setup = standard().await;
    for fault in support::FAULTS {
        let _ = setup
            .openai(&json!({"model": format!("gpt-fail-{fault}"), "messages": user("x"), "stream": true}))
            .await
            .bytes()
            .await;
    }
    let _ = setup
        .openai(&json!({"model": "gpt-hang", "messages": user("x")}))
        .await;
    let body: Value = setup
        .openai(&json!({"model": "gpt", "messages": user("still here")}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "still here");
}

#[tokio::test]
async fn unknown_routes_are_404_in_openai_shape() {
    let setup = standard().await;
    let response = setup.get("/v1/nothing").await;
    let (status, body) = openai_error(response).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn other_methods_on_the_chat_routes_are_405_and_a_query_string_is_ignored() {
    let setup = standard().await;
    for path in ["/v1/chat/completions", "/messages"] {
        let response = setup.get(path).await;
        assert_eq!(response.status(), 405, "GET {path}");
    }
    let response = setup
        .client
        .post(setup.url("/v1/chat/completions?trace=1"))
        .json(&json!({"model": "gpt", "messages": user("with a query")}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "with a query");
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    let setup = standard().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let response = client
        .post(setup.url("/v1/chat/completions"))
        .json(&json!({"model": "gpt", "messages": user("over h2")}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "over h2");
}
