//! Golden tests of the OpenAI embeddings request and response, both ways.

use serde_json::{Value, json};
use switchyard_types::{EmbeddingRequest, EmbeddingResponse, Encoding, ErrorKind, Inputs, Usage};

use super::*;

const REQUEST: &str = include_str!("../../../tests/fixtures/embeddings/openai_request.json");
const RESPONSE: &str = include_str!("../../../tests/fixtures/embeddings/openai_response.json");
const RESPONSE_BASE64: &str =
    include_str!("../../../tests/fixtures/embeddings/openai_response_base64.json");

fn decode(body: &Value) -> Result<EmbeddingRequest, ApiError> {
    decode_request(body.to_string().as_bytes())
}

fn refused(body: Value) -> ApiError {
    decode(&body).expect_err("refused")
}

fn as_json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("JSON")
}

#[test]
fn decodes_the_documented_request() {
    let request = decode_request(REQUEST.as_bytes()).expect("decodes");
    assert_eq!(
        request,
        EmbeddingRequest {
            model: "text-embedding-ada-002".into(),
            inputs: Inputs::Texts(vec!["The food was delicious and the waiter...".into()]),
            dimensions: None,
            encoding: Encoding::Float,
            user: None,
            extra: Map::new(),
        }
    );
}

#[test]
fn every_field_and_the_unknown_ones_reach_an_openai_upstream() {
    let request = decode(&json!({
        "model": "embed-small",
        "input": ["first text", "second text"],
        "encoding_format": "base64",
        "dimensions": 256,
        "user": "user-1234",
        "input_type": "search_query",
        "truncate": "END"
    }))
    .expect("decodes");
    assert_eq!(request.dimensions, Some(256));
    assert_eq!(request.encoding, Encoding::Base64);
    assert_eq!(request.user.as_deref(), Some("user-1234"));
    assert_eq!(
        Value::Object(request.extra.clone()),
        json!({"input_type": "search_query", "truncate": "END"})
    );
    assert_eq!(
        as_json(&encode_request(&request, "text-embedding-3-small")),
        json!({
            "model": "text-embedding-3-small",
            "input": ["first text", "second text"],
            "encoding_format": "base64",
            "dimensions": 256,
            "user": "user-1234",
            "input_type": "search_query",
            "truncate": "END"
        })
    );
}

#[test]
fn a_float_request_leaves_the_default_encoding_out() {
    let request = decode_request(REQUEST.as_bytes()).expect("decodes");
    assert_eq!(
        as_json(&encode_request(&request, "text-embedding-3-large")),
        json!({
            "model": "text-embedding-3-large",
            "input": ["The food was delicious and the waiter..."]
        })
    );
}

#[test]
fn extra_fields_never_repeat_a_canonical_one() {
    let mut request = decode_request(REQUEST.as_bytes()).expect("decodes");
    request.extra.insert("model".into(), json!("sneaky"));
    let body = String::from_utf8(encode_request(&request, "upstream-model")).expect("UTF-8");
    assert_eq!(body.matches("\"model\"").count(), 1, "{body}");
    assert_eq!(as_json(body.as_bytes())["model"], "upstream-model");
}

#[test]
fn token_inputs_are_accepted_in_both_shapes() {
    let request = decode(&json!({"model": "m", "input": [1, 2, 3]})).expect("decodes");
    assert_eq!(request.inputs, Inputs::Tokens(vec![vec![1, 2, 3]]));
    let request = decode(&json!({"model": "m", "input": [[1, 2], [3]]})).expect("decodes");
    assert_eq!(request.inputs, Inputs::Tokens(vec![vec![1, 2], vec![3]]));
    assert_eq!(
        as_json(&encode_request(&request, "m"))["input"],
        json!([[1, 2], [3]])
    );
}

#[test]
fn wrong_types_name_the_field() {
    for (body, param) in [
        (json!({"model": "m", "input": 5}), "input"),
        (json!({"model": "m", "input": null}), "input"),
        (json!({"model": "m", "input": ["a", 5]}), "input[1]"),
        (json!({"model": "m", "input": [1, "a"]}), "input[1]"),
        (json!({"model": "m", "input": [1, -2]}), "input[1]"),
        (
            json!({"model": "m", "input": [[1], [2, 3.5]]}),
            "input[1][1]",
        ),
        (json!({"model": "m", "input": [[1], 2]}), "input[1]"),
        (
            json!({"model": "m", "input": [4_294_967_296_u64]}),
            "input[0]",
        ),
        (
            json!({"model": "m", "input": "a", "dimensions": "8"}),
            "dimensions",
        ),
        (
            json!({"model": "m", "input": "a", "dimensions": -1}),
            "dimensions",
        ),
        (json!({"model": "m", "input": "a", "user": 7}), "user"),
        (json!({"model": 1, "input": "a"}), "model"),
    ] {
        let error = refused(body.clone());
        assert_eq!(error.kind, ErrorKind::InvalidRequest, "{body}");
        assert_eq!(
            error.param.as_deref(),
            Some(param),
            "{body}: {}",
            error.message
        );
    }
    let error = refused(json!({"model": "m", "input": ["a", 5]}));
    assert!(
        error.message.contains("like the first item of `input`"),
        "{}",
        error.message
    );
}

