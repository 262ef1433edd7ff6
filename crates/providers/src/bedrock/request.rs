//! The body of a Converse call, built from a canonical request of any dialect.
//!
//! Converse's rules met here: system and developer messages become `system` blocks; turns
//! alternate between `user` and `assistant` (consecutive turns of one role merge, which also
//! puts consecutive tool results into one user turn, results first); a tool call is a `toolUse`
//! block whose `input` is an object, a tool result a `toolResult` block; images travel as bytes
//! (Bedrock fetches no URL); empty text blocks are refused by Bedrock and never sent. Sampling
//! and limits go in `inferenceConfig`; `top_k` and thinking (a budget, or adaptive with an
//! effort, as `reasoning.rs` decides for the model), which Converse has no field for, go in
//! `additionalModelRequestFields` in the Claude spelling, and Claude is asked for the stop
//! sequence that ended its answer (`additionalModelResponseFieldPaths`). Anthropic's
//! prompt-cache markers become `cachePoint` blocks. Fields of another dialect
//! ([`Extra`](switchyard_types::Extra)), `seed`, `user`, `metadata` and
//! `parallel_tool_calls` have no Converse equivalent and are dropped, as is thinking for
//! models other than Claude.
//!
//! Converse's `toolChoice` has no `none`: such a request declares no tools. Bedrock then
//! refuses `toolUse` and `toolResult` blocks in the history ("The toolConfig field must be
//! defined when using toolUse and toolResult content blocks"), so without declared tools the
//! history's calls and results are written as text.
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_RequestSyntax>

use std::borrow::Cow;

use serde_json::{Map, Value, json};
use switchyard_types::{
    ApiError, ChatRequest, ContentPart, ImageSource, Message, ResponseFormat, Role, ToolChoice,
};

use super::JSON_TOOL;
use crate::answer::AskedTier;
use crate::reasoning::{self, ClaudePlan};
use crate::turns::Turns;

pub(crate) use crate::answer::JSON_OBJECT_INSTRUCTION;

/// The text of a tool result that has none: Bedrock refuses empty text blocks.
const EMPTY_RESULT: &str = "(no output)";

/// Builds the body for a Bedrock upstream (the model is in the URL, not the body; `model` says
/// whether it is a Claude model, which takes thinking and reports its stop sequence).
pub fn encode(request: &ChatRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    if request.n.is_some_and(|n| n > 1) {
        return Err(invalid(
            "Bedrock Converse generates one choice per request: `n` must be 1",
            "n",
        ));
    }
    let tool_config = tool_config(request);
    let claude = model.to_ascii_lowercase().contains("claude");
    let plan = if claude {
        let forces_tool = crate::answer::asks_json_schema(request)
            || matches!(
                request.tool_choice,
                Some(ToolChoice::Required | ToolChoice::Tool(_))
            );
        reasoning::claude(request, model, None, forces_tool)?
    } else {
        ClaudePlan {
            thinking: None,
            max_tokens: request.max_tokens,
            hinted: false,
        }
    };
    let mut body = Map::new();
    body.insert(
        "messages".into(),
        Value::Array(encode_messages(&request.messages, tool_config.is_some())?),
    );
    if let Some(system) = encode_system(request) {
        body.insert("system".into(), system);
    }
    let inference = inference_config(request, &plan);
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tool_config) = tool_config {
        body.insert("toolConfig".into(), tool_config);
    }
    let additional = additional_fields(request, &plan);
    if !additional.is_empty() {
        body.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    // The tier a client asked for, as Converse names it (`auto` is its default: nothing).
    let tier = match crate::answer::asked_tier(request) {
        Some(AskedTier::Priority) => Some("priority"),
        Some(AskedTier::Flex) => Some("flex"),
        Some(AskedTier::Standard) => Some("default"),
        Some(AskedTier::Auto) | None => None,
    };
    if let Some(tier) = tier {
        body.insert("serviceTier".into(), json!({ "type": tier }));
    }
    if claude && !request.stop.is_empty() {
        // Converse says only `stop_sequence`; which one matched is Claude's own field.
        body.insert(
            "additionalModelResponseFieldPaths".into(),
            json!(["/stop_sequence"]),
        );
    }
    Ok(Value::Object(body).to_string().into_bytes())
}

