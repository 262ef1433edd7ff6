//! Anthropic content blocks on the wire, shared by requests and responses.
//!
//! Reading is permissive: [`Block`] holds every field any supported block type has, all
//! optional, so the caller checks what its type needs and names the exact field at fault
//! (`messages[2].content[0].source`). Writing builds each block's exact shape as JSON.
//! <https://docs.anthropic.com/en/api/messages>

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value, json};
use switchyard_types::{ContentPart, ImageSource};

/// A schema-shaped answer is asked of an Anthropic upstream as a forced call to [`JSON_TOOL`].
pub(crate) use crate::answer::{JSON_TOOL, asks_json_schema as emulates_json_schema};

/// The `content` of a message or of a `tool_result`: a string or a list of blocks.
#[derive(Debug)]
pub(crate) enum Content {
    /// Shorthand for one text block.
    Text(String),
    /// Blocks in order.
    Blocks(Vec<Block>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Content, D::Error> {
        // A hand-written visitor rather than `#[serde(untagged)]`: untagged enums buffer the
        // value and lose the field path of an error inside a block.
        struct ContentVisitor;

        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Content, E> {
                Ok(Content::Text(text.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Content, E> {
                Ok(Content::Text(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(block) = seq.next_element::<Block>()? {
                    blocks.push(block);
                }
                Ok(Content::Blocks(blocks))
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

/// One content block as read. `kind` says which of the other fields matter.
#[derive(Debug, Deserialize)]
pub(crate) struct Block {
    /// The block type: `text`, `image`, `tool_use`, `tool_result`, `thinking`, ...
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// `text`.
    pub(crate) text: Option<String>,
    /// Prompt-cache marker of any block type.
    pub(crate) cache_control: Option<Value>,
    /// `image` (read as a [`Source`] only for images: other block types, `search_result` for
    /// one, have a `source` of another shape, and are kept opaque).
    pub(crate) source: Option<Value>,
    /// `thinking`.
    pub(crate) thinking: Option<String>,
    /// `thinking`.
    pub(crate) signature: Option<String>,
    /// `redacted_thinking`.
    pub(crate) data: Option<String>,
    /// `tool_use`.
    pub(crate) id: Option<String>,
    /// `tool_use`.
    pub(crate) name: Option<String>,
    /// `tool_use`.
    pub(crate) input: Option<Value>,
    /// `tool_result`.
    pub(crate) tool_use_id: Option<String>,
    /// `tool_result`.
    pub(crate) content: Option<Content>,
    /// `tool_result`.
    pub(crate) is_error: Option<bool>,
}

/// An image `source` as read.
#[derive(Debug, Deserialize)]
pub(crate) struct Source {
    /// `base64`, `url` or `file`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// `base64`.
    pub(crate) media_type: Option<String>,
    /// `base64`.
    pub(crate) data: Option<String>,
    /// `url`.
    pub(crate) url: Option<String>,
}

/// A `text` block.
pub(crate) fn text_block(text: &str, cache_control: Option<&Value>) -> Value {
    let mut block = Map::new();
    block.insert("type".into(), "text".into());
    block.insert("text".into(), text.into());
    if let Some(cache_control) = cache_control {
        block.insert("cache_control".into(), cache_control.clone());
    }
    Value::Object(block)
}

/// An `image` block.
pub(crate) fn image_block(source: &ImageSource, cache_control: Option<&Value>) -> Value {
    let source = match source {
        ImageSource::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        ImageSource::Url(url) => json!({"type": "url", "url": url}),
    };
    let mut block = Map::new();
    block.insert("type".into(), "image".into());
    block.insert("source".into(), source);
    if let Some(cache_control) = cache_control {
        block.insert("cache_control".into(), cache_control.clone());
    }
    Value::Object(block)
}

/// A `thinking` block.
pub(crate) fn thinking_block(thinking: &str, signature: &str) -> Value {
    json!({"type": "thinking", "thinking": thinking, "signature": signature})
}

/// A `redacted_thinking` block.
pub(crate) fn redacted_thinking_block(data: &str) -> Value {
    json!({"type": "redacted_thinking", "data": data})
}

/// A `tool_use` block.
pub(crate) fn tool_use_block(id: &str, name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": id, "name": name, "input": input})
}

/// A content part as a block of a request to Anthropic, or `None` when Anthropic would
/// reject it: empty text, and thinking without a signature (Anthropic only accepts thinking
/// it signed itself, so reasoning from another provider cannot be replayed).
pub(crate) fn request_block(part: &ContentPart) -> Option<Value> {
    match part {
        ContentPart::Text {
            text,
            cache_control,
        } => (!text.is_empty()).then(|| text_block(text, cache_control.as_ref())),
        ContentPart::Image {
            source,
            cache_control,
            ..
        } => Some(image_block(source, cache_control.as_ref())),
        ContentPart::Thinking { text, signature } => match signature.as_deref() {
            Some(signature) if !signature.is_empty() => Some(thinking_block(text, signature)),
            _ => None,
        },
        ContentPart::RedactedThinking { data } => Some(redacted_thinking_block(data)),
        // Kept whole from an Anthropic client's body (see `ContentPart::Opaque`).
        ContentPart::Opaque { block, .. } => block.clone(),
    }
}

/// A tool-call id Anthropic accepts (`^[a-zA-Z0-9_-]+$`). Other providers' ids may hold
/// other characters (`functions.get_weather:0`); the same mapping is applied to a `tool_use`
/// and to the `tool_result` answering it, so the pair still matches.
pub(crate) fn tool_id(id: &str) -> Cow<'_, str> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.is_empty() {
        Cow::Borrowed("toolu_")
    } else if id.chars().all(valid) {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(id.chars().map(|c| if valid(c) { c } else { '_' }).collect())
    }
}

/// Parses tool-call arguments into the object Anthropic's `input` must be. An empty string
/// means no arguments; `None` when the text is not a JSON object.
pub(crate) fn tool_input(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Some(value),
        _ => None,
    }
}
