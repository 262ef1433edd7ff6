//! The Anthropic Messages request, as far as the mock reads it, and the [`Prompt`] it gives.
//! Fields the mock does not use are ignored; `echo=request` shows them all.

use serde::Deserialize;
use serde_json::Value;

use crate::behaviour::text::words;
use crate::behaviour::{Format, Last, LastRole, Prompt, ToolChoice, ToolSpec};

/// Prompt tokens added per message, per system prompt and per tool definition.
const OVERHEAD_TOKENS: u64 = 3;
/// Prompt tokens added per image.
const IMAGE_TOKENS: u64 = 85;

/// `POST /v1/messages` body.
#[derive(Debug, Deserialize)]
pub(crate) struct MessagesRequest {
    /// The model, with the mock's options as a query suffix.
    pub model: Option<String>,
    /// The conversation.
    pub messages: Option<Vec<Message>>,
    /// Token limit (required by the API).
    pub max_tokens: Option<u64>,
    /// System prompt: text or text blocks.
    pub system: Option<Content>,
    /// Stop sequences.
    pub stop_sequences: Option<Vec<String>>,
    /// Whether to answer with an event stream.
    pub stream: Option<bool>,
    /// Tool definitions.
    pub tools: Option<Vec<Tool>>,
    /// Tool choice.
    pub tool_choice: Option<ToolChoiceIn>,
    /// Extended thinking configuration.
    pub thinking: Option<Thinking>,
    /// Sampling temperature (refused with thinking, unless 1).
    pub temperature: Option<f64>,
    /// `effort` and structured-output settings.
    pub output_config: Option<Value>,
}

/// One message of the conversation.
#[derive(Debug, Deserialize)]
pub(crate) struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// Text, or an array of content blocks.
    pub content: Content,
}

/// Message or system content.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    /// Plain text.
    Text(String),
    /// Content blocks.
    Blocks(Vec<Block>),
}

/// One content block (`text`, `image`, `tool_use`, `tool_result`, `thinking`, …).
#[derive(Debug, Deserialize)]
pub(crate) struct Block {
    /// The block type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Text of a `text` block.
    pub text: Option<String>,
    /// Content of a `tool_result` block: a string or blocks.
    pub content: Option<Value>,
    /// Name of a `tool_use` block.
    pub name: Option<String>,
    /// Input of a `tool_use` block.
    pub input: Option<Value>,
    /// Text of a `thinking` block.
    pub thinking: Option<String>,
}

/// A tool definition.
#[derive(Debug, Deserialize)]
pub(crate) struct Tool {
    /// `custom` (or absent) for the client's own tools; a server tool's versioned type
    /// (`web_search_20250305`) otherwise.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Tool name.
    pub name: String,
    /// What the tool does.
    pub description: Option<String>,
    /// JSON schema of the input (absent for server tools).
    pub input_schema: Option<Value>,
}

/// `tool_choice`.
#[derive(Debug, Deserialize)]
pub(crate) struct ToolChoiceIn {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The tool of a `tool` choice.
    pub name: Option<String>,
    /// At most one tool call.
    pub disable_parallel_tool_use: Option<bool>,
}

/// `thinking`.
#[derive(Debug, Deserialize)]
pub(crate) struct Thinking {
    /// `enabled`, `adaptive` or `disabled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The budget of `enabled` thinking.
    pub budget_tokens: Option<u64>,
}

