//! The cache key: a SHA-256 over the call's scope (tenant, model group, namespace, guard
//! policy, the values behind its placeholders) and everything in the request that decides the
//! answer: messages, tools, tool choice, response format, sampling parameters, seed, stop
//! sequences, reasoning, and the dialect's fields the canonical model has no place for. Not
//! what leaves the answer alone: `stream`, `stream_options`, `user`, `metadata`, prompt-cache
//! markers, the alias the model was asked by.
//!
//! Each value is written with a tag and its length, so no two different requests write the
//! same bytes.

use ring::digest;
use serde_json::Value;
use switchyard_types::{
    ChatRequest, ContentPart, ImageSource, Message, ResponseFormat, Role, ToolChoice, WireFormat,
};

/// The key's version: a change to what is hashed changes it, so old entries are never read as
/// new ones.
const VERSION: &[u8] = b"switchyard-cache-1";

/// A cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// As lowercase hex (what `x-switchyard-cache-key` shows and invalidation takes).
    pub fn hex(&self) -> String {
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            text.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            text.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
        }
        text
    }

    /// Reads [`Key::hex`]'s form.
    pub fn parse(text: &str) -> Option<Key> {
        if text.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (slot, pair) in key.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let digit = |byte: u8| char::from(byte).to_digit(16);
            *slot = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
        }
        Some(Key(key))
    }
}

/// Whose answer it is and under what: an exact part of the key, never a similarity.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// `team:…`, `key:…`, or empty (one tenant).
    pub tenant: &'a str,
    /// The model group (aliases share its answers).
    pub group: &'a str,
    /// The request's namespace.
    pub namespace: Option<&'a str>,
    /// The guard policy the call runs under (its output guards shape the answer).
    pub policy: &'a str,
    /// Each placeholder the guards put in the request and the value behind it: the same
    /// placeholders for other values must not share an answer that names them.
    pub placeholders: &'a [(&'a str, &'a str)],
    /// The client's body as it arrived, for a request holding blocks the canonical model keeps
    /// only the type of (an OpenAI part type newer than the gateway: their content decides the
    /// answer); blocks kept whole are in the key themselves.
    pub raw: Option<&'a [u8]>,
}

/// Fields of the client's dialect that do not decide the answer.
const IGNORED_EXTRA: [&str; 8] = [
    "user",
    "metadata",
    "store",
    "stream_options",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
];

/// The key of `request` in `scope`.
pub fn of(scope: &Scope<'_>, request: &ChatRequest) -> Key {
    hash(scope, request, None)
}

/// The semantic cache's scope: the key of `request` in `scope` without its last user message
/// (whose meaning is compared instead), with a mark where it stood. `None` when the request
/// has no user message.
pub fn context_of(scope: &Scope<'_>, request: &ChatRequest) -> Option<Key> {
    let last = request
        .messages
        .iter()
        .rposition(|message| message.role == Role::User)?;
    Some(hash(scope, request, Some(last)))
}

