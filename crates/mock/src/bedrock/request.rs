//! The Converse request, as far as the mock reads it, its validation and the [`Prompt`] it
//! gives (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>).
//! Fields the mock does not use are ignored; `echo=request` shows them all.
//!
//! The checks are the ones Bedrock makes that a translating client most easily fails: a
//! conversation that starts with the user and alternates, no blank text block, and a
//! `toolConfig` whenever `toolUse` or `toolResult` blocks appear.

use serde::Deserialize;
use serde_json::Value;

use crate::behaviour::text::words;
use crate::behaviour::{Format, Last, LastRole, Prompt, ToolChoice, ToolSpec};

/// Prompt tokens added per message, per system block and per tool specification.
const OVERHEAD_TOKENS: u64 = 3;
/// Prompt tokens added per image.
const IMAGE_TOKENS: u64 = 85;

/// `POST /model/{modelId}/converse` and `/converse-stream` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConverseRequest {
    /// The conversation.
    pub messages: Option<Vec<Message>>,
    /// System blocks (`text`, `cachePoint`, `guardContent`).
    pub system: Option<Vec<Block>>,
    /// Limits and sampling.
    pub inference_config: Option<InferenceConfig>,
    /// Tools and the tool choice.
    pub tool_config: Option<ToolConfig>,
    /// Model-specific fields (`thinking`, `top_k`, …).
    pub additional_model_request_fields: Option<Value>,
    /// JSON pointers into the model's own answer to report (Claude's `/stop_sequence`).
    pub additional_model_response_field_paths: Option<Vec<String>>,
    /// The processing tier asked for (`{"type": "priority"}`).
    pub service_tier: Option<ServiceTier>,
}

/// `serviceTier`.
#[derive(Debug, Deserialize)]
pub(crate) struct ServiceTier {
    /// `priority`, `default`, `flex` or `reserved`.
    #[serde(rename = "type")]
    pub kind: String,
}

impl ConverseRequest {
    /// The tier the call is served at: the one asked for, when the mock knows it.
    pub(crate) fn served_tier(&self) -> Option<&'static str> {
        match self.service_tier.as_ref()?.kind.as_str() {
            "priority" => Some("priority"),
            "flex" => Some("flex"),
            "default" => Some("default"),
            _ => None,
        }
    }
}

/// One message.
#[derive(Debug, Deserialize)]
pub(crate) struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// Its content blocks.
    #[serde(default)]
    pub content: Vec<Block>,
}

/// A `ContentBlock` union: one member is set.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Block {
    /// Text.
    pub text: Option<String>,
    /// An image (`format`, `source.bytes`).
    pub image: Option<Value>,
    /// A document.
    pub document: Option<Value>,
    /// A tool call of an earlier assistant turn.
    pub tool_use: Option<ToolUse>,
    /// The result of a tool call.
    pub tool_result: Option<ToolResult>,
}

/// `toolUse`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolUse {
    /// The call's id.
    pub tool_use_id: Option<String>,
    /// The called tool.
    pub name: Option<String>,
    /// The arguments object.
    pub input: Option<Value>,
}

/// `toolResult`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolResult {
    /// The call it answers.
    pub tool_use_id: Option<String>,
    /// Result blocks (`text`, `json`, `image`, `document`).
    #[serde(default)]
    pub content: Vec<ResultBlock>,
}

/// A `ToolResultContentBlock`.
#[derive(Debug, Deserialize)]
pub(crate) struct ResultBlock {
    /// Text.
    pub text: Option<String>,
    /// JSON.
    pub json: Option<Value>,
    /// An image.
    pub image: Option<Value>,
}

/// `inferenceConfig`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InferenceConfig {
    /// Token limit.
    pub max_tokens: Option<u64>,
    /// Stop sequences.
    pub stop_sequences: Option<Vec<String>>,
}

/// `toolConfig`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolConfig {
    /// `toolSpec` and `cachePoint` entries.
    #[serde(default)]
    pub tools: Vec<ToolEntry>,
    /// `auto`, `any` or `tool`.
    pub tool_choice: Option<ToolChoiceIn>,
}

