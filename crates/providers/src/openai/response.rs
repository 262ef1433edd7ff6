//! OpenAI response bodies: an upstream's JSON into the canonical response, and the canonical
//! response into the JSON a client expects.

use serde::Serialize;
use switchyard_types::{
    ApiError, ChatRequest, ChatResponse, Choice, ContentPart, ErrorKind, FinishReason, ToolCall,
};

use super::wire::{ResponseIn, ToolCallOut, UsageOut};

/// Reads an upstream's Chat Completions answer.
pub fn decode(body: &[u8], _request: &ChatRequest) -> Result<ChatResponse, ApiError> {
    let wire: ResponseIn = crate::json::from_bytes(body).map_err(|error| {
        ApiError::upstream(
            ErrorKind::BadGateway,
            format!("The upstream sent an unreadable response: {error}"),
        )
    })?;
    let choices = wire
        .choices
        .into_iter()
        .map(|choice| {
            let mut content = Vec::new();
            if let Some(reasoning) = choice.message.reasoning_content
                && !reasoning.is_empty()
            {
                content.push(ContentPart::Thinking {
                    text: reasoning,
                    signature: None,
                });
            }
            if let Some(text) = choice.message.content {
                content.push(ContentPart::text(text));
            }
            Choice {
                index: choice.index,
                content,
                tool_calls: choice
                    .message
                    .tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .map(|call| ToolCall {
                        id: call.id,
                        name: call.function.name,
                        arguments: call.function.arguments,
                    })
                    .collect(),
                refusal: choice.message.refusal,
                finish_reason: choice
                    .finish_reason
                    .as_deref()
                    .map_or(FinishReason::Stop, FinishReason::from_openai),
                stop_sequence: None,
                logprobs: choice.logprobs,
            }
        })
        .collect();
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        created: wire.created,
        choices,
        usage: switchyard_types::Usage {
            service_tier: wire
                .service_tier
                .as_deref()
                .map(switchyard_types::ServiceTier::parse)
                .unwrap_or_default(),
            ..wire.usage.map(|usage| usage.to_usage()).unwrap_or_default()
        },
        system_fingerprint: wire.system_fingerprint,
        service_tier: wire.service_tier,
    })
}

/// Writes the canonical response as a Chat Completions answer.
pub fn encode(response: &ChatResponse) -> Vec<u8> {
    let choices: Vec<ChoiceOut<'_>> = response
        .choices
        .iter()
        .map(|choice| ChoiceOut {
            index: choice.index,
            message: AssistantOut {
                role: "assistant",
                content: choice.text(),
                reasoning_content: reasoning_text(choice),
                refusal: choice.refusal.as_deref(),
                tool_calls: choice
                    .tool_calls
                    .iter()
                    .map(ToolCallOut::from_call)
                    .collect(),
            },
            logprobs: choice.logprobs.as_ref(),
            finish_reason: choice.finish_reason.openai(),
        })
        .collect();
    let body = ResponseOut {
        id: &response.id,
        object: "chat.completion",
        created: response.created,
        model: &response.model,
        choices,
        usage: UsageOut::from_usage(&response.usage),
        system_fingerprint: response.system_fingerprint.as_deref(),
        service_tier: response.service_tier.as_deref(),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChoiceOut<'a>>,
    usage: UsageOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'a str>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: AssistantOut<'a>,
    logprobs: Option<&'a serde_json::Value>,
    finish_reason: &'a str,
}

/// The model's reasoning as `reasoning_content` (DeepSeek's field, which the gateway's
/// streams carry too): the thinking blocks' text, joined.
fn reasoning_text(choice: &Choice) -> Option<String> {
    let mut text = String::new();
    for part in &choice.content {
        if let ContentPart::Thinking { text: thought, .. } = part {
            text.push_str(thought);
        }
    }
    (!text.is_empty()).then_some(text)
}

#[derive(Serialize)]
struct AssistantOut<'a> {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}
