//! End-to-end tests: a [`MockServer`] on `127.0.0.1:0`, driven over raw HTTP/1.1 on a TCP
//! socket (the crate has no HTTP client dependency).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether a chunked body ended with its terminating chunk.
    complete: bool,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
}

async fn start() -> MockServer {
    MockServer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("binds")
}

fn raw_request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request
}

async fn open(server: &MockServer, request: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr()).await.expect("connects");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("writes request");
    stream
}

/// Reads until the server closes; an abort (reset) ends the read like a close.
async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return bytes,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
        }
    }
}

fn parse(bytes: &[u8]) -> Reply {
    let split = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a response head");
    let head = std::str::from_utf8(&bytes[..split]).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    let mut rest = &bytes[split + 4..];
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value == "chunked");
    if !chunked {
        return Reply {
            status,
            headers,
            body: rest.to_vec(),
            complete: true,
        };
    }
    let mut body = Vec::new();
    let mut complete = false;
    while let Some(end) = rest.windows(2).position(|window| window == b"\r\n") {
        let size_text = std::str::from_utf8(&rest[..end]).expect("chunk size");
        let size = usize::from_str_radix(size_text.trim(), 16).expect("hex size");
        if size == 0 {
            complete = true;
            break;
        }
        let start = end + 2;
        if rest.len() < start + size + 2 {
            body.extend_from_slice(&rest[start.min(rest.len())..]);
            break;
        }
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
    Reply {
        status,
        headers,
        body,
        complete,
    }
}

async fn exchange(
    server: &MockServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = open(server, &raw_request(method, path, headers, body)).await;
    parse(&read_all(&mut stream).await)
}

const OPENAI_AUTH: (&str, &str) = ("authorization", "Bearer sk-test");
const ANTHROPIC_AUTH: [(&str, &str); 2] =
    [("x-api-key", "sk-ant"), ("anthropic-version", "2023-06-01")];

