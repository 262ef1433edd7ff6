//! Tests of the Bedrock routes through the router, with requests signed by `aws-sigv4` as a
//! client signs them.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_eventstream::frame::read_message_from;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::signature::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::router;

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";

/// How a test request is signed.
struct Signer {
    access_key_id: &'static str,
    secret: &'static str,
    token: Option<&'static str>,
    service: &'static str,
}

const MOCK: Signer = Signer {
    access_key_id: ACCESS_KEY_ID,
    secret: SECRET_ACCESS_KEY,
    token: None,
    service: "bedrock",
};

/// A POST of `body` to `path`, signed by `signer` (unsigned when `None`), with `extra`
/// headers sent unsigned.
fn request(
    signer: Option<&Signer>,
    path: &str,
    body: &Value,
    extra: &[(&str, &str)],
) -> Request<Body> {
    let body = body.to_string();
    let mut builder = Request::post(path)
        .header("host", HOST)
        .header("content-type", "application/json");
    if let Some(signer) = signer {
        let identity = aws_credential_types::Credentials::new(
            signer.access_key_id,
            signer.secret,
            signer.token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name(signer.service)
            .time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000))
            .settings(SigningSettings::default())
            .build()
            .expect("parameters")
            .into();
        let url = format!("https://{HOST}{path}");
        let signable = SignableRequest::new(
            "POST",
            url,
            [("host", HOST), ("content-type", "application/json")].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .expect("signable");
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .expect("signs")
            .into_parts();
        for (name, value) in instructions.headers() {
            builder = builder.header(name, value);
        }
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body)).expect("a request")
}

/// The status, headers and body of one call.
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Result<bytes::Bytes, axum::Error>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(self.body.as_ref().expect("a complete body")).expect("JSON")
    }

    /// The frames of an event stream: `(message type, event or exception type, payload)`.
    fn frames(&self) -> Vec<(String, String, Value)> {
        let mut bytes: &[u8] = self.body.as_ref().expect("a complete body");
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let message = read_message_from(&mut bytes).expect("a valid frame");
            let header = |name: &str| {
                message
                    .headers()
                    .iter()
                    .find(|header| header.name().as_str() == name)
                    .and_then(|header| header.value().as_string().ok())
                    .map(|value| value.as_str().to_owned())
            };
            let message_type = header(":message-type").expect("a message type");
            let kind = header(":event-type")
                .or_else(|| header(":exception-type"))
                .expect("an event or exception type");
            let payload = serde_json::from_slice(message.payload()).expect("a JSON payload");
            frames.push((message_type, kind, payload));
        }
        frames
    }
}

async fn call(request: Request<Body>) -> Reply {
    let response = router().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: axum::body::to_bytes(body, usize::MAX).await,
    }
}

fn user(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": text}]}]})
}

fn top_song() -> Value {
    json!({"toolSpec": {
        "name": "top_song",
        "description": "Get the most popular song played on a radio station.",
        "inputSchema": {"json": {
            "type": "object",
            "properties": {"sign": {"type": "string"}},
            "required": ["sign"]
        }}
    }})
}

#[tokio::test]
async fn converse_echoes_over_a_signed_request() {
    let reply = call(request(
        Some(&MOCK),
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        &user("hello there"),
        &[],
    ))
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-amzn-requestid").map(str::len), Some(36));
    let value = reply.json();
    assert_eq!(
        value["output"],
        json!({"message": {"role": "assistant", "content": [{"text": "hello there"}]}})
    );
    assert_eq!(value["stopReason"], "end_turn");
    // 2 words + 3 per message.
    assert_eq!(
        value["usage"],
        json!({"inputTokens": 5, "outputTokens": 2, "totalTokens": 7})
    );
    assert!(value["metrics"]["latencyMs"].is_u64());

    // Options in the model id, `;`/`,` spelled; cached tokens are left out of inputTokens.
    let reply = call(request(
        Some(&MOCK),
        "/model/echo%3Btokens%3D3%2Ccached_tokens%3D2/converse",
        &user("ignored"),
        &[],
    ))
    .await;
    let value = reply.json();
    assert_eq!(
        value["output"]["message"]["content"][0]["text"],
        "tok1 tok2 tok3"
    );
    assert_eq!(
        value["usage"],
        json!({"inputTokens": 2, "outputTokens": 3, "totalTokens": 7, "cacheReadInputTokens": 2, "cacheWriteInputTokens": 0})
    );
}

