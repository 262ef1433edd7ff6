//! The canonical chat request.
//!
//! It holds what OpenAI Chat Completions and Anthropic Messages can both express, plus the
//! fields of the client's own dialect that have no canonical place ([`Extra`]); those are
//! forwarded unchanged to an upstream of the same dialect and dropped for any other.

use serde_json::{Map, Value};

use crate::format::WireFormat;

/// One chat request, whatever API it arrived through.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The model (group) the client asked for.
    pub model: String,
    /// The conversation, system messages included, in order.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call.
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// Plain text, any JSON, or JSON following a schema.
    pub response_format: Option<ResponseFormat>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Which field carried `max_tokens`, so the same one is sent upstream.
    pub max_tokens_key: MaxTokensKey,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling (Anthropic).
    pub top_k: Option<u32>,
    /// Number of choices to generate (OpenAI).
    pub n: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Sampling seed (OpenAI).
    pub seed: Option<i64>,
    /// The end user's id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// OpenAI's free-form `metadata` map.
    pub metadata: Option<Value>,
    /// Extended thinking / reasoning effort.
    pub reasoning: Option<Reasoning>,
    /// Whether the answer is streamed.
    pub stream: bool,
    /// Whether a streamed answer ends with a usage event (OpenAI `stream_options.include_usage`).
    pub include_usage: bool,
    /// Fields of the client's dialect with no canonical place.
    pub extra: Extra,
    /// Tools of the client's dialect the canonical model cannot express (Anthropic's server
    /// tools, such as `web_search_20250305`), whole as the client wrote them: like
    /// [`ContentPart::Opaque`], they reach only an upstream of the client's dialect.
    pub opaque_tools: Vec<Value>,
}

impl ChatRequest {
    /// The images its messages hold (priced apart by some models).
    pub fn image_count(&self) -> u64 {
        self.messages
            .iter()
            .flat_map(|message| &message.content)
            .filter(|part| matches!(part, ContentPart::Image { .. }))
            .count() as u64
    }

    /// The type of the first block or tool the canonical model cannot express, if any: such a
    /// request reaches only an upstream of the client's own dialect.
    pub fn first_opaque(&self) -> Option<&str> {
        ContentPart::opaque_in(&self.messages).or_else(|| {
            self.opaque_tools.first().map(|tool| {
                tool.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
            })
        })
    }

    /// The type of the first opaque block that is not kept whole (an OpenAI part type newer
    /// than the gateway): such a request can only be forwarded in the client's own bytes,
    /// never encoded, even for an upstream of its dialect.
    pub fn first_unkept(&self) -> Option<&str> {
        self.messages
            .iter()
            .flat_map(|message| &message.content)
            .find_map(|part| match part {
                ContentPart::Opaque { kind, block: None } => Some(kind.as_str()),
                _ => None,
            })
    }

    /// The text of the last user message, if any.
    pub fn last_user_text(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
            .map(Message::text)
    }
}

/// Fields the canonical model has no place for, tagged with the dialect they came in.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    /// The dialect the fields belong to.
    pub format: WireFormat,
    /// The fields, in the client's order.
    pub fields: Map<String, Value>,
}

impl Default for Extra {
    fn default() -> Extra {
        Extra {
            format: WireFormat::OpenAi,
            fields: Map::new(),
        }
    }
}

impl Extra {
    /// The fields, when the upstream speaks the dialect they came in.
    pub fn for_format(&self, format: WireFormat) -> Option<&Map<String, Value>> {
        (self.format == format && !self.fields.is_empty()).then_some(&self.fields)
    }
}

/// Which request field bounds the output length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxTokensKey {
    /// `max_tokens` (OpenAI legacy, Anthropic).
    #[default]
    MaxTokens,
    /// `max_completion_tokens` (OpenAI, required by reasoning models).
    MaxCompletionTokens,
}

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions from the operator.
    System,
    /// OpenAI's `developer` role: system instructions for reasoning models.
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call.
    Tool,
}

impl Role {
    /// The role's name in both dialects.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What was said, in order.
    pub content: Vec<ContentPart>,
    /// OpenAI's participant name.
    pub name: Option<String>,
    /// Tool calls the assistant made in this message.
    pub tool_calls: Vec<ToolCall>,
    /// For a tool result: the call it answers.
    pub tool_call_id: Option<String>,
    /// For a tool result: whether the tool failed (Anthropic `is_error`).
    pub is_error: bool,
}

impl Message {
    /// A message with `role` and `content`, nothing else.
    pub fn new(role: Role, content: Vec<ContentPart>) -> Message {
        Message {
            role,
            content,
            name: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        }
    }

    /// A message with `role` and one text part.
    pub fn text_message(role: Role, text: impl Into<String>) -> Message {
        Message::new(role, vec![ContentPart::text(text)])
    }

    /// The text parts joined by newlines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let ContentPart::Text { text, .. } = part {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(text);
            }
        }
        out
    }
}