/// Every system and developer message, wherever it is, as `system` blocks.
fn encode_system(request: &ChatRequest) -> Option<Value> {
    let mut blocks = Vec::new();
    for message in &request.messages {
        if !matches!(message.role, Role::System | Role::Developer) {
            continue;
        }
        for part in &message.content {
            if let ContentPart::Text {
                text,
                cache_control,
            } = part
                && !text.is_empty()
            {
                blocks.push(json!({"text": text}));
                if cache_control.is_some() {
                    blocks.push(cache_point());
                }
            }
        }
    }
    if request.response_format == Some(ResponseFormat::JsonObject) {
        blocks.push(json!({"text": JSON_OBJECT_INSTRUCTION}));
    }
    (!blocks.is_empty()).then_some(Value::Array(blocks))
}

/// The conversation as alternating user and assistant turns. `tools_declared` says whether
/// the request carries a `toolConfig`; without one, calls and results are written as text.
fn encode_messages(messages: &[Message], tools_declared: bool) -> Result<Vec<Value>, ApiError> {
    let mut turns = Turns::default();
    for (i, message) in messages.iter().enumerate() {
        match message.role {
            Role::System | Role::Developer => {}
            Role::User => turns.push("user", user_blocks(message, i)?),
            Role::Assistant => {
                turns.push("assistant", assistant_blocks(message, i, tools_declared)?);
            }
            Role::Tool => turns.push("user", tool_result_blocks(message, i, tools_declared)?),
        }
    }
    Ok(turns
        .finish(|block| block.get("toolResult").is_some())
        .map(|(role, blocks)| json!({"role": role, "content": blocks}))
        .collect())
}

/// A user message's blocks; thinking is the model's own and never sent as the user's.
fn user_blocks(message: &Message, i: usize) -> Result<Vec<Value>, ApiError> {
    let mut blocks = Vec::with_capacity(message.content.len());
    for (j, part) in message.content.iter().enumerate() {
        match part {
            ContentPart::Text {
                text,
                cache_control,
            } => {
                if !text.is_empty() {
                    blocks.push(json!({"text": text}));
                    if cache_control.is_some() {
                        blocks.push(cache_point());
                    }
                }
            }
            ContentPart::Image {
                source,
                cache_control,
                ..
            } => {
                blocks.push(image_block(source, i, j)?);
                if cache_control.is_some() {
                    blocks.push(cache_point());
                }
            }
            ContentPart::Thinking { .. }
            | ContentPart::RedactedThinking { .. }
            | ContentPart::Opaque { .. } => {}
        }
    }
    Ok(blocks)
}

/// An assistant message: its reasoning (signed thinking only: Bedrock's Claude models verify
/// the signature, so reasoning from elsewhere cannot be replayed), text, then its calls.
fn assistant_blocks(
    message: &Message,
    i: usize,
    tools_declared: bool,
) -> Result<Vec<Value>, ApiError> {
    let mut blocks = Vec::with_capacity(message.content.len() + message.tool_calls.len());
    for (j, part) in message.content.iter().enumerate() {
        match part {
            ContentPart::Text {
                text,
                cache_control,
            } => {
                if !text.is_empty() {
                    blocks.push(json!({"text": text}));
                    if cache_control.is_some() {
                        blocks.push(cache_point());
                    }
                }
            }
            ContentPart::Image { source, .. } => blocks.push(image_block(source, i, j)?),
            ContentPart::Thinking {
                text,
                signature: Some(signature),
            } if !signature.is_empty() && !text.is_empty() => {
                blocks.push(json!({"reasoningContent": {
                    "reasoningText": {"text": text, "signature": signature}
                }}));
            }
            ContentPart::RedactedThinking { data } if !data.is_empty() => {
                blocks.push(json!({"reasoningContent": {"redactedContent": data}}));
            }
            ContentPart::Thinking { .. }
            | ContentPart::RedactedThinking { .. }
            | ContentPart::Opaque { .. } => {}
        }
    }
    for (j, call) in message.tool_calls.iter().enumerate() {
        let input = tool_input(&call.arguments).ok_or_else(|| {
            invalid(
                format!(
                    "messages[{i}]: the arguments of tool call `{}` are not a JSON object",
                    call.id
                ),
                format!("messages[{i}].tool_calls[{j}].function.arguments"),
            )
        })?;
        if tools_declared {
            blocks.push(json!({"toolUse": {
                "toolUseId": tool_use_id(&call.id),
                "name": call.name,
                "input": input,
            }}));
        } else {
            blocks.push(json!({"text": format!("[tool call {} {}: {input}]", call.id, call.name)}));
        }
    }
    Ok(blocks)
}