/// One entry of `toolConfig.tools`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolEntry {
    /// A tool; absent for a `cachePoint` entry.
    pub tool_spec: Option<ToolSpecIn>,
}

/// `toolSpec`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolSpecIn {
    /// Tool name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// `{"json": schema}`.
    pub input_schema: Option<InputSchema>,
}

/// `inputSchema`, a union whose one member is `json`.
#[derive(Debug, Deserialize)]
pub(crate) struct InputSchema {
    /// The JSON schema.
    pub json: Option<Value>,
}

/// `toolChoice`, a union.
#[derive(Debug, Deserialize)]
pub(crate) struct ToolChoiceIn {
    /// Some tool must be called.
    pub any: Option<Value>,
    /// This tool must be called.
    pub tool: Option<NamedTool>,
}

/// `toolChoice.tool`.
#[derive(Debug, Deserialize)]
pub(crate) struct NamedTool {
    /// The tool's name.
    pub name: String,
}

impl ConverseRequest {
    /// The first rule of Bedrock's the request breaks, as Bedrock words it.
    pub(crate) fn validate(&self) -> Result<&[Message], String> {
        let messages = self.messages.as_deref().unwrap_or_default();
        let Some(first) = messages.first() else {
            return Err("The messages field is required and must not be empty.".to_owned());
        };
        if first.role != "user" {
            return Err(
                "A conversation must start with a user message. Try again with a \
                        conversation that starts with a user message."
                    .to_owned(),
            );
        }
        for (i, message) in messages.iter().enumerate() {
            if !matches!(message.role.as_str(), "user" | "assistant") {
                return Err(format!(
                    "1 validation error detected: Value '{}' at 'messages.{}.member.role' \
                     failed to satisfy constraint: Member must satisfy enum value set: \
                     [user, assistant]",
                    message.role,
                    i + 1
                ));
            }
            if i > 0 && messages[i - 1].role == message.role {
                return Err(
                    "A conversation must alternate between user and assistant roles. \
                            Make sure the conversation alternates between user and assistant \
                            roles and try again."
                        .to_owned(),
                );
            }
            if message.content.is_empty() {
                return Err(format!(
                    "The content field in the Message object at messages.{i} is empty. Add a \
                     ContentBlock object to the content field and try again."
                ));
            }
            for (j, block) in message.content.iter().enumerate() {
                if block
                    .text
                    .as_deref()
                    .is_some_and(|text| text.trim().is_empty())
                {
                    return Err(format!(
                        "The text field in the ContentBlock object at messages.{i}.content.{j} \
                         is blank. Add text to the text field, and try again."
                    ));
                }
                if (block.tool_use.is_some() || block.tool_result.is_some())
                    && self.tool_config.is_none()
                {
                    return Err(
                        "The toolConfig field must be defined when using toolUse and \
                                toolResult content blocks."
                            .to_owned(),
                    );
                }
                if let Some(call) = &block.tool_use {
                    check_tool_use_id(call.tool_use_id.as_deref(), i, j, "toolUse")?;
                }
                if let Some(result) = &block.tool_result {
                    let id = result.tool_use_id.as_deref();
                    check_tool_use_id(id, i, j, "toolResult")?;
                    let called = i
                        .checked_sub(1)
                        .and_then(|previous| messages.get(previous))
                        .into_iter()
                        .flat_map(|previous| &previous.content)
                        .filter_map(|block| block.tool_use.as_ref())
                        .any(|call| call.tool_use_id.as_deref() == id);
                    if !called {
                        return Err(format!(
                            "The toolUseId of the toolResult at messages.{i}.content.{j} does \
                             not match a toolUse block of the previous turn."
                        ));
                    }
                }
            }
        }
        Ok(messages)
    }

