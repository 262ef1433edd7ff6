//! Embeddings in three dialects, with the same vector for the same text in each (see
//! [`vector`]): OpenAI's `POST /v1/embeddings` (and `/embeddings`), Gemini's
//! `models/{model}:batchEmbedContents` (reached through the Gemini route, which splits the
//! method off the path) and Bedrock's `POST /model/{modelId}/invoke` for Amazon Titan Text
//! Embeddings and Cohere Embed (chosen by the model id, SigV4-verified like Converse).
//!
//! A vector has 8 dimensions unless the request names another length (`dimensions`,
//! `outputDimensionality`, Titan's `dimensions`, Cohere's `output_dimension`). Token counts are
//! words, as for chat: OpenAI's `usage.prompt_tokens`, Titan's `inputTextTokenCount` and
//! Bedrock's `x-amzn-bedrock-input-token-count` header; Gemini reports none. Options and faults
//! work as on the chat routes: the model string or `x-mock-*` headers; `fail=<status>` answers
//! with the dialect's error, `hang`, `reset`, `cut` and `malformed` break the transport, and the
//! content-filter faults (`safety`, `blocked`) do not apply.
//!
//! # Layout
//! - [`vector`]: the deterministic vectors and OpenAI's base64 encoding of one.
//! - `openai`, `gemini`, `bedrock`: each endpoint's validation, answer and errors.

mod bedrock;
mod gemini;
mod openai;
pub(crate) mod vector;

#[cfg(test)]
mod tests;

pub(crate) use self::bedrock::invoke;
pub(crate) use self::gemini::batch_embed_contents;
pub(crate) use self::openai::create;

use axum::http::StatusCode;
use axum::response::Response;

use crate::options::{Fault, Options};
use crate::{Shared, faults, reply};

/// What the common faults turn an answer into: `None` to answer normally with `body`, else the
/// response to send instead (after the latency). Status faults are answered by the caller, in
/// its dialect's error shape, before the body is built.
async fn transport_fault(state: &Shared, options: &Options) -> Option<Response> {
    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    match options.fail {
        Some(Fault::Hang) => Some(faults::hang(&state.shutdown).await),
        Some(Fault::Reset) => Some(faults::reset()),
        Some(Fault::Status(_) | Fault::Cut | Fault::Malformed | Fault::Safety | Fault::Blocked)
        | None => None,
    }
}

/// A 200 with `body`, or its `cut` or `malformed` form.
fn answer(options: &Options, body: Vec<u8>) -> Response {
    match options.fail {
        Some(Fault::Cut) => faults::cut(body),
        Some(Fault::Malformed) => faults::malformed(body),
        Some(Fault::Status(_) | Fault::Hang | Fault::Reset | Fault::Safety | Fault::Blocked)
        | None => reply::json(StatusCode::OK, body),
    }
}

/// The model string in the option parser's spelling: in a URL path (Gemini, Bedrock) the
/// first `?` or `;` starts the options and `&`, `,` or `;` separate them.
fn options_model(model: &str) -> String {
    match model.split_once(['?', ';']) {
        Some((name, options)) => format!("{name}?{}", options.replace([',', ';'], "&")),
        None => model.to_owned(),
    }
}

/// The model without its options.
fn model_name(model: &str) -> &str {
    model.split(['?', ';']).next().unwrap_or(model)
}
