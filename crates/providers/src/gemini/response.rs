//! Gemini `GenerateContentResponse` bodies into the canonical response, and what the stream
//! shares with it: the wire shapes (a stream chunk is a whole response fragment), how a part
//! becomes canonical content, finish reasons, usage and a blocked prompt.
//! <https://ai.google.dev/api/generate-content#generatecontentresponse>

use crate::answer;
use serde::Deserialize;
use serde_json::Value;
use switchyard_types::{
    ApiError, ChatRequest, ChatResponse, Choice, ContentPart, ErrorKind, FinishReason, ToolCall,
    Usage,
};

use super::error::{self, WireStatus};
use crate::answer::JSON_TOOL;

/// Reads an upstream Gemini answer. Each candidate becomes a choice; a prompt Gemini refused
/// to answer is a 400 with code `content_filter`.
pub fn decode(body: &[u8], request: &ChatRequest) -> Result<ChatResponse, ApiError> {
    let wire: WireResponse = crate::json::from_bytes(body).map_err(|error| malformed(&error))?;
    if let Some(error) = wire.error {
        return Err(error::in_body(error));
    }
    if let Some(error) = blocked(&wire) {
        return Err(error);
    }
    if wire.candidates.is_empty() {
        return Err(ApiError::upstream(
            ErrorKind::BadGateway,
            "the upstream Gemini answer has no candidates",
        ));
    }
    let id = wire.response_id.unwrap_or_else(generated_id);
    let choices = wire
        .candidates
        .into_iter()
        .enumerate()
        .map(|(position, candidate)| {
            decode_candidate(candidate, position, &id, answers_by_tool(request))
        })
        .collect();
    Ok(ChatResponse {
        id,
        model: wire.model_version.unwrap_or_else(|| request.model.clone()),
        created: unix_now(),
        choices,
        usage: wire
            .usage_metadata
            .map(|usage| usage.to_canonical())
            .unwrap_or_default(),
        system_fingerprint: None,
        service_tier: None,
    })
}

fn decode_candidate(
    candidate: WireCandidate,
    position: usize,
    response_id: &str,
    json_mode: bool,
) -> Choice {
    let mut choice = Choice::new(candidate.index.unwrap_or_else(|| index(position)));
    let parts = candidate.content.map(|content| content.parts);
    for part in parts.into_iter().flatten() {
        for piece in part.into_pieces() {
            let piece = piece.answered(json_mode);
            match piece {
                Piece::Thought { text, signature } => match choice.content.last_mut() {
                    // A thought split over parts is one piece of reasoning.
                    Some(ContentPart::Thinking {
                        text: previous,
                        signature: previous_signature @ None,
                    }) if !previous.is_empty() => {
                        previous.push_str(&text);
                        *previous_signature = signature;
                    }
                    _ => choice
                        .content
                        .push(ContentPart::Thinking { text, signature }),
                },
                Piece::Signature(signature) => choice.content.push(ContentPart::Thinking {
                    text: String::new(),
                    signature: Some(signature),
                }),
                Piece::Text(text) => match choice.content.last_mut() {
                    Some(ContentPart::Text { text: previous, .. }) => previous.push_str(&text),
                    _ => choice.content.push(ContentPart::text(text)),
                },
                Piece::Call {
                    id,
                    name,
                    arguments,
                } => {
                    let n = choice.tool_calls.len();
                    choice.tool_calls.push(ToolCall {
                        id: id.unwrap_or_else(|| tool_call_id(response_id, n)),
                        name,
                        arguments,
                    });
                }
            }
        }
    }
    let called = !choice.tool_calls.is_empty();
    choice.finish_reason = match candidate.finish_reason.as_deref() {
        Some(reason) => finish_reason(reason, called),
        None if called => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    };
    choice
}

/// Whether `request` was sent asking for its schema-shaped answer as a call to [`JSON_TOOL`]:
/// Gemini refuses a JSON response type together with function declarations.
pub(crate) fn answers_by_tool(request: &ChatRequest) -> bool {
    !request.tools.is_empty() && crate::answer::asks_json_schema(request)
}

/// A candidate's index from its position, when Gemini leaves `index` out (it does for a
/// single candidate on Vertex).
pub(crate) fn index(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

/// The canonical reason for a Gemini `finishReason`; `called` says whether the candidate made
/// function calls (Gemini reports `STOP` for those).
pub(crate) fn finish_reason(reason: &str, called: bool) -> FinishReason {
    match reason {
        "STOP" if called => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_ascii_lowercase()),
    }
}

/// The error for a prompt Gemini blocked (`promptFeedback.blockReason` and no candidates):
/// the client's content was refused, so the client gets a 400 it can act on.
pub(crate) fn blocked(wire: &WireResponse) -> Option<ApiError> {
    if !wire.candidates.is_empty() {
        return None;
    }
    let reason = wire.prompt_feedback.as_ref()?.block_reason.as_deref()?;
    Some(
        ApiError::invalid_request(
            format!("The upstream Gemini model blocked the prompt (blockReason: {reason})"),
            None,
        )
        .with_code("content_filter"),
    )
}

/// The id of a function call Gemini gave no id (it rarely does): unique per response, since
/// clients and other providers expect ids that are unique across a conversation.
pub(crate) fn tool_call_id(response_id: &str, n: usize) -> String {
    format!("call_{response_id}_{n}")
}