impl MessagesRequest {
    /// The parts of the request that decide the answer.
    pub(crate) fn prompt<'a>(&'a self, messages: &'a [Message], max_tokens: u64) -> Prompt<'a> {
        let tools = self.tools.as_deref().unwrap_or_default();
        let tool_tokens: u64 = tools
            .iter()
            .map(|tool| {
                words(&tool.name) + tool.description.as_deref().map_or(0, words) + OVERHEAD_TOKENS
            })
            .sum();
        let system_tokens = self
            .system
            .as_ref()
            .map_or(0, |system| content_tokens(system) + OVERHEAD_TOKENS);
        let message_tokens: u64 = messages
            .iter()
            .map(|message| content_tokens(&message.content) + OVERHEAD_TOKENS)
            .sum();
        let choice = self.tool_choice.as_ref();
        Prompt {
            last: last(messages),
            prompt_tokens: system_tokens + message_tokens + tool_tokens,
            // Server tools are run by the provider, never called by the client.
            tools: tools
                .iter()
                .filter(|tool| !tool.is_server_tool())
                .map(|tool| ToolSpec {
                    name: &tool.name,
                    schema: tool.input_schema.as_ref(),
                })
                .collect(),
            tool_choice: match choice.map(|choice| (choice.kind.as_str(), &choice.name)) {
                Some(("none", _)) => ToolChoice::None,
                Some(("any", _)) => ToolChoice::Required,
                Some(("tool", Some(name))) => ToolChoice::Named(name),
                Some(_) | None => ToolChoice::Auto,
            },
            parallel_tool_calls: !choice
                .and_then(|choice| choice.disable_parallel_tool_use)
                .unwrap_or(false),
            max_tokens: Some(max_tokens),
            stop: self
                .stop_sequences
                .iter()
                .flatten()
                .map(String::as_str)
                .collect(),
            format: Format::Text,
        }
    }

