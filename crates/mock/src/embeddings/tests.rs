//! The embeddings routes through the router (`router().oneshot(request)`), Bedrock's signed as
//! a client signs them.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::vector;
use crate::bedrock::signature::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::router;

const BEARER: (&str, &str) = ("authorization", "Bearer sk-test");
const GOOGLE_KEY: (&str, &str) = ("x-goog-api-key", "AIza-test");
const BEDROCK_HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";

/// A reply's status, headers and JSON body (`Null` when the body is not JSON).
struct Reply {
    status: StatusCode,
    response: Response<()>,
    json: Value,
    bytes: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    }
}

async fn send(request: Request<Body>) -> Reply {
    let response = router().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("a body")
        .to_vec();
    Reply {
        status: parts.status,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        response: Response::from_parts(parts, ()),
        bytes,
    }
}

async fn post(path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let mut builder = Request::post(path).header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(
        builder
            .body(Body::from(body.to_string()))
            .expect("a request"),
    )
    .await
}

/// A POST of `body` to `path` signed for Bedrock with the mock's credentials.
async fn signed(path: &str, body: &Value, extra: &[(&str, &str)]) -> Reply {
    let body = body.to_string();
    let identity = aws_credential_types::Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        None,
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("bedrock")
        .time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000))
        .settings(SigningSettings::default())
        .build()
        .expect("parameters")
        .into();
    let signable = SignableRequest::new(
        "POST",
        format!("https://{BEDROCK_HOST}{path}"),
        [("host", BEDROCK_HOST), ("content-type", "application/json")].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable");
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .expect("signs")
        .into_parts();
    let mut builder = Request::post(path)
        .header("host", BEDROCK_HOST)
        .header("content-type", "application/json");
    for (name, value) in instructions.headers() {
        builder = builder.header(name, value);
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    send(builder.body(Body::from(body)).expect("a request")).await
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|number| number.as_f64().expect("a number") as f32)
        .collect()
}

fn length(vector: &[f32]) -> f32 {
    vector.iter().map(|value| value * value).sum::<f32>().sqrt()
}

