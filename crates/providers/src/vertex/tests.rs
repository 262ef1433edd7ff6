//! Vertex AI against `switchyard-mock` over HTTP: the token exchange (which the mock verifies
//! with the test key's public half), the cache, and a `generateContent` call with the token;
//! and the API base.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::ExposeSecret;
use switchyard_mock::MockServer;
use switchyard_types::{ChatRequest, ContentPart, ErrorKind, Message, Origin, Role};
use tokio::time::Instant;

use super::*;
use crate::gemini;

const FIXTURE: &str = include_str!("../../tests/fixtures/vertex/service_account.json");

async fn start() -> MockServer {
    MockServer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("binds")
}

fn client() -> crate::http::Client {
    crate::http::client(Duration::from_secs(5)).expect("a client")
}

/// The test account, exchanging its JWTs at `server`'s token endpoint (plus `query`).
fn account(server: &MockServer, query: &str) -> ServiceAccount {
    ServiceAccount::from_json(FIXTURE)
        .expect("reads")
        .with_token_uri(&format!("{}/token{query}", server.base_url()))
        .expect("a URL")
}

/// A fixture key file with `field` replaced.
fn fixture_with(field: &str, value: &str) -> String {
    let mut file: serde_json::Value = serde_json::from_str(FIXTURE).expect("JSON");
    file[field] = value.into();
    file.to_string()
}

/// A `generateContent` call for `request` to the mock's Vertex route in `location`.
async fn generate_content(
    server: &MockServer,
    client: &crate::http::Client,
    location: &str,
    authorization: http::HeaderValue,
    request: &ChatRequest,
) -> crate::http::Response {
    let url = format!(
        "{}{}/{}",
        server.base_url(),
        resource_path("switchyard-test", location),
        gemini::method_path("gemini-2.5-flash", false)
    );
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, authorization);
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let target = crate::http::Target::parse(&url).expect("a URL");
    let body = gemini::request::encode(request, "gemini-2.5-flash").expect("encodes");
    client
        .post(&target, headers, body.into())
        .await
        .expect("the mock answers")
}