    /// Anthropic's checks of thinking for `model` (the name before the mock's options): a
    /// budget of at least 1,024 and below `max_tokens`, refused by models that only think
    /// adaptively (Claude 4.7 and later, Mythos, Fable); adaptive thinking and `effort` only
    /// from 4.6 on; no temperature other than 1 while thinking. The mock's own model names
    /// (no `claude-` in them) take anything.
    pub(crate) fn check_thinking(&self, model: &str, max_tokens: u64) -> Result<(), String> {
        let Some(version) = claude_version(model) else {
            return Ok(());
        };
        let effort = self
            .output_config
            .as_ref()
            .and_then(|config| config.get("effort"))
            .and_then(Value::as_str);
        if let Some(effort) = effort {
            if version < (4, 5) {
                return Err("output_config.effort: this model does not support effort".into());
            }
            if !matches!(effort, "low" | "medium" | "high" | "xhigh" | "max") {
                return Err(format!("output_config.effort: unknown effort '{effort}'"));
            }
        }
        let Some(thinking) = &self.thinking else {
            return Ok(());
        };
        match thinking.kind.as_str() {
            "enabled" => {
                if version >= (4, 7) {
                    return Err("thinking.type.enabled is not supported for this model. Use thinking.type.adaptive and output_config.effort to control thinking behavior.".into());
                }
                let budget = thinking
                    .budget_tokens
                    .ok_or("thinking.enabled.budget_tokens: Field required")?;
                if budget < 1024 {
                    return Err("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".into());
                }
                if budget >= max_tokens {
                    return Err("`max_tokens` must be greater than `thinking.budget_tokens`".into());
                }
            }
            "adaptive" if version < (4, 6) => {
                return Err("thinking.type.adaptive is not supported for this model.".into());
            }
            "adaptive" | "disabled" => {}
            other => return Err(format!("thinking.type: unknown type '{other}'")),
        }
        if thinking.kind != "disabled" && self.temperature.is_some_and(|t| t != 1.0) {
            return Err(
                "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode."
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether a web search server tool (`web_search_…`) is offered: the answer then searches
    /// once, for the last user message, before it answers.
    pub(crate) fn searches_the_web(&self) -> bool {
        self.tools.iter().flatten().any(|tool| {
            tool.kind
                .as_deref()
                .is_some_and(|kind| kind.starts_with("web_search_"))
        })
    }

    /// Whether the answer begins with a thinking block.
    pub(crate) fn thinking(&self) -> bool {
        self.thinking
            .as_ref()
            .is_some_and(|thinking| matches!(thinking.kind.as_str(), "enabled" | "adaptive"))
    }
}

impl Tool {
    fn is_server_tool(&self) -> bool {
        self.kind.as_deref().is_some_and(|kind| kind != "custom")
    }
}

/// Words of every text the content carries, 85 per image.
fn content_tokens(content: &Content) -> u64 {
    match content {
        Content::Text(text) => words(text),
        Content::Blocks(blocks) => blocks.iter().map(block_tokens).sum(),
    }
}

fn block_tokens(block: &Block) -> u64 {
    match block.kind.as_str() {
        "image" => IMAGE_TOKENS,
        "tool_result" => block.content.as_ref().map_or(0, value_tokens),
        "tool_use" => {
            block.name.as_deref().map_or(0, words)
                + block
                    .input
                    .as_ref()
                    .map_or(0, |input| words(&input.to_string()))
        }
        _ => block.text.as_deref().map_or(0, words) + block.thinking.as_deref().map_or(0, words),
    }
}

/// Tokens of a `tool_result` content: a string, or text and image blocks.
fn value_tokens(content: &Value) -> u64 {
    match content {
        Value::String(text) => words(text),
        Value::Array(blocks) => blocks
            .iter()
            .map(|block| match block.get("type").and_then(Value::as_str) {
                Some("image") => IMAGE_TOKENS,
                _ => block.get("text").and_then(Value::as_str).map_or(0, words),
            })
            .sum(),
        _ => 0,
    }
}

/// The text of a `tool_result` content.
fn result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(_) | None => String::new(),
    }
}

/// The text blocks of a message joined with `"\n"`.
fn text_of(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        Content::Blocks(blocks) => blocks
            .iter()
            .filter(|block| block.kind == "text")
            .filter_map(|block| block.text.as_deref())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn tool_results(content: &Content) -> Option<String> {
    let Content::Blocks(blocks) = content else {
        return None;
    };
    let results: Vec<String> = blocks
        .iter()
        .filter(|block| block.kind == "tool_result")
        .map(|block| result_text(block.content.as_ref()))
        .collect();
    (!results.is_empty()).then(|| results.join("\n"))
}

fn last(messages: &[Message]) -> Last {
    match messages.last() {
        Some(message) if message.role == "user" => match tool_results(&message.content) {
            Some(text) => Last {
                role: LastRole::ToolResult,
                text,
            },
            None => Last {
                role: LastRole::User,
                text: text_of(&message.content),
            },
        },
        Some(_) | None => Last {
            role: LastRole::Other,
            text: messages
                .iter()
                .rev()
                .find(|message| message.role == "user")
                .map(|message| text_of(&message.content))
                .unwrap_or_default(),
        },
    }
}

/// The `major.minor` of a Claude model's name (`claude-opus-4-7`, `claude-3-7-sonnet-…`);
/// Mythos and Fable count as the newest; `None` for a name that is no Claude's.
fn claude_version(model: &str) -> Option<(u32, u32)> {
    let rest = model.split("claude-").nth(1)?;
    if rest.contains("mythos") || rest.contains("fable") {
        return Some((99, 0));
    }
    let mut numbers = rest
        .split(['-', '.', '@', ':'])
        .filter(|token| token.len() <= 2)
        .filter_map(|token| token.parse::<u32>().ok());
    let major = numbers.next()?;
    Some((major, numbers.next().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> MessagesRequest {
        serde_json::from_value(value).expect("valid request")
    }

    #[test]
    fn prompt_counts_system_messages_tools_and_images() {
        let request = parse(json!({
            "model": "m",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "be brief"}],
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}},
                {"type": "text", "text": "what is this"}
            ]}],
            "tools": [{"name": "look", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"]
        }));
        let messages = request.messages.as_deref().expect("messages");
        let prompt = request.prompt(messages, 10);
        // system 2+3, user 85+3+3, tool 1+3.
        assert_eq!(prompt.prompt_tokens, 5 + 91 + 4);
        assert_eq!(prompt.last.text, "what is this");
        assert_eq!(prompt.tool_choice, ToolChoice::Required);
        assert!(!prompt.parallel_tool_calls);
        assert_eq!(prompt.stop, ["END"]);
    }

    #[test]
    fn tool_result_block_is_a_tool_result() {
        let request = parse(json!({
            "model": "m",
            "max_tokens": 10,
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1",
                     "content": [{"type": "text", "text": "sunny"}]}
                ]}
            ],
            "tool_choice": {"type": "tool", "name": "get_weather"}
        }));
        let messages = request.messages.as_deref().expect("messages");
        let prompt = request.prompt(messages, 10);
        assert_eq!(prompt.last.role, LastRole::ToolResult);
        assert_eq!(prompt.last.text, "sunny");
        assert_eq!(prompt.tool_choice, ToolChoice::Named("get_weather"));
    }
}
