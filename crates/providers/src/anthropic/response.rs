//! Anthropic message objects (non-streamed answers) to and from the canonical response, and
//! the stop-reason and usage mappings the stream shares.
//! <https://docs.anthropic.com/en/api/messages>

use crate::answer;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_types::{
    ApiError, ChatRequest, ChatResponse, Choice, ContentPart, FinishReason, ServiceTier, ToolCall,
    Usage,
};

use super::content::{
    Block, JSON_TOOL, emulates_json_schema, redacted_thinking_block, text_block, thinking_block,
    tool_input, tool_use_block,
};

/// Reads an upstream Anthropic message. `request` is what was sent: when it asked for a
/// JSON-schema answer, the forced [`JSON_TOOL`] call is turned back into text.
pub fn decode(body: &[u8], request: &ChatRequest) -> Result<ChatResponse, ApiError> {
    let wire: WireResponse = crate::json::from_bytes(body).map_err(|error| malformed(&error))?;
    let json_mode = emulates_json_schema(request);
    let mut choice = Choice::new(0);
    for block in wire.content {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !matches!(kind, "text" | "thinking" | "redacted_thinking" | "tool_use") {
            // Server-tool calls and results (`server_tool_use`, `web_search_tool_result`, …)
            // and future types: kept whole, for clients of Anthropic's own API.
            choice.content.push(ContentPart::Opaque {
                kind: kind.to_owned(),
                block: Some(block),
            });
            continue;
        }
        let block: Block = serde_json::from_value(block).map_err(|error| malformed(&error))?;
        match block.kind.as_str() {
            // A JSON-schema answer is a forced tool call: any text before it is preamble.
            "text" if json_mode => {}
            "text" => choice
                .content
                .push(ContentPart::text(block.text.unwrap_or_default())),
            "thinking" => choice.content.push(ContentPart::Thinking {
                text: block.thinking.unwrap_or_default(),
                signature: block.signature,
            }),
            "redacted_thinking" => choice.content.push(ContentPart::RedactedThinking {
                data: block.data.unwrap_or_default(),
            }),
            _ => {
                let input = block.input.unwrap_or_else(|| Value::Object(Map::new()));
                let name = block.name.unwrap_or_default();
                if json_mode && name == JSON_TOOL {
                    choice.content.push(ContentPart::text(input.to_string()));
                } else {
                    choice.tool_calls.push(ToolCall {
                        id: block.id.unwrap_or_default(),
                        name,
                        arguments: input.to_string(),
                    });
                }
            }
        }
    }
    choice.finish_reason = match wire.stop_reason.as_deref() {
        Some("tool_use") if json_mode && choice.tool_calls.is_empty() => FinishReason::Stop,
        Some(reason) => finish_reason(reason),
        None => FinishReason::Stop,
    };
    choice.stop_sequence = wire.stop_sequence;
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        created: unix_now(),
        choices: vec![choice],
        usage: wire.usage.to_canonical(),
        system_fingerprint: None,
        service_tier: None,
    })
}