async fn wait_for(server: &MockServer, done: impl Fn(&MockStats) -> bool) -> MockStats {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stats = server.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn health_stats_and_models() {
    let server = start().await;
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    let health = exchange(&server, "GET", "/health", &[], "").await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
    let stats = exchange(&server, "GET", "/mock/stats", &[], "").await;
    let stats: MockStats = serde_json::from_slice(&stats.body).expect("stats JSON");
    assert_eq!(stats, MockStats::default());
    for path in ["/v1/models", "/models"] {
        let models = exchange(&server, "GET", path, &[], "").await;
        assert_eq!(models.json()["object"], "list");
    }
}

#[tokio::test]
async fn openai_completion_over_http() {
    let server = start().await;
    let body = json!({"model": "echo?tokens=3", "messages": [{"role": "user", "content": "hi"}]});
    for path in ["/v1/chat/completions", "/chat/completions"] {
        let reply = exchange(&server, "POST", path, &[OPENAI_AUTH], &body.to_string()).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(reply.header("x-request-id").is_some());
        let value = reply.json();
        assert_eq!(value["model"], "echo?tokens=3");
        assert_eq!(value["choices"][0]["message"]["content"], "tok1 tok2 tok3");
        assert_eq!(value["usage"]["prompt_tokens"], 4);
    }
    assert_eq!(server.stats().requests, 2);
}

#[tokio::test]
async fn anthropic_message_over_http() {
    let server = start().await;
    let body = json!({
        "model": "claude", "max_tokens": 2,
        "messages": [{"role": "user", "content": "one two three"}]
    });
    let reply = exchange(
        &server,
        "POST",
        "/v1/messages",
        &ANTHROPIC_AUTH,
        &body.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );
    let value = reply.json();
    assert_eq!(value["content"][0]["text"], "one two");
    assert_eq!(value["stop_reason"], "max_tokens");
}

#[tokio::test]
async fn anthropic_thinking_is_checked_per_claude_generation() {
    let server = start().await;
    let status = |body: Value| {
        let server = &server;
        async move {
            let reply = exchange(
                server,
                "POST",
                "/v1/messages",
                &ANTHROPIC_AUTH,
                &body.to_string(),
            )
            .await;
            (reply.status, reply.json())
        }
    };
    let user = json!([{"role": "user", "content": "hi"}]);
    let enabled = json!({"type": "enabled", "budget_tokens": 2048});
    let adaptive = json!({"type": "adaptive"});
    for (model, thinking, extra, expected) in [
        ("claude-opus-4-7", enabled.clone(), json!({}), 400),
        (
            "claude-opus-4-7",
            adaptive.clone(),
            json!({"output_config": {"effort": "xhigh"}}),
            200,
        ),
        ("claude-sonnet-4-5", adaptive.clone(), json!({}), 400),
        ("claude-sonnet-4-5", enabled.clone(), json!({}), 200),
        (
            "claude-sonnet-4-5",
            enabled.clone(),
            json!({"temperature": 0.5}),
            400,
        ),
        (
            "claude-sonnet-4-5",
            json!({"type": "enabled", "budget_tokens": 500}),
            json!({}),
            400,
        ),
        (
            "claude-sonnet-4-5",
            json!({"type": "enabled", "budget_tokens": 9000}),
            json!({}),
            400,
        ),
        ("claude-opus-4-6", enabled.clone(), json!({}), 200),
        ("claude-opus-4-6", adaptive.clone(), json!({}), 200),
        // The mock's own names take anything.
        ("echo", enabled, json!({"temperature": 0.5}), 200),
    ] {
        let mut body =
            json!({"model": model, "max_tokens": 4096, "messages": user, "thinking": thinking});
        for (key, value) in extra.as_object().expect("object") {
            body[key] = value.clone();
        }
        let (got, reply) = status(body.clone()).await;
        assert_eq!(got, expected, "{body}: {reply}");
        if expected == 200 {
            assert_eq!(reply["content"][0]["type"], "thinking", "{reply}");
        }
    }
}

#[tokio::test]
async fn authentication_and_validation_errors() {
    let server = start().await;
    let chat = json!({"model": "m", "messages": []}).to_string();
    let missing = exchange(&server, "POST", "/v1/chat/completions", &[], &chat).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"]["code"], "invalid_api_key");
    assert_eq!(missing.json()["error"]["type"], "invalid_request_error");
    let invalid = [("authorization", "Bearer invalid")];
    let refused = exchange(&server, "POST", "/v1/chat/completions", &invalid, &chat).await;
    assert_eq!(refused.status, 401);
    for body in [
        "{not json",
        r#"{"messages": []}"#,
        r#"{"model": "m"}"#,
        r#"{"model": "m?tokens=x", "messages": []}"#,
    ] {
        let reply = exchange(
            &server,
            "POST",
            "/v1/chat/completions",
            &[OPENAI_AUTH],
            body,
        )
        .await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    }

    let message = json!({"model": "m", "max_tokens": 5, "messages": []}).to_string();
    let no_key = exchange(&server, "POST", "/v1/messages", &[], &message).await;
    assert_eq!(no_key.status, 401);
    let error = no_key.json();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "authentication_error");
    assert!(
        error["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("req_"))
    );
    let no_version = exchange(
        &server,
        "POST",
        "/v1/messages",
        &[("x-api-key", "k")],
        &message,
    )
    .await;
    assert_eq!(no_version.status, 400);
    assert_eq!(no_version.json()["error"]["type"], "invalid_request_error");
    let no_max = json!({"model": "m", "messages": []}).to_string();
    let reply = exchange(&server, "POST", "/v1/messages", &ANTHROPIC_AUTH, &no_max).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["error"]["message"],
        "max_tokens: Field required"
    );
}

