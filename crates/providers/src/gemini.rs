//! Google Gemini `generateContent` and `streamGenerateContent?alt=sse`, as served by AI Studio
//! (`generativelanguage.googleapis.com/v1beta`) and, with the same bodies, by Vertex AI.
//!
//! Upstream side only: clients speak OpenAI or Anthropic, never Gemini. [`request::encode`]
//! builds the body sent to Gemini (the model is in the URL, see [`method_path`]);
//! [`response::decode`], [`stream::Decoder`] and [`error::decode`] read its answers.
//!
//! Gemini signs its reasoning with opaque `thoughtSignature`s that must come back in the next
//! request (Gemini 3 rejects a function call whose signature is missing). A signature that
//! Gemini put on a text or function-call part travels through the canonical model as a
//! [`Thinking`](switchyard_types::ContentPart::Thinking) part with empty text, and goes back
//! onto the part Gemini expects it on.
//!
//! # Layout
//! - [`request`]: canonical request → Gemini body (`request/schema`: JSON Schema → Gemini's
//!   OpenAPI subset for function declarations).
//! - [`response`]: Gemini `GenerateContentResponse` → canonical response, and the part,
//!   finish-reason and usage mappings the stream shares.
//! - [`stream`]: the `alt=sse` stream decoder.
//! - [`error`]: Google error bodies (`google.rpc.Status`) → [`ApiError`](switchyard_types::ApiError).
//!
//! <https://ai.google.dev/api/generate-content>, <https://ai.google.dev/gemini-api/docs/thought-signatures>

pub mod error;
pub mod request;
pub mod response;
pub mod stream;

/// The path after the API base for a call: `models/{model}:generateContent` or
/// `models/{model}:streamGenerateContent?alt=sse`.
///
/// A model given as a resource name (`models/gemini-2.5-flash`, `tunedModels/my-model`) is
/// used as it is rather than prefixed a second time.
pub fn method_path(model: &str, stream: bool) -> String {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    if model.contains('/') {
        format!("{model}:{method}")
    } else {
        format!("models/{model}:{method}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_paths() {
        assert_eq!(
            method_path("gemini-2.5-flash", false),
            "models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            method_path("gemini-2.5-flash", true),
            "models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            method_path("models/gemini-2.5-pro", false),
            "models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            method_path("tunedModels/support-bot", true),
            "tunedModels/support-bot:streamGenerateContent?alt=sse"
        );
    }
}
