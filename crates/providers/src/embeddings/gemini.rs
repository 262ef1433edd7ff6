//! Gemini's `models/{model}:batchEmbedContents`: every input in one call, one
//! `EmbedContentRequest` each, answered with one `ContentEmbedding` each, in order.
//!
//! Gemini's answer reports no token usage: [`decode_response`] leaves `prompt_tokens` at 0
//! rather than guessing, and a caller that bills by tokens must count them itself. Gemini takes
//! at most 100 requests per batch and refuses more with a 400, which reaches the client as it is.
//! <https://ai.google.dev/api/embeddings#method:-models.batchembedcontents>

use serde::{Deserialize, Serialize};
use switchyard_types::{ApiError, EmbeddingRequest, EmbeddingResponse, Usage};

use super::{input_type, malformed, texts};

/// The path after the API base: `models/{model}:batchEmbedContents`. A model given as a
/// resource name (`models/gemini-embedding-001`, `tunedModels/my-model`) is used as it is, as
/// [`crate::gemini::method_path`] does.
pub fn path(model: &str) -> String {
    format!("{}:batchEmbedContents", resource(model))
}

/// The body for Gemini: one request per text, each naming the model (Gemini requires it to be
/// the model of the URL), with `outputDimensionality` from `dimensions` and `taskType` from the
/// client's `input_type`. Token-id inputs are a 400: Gemini embeds text.
pub fn encode_request(request: &EmbeddingRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    let texts = texts(request, "Gemini")?;
    let task_type = input_type(request)?.map(task_type);
    let model = resource(model);
    let body = BatchOut {
        requests: texts
            .iter()
            .map(|text| EmbedOut {
                model: &model,
                content: ContentOut {
                    parts: [PartOut { text }],
                },
                task_type: task_type.as_deref(),
                output_dimensionality: request.dimensions,
            })
            .collect(),
    };
    // Serializing strings and numbers cannot fail.
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

/// Reads Gemini's answer: the vectors in order, `model` as the model, no usage (see the module).
pub fn decode_response(body: &[u8], model: &str) -> Result<EmbeddingResponse, ApiError> {
    let wire: BatchIn =
        crate::json::from_bytes(body).map_err(|error| malformed("Gemini", &error))?;
    Ok(EmbeddingResponse {
        model: model.to_owned(),
        vectors: wire
            .embeddings
            .into_iter()
            .map(|embedding| embedding.values)
            .collect(),
        usage: Usage::default(),
    })
}

/// `models/{model}`, unless `model` already is a resource name.
fn resource(model: &str) -> String {
    if model.contains('/') {
        model.to_owned()
    } else {
        format!("models/{model}")
    }
}

/// Gemini's `TaskType` for a Cohere-style `input_type`; another value is sent upper-cased.
fn task_type(input_type: &str) -> String {
    match input_type {
        "search_document" => "RETRIEVAL_DOCUMENT".to_owned(),
        "search_query" => "RETRIEVAL_QUERY".to_owned(),
        other => other.to_ascii_uppercase(),
    }
}

#[derive(Serialize)]
struct BatchOut<'a> {
    requests: Vec<EmbedOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedOut<'a> {
    model: &'a str,
    content: ContentOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

#[derive(Serialize)]
struct ContentOut<'a> {
    parts: [PartOut<'a>; 1],
}

#[derive(Serialize)]
struct PartOut<'a> {
    text: &'a str,
}

#[derive(Deserialize)]
struct BatchIn {
    #[serde(default)]
    embeddings: Vec<EmbeddingIn>,
}

