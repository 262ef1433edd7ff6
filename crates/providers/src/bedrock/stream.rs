//! ConverseStream answers into canonical stream events.
//!
//! The body is an `application/vnd.amazon.eventstream`: binary frames (a prelude with the
//! lengths and its CRC, typed headers, a payload, a CRC of the whole), read here with
//! `aws-smithy-eventstream`'s `MessageFrameDecoder` so chunks may be cut anywhere. A frame's
//! `:message-type` header says `event` or `exception`; an event's `:event-type` names the
//! event and its payload is JSON: `messageStart`, `contentBlockStart` (a tool call's id and
//! name), `contentBlockDelta` (text, a piece of a tool call's input, reasoning),
//! `contentBlockStop`, `messageStop` (the stop reason), `metadata` (usage). An exception's
//! `:exception-type` (`throttlingException`, …) becomes the decoder's error.
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html>,
//! <https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html> (the framing)

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::Value;
use switchyard_types::{ApiError, ChatRequest, Delta, ErrorKind, StreamEvent, Usage};

use super::JSON_TOOL;
use super::error;
use super::response::{
    WireServiceTier, WireUsage, emulates_json_schema, finish_reason, generated_id, stop_sequence,
    unix_now,
};

/// Reads an upstream ConverseStream body into canonical events, whatever the chunk boundaries.
#[derive(Debug)]
pub struct Decoder {
    frames: MessageFrameDecoder,
    /// Bytes received and not yet decoded into a frame.
    buffer: BytesMut,
    /// The frame decoder holds the prelude of a frame whose rest has not arrived.
    in_frame: bool,
    /// Reported as the model: Converse names none.
    model: String,
    /// The request asked for a JSON-schema answer, emulated with [`JSON_TOOL`].
    json_mode: bool,
    /// `Start` was emitted.
    started: bool,
    /// What each content block is, by Converse block index.
    blocks: Vec<(u64, BlockRole)>,
    /// Tool calls so far (canonical tool-call indexes count per choice).
    tool_calls: u32,
    /// `messageStop` arrived: the answer is complete (its `metadata` follows).
    stopped: bool,
}

/// How a content block's deltas are translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockRole {
    /// Text or reasoning: deltas carry their own kind.
    Content,
    /// A tool call with this canonical index.
    ToolCall(u32),
    /// The emulated JSON answer: its input pieces are answer text.
    JsonAnswer,
}

impl Decoder {
    /// A decoder for the answer to `request`.
    pub fn new(request: &ChatRequest) -> Decoder {
        Decoder {
            frames: MessageFrameDecoder::new(),
            buffer: BytesMut::new(),
            in_frame: false,
            model: request.model.clone(),
            json_mode: emulates_json_schema(request),
            started: false,
            blocks: Vec::new(),
            tool_calls: 0,
            stopped: false,
        }
    }

