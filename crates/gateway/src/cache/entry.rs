//! What the cache keeps of an answer, and the two ways back out: the whole answer, or the events
//! that replay it as a stream. Its own serialisable shape rather than the canonical types, so
//! that what Redis holds changes only with [`FORMAT`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_providers::{anthropic, openai};
use switchyard_types::{
    ChatRequest, ChatResponse, Choice, ContentPart, Delta, FinishReason, StreamEvent, ToolCall,
    Usage, WireFormat,
};

/// The shape of a kept entry; an entry of another format is a miss.
pub const FORMAT: u32 = 2;

/// One kept answer and what it is filed under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// [`FORMAT`].
    pub format: u32,
    /// When it was kept, Unix milliseconds.
    pub stored_at: u64,
    /// When it expires, Unix milliseconds.
    pub expires_at: u64,
    /// The tenant whose calls may be given it (`team:…`, `key:…`, or empty for everyone).
    pub tenant: String,
    /// The team of the key whose call it answered, for invalidation by team.
    pub team: Option<String>,
    /// The model group.
    pub group: String,
    /// The namespace the request named (`x-switchyard-cache-namespace`).
    pub namespace: Option<String>,
    /// The call's tags (its key's and the request's).
    pub tags: Vec<String>,
    /// What the call it came from cost, nano-dollars: what each hit saves.
    pub cost_nanos: i64,
    /// The answer (only its usage, while it is kept as relayed).
    pub answer: Stored,
    /// The answer as the upstream wrote it, until it is first given out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayed: Option<Relayed>,
}

impl Entry {
    /// About what it takes in memory, bytes.
    pub fn weight(&self) -> usize {
        self.answer.weight()
            + self
                .relayed
                .as_ref()
                .map_or(0, |relayed| relayed.text.len())
    }

    /// The entry with its relayed answer decoded; `None` if it does not decode or a filter
    /// stopped it (such an entry is never given out).
    pub fn decoded(&self) -> Option<Entry> {
        let relayed = self.relayed.as_ref()?;
        let mut answer = Stored::of(&relayed.decode()?);
        if answer.filtered() {
            return None;
        }
        if answer.usage.total_tokens() == 0 {
            // A relayed stream may have kept its usage from the client that did not ask.
            answer.usage = self.answer.usage;
        }
        Some(Entry {
            answer,
            relayed: None,
            ..self.clone()
        })
    }
}

/// An answer kept as the upstream wrote it (relayed to a client of its dialect): decoding it
/// waits until it is first given out, since most kept answers never are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relayed {
    /// `openai` or `anthropic`.
    pub dialect: String,
    /// A stream's bytes (SSE), not a whole body.
    pub stream: bool,
    /// The bytes, as text.
    pub text: String,
}

impl Relayed {
    /// `bytes` of `format`, a stream's or a whole body's; `None` if they are not text.
    pub fn of(format: WireFormat, stream: bool, bytes: Vec<u8>) -> Option<Relayed> {
        Some(Relayed {
            dialect: match format {
                WireFormat::OpenAi => "openai",
                WireFormat::Anthropic => "anthropic",
            }
            .to_owned(),
            stream,
            text: String::from_utf8(bytes).ok()?,
        })
    }

    /// The answer decoded.
    pub fn decode(&self) -> Option<ChatResponse> {
        let request = ChatRequest::default();
        let bytes = self.text.as_bytes();
        if !self.stream {
            return match self.dialect.as_str() {
                "openai" => openai::response::decode(bytes, &request).ok(),
                "anthropic" => anthropic::response::decode(bytes, &request).ok(),
                _ => None,
            };
        }
        let mut events: Vec<StreamEvent> = Vec::new();
        match self.dialect.as_str() {
            "openai" => {
                let mut decoder = openai::stream::Decoder::new(&request);
                decoder
                    .push(bytes, &mut events)
                    .and_then(|()| decoder.finish(&mut events))
                    .ok()?;
            }
            "anthropic" => {
                let mut decoder = anthropic::stream::Decoder::new(&request);
                decoder
                    .push(bytes, &mut events)
                    .and_then(|()| decoder.finish(&mut events))
                    .ok()?;
            }
            _ => return None,
        }
        let mut gather = Gather::new(usize::MAX);
        for event in &events {
            gather.push(event);
        }
        Some(gather.finish())
    }
}

