//! OpenAI streams: a decoder of an upstream's `chat.completion.chunk` SSE stream into
//! canonical events, and an encoder of canonical events into chunks for a client.

use serde::Serialize;
use serde_json::Value;
use switchyard_types::{ApiError, ChatRequest, Delta, ErrorKind, FinishReason, StreamEvent, Usage};

use super::wire::{ChunkIn, UsageOut};
use crate::sse::{SseEvent, SseParser, write_event};

/// Decodes an upstream's stream, chunk by chunk.
#[derive(Debug, Default)]
pub struct Decoder {
    sse: SseParser,
    events: Vec<SseEvent>,
    started: bool,
    done: bool,
    finished: bool,
    /// (choice, tool index) pairs whose start was already emitted.
    tools_started: Vec<(u32, u32)>,
}

impl Decoder {
    /// A decoder for the answer to `request`.
    pub fn new(_request: &ChatRequest) -> Decoder {
        Decoder::default()
    }

    /// Bytes held for an event (or frame) not yet complete.
    pub fn pending(&self) -> usize {
        self.sse.pending()
    }

    /// Feeds upstream bytes (any boundary) and appends the canonical events they complete.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.sse.push(chunk, &mut self.events);
        let events = std::mem::take(&mut self.events);
        let result = events.iter().try_for_each(|event| self.event(event, out));
        self.events = events;
        self.events.clear();
        result
    }

    /// The upstream body ended; an error if it ended before the stream was complete.
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        // Some compatible servers omit `[DONE]`; a stream whose choices all finished is whole.
        if self.done || (self.finished && !self.sse.has_pending()) {
            return Ok(());
        }
        Err(ApiError::upstream(
            ErrorKind::BadGateway,
            "The upstream stream ended before it was complete",
        )
        .with_code("upstream_stream_cut"))
    }

    fn event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() || self.done {
            return Ok(());
        }
        let chunk: ChunkIn = serde_json::from_str(data).map_err(|error| {
            ApiError::upstream(
                ErrorKind::BadGateway,
                format!("The upstream sent a malformed stream chunk: {error}"),
            )
            .with_code("upstream_malformed_chunk")
        })?;
        if let Some(error) = chunk.error {
            return Err(stream_error(&error));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.id,
                model: chunk.model,
                created: chunk.created,
                system_fingerprint: chunk.system_fingerprint,
            });
        }
        for choice in chunk.choices {
            let index = choice.index;
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.reasoning_content.filter(|text| !text.is_empty()) {
                    out.push(delta_event(index, Delta::Thinking(text)));
                }
                if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                    out.push(delta_event(index, Delta::Text(text)));
                }
                if let Some(text) = delta.refusal.filter(|text| !text.is_empty()) {
                    out.push(delta_event(index, Delta::Refusal(text)));
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    let function = call.function;
                    let (name, arguments) = match function {
                        Some(function) => (function.name, function.arguments),
                        None => (None, None),
                    };
                    if !self.tools_started.contains(&(index, call.index))
                        && (call.id.is_some() || name.is_some())
                    {
                        self.tools_started.push((index, call.index));
                        out.push(delta_event(
                            index,
                            Delta::ToolCallStart {
                                index: call.index,
                                id: call
                                    .id
                                    .unwrap_or_else(|| format!("call_{index}_{}", call.index)),
                                name: name.unwrap_or_default(),
                            },
                        ));
                    }
                    if let Some(arguments) = arguments.filter(|arguments| !arguments.is_empty()) {
                        out.push(delta_event(
                            index,
                            Delta::ToolCallArgs {
                                index: call.index,
                                arguments,
                            },
                        ));
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finished = true;
                out.push(StreamEvent::Finish {
                    choice: index,
                    reason: FinishReason::from_openai(&reason),
                    stop_sequence: None,
                });
            }
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(Usage {
                service_tier: chunk.service_tier.unwrap_or_default(),
                ..usage.to_usage()
            }));
        }
        Ok(())
    }
}

fn delta_event(choice: u32, delta: Delta) -> StreamEvent {
    StreamEvent::Delta { choice, delta }
}

/// An `{"error": ...}` object sent inside a stream.
fn stream_error(error: &Value) -> ApiError {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| error.as_str())
        .unwrap_or("The upstream reported an error mid-stream");
    let kind = match error.get("type").and_then(Value::as_str) {
        Some("rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens") => {
            ErrorKind::RateLimited
        }
        Some("invalid_request_error") => ErrorKind::InvalidRequest,
        Some("service_unavailable_error" | "overloaded_error") => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    ApiError::upstream(kind, message)
}