#[tokio::test]
async fn openai_answers_unit_vectors_with_word_usage() {
    let reply = post(
        "/v1/embeddings",
        &[BEARER],
        &json!({"model": "text-embedding-3-small", "input": ["hello there world", "bye"]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("x-request-id").is_some());
    assert_eq!(reply.json["object"], "list");
    assert_eq!(reply.json["model"], "text-embedding-3-small");
    assert_eq!(
        reply.json["usage"],
        json!({"prompt_tokens": 4, "total_tokens": 4})
    );
    let data = reply.json["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    for (index, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], index);
        let vector = floats(&item["embedding"]);
        assert_eq!(vector.len(), 8);
        assert!((length(&vector) - 1.0).abs() < 1e-5);
    }
    assert_eq!(
        floats(&data[0]["embedding"]),
        vector::of_text("hello there world", 8)
    );
}

#[tokio::test]
async fn openai_honours_dimensions_base64_and_token_inputs() {
    let reply = post(
        "/embeddings",
        &[BEARER],
        &json!({"model": "m", "input": "hello", "dimensions": 3, "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json["data"][0]["embedding"],
        vector::base64(&vector::of_text("hello", 3))
    );

    let reply = post(
        "/v1/embeddings",
        &[BEARER],
        &json!({"model": "m", "input": [[1, 2, 3], [4]]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json["usage"]["prompt_tokens"], 4);
    assert_eq!(
        floats(&reply.json["data"][1]["embedding"]),
        vector::of_tokens(&[4], 8)
    );
    let flat = post(
        "/v1/embeddings",
        &[BEARER],
        &json!({"model": "m", "input": [1, 2, 3]}),
    )
    .await;
    assert_eq!(flat.json["data"][0], reply.json["data"][0]);
}

#[tokio::test]
async fn openai_refuses_what_openai_refuses() {
    let reply = post("/v1/embeddings", &[], &json!({"model": "m", "input": "a"})).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json["error"]["code"], "invalid_api_key");

    for (body, param) in [
        (json!({"input": "a"}), json!("model")),
        (json!({"model": "m"}), json!("input")),
        (json!({"model": "m", "input": ""}), Value::Null),
        (json!({"model": "m", "input": []}), Value::Null),
        (json!({"model": "m", "input": ["a", 1]}), Value::Null),
        (json!({"model": "m", "input": [-1]}), Value::Null),
        (
            json!({"model": "m", "input": "a", "encoding_format": "int8"}),
            json!("encoding_format"),
        ),
        (
            json!({"model": "m", "input": "a", "dimensions": 0}),
            json!("dimensions"),
        ),
        (
            json!({"model": "m?fail=teapot", "input": "a"}),
            json!("model"),
        ),
    ] {
        let reply = post("/v1/embeddings", &[BEARER], &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            reply.json["error"]["type"], "invalid_request_error",
            "{body}"
        );
        assert_eq!(reply.json["error"]["param"], param, "{body}");
    }
}

#[tokio::test]
async fn openai_faults_come_from_the_model_string_or_headers() {
    let reply = post(
        "/v1/embeddings",
        &[BEARER],
        &json!({"model": "text-embedding-3-small?fail=429&retry_after=7", "input": "a"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert_eq!(reply.json["error"]["code"], "rate_limit_exceeded");

    let reply = post(
        "/v1/embeddings",
        &[BEARER, ("x-mock-fail", "503")],
        &json!({"model": "m", "input": "a"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);

    let reply = post(
        "/v1/embeddings",
        &[BEARER, ("x-mock-fail", "malformed")],
        &json!({"model": "m", "input": "a"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&reply.bytes).is_err());

    let reply = post(
        "/v1/embeddings",
        &[BEARER, ("x-mock-ratelimit-remaining", "9")],
        &json!({"model": "m", "input": "a"}),
    )
    .await;
    assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("9"));
}

fn gemini_batch(model: &str, texts: &[&str], dimensions: Option<u32>) -> Value {
    let requests: Vec<Value> = texts
        .iter()
        .map(|text| {
            let mut request = json!({
                "model": format!("models/{model}"),
                "content": {"parts": [{"text": text}]},
                "taskType": "RETRIEVAL_DOCUMENT",
            });
            if let Some(dimensions) = dimensions {
                request["outputDimensionality"] = json!(dimensions);
            }
            request
        })
        .collect();
    json!({"requests": requests})
}

#[tokio::test]
async fn gemini_batch_embeds_under_both_versions() {
    let reply = post(
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        &[GOOGLE_KEY],
        &gemini_batch("gemini-embedding-001", &["hello there", "bye"], None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let embeddings = reply.json["embeddings"].as_array().expect("embeddings");
    assert_eq!(embeddings.len(), 2);
    assert_eq!(floats(&embeddings[1]["values"]), vector::of_text("bye", 8));
    assert!(reply.json.get("usageMetadata").is_none());

    let reply = post(
        "/v1/models/text-embedding-004:batchEmbedContents?key=AIza-test",
        &[],
        &gemini_batch("text-embedding-004", &["hi"], Some(5)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(floats(&reply.json["embeddings"][0]["values"]).len(), 5);
}

#[tokio::test]
async fn gemini_refusals_and_faults() {
    let path = "/v1beta/models/gemini-embedding-001:batchEmbedContents";
    let reply = post(
        path,
        &[],
        &gemini_batch("gemini-embedding-001", &["a"], None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    for body in [
        json!({"requests": []}),
        gemini_batch("other-model", &["a"], None),
        json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": []}}]}),
        gemini_batch("gemini-embedding-001", &["a"], Some(0)),
        gemini_batch("gemini-embedding-001", &["a"; 101], None),
    ] {
        let reply = post(path, &[GOOGLE_KEY], &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.json["error"]["status"], "INVALID_ARGUMENT", "{body}");
    }

    let model = "echo;fail=429,retry_after=3";
    let reply = post(
        &format!("/v1beta/models/{model}:batchEmbedContents"),
        &[GOOGLE_KEY],
        &gemini_batch(model, &["a"], None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.json["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(reply.header("retry-after"), Some("3"));
}

#[tokio::test]
async fn bedrock_titan_embeds_one_text() {
    let reply = signed(
        "/model/amazon.titan-embed-text-v2:0/invoke",
        &json!({"inputText": "hello there world", "dimensions": 4}),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(
        floats(&reply.json["embedding"]),
        vector::of_text("hello there world", 4)
    );
    assert_eq!(reply.json["inputTextTokenCount"], 3);
    assert_eq!(
        reply.json["embeddingsByType"]["float"],
        reply.json["embedding"]
    );
    assert_eq!(reply.header("x-amzn-bedrock-input-token-count"), Some("3"));
    assert!(reply.header("x-amzn-requestid").is_some());

    let raw = signed(
        "/model/amazon.titan-embed-text-v2:0/invoke",
        &json!({"inputText": "hello there world", "dimensions": 4, "normalize": false}),
        &[],
    )
    .await;
    assert_eq!(
        floats(&raw.json["embedding"]),
        vector::of_text_unnormalized("hello there world", 4)
    );
}

#[tokio::test]
async fn bedrock_cohere_embeds_texts_in_either_shape() {
    let path = "/model/cohere.embed-english-v3/invoke";
    let reply = signed(
        path,
        &json!({"texts": ["one two", "three"], "input_type": "search_document"}),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["response_type"], "embeddings_floats");
    assert_eq!(reply.json["texts"], json!(["one two", "three"]));
    assert_eq!(
        floats(&reply.json["embeddings"][1]),
        vector::of_text("three", 8)
    );
    assert!(reply.json["id"].is_string());
    assert_eq!(reply.header("x-amzn-bedrock-input-token-count"), Some("3"));

    let reply = signed(
        "/model/us.cohere.embed-v4:0/invoke",
        &json!({
            "texts": ["three"],
            "input_type": "search_query",
            "embedding_types": ["float"],
            "output_dimension": 6
        }),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["response_type"], "embeddings_by_type");
    assert_eq!(
        floats(&reply.json["embeddings"]["float"][0]),
        vector::of_text("three", 6)
    );
}

#[tokio::test]
async fn bedrock_refusals_and_faults() {
    // Unsigned.
    let reply = post(
        "/model/amazon.titan-embed-text-v2:0/invoke",
        &[],
        &json!({"inputText": "a"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply
            .header("x-amzn-errortype")
            .map(|kind| kind.split(':').next()),
        Some(Some("MissingAuthenticationTokenException"))
    );

    for (path, body) in [
        (
            "/model/amazon.titan-embed-text-v2:0/invoke",
            json!({"inputText": "a", "normalise": true}),
        ),
        ("/model/amazon.titan-embed-text-v2:0/invoke", json!({})),
        (
            "/model/cohere.embed-english-v3/invoke",
            json!({"texts": ["a"]}),
        ),
        (
            "/model/cohere.embed-english-v3/invoke",
            json!({"texts": ["a"], "input_type": "search_query", "embedding_types": ["int8"]}),
        ),
        (
            "/model/cohere.embed-english-v3/invoke",
            json!({"texts": vec!["a"; 97], "input_type": "search_query"}),
        ),
        (
            "/model/anthropic.claude-3-haiku-20240307-v1:0/invoke",
            json!({"inputText": "a"}),
        ),
    ] {
        let reply = signed(path, &body, &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert!(
            reply
                .header("x-amzn-errortype")
                .is_some_and(|kind| kind.starts_with("ValidationException")),
            "{path} {body}"
        );
    }

    let reply = signed(
        "/model/amazon.titan-embed-text-v2:0;fail=429,retry_after=2/invoke",
        &json!({"inputText": "a"}),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("retry-after"), Some("2"));
    let reply = signed(
        "/model/cohere.embed-english-v3/invoke",
        &json!({"texts": ["a"], "input_type": "search_query"}),
        &[("x-mock-fail", "500")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}

/// The point of the deterministic vectors: a test can compare dialects.
#[tokio::test]
async fn every_dialect_gives_the_same_vector_for_a_text() {
    let text = "The food was delicious and the waiter...";
    let openai = post(
        "/v1/embeddings",
        &[BEARER],
        &json!({"model": "m", "input": text, "dimensions": 16}),
    )
    .await;
    let gemini = post(
        "/v1beta/models/g:batchEmbedContents",
        &[GOOGLE_KEY],
        &gemini_batch("g", &[text], Some(16)),
    )
    .await;
    let titan = signed(
        "/model/amazon.titan-embed-text-v2:0/invoke",
        &json!({"inputText": text, "dimensions": 16}),
        &[],
    )
    .await;
    let cohere = signed(
        "/model/cohere.embed-v4:0/invoke",
        &json!({"texts": [text], "input_type": "search_document", "output_dimension": 16}),
        &[],
    )
    .await;
    let expected = floats(&openai.json["data"][0]["embedding"]);
    assert_eq!(expected.len(), 16);
    assert_eq!(floats(&gemini.json["embeddings"][0]["values"]), expected);
    assert_eq!(floats(&titan.json["embedding"]), expected);
    assert_eq!(floats(&cohere.json["embeddings"][0]), expected);
}