/// A response id for an answer without `responseId` (older Vertex versions).
pub(crate) fn generated_id() -> String {
    answer::generated_id("gemini")
}

pub(crate) use crate::answer::unix_now;

/// The 502 for a body that is not a readable answer.
pub(crate) fn malformed(error: &serde_json::Error) -> ApiError {
    answer::malformed("Gemini", "response", error)
}

/// A `GenerateContentResponse` as read; also each chunk of a stream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireResponse {
    /// One per requested candidate; absent when the prompt was blocked.
    #[serde(default)]
    pub(crate) candidates: Vec<WireCandidate>,
    /// Why the prompt was blocked, when it was.
    pub(crate) prompt_feedback: Option<WirePromptFeedback>,
    /// Token counts (cumulative in a stream).
    pub(crate) usage_metadata: Option<WireUsage>,
    /// The model that answered (`gemini-2.5-flash`).
    pub(crate) model_version: Option<String>,
    /// The response id.
    pub(crate) response_id: Option<String>,
    /// An error reported in place of an answer (seen inside streams).
    pub(crate) error: Option<WireStatus>,
}

/// One candidate as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireCandidate {
    /// Absent when a filter stopped the candidate before any content.
    pub(crate) content: Option<WireContent>,
    /// Set on the candidate's last chunk.
    pub(crate) finish_reason: Option<String>,
    /// Position among the candidates.
    pub(crate) index: Option<u32>,
}

/// A `Content` as read; its `role` is always `model` in an answer.
#[derive(Debug, Deserialize)]
pub(crate) struct WireContent {
    /// The parts, in order.
    #[serde(default)]
    pub(crate) parts: Vec<WirePart>,
}

/// A `Part` as read. Kinds without a canonical place (`inlineData` from image models,
/// `executableCode`, ...) are ignored; the request side never enables them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WirePart {
    text: Option<String>,
    /// The text is a thought (summary), not answer.
    thought: Option<bool>,
    /// Opaque; must go back to Gemini on the same part.
    thought_signature: Option<String>,
    function_call: Option<WireFunctionCall>,
}

#[derive(Debug, Deserialize)]
struct WireFunctionCall {
    id: Option<String>,
    #[serde(default)]
    name: String,
    args: Option<Value>,
}

/// What a part means in canonical terms, in the order the pieces are to be emitted.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Reasoning text, with the signature of its part.
    Thought {
        text: String,
        signature: Option<String>,
    },
    /// The signature of a text or function-call part, carried as empty signed thinking placed
    /// before the part.
    Signature(String),
    /// Answer text (never empty).
    Text(String),
    /// A function call; `arguments` is its `args` as compact JSON.
    Call {
        id: Option<String>,
        name: String,
        arguments: String,
    },
}

impl Piece {
    /// The piece as the client sees it: the emulated JSON answer's call is its text.
    pub(crate) fn answered(self, json_mode: bool) -> Piece {
        match self {
            Piece::Call {
                name, arguments, ..
            } if json_mode && name == JSON_TOOL => Piece::Text(arguments),
            piece => piece,
        }
    }
}

impl WirePart {
    /// The pieces of this part: at most a signature and one piece of content.
    pub(crate) fn into_pieces(self) -> impl Iterator<Item = Piece> {
        let signature = self
            .thought_signature
            .filter(|signature| !signature.is_empty());
        let (bare, content) = if let Some(call) = self.function_call {
            let content = Piece::Call {
                id: call.id.filter(|id| !id.is_empty()),
                name: call.name,
                arguments: call
                    .args
                    .map_or_else(|| "{}".to_owned(), |args| args.to_string()),
            };
            (signature, Some(content))
        } else if self.thought == Some(true) {
            let text = self.text.unwrap_or_default();
            let content = (!text.is_empty() || signature.is_some())
                .then_some(Piece::Thought { text, signature });
            (None, content)
        } else {
            let text = self.text.filter(|text| !text.is_empty()).map(Piece::Text);
            (signature, text)
        };
        bare.map(Piece::Signature).into_iter().chain(content)
    }
}

/// `promptFeedback` as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WirePromptFeedback {
    /// `SAFETY`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `OTHER`, ...
    pub(crate) block_reason: Option<String>,
}

/// `usageMetadata` as read.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireUsage {
    /// The whole prompt, cached content included.
    prompt_token_count: Option<u64>,
    /// Answer tokens, thoughts excluded.
    candidates_token_count: Option<u64>,
    /// Prompt tokens served from the context cache.
    cached_content_token_count: Option<u64>,
    /// Thinking tokens.
    thoughts_token_count: Option<u64>,
    /// Results of Google's own tools fed back to the model, billed as input.
    tool_use_prompt_token_count: Option<u64>,
}

impl WireUsage {
    /// The canonical counts: output includes thoughts, which Gemini counts apart.
    pub(crate) fn to_canonical(self) -> Usage {
        let thoughts = self.thoughts_token_count.unwrap_or(0);
        Usage {
            prompt_tokens: self.prompt_token_count.unwrap_or(0)
                + self.tool_use_prompt_token_count.unwrap_or(0),
            completion_tokens: self.candidates_token_count.unwrap_or(0) + thoughts,
            cache_read_tokens: self.cached_content_token_count.unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: thoughts,
            ..Usage::default()
        }
    }
}

#[cfg(test)]
mod tests;
