//! Converse answers into the canonical response, and what the stream shares with them: stop
//! reasons, usage, generated ids and the error for an unreadable body.
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax>

use crate::answer;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_types::{
    ApiError, ChatRequest, ChatResponse, Choice, ContentPart, ErrorKind, FinishReason, ServiceTier,
    ToolCall, Usage,
};

use super::JSON_TOOL;

/// Reads an upstream Converse answer. `request` is what was sent: when it asked for a
/// JSON-schema answer, the forced `json_tool_call` call is turned back into text.
pub fn decode(body: &[u8], request: &ChatRequest) -> Result<ChatResponse, ApiError> {
    let wire: WireResponse = crate::json::from_bytes(body).map_err(|error| malformed(&error))?;
    let message = wire
        .output
        .and_then(|output| output.message)
        .ok_or_else(|| {
            ApiError::upstream(
                ErrorKind::BadGateway,
                "the upstream Bedrock answer has no output message",
            )
            .with_code("upstream_malformed_response")
        })?;
    let json_mode = emulates_json_schema(request);
    let mut choice = Choice::new(0);
    let mut answered_in_json = false;
    for block in message.content {
        if let Some(text) = block.text {
            // A JSON-schema answer is a forced tool call: any text before it is preamble.
            if !json_mode && !text.is_empty() {
                match choice.content.last_mut() {
                    Some(ContentPart::Text { text: previous, .. }) => previous.push_str(&text),
                    _ => choice.content.push(ContentPart::text(text)),
                }
            }
        } else if let Some(call) = block.tool_use {
            let input = call.input.unwrap_or_else(|| Value::Object(Map::new()));
            if json_mode && call.name == JSON_TOOL {
                answered_in_json = true;
                choice.content.push(ContentPart::text(input.to_string()));
            } else {
                choice.tool_calls.push(ToolCall {
                    id: call.tool_use_id,
                    name: call.name,
                    arguments: input.to_string(),
                });
            }
        } else if let Some(reasoning) = block.reasoning_content {
            if let Some(text) = reasoning.reasoning_text {
                choice.content.push(ContentPart::Thinking {
                    text: text.text,
                    signature: text.signature.filter(|signature| !signature.is_empty()),
                });
            } else if let Some(data) = reasoning.redacted_content {
                choice.content.push(ContentPart::RedactedThinking { data });
            }
        }
        // Citations, images and documents have no canonical place.
    }
    let answered_in_json = answered_in_json && choice.tool_calls.is_empty();
    choice.finish_reason = finish_reason(&wire.stop_reason, answered_in_json);
    choice.stop_sequence = stop_sequence(wire.additional_model_response_fields.as_ref());
    Ok(ChatResponse {
        id: generated_id(),
        model: request.model.clone(),
        created: unix_now(),
        choices: vec![choice],
        usage: Usage {
            service_tier: WireServiceTier::tier(wire.service_tier.as_ref()),
            ..wire.usage.map(WireUsage::to_canonical).unwrap_or_default()
        },
        system_fingerprint: None,
        service_tier: None,
    })
}

pub(crate) use crate::answer::asks_json_schema as emulates_json_schema;

/// The canonical reason for a Converse `stopReason`; `answered_in_json` says whether the
/// answer was the emulated JSON (a forced tool call that is no call for the client).
pub(crate) fn finish_reason(reason: &str, answered_in_json: bool) -> FinishReason {
    match reason {
        "tool_use" if answered_in_json => FinishReason::Stop,
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "tool_use" => FinishReason::ToolCalls,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_ascii_lowercase()),
    }
}

/// The stop sequence that ended the answer, which Converse reports only in the model's own
/// fields (Claude's `stop_sequence`, when asked for with `additionalModelResponseFieldPaths`).
pub(crate) fn stop_sequence(fields: Option<&Value>) -> Option<String> {
    fields?
        .get("stop_sequence")?
        .as_str()
        .filter(|stop| !stop.is_empty())
        .map(str::to_owned)
}

/// A response id: Converse answers carry none (only the `x-amzn-requestid` header).
pub(crate) fn generated_id() -> String {
    answer::generated_id("bedrock")
}

pub(crate) use crate::answer::unix_now;

/// The 502 for a body that is not a readable answer.
pub(crate) fn malformed(error: &serde_json::Error) -> ApiError {
    answer::malformed("Bedrock", "response", error)
}

/// A Converse answer as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    output: Option<WireOutput>,
    #[serde(default)]
    stop_reason: String,
    usage: Option<WireUsage>,
    additional_model_response_fields: Option<Value>,
    service_tier: Option<WireServiceTier>,
}

/// `serviceTier`: the tier that served the call (`default`, `priority`, `flex`, `reserved`),
/// in the answer and in a stream's `metadata`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireServiceTier {
    #[serde(rename = "type", default)]
    kind: ServiceTier,
}

impl WireServiceTier {
    /// The tier named, standard when none is (`default` and `reserved` are standard prices).
    pub(crate) fn tier(said: Option<&WireServiceTier>) -> ServiceTier {
        said.map_or(ServiceTier::Standard, |said| said.kind)
    }
}

/// `output`, a union whose one member is `message`.
#[derive(Debug, Deserialize)]
struct WireOutput {
    message: Option<WireMessage>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Vec<WireBlock>,
}

/// A `ContentBlock` union: one member is set.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireBlock {
    text: Option<String>,
    tool_use: Option<WireToolUse>,
    reasoning_content: Option<WireReasoning>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToolUse {
    #[serde(default)]
    tool_use_id: String,
    #[serde(default)]
    name: String,
    input: Option<Value>,
}

/// `reasoningContent`, a union of `reasoningText` and `redactedContent` (base64).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReasoning {
    reasoning_text: Option<WireReasoningText>,
    redacted_content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireReasoningText {
    #[serde(default)]
    text: String,
    signature: Option<String>,
}

/// `usage` as read, in an answer and in a stream's `metadata` event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireUsage {
    /// Input tokens neither read from nor written to the prompt cache.
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl WireUsage {
    /// The canonical counts: Bedrock's `inputTokens` leaves out cache reads and writes, which
    /// the canonical `prompt_tokens` includes.
    /// <https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html>
    pub(crate) fn to_canonical(self) -> Usage {
        Usage {
            prompt_tokens: self.input_tokens
                + self.cache_read_input_tokens
                + self.cache_write_input_tokens,
            completion_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_input_tokens,
            cache_write_tokens: self.cache_write_input_tokens,
            reasoning_tokens: 0,
            ..Usage::default()
        }
    }
}

#[cfg(test)]
mod tests;