/// A tool message as a `toolResult` block: a JSON object as `json`, other text as `text`, its
/// images beside them; `status: error` for a failed call.
fn tool_result_blocks(
    message: &Message,
    i: usize,
    tools_declared: bool,
) -> Result<Vec<Value>, ApiError> {
    let id = message.tool_call_id.as_deref().ok_or_else(|| {
        invalid(
            format!("messages[{i}]: a tool message needs the tool_call_id of the call it answers"),
            format!("messages[{i}].tool_call_id"),
        )
    })?;
    let text = message.text();
    if !tools_declared {
        let status = if message.is_error { " (error)" } else { "" };
        let text = if text.is_empty() { EMPTY_RESULT } else { &text };
        return Ok(vec![
            json!({"text": format!("[tool result {id}{status}: {text}]")}),
        ]);
    }
    let mut content = Vec::with_capacity(1);
    match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => content.push(json!({"json": object})),
        _ if !text.is_empty() => content.push(json!({"text": text})),
        _ => {}
    }
    for (j, part) in message.content.iter().enumerate() {
        if let ContentPart::Image { source, .. } = part {
            content.push(image_block(source, i, j)?);
        }
    }
    if content.is_empty() {
        content.push(json!({"text": EMPTY_RESULT}));
    }
    let mut result = Map::new();
    result.insert("toolUseId".into(), tool_use_id(id).into_owned().into());
    result.insert("content".into(), Value::Array(content));
    if message.is_error {
        result.insert("status".into(), "error".into());
    }
    Ok(vec![json!({"toolResult": result})])
}

/// An inline image as an `image` block; Bedrock takes bytes only, so a URL is refused.
fn image_block(source: &ImageSource, i: usize, j: usize) -> Result<Value, ApiError> {
    let param = || format!("messages[{i}].content[{j}]");
    match source {
        ImageSource::Base64 { media_type, data } => {
            let format = image_format(media_type).ok_or_else(|| {
                invalid(
                    format!(
                        "messages[{i}]: Bedrock accepts PNG, JPEG, GIF and WebP images, not \
                         `{media_type}`"
                    ),
                    param(),
                )
            })?;
            Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
        }
        ImageSource::Url(_) => Err(invalid(
            format!(
                "messages[{i}]: Bedrock does not fetch images by URL; send the image inline \
                 as a base64 data URL"
            ),
            param(),
        )),
    }
}

/// Converse's image `format` for a MIME type.
fn image_format(media_type: &str) -> Option<&'static str> {
    match media_type.trim().to_ascii_lowercase().as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

/// A tool-use id Bedrock accepts (`[a-zA-Z0-9_-]+`). Other providers' ids may hold other
/// characters (`functions.get_weather:0`); the same mapping is applied to a call and to the
/// result answering it, so the pair still matches.
fn tool_use_id(id: &str) -> Cow<'_, str> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.is_empty() {
        Cow::Borrowed("tooluse_")
    } else if id.chars().all(valid) {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(id.chars().map(|c| if valid(c) { c } else { '_' }).collect())
    }
}

/// Tool-call arguments as the object `toolUse.input` must be; an empty string means none.
fn tool_input(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Some(value),
        _ => None,
    }
}

