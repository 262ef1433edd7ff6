//! Anthropic streaming (server-sent events) to and from canonical stream events.
//!
//! [`Decoder`] reads an upstream's event stream chunk by chunk, whatever the chunk
//! boundaries; [`Encoder`] writes canonical events as the event sequence an Anthropic client
//! expects: `message_start`, `ping`, numbered content blocks (`content_block_start`,
//! `content_block_delta`…, `content_block_stop`), `message_delta`, `message_stop`.
//! <https://docs.anthropic.com/en/docs/build-with-claude/streaming>

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_types::{ApiError, ChatRequest, Delta, ErrorKind, FinishReason, StreamEvent, Usage};

use super::content::{Block, JSON_TOOL, emulates_json_schema};
use super::error::{self, WireError};
use super::response::{
    WireUsage, finish_reason, message_id, stop_reason_name, unix_now, usage_json,
};
use crate::sse::{SseEvent, SseParser, write_event};

/// Reads an upstream Anthropic event stream into canonical events.
#[derive(Debug)]
pub struct Decoder {
    parser: SseParser,
    /// The request asked for a JSON-schema answer, emulated with [`JSON_TOOL`].
    json_mode: bool,
    /// `message_stop` arrived; anything after it is ignored.
    done: bool,
    /// Counts so far: `message_start` has the input, `message_delta` the output.
    usage: WireUsage,
    /// What each open or finished content block is, by Anthropic block index.
    blocks: Vec<(u64, BlockRole)>,
    /// Tool calls seen so far (canonical tool-call indexes are 0-based per message).
    tool_calls: u32,
    /// The open block the canonical model has no place for (a server-tool call or result,
    /// redacted thinking): its index, the block as started, and its input's pieces so far.
    opaque: Option<(u64, Value, String)>,
}

/// How a content block's deltas are translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockRole {
    /// Text or thinking: deltas carry their own kind.
    Content,
    /// A tool call with this canonical index.
    ToolCall(u32),
    /// The emulated JSON answer: its argument pieces are answer text.
    JsonAnswer,
    /// Text before the forced JSON answer: not part of the answer, dropped.
    Preamble,
    /// A block kept whole ([`Delta::Opaque`]) once it stops.
    Opaque,
}

impl Decoder {
    /// A decoder for the answer to `request`.
    pub fn new(request: &ChatRequest) -> Decoder {
        Decoder {
            parser: SseParser::new(),
            json_mode: emulates_json_schema(request),
            done: false,
            usage: WireUsage::default(),
            blocks: Vec::new(),
            tool_calls: 0,
            opaque: None,
        }
    }

    /// Bytes held for an event (or frame) not yet complete.
    pub fn pending(&self) -> usize {
        self.parser.pending()
    }

