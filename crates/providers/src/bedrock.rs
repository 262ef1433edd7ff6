//! Amazon Bedrock's Converse API (`POST /model/{modelId}/converse`) and ConverseStream
//! (`POST /model/{modelId}/converse-stream`, answered as an `application/vnd.amazon.eventstream`
//! of binary frames), signed with AWS Signature Version 4 for the service `bedrock`.
//!
//! Upstream side only: clients speak OpenAI or Anthropic, never Converse. [`request::encode`]
//! builds the body (the model is in the URL, see [`path`]); [`response::decode`],
//! [`stream::Decoder`] and [`error::decode`] read Bedrock's answers; [`sign`] computes the
//! headers that authenticate one call. Converse has no response id and no `n`: ids are
//! generated and a request for several choices is refused.
//!
//! OpenAI's `json_schema` response format has no Converse equivalent: like the Anthropic module,
//! it is emulated with a forced call to the tool `json_tool_call` whose input is the answer, turned
//! back into answer text by both decoders.
//!
//! # Layout
//! - [`request`]: canonical request → Converse body.
//! - [`response`]: Converse output → canonical response, and the stop-reason, usage and
//!   content-block mappings the stream shares.
//! - [`stream`]: the event-stream decoder (frames through `aws-smithy-eventstream`).
//! - [`error`]: Bedrock error answers (`x-amzn-errortype`, `{"message"}`) and stream
//!   exceptions → [`ApiError`](switchyard_types::ApiError).
//! - [`sign`]: credentials and the SigV4 headers of one call (through `aws-sigv4`).
//!
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html>

pub mod error;
pub mod request;
pub mod response;
pub mod sign;
pub mod stream;

/// The SigV4 service name Bedrock's runtime endpoints are signed for.
pub const SERVICE: &str = "bedrock";

/// The content type of a ConverseStream answer.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// A schema-shaped answer is asked of a Bedrock upstream as a forced call to [`JSON_TOOL`].
pub(crate) use crate::answer::JSON_TOOL;

/// The runtime endpoint of `region`, the API base [`path`] is appended to:
/// `https://bedrock-runtime.{region}.amazonaws.com`.
pub fn endpoint(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// Path for a call: `/model/{url-encoded model id}/converse` or `/converse-stream`.
///
/// The model id is one path segment whatever it holds: a foundation model
/// (`anthropic.claude-3-5-sonnet-20240620-v1:0`), an inference profile
/// (`us.anthropic.claude-sonnet-4-20250514-v1:0`) or an ARN
/// (`arn:aws:bedrock:us-east-1:123456789012:inference-profile/…`). Like the AWS SDKs, every
/// byte but RFC 3986's unreserved characters is percent-encoded, `:` and `/` included.
pub fn path(model: &str, stream: bool) -> String {
    let operation = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("/model/{}/{operation}", encode_segment(model))
}

/// Percent-encodes everything but `A-Z a-z 0-9 - . _ ~`.
fn encode_segment(segment: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(segment.len() + 8);
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod roundtrip;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_the_model_id_as_one_segment() {
        assert_eq!(
            path("anthropic.claude-3-5-sonnet-20240620-v1:0", false),
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        );
        assert_eq!(
            path("us.amazon.nova-pro-v1:0", true),
            "/model/us.amazon.nova-pro-v1%3A0/converse-stream"
        );
        assert_eq!(
            path(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
                false
            ),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"
        );
        assert_eq!(path("a b~ü", false), "/model/a%20b~%C3%BC/converse");
    }

    #[test]
    fn endpoints_name_the_region() {
        assert_eq!(
            endpoint("eu-central-1"),
            "https://bedrock-runtime.eu-central-1.amazonaws.com"
        );
    }
}
