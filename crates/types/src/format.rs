//! The wire formats (API dialects) that clients and upstreams speak.

use serde::{Deserialize, Serialize};

/// An API dialect. A request arrives in one and may leave in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireFormat {
    /// OpenAI Chat Completions and every OpenAI-compatible server.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl WireFormat {
    /// The name used in logs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            WireFormat::OpenAi => "openai",
            WireFormat::Anthropic => "anthropic",
        }
    }
}