/// `toolConfig`, or `None` when the request declares no tool: the client's tools (unless its
/// tool choice is `none`) and the tool that emulates a `json_schema` response format.
fn tool_config(request: &ChatRequest) -> Option<Value> {
    let allows_calls = request.tool_choice != Some(ToolChoice::None);
    let mut tools = Vec::new();
    if allows_calls {
        for tool in &request.tools {
            let mut spec = Map::new();
            spec.insert("name".into(), tool.name.clone().into());
            // Bedrock refuses an empty description.
            if let Some(description) = tool.description.as_deref().filter(|d| !d.trim().is_empty())
            {
                spec.insert("description".into(), description.into());
            }
            let schema = if tool.parameters.is_null() {
                json!({"type": "object", "properties": {}})
            } else {
                tool.parameters.clone()
            };
            spec.insert("inputSchema".into(), json!({"json": schema}));
            tools.push(json!({"toolSpec": spec}));
            if tool.cache_control.is_some() {
                tools.push(cache_point());
            }
        }
    }
    let json_schema = match &request.response_format {
        Some(ResponseFormat::JsonSchema {
            description,
            schema,
            ..
        }) => {
            let description = description
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .unwrap_or("Respond with the answer, a JSON value following this schema.");
            tools.push(json!({"toolSpec": {
                "name": JSON_TOOL,
                "description": description,
                "inputSchema": {"json": schema},
            }}));
            true
        }
        Some(ResponseFormat::Text | ResponseFormat::JsonObject) | None => false,
    };
    if tools.is_empty() {
        return None;
    }
    let choice = if json_schema {
        // The answer must be either a call to one of the client's tools or the JSON; a client
        // that named a tool keeps it, one that allowed no call gets the JSON.
        Some(match &request.tool_choice {
            Some(ToolChoice::Tool(name)) => json!({"tool": {"name": name}}),
            Some(ToolChoice::None) => json!({"tool": {"name": JSON_TOOL}}),
            _ if request.tools.is_empty() => json!({"tool": {"name": JSON_TOOL}}),
            _ => json!({"any": {}}),
        })
    } else {
        match &request.tool_choice {
            Some(ToolChoice::Auto) => Some(json!({"auto": {}})),
            Some(ToolChoice::Required) => Some(json!({"any": {}})),
            Some(ToolChoice::Tool(name)) => Some(json!({"tool": {"name": name}})),
            Some(ToolChoice::None) | None => None,
        }
    };
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(tools));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Some(Value::Object(config))
}

/// `inferenceConfig`: the limits and sampling every Converse model takes. Converse bounds
/// `temperature` and `topP` to 0–1 (OpenAI allows a temperature up to 2). Thinking from an
/// effort drops the sampling Claude refuses with it.
fn inference_config(request: &ChatRequest, plan: &ClaudePlan) -> Map<String, Value> {
    let mut config = Map::new();
    if let Some(max_tokens) = plan.max_tokens {
        config.insert("maxTokens".into(), max_tokens.max(1).into());
    }
    if plan.thinking.is_some() && plan.hinted {
        if !request.stop.is_empty() {
            config.insert("stopSequences".into(), request.stop.clone().into());
        }
        return config;
    }
    if let Some(temperature) = request.temperature {
        config.insert("temperature".into(), temperature.clamp(0.0, 1.0).into());
    }
    if let Some(top_p) = request.top_p {
        config.insert("topP".into(), top_p.clamp(0.0, 1.0).into());
    }
    if !request.stop.is_empty() {
        config.insert("stopSequences".into(), request.stop.clone().into());
    }
    config
}

/// `additionalModelRequestFields`: model-specific fields in the spelling of Bedrock's Claude
/// models, which are the ones that take them.
fn additional_fields(request: &ChatRequest, plan: &ClaudePlan) -> Map<String, Value> {
    let mut fields = Map::new();
    if let Some(top_k) = request.top_k.filter(|_| !plan.hinted) {
        fields.insert("top_k".into(), top_k.into());
    }
    if let Some(thinking) = plan.thinking {
        reasoning::put_claude_thinking(&mut fields, thinking);
    }
    fields
}

/// A prompt-cache checkpoint after the preceding block.
fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message, Some(param.into()))
}

#[cfg(test)]
mod tests;
