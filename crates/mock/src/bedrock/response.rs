//! Encodes an [`Answer`] as a Converse response, or as the ConverseStream event stream of
//! binary frames (`application/vnd.amazon.eventstream`, written with `aws-smithy-eventstream`),
//! shaped like Bedrock's own
//! (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html>).
//!
//! With `additionalModelRequestFields.thinking` enabled the answer opens with a signed
//! reasoning block, as Claude's do. A stream is `messageStart`; a reasoning block (a delta per
//! word, then its signature); the text block, a `contentBlockDelta` per word; per tool call a
//! `contentBlockStart` with its id and name, its input in pieces and a `contentBlockStop`;
//! `messageStop` with the stop reason; `metadata` with usage and metrics. Usage counts as
//! Bedrock does: `inputTokens` leaves out the tokens read from the cache.

use std::sync::OnceLock;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use serde_json::{Value, json};

use crate::behaviour::text::words;
use crate::behaviour::{Answer, Text};
use crate::ids;
use crate::options::{Fault, Finish, Options};
use crate::script::Script;

/// Text of the reasoning block.
const THOUGHT: &str = "Mock reasoning.";
/// Signature of the reasoning block.
const SIGNATURE: &str = "bW9jay1zaWduYXR1cmU=";
/// The text a guardrail puts in place of a blocked answer (Bedrock's default message).
const GUARDRAIL_MESSAGE: &str = "Sorry, the model cannot answer this question.";
/// The reported latency.
const LATENCY_MS: u64 = 42;

/// The frame a `malformed` stream fault inserts: well framed, its payload not JSON.
pub(crate) fn malformed_event() -> &'static [u8] {
    static FRAME: OnceLock<Vec<u8>> = OnceLock::new();
    FRAME.get_or_init(|| frame("event", "contentBlockDelta", b"{this is not json"))
}

/// What the content filter withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withheld {
    /// `fail=safety`: no content, stop reason `content_filtered`.
    Answer,
    /// `fail=blocked`: a guardrail's message, stop reason `guardrail_intervened`.
    Guardrail,
}

/// Everything one reply is made of.
#[derive(Debug)]
pub(crate) struct Reply<'a> {
    answer: &'a Answer,
    thought: Option<Text>,
    withheld: Option<Withheld>,
    call_ids: Vec<String>,
    prompt_tokens: u64,
    cached_tokens: u64,
    /// `fail=stream_exception`: the exception type sent in place of the rest of a stream.
    exception: Option<&'a str>,
    /// Content events sent before the exception.
    exception_after: usize,
    /// `additionalModelResponseFields.stop_sequence` was asked for.
    reports_stop_sequence: bool,
    /// `serviceTier.type` the request asked for (`priority`, `flex`, `default`), reported
    /// back as the tier that served it.
    service_tier: Option<&'static str>,
}

impl<'a> Reply<'a> {
    /// A reply to a request of `prompt_tokens` whose answer is `answer`; `thinking` adds a
    /// reasoning block; `exception` replaces the stream's rest after `cut_after` deltas.
    pub(crate) fn new(
        answer: &'a Answer,
        prompt_tokens: u64,
        thinking: bool,
        options: &Options,
        exception: Option<&'a str>,
    ) -> Self {
        let withheld = match options.fail {
            Some(Fault::Safety) => Some(Withheld::Answer),
            Some(Fault::Blocked) => Some(Withheld::Guardrail),
            Some(Fault::Status(_) | Fault::Hang | Fault::Reset | Fault::Cut | Fault::Malformed)
            | None => None,
        };
        let thought = (thinking && withheld.is_none()).then(|| Text::words(THOUGHT.to_owned()));
        Self {
            answer,
            thought,
            withheld,
            call_ids: answer
                .tool_calls
                .iter()
                .map(|_| ids::new("tooluse_", 22))
                .collect(),
            prompt_tokens,
            cached_tokens: options.cached_tokens.min(prompt_tokens),
            exception,
            exception_after: options.cut_after,
            reports_stop_sequence: false,
            service_tier: None,
        }
    }

    /// Serves the call at `tier` (the request's `serviceTier.type`), reported in the answer
    /// and in the stream's `metadata`.
    pub(crate) fn at_tier(mut self, tier: Option<&'static str>) -> Self {
        self.service_tier = tier;
        self
    }

    /// Reports Claude's `stop_sequence` in `additionalModelResponseFields`, as Bedrock does
    /// when it is asked for by path.
    pub(crate) fn reporting_stop_sequence(mut self, reports: bool) -> Self {
        self.reports_stop_sequence = reports;
        self
    }

