//! Building the body for an Anthropic upstream from a canonical request of any dialect:
//! one top-level system prompt, alternating roles, tool results first in the turn after the
//! tool calls, and emulations of OpenAI-only features (`n` aside, which Anthropic cannot do).

use serde_json::{Map, Value, json};
use switchyard_types::{
    ApiError, ChatRequest, ContentPart, Message, ResponseFormat, Role, Tool, ToolChoice, WireFormat,
};

use super::invalid;
use crate::answer::AskedTier;
use crate::anthropic::content::{
    JSON_TOOL, image_block, request_block, text_block, tool_id, tool_input, tool_use_block,
};
use crate::reasoning;
use crate::turns::Turns;

/// `max_tokens` when the client gave none: Anthropic requires one.
const DEFAULT_MAX_TOKENS: u32 = 4096;

pub(crate) use crate::answer::JSON_OBJECT_INSTRUCTION;

/// See [`super::encode`].
pub(super) fn encode(request: &ChatRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    if request.n.is_some_and(|n| n > 1) {
        return Err(invalid(
            "Anthropic models generate one choice per request: `n` must be 1",
            "n",
        ));
    }
    let (tools, tool_choice, forces_tool) = encode_tools(request);
    let plan = reasoning::claude(request, model, Some(DEFAULT_MAX_TOKENS), forces_tool)?;
    let max_tokens = plan.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);

    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("max_tokens".into(), max_tokens.into());
    if let Some(system) = encode_system(request) {
        body.insert("system".into(), system);
    }
    body.insert("messages".into(), Value::Array(encode_messages(request)?));
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(tool_choice) = tool_choice {
            body.insert("tool_choice".into(), tool_choice);
        }
    }
    if let Some(thinking) = plan.thinking {
        reasoning::put_claude_thinking(&mut body, thinking);
    }
    // Thinking requires default sampling: effort-derived thinking must not turn a valid
    // request into a rejected one, so it drops the sampling parameters instead.
    if !(plan.thinking.is_some() && plan.hinted) {
        if let Some(temperature) = request.temperature {
            // OpenAI allows 0..2, Anthropic 0..1.
            body.insert("temperature".into(), temperature.clamp(0.0, 1.0).into());
        }
        // Current Claude models refuse `temperature` and `top_p` together: temperature wins.
        if let Some(top_p) = request.top_p.filter(|_| request.temperature.is_none()) {
            body.insert("top_p".into(), top_p.into());
        }
        if let Some(top_k) = request.top_k {
            body.insert("top_k".into(), top_k.into());
        }
    }
    // Anthropic refuses stop sequences of whitespace only; OpenAI takes them.
    let stop: Vec<&str> = request
        .stop
        .iter()
        .map(String::as_str)
        .filter(|stop| !stop.trim().is_empty())
        .collect();
    if !stop.is_empty() {
        body.insert("stop_sequences".into(), stop.into());
    }
    if let Some(user) = &request.user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if request.stream {
        body.insert("stream".into(), true.into());
    }
    // Another dialect's tier, as Anthropic says it: priority capacity when there is some
    // (`auto`, its default), or never (`standard_only`: asked for standard or flex).
    if request.extra.format != WireFormat::Anthropic {
        match crate::answer::asked_tier(request) {
            Some(AskedTier::Standard | AskedTier::Flex) => {
                body.insert("service_tier".into(), "standard_only".into());
            }
            Some(AskedTier::Auto | AskedTier::Priority) => {
                body.insert("service_tier".into(), "auto".into());
            }
            None => {}
        }
    }
    if let Some(fields) = request.extra.for_format(WireFormat::Anthropic) {
        for (key, value) in fields {
            match body.get_mut(key) {
                None => {
                    body.insert(key.clone(), value.clone());
                }
                // The client's own `output_config` (a `format`, say) and the rest of its
                // adaptive `thinking` stay beside what the gateway wrote there.
                Some(Value::Object(ours)) if same_kind(key, ours, value) => {
                    if let Value::Object(theirs) = value {
                        for (field, value) in theirs {
                            ours.entry(field.clone()).or_insert_with(|| value.clone());
                        }
                    }
                }
                Some(_) => {}
            }
        }
    }
    Ok(Value::Object(body).to_string().into_bytes())
}

/// Whether a client's `value` for `key` completes the object the gateway wrote: its
/// `output_config`, or `thinking` of the same type.
fn same_kind(key: &str, ours: &Map<String, Value>, value: &Value) -> bool {
    match key {
        "output_config" => value.is_object(),
        "thinking" => value.get("type").is_some() && value.get("type") == ours.get("type"),
        _ => false,
    }
}

/// `(tools, tool_choice, whether a tool call is forced)`, with OpenAI's `json_schema`
/// response format emulated as a tool whose input is the answer.
fn encode_tools(request: &ChatRequest) -> (Vec<Value>, Option<Value>, bool) {
    let mut tools: Vec<Value> = request.tools.iter().map(encode_tool).collect();
    // Server tools, whole as an Anthropic client wrote them.
    tools.extend(request.opaque_tools.iter().cloned());
    let mut choice = request.tool_choice.as_ref().map(|choice| match choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    });
    let mut forced = matches!(
        request.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Tool(_))
    );
    if let Some(ResponseFormat::JsonSchema {
        description,
        schema,
        ..
    }) = &request.response_format
    {
        tools.push(json!({
            "name": JSON_TOOL,
            "description": description.as_deref().unwrap_or("Respond with the answer, a JSON value following this schema."),
            "input_schema": schema,
        }));
        // The answer must be either a call to one of the client's tools or the JSON; a
        // client that named a tool keeps it, one that allowed no tool call gets the JSON.
        choice = Some(match &request.tool_choice {
            Some(ToolChoice::Tool(name)) => json!({"type": "tool", "name": name}),
            Some(ToolChoice::None) => json!({"type": "tool", "name": JSON_TOOL}),
            _ if request.tools.is_empty() => json!({"type": "tool", "name": JSON_TOOL}),
            _ => json!({"type": "any"}),
        });
        forced = true;
    }
    if request.parallel_tool_calls == Some(false) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none"
            && let Some(object) = choice.as_object_mut()
        {
            object.insert("disable_parallel_tool_use".into(), true.into());
        }
    }
    (tools, choice, forced)
}