    /// The parts of the request that decide the answer.
    pub(crate) fn prompt<'a>(&'a self, messages: &'a [Message]) -> Prompt<'a> {
        let config = self.tool_config.as_ref();
        let specs = config
            .into_iter()
            .flat_map(|config| &config.tools)
            .filter_map(|entry| entry.tool_spec.as_ref());
        let tools = specs
            .map(|spec| ToolSpec {
                name: &spec.name,
                schema: spec
                    .input_schema
                    .as_ref()
                    .and_then(|schema| schema.json.as_ref()),
            })
            .collect();
        let tool_choice = match config.and_then(|config| config.tool_choice.as_ref()) {
            Some(ToolChoiceIn {
                tool: Some(tool), ..
            }) => ToolChoice::Named(&tool.name),
            Some(ToolChoiceIn { any: Some(_), .. }) => ToolChoice::Required,
            Some(_) | None => ToolChoice::Auto,
        };
        let inference = self.inference_config.as_ref();
        Prompt {
            last: last(messages),
            prompt_tokens: self.prompt_tokens(messages),
            tools,
            tool_choice,
            // Converse has no switch for parallel calls.
            parallel_tool_calls: true,
            max_tokens: inference.and_then(|config| config.max_tokens),
            stop: inference
                .and_then(|config| config.stop_sequences.as_deref())
                .unwrap_or_default()
                .iter()
                .map(String::as_str)
                .collect(),
            // Converse has no response format: JSON comes as a forced tool call.
            format: Format::Text,
        }
    }

    /// Prompt tokens: words of every text, tool call and result, system block and tool
    /// specification, plus 3 per message, system block and specification, and 85 per image.
    pub(crate) fn prompt_tokens(&self, messages: &[Message]) -> u64 {
        let mut tokens = 0;
        for message in messages {
            tokens += OVERHEAD_TOKENS;
            for block in &message.content {
                tokens += block_tokens(block);
            }
        }
        for block in self.system.iter().flatten() {
            if let Some(text) = &block.text {
                tokens += words(text) + OVERHEAD_TOKENS;
            }
        }
        let specs = self
            .tool_config
            .iter()
            .flat_map(|config| &config.tools)
            .filter_map(|entry| entry.tool_spec.as_ref());
        for spec in specs {
            tokens +=
                words(&spec.name) + spec.description.as_deref().map_or(0, words) + OVERHEAD_TOKENS;
        }
        tokens
    }

    /// Whether `additionalModelRequestFields.thinking` enables Claude's reasoning.
    pub(crate) fn thinking(&self) -> bool {
        matches!(
            self.additional_model_request_fields
                .as_ref()
                .and_then(|fields| fields.get("thinking"))
                .and_then(|thinking| thinking.get("type"))
                .and_then(Value::as_str),
            Some("enabled" | "adaptive")
        )
    }

    /// Whether Claude's `stop_sequence` is asked for in `additionalModelResponseFields`.
    pub(crate) fn reports_stop_sequence(&self) -> bool {
        self.additional_model_response_field_paths
            .iter()
            .flatten()
            .any(|path| path == "/stop_sequence")
    }
}

/// Bedrock's pattern for tool-use ids, `[a-zA-Z0-9_-]+`.
fn check_tool_use_id(id: Option<&str>, i: usize, j: usize, block: &str) -> Result<(), String> {
    let id = id.unwrap_or_default();
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(valid) {
        return Ok(());
    }
    Err(format!(
        "1 validation error detected: Value '{id}' at 'messages.{}.member.content.{}.member.\
         {block}.toolUseId' failed to satisfy constraint: Member must satisfy regular \
         expression pattern: [a-zA-Z0-9_-]+",
        i + 1,
        j + 1
    ))
}

fn block_tokens(block: &Block) -> u64 {
    let mut tokens = block.text.as_deref().map_or(0, words);
    if block.image.is_some() || block.document.is_some() {
        tokens += IMAGE_TOKENS;
    }
    if let Some(call) = &block.tool_use {
        tokens += call.name.as_deref().map_or(0, words)
            + call
                .input
                .as_ref()
                .map_or(0, |input| words(&input.to_string()));
    }
    if let Some(result) = &block.tool_result {
        for part in &result.content {
            tokens += part.text.as_deref().map_or(0, words)
                + part
                    .json
                    .as_ref()
                    .map_or(0, |json| words(&json.to_string()));
            if part.image.is_some() {
                tokens += IMAGE_TOKENS;
            }
        }
    }
    tokens
}

