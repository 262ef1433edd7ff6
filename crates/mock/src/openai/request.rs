//! The OpenAI Chat Completions request, as far as the mock reads it, and the [`Prompt`] it
//! gives. Fields the mock does not use are ignored; `echo=request` shows them all.

use serde::Deserialize;
use serde_json::Value;

use crate::behaviour::text::words;
use crate::behaviour::{Format, Last, LastRole, Prompt, ToolChoice, ToolSpec};

/// Prompt tokens added per message and per tool definition.
const OVERHEAD_TOKENS: u64 = 3;
/// Prompt tokens added per image.
const IMAGE_TOKENS: u64 = 85;

/// `POST /v1/chat/completions` body.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    /// The model, with the mock's options as a query suffix.
    pub model: Option<String>,
    /// The conversation.
    pub messages: Option<Vec<Message>>,
    /// Whether to answer with an event stream.
    pub stream: Option<bool>,
    /// Stream options.
    pub stream_options: Option<StreamOptions>,
    /// Legacy token limit.
    pub max_tokens: Option<u64>,
    /// Token limit (wins over `max_tokens`).
    pub max_completion_tokens: Option<u64>,
    /// Stop sequences.
    pub stop: Option<Stop>,
    /// Number of choices.
    pub n: Option<u32>,
    /// Tool definitions.
    pub tools: Option<Vec<Tool>>,
    /// `"none"`, `"auto"`, `"required"` or `{"type":"function","function":{"name":…}}`.
    pub tool_choice: Option<Value>,
    /// Whether several tools may be called in one answer.
    pub parallel_tool_calls: Option<bool>,
    /// Requested response format.
    pub response_format: Option<ResponseFormat>,
    /// `auto`, `default`, `flex` or `priority`.
    pub service_tier: Option<String>,
}

/// `stream_options`.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamOptions {
    /// Send a final chunk with the usage (and `"usage": null` on the others).
    pub include_usage: Option<bool>,
    /// Pad each chunk with an `obfuscation` field. OpenAI's default is on; the mock's is off
    /// (its streams stay byte-for-byte as they were for benchmarks) unless asked.
    pub include_obfuscation: Option<bool>,
}

/// `stop`: one string or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Stop {
    /// A single stop sequence.
    One(String),
    /// Several stop sequences.
    Many(Vec<String>),
}

/// One message of the conversation.
#[derive(Debug, Deserialize)]
pub(crate) struct Message {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text, or an array of content parts.
    pub content: Option<Content>,
    /// An assistant message's tool calls.
    pub tool_calls: Option<Vec<ToolCallIn>>,
}

/// Message content.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    /// Plain text.
    Text(String),
    /// Content parts (`text`, `image_url`, …).
    Parts(Vec<Part>),
}

/// One content part.
#[derive(Debug, Deserialize)]
pub(crate) struct Part {
    /// The part type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    pub text: Option<String>,
}

/// A tool call in an assistant message.
#[derive(Debug, Deserialize)]
pub(crate) struct ToolCallIn {
    /// The called function.
    pub function: Option<FunctionIn>,
}

/// The function of a tool call in an assistant message.
#[derive(Debug, Deserialize)]
pub(crate) struct FunctionIn {
    /// Function name.
    pub name: Option<String>,
    /// Arguments as a JSON string.
    pub arguments: Option<String>,
}

/// A tool definition.
#[derive(Debug, Deserialize)]
pub(crate) struct Tool {
    /// The function (absent for non-function tools, which the mock never calls).
    pub function: Option<FunctionDef>,
}

/// A function tool.
#[derive(Debug, Deserialize)]
pub(crate) struct FunctionDef {
    /// Function name.
    pub name: String,
    /// What the function does.
    pub description: Option<String>,
    /// JSON schema of the arguments.
    pub parameters: Option<Value>,
}

/// `response_format`.
#[derive(Debug, Deserialize)]
pub(crate) struct ResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The schema of a `json_schema` format.
    pub json_schema: Option<JsonSchemaFormat>,
}

/// `response_format.json_schema`.
#[derive(Debug, Deserialize)]
pub(crate) struct JsonSchemaFormat {
    /// The schema the answer must match.
    pub schema: Option<Value>,
}

impl ChatRequest {
    /// The parts of the request that decide the answer.
    pub(crate) fn prompt<'a>(&'a self, messages: &'a [Message]) -> Prompt<'a> {
        let tools: Vec<&FunctionDef> = self
            .tools
            .iter()
            .flatten()
            .filter_map(|tool| tool.function.as_ref())
            .collect();
        let tool_tokens: u64 = tools
            .iter()
            .map(|tool| {
                words(&tool.name) + tool.description.as_deref().map_or(0, words) + OVERHEAD_TOKENS
            })
            .sum();
        let prompt_tokens = messages.iter().map(message_tokens).sum::<u64>() + tool_tokens;
        let stop = match &self.stop {
            Some(Stop::One(stop)) => vec![stop.as_str()],
            Some(Stop::Many(stops)) => stops.iter().map(String::as_str).collect(),
            None => Vec::new(),
        };
        let format = match &self.response_format {
            Some(format) if format.kind == "json_object" => Format::JsonObject,
            Some(format) if format.kind == "json_schema" => Format::JsonSchema(
                format
                    .json_schema
                    .as_ref()
                    .and_then(|json_schema| json_schema.schema.as_ref()),
            ),
            Some(_) | None => Format::Text,
        };
        Prompt {
            last: last(messages),
            prompt_tokens,
            tools: tools
                .iter()
                .map(|tool| ToolSpec {
                    name: &tool.name,
                    schema: tool.parameters.as_ref(),
                })
                .collect(),
            tool_choice: tool_choice(self.tool_choice.as_ref()),
            parallel_tool_calls: self.parallel_tool_calls.unwrap_or(true),
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            stop,
            format,
        }
    }

