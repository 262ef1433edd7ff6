//! The Gemini `GenerateContentRequest`, as far as the mock reads it, and the [`Prompt`] it
//! gives (<https://ai.google.dev/api/generate-content#request-body>). Fields the mock does not
//! use are ignored; `echo=request` shows them all. Like Google's JSON parser, fields are
//! accepted in lowerCamelCase and in snake_case (`systemInstruction`, `system_instruction`).

use serde::Deserialize;
use serde_json::Value;

use crate::behaviour::text::words;
use crate::behaviour::{Format, Last, LastRole, Prompt, ToolChoice, ToolSpec};

/// Prompt tokens added per content, per system instruction and per function declaration.
const OVERHEAD_TOKENS: u64 = 3;
/// Prompt tokens added per media part (`inlineData`, `fileData`).
const MEDIA_TOKENS: u64 = 85;

/// `POST …:generateContent` and `…:streamGenerateContent` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateRequest {
    /// The conversation (required, not empty).
    pub contents: Option<Vec<Content>>,
    /// The system prompt.
    #[serde(alias = "system_instruction")]
    pub system_instruction: Option<Content>,
    /// Tools: function declarations and built-in tools.
    pub tools: Option<Vec<Tool>>,
    /// Function calling mode and allowed functions.
    #[serde(alias = "tool_config")]
    pub tool_config: Option<ToolConfig>,
    /// Limits, stop sequences, candidates, response format, thinking.
    #[serde(alias = "generation_config")]
    pub generation_config: Option<GenerationConfig>,
}

/// One turn of the conversation, or the system instruction.
#[derive(Debug, Deserialize)]
pub(crate) struct Content {
    /// `user` (the default) or `model`; older clients send `function` for function responses.
    pub role: Option<String>,
    /// The parts of the turn.
    pub parts: Option<Vec<Part>>,
}

/// One part: text, media, a function call or a function response.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Part {
    /// Text.
    pub text: Option<String>,
    /// Whether the text is a thought summary.
    pub thought: Option<bool>,
    /// Inline media (base64 `data` with a `mimeType`).
    #[serde(alias = "inline_data")]
    pub inline_data: Option<Value>,
    /// Media by URI.
    #[serde(alias = "file_data")]
    pub file_data: Option<Value>,
    /// A function call of an earlier model turn.
    #[serde(alias = "function_call")]
    pub function_call: Option<FunctionCall>,
    /// The result of a function call.
    #[serde(alias = "function_response")]
    pub function_response: Option<FunctionResponse>,
}

/// `functionCall` in a model turn.
#[derive(Debug, Deserialize)]
pub(crate) struct FunctionCall {
    /// The called function.
    pub name: Option<String>,
    /// The arguments object.
    pub args: Option<Value>,
}

/// `functionResponse` in a user turn.
#[derive(Debug, Deserialize)]
pub(crate) struct FunctionResponse {
    /// The function that was called.
    pub name: Option<String>,
    /// The result object.
    pub response: Option<Value>,
}

/// One entry of `tools`; only function declarations matter to the mock.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tool {
    /// Functions the model may call.
    #[serde(alias = "function_declarations")]
    pub function_declarations: Option<Vec<FunctionDeclaration>>,
}

/// A function the model may call.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionDeclaration {
    /// Function name.
    pub name: String,
    /// What the function does.
    pub description: Option<String>,
    /// Arguments schema in Gemini's OpenAPI subset (`"type": "OBJECT"`).
    pub parameters: Option<Value>,
    /// Arguments as a JSON schema (wins over `parameters`).
    #[serde(alias = "parameters_json_schema")]
    pub parameters_json_schema: Option<Value>,
}

/// `toolConfig`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolConfig {
    /// How functions may be called.
    #[serde(alias = "function_calling_config")]
    pub function_calling_config: Option<FunctionCallingConfig>,
}

/// `toolConfig.functionCallingConfig`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionCallingConfig {
    /// `AUTO`, `ANY`, `NONE` or `VALIDATED`.
    pub mode: Option<String>,
    /// The functions that may be called (with `ANY` or `VALIDATED`).
    #[serde(alias = "allowed_function_names")]
    pub allowed_function_names: Option<Vec<String>>,
}

