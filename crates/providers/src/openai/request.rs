//! OpenAI request bodies: a client's JSON into the canonical request, and the canonical request
//! into the JSON an OpenAI-compatible upstream expects.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value, json};
use switchyard_types::{
    ApiError, ChatRequest, ContentPart, Extra, ImageSource, MaxTokensKey, Message, Reasoning,
    ResponseFormat, Role, Tool, ToolCall, ToolChoice, WireFormat,
};

use super::compat::{self, Quirks};
use super::wire::{
    ContentIn, ImageUrl, MessageIn, PartIn, RequestIn, ResponseFormatIn, RoleIn, StopIn,
    StreamOptions, ToolCallOut, ToolChoiceIn,
};
use crate::answer::AskedTier;
use crate::json;

/// Parses a client's Chat Completions body. Unknown top-level fields are kept in `extra`.
pub fn decode(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let wire: RequestIn = json::parse(body)?;
    let mut messages = Vec::with_capacity(wire.messages.len());
    for (index, message) in wire.messages.into_iter().enumerate() {
        messages.push(decode_message(message, index)?);
    }
    let mut tools = Vec::new();
    for (index, tool) in wire.tools.unwrap_or_default().into_iter().enumerate() {
        if tool.kind != "function" {
            return Err(ApiError::invalid_request(
                format!("Tool type '{}' is not supported", tool.kind),
                Some(format!("tools[{index}].type")),
            ));
        }
        tools.push(Tool {
            name: tool.function.name,
            description: tool.function.description,
            parameters: tool
                .function
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            strict: tool.function.strict,
            cache_control: tool.function.cache_control,
        });
    }
    let tool_choice = match wire.tool_choice {
        None => None,
        Some(ToolChoiceIn::Named(named)) => Some(ToolChoice::Tool(named.function.name)),
        Some(ToolChoiceIn::Mode(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(ApiError::invalid_request(
                    format!(
                        "Invalid value '{other}' for tool_choice: expected 'none', 'auto', 'required' or a named function"
                    ),
                    Some("tool_choice".into()),
                ));
            }
        }),
    };
    let response_format = wire.response_format.map(|format| match format {
        ResponseFormatIn::Text => ResponseFormat::Text,
        ResponseFormatIn::JsonObject => ResponseFormat::JsonObject,
        ResponseFormatIn::JsonSchema { json_schema } => ResponseFormat::JsonSchema {
            name: json_schema.name,
            description: json_schema.description,
            schema: json_schema
                .schema
                .unwrap_or_else(|| json!({"type": "object"})),
            strict: json_schema.strict,
        },
    });
    let (max_tokens, max_tokens_key) = match (wire.max_completion_tokens, wire.max_tokens) {
        (Some(max), _) => (Some(max), MaxTokensKey::MaxCompletionTokens),
        (None, max) => (max, MaxTokensKey::MaxTokens),
    };
    let stream = wire.stream.unwrap_or(false);
    Ok(ChatRequest {
        model: wire.model,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: wire.parallel_tool_calls,
        response_format,
        max_tokens,
        max_tokens_key,
        temperature: wire.temperature,
        top_p: wire.top_p,
        top_k: None,
        n: wire.n,
        stop: match wire.stop {
            None => Vec::new(),
            Some(StopIn::One(stop)) => vec![stop],
            Some(StopIn::Many(stops)) => stops,
        },
        seed: wire.seed,
        user: wire.user,
        metadata: wire.metadata,
        reasoning: wire.reasoning_effort.map(|effort| Reasoning {
            effort: Some(effort),
            budget_tokens: None,
        }),
        stream,
        include_usage: stream
            && wire
                .stream_options
                .and_then(|options| options.include_usage)
                .unwrap_or(false),
        extra: Extra {
            format: WireFormat::OpenAi,
            fields: wire.rest,
        },
        opaque_tools: Vec::new(),
    })
}