#[test]
fn empty_inputs_bad_encodings_and_zero_dimensions_are_400s() {
    for (body, param) in [
        (json!({"model": "m", "input": ""}), "input"),
        (json!({"model": "m", "input": []}), "input"),
        (json!({"model": "m", "input": ["a", ""]}), "input[1]"),
        (json!({"model": "m", "input": [[1], []]}), "input[1]"),
        (
            json!({"model": "m", "input": "a", "encoding_format": "int8"}),
            "encoding_format",
        ),
        (
            json!({"model": "m", "input": "a", "dimensions": 0}),
            "dimensions",
        ),
    ] {
        let error = refused(body.clone());
        assert_eq!(error.kind, ErrorKind::InvalidRequest, "{body}");
        assert_eq!(
            error.param.as_deref(),
            Some(param),
            "{body}: {}",
            error.message
        );
    }
    let error = refused(json!({"model": "m", "input": "a", "encoding_format": "int8"}));
    assert!(error.message.contains("base64"), "{}", error.message);
    let too_many = vec!["x"; MAX_INPUTS + 1];
    let error = refused(json!({"model": "m", "input": too_many}));
    assert_eq!(error.param.as_deref(), Some("input"));
    assert!(error.message.contains("2048"), "{}", error.message);
    let error = decode_request(b"{\"model\": ").expect_err("syntax");
    assert_eq!(error.param, None);
    let error = refused(json!({"model": "m"}));
    assert!(error.message.contains("`input`"), "{}", error.message);
}

#[test]
fn decodes_the_documented_response() {
    let response = decode_response(RESPONSE.as_bytes()).expect("reads");
    assert_eq!(
        response,
        EmbeddingResponse {
            model: "text-embedding-ada-002".into(),
            vectors: vec![vec![0.002_306_425_5, -0.009_327_292, -0.002_884_222_2]],
            usage: Usage {
                prompt_tokens: 8,
                ..Usage::default()
            },
        }
    );
}

#[test]
fn base64_answers_are_decoded_in_index_order() {
    let response = decode_response(RESPONSE_BASE64.as_bytes()).expect("reads");
    assert_eq!(response.vectors, vec![vec![1.0, -2.0], vec![0.5, 1.0]]);
    assert_eq!(response.usage.prompt_tokens, 5);
}

#[test]
fn odd_upstream_answers() {
    // No index and no usage (some compatible servers): array order, no tokens.
    let response = decode_response(br#"{"data": [{"embedding": [1.0]}, {"embedding": [2.0]}]}"#)
        .expect("reads");
    assert_eq!(response.vectors, vec![vec![1.0], vec![2.0]]);
    assert_eq!(response.usage, Usage::default());

    for body in [
        &br#"{"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}"#[..],
        br#"{"data": [{"index": 5, "embedding": [1.0]}]}"#,
        br#"{"data": [{"index": 0, "embedding": "not base64!"}]}"#,
        br#"{"data": [{"index": 0, "embedding": "Zm9vYmFy"}]}"#,
        br#"{"object": "list"}"#,
        b"<html>",
    ] {
        let error = decode_response(body).expect_err("malformed");
        assert_eq!(error.kind, ErrorKind::BadGateway, "{body:?}");
        assert_eq!(error.code.as_deref(), Some("upstream_malformed_response"));
    }
}

#[test]
fn encodes_the_client_answer_as_floats() {
    let response = decode_response(RESPONSE.as_bytes()).expect("reads");
    let expected: Value = serde_json::from_str(RESPONSE).expect("fixture is JSON");
    assert_eq!(
        as_json(&encode_response(&response, Encoding::Float)),
        expected
    );
}

/// A known vector gives the exact text OpenAI sends for it.
#[test]
fn encodes_the_client_answer_as_base64() {
    let response = EmbeddingResponse {
        model: "text-embedding-3-small".into(),
        vectors: vec![vec![1.0, -2.0], vec![0.5, 1.0]],
        usage: Usage {
            prompt_tokens: 5,
            ..Usage::default()
        },
    };
    let body = encode_response(&response, Encoding::Base64);
    let expected: Value = serde_json::from_str(RESPONSE_BASE64).expect("fixture is JSON");
    let mut value = as_json(&body);
    assert_eq!(value["data"][0]["embedding"], "AACAPwAAAMA=");
    assert_eq!(value["data"][1]["embedding"], "AAAAPwAAgD8=");
    // The fixture lists its items out of order; ours are in order.
    value["data"].as_array_mut().expect("an array").reverse();
    assert_eq!(value, expected);
    // And back.
    assert_eq!(decode_response(&body).expect("reads"), response);
}
