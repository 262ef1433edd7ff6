//! Upstreams written for one test each, as small axum servers: misbehaving ones (the gateway
//! answers each in the client's shape and keeps serving) and ones that show what they received.

use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use super::support;

/// Serves `app` on an ephemeral loopback port for the rest of the test.
pub(crate) async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// A 429 whose numbers no clock can hold, in each provider's shape.
async fn absurd_rate_limits() -> std::net::SocketAddr {
    let openai = || async {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", "1e300"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "99999999999999999999h"),
            ],
            r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
        )
    };
    let anthropic = || async {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("anthropic-ratelimit-requests-remaining", "0"),
                (
                    "anthropic-ratelimit-requests-reset",
                    "9223372036854775807-01-01T00:00:00Z",
                ),
            ],
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        )
    };
    let gemini = || async {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "inf")],
            r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1e300s"}]}}"#,
        )
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/messages", post(anthropic))
        .route("/v1beta/models/{*rest}", post(gemini));
    serve(app).await
}

/// Regression: a reset time or retry delay too large for a `Duration` panicked the request,
/// and the client saw its connection dropped.
#[tokio::test]
async fn absurd_rate_limit_numbers_are_a_clean_429() {
    let addr = absurd_rate_limits().await;
    // Cooldowns off, retries quick: every call reaches the upstream and its numbers.
    let mut yaml = String::from(
        "routing:\n  cooldown_secs: 0\n  retry_backoff_ms: 5\n  retry_backoff_max_ms: 10\nmodels:\n",
    );
    for (name, provider, base) in [
        ("openai", "openai_compatible", "v1"),
        ("anthropic", "anthropic", "v1"),
        ("gemini", "gemini", "v1beta"),
    ] {
        yaml.push_str(&format!(
            "  - name: {name}\n    retries: 1\n    deployments:\n      - provider: {provider}\n        model: m\n        api_base: \"http://{addr}/{base}\"\n        api_key: k\n"
        ));
    }
    let setup = support::start(&yaml).await;
    for model in ["openai", "anthropic", "gemini"] {
        let response = setup
            .openai(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(response.status(), 429, "{model}");
        let body: Value = response.json().await.expect("json");
        assert!(body["error"]["message"].is_string(), "{model}: {body}");
        let response = setup
            .anthropic(&json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(response.status(), 429, "{model}");
    }
}

/// An OpenAI-compatible upstream that streams a keep-alive comment, pauses, then sends a chunk
/// whose JSON spans two `data:` lines (both allowed by the SSE format); and redirects `/v2`.
async fn quirky_stream() -> std::net::SocketAddr {
    const BODY: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"a\"},\"finish_reason\":null}]}\n\n",
        ": still thinking\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\n",
        "data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n",
        "data: [DONE]\n\n",
    );
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            post(|| async {
                let chunks = futures_util::stream::unfold(0u8, |step| async move {
                    let chunk = match step {
                        0 => ": keep-alive\n\n",
                        1 => {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            BODY
                        }
                        _ => return None,
                    };
                    Some((Ok::<_, std::convert::Infallible>(chunk), step + 1))
                });
                (
                    [("content-type", "text/event-stream")],
                    axum::body::Body::from_stream(chunks),
                )
            }),
        )
        .route(
            "/v2/chat/completions",
            post(|| async {
                (
                    StatusCode::FOUND,
                    [("location", "http://127.0.0.1:9/elsewhere")],
                    "",
                )
            }),
        );
    serve(app).await
}