#[tokio::test]
async fn signatures_are_verified() {
    let path = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
    let ok = call(request(Some(&MOCK), path, &user("hi"), &[])).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "an ARN model id, double-encoded in the signature"
    );

    let with_token = Signer {
        token: Some("session-token"),
        ..MOCK
    };
    let ok = call(request(Some(&with_token), path, &user("hi"), &[])).await;
    assert_eq!(ok.status, StatusCode::OK, "temporary credentials");

    let refused = |reply: &Reply, error_type: &str| {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let header = reply.header("x-amzn-errortype").expect("an error type");
        assert!(header.starts_with(&format!("{error_type}:")), "{header}");
    };
    let missing = call(request(None, path, &user("hi"), &[])).await;
    refused(&missing, "MissingAuthenticationTokenException");
    assert_eq!(
        missing.json(),
        json!({"message": "Missing Authentication Token"})
    );

    let wrong_secret = Signer {
        secret: "not-the-secret",
        ..MOCK
    };
    let reply = call(request(Some(&wrong_secret), path, &user("hi"), &[])).await;
    refused(&reply, "InvalidSignatureException");
    assert!(reply.json()["message"].as_str().is_some_and(|message| {
        message.starts_with("The request signature we calculated does not match")
    }));

    let unknown = Signer {
        access_key_id: "AKIDOTHER",
        ..MOCK
    };
    let reply = call(request(Some(&unknown), path, &user("hi"), &[])).await;
    refused(&reply, "UnrecognizedClientException");

    let other_service = Signer {
        service: "s3",
        ..MOCK
    };
    let reply = call(request(Some(&other_service), path, &user("hi"), &[])).await;
    refused(&reply, "InvalidSignatureException");

    // A body changed after signing.
    let mut tampered = request(Some(&MOCK), path, &user("hi"), &[]);
    *tampered.body_mut() = Body::from(user("bye").to_string());
    refused(&call(tampered).await, "InvalidSignatureException");

    let reply = call(request(
        None,
        path,
        &user("hi"),
        &[("authorization", "Bearer token")],
    ))
    .await;
    refused(&reply, "IncompleteSignatureException");
}

#[tokio::test]
async fn stream_sends_event_frames() {
    let reply = call(request(
        Some(&MOCK),
        "/model/echo%3Ftokens%3D3/converse-stream",
        &user("ignored"),
        &[],
    ))
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.amazon.eventstream")
    );
    let frames = reply.frames();
    let event = |kind: &str, payload: Value| ("event".to_owned(), kind.to_owned(), payload);
    let text = |piece: &str| {
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": piece}}),
        )
    };
    assert_eq!(
        frames,
        [
            event("messageStart", json!({"role": "assistant"})),
            text("tok1"),
            text(" tok2"),
            text(" tok3"),
            event("contentBlockStop", json!({"contentBlockIndex": 0})),
            event("messageStop", json!({"stopReason": "end_turn"})),
            event(
                "metadata",
                json!({
                    "usage": {"inputTokens": 4, "outputTokens": 3, "totalTokens": 7},
                    "metrics": {"latencyMs": 42}
                })
            ),
        ]
    );
}