/// `generationConfig`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerationConfig {
    /// Stop sequences.
    #[serde(alias = "stop_sequences")]
    pub stop_sequences: Option<Vec<String>>,
    /// Number of candidates; 0 means unset.
    #[serde(alias = "candidate_count")]
    pub candidate_count: Option<i64>,
    /// Token limit of each candidate.
    #[serde(alias = "max_output_tokens")]
    pub max_output_tokens: Option<u64>,
    /// `text/plain` or `application/json`.
    #[serde(alias = "response_mime_type")]
    pub response_mime_type: Option<String>,
    /// Response schema in Gemini's OpenAPI subset.
    #[serde(alias = "response_schema")]
    pub response_schema: Option<Value>,
    /// Response schema as a JSON schema (wins over `responseSchema`).
    #[serde(alias = "response_json_schema", alias = "_responseJsonSchema")]
    pub response_json_schema: Option<Value>,
    /// Thinking configuration.
    #[serde(alias = "thinking_config")]
    pub thinking_config: Option<ThinkingConfig>,
}

/// `generationConfig.thinkingConfig`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ThinkingConfig {
    /// Whether the answer carries thought-summary parts.
    #[serde(alias = "include_thoughts")]
    pub include_thoughts: Option<bool>,
}

/// Prompt tokens by modality, for `usageMetadata.promptTokensDetails`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PromptTokens {
    /// Tokens of text, function calls and responses, declarations and overheads.
    pub text: u64,
    /// Tokens of media parts.
    pub media: u64,
}

impl PromptTokens {
    /// All prompt tokens.
    pub(crate) fn total(self) -> u64 {
        self.text + self.media
    }

    fn add(&mut self, other: Self) {
        self.text += other.text;
        self.media += other.media;
    }
}

impl GenerateRequest {
    /// Whether the request declares functions and asks for a JSON answer, which Gemini refuses.
    pub(crate) fn json_with_functions(&self) -> bool {
        let declares = self.tools.iter().flatten().any(|tool| {
            tool.function_declarations
                .as_ref()
                .is_some_and(|d| !d.is_empty())
        });
        declares
            && self.generation_config.as_ref().is_some_and(|config| {
                config.response_mime_type.as_deref() == Some("application/json")
            })
    }

    /// The parts of the request that decide the answer.
    pub(crate) fn prompt<'a>(&'a self, contents: &'a [Content]) -> Prompt<'a> {
        let declarations: Vec<&FunctionDeclaration> = self
            .tools
            .iter()
            .flatten()
            .filter_map(|tool| tool.function_declarations.as_ref())
            .flatten()
            .collect();
        let calling = self
            .tool_config
            .as_ref()
            .and_then(|config| config.function_calling_config.as_ref());
        let mode = calling.and_then(|calling| calling.mode.as_deref());
        let allowed = calling
            .and_then(|calling| calling.allowed_function_names.as_deref())
            .unwrap_or_default();
        let tool_choice = match (mode, allowed) {
            (Some("NONE"), _) => ToolChoice::None,
            (Some("ANY"), [only]) => ToolChoice::Named(only),
            (Some("ANY"), _) => ToolChoice::Required,
            _ => ToolChoice::Auto,
        };
        let tools = declarations
            .iter()
            .filter(|declaration| allowed.is_empty() || allowed.contains(&declaration.name))
            .map(|declaration| ToolSpec {
                name: &declaration.name,
                schema: declaration
                    .parameters_json_schema
                    .as_ref()
                    .or(declaration.parameters.as_ref()),
            })
            .collect();
        let config = self.generation_config.as_ref();
        let format = match config {
            Some(config) if config.response_mime_type.as_deref() == Some("application/json") => {
                match config
                    .response_json_schema
                    .as_ref()
                    .or(config.response_schema.as_ref())
                {
                    Some(schema) => Format::JsonSchema(Some(schema)),
                    None => Format::JsonObject,
                }
            }
            Some(_) | None => Format::Text,
        };
        Prompt {
            last: last(contents),
            prompt_tokens: self.prompt_tokens(contents).total(),
            tools,
            tool_choice,
            // Gemini has no switch for parallel calls: several may come in one turn.
            parallel_tool_calls: true,
            // Zero is the proto default: unset.
            max_tokens: config
                .and_then(|config| config.max_output_tokens)
                .filter(|limit| *limit > 0),
            stop: config
                .and_then(|config| config.stop_sequences.as_deref())
                .unwrap_or_default()
                .iter()
                .map(String::as_str)
                .collect(),
            format,
        }
    }

