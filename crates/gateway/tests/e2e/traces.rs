//! OpenTelemetry traces reach an OTLP/HTTP receiver (a small one in the test), decoded with the
//! OTLP's generated types: the call's span with the GenAI attributes, continuing the caller's
//! `traceparent`, its stages and upstream attempts as children; the upstream gets the call's
//! own `traceparent`; failures are marked; what is queued goes out on shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use prost::Message;
use serde_json::json;

use crate::support::{MASTER, start, start_keys};

/// An OTLP/HTTP receiver and an OpenAI-style upstream in one: it keeps every trace export
/// (its headers and body) and every `traceparent` an upstream call carried.
struct Receiver {
    url: String,
    exports: Exports,
    traceparents: Arc<Mutex<Vec<String>>>,
}

/// Each export's headers and body.
type Exports = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

async fn receiver() -> Receiver {
    let exports: Exports = Arc::default();
    let traceparents: Arc<Mutex<Vec<String>>> = Arc::default();
    let (kept, seen) = (Arc::clone(&exports), Arc::clone(&traceparents));
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let kept = Arc::clone(&kept);
                    async move {
                        kept.lock().expect("lock").push((headers, body.to_vec()));
                        ""
                    }
                },
            ),
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

impl Receiver {
    /// Every export received so far, decoded.
    fn decoded(&self) -> Vec<ExportTraceServiceRequest> {
        self.exports
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, body)| {
                ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP export")
            })
            .collect()
    }

    /// The spans received so far.
    fn spans(&self) -> Vec<Span> {
        self.decoded()
            .into_iter()
            .flat_map(|export| export.resource_spans)
            .flat_map(|resource: ResourceSpans| resource.scope_spans)
            .flat_map(|scope| scope.spans)
            .collect()
    }

    /// The spans, once (within 10 s) `count` server spans arrived.
    async fn wait_for_calls(&self, count: usize) -> Option<Vec<Span>> {
        for _ in 0..200 {
            let spans = self.spans();
            if spans
                .iter()
                .filter(|span| span.kind == SpanKind::Server as i32)
                .count()
                >= count
            {
                return Some(spans);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value: &AnyValue| value.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match value(&span.attributes, key) {
        Some(Value::StringValue(text)) => Some(text),
        _ => None,
    }
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match value(&span.attributes, key) {
        Some(Value::IntValue(number)) => Some(*number),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_span_with_genai_attributes_and_its_children_reach_the_collector() {
    let receiver = receiver().await;
    let setup = start(&format!(
        "otel:\n  endpoint: \"{url}\"\n  service_name: switchyard-test\n  headers:\n    x-collector-key: sekrit\nmodels:\n  - name: traced\n    deployments:\n      - provider: openai_compatible\n        model: up-model\n        api_base: \"{url}/v1\"\n        api_key: k\n",
        url = receiver.url
    ))
    .await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = setup
        .openai_with(
            (
                "traceparent",
                &format!("00-{caller_trace}-{caller_span}-01"),
            ),
            &json!({"model": "traced", "max_tokens": 20, "temperature": 0.5,
                "messages": [{"role": "user", "content": "trace me"}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;
    // The upstream was called as part of the caller's trace, under the gateway's span.
    let forwarded = receiver.traceparents.lock().expect("lock").clone();
    assert_eq!(forwarded.len(), 1, "{forwarded:?}");
    let parts: Vec<&str> = forwarded[0].split('-').collect();
    assert_eq!(parts.len(), 4, "{forwarded:?}");
    assert_eq!(parts[1], caller_trace);
    assert_ne!(parts[2], caller_span, "a span of its own");

    // Exported while the gateway runs (no shutdown needed).
    let spans = receiver
        .wait_for_calls(1)
        .await
        .expect("the call's span arrives");
    let exports = receiver.exports.lock().expect("lock").clone();
    for (headers, _) in &exports {
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/x-protobuf")
        );
        assert_eq!(
            headers.get("x-collector-key").and_then(|v| v.to_str().ok()),
            Some("sekrit"),
            "otel.headers go with every export"
        );
    }
    let resource = receiver.decoded()[0].resource_spans[0]
        .resource
        .clone()
        .expect("a resource");
    assert_eq!(
        value(&resource.attributes, "service.name"),
        Some(&Value::StringValue("switchyard-test".to_owned()))
    );

    let call = spans
        .iter()
        .find(|span| span.kind == SpanKind::Server as i32)
        .expect("the call's span");
    assert_eq!(call.name, "chat traced");
    assert_eq!(hex(&call.trace_id), caller_trace, "the caller's trace");
    assert_eq!(hex(&call.parent_span_id), caller_span, "the caller's span");
    assert_eq!(
        hex(&call.span_id),
        parts[2],
        "the parent the upstream was told"
    );
    assert_eq!(
        call.flags & 0x300,
        0x300,
        "a remote parent: {:#x}",
        call.flags
    );
    assert!(call.start_time_unix_nano > 0 && call.start_time_unix_nano <= call.end_time_unix_nano);
    assert_eq!(text(call, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(text(call, "gen_ai.request.model"), Some("traced"));
    assert_eq!(text(call, "gen_ai.response.model"), Some("up-model"));
    assert!(text(call, "gen_ai.provider.name").is_some_and(|name| !name.is_empty()));
    assert_eq!(int(call, "gen_ai.usage.input_tokens"), Some(11));
    assert_eq!(int(call, "gen_ai.usage.output_tokens"), Some(3));
    assert_eq!(int(call, "gen_ai.request.max_tokens"), Some(20));
    assert_eq!(
        value(&call.attributes, "gen_ai.request.temperature"),
        Some(&Value::DoubleValue(0.5))
    );
    match value(&call.attributes, "gen_ai.response.finish_reasons") {
        Some(Value::ArrayValue(array)) => assert_eq!(
            array.values,
            vec![AnyValue {
                value: Some(Value::StringValue("stop".to_owned()))
            }]
        ),
        other => panic!("finish reasons: {other:?}"),
    }
    assert_eq!(int(call, "http.response.status_code"), Some(200));
    assert_eq!(int(call, "switchyard.attempts"), Some(1));
    assert_eq!(
        value(&call.attributes, "switchyard.stream"),
        Some(&Value::BoolValue(false))
    );
    assert!(text(call, "switchyard.request_id").is_some_and(|id| !id.is_empty()));
    assert_eq!(
        call.status.as_ref().map(|status| status.code),
        Some(StatusCode::Ok as i32)
    );

    // Its children: the stages it went through and its upstream attempt, inside its time.
    let children: Vec<&Span> = spans
        .iter()
        .filter(|span| span.parent_span_id == call.span_id)
        .collect();
    for child in &children {
        assert_eq!(child.trace_id, call.trace_id, "{}", child.name);
        assert_ne!(child.span_id, call.span_id);
        assert!(
            call.start_time_unix_nano <= child.start_time_unix_nano
                && child.start_time_unix_nano <= child.end_time_unix_nano
                && child.end_time_unix_nano <= call.end_time_unix_nano,
            "{} within the call",
            child.name
        );
    }
    let stages: Vec<&str> = children
        .iter()
        .filter(|span| span.kind == SpanKind::Internal as i32)
        .map(|span| span.name.as_str())
        .collect();
    // Only the stages that had something to do: no keys, limits, budgets or guards here.
    assert_eq!(stages, ["read body"]);
    let attempts: Vec<&&Span> = children
        .iter()
        .filter(|span| span.kind == SpanKind::Client as i32)
        .collect();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].name, "chat up-model");
    assert_eq!(text(attempts[0], "gen_ai.request.model"), Some("up-model"));
    assert!(text(attempts[0], "switchyard.deployment").is_some_and(|d| d.ends_with("/up-model")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_is_an_error_span_and_shutdown_sends_what_is_queued() {
    let receiver = receiver().await;
    // Port 1: nothing listens; the attempt fails to connect.
    let setup = start(&format!(
        "otel:\n  endpoint: \"{url}\"\nmodels:\n  - name: broken\n    deployments:\n      - provider: openai_compatible\n        model: gone\n        api_base: \"http://127.0.0.1:1/v1\"\n        api_key: k\n",
        url = receiver.url
    ))
    .await;
    let response = setup
        .openai(&json!({"model": "broken", "messages": [{"role": "user", "content": "x"}]}))
        .await;
    let status = response.status().as_u16();
    assert!(status >= 500, "{status}");
    let _ = response.bytes().await;
    // Shutting down writes out the queue at once, without waiting for a batch to fill.
    assert!(
        setup
            .gateway
            .shared()
            .background
            .shutdown(Duration::from_secs(10))
            .await
    );
    let spans = receiver.spans();
    let call = spans
        .iter()
        .find(|span| span.kind == SpanKind::Server as i32)
        .expect("the call's span, sent on shutdown");
    assert_eq!(call.name, "chat broken");
    assert!(call.parent_span_id.is_empty(), "no caller's trace: a root");
    assert_eq!(
        int(call, "http.response.status_code"),
        Some(i64::from(status))
    );
    assert!(text(call, "error.type").is_some_and(|kind| !kind.is_empty()));
    let call_status = call.status.clone().expect("a status");
    assert_eq!(call_status.code, StatusCode::Error as i32);
    assert!(!call_status.message.is_empty());
    let attempt = spans
        .iter()
        .find(|span| span.kind == SpanKind::Client as i32)
        .expect("the attempt's span");
    assert_eq!(attempt.parent_span_id, call.span_id);
    assert_eq!(
        attempt.status.as_ref().map(|status| status.code),
        Some(StatusCode::Error as i32)
    );
    assert!(text(attempt, "error.type").is_some_and(|kind| !kind.is_empty()));
}

/// A collector that takes connections and never answers does not hold up a stop: once the
/// gateway is stopping, what is queued gets one short try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_does_not_hold_up_shutdown() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    let receiver = receiver().await;
    let setup = start(&format!(
        "otel:\n  endpoint: \"{silent_url}\"\nmodels:\n  - name: plain\n    deployments:\n      - provider: openai_compatible\n        model: up-model\n        api_base: \"{url}/v1\"\n        api_key: k\n",
        url = receiver.url
    ))
    .await;
    let response = setup
        .openai(&json!({"model": "plain", "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let started = std::time::Instant::now();
    assert!(
        setup
            .gateway
            .shared()
            .background
            .shutdown(Duration::from_secs(30))
            .await,
        "the exporter finished within the grace"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "stopping took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_call_has_spans_for_its_key_limits_and_budget() {
    let receiver = receiver().await;
    let setup = start_keys(&format!(
        "otel:\n  endpoint: \"{url}\"\nmodels:\n  - name: traced\n    deployments:\n      - provider: openai_compatible\n        model: up-model\n        api_base: \"{url}/v1\"\n        api_key: k\n        price: {{input: 1, output: 2}}\n",
        url = receiver.url
    ))
    .await;
    let (status, created) = setup
        .admin(
            MASTER,
            reqwest::Method::POST,
            "/admin/keys",
            &json!({"limits": {"rpm": 100, "budget": {"max_usd": "5", "period": "monthly"}}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("the key");
    let (status, _) = setup.chat_as(key, "openai", "traced").await;
    assert_eq!(status, 200);
    let spans = receiver
        .wait_for_calls(1)
        .await
        .expect("the call's span arrives");
    let call = spans
        .iter()
        .find(|span| span.kind == SpanKind::Server as i32)
        .expect("the call's span");
    assert_eq!(
        text(call, "switchyard.key_id"),
        created["id"].as_str(),
        "the key that called"
    );
    assert!(
        text(call, "switchyard.cost_usd")
            .is_some_and(|cost| cost.parse::<f64>().is_ok_and(|usd| usd > 0.0))
    );
    let stages: Vec<&str> = spans
        .iter()
        .filter(|span| {
            span.kind == SpanKind::Internal as i32 && span.parent_span_id == call.span_id
        })
        .map(|span| span.name.as_str())
        .collect();
    assert_eq!(
        stages,
        ["authenticate", "read body", "rate limits", "budget"]
    );
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