fn hash(scope: &Scope<'_>, request: &ChatRequest, omit: Option<usize>) -> Key {
    // Written out first and hashed in one pass: SHA-256 over one buffer costs a fraction of
    // a hundred small updates.
    let mut writer = Writer(Vec::with_capacity(1024));
    writer.bytes(b'v', VERSION);
    writer.text(b't', scope.tenant);
    writer.text(b'g', scope.group);
    writer.option(b'n', scope.namespace);
    writer.text(b'p', scope.policy);
    for (placeholder, value) in scope.placeholders {
        writer.text(b'h', placeholder);
        writer.text(b'H', value);
    }
    if let Some(raw) = scope.raw {
        writer.bytes(b'r', raw);
    }
    for (index, message) in request.messages.iter().enumerate() {
        if Some(index) == omit {
            writer.text(b'Q', "the question");
        } else {
            writer.message(message);
        }
    }
    for tool in &request.tools {
        writer.text(b'T', &tool.name);
        writer.option(b'd', tool.description.as_deref());
        writer.json(b'P', &tool.parameters);
        writer.number(b's', tool.strict.map(u64::from));
    }
    for tool in &request.opaque_tools {
        writer.json(b'O', tool);
    }
    match &request.tool_choice {
        None => {}
        Some(ToolChoice::Auto) => writer.text(b'c', "auto"),
        Some(ToolChoice::None) => writer.text(b'c', "none"),
        Some(ToolChoice::Required) => writer.text(b'c', "required"),
        Some(ToolChoice::Tool(name)) => writer.text(b'C', name),
    }
    writer.number(b'l', request.parallel_tool_calls.map(u64::from));
    match &request.response_format {
        None => {}
        Some(ResponseFormat::Text) => writer.text(b'f', "text"),
        Some(ResponseFormat::JsonObject) => writer.text(b'f', "json_object"),
        Some(ResponseFormat::JsonSchema {
            name,
            description,
            schema,
            strict,
        }) => {
            writer.text(b'F', name);
            writer.option(b'd', description.as_deref());
            writer.json(b'S', schema);
            writer.number(b's', strict.map(u64::from));
        }
    }
    writer.number(b'm', request.max_tokens.map(u64::from));
    writer.float(b'e', request.temperature);
    writer.float(b'o', request.top_p);
    writer.number(b'k', request.top_k.map(u64::from));
    writer.number(b'N', request.n.map(u64::from));
    for stop in &request.stop {
        writer.text(b'x', stop);
    }
    writer.number(b'z', request.seed.map(|seed| seed.cast_unsigned()));
    if let Some(reasoning) = &request.reasoning {
        writer.option(b'R', reasoning.effort.as_deref());
        writer.number(b'B', reasoning.budget_tokens.map(u64::from));
    }
    let mut extra: Vec<(&String, &Value)> = request
        .extra
        .fields
        .iter()
        .filter(|(name, _)| !IGNORED_EXTRA.contains(&name.as_str()))
        .collect();
    if !extra.is_empty() {
        extra.sort_unstable_by_key(|(name, _)| name.as_str());
        writer.text(
            b'D',
            match request.extra.format {
                WireFormat::OpenAi => "openai",
                WireFormat::Anthropic => "anthropic",
            },
        );
        for (name, value) in extra {
            writer.text(b'X', name);
            writer.json(b'V', value);
        }
    }
    let digest = digest::digest(&digest::SHA256, &writer.0);
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    Key(key)
}

struct Writer(Vec<u8>);

impl Writer {
    fn bytes(&mut self, tag: u8, bytes: &[u8]) {
        self.0.push(tag);
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
    }

    fn text(&mut self, tag: u8, text: &str) {
        self.bytes(tag, text.as_bytes());
    }

    fn option(&mut self, tag: u8, text: Option<&str>) {
        if let Some(text) = text {
            self.text(tag, text);
        }
    }

    fn number(&mut self, tag: u8, number: Option<u64>) {
        if let Some(number) = number {
            self.bytes(tag, &number.to_le_bytes());
        }
    }

    fn float(&mut self, tag: u8, number: Option<f64>) {
        if let Some(number) = number {
            self.bytes(tag, &number.to_bits().to_le_bytes());
        }
    }

    fn json(&mut self, tag: u8, value: &Value) {
        self.bytes(tag, value.to_string().as_bytes());
    }

    fn message(&mut self, message: &Message) {
        let role = match message.role {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        self.text(b'M', role);
        self.option(b'a', message.name.as_deref());
        self.option(b'i', message.tool_call_id.as_deref());
        if message.is_error {
            self.text(b'E', "error");
        }
        for part in &message.content {
            match part {
                ContentPart::Text { text, .. } => self.text(b'1', text),
                ContentPart::Image { source, detail, .. } => {
                    match source {
                        ImageSource::Url(url) => self.text(b'2', url),
                        ImageSource::Base64 { media_type, data } => {
                            self.text(b'3', media_type);
                            self.text(b'4', data);
                        }
                    }
                    self.option(b'5', detail.as_deref());
                }
                ContentPart::Thinking { text, signature } => {
                    self.text(b'6', text);
                    self.option(b'7', signature.as_deref());
                }
                ContentPart::RedactedThinking { data } => self.text(b'8', data),
                ContentPart::Opaque { kind, block } => {
                    self.text(b'9', kind);
                    if let Some(block) = block {
                        self.json(b'B', block);
                    }
                }
            }
        }
        for call in &message.tool_calls {
            self.text(b'I', &call.id);
            self.text(b'A', &call.name);
            self.text(b'J', &call.arguments);
        }
    }
}

#[cfg(test)]
mod tests;