fn decode_message(message: MessageIn, index: usize) -> Result<Message, ApiError> {
    let role = match message.role {
        RoleIn::System => Role::System,
        RoleIn::Developer => Role::Developer,
        RoleIn::User => Role::User,
        RoleIn::Assistant => Role::Assistant,
        RoleIn::Tool | RoleIn::Function => Role::Tool,
    };
    let mut content = Vec::new();
    match message.content {
        ContentIn::Absent => {}
        ContentIn::Text(text) => content.push(ContentPart::text(text)),
        ContentIn::Parts(parts) => {
            for part in parts {
                content.push(match part {
                    PartIn::Text {
                        text,
                        cache_control,
                    } => ContentPart::Text {
                        text,
                        cache_control,
                    },
                    PartIn::ImageUrl {
                        image_url,
                        cache_control,
                    } => ContentPart::Image {
                        source: ImageSource::from_url(&image_url.url),
                        detail: image_url.detail,
                        cache_control,
                    },
                    PartIn::Refusal { refusal } => ContentPart::text(refusal),
                    // Kept as a marker: the client's bytes carry it to an OpenAI-dialect upstream.
                    PartIn::Unsupported => ContentPart::Opaque {
                        kind: "unknown".to_owned(),
                        block: None,
                    },
                });
            }
        }
    }
    if let Some(refusal) = message.refusal
        && content.is_empty()
    {
        content.push(ContentPart::text(refusal));
    }
    let tool_call_id = message.tool_call_id.or_else(|| {
        // Legacy `function` role messages identify the call by name.
        (message.role == RoleIn::Function)
            .then(|| message.name.clone())
            .flatten()
    });
    if role == Role::Tool && tool_call_id.is_none() {
        return Err(ApiError::invalid_request(
            "Messages with role 'tool' must have a 'tool_call_id'",
            Some(format!("messages[{index}].tool_call_id")),
        ));
    }
    Ok(Message {
        role,
        content,
        name: message.name,
        tool_calls: message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|call| ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
            })
            .collect(),
        tool_call_id,
        is_error: false,
    })
}

/// The longest `user` OpenAI accepts.
const MAX_USER: usize = 64;

/// A `user` OpenAI accepts: as it is when short enough, else the hex SHA-256 of it (64
/// characters; the same user always gets the same id). Anthropic clients send long ones: Claude
/// Code's `metadata.user_id` is about 150 characters, which OpenAI refuses.
fn short_user(user: &str) -> std::borrow::Cow<'_, str> {
    if user.len() <= MAX_USER {
        return std::borrow::Cow::Borrowed(user);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, user.as_bytes());
    let mut hex = String::with_capacity(MAX_USER);
    for byte in digest.as_ref() {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    std::borrow::Cow::Owned(hex)
}

/// Writes the canonical request as a Chat Completions body for `model`.
///
/// A streamed request always asks for usage (`stream_options.include_usage`): accounting needs
/// it, and the client-side encoder drops the usage chunk when the client did not ask for it.
pub fn encode(request: &ChatRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    encode_for(request, model, Quirks::default())
}

