//! Every embeddings path against `switchyard-mock` over HTTP: a client's OpenAI body decoded,
//! encoded for each upstream dialect (Bedrock's signed by [`crate::bedrock::sign`]), the
//! answers decoded and written back for the client. The mock gives the same vector for the
//! same text in every dialect, so the dialects must agree.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use serde_json::{Value, json};
use switchyard_mock::MockServer;
use switchyard_types::{ApiError, EmbeddingRequest, EmbeddingResponse, Encoding, ErrorKind};

use super::{bedrock, gemini, openai};
use crate::bedrock::sign::{Credentials, sign};

async fn start() -> MockServer {
    MockServer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("binds")
}

fn client() -> crate::http::Client {
    crate::http::client(Duration::from_secs(5)).expect("a client")
}

fn client_request(body: Value) -> EmbeddingRequest {
    openai::decode_request(body.to_string().as_bytes()).expect("a valid client request")
}

/// One POST; the status, headers and body of the answer.
async fn exchange(
    url: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
) -> (u16, http::HeaderMap, Vec<u8>) {
    let target = crate::http::Target::parse(&url).expect("a URL");
    let response = client()
        .post(&target, headers, body.into())
        .await
        .expect("the mock answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes(usize::MAX).await.expect("a body").to_vec();
    (status, headers, body)
}

fn json_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers
}

async fn via_openai(
    server: &MockServer,
    request: &EmbeddingRequest,
    model: &str,
) -> Result<EmbeddingResponse, ApiError> {
    let mut headers = json_headers();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_static("Bearer sk-test"),
    );
    let url = format!("{}/v1/embeddings", server.base_url());
    let (status, headers, body) =
        exchange(url, headers, openai::encode_request(request, model)).await;
    if status == 200 {
        openai::decode_response(&body)
    } else {
        Err(crate::openai::error::decode(status, &headers, &body))
    }
}

async fn via_gemini(
    server: &MockServer,
    request: &EmbeddingRequest,
    model: &str,
) -> Result<EmbeddingResponse, ApiError> {
    let mut headers = json_headers();
    headers.insert(
        "x-goog-api-key",
        http::HeaderValue::from_static("AIza-test"),
    );
    let url = format!("{}/v1beta/{}", server.base_url(), gemini::path(model));
    let (status, headers, body) =
        exchange(url, headers, gemini::encode_request(request, model)?).await;
    if status == 200 {
        gemini::decode_response(&body, model)
    } else {
        Err(crate::gemini::error::decode(status, &headers, &body))
    }
}

/// The Bedrock path, and the input tokens its headers reported.
async fn via_bedrock(
    server: &MockServer,
    request: &EmbeddingRequest,
    model: &str,
) -> Result<(EmbeddingResponse, u64), ApiError> {
    let family = bedrock::family(model).expect("an embedding model");
    let credentials = Credentials {
        access_key_id: "AKIDMOCK".into(),
        secret_access_key: SecretString::from("mock-secret"),
        session_token: None,
    };
    let url = format!("{}{}", server.base_url(), bedrock::path(model));
    let mut answers = Vec::new();
    let mut header_tokens = 0;
    for body in bedrock::encode_requests(request, family)? {
        let mut headers = json_headers();
        let signed = sign(
            &credentials,
            "us-east-1",
            &url,
            &headers,
            &body,
            SystemTime::now(),
        )?;
        for (name, value) in signed {
            headers.insert(name, value);
        }
        let (status, headers, body) = exchange(url.clone(), headers, body).await;
        if status != 200 {
            return Err(crate::bedrock::error::decode(status, &headers, &body));
        }
        header_tokens += bedrock::header_input_tokens(&headers).expect("a token count header");
        answers.push(body);
    }
    Ok((
        bedrock::decode_responses(&answers, family, model)?,
        header_tokens,
    ))
}