/// A piece of message content.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    /// Plain text.
    Text {
        /// The text.
        text: String,
        /// Anthropic prompt-cache marker, kept for Anthropic upstreams.
        cache_control: Option<Value>,
    },
    /// An image, by URL or inline.
    Image {
        /// Where the image is.
        source: ImageSource,
        /// OpenAI's `detail` hint.
        detail: Option<String>,
        /// Anthropic prompt-cache marker.
        cache_control: Option<Value>,
    },
    /// The model's visible reasoning (Anthropic thinking block).
    Thinking {
        /// The reasoning text.
        text: String,
        /// Anthropic's signature, required to send the block back.
        signature: Option<String>,
    },
    /// Reasoning the provider encrypted (Anthropic `redacted_thinking`).
    RedactedThinking {
        /// The opaque payload.
        data: String,
    },
    /// A block of a type the canonical model has no place for (Anthropic `document`,
    /// `server_tool_use`, an image from the Files API; an OpenAI part type newer than the
    /// gateway). It reaches only an upstream of the client's dialect (in an answer, only a
    /// client of the upstream's): in the client's own bytes, or, when a stage changed the
    /// request, written again from `block`. An OpenAI part is not kept: a request holding one
    /// can only be forwarded untouched.
    Opaque {
        /// Its type, as the client named it (`unknown` where the dialect's parser does not
        /// keep it).
        kind: String,
        /// The whole block as the client or the upstream wrote it (Anthropic's).
        block: Option<serde_json::Value>,
    },
}

impl ContentPart {
    /// The type of the first block the canonical model cannot express, if any.
    pub fn opaque_in(messages: &[Message]) -> Option<&str> {
        messages
            .iter()
            .flat_map(|message| &message.content)
            .find_map(|part| match part {
                ContentPart::Opaque { kind, .. } => Some(kind.as_str()),
                _ => None,
            })
    }

    /// A plain text part.
    pub fn text(text: impl Into<String>) -> ContentPart {
        ContentPart::Text {
            text: text.into(),
            cache_control: None,
        }
    }
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// A URL the provider fetches.
    Url(String),
    /// Inline base64 data.
    Base64 {
        /// MIME type such as `image/png`.
        media_type: String,
        /// Base64 payload.
        data: String,
    },
}

impl ImageSource {
    /// Reads an OpenAI `image_url.url`, which may be a `data:` URL.
    pub fn from_url(url: &str) -> ImageSource {
        if let Some(rest) = url.strip_prefix("data:")
            && let Some((media_type, data)) = rest.split_once(";base64,")
        {
            return ImageSource::Base64 {
                media_type: media_type.to_owned(),
                data: data.to_owned(),
            };
        }
        ImageSource::Url(url.to_owned())
    }

    /// The URL form OpenAI expects (`data:` URL for inline data).
    pub fn to_url(&self) -> String {
        match self {
            ImageSource::Url(url) => url.clone(),
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

/// A call the model made to a tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The provider's id for the call, echoed back with its result.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// A tool (function) the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// The function's name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// The JSON schema of its arguments.
    pub parameters: Value,
    /// OpenAI structured-outputs strictness.
    pub strict: Option<bool>,
    /// Anthropic prompt-cache marker.
    pub cache_control: Option<Value>,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call (OpenAI `required`, Anthropic `any`).
    Required,
    /// This tool.
    Tool(String),
}

/// The shape the answer must have.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any valid JSON object.
    JsonObject,
    /// JSON following a schema.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// What the schema is for.
        description: Option<String>,
        /// The JSON schema.
        schema: Value,
        /// Whether the schema is enforced strictly.
        strict: Option<bool>,
    },
}

/// How much the model should think before answering.
#[derive(Debug, Clone, PartialEq)]
pub struct Reasoning {
    /// OpenAI's `reasoning_effort` (`minimal`, `low`, `medium`, `high`).
    pub effort: Option<String>,
    /// Anthropic's thinking budget in tokens.
    pub budget_tokens: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_become_inline_images_and_back() {
        let source = ImageSource::from_url("data:image/png;base64,iVBORw0KGgo=");
        assert_eq!(
            source,
            ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "iVBORw0KGgo=".into()
            }
        );
        assert_eq!(source.to_url(), "data:image/png;base64,iVBORw0KGgo=");
        assert_eq!(
            ImageSource::from_url("https://example.com/cat.png"),
            ImageSource::Url("https://example.com/cat.png".into())
        );
    }

    #[test]
    fn extra_fields_only_reach_their_own_dialect() {
        let mut fields = Map::new();
        fields.insert("logit_bias".into(), Value::Null);
        let extra = Extra {
            format: WireFormat::OpenAi,
            fields,
        };
        assert!(extra.for_format(WireFormat::OpenAi).is_some());
        assert!(extra.for_format(WireFormat::Anthropic).is_none());
    }
}
