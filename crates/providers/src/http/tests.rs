use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// How a test server answers each request on a connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Keep-alive answers, `hello` as the body.
    KeepAlive,
    /// Answer once, then close the connection without saying so.
    CloseAfterOne,
    /// A chunked answer: a first chunk, then the rest after a pause.
    SlowChunked,
}

/// A raw HTTP/1.1 server counting the connections it accepted; returns its base URL.
async fn server(behaviour: Behaviour, accepted: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(answer(stream, behaviour));
        }
    });
    format!("http://{addr}")
}

async fn answer(mut stream: TcpStream, behaviour: Behaviour) {
    let mut buffer = Vec::new();
    loop {
        // Read one request: a head, then a body of its content-length.
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        let reply: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        match behaviour {
            Behaviour::KeepAlive => {
                if stream.write_all(reply).await.is_err() {
                    return;
                }
            }
            Behaviour::CloseAfterOne => {
                let _ = stream.write_all(reply).await;
                return;
            }
            Behaviour::SlowChunked => {
                let first = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n";
                if stream.write_all(first).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(b"4\r\nrest\r\n0\r\n\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
}

fn client() -> Client {
    Client::new(Duration::from_secs(2)).expect("a client")
}

async fn post(client: &Client, url: &str) -> Response {
    let target = Target::parse(url).expect("a URL");
    client
        .post(&target, HeaderMap::new(), Bytes::from_static(b"{}"))
        .await
        .expect("an answer")
}

#[tokio::test]
async fn sequential_calls_share_one_connection() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let base = server(Behaviour::KeepAlive, Arc::clone(&accepted)).await;
    let client = client();
    for _ in 0..5 {
        let response = post(&client, &format!("{base}/v1/chat/completions")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes(usize::MAX).await.expect("a body"), "hello");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_calls_open_their_own_connections_and_keep_them() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let base = server(Behaviour::KeepAlive, Arc::clone(&accepted)).await;
    let client = client();
    let url = format!("{base}/x");
    for _ in 0..3 {
        let (a, b) = tokio::join!(post(&client, &url), post(&client, &url));
        let (a, b) = tokio::join!(a.bytes(usize::MAX), b.bytes(usize::MAX));
        assert_eq!(a.expect("a body"), "hello");
        assert_eq!(b.expect("a body"), "hello");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_reused() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let base = server(Behaviour::CloseAfterOne, Arc::clone(&accepted)).await;
    let client = client();
    for _ in 0..3 {
        let response = post(&client, &format!("{base}/x")).await;
        assert_eq!(response.bytes(usize::MAX).await.expect("a body"), "hello");
        // Let the close reach this side before the next call.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_its_connection() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let base = server(Behaviour::SlowChunked, Arc::clone(&accepted)).await;
    let client = client();
    let mut response = post(&client, &format!("{base}/x")).await;
    assert_eq!(
        response.chunk().await.expect("a chunk").as_deref(),
        Some(&b"first"[..])
    );
    drop(response);
    let response = post(&client, &format!("{base}/x")).await;
    assert_eq!(
        response.bytes(usize::MAX).await.expect("a body"),
        "firstrest"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // Read to the end, the second one goes back to the pool.
    let response = post(&client, &format!("{base}/x")).await;
    assert_eq!(
        response.bytes(usize::MAX).await.expect("a body"),
        "firstrest"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_failures_are_told_apart() {
    // A port nothing listens on: refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    let target = Target::parse(&format!("http://127.0.0.1:{port}/x")).expect("a URL");
    let error = client()
        .post(&target, HeaderMap::new(), Bytes::new())
        .await
        .expect_err("refused");
    assert!(error.is_connect(), "{error}");

    // A server that accepts but never answers the TLS handshake: the connect timeout, which
    // covers TCP and TLS together.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = silent.local_addr().expect("an address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let client = Client::new(Duration::from_millis(100)).expect("a client");
    let target = Target::parse(&format!("https://localhost:{}/x", addr.port())).expect("a URL");
    let started = std::time::Instant::now();
    let error = client
        .post(&target, HeaderMap::new(), Bytes::new())
        .await
        .expect_err("times out");
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn targets_keep_path_query_and_authority() {
    let target = Target::parse(
        "https://example.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
    )
    .expect("a URL");
    assert_eq!(target.origin.port, 443);
    assert!(target.origin.https);
    assert_eq!(
        target.uri,
        "/openai/deployments/d/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(target.host, "example.com");

    let target = Target::parse("http://[::1]:8080/v1/chat").expect("a URL");
    assert_eq!(&*target.origin.host, "::1");
    assert_eq!(target.origin.port, 8080);
    assert_eq!(target.host, "[::1]:8080");

    let target = Target::parse("http://localhost:11434").expect("a URL");
    assert_eq!(target.uri, "/");
    assert_eq!(target.origin.port, 11434);

    for bad in ["ftp://example.com/x", "not a url", "unix:/tmp/socket"] {
        assert!(Target::parse(bad).is_err(), "{bad}");
    }
}

fn proxies(pairs: &[(&str, &str)]) -> Proxies {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    Proxies::from_lookup(|name| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    })
}

fn origin(url: &str) -> Origin {
    Target::parse(url).expect("a URL").origin
}

#[test]
fn proxies_come_from_the_environment_with_exceptions() {
    let set = proxies(&[
        ("HTTPS_PROXY", "http://user:p%40ss@proxy.corp:3128"),
        ("http_proxy", "plain.corp:8080"),
        (
            "NO_PROXY",
            "localhost, .internal.corp, 10.0.0.0/8, ::1, api.example.com",
        ),
    ]);
    let https = set
        .for_origin(&origin("https://api.openai.com/v1"))
        .expect("proxied");
    assert_eq!((&*https.host, https.port), ("proxy.corp", 3128));
    // user:p@ss, the password percent-decoded.
    assert_eq!(
        https.authorization.as_ref().expect("credentials"),
        "Basic dXNlcjpwQHNz"
    );
    let http = set
        .for_origin(&origin("http://vllm.lab:8000/v1"))
        .expect("proxied");
    assert_eq!(
        (&*http.host, http.port, http.authorization.is_none()),
        ("plain.corp", 8080, true)
    );
    for direct in [
        "http://localhost:11434",
        "https://llm.internal.corp/v1",
        "https://internal.corp/v1",
        "http://10.2.3.4:8000",
        "http://[::1]:8000",
        "https://api.example.com/v1",
    ] {
        assert!(set.for_origin(&origin(direct)).is_none(), "{direct}");
    }
    // Only whole labels match: `notinternal.corp` is not under `.internal.corp`.
    assert!(
        set.for_origin(&origin("https://notinternal.corp"))
            .is_some()
    );
    assert!(set.for_origin(&origin("http://11.0.0.1")).is_some());

    let all = proxies(&[("ALL_PROXY", "http://fallback:1080"), ("NO_PROXY", "*")]);
    assert!(all.for_origin(&origin("https://api.openai.com")).is_none());
    let all = proxies(&[("ALL_PROXY", "http://fallback:1080")]);
    assert_eq!(
        &*all
            .for_origin(&origin("https://api.openai.com"))
            .expect("proxied")
            .host,
        "fallback"
    );
    // A proxy that is not plain HTTP is ignored rather than half-used.
    assert!(!proxies(&[("HTTPS_PROXY", "socks5://proxy:1080")]).any());
    assert!(!proxies(&[]).any());
}

/// A proxy that answers every request itself, recording what it was sent.
async fn recording_proxy(
    reply: &'static [u8],
) -> (u16, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let port = listener.local_addr().expect("an address").port();
    let (seen, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buffer.windows(4).any(|window| window == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = seen.send(buffer);
                let _ = stream.write_all(reply).await;
                // After a tunnel is granted, what the client sends next is a TLS hello.
                if let Ok(n) = stream.read(&mut chunk).await {
                    let _ = seen.send(chunk[..n].to_vec());
                }
            });
        }
    });
    (port, received)
}

#[tokio::test]
async fn plain_http_goes_to_the_proxy_in_absolute_form() {
    let (port, mut seen) =
        recording_proxy(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nproxied").await;
    let client = Client::with_proxies(
        Duration::from_secs(2),
        proxies(&[("HTTP_PROXY", &format!("http://me:secret@127.0.0.1:{port}"))]),
    )
    .expect("a client");
    let target =
        Target::parse("http://upstream.example:8000/v1/chat/completions?x=1").expect("a URL");
    let response = client
        .post(&target, HeaderMap::new(), Bytes::from_static(b"{}"))
        .await
        .expect("an answer");
    assert_eq!(response.bytes(usize::MAX).await.expect("a body"), "proxied");
    let request = String::from_utf8(seen.recv().await.expect("a request")).expect("text");
    assert!(
        request
            .starts_with("POST http://upstream.example:8000/v1/chat/completions?x=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("host: upstream.example:8000\r\n"),
        "{request}"
    );
    assert!(
        request.contains("proxy-authorization: Basic bWU6c2VjcmV0\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn https_goes_through_a_connect_tunnel() {
    let (port, mut seen) = recording_proxy(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
    let client = Client::with_proxies(
        Duration::from_millis(500),
        proxies(&[("HTTPS_PROXY", &format!("127.0.0.1:{port}"))]),
    )
    .expect("a client");
    let target = Target::parse("https://api.openai.com/v1/chat/completions").expect("a URL");
    // The recording proxy takes the TLS hello and hangs up: the call fails connecting.
    let error = client
        .post(&target, HeaderMap::new(), Bytes::new())
        .await
        .expect_err("no TLS behind this proxy");
    assert!(error.is_connect(), "{error}");
    let connect = String::from_utf8(seen.recv().await.expect("a CONNECT")).expect("text");
    assert_eq!(
        connect,
        "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n"
    );
    // Through the tunnel: a TLS ClientHello (a handshake record), never plain text.
    let hello = seen.recv().await.expect("bytes through the tunnel");
    assert_eq!(hello.first(), Some(&0x16));

    // A proxy that refuses the tunnel is a connection failure, with its status.
    let (port, _seen) =
        recording_proxy(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
            .await;
    let client = Client::with_proxies(
        Duration::from_secs(2),
        proxies(&[("HTTPS_PROXY", &format!("http://127.0.0.1:{port}"))]),
    )
    .expect("a client");
    let error = client
        .post(&target, HeaderMap::new(), Bytes::new())
        .await
        .expect_err("refused");
    assert!(error.is_connect(), "{error}");
    assert!(error.to_string().contains("407"), "{error}");
}
