//! Golden tests of the Titan and Cohere `InvokeModel` bodies, from the documented examples.

use serde_json::{Map, Value, json};
use switchyard_types::{EmbeddingRequest, Encoding, ErrorKind, Inputs};

use super::*;

const TITAN_REQUEST: &str = include_str!("../../../tests/fixtures/embeddings/titan_request.json");
const TITAN_RESPONSE: &str = include_str!("../../../tests/fixtures/embeddings/titan_response.json");
const COHERE_REQUEST: &str = include_str!("../../../tests/fixtures/embeddings/cohere_request.json");
const COHERE_BY_TYPE: &str =
    include_str!("../../../tests/fixtures/embeddings/cohere_response_by_type.json");
const COHERE_FLOATS: &str =
    include_str!("../../../tests/fixtures/embeddings/cohere_response_floats.json");

fn request(texts: &[&str], dimensions: Option<u32>, extra: Value) -> EmbeddingRequest {
    let extra: Map<String, Value> = extra.as_object().cloned().expect("an object");
    EmbeddingRequest {
        model: "embed".into(),
        inputs: Inputs::Texts(texts.iter().map(|text| (*text).to_owned()).collect()),
        dimensions,
        encoding: Encoding::Base64,
        user: None,
        extra,
    }
}

fn json_bodies(bodies: &[Vec<u8>]) -> Vec<Value> {
    bodies
        .iter()
        .map(|body| serde_json::from_slice(body).expect("JSON"))
        .collect()
}

#[test]
fn families_follow_the_model_id() {
    for (id, expected) in [
        ("amazon.titan-embed-text-v2:0", Some(Family::Titan)),
        ("amazon.titan-embed-text-v1", Some(Family::Titan)),
        ("amazon.titan-embed-g1-text-02", Some(Family::Titan)),
        ("cohere.embed-english-v3", Some(Family::Cohere)),
        ("cohere.embed-multilingual-v3", Some(Family::Cohere)),
        ("us.cohere.embed-v4:0", Some(Family::Cohere)),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
            Some(Family::Titan),
        ),
        ("amazon.titan-embed-image-v1", None),
        ("anthropic.claude-3-haiku-20240307-v1:0", None),
        ("cohere.command-r-v1:0", None),
        (
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
            None,
        ),
    ] {
        assert_eq!(family(id), expected, "{id}");
    }
}

#[test]
fn paths_encode_the_model_id_like_converse() {
    assert_eq!(
        path("amazon.titan-embed-text-v2:0"),
        "/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    assert_eq!(
        path("arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-english-v3"),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fcohere.embed-english-v3/invoke"
    );
}

#[test]
fn titan_takes_one_text_per_call_with_its_dimensions() {
    let request = request(
        &[
            "What are the different services that you offer?",
            "Second text",
        ],
        Some(512),
        json!({"input_type": "search_query"}),
    );
    let bodies = json_bodies(&encode_requests(&request, Family::Titan).expect("encodes"));
    let expected: Value = serde_json::from_str(TITAN_REQUEST).expect("fixture is JSON");
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], expected);
    assert_eq!(
        bodies[1],
        json!({"inputText": "Second text", "dimensions": 512})
    );

    let plain = encode_requests(&request_with(&["hi"]), Family::Titan).expect("encodes");
    assert_eq!(json_bodies(&plain), vec![json!({"inputText": "hi"})]);
}

#[test]
fn cohere_takes_texts_in_batches_of_96() {
    let request = request(
        &["Hello from Cohere!", "Bonjour de Cohere!"],
        Some(256),
        json!({"input_type": "search_query"}),
    );
    let bodies = json_bodies(&encode_requests(&request, Family::Cohere).expect("encodes"));
    let expected: Value = serde_json::from_str(COHERE_REQUEST).expect("fixture is JSON");
    assert_eq!(bodies, vec![expected]);

    let many: Vec<String> = (0..97).map(|n| format!("text {n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let bodies =
        json_bodies(&encode_requests(&request_with(&many), Family::Cohere).expect("encodes"));
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["texts"].as_array().map(Vec::len), Some(96));
    assert_eq!(bodies[1]["texts"], json!(["text 96"]));
    // No input type from the client: documents, the common case.
    assert_eq!(bodies[1]["input_type"], COHERE_DEFAULT_INPUT_TYPE);
    assert!(bodies[1].get("output_dimension").is_none());
}

fn request_with(texts: &[&str]) -> EmbeddingRequest {
    request(texts, None, json!({}))
}

#[test]
fn token_inputs_are_refused_for_both_families() {
    for family in [Family::Titan, Family::Cohere] {
        let request = EmbeddingRequest {
            inputs: Inputs::Tokens(vec![vec![1, 2, 3]]),
            ..request_with(&[])
        };
        let error = encode_requests(&request, family).expect_err("text only");
        assert_eq!(error.kind, ErrorKind::InvalidRequest);
        assert_eq!(error.param.as_deref(), Some("input"));
        assert!(error.message.contains("Bedrock"), "{}", error.message);
    }
}

#[test]
fn titan_answers_are_joined_and_their_tokens_summed() {
    let bodies = vec![
        TITAN_RESPONSE.as_bytes().to_vec(),
        br#"{"embedding": [1.0, 0.0], "inputTextTokenCount": 2}"#.to_vec(),
    ];
    let response =
        decode_responses(&bodies, Family::Titan, "amazon.titan-embed-text-v2:0").expect("reads");
    assert_eq!(response.model, "amazon.titan-embed-text-v2:0");
    assert_eq!(
        response.vectors,
        vec![
            vec![0.034_179_688, -0.009_643_555, 0.018_188_477],
            vec![1.0, 0.0],
        ]
    );
    assert_eq!(response.usage.prompt_tokens, 12);
}

#[test]
fn cohere_answers_of_both_shapes_are_read() {
    let bodies = vec![
        COHERE_BY_TYPE.as_bytes().to_vec(),
        COHERE_FLOATS.as_bytes().to_vec(),
    ];
    let response =
        decode_responses(&bodies, Family::Cohere, "cohere.embed-english-v3").expect("reads");
    assert_eq!(
        response.vectors,
        vec![
            vec![0.026_367_188, -0.011_108_398, 0.045_654_297],
            vec![0.021_362_305, -0.027_954_102, 0.030_517_578],
            vec![0.026_367_188, -0.011_108_398, 0.045_654_297],
        ]
    );
    // Cohere's body has no token count.
    assert_eq!(response.usage.prompt_tokens, 0);

    let int8_only = vec![
        br#"{"embeddings": {"int8": [[1, 2]]}, "response_type": "embeddings_by_type"}"#.to_vec(),
    ];
    let error = decode_responses(&int8_only, Family::Cohere, "m").expect_err("no floats");
    assert_eq!(error.kind, ErrorKind::BadGateway);
}

#[test]
fn unreadable_answers_are_bad_gateways() {
    let error = decode_responses(&[b"{}".to_vec()], Family::Titan, "m").expect_err("no vector");
    assert_eq!(error.kind, ErrorKind::BadGateway);
    assert_eq!(error.code.as_deref(), Some("upstream_malformed_response"));
}

#[test]
fn the_token_count_header_is_read() {
    let mut headers = http::HeaderMap::new();
    assert_eq!(header_input_tokens(&headers), None);
    headers.insert(
        INPUT_TOKEN_COUNT_HEADER,
        http::HeaderValue::from_static("42"),
    );
    assert_eq!(header_input_tokens(&headers), Some(42));
}
