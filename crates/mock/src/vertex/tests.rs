//! The Vertex AI routes without sockets (`router().oneshot(request)`): JWTs are signed here by
//! hand with ring and the test key of the providers' fixture (the mock cannot depend on the
//! providers crate that signs them for real).

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::Value;
use tower::ServiceExt as _;

use super::assertion::{CLIENT_EMAIL, PRIVATE_KEY_ID, SCOPE};
use super::*;

/// The test service account, whose private key signs the JWTs.
const KEY_FILE: &str =
    include_str!("../../../providers/tests/fixtures/vertex/service_account.json");

const GENERATE: &str = "/v1/projects/switchyard-test/locations/us-central1/publishers/google/\
                        models/gemini-2.5-flash:generateContent";

fn key_pair() -> RsaKeyPair {
    let file: Value = serde_json::from_str(KEY_FILE).expect("JSON");
    let pem = file["private_key"].as_str().expect("a private key");
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    RsaKeyPair::from_pkcs8(&STANDARD.decode(body).expect("base64")).expect("a PKCS#8 RSA key")
}

fn sign(header: &Value, claims: &Value) -> String {
    let mut jwt = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = key_pair();
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        jwt.as_bytes(),
        &mut signature,
    )
    .expect("signs");
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
    jwt
}

fn header() -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": PRIVATE_KEY_ID})
}

fn claims() -> Value {
    let now = clock::unix_now();
    json!({
        "iss": CLIENT_EMAIL,
        "scope": SCOPE,
        "aud": "http://127.0.0.1:4010/token",
        "iat": now,
        "exp": now + 3600,
    })
}

fn form(assertion: &str) -> String {
    format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    )
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, headers, value)
}

async fn exchange(
    app: &Router,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (StatusCode, Value) {
    let mut request = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("a request");
    for (name, value) in headers {
        request.headers_mut().insert(
            axum::http::HeaderName::try_from(*name).expect("a name"),
            HeaderValue::from_str(value).expect("a value"),
        );
    }
    let (status, _, value) = send(app, request).await;
    (status, value)
}

/// An access token from `app`'s token endpoint.
async fn issued(app: &Router, headers: &[(&str, &str)]) -> String {
    let (status, value) = exchange(app, "/token", headers, form(&sign(&header(), &claims()))).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    value["access_token"].as_str().expect("a token").to_owned()
}

async fn generate(
    app: &Router,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hello vertex"}]}]});
    send(
        app,
        request
            .body(Body::from(body.to_string()))
            .expect("a request"),
    )
    .await
}

#[tokio::test]
async fn a_valid_assertion_gets_a_token() {
    let app = crate::router();
    let (status, value) = exchange(&app, "/token", &[], form(&sign(&header(), &claims()))).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert!(
        value["access_token"]
            .as_str()
            .is_some_and(|token| token.starts_with("ya29.mock-") && token.len() == 50),
        "{value}"
    );
    assert_eq!(value["expires_in"], 3599);
    assert_eq!(value["token_type"], "Bearer");

    // Another exchange, another token; the lifetime from the header or the query.
    let (_, other) = exchange(
        &app,
        "/token",
        &[("x-mock-token-expires-in", "2")],
        form(&sign(&header(), &claims())),
    )
    .await;
    assert_eq!(other["expires_in"], 2);
    assert_ne!(other["access_token"], value["access_token"]);
    let (_, short) = exchange(
        &app,
        "/token?expires_in=5",
        &[],
        form(&sign(&header(), &claims())),
    )
    .await;
    assert_eq!(short["expires_in"], 5);

    // Without `kid` (it is optional), and with Google's own audience.
    let mut claims = claims();
    claims["aud"] = json!("https://oauth2.googleapis.com/token");
    let jwt = sign(&json!({"alg": "RS256", "typ": "JWT"}), &claims);
    let (status, value) = exchange(&app, "/token", &[], form(&jwt)).await;
    assert_eq!(status, StatusCode::OK, "{value}");
}

#[tokio::test]
async fn tampered_or_foreign_assertions_are_refused() {
    let app = crate::router();
    let invalid_signature =
        json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."});

    // Claims changed after signing.
    let jwt = sign(&header(), &claims());
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut changed = claims();
    changed["exp"] = json!(clock::unix_now() + 3000);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(changed.to_string()),
        parts[2]
    );
    assert_eq!(
        exchange(&app, "/token", &[], form(&tampered)).await,
        (StatusCode::BAD_REQUEST, invalid_signature.clone())
    );
    // A signature with a flipped byte.
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url");
    signature[17] ^= 1;
    let flipped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signature)
    );
    assert_eq!(
        exchange(&app, "/token", &[], form(&flipped)).await,
        (StatusCode::BAD_REQUEST, invalid_signature.clone())
    );
    // Another key's id, or no RS256.
    let jwt = sign(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "0000"}),
        &claims(),
    );
    assert_eq!(
        exchange(&app, "/token", &[], form(&jwt)).await,
        (StatusCode::BAD_REQUEST, invalid_signature.clone())
    );
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert_eq!(
        exchange(&app, "/token", &[], form(&unsigned)).await,
        (StatusCode::BAD_REQUEST, invalid_signature)
    );
    // An account the mock does not know.
    let mut foreign = claims();
    foreign["iss"] = json!("someone@else.iam.gserviceaccount.com");
    let (status, value) = exchange(&app, "/token", &[], form(&sign(&header(), &foreign))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        value["error_description"],
        "Invalid grant: account not found"
    );
}