    /// Bytes held for an event (or frame) not yet complete.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Feeds raw upstream bytes (cut anywhere), appending canonical events to `out`. An
    /// exception frame is returned as the error it stands for.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.buffer.extend_from_slice(chunk);
        loop {
            let before = self.buffer.len();
            match self.frames.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => {
                    self.in_frame = false;
                    self.handle(&message, out)?;
                }
                Ok(DecodedFrame::Incomplete) => {
                    // Once 12 bytes are there the decoder keeps the prelude itself.
                    self.in_frame |= self.buffer.len() < before;
                    return Ok(());
                }
                Err(_) => {
                    return Err(ApiError::upstream(
                        ErrorKind::BadGateway,
                        "malformed event-stream frame from upstream Bedrock",
                    )
                    .with_code("upstream_malformed_chunk"));
                }
            }
        }
    }

    /// The upstream body ended; an error unless `messageStop` arrived and no frame is
    /// half-received.
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        if self.stopped && !self.in_frame && self.buffer.is_empty() {
            return Ok(());
        }
        Err(ApiError::upstream(
            ErrorKind::BadGateway,
            "the upstream Bedrock stream ended before it was complete",
        )
        .with_code("upstream_stream_cut"))
    }

    fn handle(&mut self, message: &Message, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        match header(message, ":message-type") {
            Some("event") => {}
            Some("exception") => {
                let kind = header(message, ":exception-type").unwrap_or("unknownException");
                return Err(error::exception(kind, message.payload()));
            }
            // The framing's own error message, with its code and text in headers.
            Some("error") => {
                let code = header(message, ":error-code").unwrap_or("InternalFailure");
                let text = header(message, ":error-message")
                    .unwrap_or("the upstream Bedrock stream reported an error");
                return Err(ApiError::upstream(
                    error::kind_from_type(code).unwrap_or(ErrorKind::BadGateway),
                    text,
                )
                .with_code(code));
            }
            _ => return Ok(()),
        }
        let Some(event_type) = header(message, ":event-type") else {
            return Ok(());
        };
        let event: WireEvent = serde_json::from_slice(message.payload()).map_err(|error| {
            ApiError::upstream(
                ErrorKind::BadGateway,
                format!(
                    "malformed {event_type} event from upstream Bedrock (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            )
            .with_code("upstream_malformed_chunk")
        })?;
        if self.stopped && event_type != "metadata" {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: generated_id(),
                model: self.model.clone(),
                created: unix_now(),
                system_fingerprint: None,
            });
        }
        match event_type {
            "contentBlockStart" => {
                if let Some(call) = event.start.and_then(|start| start.tool_use) {
                    self.tool_start(event.content_block_index, call, out);
                }
            }
            "contentBlockDelta" => {
                if let Some(delta) = event.delta {
                    self.delta(event.content_block_index, delta, out);
                }
            }
            "messageStop" => {
                self.stopped = true;
                let answered_in_json = self.tool_calls == 0
                    && self
                        .blocks
                        .iter()
                        .any(|(_, role)| *role == BlockRole::JsonAnswer);
                out.push(StreamEvent::Finish {
                    choice: 0,
                    reason: finish_reason(&event.stop_reason.unwrap_or_default(), answered_in_json),
                    stop_sequence: stop_sequence(event.additional_model_response_fields.as_ref()),
                });
            }
            "metadata" => {
                if let Some(usage) = event.usage {
                    out.push(StreamEvent::Usage(Usage {
                        service_tier: WireServiceTier::tier(event.service_tier.as_ref()),
                        ..usage.to_canonical()
                    }));
                }
            }
            // `messageStart` only opens the answer; `contentBlockStop` needs nothing.
            _ => {}
        }
        Ok(())
    }

    fn tool_start(&mut self, index: u64, call: WireToolStart, out: &mut Vec<StreamEvent>) {
        if self.json_mode && call.name == JSON_TOOL {
            self.blocks.push((index, BlockRole::JsonAnswer));
            return;
        }
        let call_index = self.tool_calls;
        self.tool_calls += 1;
        self.blocks.push((index, BlockRole::ToolCall(call_index)));
        push_delta(
            Delta::ToolCallStart {
                index: call_index,
                id: call.tool_use_id,
                name: call.name,
            },
            out,
        );
    }

    fn delta(&mut self, index: u64, delta: WireDelta, out: &mut Vec<StreamEvent>) {
        let role = self.role(index);
        if let Some(text) = delta.text {
            // A JSON-schema answer is a forced tool call: any text before it is preamble.
            if !self.json_mode {
                push_delta(Delta::Text(text), out);
            }
        } else if let Some(tool_use) = delta.tool_use {
            match role {
                Some(BlockRole::ToolCall(index)) => push_delta(
                    Delta::ToolCallArgs {
                        index,
                        arguments: tool_use.input,
                    },
                    out,
                ),
                Some(BlockRole::JsonAnswer) => push_delta(Delta::Text(tool_use.input), out),
                Some(BlockRole::Content) | None => {}
            }
        } else if let Some(reasoning) = delta.reasoning_content {
            if let Some(text) = reasoning.text {
                push_delta(Delta::Thinking(text), out);
            }
            if let Some(signature) = reasoning.signature {
                push_delta(Delta::ThinkingSignature(signature), out);
            }
            // Redacted reasoning has no canonical delta.
        }
        if role.is_none() {
            self.blocks.push((index, BlockRole::Content));
        }
    }

    fn role(&self, index: u64) -> Option<BlockRole> {
        self.blocks
            .iter()
            .rev()
            .find(|(block, _)| *block == index)
            .map(|(_, role)| *role)
    }
}

/// The string value of header `name`.
fn header<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message
        .headers()
        .iter()
        .find(|header| header.name().as_str() == name)
        .and_then(|header| header.value().as_string().ok())
        .map(|value| value.as_str())
}

/// Appends a choice-0 delta, skipping empty pieces.
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

/// The payload of any event: the fields each event type has, all optional.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent {
    /// `contentBlockStart`, `contentBlockDelta`, `contentBlockStop`.
    #[serde(default)]
    content_block_index: u64,
    /// `contentBlockStart`.
    start: Option<WireStart>,
    /// `contentBlockDelta`.
    delta: Option<WireDelta>,
    /// `messageStop`.
    stop_reason: Option<String>,
    /// `messageStop`.
    additional_model_response_fields: Option<Value>,
    /// `metadata`.
    usage: Option<WireUsage>,
    /// `metadata`.
    service_tier: Option<WireServiceTier>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStart {
    tool_use: Option<WireToolStart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToolStart {
    #[serde(default)]
    tool_use_id: String,
    #[serde(default)]
    name: String,
}

/// `ContentBlockDelta`, a union: `text`, `toolUse` (`input`: a piece of JSON text) or
/// `reasoningContent` (`text`, `signature` or `redactedContent`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDelta {
    text: Option<String>,
    tool_use: Option<WireToolDelta>,
    reasoning_content: Option<WireReasoningDelta>,
}

#[derive(Debug, Deserialize)]
struct WireToolDelta {
    #[serde(default)]
    input: String,
}

#[derive(Debug, Deserialize)]
struct WireReasoningDelta {
    text: Option<String>,
    signature: Option<String>,
}

#[cfg(test)]
mod tests;
