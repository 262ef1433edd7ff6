//! The canonical non-streamed answer.

use serde_json::Value;

use crate::request::{ContentPart, ToolCall};
use crate::usage::Usage;

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatResponse {
    /// The provider's response id.
    pub id: String,
    /// The model that answered, as the upstream named it.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// One per requested choice (`n`).
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: Usage,
    /// OpenAI's backend fingerprint.
    pub system_fingerprint: Option<String>,
    /// OpenAI's service tier.
    pub service_tier: Option<String>,
}

/// One generated alternative.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Position among the choices.
    pub index: u32,
    /// Text and thinking parts, in order.
    pub content: Vec<ContentPart>,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// OpenAI's refusal message.
    pub refusal: Option<String>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// The stop sequence that ended generation, when one did.
    pub stop_sequence: Option<String>,
    /// OpenAI log-probabilities, passed through.
    pub logprobs: Option<Value>,
}

impl Choice {
    /// An empty choice at `index` that stopped normally.
    pub fn new(index: u32) -> Choice {
        Choice {
            index,
            content: Vec::new(),
            tool_calls: Vec::new(),
            refusal: None,
            finish_reason: FinishReason::Stop,
            stop_sequence: None,
            logprobs: None,
        }
    }

    /// The text parts concatenated, or `None` when there are none.
    pub fn text(&self) -> Option<String> {
        let mut out: Option<String> = None;
        for part in &self.content {
            if let ContentPart::Text { text, .. } = part {
                out.get_or_insert_with(String::new).push_str(text);
            }
        }
        out
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// The token limit.
    Length,
    /// The model called tools.
    ToolCalls,
    /// A safety filter stopped it.
    ContentFilter,
    /// A reason without a canonical name, kept verbatim.
    Other(String),
}

impl FinishReason {
    /// OpenAI's name for the reason. A reason OpenAI has no name for (Anthropic's
    /// `pause_turn`, Gemini's `MALFORMED_FUNCTION_CALL`, ...) is `stop`: SDKs that check the
    /// value against OpenAI's list would refuse anything else.
    pub fn openai(&self) -> &str {
        match self {
            FinishReason::Stop | FinishReason::Other(_) => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }

    /// Reads OpenAI's name (`function_call` is the legacy spelling of `tool_calls`).
    pub fn from_openai(name: &str) -> FinishReason {
        match name {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: reasons only other providers have reached OpenAI clients verbatim.
    #[test]
    fn reasons_openai_has_no_name_for_are_stop() {
        for other in [
            "pause_turn",
            "malformed_function_call",
            "guardrail_intervened",
        ] {
            assert_eq!(FinishReason::Other(other.into()).openai(), "stop");
        }
        assert_eq!(FinishReason::ContentFilter.openai(), "content_filter");
    }
}