#[tokio::test]
async fn status_faults_carry_provider_shapes_and_headers() {
    let server = start().await;
    let chat = json!({"model": "m", "messages": []}).to_string();
    let headers = [
        OPENAI_AUTH,
        ("x-mock-fail", "429"),
        ("x-mock-retry-after", "7"),
    ];
    let limited = exchange(&server, "POST", "/v1/chat/completions", &headers, &chat).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(limited.json()["error"]["code"], "rate_limit_exceeded");

    let message = json!({"model": "m?fail=529", "max_tokens": 5, "messages": []}).to_string();
    let overloaded = exchange(&server, "POST", "/v1/messages", &ANTHROPIC_AUTH, &message).await;
    assert_eq!(overloaded.status, 529);
    assert_eq!(overloaded.json()["error"]["type"], "overloaded_error");
    let message = json!({"model": "m?fail=429", "max_tokens": 5, "messages": []}).to_string();
    let limited = exchange(&server, "POST", "/v1/messages", &ANTHROPIC_AUTH, &message).await;
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert!(
        limited
            .header("anthropic-ratelimit-requests-reset")
            .is_some_and(|reset| reset.ends_with('Z'))
    );
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn latency_delays_the_response() {
    let server = start().await;
    let chat = json!({"model": "m?latency_ms=60", "messages": []}).to_string();
    let started = Instant::now();
    let reply = exchange(
        &server,
        "POST",
        "/v1/chat/completions",
        &[OPENAI_AUTH],
        &chat,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(60));
}

#[tokio::test]
async fn completed_stream_is_counted() {
    let server = start().await;
    let chat = json!({"model": "m?tokens=3", "stream": true, "messages": []}).to_string();
    let reply = exchange(
        &server,
        "POST",
        "/v1/chat/completions",
        &[OPENAI_AUTH],
        &chat,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.complete);
    assert_eq!(
        reply.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert!(reply.text().ends_with("data: [DONE]\n\n"));
    let stats = wait_for(&server, |stats| stats.completed_streams == 1).await;
    assert_eq!(
        stats,
        MockStats {
            requests: 1,
            active_streams: 0,
            completed_streams: 1,
            ..MockStats::default()
        }
    );
}

#[tokio::test]
async fn cancelled_stream_is_counted() {
    let server = start().await;
    let chat = json!({
        "model": "m?tokens=200&chunk_delay_ms=10", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]
    })
    .to_string();
    let mut stream = open(
        &server,
        &raw_request("POST", "/v1/chat/completions", &[OPENAI_AUTH], &chat),
    )
    .await;
    let mut seen = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("tok1") {
        let n = stream.read(&mut buffer).await.expect("reads");
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&buffer[..n]);
    }
    assert_eq!(server.stats().active_streams, 1);
    drop(stream);
    let stats = wait_for(&server, |stats| stats.cancelled_streams == 1).await;
    assert_eq!(
        stats,
        MockStats {
            requests: 1,
            active_streams: 0,
            cancelled_streams: 1,
            ..MockStats::default()
        }
    );
}

#[tokio::test]
async fn cut_stream_ends_without_done() {
    let server = start().await;
    let message = json!({
        "model": "m?tokens=5&fail=cut&cut_after=2", "stream": true, "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}]
    })
    .to_string();
    let reply = exchange(&server, "POST", "/v1/messages", &ANTHROPIC_AUTH, &message).await;
    assert_eq!(reply.status, 200);
    assert!(!reply.complete, "the chunked body must not be terminated");
    let text = reply.text();
    assert!(text.contains("\"text\":\" tok2\""));
    assert!(!text.contains("tok3") && !text.contains("message_stop"));
}

#[tokio::test]
async fn non_stream_cut_and_malformed() {
    let server = start().await;
    let chat = json!({"model": "m?fail=cut", "messages": [{"role": "user", "content": "hi"}]});
    let mut stream = open(
        &server,
        &raw_request(
            "POST",
            "/v1/chat/completions",
            &[OPENAI_AUTH],
            &chat.to_string(),
        ),
    )
    .await;
    let reply = parse(&read_all(&mut stream).await);
    let length: usize = reply
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .expect("length");
    assert!(reply.body.len() < length);

    let chat = json!({"model": "m?fail=malformed", "messages": []}).to_string();
    let reply = exchange(
        &server,
        "POST",
        "/v1/chat/completions",
        &[OPENAI_AUTH],
        &chat,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
}

#[tokio::test]
async fn reset_sends_no_complete_response() {
    let server = start().await;
    let chat = json!({"model": "m?fail=reset", "messages": []}).to_string();
    let mut stream = open(
        &server,
        &raw_request("POST", "/v1/chat/completions", &[OPENAI_AUTH], &chat),
    )
    .await;
    let bytes = read_all(&mut stream).await;
    let text = String::from_utf8_lossy(&bytes);
    let complete = !bytes.is_empty()
        && parse(&bytes).complete
        && parse(&bytes).header("transfer-encoding").is_some();
    assert!(!complete, "got a complete response: {text}");
}

#[tokio::test]
async fn hang_ends_on_shutdown() {
    let server = start().await;
    let chat = json!({"model": "m?fail=hang", "messages": []}).to_string();
    let mut stream = open(
        &server,
        &raw_request("POST", "/v1/chat/completions", &[OPENAI_AUTH], &chat),
    )
    .await;
    let mut buffer = [0_u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await;
    assert!(waited.is_err(), "a hanging request sends nothing");
    tokio::time::timeout(Duration::from_secs(3), server.shutdown())
        .await
        .expect("shutdown ends the hang");
}

mod gemini;
