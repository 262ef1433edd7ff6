//! Anthropic Messages request bodies to and from the canonical request.
//!
//! [`decode`] reads a client's body: `system` becomes leading system messages, `tool_result`
//! blocks become separate tool messages, unknown top-level fields are kept in
//! [`Extra`]. [`encode`] builds the body for an Anthropic upstream from a request of any
//! dialect, meeting Anthropic's rules (one top-level system prompt, alternating roles, tool
//! results first in the turn after the tool calls) and emulating OpenAI-only features.
//! <https://docs.anthropic.com/en/api/messages>

use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_types::{
    ApiError, ChatRequest, ContentPart, Extra, ImageSource, MaxTokensKey, Message, Reasoning, Role,
    Tool, ToolCall, ToolChoice, WireFormat,
};

use super::content::{Block, Content, Source};
use crate::json;

/// Reads a client's Anthropic body. Unknown top-level fields go to `extra`, in order.
pub fn decode(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let wire: WireRequest = json::parse(body)?;
    let model = wire.model.ok_or_else(|| missing("model"))?;
    let wire_messages = wire.messages.ok_or_else(|| missing("messages"))?;
    let max_tokens = wire.max_tokens.ok_or_else(|| missing("max_tokens"))?;
    let mut extra = wire.rest;

    let mut messages = Vec::with_capacity(wire_messages.len() + 1);
    if let Some(system) = wire.system {
        decode_system(system, &mut messages)?;
    }
    for (i, message) in wire_messages.into_iter().enumerate() {
        decode_message(message, &format!("messages[{i}]"), &mut messages)?;
    }
    let mut tools = Vec::new();
    let mut opaque_tools = Vec::new();
    for (i, tool) in wire.tools.unwrap_or_default().into_iter().enumerate() {
        match tool.kind.as_deref() {
            // A server tool (`web_search_20250305`, `code_execution_…`, …): kept whole (read
            // again from the body below).
            Some(kind) if kind != "custom" => opaque_tools.push(Value::from(format!("/tools/{i}"))),
            _ => tools.push(decode_tool(tool, &format!("tools[{i}]"))?),
        }
    }
    let (tool_choice, parallel_tool_calls) = match wire.tool_choice {
        Some(choice) => decode_tool_choice(choice)?,
        None => (None, None),
    };
    let reasoning = match wire.thinking {
        Some(thinking) => decode_thinking(thinking, &mut extra)?,
        None => None,
    };
    let stream = wire.stream.unwrap_or(false);
    let mut request = ChatRequest {
        model,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        response_format: None,
        max_tokens: Some(max_tokens),
        max_tokens_key: MaxTokensKey::MaxTokens,
        temperature: wire.temperature,
        top_p: wire.top_p,
        top_k: wire.top_k,
        n: None,
        stop: wire.stop_sequences.unwrap_or_default(),
        seed: None,
        user: wire.metadata.and_then(|metadata| metadata.user_id),
        metadata: None,
        reasoning,
        stream,
        // An Anthropic stream always reports usage in `message_delta`.
        include_usage: stream,
        extra: Extra {
            format: WireFormat::Anthropic,
            fields: extra,
        },
        opaque_tools,
    };
    keep_opaque_whole(&mut request, body);
    Ok(request)
}

/// Where an opaque block or tool sits in the body, as a JSON pointer (`/messages/2/content/0`)
/// held in its `block` until [`keep_opaque_whole`] puts the block itself there.
fn opaque_at(kind: impl Into<String>, path: &str) -> ContentPart {
    let pointer: String = path
        .split(['.', '['])
        .map(|step| step.trim_end_matches(']'))
        .fold(String::new(), |mut pointer, step| {
            pointer.push('/');
            pointer.push_str(step);
            pointer
        });
    ContentPart::Opaque {
        kind: kind.into(),
        block: Some(Value::String(pointer)),
    }
}

/// Blocks and tools the canonical model has no place for, whole as the client wrote them, so
/// that a request a stage changed still carries them to an Anthropic upstream. The body is
/// read a second time, as JSON, only when the request holds one.
fn keep_opaque_whole(request: &mut ChatRequest, body: &[u8]) {
    if request.first_opaque().is_none() {
        return;
    }
    let Ok(whole) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let found = |slot: &mut Value| {
        // A pointer (a string) stands where the block will be; a block is an object.
        let block = slot
            .as_str()
            .and_then(|pointer| whole.pointer(pointer))
            .cloned();
        *slot = block.unwrap_or(Value::Null);
    };
    for message in &mut request.messages {
        for part in &mut message.content {
            if let ContentPart::Opaque { block, .. } = part
                && let Some(slot) = block
            {
                found(slot);
                if slot.is_null() {
                    *block = None;
                }
            }
        }
    }
    for tool in &mut request.opaque_tools {
        found(tool);
    }
    request.opaque_tools.retain(|tool| !tool.is_null());
}