/// Writes the canonical response as an Anthropic message for the client (choice 0 only:
/// Anthropic has no choices).
pub fn encode(response: &ChatResponse) -> Vec<u8> {
    let choice = response
        .choices
        .iter()
        .find(|choice| choice.index == 0)
        .or(response.choices.first());
    let mut content = Vec::new();
    let mut stop_reason = "end_turn";
    let mut stop_sequence = None;
    if let Some(choice) = choice {
        // Anthropic puts thinking before the answer and tool calls after it; server-tool calls
        // and their results stay where they were among the pieces of text.
        for part in &choice.content {
            match part {
                ContentPart::Thinking { text, signature } => {
                    content.push(thinking_block(
                        text,
                        signature.as_deref().unwrap_or_default(),
                    ));
                }
                ContentPart::RedactedThinking { data } => {
                    content.push(redacted_thinking_block(data));
                }
                ContentPart::Text { .. }
                | ContentPart::Image { .. }
                | ContentPart::Opaque { .. } => {}
            }
        }
        for part in &choice.content {
            match part {
                ContentPart::Text { text, .. } if !text.is_empty() => {
                    content.push(text_block(text, None));
                }
                ContentPart::Opaque {
                    block: Some(block), ..
                } => content.push(block.clone()),
                _ => {}
            }
        }
        if let Some(refusal) = &choice.refusal {
            content.push(text_block(refusal, None));
        }
        for call in &choice.tool_calls {
            let input = tool_input(&call.arguments).unwrap_or_else(|| Value::Object(Map::new()));
            content.push(tool_use_block(&call.id, &call.name, input));
        }
        stop_sequence = choice.stop_sequence.as_deref();
        stop_reason = match (&choice.finish_reason, &choice.refusal) {
            (FinishReason::Stop, Some(_)) => "refusal",
            (reason, _) => stop_reason_name(reason, stop_sequence),
        };
    }
    let body = json!({
        "id": message_id(&response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage_json(&response.usage),
    });
    body.to_string().into_bytes()
}

/// The canonical reason for an Anthropic `stop_reason`.
pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// The Anthropic `stop_reason` for a canonical reason.
pub(crate) fn stop_reason_name<'a>(
    reason: &'a FinishReason,
    stop_sequence: Option<&str>,
) -> &'a str {
    match reason {
        FinishReason::Stop if stop_sequence.is_some() => "stop_sequence",
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
        // Anthropic's own names pass; any other provider's reason is none an Anthropic SDK
        // knows.
        // Anthropic's own `pause_turn` passes (its other names have variants of their own);
        // any other provider's reason is none an Anthropic SDK knows.
        FinishReason::Other(other) if other == "pause_turn" => other,
        FinishReason::Other(_) => "end_turn",
    }
}

/// Anthropic `usage` for a client: `input_tokens` excludes cache reads and writes.
pub(crate) fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.uncached_prompt_tokens(),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.completion_tokens,
    })
}

/// A message id as Anthropic clients expect it (`msg_…`).
pub(crate) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{id}")
    }
}

pub(crate) use crate::answer::unix_now;

/// The 502 for an upstream body that is not a readable message.
pub(crate) fn malformed(error: &serde_json::Error) -> ApiError {
    answer::malformed("Anthropic", "response", error)
}

/// An Anthropic message as read.
#[derive(Debug, Deserialize)]
struct WireResponse {
    id: String,
    model: String,
    /// Read as JSON first: blocks without a canonical place are kept whole.
    content: Vec<Value>,
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

/// Anthropic `usage` as read; a stream's `message_delta` repeats only some counts.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct WireUsage {
    /// Input tokens not read from or written to the cache.
    pub(crate) input_tokens: Option<u64>,
    /// Output tokens.
    pub(crate) output_tokens: Option<u64>,
    /// Input tokens written to the cache.
    pub(crate) cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    pub(crate) cache_read_input_tokens: Option<u64>,
    /// The cache writes by how long they are kept.
    #[serde(default)]
    pub(crate) cache_creation: Option<CacheCreation>,
    /// `standard`, `priority` or `batch`.
    #[serde(default)]
    pub(crate) service_tier: Option<ServiceTier>,
}

/// Anthropic's `usage.cache_creation`: the cache writes by time to live.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct CacheCreation {
    #[serde(default)]
    pub(crate) ephemeral_1h_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Takes every count `later` states.
    pub(crate) fn update(&mut self, later: &WireUsage) {
        let take = |mine: &mut Option<u64>, theirs: Option<u64>| {
            if theirs.is_some() {
                *mine = theirs;
            }
        };
        take(&mut self.input_tokens, later.input_tokens);
        take(&mut self.output_tokens, later.output_tokens);
        take(
            &mut self.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        take(
            &mut self.cache_read_input_tokens,
            later.cache_read_input_tokens,
        );
        if later.cache_creation.is_some() {
            self.cache_creation = later.cache_creation;
        }
        if later.service_tier.is_some() {
            self.service_tier = later.service_tier;
        }
    }

    /// The canonical counts: the prompt includes cache reads and writes.
    pub(crate) fn to_canonical(self) -> Usage {
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: self.input_tokens.unwrap_or(0) + cache_read + cache_write,
            completion_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            reasoning_tokens: 0,
            cache_write_1h_tokens: self
                .cache_creation
                .and_then(|split| split.ephemeral_1h_input_tokens)
                .unwrap_or(0)
                .min(cache_write),
            service_tier: self.service_tier.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests;
