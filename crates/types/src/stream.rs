//! Canonical stream events: what a streamed answer is made of, whatever its framing.

use crate::response::FinishReason;
use crate::usage::Usage;

/// One event of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The answer begins. Always the first event.
    Start {
        /// The provider's response id.
        id: String,
        /// The model that answers.
        model: String,
        /// Unix seconds.
        created: u64,
        /// OpenAI's backend fingerprint.
        system_fingerprint: Option<String>,
    },
    /// New content for one choice.
    Delta {
        /// The choice it belongs to.
        choice: u32,
        /// The content.
        delta: Delta,
    },
    /// One choice is complete.
    Finish {
        /// The choice.
        choice: u32,
        /// Why it stopped.
        reason: FinishReason,
        /// The stop sequence that ended it, when one did.
        stop_sequence: Option<String>,
    },
    /// Token counts (may come more than once; later counts win).
    Usage(Usage),
}

/// A piece of content.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// Answer text.
    Text(String),
    /// Reasoning text.
    Thinking(String),
    /// The signature that closes a thinking block (Anthropic).
    ThinkingSignature(String),
    /// OpenAI's refusal text.
    Refusal(String),
    /// A whole content block the canonical model has no place for, as the upstream wrote it
    /// (Anthropic's `server_tool_use` with its input, `web_search_tool_result`, redacted
    /// thinking): given back to clients of the upstream's dialect, skipped for others.
    Opaque(serde_json::Value),
    /// A tool call begins.
    ToolCallStart {
        /// The call's position within the choice (0-based).
        index: u32,
        /// The provider's call id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// More of a tool call's JSON arguments.
    ToolCallArgs {
        /// The call's position within the choice.
        index: u32,
        /// The next piece of argument text.
        arguments: String,
    },
}