    /// `additionalModelResponseFields`, when asked for.
    fn additional_fields(&self) -> Option<Value> {
        self.reports_stop_sequence
            .then(|| json!({"stop_sequence": self.answer.stop_sequence}))
    }

    /// The Converse response JSON.
    pub(crate) fn response(&self) -> Vec<u8> {
        let mut content = Vec::new();
        if let Some(thought) = &self.thought {
            content.push(json!({"reasoningContent": {
                "reasoningText": {"text": thought.content, "signature": SIGNATURE}
            }}));
        }
        if let Some(text) = self.text().filter(|text| !text.is_empty()) {
            content.push(json!({"text": text}));
        }
        for (call, id) in self.answer.tool_calls.iter().zip(&self.call_ids) {
            content.push(json!({"toolUse": {
                "toolUseId": id, "name": call.name, "input": call.arguments
            }}));
        }
        let mut body = json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": self.stop_reason(),
            "usage": self.usage(),
            "metrics": {"latencyMs": LATENCY_MS},
        });
        if let Some(fields) = self.additional_fields() {
            body["additionalModelResponseFields"] = fields;
        }
        if let Some(tier) = self.service_tier {
            body["serviceTier"] = json!({ "type": tier });
        }
        body.to_string().into_bytes()
    }

    /// Writes the stream into `script` (see the module docs).
    pub(crate) fn stream(&self, script: &mut Script) {
        let mut writer = Writer {
            script,
            contents: 0,
            exception: self.exception.map(|kind| (kind, self.exception_after)),
            ended: false,
        };
        writer.structural("messageStart", &json!({"role": "assistant"}));
        let mut index = 0_u64;
        if let Some(thought) = &self.thought {
            for piece in thought.pieces() {
                writer.content(&json!({
                    "contentBlockIndex": index,
                    "delta": {"reasoningContent": {"text": piece}}
                }));
            }
            writer.content(&json!({
                "contentBlockIndex": index,
                "delta": {"reasoningContent": {"signature": SIGNATURE}}
            }));
            writer.structural("contentBlockStop", &json!({"contentBlockIndex": index}));
            index += 1;
        }
        let pieces: Vec<&str> = match (self.withheld, &self.answer.text) {
            (Some(Withheld::Guardrail), _) => vec![GUARDRAIL_MESSAGE],
            (Some(Withheld::Answer), _) | (None, None) => Vec::new(),
            (None, Some(text)) => text.pieces().filter(|piece| !piece.is_empty()).collect(),
        };
        if !pieces.is_empty() {
            for piece in pieces {
                writer.content(&json!({"contentBlockIndex": index, "delta": {"text": piece}}));
            }
            writer.structural("contentBlockStop", &json!({"contentBlockIndex": index}));
            index += 1;
        }
        for (call, id) in self.answer.tool_calls.iter().zip(&self.call_ids) {
            writer.structural(
                "contentBlockStart",
                &json!({
                    "contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": id, "name": call.name}}
                }),
            );
            for piece in call.argument_pieces() {
                writer.content(&json!({
                    "contentBlockIndex": index,
                    "delta": {"toolUse": {"input": piece}}
                }));
            }
            writer.structural("contentBlockStop", &json!({"contentBlockIndex": index}));
            index += 1;
        }
        let mut stop = json!({"stopReason": self.stop_reason()});
        if let Some(fields) = self.additional_fields() {
            stop["additionalModelResponseFields"] = fields;
        }
        writer.terminal("messageStop", &stop);
        let mut metadata = json!({"usage": self.usage(), "metrics": {"latencyMs": LATENCY_MS}});
        if let Some(tier) = self.service_tier {
            metadata["serviceTier"] = json!({ "type": tier });
        }
        writer.terminal("metadata", &metadata);
    }

    /// The answer text as sent: a guardrail's message in place of a blocked answer.
    fn text(&self) -> Option<&str> {
        match self.withheld {
            Some(Withheld::Guardrail) => Some(GUARDRAIL_MESSAGE),
            Some(Withheld::Answer) => None,
            None => self.answer.text.as_ref().map(|text| text.content.as_str()),
        }
    }

    fn stop_reason(&self) -> &'static str {
        match (self.answer.finish, self.withheld) {
            (_, Some(Withheld::Guardrail)) => "guardrail_intervened",
            (Finish::ContentFilter, _) => "content_filtered",
            (Finish::Stop, None) if self.answer.stop_sequence.is_some() => "stop_sequence",
            (Finish::Stop, _) => "end_turn",
            (Finish::Length, _) => "max_tokens",
            (Finish::ToolCalls, _) => "tool_use",
        }
    }

    /// `usage`: reasoning counts as output, as Claude's does.
    fn usage(&self) -> Value {
        let input = self.prompt_tokens - self.cached_tokens;
        let output = self.answer.completion_tokens
            + self
                .thought
                .as_ref()
                .map_or(0, |thought| words(&thought.content));
        let mut usage = json!({
            "inputTokens": input,
            "outputTokens": output,
            "totalTokens": input + output + self.cached_tokens,
        });
        if self.cached_tokens > 0
            && let Some(usage) = usage.as_object_mut()
        {
            usage.insert("cacheReadInputTokens".into(), self.cached_tokens.into());
            usage.insert("cacheWriteInputTokens".into(), 0.into());
        }
        usage
    }
}