/// Regression: the relay wrote multi-line data back as one `data:` line with a raw newline in
/// it, and dropped the upstream's keep-alive comments.
#[tokio::test]
async fn relayed_streams_keep_multi_line_data_and_keep_alives() {
    let addr = quirky_stream().await;
    let setup = support::start(&format!(
        "models:\n  - name: quirky\n    deployments:\n      - provider: openai_compatible\n        model: m\n        api_base: \"http://{addr}/v1\"\n        api_key: k\n"
    ))
    .await;
    let response = setup
        .openai(&json!({"model": "quirky", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    for line in text.lines().filter(|line| !line.is_empty()) {
        assert!(
            line.starts_with("data: ") || line.starts_with(':'),
            "a line of no field: {line:?} in {text}"
        );
    }
    assert!(text.starts_with(": keep-alive\n\n"), "{text}");
    let events = support::parse_sse(&text);
    assert_eq!(support::openai_stream_text(&events), "ab");
    assert_eq!(events.last().map(|(_, data)| data.as_str()), Some("[DONE]"));
}

/// Regression: an upstream's redirect was a 500.
#[tokio::test]
async fn an_upstream_redirect_is_a_502() {
    let addr = quirky_stream().await;
    let setup = support::start(&format!(
        "models:\n  - name: moved\n    retries: 0\n    deployments:\n      - provider: openai_compatible\n        model: m\n        api_base: \"http://{addr}/v2\"\n        api_key: k\n"
    ))
    .await;
    let response = setup
        .openai(&json!({"model": "moved", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "upstream_redirect");
}

/// An upstream that refuses every key and echoes it in its message, as OpenAI-compatible
/// servers do.
async fn echoing_refusal() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|headers: axum::http::HeaderMap| async move {
            let key = headers
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or_default()
                .to_owned();
            (
                StatusCode::UNAUTHORIZED,
                json!({"error": {"message": format!("Incorrect API key provided: {key}. Check it."), "type": "invalid_request_error", "code": "invalid_api_key"}}).to_string(),
            )
        }),
    );
    serve(app).await
}

/// Regression: an upstream error echoing the server's key (or a caller's own) was relayed to
/// the client and written to the log.
#[tokio::test]
async fn keys_an_upstream_echoes_are_scrubbed() {
    let addr = echoing_refusal().await;
    let setup = support::start(&format!(
        "models:\n  - name: echoing\n    retries: 0\n    deployments:\n      - provider: openai_compatible\n        model: m\n        api_base: \"http://{addr}/v1\"\n        api_key: sk-server-secret-0123456789\n        allow_client_key: true\n"
    ))
    .await;
    for caller_key in [None, Some("sk-caller-secret-9876543210")] {
        let mut request = setup
            .client
            .post(setup.url("/v1/chat/completions"))
            .json(&json!({"model": "echoing", "messages": [{"role": "user", "content": "hi"}]}));
        if let Some(key) = caller_key {
            request = request.header("x-switchyard-provider-key", key);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), 401);
        let text = response.text().await.expect("body");
        assert!(
            text.contains("Incorrect API key provided: [redacted]"),
            "{text}"
        );
        assert!(!text.contains("secret"), "a key reached the client: {text}");
    }
}

/// An upstream that starts a stream, then reports an error mid-stream quoting the key it was
/// sent, as OpenAI-compatible servers do when a key goes bad during a stream.
async fn echoing_mid_stream() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|headers: axum::http::HeaderMap| async move {
            let key = headers
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or_default()
                .to_owned();
            let body = format!(
                "data: {}\n\ndata: {}\n\n",
                json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": null}]}),
                json!({"error": {"message": format!("Key {key} was revoked"), "type": "invalid_request_error"}}),
            );
            ([("content-type", "text/event-stream")], body)
        }),
    );
    serve(app).await
}

