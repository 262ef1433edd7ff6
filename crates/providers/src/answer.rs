//! What every dialect's answer decoding needs: ids for answers that carry none, the time for
//! answers without a timestamp, the error for a body that is not a readable answer, and how
//! a JSON answer is asked of upstreams that lack OpenAI's response formats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_types::{ApiError, ChatRequest, ErrorKind, ResponseFormat};

/// Name of the tool that emulates OpenAI's `json_schema` response format where an upstream
/// cannot give a schema-shaped answer as such (Anthropic, Bedrock; Gemini when tools are
/// declared too): a forced call to it, whose input the decoders turn back into the text.
pub(crate) const JSON_TOOL: &str = "json_tool_call";

/// Added to the system prompt for OpenAI's `json_object` format where the upstream lacks it.
pub(crate) const JSON_OBJECT_INSTRUCTION: &str = "Respond with a single valid JSON object and nothing else: no prose before or after it and no Markdown code fences.";

/// Whether `request` asks for a schema-shaped answer.
pub(crate) fn asks_json_schema(request: &ChatRequest) -> bool {
    matches!(
        request.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    )
}

/// Distinguishes ids generated within one clock tick.
static GENERATED: AtomicU64 = AtomicU64::new(0);

/// A unique-enough suffix for ids the gateway has to make up: the time and a counter.
pub(crate) fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let count = GENERATED.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}{count:04x}")
}

/// An id `{prefix}-…` for an answer that carries none.
pub(crate) fn generated_id(prefix: &str) -> String {
    format!("{prefix}-{}", unique_suffix())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The 502 for a body from `upstream` that is not a readable `what` (`response`, `embeddings
/// response`). Only the position is reported: serde's text can quote the body.
pub(crate) fn malformed(upstream: &str, what: &str, error: &serde_json::Error) -> ApiError {
    ApiError::upstream(
        ErrorKind::BadGateway,
        format!(
            "malformed {what} from upstream {upstream} (line {}, column {})",
            error.line(),
            error.column()
        ),
    )
    .with_code("upstream_malformed_response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_differ_and_errors_hide_the_body() {
        assert_ne!(generated_id("x"), generated_id("x"));
        let error = serde_json::from_str::<serde_json::Value>("{\"secret\": ").expect_err("bad");
        let error = malformed("Gemini", "response", &error);
        assert_eq!(error.kind, ErrorKind::BadGateway);
        assert!(!error.message.contains("secret"), "{}", error.message);
    }
}

/// The tier a client asked to be served at, in its own dialect's words (OpenAI's
/// `service_tier`: `auto`, `default`, `flex`, `priority`; Anthropic's: `auto`,
/// `standard_only`), as other dialects can say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AskedTier {
    /// Whatever the account's default is.
    Auto,
    /// Standard processing, no priority capacity.
    Standard,
    /// Cheaper, slower.
    Flex,
    /// Faster, dearer.
    Priority,
}

/// What `request`'s client asked for, if anything a translation can carry.
pub(crate) fn asked_tier(request: &switchyard_types::ChatRequest) -> Option<AskedTier> {
    use switchyard_types::WireFormat;
    let said = request.extra.fields.get("service_tier")?.as_str()?;
    match (request.extra.format, said) {
        (_, "auto") => Some(AskedTier::Auto),
        (WireFormat::OpenAi, "default") | (WireFormat::Anthropic, "standard_only") => {
            Some(AskedTier::Standard)
        }
        (WireFormat::OpenAi, "flex") => Some(AskedTier::Flex),
        (WireFormat::OpenAi, "priority") => Some(AskedTier::Priority),
        _ => None,
    }
}