/// Builds the body for an Anthropic upstream; `model` is the upstream's model name.
pub fn encode(request: &ChatRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    upstream::encode(request, model)
}

/// `system` as read: a string or text blocks, each kept as one part.
fn decode_system(system: Content, out: &mut Vec<Message>) -> Result<(), ApiError> {
    let parts = match system {
        Content::Text(text) if text.is_empty() => Vec::new(),
        Content::Text(text) => vec![ContentPart::text(text)],
        Content::Blocks(blocks) => blocks
            .into_iter()
            .enumerate()
            .map(|(i, block)| {
                let path = format!("system[{i}]");
                match block.kind.as_str() {
                    "text" => Ok(ContentPart::Text {
                        text: required(block.text, &path, "text")?,
                        cache_control: block.cache_control,
                    }),
                    other => Err(invalid(
                        format!("`{other}` blocks are not allowed in the system prompt"),
                        path,
                    )),
                }
            })
            .collect::<Result<_, _>>()?,
    };
    if !parts.is_empty() {
        out.push(canonical_message(Role::System, parts));
    }
    Ok(())
}

/// One Anthropic message; a user turn's `tool_result` blocks become tool messages that come
/// before the rest of the turn.
fn decode_message(
    message: WireMessage,
    path: &str,
    out: &mut Vec<Message>,
) -> Result<(), ApiError> {
    let role = match message.role {
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
    };
    let blocks = match message.content {
        Content::Text(text) => {
            out.push(Message::text_message(role, text));
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut decoded = canonical_message(role, Vec::new());
    let mut tool_results = 0;
    for (j, block) in blocks.into_iter().enumerate() {
        let path = format!("{path}.content[{j}]");
        match (block.kind.as_str(), role) {
            ("tool_result", Role::User) => {
                out.push(decode_tool_result(block, &path)?);
                tool_results += 1;
            }
            ("tool_use", Role::Assistant) => {
                decoded.tool_calls.push(decode_tool_use(block, &path)?)
            }
            ("tool_result" | "tool_use", _) => {
                return Err(invalid(
                    format!(
                        "`{}` blocks are not allowed in {} messages",
                        block.kind,
                        role.as_str()
                    ),
                    path,
                ));
            }
            _ => decoded.content.push(decode_part(block, &path)?),
        }
    }
    if tool_results == 0 || !decoded.content.is_empty() {
        out.push(decoded);
    }
    Ok(())
}

/// A text, image or thinking block.
fn decode_part(block: Block, path: &str) -> Result<ContentPart, ApiError> {
    match block.kind.as_str() {
        "text" => Ok(ContentPart::Text {
            text: required(block.text, path, "text")?,
            cache_control: block.cache_control,
        }),
        "image" => {
            let source = required(block.source, path, "source")?;
            let source: Source = serde_json::from_value(source).map_err(|error| {
                invalid(
                    format!("invalid image source: {error}"),
                    format!("{path}.source"),
                )
            })?;
            if !matches!(source.kind.as_str(), "base64" | "url") {
                // A `file` source (the Files API) and any newer kind: kept as a marker; the
                // client's bytes carry it to an Anthropic upstream, and a translated request
                // is refused naming it.
                return Ok(opaque_at(format!("image:{}", source.kind), path));
            }
            Ok(ContentPart::Image {
                source: decode_image_source(source, &format!("{path}.source"))?,
                detail: None,
                cache_control: block.cache_control,
            })
        }
        "thinking" => Ok(ContentPart::Thinking {
            text: required(block.thinking, path, "thinking")?,
            signature: block.signature,
        }),
        "redacted_thinking" => Ok(ContentPart::RedactedThinking {
            data: required(block.data, path, "data")?,
        }),
        // Kept whole, for Anthropic upstreams.
        other => Ok(opaque_at(other, path)),
    }
}

fn decode_image_source(source: Source, path: &str) -> Result<ImageSource, ApiError> {
    match source.kind.as_str() {
        "base64" => Ok(ImageSource::Base64 {
            media_type: required(source.media_type, path, "media_type")?,
            data: required(source.data, path, "data")?,
        }),
        "url" => Ok(ImageSource::Url(required(source.url, path, "url")?)),
        other => Err(invalid(
            format!("image source type `{other}` is not supported yet"),
            format!("{path}.type"),
        )),
    }
}

fn decode_tool_use(block: Block, path: &str) -> Result<ToolCall, ApiError> {
    Ok(ToolCall {
        id: required(block.id, path, "id")?,
        name: required(block.name, path, "name")?,
        arguments: block
            .input
            .map_or_else(|| "{}".to_owned(), |input| input.to_string()),
    })
}

/// A `tool_result` as a tool message. Its `cache_control` moves to its last part (the
/// canonical tool message has no place of its own for it); [`encode`] moves it back.
fn decode_tool_result(block: Block, path: &str) -> Result<Message, ApiError> {
    let tool_use_id = required(block.tool_use_id, path, "tool_use_id")?;
    let mut content = match block.content {
        None => Vec::new(),
        Some(Content::Text(text)) => vec![ContentPart::text(text)],
        Some(Content::Blocks(blocks)) => blocks
            .into_iter()
            .enumerate()
            .map(|(k, inner)| {
                let path = format!("{path}.content[{k}]");
                match inner.kind.as_str() {
                    "text" | "image" => decode_part(inner, &path),
                    // `search_result`, `tool_reference`, …: kept whole, for Anthropic
                    // upstreams.
                    other => Ok(opaque_at(other, &path)),
                }
            })
            .collect::<Result<_, _>>()?,
    };
    if let Some(marker) = block.cache_control
        && let Some(
            ContentPart::Text { cache_control, .. } | ContentPart::Image { cache_control, .. },
        ) = content.last_mut()
        && cache_control.is_none()
    {
        *cache_control = Some(marker);
    }
    Ok(Message {
        role: Role::Tool,
        content,
        name: None,
        tool_calls: Vec::new(),
        tool_call_id: Some(tool_use_id),
        is_error: block.is_error.unwrap_or(false),
    })
}

fn decode_tool(tool: WireTool, path: &str) -> Result<Tool, ApiError> {
    Ok(Tool {
        name: required(tool.name, path, "name")?,
        description: tool.description,
        parameters: required(tool.input_schema, path, "input_schema")?,
        strict: None,
        cache_control: tool.cache_control,
    })
}

fn decode_tool_choice(
    choice: WireToolChoice,
) -> Result<(Option<ToolChoice>, Option<bool>), ApiError> {
    let tool_choice = match choice.kind.as_str() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(required(choice.name, "tool_choice", "name")?),
        other => {
            return Err(invalid(
                format!("unknown tool_choice type `{other}`"),
                "tool_choice.type",
            ));
        }
    };
    let parallel = choice.disable_parallel_tool_use.map(|disable| !disable);
    Ok((Some(tool_choice), parallel))
}

/// `thinking`: `enabled` becomes a budget, `disabled` nothing, `adaptive` the effort in
/// `output_config` (Anthropic's default, `high`, without one) and is kept whole in `extra`
/// too, for what else it says; other types (newer API versions) are passed through to
/// Anthropic upstreams untouched via `extra`.
fn decode_thinking(
    thinking: Value,
    extra: &mut Map<String, Value>,
) -> Result<Option<Reasoning>, ApiError> {
    let wire: WireThinking = serde_json::from_value(thinking.clone())
        .map_err(|error| invalid(format!("Invalid value for 'thinking': {error}"), "thinking"))?;
    match wire.kind.as_str() {
        "enabled" => Ok(Some(Reasoning {
            effort: None,
            budget_tokens: Some(required(wire.budget_tokens, "thinking", "budget_tokens")?),
        })),
        "disabled" => Ok(None),
        "adaptive" => {
            let effort = extra
                .get("output_config")
                .and_then(|config| config.get("effort"))
                .and_then(Value::as_str)
                .unwrap_or("high")
                .to_owned();
            extra.insert("thinking".into(), thinking);
            Ok(Some(Reasoning {
                effort: Some(effort),
                budget_tokens: None,
            }))
        }
        _ => {
            extra.insert("thinking".into(), thinking);
            Ok(None)
        }
    }
}

fn canonical_message(role: Role, content: Vec<ContentPart>) -> Message {
    Message {
        role,
        content,
        name: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
        is_error: false,
    }
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message, Some(param.into()))
}

fn missing(field: &str) -> ApiError {
    invalid(format!("{field}: Field required"), field)
}

/// `value`, or a 400 naming `path.field`.
fn required<T>(value: Option<T>, path: &str, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        invalid(
            format!("{path}.{field}: Field required"),
            format!("{path}.{field}"),
        )
    })
}

/// A client's request body as read. Every known field is optional so a missing one is
/// reported by name; the rest is kept in `rest`.
#[derive(Debug, Deserialize)]
struct WireRequest {
    model: Option<String>,
    messages: Option<Vec<WireMessage>>,
    max_tokens: Option<u32>,
    system: Option<Content>,
    metadata: Option<WireMetadata>,
    stop_sequences: Option<Vec<String>>,
    stream: Option<bool>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u32>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    thinking: Option<Value>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    role: WireRole,
    content: Content,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    User,
    Assistant,
}

#[derive(Debug, Deserialize)]
struct WireMetadata {
    user_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    description: Option<String>,
    input_schema: Option<Value>,
    cache_control: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct WireThinking {
    #[serde(rename = "type")]
    kind: String,
    budget_tokens: Option<u32>,
}

mod upstream;

#[cfg(test)]
mod tests;