/// A kept answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    id: String,
    model: String,
    created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service_tier: Option<String>,
    choices: Vec<StoredChoice>,
    /// What the call that made it used.
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredChoice {
    index: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<StoredCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refusal: Option<String>,
    /// OpenAI's name for the reason, or `other:` and the provider's own.
    finish: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop_sequence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logprobs: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part {
    Text {
        text: String,
    },
    Thinking {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    /// A block of the upstream's dialect with no canonical place (a server-tool call or
    /// result), kept whole.
    Opaque {
        block: serde_json::Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredCall {
    id: String,
    name: String,
    arguments: String,
}

fn finish_name(reason: &FinishReason) -> String {
    match reason {
        FinishReason::Other(other) => format!("other:{other}"),
        known => known.openai().to_owned(),
    }
}

fn finish_reason(name: &str) -> FinishReason {
    match name.strip_prefix("other:") {
        Some(other) => FinishReason::Other(other.to_owned()),
        None => FinishReason::from_openai(name),
    }
}

/// The `type` of an opaque block (`unknown` without one).
fn block_type(block: &serde_json::Value) -> String {
    block["type"].as_str().unwrap_or("unknown").to_owned()
}

impl Stored {
    /// What is kept of `response` (its text, thinking, opaque blocks, tool calls, refusal and
    /// finish per choice; images, which answers do not carry, are left out).
    pub fn of(response: &ChatResponse) -> Stored {
        Stored {
            id: response.id.clone(),
            model: response.model.clone(),
            created: response.created,
            system_fingerprint: response.system_fingerprint.clone(),
            service_tier: response.service_tier.clone(),
            usage: response.usage,
            choices: response
                .choices
                .iter()
                .map(|choice| StoredChoice {
                    index: choice.index,
                    parts: choice
                        .content
                        .iter()
                        .filter_map(|part| match part {
                            ContentPart::Text { text, .. } => {
                                Some(Part::Text { text: text.clone() })
                            }
                            ContentPart::Thinking { text, signature } => Some(Part::Thinking {
                                text: text.clone(),
                                signature: signature.clone(),
                            }),
                            ContentPart::RedactedThinking { data } => {
                                Some(Part::RedactedThinking { data: data.clone() })
                            }
                            ContentPart::Opaque {
                                block: Some(block), ..
                            } => Some(Part::Opaque {
                                block: block.clone(),
                            }),
                            ContentPart::Image { .. } | ContentPart::Opaque { block: None, .. } => {
                                None
                            }
                        })
                        .collect(),
                    tool_calls: choice
                        .tool_calls
                        .iter()
                        .map(|call| StoredCall {
                            id: call.id.clone(),
                            name: call.name.clone(),
                            arguments: call.arguments.clone(),
                        })
                        .collect(),
                    refusal: choice.refusal.clone(),
                    finish: finish_name(&choice.finish_reason),
                    stop_sequence: choice.stop_sequence.clone(),
                    logprobs: choice.logprobs.clone(),
                })
                .collect(),
        }
    }

    /// The whole answer.
    pub fn response(&self) -> ChatResponse {
        ChatResponse {
            id: self.id.clone(),
            model: self.model.clone(),
            created: self.created,
            system_fingerprint: self.system_fingerprint.clone(),
            service_tier: self.service_tier.clone(),
            usage: self.usage,
            choices: self
                .choices
                .iter()
                .map(|stored| {
                    let mut choice = Choice::new(stored.index);
                    choice.content = stored
                        .parts
                        .iter()
                        .map(|part| match part {
                            Part::Text { text } => ContentPart::text(text.clone()),
                            Part::Thinking { text, signature } => ContentPart::Thinking {
                                text: text.clone(),
                                signature: signature.clone(),
                            },
                            Part::RedactedThinking { data } => {
                                ContentPart::RedactedThinking { data: data.clone() }
                            }
                            Part::Opaque { block } => ContentPart::Opaque {
                                kind: block_type(block),
                                block: Some(block.clone()),
                            },
                        })
                        .collect();
                    choice.tool_calls = stored
                        .tool_calls
                        .iter()
                        .map(|call| ToolCall {
                            id: call.id.clone(),
                            name: call.name.clone(),
                            arguments: call.arguments.clone(),
                        })
                        .collect();
                    choice.refusal = stored.refusal.clone();
                    choice.finish_reason = finish_reason(&stored.finish);
                    choice.stop_sequence = stored.stop_sequence.clone();
                    choice.logprobs = stored.logprobs.clone();
                    choice
                })
                .collect(),
        }
    }

    /// The answer as a stream's events: its start, each choice's parts and tool calls (a
    /// delta each; encrypted thinking and opaque blocks whole), its finish, then the usage.
    pub fn events(&self) -> Vec<StreamEvent> {
        let mut events = vec![StreamEvent::Start {
            id: self.id.clone(),
            model: self.model.clone(),
            created: self.created,
            system_fingerprint: self.system_fingerprint.clone(),
        }];
        for choice in &self.choices {
            let index = choice.index;
            let delta = |delta| StreamEvent::Delta {
                choice: index,
                delta,
            };
            for part in &choice.parts {
                match part {
                    Part::Text { text } => events.push(delta(Delta::Text(text.clone()))),
                    Part::Thinking { text, signature } => {
                        events.push(delta(Delta::Thinking(text.clone())));
                        if let Some(signature) = signature {
                            events.push(delta(Delta::ThinkingSignature(signature.clone())));
                        }
                    }
                    Part::RedactedThinking { data } => events.push(delta(Delta::Opaque(
                        serde_json::json!({"type": "redacted_thinking", "data": data}),
                    ))),
                    Part::Opaque { block } => events.push(delta(Delta::Opaque(block.clone()))),
                }
            }
            if let Some(refusal) = &choice.refusal {
                events.push(delta(Delta::Refusal(refusal.clone())));
            }
            for (position, call) in choice.tool_calls.iter().enumerate() {
                let position = u32::try_from(position).unwrap_or(u32::MAX);
                events.push(delta(Delta::ToolCallStart {
                    index: position,
                    id: call.id.clone(),
                    name: call.name.clone(),
                }));
                events.push(delta(Delta::ToolCallArgs {
                    index: position,
                    arguments: call.arguments.clone(),
                }));
            }
            events.push(StreamEvent::Finish {
                choice: index,
                reason: finish_reason(&choice.finish),
                stop_sequence: choice.stop_sequence.clone(),
            });
        }
        events.push(StreamEvent::Usage(self.usage));
        events
    }

    /// About what it takes in memory, bytes.
    pub fn weight(&self) -> usize {
        let choices: usize = self
            .choices
            .iter()
            .map(|choice| {
                let parts: usize = choice
                    .parts
                    .iter()
                    .map(|part| match part {
                        Part::Text { text } => text.len(),
                        Part::Thinking { text, signature } => {
                            text.len() + signature.as_ref().map_or(0, String::len)
                        }
                        Part::RedactedThinking { data } => data.len(),
                        Part::Opaque { block } => block.to_string().len(),
                    } + 32)
                    .sum();
                let calls: usize = choice
                    .tool_calls
                    .iter()
                    .map(|call| call.id.len() + call.name.len() + call.arguments.len() + 64)
                    .sum();
                parts
                    + calls
                    + choice.refusal.as_ref().map_or(0, String::len)
                    + choice
                        .logprobs
                        .as_ref()
                        .map_or(0, |value| value.to_string().len())
                    + 96
            })
            .sum();
        256 + self.id.len() + self.model.len() + choices
    }

    /// Whether it holds no choice at all.
    pub fn is_empty(&self) -> bool {
        self.choices.is_empty()
    }

    /// Whether a guard or the provider's filter stopped any choice (such an answer is never
    /// kept).
    pub fn filtered(&self) -> bool {
        self.choices
            .iter()
            .any(|choice| finish_reason(&choice.finish) == FinishReason::ContentFilter)
    }
}

/// A streamed answer gathered event by event into a whole one, up to a size.
#[derive(Debug)]
pub struct Gather {
    response: ChatResponse,
    bytes: usize,
    limit: usize,
}

impl Gather {
    /// Gathers up to about `limit` bytes of answer.
    pub fn new(limit: usize) -> Gather {
        Gather {
            response: ChatResponse::default(),
            bytes: 0,
            limit,
        }
    }

    /// Adds `event`; false once the answer is past the limit (then it is not kept).
    pub fn push(&mut self, event: &StreamEvent) -> bool {
        match event {
            StreamEvent::Start {
                id,
                model,
                created,
                system_fingerprint,
            } => {
                self.response.id.clone_from(id);
                self.response.model.clone_from(model);
                self.response.created = *created;
                self.response
                    .system_fingerprint
                    .clone_from(system_fingerprint);
            }
            StreamEvent::Delta { choice, delta } => {
                let choice = self.choice(*choice);
                let added = match delta {
                    Delta::Text(text) => {
                        match choice.content.last_mut() {
                            Some(ContentPart::Text { text: last, .. }) => last.push_str(text),
                            _ => choice.content.push(ContentPart::text(text.clone())),
                        }
                        text.len()
                    }
                    Delta::Thinking(text) => {
                        match choice.content.last_mut() {
                            Some(ContentPart::Thinking {
                                text: last,
                                signature: None,
                            }) => last.push_str(text),
                            _ => choice.content.push(ContentPart::Thinking {
                                text: text.clone(),
                                signature: None,
                            }),
                        }
                        text.len()
                    }
                    Delta::ThinkingSignature(signature) => {
                        match choice.content.last_mut() {
                            Some(ContentPart::Thinking {
                                signature: slot, ..
                            }) => {
                                *slot = Some(signature.clone());
                            }
                            _ => choice.content.push(ContentPart::Thinking {
                                text: String::new(),
                                signature: Some(signature.clone()),
                            }),
                        }
                        signature.len()
                    }
                    Delta::Refusal(text) => {
                        choice
                            .refusal
                            .get_or_insert_with(String::new)
                            .push_str(text);
                        text.len()
                    }
                    Delta::ToolCallStart { index, id, name } => {
                        let index = usize::try_from(*index).unwrap_or(usize::MAX);
                        if index > choice.tool_calls.len() {
                            // Calls arrive in order; one out of it cannot be kept faithfully.
                            self.bytes = usize::MAX;
                            return false;
                        }
                        let call = ToolCall {
                            id: id.clone(),
                            name: name.clone(),
                            arguments: String::new(),
                        };
                        if index == choice.tool_calls.len() {
                            choice.tool_calls.push(call);
                        } else {
                            choice.tool_calls[index] = call;
                        }
                        id.len() + name.len() + 64
                    }
                    Delta::Opaque(block) => {
                        let kind = block_type(block);
                        let added = kind.len() + block.to_string().len();
                        choice.content.push(match kind.as_str() {
                            "redacted_thinking" => ContentPart::RedactedThinking {
                                data: block["data"].as_str().unwrap_or_default().to_owned(),
                            },
                            _ => ContentPart::Opaque {
                                kind,
                                block: Some(block.clone()),
                            },
                        });
                        added
                    }
                    Delta::ToolCallArgs { index, arguments } => {
                        let index = usize::try_from(*index).unwrap_or(usize::MAX);
                        let Some(call) = choice.tool_calls.get_mut(index) else {
                            self.bytes = usize::MAX;
                            return false;
                        };
                        call.arguments.push_str(arguments);
                        arguments.len()
                    }
                };
                self.bytes = self.bytes.saturating_add(added);
            }
            StreamEvent::Finish {
                choice,
                reason,
                stop_sequence,
            } => {
                let choice = self.choice(*choice);
                choice.finish_reason = reason.clone();
                choice.stop_sequence.clone_from(stop_sequence);
            }
            StreamEvent::Usage(usage) => self.response.usage.merge(usage),
        }
        self.bytes <= self.limit
    }

    fn choice(&mut self, index: u32) -> &mut Choice {
        let choices = &mut self.response.choices;
        let position = match choices.binary_search_by_key(&index, |choice| choice.index) {
            Ok(position) => position,
            Err(position) => {
                choices.insert(position, Choice::new(index));
                position
            }
        };
        &mut choices[position]
    }

    /// The whole answer, once the stream ended.
    pub fn finish(self) -> ChatResponse {
        self.response
    }
}

#[cfg(test)]
mod tests;
