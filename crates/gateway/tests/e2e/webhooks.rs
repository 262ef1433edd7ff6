//! Hooks that are HTTP services, end to end, against a small policy service in the test: what
//! it is sent, allow, block (in each caller's shape), modify before and after the model, and a
//! service that hangs, fails or answers garbage under `on_error: closed` and `open`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Setup, start};

use crate::support::ECHO_MODELS as MODELS;

type Received = Arc<Mutex<Vec<Value>>>;

/// The policy service: decides by the last message's text (and, after the model, the answer).
async fn policy(
    State(received): State<Received>,
    body: axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = body.0;
    received.lock().expect("lock").push(body.clone());
    let last = body["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .and_then(|message| message["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    if body["point"] == "after_model" {
        let answer = body["answer"]["content"].as_str().unwrap_or_default();
        return if answer.contains("secret answer") {
            axum::Json(json!({"action": "modify", "content": "[filtered]"})).into_response()
        } else {
            axum::Json(json!({"action": "allow"})).into_response()
        };
    }
    match last.as_str() {
        "block me" => axum::Json(json!({"action": "block", "message": "Not on this platform"}))
            .into_response(),
        "modify me" => {
            let count = body["messages"].as_array().map_or(0, Vec::len);
            let mut messages = vec![json!({}); count];
            messages[count - 1] = json!({"content": "rewritten by the hook"});
            axum::Json(json!({"action": "modify", "messages": messages})).into_response()
        }
        "hang" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            axum::Json(json!({"action": "allow"})).into_response()
        }
        "fail" => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "garbage" => "not json at all".into_response(),
        "unknown action" => axum::Json(json!({"action": "shrug"})).into_response(),
        _ => axum::Json(json!({"action": "allow"})).into_response(),
    }
}

async fn setup(on_error: &str) -> (Setup, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route("/check", post(policy))
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let yaml = format!(
        "{MODELS}\nhooks:\n  - name: policy\n    url: http://{addr}/check\n    points: [before_model, after_model]\n    timeout_ms: 300\n    on_error: {on_error}\n    headers:\n      authorization: Bearer hook-token\n"
    );
    (start(&yaml).await, received)
}

async fn ask(setup: &Setup, model: &str, text: &str) -> (u16, Value, String) {
    let response = setup
        .openai(&json!({"model": model, "messages": [{"role": "user", "content": text}]}))
        .await;
    let status = response.status().as_u16();
    let id = response.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    (status, response.json().await.expect("json"), id)
}

#[tokio::test]
async fn a_hook_sees_the_call_and_allows_blocks_or_modifies_it() {
    let (setup, received) = setup("closed").await;
    let (status, answer, id) = ask(&setup, "gpt", "hello").await;
    assert_eq!(
        (status, answer["choices"][0]["message"]["content"].as_str()),
        (200, Some("hello"))
    );
    {
        let received = received.lock().expect("lock");
        let before = &received[0];
        assert_eq!(before["point"], "before_model");
        assert_eq!(before["request_id"], id.as_str());
        assert_eq!(before["model"], "gpt");
        assert_eq!(before["dialect"], "openai");
        assert_eq!(before["messages"][0]["content"], "hello");
        assert_eq!(received[1]["point"], "after_model");
        assert_eq!(received[1]["answer"]["content"], "hello");
    }

    let (status, answer, _) = ask(&setup, "gpt", "block me").await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "blocked_by_hook");
    assert_eq!(answer["error"]["message"], "Not on this platform");
    let response = setup
        .anthropic(&json!({"model": "claude", "max_tokens": 10,
            "messages": [{"role": "user", "content": "block me"}]}))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // Modified before the model: the upstream (an echo) answers the hook's text.
    let (status, answer, _) = ask(&setup, "gpt", "modify me").await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "rewritten by the hook"
    );

    // Modified after: relayed (same dialect) and translated answers alike.
    let (_, answer, _) = ask(&setup, "gpt", "the secret answer is 42").await;
    assert_eq!(answer["choices"][0]["message"]["content"], "[filtered]");
    let (_, answer, _) = ask(&setup, "claude", "the secret answer is 42").await;
    assert_eq!(answer["choices"][0]["message"]["content"], "[filtered]");
}

#[tokio::test]
async fn a_failing_hook_refuses_calls_when_closed() {
    let (setup, _) = setup("closed").await;
    for text in ["hang", "fail", "garbage", "unknown action"] {
        let started = Instant::now();
        let (status, answer, _) = ask(&setup, "gpt", text).await;
        assert_eq!(status, 503, "{text}: {answer}");
        assert_eq!(answer["error"]["code"], "hook_unavailable", "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{text} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_failing_hook_lets_calls_through_when_open() {
    let (setup, _) = setup("open").await;
    for text in ["hang", "fail", "garbage", "unknown action"] {
        let (status, answer, _) = ask(&setup, "gpt", text).await;
        assert_eq!(status, 200, "{text}: {answer}");
        assert_eq!(answer["choices"][0]["message"]["content"], text);
    }
}