#[test]
fn api_bases_are_regional_or_global() {
    assert_eq!(
        api_base("switchyard-test", "us-central1"),
        "https://us-central1-aiplatform.googleapis.com/v1/projects/switchyard-test/locations/\
         us-central1/publishers/google"
    );
    assert_eq!(
        api_base("switchyard-test", "global"),
        "https://aiplatform.googleapis.com/v1/projects/switchyard-test/locations/global/\
         publishers/google"
    );
    assert_eq!(
        format!(
            "{}/{}",
            api_base("p", "europe-west4"),
            gemini::method_path("gemini-2.5-flash", true)
        ),
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/\
         publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
}

#[tokio::test]
async fn a_token_from_the_mock_calls_generate_content() {
    let server = start().await;
    let client = client();
    let tokens = TokenSource::new(account(&server, ""));
    let authorization = tokens.authorization(&client).await.expect("a token");
    assert!(authorization.is_sensitive());
    assert!(
        authorization
            .to_str()
            .expect("ascii")
            .starts_with("Bearer ya29.mock-"),
        "{authorization:?}"
    );

    let request = ChatRequest {
        model: "vertex".into(),
        messages: vec![Message::text_message(Role::User, "hello from vertex")],
        ..ChatRequest::default()
    };
    let response = generate_content(&server, &client, "us-central1", authorization, &request).await;
    assert_eq!(response.status(), 200);
    let body = response.bytes(usize::MAX).await.expect("a body");
    let answer = gemini::response::decode(&body, &request).expect("decodes");
    assert_eq!(
        answer.choices[0].content,
        vec![ContentPart::text("hello from vertex")]
    );

    // A made-up token is Google's 401, read as an authentication error.
    let made_up = http::HeaderValue::from_static("Bearer ya29.made-up");
    let response = generate_content(&server, &client, "global", made_up, &request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes(usize::MAX).await.expect("a body");
    let error = gemini::error::decode(status, &headers, &body);
    assert_eq!(error.kind, ErrorKind::Authentication);
    assert_eq!(error.code.as_deref(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn tokens_are_cached_until_a_minute_before_they_expire() {
    let server = start().await;
    let client = client();
    let start = Instant::now();
    let offset = Arc::new(AtomicU64::new(0));
    let clock = {
        let offset = Arc::clone(&offset);
        move || start + Duration::from_secs(offset.load(Ordering::SeqCst))
    };
    let tokens = TokenSource::with_clock(account(&server, ""), clock);
    let first = tokens.token(&client).await.expect("a token");
    // The mock issues a new token on every exchange: the same token means no exchange.
    let again = tokens.token(&client).await.expect("a token");
    assert_eq!(again.expose_secret(), first.expose_secret());
    // 3599 s tokens are refreshed from 3539 s on.
    offset.store(3538, Ordering::SeqCst);
    let late = tokens.token(&client).await.expect("a token");
    assert_eq!(late.expose_secret(), first.expose_secret());
    offset.store(3539, Ordering::SeqCst);
    let renewed = tokens.token(&client).await.expect("a token");
    assert_ne!(renewed.expose_secret(), first.expose_secret());
    let cached = tokens.token(&client).await.expect("a token");
    assert_eq!(cached.expose_secret(), renewed.expose_secret());
}

#[tokio::test]
async fn tokens_shorter_than_the_margin_serve_one_call() {
    let server = start().await;
    let client = client();
    let tokens = TokenSource::new(account(&server, "?expires_in=2"));
    let first = tokens.token(&client).await.expect("a token");
    let second = tokens.token(&client).await.expect("a token");
    assert!(first.expose_secret().starts_with("ya29.mock-"));
    assert_ne!(first.expose_secret(), second.expose_secret());
}

#[tokio::test]
async fn concurrent_callers_share_one_exchange() {
    let server = start().await;
    let client = client();
    let tokens = Arc::new(TokenSource::new(account(&server, "")));
    let calls = (0..16).map(|_| {
        let tokens = Arc::clone(&tokens);
        let client = client.clone();
        async move { tokens.token(&client).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let first = results[0].as_ref().expect("a token").expose_secret();
    for result in &results {
        assert_eq!(result.as_ref().expect("a token").expose_secret(), first);
    }
    let later = tokens.token(&client).await.expect("a token");
    assert_eq!(later.expose_secret(), first);
}

#[tokio::test]
async fn a_refused_account_is_an_authentication_error() {
    let server = start().await;
    let client = client();
    for (field, value, description) in [
        (
            "client_email",
            "other@switchyard-test.iam.gserviceaccount.com",
            "invalid_grant: Invalid grant: account not found",
        ),
        (
            "private_key_id",
            "0000000000000000000000000000000000000000",
            "invalid_grant: Invalid JWT Signature.",
        ),
    ] {
        let account = ServiceAccount::from_json(&fixture_with(field, value))
            .expect("reads")
            .with_token_uri(&format!("{}/token", server.base_url()))
            .expect("a URL");
        let tokens = TokenSource::new(account);
        let error = tokens.token(&client).await.expect_err("refused");
        assert_eq!(error.kind, ErrorKind::Authentication, "{error:?}");
        assert_eq!(error.origin, Origin::Upstream);
        assert!(!error.retryable());
        assert_eq!(error.code.as_deref(), Some("vertex_token_refused"));
        assert!(error.message.contains(description), "{}", error.message);
        assert!(!error.message.contains("MII"), "{}", error.message);
        // A refusal is not cached: the next call asks again, and is refused again.
        let again = tokens.token(&client).await.expect_err("refused");
        assert_eq!(again.kind, ErrorKind::Authentication);
    }
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_a_bad_gateway() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    let account = ServiceAccount::from_json(FIXTURE)
        .expect("reads")
        .with_token_uri(&format!("http://127.0.0.1:{port}/token"))
        .expect("a URL");
    let error = TokenSource::new(account)
        .token(&client())
        .await
        .expect_err("unreachable");
    assert_eq!(error.kind, ErrorKind::BadGateway);
    assert_eq!(error.origin, Origin::Upstream);
    assert!(error.retryable());
    assert_eq!(error.code.as_deref(), Some("upstream_unreachable"));
}

#[test]
fn token_endpoint_errors_map_to_kinds() {
    let error = token::refusal(400, br#"{"error":"invalid_grant"}"#);
    assert_eq!(error.kind, ErrorKind::Authentication);
    assert_eq!(error.origin, Origin::Upstream);
    assert_eq!(
        error.message,
        "Google refused the Vertex AI service account's token request (invalid_grant)"
    );
    let error = token::refusal(
        401,
        b"{\"error\":\"unauthorized_client\",\"error_description\":\"Client is\\nunauthorized\"}",
    );
    assert_eq!(error.kind, ErrorKind::Authentication);
    assert!(
        error
            .message
            .ends_with("(unauthorized_client: Client is unauthorized)"),
        "{}",
        error.message
    );
    let error = token::refusal(503, b"<html>busy</html>");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert_eq!(
        error.message,
        "The Vertex AI token endpoint answered HTTP 503"
    );
    assert_eq!(token::refusal(429, b"{}").kind, ErrorKind::RateLimited);
}
