//! Clients that misbehave at the connection level: silent, slow, idle, unfinished bodies,
//! oversized heads, too many connections. Each is closed or refused, and the gateway keeps
//! serving everyone else.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::{self, Setup};

/// Short limits, so the tests see them act.
fn config(extra: &str) -> String {
    format!(
        "server:\n  header_read_timeout_secs: 0.3\n  body_read_timeout_secs: 0.3\n{extra}models:\n  - name: gpt\n    deployments:\n      - provider: openai_compatible\n        model: echo\n        api_base: \"{{MOCK}}\"\n        api_key: k\n"
    )
}

const REQUEST: &str = "POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 58\r\n\r\n{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";

/// Everything the peer sends until it closes the connection, if it does within `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

async fn connect(setup: &Setup) -> TcpStream {
    TcpStream::connect(setup.gateway.addr())
        .await
        .expect("connects")
}

/// Regression: the server had no timer, so no header timeout: silent, slow and idle
/// connections stayed open forever.
#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let setup = support::start(&config("")).await;
    let mut silent = connect(&setup).await;
    let mut idle = connect(&setup).await;
    idle.write_all(REQUEST.as_bytes()).await.expect("write");
    let mut slow = connect(&setup).await;
    let (mut slow_read, mut slow_write) = slow.split();
    let trickle = async {
        for byte in REQUEST.bytes().take(40) {
            if slow_write.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let closed = async {
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(2), slow_read.read_to_end(&mut got))
            .await
            .is_ok()
    };
    let ((), slow_closed) = tokio::join!(trickle, closed);
    assert!(
        slow_closed,
        "a client trickling its headers kept its connection"
    );
    assert!(
        until_closed(&mut silent, Duration::from_secs(2))
            .await
            .is_some(),
        "a silent connection stayed open"
    );
    let answered = until_closed(&mut idle, Duration::from_secs(2))
        .await
        .expect("an idle keep-alive connection stayed open");
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
}

/// Regression: a body shorter than its Content-Length held the request open forever.
#[tokio::test]
async fn an_unfinished_body_is_a_408_in_the_clients_shape() {
    let setup = support::start(&config("")).await;
    let mut stream = connect(&setup).await;
    stream
        .write_all(&REQUEST.as_bytes()[..REQUEST.len() - 20])
        .await
        .expect("write");
    let answer = until_closed(&mut stream, Duration::from_secs(3))
        .await
        .expect("the connection stayed open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
}

/// A request head past `server.max_header_bytes` is refused, not buffered.
#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let setup = support::start(&config("  max_header_bytes: 16384\n")).await;
    let mut stream = connect(&setup).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let answer = until_closed(&mut stream, Duration::from_secs(3))
        .await
        .expect("the connection stayed open");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Everyone else is still served.
    let response = setup
        .openai(
            &serde_json::json!({"model": "gpt", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

/// Regression: connections were unbounded; 20,000 idle ones exhausted file descriptors.
#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let setup = support::start(
        "server:\n  max_connections: 2\nmodels:\n  - name: gpt\n    deployments:\n      - provider: openai_compatible\n        model: echo\n        api_base: \"{MOCK}\"\n        api_key: k\n",
    )
    .await;
    let held = [connect(&setup).await, connect(&setup).await];
    let ask = || async {
        let client = support::test_client(Duration::from_secs(1));
        client
            .post(setup.url("/v1/chat/completions"))
            .json(&serde_json::json!({"model": "gpt", "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
    };
    let waited = tokio::time::timeout(Duration::from_millis(500), ask()).await;
    assert!(
        waited.is_err(),
        "a third connection was served past the limit"
    );
    drop(held);
    let served = tokio::time::timeout(Duration::from_secs(3), ask())
        .await
        .expect("served once connections closed")
        .expect("sent");
    assert_eq!(served.status(), 200);
}

/// Regression: 20 near-limit bodies took the process to ~760 MB; bodies held at once are now
/// bounded over the process, and a request past the bound is a 503, not more memory.
#[tokio::test]
async fn bodies_past_the_in_flight_budget_are_a_503() {
    let setup = support::start(
        "server:\n  body_limit_bytes: 100000\n  max_body_bytes_in_flight: 150000\nmodels:\n  - name: slow\n    deployments:\n      - provider: openai_compatible\n        model: \"echo?latency_ms=1000\"\n        api_base: \"{MOCK}\"\n        api_key: k\n  - name: gpt\n    deployments:\n      - provider: openai_compatible\n        model: echo\n        api_base: \"{MOCK}\"\n        api_key: k\n",
    )
    .await;
    let body = |model: &str| serde_json::json!({"model": model, "messages": [{"role": "user", "content": "x".repeat(90_000)}]});
    let slow = body("slow");
    let held = setup.openai(&slow);
    let refused = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        setup.openai(&body("gpt")).await
    };
    let (held, refused) = tokio::join!(held, refused);
    assert_eq!(held.status(), 200);
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(error["error"]["code"], "server_busy");
    // Once the first request ended, its share is free again.
    assert_eq!(setup.openai(&body("gpt")).await.status(), 200);
}