#[tokio::test]
async fn tool_use_then_tool_result() {
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "What is the most popular song on WZPZ?"}]}],
        "toolConfig": {"tools": [top_song()]}
    });
    let reply = call(request(Some(&MOCK), "/model/echo/converse", &body, &[])).await;
    let value = reply.json();
    assert_eq!(value["stopReason"], "tool_use");
    let call_block = &value["output"]["message"]["content"][0]["toolUse"];
    assert_eq!(call_block["name"], "top_song");
    assert_eq!(call_block["input"], json!({"sign": "mock"}));
    let id = call_block["toolUseId"].as_str().expect("an id");
    assert!(id.starts_with("tooluse_"), "{id}");

    // Streamed: the call opens a block, its input comes in pieces.
    let reply = call(request(
        Some(&MOCK),
        "/model/echo/converse-stream",
        &body,
        &[],
    ))
    .await;
    let frames = reply.frames();
    let start = frames
        .iter()
        .find(|(_, kind, _)| kind == "contentBlockStart")
        .expect("a block start");
    assert_eq!(start.2["start"]["toolUse"]["name"], "top_song");
    let input: String = frames
        .iter()
        .filter_map(|(_, _, payload)| payload["delta"]["toolUse"]["input"].as_str())
        .collect();
    assert_eq!(input, r#"{"sign":"mock"}"#);
    assert!(
        frames
            .iter()
            .filter(|(_, _, payload)| payload["delta"]["toolUse"].is_object())
            .count()
            >= 2
    );

    let body = json!({
        "messages": [
            {"role": "user", "content": [{"text": "What is the most popular song on WZPZ?"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": id, "name": "top_song", "input": {"sign": "WZPZ"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": id, "content": [{"json": {"song": "Elemental Hotel"}}]}}]}
        ],
        "toolConfig": {"tools": [top_song()], "toolChoice": {"auto": {}}}
    });
    let reply = call(request(Some(&MOCK), "/model/echo/converse", &body, &[])).await;
    assert_eq!(
        reply.json()["output"]["message"]["content"][0]["text"],
        r#"tool result: {"song":"Elemental Hotel"}"#
    );
}

#[tokio::test]
async fn thinking_adds_a_signed_reasoning_block() {
    let mut body = user("hi");
    body["additionalModelRequestFields"] =
        json!({"thinking": {"type": "enabled", "budget_tokens": 1024}});
    let reply = call(request(Some(&MOCK), "/model/echo/converse", &body, &[])).await;
    let content = &reply.json()["output"]["message"]["content"];
    assert_eq!(
        content[0]["reasoningContent"]["reasoningText"]["text"],
        "Mock reasoning."
    );
    assert!(content[0]["reasoningContent"]["reasoningText"]["signature"].is_string());
    assert_eq!(content[1]["text"], "hi");
}

#[tokio::test]
async fn status_faults_have_bedrocks_shapes() {
    for (path, extra, status, error_type) in [
        (
            "/model/echo%3Bfail%3D429%2Cretry_after%3D3/converse",
            None,
            429,
            "ThrottlingException",
        ),
        (
            "/model/echo/converse",
            Some(("x-mock-fail", "503")),
            503,
            "ServiceUnavailableException",
        ),
        (
            "/model/echo/converse-stream",
            Some(("x-mock-fail", "500")),
            500,
            "InternalServerException",
        ),
        (
            "/model/echo/converse",
            Some(("x-mock-fail", "408")),
            408,
            "ModelTimeoutException",
        ),
        (
            "/model/echo/converse",
            Some(("x-mock-fail", "404")),
            404,
            "ResourceNotFoundException",
        ),
        (
            "/model/echo/converse",
            Some(("x-mock-fail", "403")),
            403,
            "AccessDeniedException",
        ),
        (
            "/model/echo/converse",
            Some(("x-mock-fail", "400")),
            400,
            "ValidationException",
        ),
    ] {
        let extra: Vec<(&str, &str)> = extra.into_iter().collect();
        let reply = call(request(Some(&MOCK), path, &user("hi"), &extra)).await;
        assert_eq!(reply.status.as_u16(), status, "{path} {extra:?}");
        let header = reply.header("x-amzn-errortype").expect("an error type");
        assert!(header.starts_with(&format!("{error_type}:")), "{header}");
        assert!(reply.json()["message"].is_string());
        if status == 429 {
            assert_eq!(reply.header("retry-after"), Some("3"));
        }
    }
}