#[derive(Deserialize)]
struct EmbeddingIn {
    #[serde(default)]
    values: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};
    use switchyard_types::{Encoding, ErrorKind, Inputs};

    use super::*;

    const REQUEST: &str = include_str!("../../tests/fixtures/embeddings/gemini_request.json");
    const RESPONSE: &str = include_str!("../../tests/fixtures/embeddings/gemini_response.json");

    fn request(inputs: Inputs, dimensions: Option<u32>, extra: Value) -> EmbeddingRequest {
        let extra: Map<String, Value> = extra.as_object().cloned().expect("an object");
        EmbeddingRequest {
            model: "embed".into(),
            inputs,
            dimensions,
            encoding: Encoding::Float,
            user: Some("user-1".into()),
            extra,
        }
    }

    fn texts(texts: &[&str]) -> Inputs {
        Inputs::Texts(texts.iter().map(|text| (*text).to_owned()).collect())
    }

    fn encoded(request: &EmbeddingRequest, model: &str) -> Value {
        serde_json::from_slice(&encode_request(request, model).expect("encodes")).expect("JSON")
    }

    /// The documentation's three questions, with dimensions and a task type.
    #[test]
    fn encodes_the_documented_batch() {
        let request = request(
            texts(&[
                "What is the meaning of life?",
                "How much wood would a woodchuck chuck?",
                "How does the brain work?",
            ]),
            Some(768),
            json!({"input_type": "search_document", "logit_bias": {}}),
        );
        let expected: Value = serde_json::from_str(REQUEST).expect("fixture is JSON");
        assert_eq!(encoded(&request, "gemini-embedding-001"), expected);
    }

    #[test]
    fn a_plain_request_has_no_optional_fields() {
        let request = request(texts(&["hello"]), None, json!({}));
        assert_eq!(
            encoded(&request, "models/text-embedding-004"),
            json!({"requests": [{
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "hello"}]}
            }]})
        );
    }

    #[test]
    fn input_types_map_to_task_types() {
        for (input_type, task) in [
            ("search_query", "RETRIEVAL_QUERY"),
            ("classification", "CLASSIFICATION"),
            ("clustering", "CLUSTERING"),
            ("semantic_similarity", "SEMANTIC_SIMILARITY"),
        ] {
            let request = request(texts(&["a"]), None, json!({"input_type": input_type}));
            assert_eq!(
                encoded(&request, "m")["requests"][0]["taskType"],
                task,
                "{input_type}"
            );
        }
        let request = request(texts(&["a"]), None, json!({"input_type": 3}));
        let error = encode_request(&request, "m").expect_err("not a string");
        assert_eq!(error.param.as_deref(), Some("input_type"));
    }

    #[test]
    fn token_inputs_are_refused() {
        let request = request(Inputs::Tokens(vec![vec![1, 2]]), None, json!({}));
        let error = encode_request(&request, "gemini-embedding-001").expect_err("text only");
        assert_eq!(error.kind, ErrorKind::InvalidRequest);
        assert_eq!(error.param.as_deref(), Some("input"));
        assert!(error.message.contains("Gemini"), "{}", error.message);
    }

    #[test]
    fn decodes_the_vectors_in_order_without_usage() {
        let response = decode_response(RESPONSE.as_bytes(), "gemini-embedding-001").expect("reads");
        assert_eq!(response.model, "gemini-embedding-001");
        assert_eq!(
            response.vectors,
            vec![
                vec![-0.022_374_88, -0.007_426_72, 0.031_042_19],
                vec![0.004_311_54, -0.018_530_87, -0.002_746_31],
                vec![0.017_612_03, 0.003_217_79, -0.041_127_52],
            ]
        );
        assert_eq!(response.usage, Usage::default());
    }

    #[test]
    fn an_unreadable_answer_is_a_bad_gateway() {
        let error = decode_response(b"{\"embeddings\": [{\"values\": [\"x\"]}]}", "m")
            .expect_err("not floats");
        assert_eq!(error.kind, ErrorKind::BadGateway);
        assert!(!error.message.contains("\"x\""), "{}", error.message);
    }

    #[test]
    fn paths_name_the_method() {
        assert_eq!(
            path("gemini-embedding-001"),
            "models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(
            path("models/text-embedding-004"),
            "models/text-embedding-004:batchEmbedContents"
        );
    }
}