/// [`encode`] for a vendor with `quirks`.
pub fn encode_for(request: &ChatRequest, model: &str, quirks: Quirks) -> Result<Vec<u8>, ApiError> {
    let user = request.user.as_deref().map(short_user);
    let messages = messages_out(&request.messages, quirks);
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            let mut function = Map::new();
            function.insert("name".into(), Value::String(tool.name.clone()));
            if let Some(description) = &tool.description {
                function.insert("description".into(), Value::String(description.clone()));
            }
            function.insert("parameters".into(), tool.parameters.clone());
            if let Some(strict) = tool.strict {
                function.insert("strict".into(), Value::Bool(strict));
            }
            json!({"type": "function", "function": function})
        })
        .collect();
    let (max_tokens, max_completion_tokens) = match request.max_tokens_key {
        MaxTokensKey::MaxTokens if !quirks.max_completion_tokens => (request.max_tokens, None),
        MaxTokensKey::MaxTokens | MaxTokensKey::MaxCompletionTokens => (None, request.max_tokens),
    };
    let body = RequestOut {
        model,
        messages,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice: request.tool_choice.as_ref().map(|choice| match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        }),
        parallel_tool_calls: request.parallel_tool_calls,
        response_format: request.response_format.as_ref().map(|format| match format {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                description,
                schema,
                strict,
            } => {
                let mut json_schema = Map::new();
                json_schema.insert("name".into(), Value::String(name.clone()));
                if let Some(description) = description {
                    json_schema.insert("description".into(), Value::String(description.clone()));
                }
                json_schema.insert("schema".into(), schema.clone());
                if let Some(strict) = strict {
                    json_schema.insert("strict".into(), Value::Bool(*strict));
                }
                json!({"type": "json_schema", "json_schema": json_schema})
            }
        }),
        max_tokens,
        max_completion_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        n: request.n,
        stop: (!request.stop.is_empty()).then_some(&request.stop),
        seed: request.seed,
        user: user.as_deref(),
        metadata: request.metadata.as_ref(),
        reasoning_effort: request
            .reasoning
            .as_ref()
            .and_then(|reasoning| reasoning_effort(reasoning)),
        stream: request.stream.then_some(true),
        stream_options: request.stream.then_some(StreamOptions {
            include_usage: Some(true),
        }),
        // Another dialect's tier (an OpenAI client's own goes with the rest).
        service_tier: match crate::answer::asked_tier(request) {
            _ if request.extra.format == WireFormat::OpenAi => None,
            Some(AskedTier::Auto) => Some("auto"),
            Some(AskedTier::Standard) => Some("default"),
            Some(AskedTier::Flex) => Some("flex"),
            Some(AskedTier::Priority) => Some("priority"),
            None => None,
        },
        rest: request.extra.for_format(WireFormat::OpenAi),
    };
    serde_json::to_vec(&body).map_err(|error| {
        ApiError::new(
            switchyard_types::ErrorKind::Internal,
            switchyard_types::Origin::Internal,
            format!("Could not encode the upstream request: {error}"),
        )
    })
}

/// OpenAI's effort for a request's reasoning: its own effort (Anthropic's `max`, which OpenAI
/// lacks, as `high`, the highest every OpenAI-compatible server takes), or the effort an
/// Anthropic-style thinking budget stands for.
fn reasoning_effort(reasoning: &Reasoning) -> Option<&str> {
    match reasoning.effort.as_deref() {
        Some("max") => Some("high"),
        Some(effort) => Some(effort),
        None => reasoning
            .budget_tokens
            .map(crate::reasoning::effort_for_budget),
    }
}

#[derive(Serialize)]
struct RequestOut<'a> {
    model: &'a str,
    messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'static str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    rest: Option<&'a Map<String, Value>>,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: ContentOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<Cow<'a, str>>,
}

enum ContentOut<'a> {
    Null,
    Text(&'a str),
    /// The parts, and whether their `cache_control` markers go too.
    Parts(&'a [ContentPart], bool),
    /// Chosen parts, after an optional text of the gateway's own.
    Chosen(Option<&'static str>, Vec<&'a ContentPart>, bool),
}

/// What a tool message with images says in place of them (OpenAI takes only text there).
const IMAGES_MOVED: &str = "(The image this tool returned follows in the next message.)";

/// What the user message carrying tool results' images says first.
const IMAGES_FROM_TOOLS: &str = "Images returned by the tool calls above:";

/// The messages for an OpenAI upstream. Tool messages take text only: images a tool returned
/// (an Anthropic client's `tool_result` may hold some) go in one user message right after the
/// run of tool messages, which must stay together after the assistant's tool calls.
fn messages_out(messages: &[Message], quirks: Quirks) -> Vec<MessageOut<'_>> {
    let is_image = |part: &&ContentPart| matches!(part, ContentPart::Image { .. });
    let mut out = Vec::with_capacity(messages.len());
    let mut images: Vec<&ContentPart> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        if message.role == Role::Tool && message.content.iter().any(|part| is_image(&part)) {
            images.extend(message.content.iter().filter(is_image));
            let text: Vec<&ContentPart> = message
                .content
                .iter()
                .filter(|part| matches!(part, ContentPart::Text { .. }))
                .collect();
            let mut tool = MessageOut::from(message);
            tool.content = if text.is_empty() {
                ContentOut::Text(IMAGES_MOVED)
            } else {
                ContentOut::Chosen(None, text, true)
            };
            out.push(tool);
        } else {
            out.push(MessageOut::from(message));
        }
        let run_ends = messages
            .get(index + 1)
            .is_none_or(|next| next.role != Role::Tool);
        if run_ends && !images.is_empty() {
            out.push(MessageOut {
                role: Role::User.as_str(),
                content: ContentOut::Chosen(
                    Some(IMAGES_FROM_TOOLS),
                    std::mem::take(&mut images),
                    true,
                ),
                name: None,
                tool_calls: Vec::new(),
                tool_call_id: None,
            });
        }
    }
    if quirks.nine_char_tool_ids {
        for message in &mut out {
            for call in &mut message.tool_calls {
                call.id = std::borrow::Cow::Owned(compat::nine_char_id(&call.id));
            }
            if let Some(id) = message.tool_call_id.as_mut() {
                *id = std::borrow::Cow::Owned(compat::nine_char_id(id));
            }
        }
    }
    if !quirks.cache_control {
        for message in &mut out {
            if let ContentOut::Parts(_, cache) | ContentOut::Chosen(_, _, cache) =
                &mut message.content
            {
                *cache = false;
            }
        }
    }
    out
}