/// Encodes canonical events as `chat.completion.chunk` SSE for a client.
#[derive(Debug)]
pub struct Encoder {
    id: String,
    model: String,
    created: u64,
    system_fingerprint: Option<String>,
    choices: u32,
    include_usage: bool,
    usage: Option<Usage>,
    started: bool,
}

impl Encoder {
    /// An encoder for the answer to `request`.
    pub fn new(request: &ChatRequest) -> Encoder {
        Encoder {
            id: String::new(),
            model: request.model.clone(),
            created: 0,
            system_fingerprint: None,
            choices: request.n.unwrap_or(1).max(1),
            include_usage: request.include_usage,
            usage: None,
            started: false,
        }
    }

    /// Appends the SSE bytes for one event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start {
                id,
                model,
                created,
                system_fingerprint,
            } => {
                self.id.clone_from(id);
                if !model.is_empty() {
                    self.model.clone_from(model);
                }
                self.created = *created;
                self.system_fingerprint.clone_from(system_fingerprint);
                self.start(out);
            }
            StreamEvent::Delta { choice, delta } => {
                self.start(out);
                let delta = match delta {
                    Delta::Text(text) => DeltaOut {
                        content: Some(text),
                        ..DeltaOut::default()
                    },
                    Delta::Thinking(text) => DeltaOut {
                        reasoning_content: Some(text),
                        ..DeltaOut::default()
                    },
                    Delta::Refusal(text) => DeltaOut {
                        refusal: Some(text),
                        ..DeltaOut::default()
                    },
                    Delta::ToolCallStart { index, id, name } => DeltaOut {
                        tool_calls: Some([ToolCallDeltaOut {
                            index: *index,
                            id: Some(id),
                            kind: Some("function"),
                            function: FunctionDeltaOut {
                                name: Some(name),
                                arguments: "",
                            },
                        }]),
                        ..DeltaOut::default()
                    },
                    Delta::ToolCallArgs { index, arguments } => DeltaOut {
                        tool_calls: Some([ToolCallDeltaOut {
                            index: *index,
                            id: None,
                            kind: None,
                            function: FunctionDeltaOut {
                                name: None,
                                arguments,
                            },
                        }]),
                        ..DeltaOut::default()
                    },
                    // OpenAI has no place for a thinking signature, nor for another dialect's
                    // blocks.
                    Delta::ThinkingSignature(_) | Delta::Opaque(_) => return,
                };
                self.chunk(*choice, delta, None, out);
            }
            StreamEvent::Finish { choice, reason, .. } => {
                self.start(out);
                self.chunk(*choice, DeltaOut::default(), Some(reason), out);
            }
            StreamEvent::Usage(usage) => {
                self.usage.get_or_insert_with(Usage::default).merge(usage);
            }
        }
    }

    /// The stream ended normally: the usage chunk when asked for, then `[DONE]`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        if self.include_usage {
            let usage = self.usage.unwrap_or_default();
            let chunk = ChunkOut {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                system_fingerprint: self.system_fingerprint.as_deref(),
                choices: &[],
                usage: Some(Some(UsageOut::from_usage(&usage))),
            };
            write_json(out, &chunk);
        }
        write_event(out, None, b"[DONE]");
    }

    /// An error after the stream started, as OpenAI sends it: a chunk holding `error`.
    pub fn error(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        write_event(out, None, &super::error::encode(error));
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = format!("chatcmpl-{}", self.created);
        }
        for choice in 0..self.choices {
            let delta = DeltaOut {
                role: Some("assistant"),
                content: Some(""),
                ..DeltaOut::default()
            };
            self.chunk(choice, delta, None, out);
        }
    }

    fn chunk(
        &self,
        index: u32,
        delta: DeltaOut<'_>,
        finish_reason: Option<&FinishReason>,
        out: &mut Vec<u8>,
    ) {
        let choices = [ChoiceOut {
            index,
            delta,
            logprobs: None,
            finish_reason: finish_reason.map(FinishReason::openai),
        }];
        let chunk = ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            system_fingerprint: self.system_fingerprint.as_deref(),
            choices: &choices,
            usage: self.include_usage.then_some(None),
        };
        write_json(out, &chunk);
    }
}

fn write_json<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    // Serialising plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

#[derive(Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_fingerprint: Option<&'a str>,
    choices: &'a [ChoiceOut<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<UsageOut>>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDeltaOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDeltaOut<'a>,
}

#[derive(Serialize)]
struct FunctionDeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}
