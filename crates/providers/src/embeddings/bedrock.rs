//! Bedrock's `InvokeModel` (`POST /model/{modelId}/invoke`, SigV4-signed like Converse with
//! [`crate::bedrock::sign`]) for the two embedding model families whose bodies differ:
//!
//! - Amazon Titan Text Embeddings (`amazon.titan-embed-text-v2:0`, and G1
//!   `amazon.titan-embed-text-v1`): one text per call, `{"inputText", "dimensions"}` →
//!   `{"embedding", "inputTextTokenCount"}`. `normalize` is left out: v2 normalises by default,
//!   and G1 refuses the key (as it refuses `dimensions`, which is only sent when asked for).
//! - Cohere Embed (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`,
//!   `cohere.embed-v4:0`): up to 96 texts per call, `{"texts", "input_type",
//!   "embedding_types": ["float"]}` → `{"embeddings": {"float": [[…]]}}` (or, from a model that
//!   ignores `embedding_types`, `{"embeddings": [[…]]}`). `dimensions` is sent as v4's
//!   `output_dimension`; v3 has a fixed size and Bedrock refuses the field with a 400.
//!
//! Cohere's body carries no token count. Bedrock reports the input tokens of every `InvokeModel`
//! answer in the `x-amzn-bedrock-input-token-count` header ([`header_input_tokens`]); a caller
//! that has the headers should prefer their sum to the usage of [`decode_responses`], which is 0
//! for Cohere.
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v4.html>

use serde::{Deserialize, Serialize};
use switchyard_types::{ApiError, EmbeddingRequest, EmbeddingResponse, Usage};

use super::{input_type, malformed, texts, unexpected};

/// Most texts Cohere Embed takes in one call.
pub const COHERE_MAX_TEXTS: usize = 96;

/// The `input_type` sent to Cohere when the client named none.
pub const COHERE_DEFAULT_INPUT_TYPE: &str = "search_document";

/// The response header in which Bedrock reports an `InvokeModel` call's input tokens.
pub const INPUT_TOKEN_COUNT_HEADER: &str = "x-amzn-bedrock-input-token-count";

/// The embedding model families, whose `InvokeModel` bodies differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Amazon Titan Text Embeddings (G1 and v2): one text per call.
    Titan,
    /// Cohere Embed (v3 and v4): up to [`COHERE_MAX_TEXTS`] texts per call.
    Cohere,
}

/// The family a model id names: `amazon.titan-embed-text…` (and G1's
/// `amazon.titan-embed-g1-text…`) is Titan, `cohere.embed…` Cohere, also behind a
/// cross-region prefix (`us.cohere.embed-v4:0`) or as the last segment of an ARN. `None` for
/// other models, for Titan Multimodal Embeddings (`amazon.titan-embed-image…`, whose body
/// differs) and for ids that do not name the model (application inference profiles).
pub fn family(model_id: &str) -> Option<Family> {
    let name = model_id.rsplit('/').next().unwrap_or(model_id);
    let names = |prefix: &str| {
        name.starts_with(prefix)
            || name
                .split_once('.')
                .is_some_and(|(_, rest)| rest.starts_with(prefix))
    };
    if names("amazon.titan-embed") && !name.contains("titan-embed-image") {
        Some(Family::Titan)
    } else if names("cohere.embed") {
        Some(Family::Cohere)
    } else {
        None
    }
}

/// Path for a call: `/model/{model id}/invoke`, the id percent-encoded as one segment by the
/// rule of [`crate::bedrock::path`].
pub fn path(model: &str) -> String {
    let converse = crate::bedrock::path(model, false);
    let base = converse.strip_suffix("/converse").unwrap_or(&converse);
    format!("{base}/invoke")
}

/// The bodies to send, in order, one call each: one per text for Titan, one per
/// [`COHERE_MAX_TEXTS`] texts for Cohere. Token-id inputs are a 400: Bedrock embeds text.
pub fn encode_requests(
    request: &EmbeddingRequest,
    family: Family,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let texts = texts(request, "Amazon Bedrock")?;
    let bodies = match family {
        Family::Titan => texts
            .iter()
            .map(|text| {
                to_json(&TitanOut {
                    input_text: text,
                    dimensions: request.dimensions,
                })
            })
            .collect(),
        Family::Cohere => {
            let input_type = input_type(request)?.unwrap_or(COHERE_DEFAULT_INPUT_TYPE);
            texts
                .chunks(COHERE_MAX_TEXTS)
                .map(|chunk| {
                    to_json(&CohereOut {
                        texts: chunk,
                        input_type,
                        embedding_types: ["float"],
                        output_dimension: request.dimensions,
                    })
                })
                .collect()
        }
    };
    Ok(bodies)
}

/// Reads the answers to the bodies of [`encode_requests`], in the same order, into one
/// response named `model`. Usage is the sum of Titan's `inputTextTokenCount`s, and 0 for
/// Cohere (see the module on the header that has it).
pub fn decode_responses(
    bodies: &[Vec<u8>],
    family: Family,
    model: &str,
) -> Result<EmbeddingResponse, ApiError> {
    let mut vectors = Vec::with_capacity(bodies.len());
    let mut prompt_tokens = 0_u64;
    for body in bodies {
        match family {
            Family::Titan => {
                let wire: TitanIn =
                    serde_json::from_slice(body).map_err(|error| malformed("Titan", &error))?;
                vectors.push(wire.embedding);
                prompt_tokens += wire.input_text_token_count;
            }
            Family::Cohere => {
                let wire: CohereIn =
                    serde_json::from_slice(body).map_err(|error| malformed("Cohere", &error))?;
                match wire.embeddings {
                    CohereEmbeddings::Floats(floats)
                    | CohereEmbeddings::ByType {
                        float: Some(floats),
                    } => vectors.extend(floats),
                    CohereEmbeddings::ByType { float: None } => {
                        return Err(unexpected("Cohere", "it holds no float embeddings"));
                    }
                }
            }
        }
    }
    Ok(EmbeddingResponse {
        model: model.to_owned(),
        vectors,
        usage: Usage {
            prompt_tokens,
            ..Usage::default()
        },
    })
}

/// The input tokens Bedrock reports for one `InvokeModel` answer, from its
/// [`INPUT_TOKEN_COUNT_HEADER`].
pub fn header_input_tokens(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(INPUT_TOKEN_COUNT_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Serializing strings and numbers cannot fail.
fn to_json<T: Serialize>(body: &T) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanOut<'a> {
    input_text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
}

#[derive(Serialize)]
struct CohereOut<'a> {
    texts: &'a [String],
    input_type: &'a str,
    embedding_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimension: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanIn {
    embedding: Vec<f32>,
    #[serde(default)]
    input_text_token_count: u64,
}

#[derive(Deserialize)]
struct CohereIn {
    embeddings: CohereEmbeddings,
}

/// `embeddings_floats` (an array of vectors) or `embeddings_by_type` (vectors per type).
#[derive(Deserialize)]
#[serde(untagged)]
enum CohereEmbeddings {
    Floats(Vec<Vec<f32>>),
    ByType {
        #[serde(default)]
        float: Option<Vec<Vec<f32>>>,
    },
}

#[cfg(test)]
mod tests;