#[tokio::test]
async fn stream_exceptions_cuts_and_filters() {
    // An exception frame after `cut_after` deltas ends the stream.
    let reply = call(request(
        Some(&MOCK),
        "/model/echo%3Btokens%3D5%2Cfail%3Dstream_exception%2Ccut_after%3D2/converse-stream",
        &user("ignored"),
        &[],
    ))
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let frames = reply.frames();
    assert_eq!(frames.len(), 4, "{frames:?}");
    let (message_type, kind, payload) = &frames[3];
    assert_eq!(
        (message_type.as_str(), kind.as_str()),
        ("exception", "modelStreamErrorException")
    );
    assert!(payload["message"].is_string());

    let reply = call(request(
        Some(&MOCK),
        "/model/echo/converse-stream",
        &user("one two"),
        &[
            ("x-mock-fail", "stream_exception:throttlingException"),
            ("x-mock-cut-after", "0"),
        ],
    ))
    .await;
    let frames = reply.frames();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[1].1, "throttlingException");

    // Not streamed, the exception is the matching error answer.
    let reply = call(request(
        Some(&MOCK),
        "/model/echo/converse",
        &user("hi"),
        &[("x-mock-fail", "stream_exception")],
    ))
    .await;
    assert_eq!(reply.status.as_u16(), 424);
    assert!(
        reply
            .header("x-amzn-errortype")
            .is_some_and(|header| header.starts_with("ModelErrorException:"))
    );

    // A cut stream breaks its body.
    let reply = call(request(
        Some(&MOCK),
        "/model/echo%3Bfail%3Dcut/converse-stream",
        &user("one two three"),
        &[],
    ))
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_err());

    // A malformed frame is well framed with a payload that is not JSON.
    let reply = call(request(
        Some(&MOCK),
        "/model/echo%3Bfail%3Dmalformed/converse-stream",
        &user("one two three"),
        &[],
    ))
    .await;
    let mut bytes: &[u8] = reply.body.as_ref().expect("complete");
    let mut payloads = Vec::new();
    while !bytes.is_empty() {
        payloads.push(
            read_message_from(&mut bytes)
                .expect("framed")
                .payload()
                .clone(),
        );
    }
    assert!(
        payloads
            .iter()
            .any(|payload| payload.as_ref() == b"{this is not json")
    );

    // Content filters and guardrails.
    let reply = call(request(
        Some(&MOCK),
        "/model/echo%3Bfail%3Dsafety/converse",
        &user("hi"),
        &[],
    ))
    .await;
    let value = reply.json();
    assert_eq!(value["stopReason"], "content_filtered");
    assert_eq!(value["output"]["message"]["content"], json!([]));
    let reply = call(request(
        Some(&MOCK),
        "/model/echo%3Bfail%3Dblocked/converse",
        &user("hi"),
        &[],
    ))
    .await;
    let value = reply.json();
    assert_eq!(value["stopReason"], "guardrail_intervened");
    assert_eq!(
        value["output"]["message"]["content"][0]["text"],
        "Sorry, the model cannot answer this question."
    );
}

#[tokio::test]
async fn validation_errors_are_bedrocks() {
    for body in [
        json!({"messages": []}),
        json!({"messages": [{"role": "user", "content": [{"text": ""}]}]}),
        json!({"messages": [
            {"role": "user", "content": [{"text": "hi"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "x", "input": {}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "r"}]}}]}
        ]}),
        json!({
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "toolConfig": {"tools": [top_song()], "toolChoice": {"tool": {"name": "other"}}}
        }),
    ] {
        let reply = call(request(Some(&MOCK), "/model/echo/converse", &body, &[])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            reply
                .header("x-amzn-errortype")
                .is_some_and(|header| header.starts_with("ValidationException:"))
        );
    }
    let reply = call(request(
        Some(&MOCK),
        "/model/echo%3Btokens%3Dmany/converse",
        &user("hi"),
        &[],
    ))
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[test]
fn stream_exception_is_taken_out_of_the_options() {
    use axum::http::{HeaderMap, HeaderValue};

    let (model, _, exception) =
        super::stream_exception("echo;fail=stream_exception,tokens=2", &HeaderMap::new());
    assert_eq!(model, "echo?tokens=2");
    assert_eq!(exception.as_deref(), Some("modelStreamErrorException"));

    let mut headers = HeaderMap::new();
    headers.insert("x-mock-fail", HeaderValue::from_static("500"));
    let (model, headers, exception) =
        super::stream_exception("echo?fail=stream_exception:throttlingException", &headers);
    assert_eq!(model, "echo?");
    assert_eq!(exception, None, "the header wins");
    assert!(headers.contains_key("x-mock-fail"));

    let (model, _, exception) = super::stream_exception("anthropic.claude-v2:1", &HeaderMap::new());
    assert_eq!(model, "anthropic.claude-v2:1");
    assert_eq!(exception, None);
}
