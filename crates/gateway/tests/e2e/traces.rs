//! OpenTelemetry traces reach an OTLP/HTTP receiver (a small one in the test), with the GenAI
//! attributes, continuing the caller's `traceparent`; the upstream gets the call's own.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::start;

/// An OTLP/HTTP receiver and an OpenAI-style upstream in one: it keeps every trace export's
/// body and every `traceparent` an upstream call carried.
struct Receiver {
    url: String,
    exports: Arc<Mutex<Vec<Vec<u8>>>>,
    traceparents: Arc<Mutex<Vec<String>>>,
}

async fn receiver() -> Receiver {
    let exports: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let traceparents: Arc<Mutex<Vec<String>>> = Arc::default();
    let (kept, seen) = (Arc::clone(&exports), Arc::clone(&traceparents));
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = Arc::clone(&kept);
                async move {
                    kept.lock().expect("lock").push(body.to_vec());
                    ""
                }
            }),
        )
        .route(
            "/v1/chat/completions",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let seen = Arc::clone(&seen);
                async move {
                    if let Some(value) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                        seen.lock().expect("lock").push(value.to_owned());
                    }
                    axum::Json(json!({"id": "c1", "object": "chat.completion", "created": 1,
                        "model": "up-model", "choices": [{"index": 0, "message": {"role": "assistant",
                        "content": "hi"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url,
        exports,
        traceparents,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_span_with_genai_attributes_reaches_the_collector() {
    let receiver = receiver().await;
    let setup = start(&format!(
        "otel:\n  endpoint: \"{url}\"\n  service_name: switchyard-test\nmodels:\n  - name: traced\n    deployments:\n      - provider: openai_compatible\n        model: up-model\n        api_base: \"{url}/v1\"\n        api_key: k\n",
        url = receiver.url
    ))
    .await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = setup
        .openai_with(
            ("traceparent", &format!("00-{caller_trace}-00f067aa0ba902b7-01")),
            &json!({"model": "traced", "max_tokens": 20, "messages": [{"role": "user", "content": "trace me"}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;
    // The upstream was called as part of the caller's trace, under the gateway's span.
    let forwarded = receiver.traceparents.lock().expect("lock").clone();
    assert_eq!(forwarded.len(), 1, "{forwarded:?}");
    assert!(
        forwarded[0].starts_with(&format!("00-{caller_trace}-")),
        "{forwarded:?}"
    );
    assert!(
        !forwarded[0].contains("00f067aa0ba902b7"),
        "a span of its own: {forwarded:?}"
    );
    setup
        .gateway
        .shared()
        .traces
        .as_ref()
        .expect("tracing on")
        .flush();
    let exports = receiver.exports.lock().expect("lock").clone();
    let all: Vec<u8> = exports.concat();
    assert!(!all.is_empty(), "no export reached the receiver");
    let trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&caller_trace[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    assert!(contains(&all, &trace_id), "the caller's trace id");
    for text in [
        "switchyard-test",
        "chat traced",
        "chat up-model",
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.provider.name",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.request.max_tokens",
        "gen_ai.response.finish_reasons",
        "read body",
        "authenticate",
    ] {
        assert!(
            contains(&all, text.as_bytes()),
            "{text} missing from the export"
        );
    }
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_traced_or_forwarded() {
    let receiver = receiver().await;
    let setup = start(&format!(
        "models:\n  - name: plain\n    deployments:\n      - provider: openai_compatible\n        model: up-model\n        api_base: \"{url}/v1\"\n        api_key: k\n",
        url = receiver.url
    ))
    .await;
    assert!(setup.gateway.shared().traces.is_none());
    let response = setup
        .openai(&json!({"model": "plain", "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(response.status(), 200);
    assert!(receiver.traceparents.lock().expect("lock").is_empty());
}