#[tokio::test]
async fn every_dialect_gives_the_client_the_same_vectors() {
    let server = start().await;
    let request = client_request(json!({
        "model": "embed",
        "input": ["The food was delicious and the waiter...", "hello there"],
        "dimensions": 12,
        "input_type": "search_query",
        "encoding_format": "base64"
    }));

    let openai_answer = via_openai(&server, &request, "text-embedding-3-small")
        .await
        .expect("OpenAI answers");
    assert_eq!(openai_answer.vectors.len(), 2);
    assert!(
        openai_answer
            .vectors
            .iter()
            .all(|vector| vector.len() == 12)
    );
    // Words: 7 + 2.
    assert_eq!(openai_answer.usage.prompt_tokens, 9);

    let gemini_answer = via_gemini(&server, &request, "gemini-embedding-001")
        .await
        .expect("Gemini answers");
    assert_eq!(gemini_answer.vectors, openai_answer.vectors);
    assert_eq!(gemini_answer.usage.prompt_tokens, 0, "Gemini reports none");

    let (titan, titan_header) = via_bedrock(&server, &request, "amazon.titan-embed-text-v2:0")
        .await
        .expect("Titan answers");
    assert_eq!(titan.vectors, openai_answer.vectors);
    assert_eq!(titan.usage.prompt_tokens, 9);
    assert_eq!(titan_header, 9);

    let (cohere, cohere_header) = via_bedrock(&server, &request, "us.cohere.embed-v4:0")
        .await
        .expect("Cohere answers");
    assert_eq!(cohere.vectors, openai_answer.vectors);
    assert_eq!(cohere.usage.prompt_tokens, 0, "Cohere's body has no count");
    assert_eq!(cohere_header, 9, "but Bedrock's header has");

    // The client gets base64, as it asked.
    let body: Value =
        serde_json::from_slice(&openai::encode_response(&cohere, request.encoding)).expect("JSON");
    assert!(body["data"][0]["embedding"].is_string(), "{body}");
    assert_eq!(request.encoding, Encoding::Base64);
}

#[tokio::test]
async fn titan_is_called_once_per_text_and_cohere_per_96() {
    let server = start().await;
    let texts: Vec<String> = (0..100).map(|n| format!("text number {n}")).collect();
    let request = client_request(json!({"model": "embed", "input": texts}));
    let (titan, _) = via_bedrock(&server, &request, "amazon.titan-embed-text-v2:0")
        .await
        .expect("Titan answers");
    let (cohere, _) = via_bedrock(&server, &request, "cohere.embed-english-v3")
        .await
        .expect("Cohere answers");
    assert_eq!(titan.vectors.len(), 100);
    assert_eq!(cohere.vectors, titan.vectors);
    assert_eq!(server.stats().requests, 100 + 2);
}

#[tokio::test]
async fn token_inputs_reach_openai_only() {
    let server = start().await;
    let request = client_request(json!({"model": "embed", "input": [[1, 2, 3], [4, 5]]}));
    let answer = via_openai(&server, &request, "text-embedding-3-small")
        .await
        .expect("OpenAI answers");
    assert_eq!(answer.vectors.len(), 2);
    assert_eq!(answer.usage.prompt_tokens, 5);

    let error = via_gemini(&server, &request, "gemini-embedding-001")
        .await
        .expect_err("Gemini takes text");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    let error = via_bedrock(&server, &request, "amazon.titan-embed-text-v2:0")
        .await
        .expect_err("Bedrock takes text");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    // Refused before any call.
    assert_eq!(server.stats().requests, 1);
}

#[tokio::test]
async fn upstream_errors_decode_with_each_dialects_error_module() {
    let server = start().await;
    let request = client_request(json!({"model": "embed", "input": "a"}));

    let error = via_openai(&server, &request, "m?fail=429&retry_after=4")
        .await
        .expect_err("rate limited");
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(4)));

    let error = via_gemini(&server, &request, "g;fail=503")
        .await
        .expect_err("unavailable");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert_eq!(error.code.as_deref(), Some("UNAVAILABLE"));

    let error = via_bedrock(&server, &request, "cohere.embed-english-v3;fail=429")
        .await
        .expect_err("throttled");
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.code.as_deref(), Some("ThrottlingException"));
}