/// Writes events into a script, replacing the rest of the stream with an exception frame
/// once the `stream_exception` fault strikes.
struct Writer<'s> {
    script: &'s mut Script,
    contents: usize,
    /// The exception type and the content events before it.
    exception: Option<(&'s str, usize)>,
    ended: bool,
}

impl Writer<'_> {
    fn structural(&mut self, event_type: &str, payload: &Value) {
        if !self.ended {
            self.script
                .structural(|buffer| buffer.extend(event_frame(event_type, payload)));
        }
    }

    fn content(&mut self, payload: &Value) {
        if self.ended {
            return;
        }
        if let Some((kind, after)) = self.exception
            && self.contents >= after
        {
            return self.throw(kind);
        }
        self.contents += 1;
        self.script
            .content(|buffer| buffer.extend(event_frame("contentBlockDelta", payload)));
    }

    fn terminal(&mut self, event_type: &str, payload: &Value) {
        if self.ended {
            return;
        }
        if let Some((kind, _)) = self.exception {
            return self.throw(kind);
        }
        self.script
            .terminal(|buffer| buffer.extend(event_frame(event_type, payload)));
    }

    fn throw(&mut self, kind: &str) {
        self.ended = true;
        let payload = json!({"message": exception_message(kind)}).to_string();
        self.script.terminal(|buffer| {
            buffer.extend(frame("exception", kind, payload.as_bytes()));
        });
    }
}

/// The message Bedrock sends with a stream exception.
pub(crate) fn exception_message(kind: &str) -> &'static str {
    match kind {
        "throttlingException" => "Too many requests, please wait before trying again.",
        "validationException" => "Input validation failed. Check your request parameters.",
        "serviceUnavailableException" => "The service isn't currently available. Try again later.",
        "internalServerException" => "An internal server error occurred. Retry your request.",
        _ => "The model stream was interrupted. Retry your request.",
    }
}

/// An `event` frame of type `event_type` with a JSON payload.
fn event_frame(event_type: &str, payload: &Value) -> Vec<u8> {
    frame("event", event_type, payload.to_string().as_bytes())
}

/// One frame: `message_type` is `event` (then `kind` is the `:event-type`) or `exception`
/// (then it is the `:exception-type`).
fn frame(message_type: &str, kind: &str, payload: &[u8]) -> Vec<u8> {
    let kind_header = if message_type == "exception" {
        ":exception-type"
    } else {
        ":event-type"
    };
    let string = |value: &str| HeaderValue::String(value.to_owned().into());
    let message = Message::new(payload.to_vec())
        .add_header(Header::new(kind_header, string(kind)))
        .add_header(Header::new(":content-type", string("application/json")))
        .add_header(Header::new(":message-type", string(message_type)));
    let mut bytes = Vec::with_capacity(payload.len() + 96);
    if let Err(error) = write_message_to(&message, &mut bytes) {
        // Only headers or payloads over the format's limits fail; the mock writes neither.
        tracing::warn!(%error, "Could not write an event-stream frame");
    }
    bytes
}

#[cfg(test)]
mod tests {
    use aws_smithy_eventstream::frame::read_message_from;

    use super::*;

    #[test]
    fn frames_read_back() {
        let bytes = event_frame("messageStop", &json!({"stopReason": "end_turn"}));
        let message = read_message_from(bytes.as_slice()).expect("a valid frame");
        let headers: Vec<(&str, &str)> = message
            .headers()
            .iter()
            .map(|header| {
                (
                    header.name().as_str(),
                    header.value().as_string().expect("string").as_str(),
                )
            })
            .collect();
        assert_eq!(
            headers,
            [
                (":event-type", "messageStop"),
                (":content-type", "application/json"),
                (":message-type", "event")
            ]
        );
        assert_eq!(message.payload().as_ref(), br#"{"stopReason":"end_turn"}"#);
        assert!(read_message_from(malformed_event()).is_ok());
    }
}