/// Regression: an error an upstream sent in the middle of a stream, quoting the key, reached
/// the client's stream (relayed and translated alike).
#[tokio::test]
async fn keys_an_upstream_echoes_mid_stream_are_scrubbed() {
    let addr = echoing_mid_stream().await;
    let setup = support::start(&format!(
        "models:\n  - name: echoing\n    retries: 0\n    deployments:\n      - provider: openai_compatible\n        model: m\n        api_base: \"http://{addr}/v1\"\n        api_key: sk-server-secret-0123456789\n"
    ))
    .await;
    let body = json!({"model": "echoing", "max_tokens": 16, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let response = setup
            .client
            .post(setup.url(path))
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().await.expect("body");
        assert!(text.contains("Hi"), "{path}: {text}");
        assert!(
            text.contains("Key [redacted] was revoked"),
            "{path}: {text}"
        );
        assert!(
            !text.contains("secret"),
            "{path}: a key reached the client: {text}"
        );
    }
}

/// An upstream whose whole answer is larger than the gateway holds, and one whose stream has a
/// line that never ends.
async fn oversized() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|body: String| async move {
            if body.contains("\"stream\":true") {
                let chunks = futures_util::stream::unfold(0u32, |sent| async move {
                    (sent < 64).then(|| {
                        let chunk = if sent == 0 {
                            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"".to_owned()
                        } else {
                            "x".repeat(1024)
                        };
                        (Ok::<_, std::convert::Infallible>(chunk), sent + 1)
                    })
                });
                return (
                    [("content-type", "text/event-stream")],
                    axum::body::Body::from_stream(chunks),
                );
            }
            (
                [("content-type", "application/json")],
                axum::body::Body::from(format!(
                    "{{\"id\":\"x\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{}\"}},\"finish_reason\":\"stop\"}}]}}",
                    "y".repeat(100_000)
                )),
            )
        }),
    );
    serve(app).await
}

/// Regression: upstream bodies and stream lines were buffered without limit.
#[tokio::test]
async fn upstream_answers_past_the_caps_are_refused() {
    let addr = oversized().await;
    let setup = support::start(&format!(
        "server:\n  upstream_body_limit_bytes: 50000\n  upstream_event_limit_bytes: 20000\nmodels:\n  - name: big\n    retries: 0\n    deployments:\n      - provider: openai_compatible\n        model: m\n        api_base: \"http://{addr}/v1\"\n        api_key: k\n"
    ))
    .await;
    let response = setup
        .openai(&json!({"model": "big", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "upstream_response_too_large");
    // The line that never ends: refused once it passes the cap, before any byte reached the
    // client (the first event never completed), so a clean 502.
    let response = setup
        .openai(&json!({"model": "big", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "upstream_event_too_large");
    // The same through the translating path (an Anthropic client).
    let response = setup
        .anthropic(&json!({"model": "big", "stream": true, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("stream event larger")),
        "{body}"
    );
}

/// An Anthropic upstream that answers with the `anthropic-beta` and `anthropic-version` headers
/// it received.
async fn header_echo() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/v1/messages",
        post(|headers: axum::http::HeaderMap| async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            let text = format!(
                "{}|{}",
                header("anthropic-beta"),
                header("anthropic-version")
            );
            (
                [("content-type", "application/json")],
                json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                    "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                    "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}})
                .to_string(),
            )
        }),
    );
    serve(app).await
}

/// Regression: an Anthropic client's `anthropic-beta` (Claude Code sends several) never
/// reached an Anthropic upstream, so the features it opts into were off.
#[tokio::test]
async fn anthropic_beta_and_version_reach_an_anthropic_upstream() {
    let addr = header_echo().await;
    let setup = support::start(&format!(
        "models:\n  - name: claude\n    deployments:\n      - provider: anthropic\n        model: m\n        api_base: \"http://{addr}/v1\"\n        api_key: k\n"
    ))
    .await;
    let ask = |version: &'static str, beta: Option<&'static str>| {
        let mut request = setup
            .client
            .post(setup.url("/v1/messages"))
            .header("x-api-key", "k")
            .header("anthropic-version", version)
            .json(&json!({"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
        if let Some(beta) = beta {
            request = request.header("anthropic-beta", beta);
        }
        async move {
            let body: Value = request
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            body["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let beta = "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14";
    assert_eq!(
        ask("2023-06-01", Some(beta)).await,
        format!("{beta}|2023-06-01")
    );
    assert_eq!(ask("2023-06-01", None).await, "-|2023-06-01");
    assert_eq!(ask("2099-01-01", None).await, "-|2099-01-01");
    // An OpenAI client's call to the same upstream carries the gateway's own version only.
    let body: Value = setup
        .openai(&json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "-|2023-06-01");
}