    /// The tier that serves the call, as OpenAI reports it: the one asked for when it is
    /// `flex` or `priority`, else `default`.
    pub(crate) fn service_tier(&self) -> &'static str {
        match self.service_tier.as_deref() {
            Some("flex") => "flex",
            Some("priority") => "priority",
            _ => "default",
        }
    }

    /// Whether the client asked for `obfuscation` padding on its chunks.
    pub(crate) fn include_obfuscation(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|options| options.include_obfuscation)
            .unwrap_or(false)
    }

    /// Whether the client asked for a final usage chunk.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            .unwrap_or(false)
    }
}

/// Words of the message's text, tool-call names and arguments, plus the per-message overhead
/// and 85 per image.
fn message_tokens(message: &Message) -> u64 {
    let content = match &message.content {
        Some(Content::Text(text)) => words(text),
        Some(Content::Parts(parts)) => parts
            .iter()
            .map(|part| match (part.kind.as_str(), &part.text) {
                ("image_url", _) => IMAGE_TOKENS,
                (_, Some(text)) => words(text),
                (_, None) => 0,
            })
            .sum(),
        None => 0,
    };
    let calls: u64 = message
        .tool_calls
        .iter()
        .flatten()
        .filter_map(|call| call.function.as_ref())
        .map(|function| {
            function.name.as_deref().map_or(0, words)
                + function.arguments.as_deref().map_or(0, words)
        })
        .sum();
    content + calls + OVERHEAD_TOKENS
}

/// The text parts of a message joined with `"\n"`.
fn text_of(message: &Message) -> String {
    match &message.content {
        Some(Content::Text(text)) => text.clone(),
        Some(Content::Parts(parts)) => parts
            .iter()
            .filter(|part| part.kind == "text")
            .filter_map(|part| part.text.as_deref())
            .collect::<Vec<_>>()
            .join("\n"),
        None => String::new(),
    }
}

fn last(messages: &[Message]) -> Last {
    match messages.last() {
        Some(message) if message.role == "tool" => Last {
            role: LastRole::ToolResult,
            text: text_of(message),
        },
        Some(message) if message.role == "user" => Last {
            role: LastRole::User,
            text: text_of(message),
        },
        Some(_) | None => Last {
            role: LastRole::Other,
            text: messages
                .iter()
                .rev()
                .find(|message| message.role == "user")
                .map(text_of)
                .unwrap_or_default(),
        },
    }
}

fn tool_choice(choice: Option<&Value>) -> ToolChoice<'_> {
    match choice {
        Some(Value::String(mode)) => match mode.as_str() {
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => ToolChoice::Auto,
        },
        Some(Value::Object(choice)) => choice
            .get("function")
            .and_then(|function| function.get("name"))
            .and_then(Value::as_str)
            .map_or(ToolChoice::Auto, ToolChoice::Named),
        Some(_) | None => ToolChoice::Auto,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> ChatRequest {
        serde_json::from_value(value).expect("valid request")
    }

    #[test]
    fn prompt_counts_tokens_and_finds_last_message() {
        let request = parse(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "this"}
                ]}
            ],
            "tools": [{"type": "function", "function": {"name": "look", "description": "Look at it"}}],
            "stop": "x"
        }));
        let messages = request.messages.as_deref().expect("messages");
        let prompt = request.prompt(messages);
        // system 2+3, user 3 words + 85 + 3, tool 1+3+3.
        assert_eq!(prompt.prompt_tokens, 5 + 91 + 7);
        assert_eq!(prompt.last.role, LastRole::User);
        assert_eq!(prompt.last.text, "what is\nthis");
        assert_eq!(prompt.stop, ["x"]);
        assert_eq!(prompt.tools.len(), 1);
    }

    #[test]
    fn tool_message_is_a_tool_result() {
        let request = parse(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
        }));
        let messages = request.messages.as_deref().expect("messages");
        let prompt = request.prompt(messages);
        assert_eq!(prompt.last.role, LastRole::ToolResult);
        assert_eq!(prompt.last.text, "sunny");
        assert_eq!(prompt.tool_choice, ToolChoice::Named("get_weather"));
        // user 1+3, assistant (name 1 + arguments 2) + 3, tool 1+3.
        assert_eq!(prompt.prompt_tokens, 4 + 6 + 4);
    }
}