fn encode_tool(tool: &Tool) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), tool.name.clone().into());
    if let Some(description) = &tool.description {
        out.insert("description".into(), description.clone().into());
    }
    let schema = if tool.parameters.is_null() {
        json!({"type": "object", "properties": {}})
    } else {
        tool.parameters.clone()
    };
    out.insert("input_schema".into(), schema);
    if let Some(cache_control) = &tool.cache_control {
        out.insert("cache_control".into(), cache_control.clone());
    }
    Value::Object(out)
}

/// Every system and developer message, wherever it is, as the top-level `system`.
fn encode_system(request: &ChatRequest) -> Option<Value> {
    let mut parts: Vec<(&str, Option<&Value>)> = request
        .messages
        .iter()
        .filter(|message| matches!(message.role, Role::System | Role::Developer))
        .flat_map(|message| &message.content)
        .filter_map(|part| match part {
            ContentPart::Text {
                text,
                cache_control,
            } if !text.is_empty() => Some((text.as_str(), cache_control.as_ref())),
            _ => None,
        })
        .collect();
    if request.response_format == Some(ResponseFormat::JsonObject) {
        parts.push((JSON_OBJECT_INSTRUCTION, None));
    }
    match parts.as_slice() {
        [] => None,
        [(text, None)] => Some((*text).into()),
        _ => Some(Value::Array(
            parts
                .iter()
                .map(|(text, cache_control)| text_block(text, *cache_control))
                .collect(),
        )),
    }
}

/// The conversation as alternating user and assistant turns.
fn encode_messages(request: &ChatRequest) -> Result<Vec<Value>, ApiError> {
    let mut turns = Turns::default();
    for (i, message) in request.messages.iter().enumerate() {
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => continue,
            Role::User => (
                "user",
                message.content.iter().filter_map(request_block).collect(),
            ),
            Role::Assistant => {
                let mut blocks: Vec<Value> =
                    message.content.iter().filter_map(request_block).collect();
                for (j, call) in message.tool_calls.iter().enumerate() {
                    let input = tool_input(&call.arguments).ok_or_else(|| {
                        invalid(
                            format!("messages[{i}]: the arguments of tool call `{}` are not a JSON object", call.id),
                            format!("messages[{i}].tool_calls[{j}].function.arguments"),
                        )
                    })?;
                    blocks.push(tool_use_block(&tool_id(&call.id), &call.name, input));
                }
                ("assistant", blocks)
            }
            Role::Tool => ("user", vec![encode_tool_result(message)]),
        };
        turns.push(role, blocks);
    }
    Ok(turns
        .finish(|block| block["type"] == "tool_result")
        .map(|(role, blocks)| {
            let content = match blocks.as_slice() {
                [block] if block["type"] == "text" && block.get("cache_control").is_none() => {
                    block["text"].clone()
                }
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect())
}

/// A tool message as a `tool_result` block; a cache marker on its last part goes back onto
/// the block (see [`decode_tool_result`]).
fn encode_tool_result(message: &Message) -> Value {
    let parts: Vec<&ContentPart> = message
        .content
        .iter()
        .filter(|part| match part {
            ContentPart::Text { text, .. } => !text.is_empty(),
            ContentPart::Image { .. } | ContentPart::Opaque { block: Some(_), .. } => true,
            ContentPart::Thinking { .. }
            | ContentPart::RedactedThinking { .. }
            | ContentPart::Opaque { block: None, .. } => false,
        })
        .collect();
    let mut lifted = None;
    let mut blocks = Vec::with_capacity(parts.len());
    for (k, part) in parts.iter().enumerate() {
        let last = k + 1 == parts.len();
        match part {
            ContentPart::Text {
                text,
                cache_control,
            } => {
                let cache_control = if last {
                    lifted = cache_control.as_ref();
                    None
                } else {
                    cache_control.as_ref()
                };
                blocks.push(text_block(text, cache_control));
            }
            ContentPart::Image {
                source,
                cache_control,
                ..
            } => {
                let cache_control = if last {
                    lifted = cache_control.as_ref();
                    None
                } else {
                    cache_control.as_ref()
                };
                blocks.push(image_block(source, cache_control));
            }
            // `search_result`, `tool_reference`, …, whole as an Anthropic client wrote them.
            ContentPart::Opaque {
                block: Some(block), ..
            } => blocks.push(block.clone()),
            ContentPart::Thinking { .. }
            | ContentPart::RedactedThinking { .. }
            | ContentPart::Opaque { block: None, .. } => {}
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), "tool_result".into());
    let id = message.tool_call_id.as_deref().unwrap_or_default();
    out.insert("tool_use_id".into(), tool_id(id).into_owned().into());
    match blocks.as_slice() {
        [] => {}
        [block] if block["type"] == "text" && block.get("cache_control").is_none() => {
            out.insert("content".into(), block["text"].clone());
        }
        _ => {
            out.insert("content".into(), Value::Array(blocks));
        }
    }
    if message.is_error {
        out.insert("is_error".into(), true.into());
    }
    if let Some(cache_control) = lifted {
        out.insert("cache_control".into(), cache_control.clone());
    }
    Value::Object(out)
}