    /// Feeds raw upstream bytes (cut anywhere), appending canonical events to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        let mut events = Vec::new();
        self.parser.push(chunk, &mut events);
        for event in events {
            self.handle(&event, out)?;
        }
        Ok(())
    }

    /// The upstream body ended; an error unless `message_stop` arrived.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        if !self.done && self.parser.has_pending() {
            // Be lenient with a last event that lacks its blank line; a truncated one is
            // reported as the early end it is.
            let mut events = Vec::new();
            self.parser.push(b"\n\n", &mut events);
            for event in events {
                match self.handle(&event, out) {
                    Ok(()) => {}
                    Err(error) if error.kind == ErrorKind::BadGateway => break,
                    Err(error) => return Err(error),
                }
            }
        }
        if self.done {
            Ok(())
        } else {
            Err(ApiError::upstream(
                ErrorKind::BadGateway,
                "the upstream Anthropic stream ended before message_stop",
            ))
        }
    }

    fn handle(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        if self.done || event.data.trim().is_empty() {
            return Ok(());
        }
        let event: WireEvent = serde_json::from_str(&event.data).map_err(|_| {
            ApiError::upstream(
                ErrorKind::BadGateway,
                "malformed event from upstream Anthropic",
            )
        })?;
        match event {
            WireEvent::MessageStart { message } => {
                self.usage.update(&message.usage);
                out.push(StreamEvent::Start {
                    id: message.id,
                    model: message.model,
                    created: unix_now(),
                    system_fingerprint: None,
                });
                out.push(StreamEvent::Usage(self.usage.to_canonical()));
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, *content_block, out)?,
            WireEvent::ContentBlockDelta { index, delta } => {
                match self.role(index) {
                    Some(BlockRole::Preamble) => return Ok(()),
                    Some(BlockRole::Opaque) => {
                        if let (WireDelta::InputJsonDelta { partial_json }, Some((_, _, input))) =
                            (delta, &mut self.opaque)
                        {
                            input.push_str(&partial_json);
                        }
                        return Ok(());
                    }
                    _ => {}
                }
                let delta = match delta {
                    WireDelta::TextDelta { text } => Delta::Text(text),
                    WireDelta::ThinkingDelta { thinking } => Delta::Thinking(thinking),
                    WireDelta::SignatureDelta { signature } => Delta::ThinkingSignature(signature),
                    WireDelta::InputJsonDelta { partial_json } => match self.role(index) {
                        Some(BlockRole::ToolCall(index)) => Delta::ToolCallArgs {
                            index,
                            arguments: partial_json,
                        },
                        Some(BlockRole::JsonAnswer) => Delta::Text(partial_json),
                        Some(BlockRole::Content | BlockRole::Preamble | BlockRole::Opaque)
                        | None => return Ok(()),
                    },
                    WireDelta::Other => return Ok(()),
                };
                push_delta(delta, out);
            }
            WireEvent::MessageDelta { delta, usage } => {
                self.usage.update(&usage);
                if let Some(stop_reason) = delta.stop_reason {
                    let answered_in_json = self.json_mode
                        && self.tool_calls == 0
                        && self
                            .blocks
                            .iter()
                            .any(|(_, role)| *role == BlockRole::JsonAnswer);
                    let reason = match stop_reason.as_str() {
                        "tool_use" if answered_in_json => FinishReason::Stop,
                        other => finish_reason(other),
                    };
                    out.push(StreamEvent::Finish {
                        choice: 0,
                        reason,
                        stop_sequence: delta.stop_sequence,
                    });
                }
                out.push(StreamEvent::Usage(self.usage.to_canonical()));
            }
            WireEvent::MessageStop => self.done = true,
            WireEvent::Error { error } => {
                let error_type = error.kind.unwrap_or_else(|| "api_error".to_owned());
                let message = error
                    .message
                    .unwrap_or_else(|| "the upstream Anthropic stream reported an error".into());
                return Err(
                    ApiError::upstream(error::kind_from_type(&error_type), message)
                        .with_code(error_type),
                );
            }
            WireEvent::ContentBlockStop { index } => {
                if let Some((open, _, _)) = &self.opaque
                    && index.is_none_or(|index| index == *open)
                    && let Some((_, mut block, input)) = self.opaque.take()
                {
                    // A server-tool call's input came in pieces, as a tool call's does.
                    if !input.is_empty()
                        && let Ok(input) = serde_json::from_str::<Value>(&input)
                    {
                        block["input"] = input;
                    }
                    out.push(StreamEvent::Delta {
                        choice: 0,
                        delta: Delta::Opaque(block),
                    });
                }
            }
            WireEvent::Ping | WireEvent::Other => {}
        }
        Ok(())
    }

    fn block_start(
        &mut self,
        index: u64,
        block: Value,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        if !matches!(
            block.get("type").and_then(Value::as_str),
            Some("text" | "thinking" | "tool_use")
        ) {
            // Kept whole, and given out when it stops.
            self.blocks.push((index, BlockRole::Opaque));
            self.opaque = Some((index, block, String::new()));
            return Ok(());
        }
        let block: Block = serde_json::from_value(block).map_err(|_| {
            ApiError::upstream(
                ErrorKind::BadGateway,
                "malformed content block from upstream Anthropic",
            )
        })?;
        match block.kind.as_str() {
            "tool_use" if self.json_mode && block.name.as_deref() == Some(JSON_TOOL) => {
                self.blocks.push((index, BlockRole::JsonAnswer));
                if let Some(input) = block.input.filter(non_empty_object) {
                    push_delta(Delta::Text(input.to_string()), out);
                }
            }
            "tool_use" => {
                let call = self.tool_calls;
                self.tool_calls += 1;
                self.blocks.push((index, BlockRole::ToolCall(call)));
                push_delta(
                    Delta::ToolCallStart {
                        index: call,
                        id: block.id.unwrap_or_default(),
                        name: block.name.unwrap_or_default(),
                    },
                    out,
                );
                if let Some(input) = block.input.filter(non_empty_object) {
                    push_delta(
                        Delta::ToolCallArgs {
                            index: call,
                            arguments: input.to_string(),
                        },
                        out,
                    );
                }
            }
            // A JSON-schema answer is a forced tool call: any text before it is preamble.
            "text" if self.json_mode => self.blocks.push((index, BlockRole::Preamble)),
            kind => {
                self.blocks.push((index, BlockRole::Content));
                match kind {
                    "text" => push_delta(Delta::Text(block.text.unwrap_or_default()), out),
                    "thinking" => {
                        push_delta(Delta::Thinking(block.thinking.unwrap_or_default()), out);
                        push_delta(
                            Delta::ThinkingSignature(block.signature.unwrap_or_default()),
                            out,
                        );
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn role(&self, index: u64) -> Option<BlockRole> {
        self.blocks
            .iter()
            .rev()
            .find(|(block, _)| *block == index)
            .map(|(_, role)| *role)
    }
}

fn non_empty_object(input: &Value) -> bool {
    input.as_object().is_some_and(|object| !object.is_empty())
}

/// Appends a choice-0 delta, skipping empty text (Anthropic opens blocks with empty text).
fn push_delta(delta: Delta, out: &mut Vec<StreamEvent>) {
    let empty = match &delta {
        Delta::Text(text)
        | Delta::Thinking(text)
        | Delta::ThinkingSignature(text)
        | Delta::Refusal(text) => text.is_empty(),
        Delta::ToolCallArgs { arguments, .. } => arguments.is_empty(),
        Delta::ToolCallStart { .. } | Delta::Opaque(_) => false,
    };
    if !empty {
        out.push(StreamEvent::Delta { choice: 0, delta });
    }
}

/// Writes canonical events as an Anthropic event stream for a client. Only choice 0 is
/// forwarded: Anthropic has no choices.
#[derive(Debug)]
pub struct Encoder {
    /// Reported when the stream has no `Start` of its own.
    model: String,
    started: bool,
    /// `message_stop` or `error` was written; nothing follows.
    finished: bool,
    /// The next content block's index.
    next_index: u32,
    /// The open content block: its index and kind.
    open: Option<(u32, OpenBlock)>,
    /// The open thinking block got its signature: more thinking starts a new block.
    signed: bool,
    /// Block index of each tool call, by canonical tool-call index.
    tool_blocks: Vec<(u32, u32)>,
    usage: Usage,
    finish: Option<(FinishReason, Option<String>)>,
}

/// The kind of the open content block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text,
    Thinking,
    ToolUse(u32),
}

impl Encoder {
    /// An encoder for the answer to `request`.
    pub fn new(request: &ChatRequest) -> Encoder {
        Encoder {
            model: request.model.clone(),
            started: false,
            finished: false,
            next_index: 0,
            open: None,
            signed: false,
            tool_blocks: Vec::new(),
            usage: Usage::default(),
            finish: None,
        }
    }

    /// Appends the SSE bytes for one canonical event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        match event {
            StreamEvent::Start { id, model, .. } => self.start(Some(id), Some(model), out),
            StreamEvent::Delta { choice: 0, delta } => self.delta(delta, out),
            StreamEvent::Finish {
                choice: 0,
                reason,
                stop_sequence,
            } => self.finish = Some((reason.clone(), stop_sequence.clone())),
            StreamEvent::Usage(usage) => self.usage.merge(usage),
            StreamEvent::Delta { .. } | StreamEvent::Finish { .. } => {}
        }
    }

    /// The canonical stream ended normally: closes the open block, then `message_delta`
    /// (stop reason, usage) and `message_stop`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.start(None, None, out);
        self.close(out);
        let (reason, stop_sequence) = self.finish.take().unwrap_or_else(|| {
            let reason = if self.tool_blocks.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            };
            (reason, None)
        });
        let data = json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason_name(&reason, stop_sequence.as_deref()),
                "stop_sequence": stop_sequence,
            },
            "usage": usage_json(&self.usage),
        });
        emit(out, "message_delta", &data);
        emit(out, "message_stop", &json!({"type": "message_stop"}));
        self.finished = true;
    }

    /// An error after the stream started: an `error` event, after which nothing is written.
    pub fn error(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        emit(out, "error", &error::body(error));
        self.finished = true;
    }

    fn start(&mut self, id: Option<&str>, model: Option<&str>, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = id.map_or_else(generated_message_id, message_id);
        let mut usage = usage_json(&self.usage);
        usage["output_tokens"] = 0.into();
        let data = json!({
            "type": "message_start",
            "message": {
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model.unwrap_or(&self.model),
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage,
            },
        });
        emit(out, "message_start", &data);
        emit(out, "ping", &json!({"type": "ping"}));
    }

    fn delta(&mut self, delta: &Delta, out: &mut Vec<u8>) {
        match delta {
            Delta::Text(text) | Delta::Refusal(text) if !text.is_empty() => {
                let index = self.open_block(OpenBlock::Text, out);
                self.block_delta(index, json!({"type": "text_delta", "text": text}), out);
            }
            Delta::Thinking(thinking) if !thinking.is_empty() => {
                if self.signed {
                    self.close(out);
                }
                let index = self.open_block(OpenBlock::Thinking, out);
                let delta = json!({"type": "thinking_delta", "thinking": thinking});
                self.block_delta(index, delta, out);
            }
            Delta::ThinkingSignature(signature) if !signature.is_empty() => {
                let index = self.open_block(OpenBlock::Thinking, out);
                let delta = json!({"type": "signature_delta", "signature": signature});
                self.block_delta(index, delta, out);
                self.signed = true;
            }
            Delta::ToolCallStart { index, id, name } => {
                self.start_tool(*index, id, name, out);
            }
            Delta::ToolCallArgs { index, arguments } if !arguments.is_empty() => {
                let block = match self.tool_blocks.iter().find(|(call, _)| call == index) {
                    // A call whose block was already closed (arguments interleaved across
                    // calls) still gets its pieces: SDKs accumulate deltas by block index.
                    Some((_, block)) => *block,
                    None => self.start_tool(*index, &generated_tool_id(), "", out),
                };
                let delta = json!({"type": "input_json_delta", "partial_json": arguments});
                self.block_delta(block, delta, out);
            }
            Delta::Opaque(block) => self.whole_block(block, out),
            Delta::Text(_)
            | Delta::Refusal(_)
            | Delta::Thinking(_)
            | Delta::ThinkingSignature(_)
            | Delta::ToolCallArgs { .. } => {}
        }
    }

    /// A block given whole (a server-tool call or result, redacted thinking), written as
    /// Anthropic streams it: a call's input as one `input_json_delta` after a start with an
    /// empty input.
    fn whole_block(&mut self, block: &Value, out: &mut Vec<u8>) {
        self.start(None, None, out);
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let input = block.get("input").filter(|input| non_empty_object(input));
        match input {
            Some(input) => {
                let mut start = block.clone();
                start["input"] = json!({});
                self.block_start(index, start, out);
                let delta = json!({"type": "input_json_delta", "partial_json": input.to_string()});
                self.block_delta(index, delta, out);
            }
            None => self.block_start(index, block.clone(), out),
        }
        let data = json!({"type": "content_block_stop", "index": index});
        emit(out, "content_block_stop", &data);
    }

    /// Starts a `tool_use` block for canonical call `call`; returns its block index.
    fn start_tool(&mut self, call: u32, id: &str, name: &str, out: &mut Vec<u8>) -> u32 {
        self.start(None, None, out);
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
        self.block_start(index, block, out);
        self.open = Some((index, OpenBlock::ToolUse(call)));
        self.tool_blocks.push((call, index));
        index
    }

    /// Makes a text or thinking block the open one; returns its index.
    fn open_block(&mut self, kind: OpenBlock, out: &mut Vec<u8>) -> u32 {
        self.start(None, None, out);
        if let Some((index, open)) = self.open
            && open == kind
        {
            return index;
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let block = match kind {
            OpenBlock::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            // Tool-use blocks are opened by `start_tool`, never here.
            OpenBlock::Text | OpenBlock::ToolUse(_) => json!({"type": "text", "text": ""}),
        };
        self.block_start(index, block, out);
        self.open = Some((index, kind));
        index
    }

    fn block_start(&mut self, index: u32, block: Value, out: &mut Vec<u8>) {
        let data = json!({"type": "content_block_start", "index": index, "content_block": block});
        emit(out, "content_block_start", &data);
    }

    fn block_delta(&mut self, index: u32, delta: Value, out: &mut Vec<u8>) {
        let data = json!({"type": "content_block_delta", "index": index, "delta": delta});
        emit(out, "content_block_delta", &data);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        self.signed = false;
        if let Some((index, _)) = self.open.take() {
            let data = json!({"type": "content_block_stop", "index": index});
            emit(out, "content_block_stop", &data);
        }
    }
}

fn emit(out: &mut Vec<u8>, event: &str, data: &Value) {
    write_event(out, Some(event), data.to_string().as_bytes());
}

use crate::answer::unique_suffix as generated_suffix;

fn generated_message_id() -> String {
    format!("msg_{}", generated_suffix())
}

fn generated_tool_id() -> String {
    format!("toolu_{}", generated_suffix())
}

/// One event of an Anthropic stream as read.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStart,
    },
    ContentBlockStart {
        index: u64,
        content_block: Box<Value>,
    },
    ContentBlockDelta {
        index: u64,
        delta: WireDelta,
    },
    ContentBlockStop {
        #[serde(default)]
        index: Option<u64>,
    },
    MessageDelta {
        delta: WireMessageDelta,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: WireError,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct WireStart {
    id: String,
    model: String,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct WireMessageDelta {
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
}

#[cfg(test)]
mod tests;