/// The text blocks of a message joined with `"\n"`.
fn text_of(message: &Message) -> String {
    message
        .content
        .iter()
        .filter_map(|block| block.text.as_deref())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The results of a message's `toolResult` blocks (JSON compact, text as it is) joined with
/// `"\n"`; `None` when it has none.
fn tool_results(message: &Message) -> Option<String> {
    let results: Vec<String> = message
        .content
        .iter()
        .filter_map(|block| block.tool_result.as_ref())
        .map(|result| {
            result
                .content
                .iter()
                .filter_map(|part| match (&part.json, &part.text) {
                    (Some(json), _) => Some(json.to_string()),
                    (None, Some(text)) => Some(text.clone()),
                    (None, None) => None,
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    (!results.is_empty()).then(|| results.join("\n"))
}

fn last(messages: &[Message]) -> Last {
    let Some(message) = messages.last() else {
        return Last {
            role: LastRole::Other,
            text: String::new(),
        };
    };
    if message.role == "user" {
        if let Some(text) = tool_results(message) {
            return Last {
                role: LastRole::ToolResult,
                text,
            };
        }
        return Last {
            role: LastRole::User,
            text: text_of(message),
        };
    }
    Last {
        role: LastRole::Other,
        text: messages
            .iter()
            .rev()
            .find(|message| message.role == "user" && tool_results(message).is_none())
            .map(text_of)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> ConverseRequest {
        serde_json::from_value(body).expect("a Converse request")
    }

    #[test]
    fn reads_tools_choice_limits_and_the_last_message() {
        let request = parse(json!({
            "messages": [
                {"role": "user", "content": [{"text": "What is the most popular song on WZPZ?"}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "top_song", "input": {"sign": "WZPZ"}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"song": "Elemental Hotel"}}]}}]}
            ],
            "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
            "inferenceConfig": {"maxTokens": 50, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [
                    {"toolSpec": {"name": "top_song", "description": "Top song", "inputSchema": {"json": {"type": "object"}}}},
                    {"cachePoint": {"type": "default"}}
                ],
                "toolChoice": {"tool": {"name": "top_song"}}
            },
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}
        }));
        let messages = request.validate().expect("valid");
        let prompt = request.prompt(messages);
        assert_eq!(prompt.last.role, LastRole::ToolResult);
        assert_eq!(prompt.last.text, r#"{"song":"Elemental Hotel"}"#);
        assert_eq!(prompt.tools.len(), 1);
        assert_eq!(prompt.tool_choice, ToolChoice::Named("top_song"));
        assert_eq!(prompt.max_tokens, Some(50));
        assert_eq!(prompt.stop, ["END"]);
        assert!(request.thinking());
        // Messages (3 + 8) + (3 + 2) + (3 + 2), system 3 + 2, tool 3 + 1 + 2.
        assert_eq!(prompt.prompt_tokens, 11 + 5 + 5 + 5 + 6);
    }

    #[test]
    fn refuses_what_bedrock_refuses() {
        for body in [
            json!({}),
            json!({"messages": []}),
            json!({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}),
            json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]}),
            json!({"messages": [{"role": "user", "content": [{"text": " "}]}]}),
            json!({"messages": [{"role": "user", "content": []}]}),
            json!({"messages": [{"role": "system", "content": [{"text": "x"}]}]}),
            json!({"messages": [{"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "x"}]}}]}]}),
            json!({"messages": [
                {"role": "user", "content": [{"text": "hi"}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "x", "input": {}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t2", "content": [{"text": "r"}]}}]}
            ], "toolConfig": {"tools": []}}),
            json!({"messages": [
                {"role": "user", "content": [{"text": "hi"}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "functions.x:0", "name": "x", "input": {}}}]}
            ], "toolConfig": {"tools": []}}),
        ] {
            assert!(parse(body.clone()).validate().is_err(), "{body}");
        }
    }
}