impl Serialize for ContentOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            ContentOut::Null => serializer.serialize_none(),
            ContentOut::Text(text) => serializer.serialize_str(text),
            ContentOut::Chosen(lead, parts, cache) => {
                let mut seq = serializer.serialize_seq(None)?;
                if let Some(text) = lead {
                    seq.serialize_element(&TextPartOut {
                        kind: "text",
                        text,
                        cache_control: None,
                    })?;
                }
                for part in parts {
                    serialize_part(&mut seq, part, *cache)?;
                }
                seq.end()
            }
            ContentOut::Parts(parts, cache) => {
                let mut seq = serializer.serialize_seq(None)?;
                for part in parts.iter() {
                    serialize_part(&mut seq, part, *cache)?;
                }
                seq.end()
            }
        }
    }
}

/// One content part as an element of OpenAI's `content` array.
fn serialize_part<S: serde::ser::SerializeSeq>(
    seq: &mut S,
    part: &ContentPart,
    cache: bool,
) -> Result<(), S::Error> {
    match part {
        ContentPart::Text {
            text,
            cache_control,
        } => seq.serialize_element(&TextPartOut {
            kind: "text",
            text,
            cache_control: cache_control.as_ref().filter(|_| cache),
        }),
        ContentPart::Image { source, detail, .. } => seq.serialize_element(&ImagePartOut {
            kind: "image_url",
            image_url: ImageUrl {
                url: source.to_url(),
                detail: detail.clone(),
            },
        }),
        // Thinking is the model's own; OpenAI-compatible APIs take no such part.
        ContentPart::Thinking { .. }
        | ContentPart::RedactedThinking { .. }
        | ContentPart::Opaque { .. } => Ok(()),
    }
}

#[derive(Serialize)]
struct TextPartOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<&'a Value>,
}

#[derive(Serialize)]
struct ImagePartOut {
    #[serde(rename = "type")]
    kind: &'static str,
    image_url: ImageUrl,
}

impl<'a> From<&'a Message> for MessageOut<'a> {
    fn from(message: &'a Message) -> MessageOut<'a> {
        let visible = message
            .content
            .iter()
            .filter(|part| {
                !matches!(
                    part,
                    ContentPart::Thinking { .. } | ContentPart::RedactedThinking { .. }
                )
            })
            .count();
        let content = match message.content.as_slice() {
            _ if visible == 0 => {
                if message.role == Role::Assistant && !message.tool_calls.is_empty() {
                    ContentOut::Null
                } else {
                    ContentOut::Text("")
                }
            }
            [
                ContentPart::Text {
                    text,
                    cache_control: None,
                },
            ] => ContentOut::Text(text),
            parts => ContentOut::Parts(parts, true),
        };
        MessageOut {
            role: message.role.as_str(),
            content,
            name: message.name.as_deref(),
            tool_calls: message
                .tool_calls
                .iter()
                .map(ToolCallOut::from_call)
                .collect(),
            tool_call_id: message.tool_call_id.as_deref().map(Cow::Borrowed),
        }
    }
}