#[tokio::test]
async fn claims_out_of_bounds_are_refused() {
    let app = crate::router();
    let now = clock::unix_now();
    let cases = [
        ("exp", json!(now - 1), "invalid_grant"),
        ("exp", json!(now + 7200), "invalid_grant"),
        ("iat", json!(now + 1800), "invalid_grant"),
        ("aud", json!("http://127.0.0.1:4010/"), "invalid_grant"),
        (
            "scope",
            json!("https://www.googleapis.com/auth/devstorage.read_only"),
            "invalid_scope",
        ),
    ];
    for (field, value, error) in cases {
        let mut claims = claims();
        claims[field] = value;
        let (status, answer) = exchange(&app, "/token", &[], form(&sign(&header(), &claims))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(answer["error"], error, "{field}: {answer}");
    }
    let mut claims = claims();
    claims.as_object_mut().expect("an object").remove("scope");
    let (_, answer) = exchange(&app, "/token", &[], form(&sign(&header(), &claims))).await;
    assert_eq!(answer["error"], "invalid_scope");
}

#[tokio::test]
async fn malformed_token_requests_are_refused() {
    let app = crate::router();
    let jwt = sign(&header(), &claims());
    let (status, value) = exchange(
        &app,
        "/token",
        &[],
        format!("grant_type=password&assertion={jwt}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        value,
        json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type: password"})
    );
    let (_, value) = exchange(&app, "/token", &[], format!("assertion={jwt}")).await;
    assert_eq!(
        value["error_description"],
        "Missing required parameter: grant_type"
    );
    let (_, value) = exchange(&app, "/token", &[], form("").replace("&assertion=", "")).await;
    assert_eq!(
        value["error_description"],
        "Missing required parameter: assertion"
    );
    let (_, value) = exchange(&app, "/token", &[], form("not.a.jwt")).await;
    assert_eq!(value["error"], "invalid_grant");
    let (status, value) = exchange(
        &app,
        "/token",
        &[("x-mock-token-expires-in", "soon")],
        form(&jwt),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(value["error"], "invalid_request");

    let request = Request::post("/token")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .expect("a request");
    let (status, _, value) = send(&app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(value["error"], "invalid_request");
}

#[tokio::test]
async fn an_issued_token_calls_gemini_models() {
    let app = crate::router();
    let token = issued(&app, &[]).await;
    let bearer = format!("Bearer {token}");
    let (status, _, value) = generate(&app, GENERATE, Some(&bearer)).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(
        value["candidates"][0]["content"],
        json!({"parts": [{"text": "hello vertex"}], "role": "model"})
    );
    assert_eq!(value["modelVersion"], "gemini-2.5-flash");

    // Streams, the global location, and the options in the model segment work as for Gemini.
    let path = "/v1/projects/p/locations/global/publishers/google/models/\
                echo;tokens=2:streamGenerateContent?alt=sse";
    let request = Request::post(path)
        .header("content-type", "application/json")
        .header("authorization", &bearer)
        .body(Body::from(
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).to_string(),
        ))
        .expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(
        text.starts_with("data: ") && text.contains("\"tok1\"") && text.contains("\" tok2\""),
        "{text}"
    );

    let path = "/v1/projects/p/locations/us-central1/publishers/google/models/echo;fail=429:generateContent";
    let (status, _, value) = generate(&app, path, Some(&bearer)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(value["error"]["status"], "RESOURCE_EXHAUSTED");
}

#[tokio::test]
async fn unknown_expired_or_missing_tokens_are_unauthenticated() {
    let app = crate::router();
    let expired = issued(&app, &[("x-mock-token-expires-in", "0")]).await;
    let from_elsewhere = issued(&crate::router(), &[]).await;
    for (authorization, reason) in [
        (
            Some("Bearer ya29.made-up".to_owned()),
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        ),
        (
            Some(format!("Bearer {from_elsewhere}")),
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        ),
        (Some(format!("Bearer {expired}")), "ACCESS_TOKEN_EXPIRED"),
        (None, "CREDENTIALS_MISSING"),
    ] {
        let (status, headers, value) = generate(&app, GENERATE, authorization.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(value["error"]["code"], 401);
        assert_eq!(value["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(
            value["error"]["details"][0]["reason"], reason,
            "{authorization:?}"
        );
        assert!(headers.contains_key("www-authenticate"));
    }

    // An API key is not a credential here.
    let request = Request::post(GENERATE)
        .header("content-type", "application/json")
        .header("x-goog-api-key", "AIza-test")
        .body(Body::from("{}"))
        .expect("a request");
    let (status, _, value) = send(&app, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        value["error"]["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("API keys are not supported")),
        "{value}"
    );
}