    /// Prompt tokens: words of every text, function call and response, system instruction and
    /// function declaration, plus 3 per content, instruction and declaration, and 85 per media
    /// part.
    pub(crate) fn prompt_tokens(&self, contents: &[Content]) -> PromptTokens {
        let mut tokens = PromptTokens::default();
        for content in contents.iter().chain(&self.system_instruction) {
            tokens.add(content_tokens(content));
        }
        let declarations = self
            .tools
            .iter()
            .flatten()
            .filter_map(|tool| tool.function_declarations.as_ref())
            .flatten();
        for declaration in declarations {
            tokens.text += words(&declaration.name)
                + declaration.description.as_deref().map_or(0, words)
                + OVERHEAD_TOKENS;
        }
        tokens
    }

    /// Number of candidates asked for (`candidateCount`, 0 or absent meaning 1).
    pub(crate) fn candidate_count(&self) -> i64 {
        match self
            .generation_config
            .as_ref()
            .and_then(|config| config.candidate_count)
        {
            Some(0) | None => 1,
            Some(count) => count,
        }
    }

    /// Whether the answer begins with a thought-summary part.
    pub(crate) fn include_thoughts(&self) -> bool {
        self.generation_config
            .as_ref()
            .and_then(|config| config.thinking_config.as_ref())
            .and_then(|thinking| thinking.include_thoughts)
            .unwrap_or(false)
    }
}

fn content_tokens(content: &Content) -> PromptTokens {
    let mut tokens = PromptTokens {
        text: OVERHEAD_TOKENS,
        media: 0,
    };
    for part in content.parts.iter().flatten() {
        if part.inline_data.is_some() || part.file_data.is_some() {
            tokens.media += MEDIA_TOKENS;
        }
        tokens.text += part.text.as_deref().map_or(0, words);
        if let Some(call) = &part.function_call {
            tokens.text += call.name.as_deref().map_or(0, words)
                + call
                    .args
                    .as_ref()
                    .map_or(0, |args| words(&args.to_string()));
        }
        if let Some(response) = &part.function_response {
            tokens.text += response.name.as_deref().map_or(0, words)
                + response
                    .response
                    .as_ref()
                    .map_or(0, |response| words(&response.to_string()));
        }
    }
    tokens
}

/// The text parts of a content joined with `"\n"`; thought summaries are left out.
fn text_of(content: &Content) -> String {
    content
        .parts
        .iter()
        .flatten()
        .filter(|part| part.thought != Some(true))
        .filter_map(|part| part.text.as_deref())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The compact JSON of each function response of a content, joined with `"\n"`; `None` when
/// it has none.
fn function_responses(content: &Content) -> Option<String> {
    let responses: Vec<String> = content
        .parts
        .iter()
        .flatten()
        .filter_map(|part| part.function_response.as_ref())
        .map(|response| {
            response
                .response
                .as_ref()
                .map_or_else(|| "{}".to_owned(), Value::to_string)
        })
        .collect();
    (!responses.is_empty()).then(|| responses.join("\n"))
}

fn is_user(content: &Content) -> bool {
    content.role.as_deref().is_none_or(|role| role == "user")
}

fn last(contents: &[Content]) -> Last {
    let Some(content) = contents.last() else {
        return Last {
            role: LastRole::Other,
            text: String::new(),
        };
    };
    if let Some(text) = function_responses(content) {
        return Last {
            role: LastRole::ToolResult,
            text,
        };
    }
    if is_user(content) {
        return Last {
            role: LastRole::User,
            text: text_of(content),
        };
    }
    Last {
        role: LastRole::Other,
        text: contents
            .iter()
            .rev()
            .find(|content| is_user(content) && function_responses(content).is_none())
            .map(text_of)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
