//! Embeddings: OpenAI's `POST /v1/embeddings` on the client side, and the embedding calls of
//! each upstream dialect, all through [`EmbeddingRequest`] and
//! [`EmbeddingResponse`](switchyard_types::EmbeddingResponse).
//!
//! The client always speaks OpenAI ([`openai::decode_request`], [`openai::encode_response`]).
//! An OpenAI-compatible upstream gets the same shape back ([`openai::encode_request`]: the
//! client's fields, unknown ones included, under the upstream's model name); Gemini gets one
//! `batchEmbedContents` call ([`gemini`]); Bedrock gets one `InvokeModel` call per text for
//! Titan and one per 96 texts for Cohere ([`bedrock`]). Token-id inputs exist only in OpenAI's
//! dialect: the others refuse them with a 400. Upstream error answers are read by each dialect's
//! existing `error::decode` (`crate::openai::error`, `crate::gemini::error`,
//! `crate::bedrock::error`): an embedding call fails the way a chat call does.
//!
//! One OpenAI field is read by name from [`EmbeddingRequest::extra`]: `input_type`, Cohere's
//! vocabulary (`search_document`, `search_query`, `classification`, `clustering`) for what the
//! vectors are for. Cohere requires one (`search_document` when the client gave none); Gemini
//! takes it as `taskType` (`RETRIEVAL_DOCUMENT`, `RETRIEVAL_QUERY`, `CLASSIFICATION`,
//! `CLUSTERING`; another value is sent upper-cased, so `semantic_similarity` reaches Gemini
//! as `SEMANTIC_SIMILARITY`).
//!
//! # Layout
//! - [`openai`]: the client's request and response, and OpenAI-compatible upstreams.
//! - [`gemini`]: Gemini `models/{model}:batchEmbedContents`.
//! - [`bedrock`]: Bedrock `InvokeModel` for Amazon Titan Text Embeddings and Cohere Embed.
//! - `base64`: OpenAI's base64 vectors (little-endian `f32`, padded standard base64).
//!
//! <https://platform.openai.com/docs/api-reference/embeddings>,
//! <https://ai.google.dev/api/embeddings#method:-models.batchembedcontents>,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html>

pub mod bedrock;
pub mod gemini;
pub mod openai;

mod base64;

#[cfg(test)]
mod roundtrip;

use serde_json::Value;
use switchyard_types::{ApiError, EmbeddingRequest, ErrorKind, Inputs};

/// The `extra` field that says what the vectors are for (Cohere's `input_type`).
const INPUT_TYPE: &str = "input_type";

/// The texts of a request for an upstream that takes only text (every one but OpenAI).
fn texts<'a>(request: &'a EmbeddingRequest, upstream: &str) -> Result<&'a [String], ApiError> {
    match &request.inputs {
        Inputs::Texts(texts) => Ok(texts),
        Inputs::Tokens(_) => Err(ApiError::invalid_request(
            format!(
                "This model is served by {upstream}, which embeds text: send `input` as a string \
                 or an array of strings, not as token ids"
            ),
            Some("input".into()),
        )),
    }
}

/// The client's `input_type`, if it sent one; a 400 when it is not a string.
fn input_type(request: &EmbeddingRequest) -> Result<Option<&str>, ApiError> {
    match request.extra.get(INPUT_TYPE) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(kind)) => Ok(Some(kind)),
        Some(_) => Err(ApiError::invalid_request(
            "Invalid type for 'input_type': expected a string such as `search_document` or \
             `search_query`",
            Some(INPUT_TYPE.into()),
        )),
    }
}

/// The 502 for an upstream body that is not a readable answer.
fn malformed(upstream: &str, error: &serde_json::Error) -> ApiError {
    crate::answer::malformed(upstream, "embeddings response", error)
}

/// The 502 for an upstream answer that is JSON but not the expected one.
fn unexpected(upstream: &str, what: &str) -> ApiError {
    ApiError::upstream(
        ErrorKind::BadGateway,
        format!("unexpected embeddings response from upstream {upstream}: {what}"),
    )
    .with_code("upstream_malformed_response")
}
