//! The same-dialect relay: when a client and its upstream speak the same dialect and no stage
//! needs to see the content, the upstream's answer goes to the client as the upstream wrote it.
//!
//! Only the SSE framing is parsed (to find event boundaries); each event's JSON is validated
//! without being built, and usage is read where the dialect puts it, so accounting and the
//! stream's error semantics are the same as on the translating path at a fraction of its cost.
//! Fields the gateway does not know reach the client untouched.

use serde::Deserialize;
use serde::de::IgnoredAny;
use switchyard_types::{ApiError, ErrorKind, ServiceTier, Usage, WireFormat};

use crate::anthropic::response::WireUsage;
use crate::json::scan;
use crate::openai::wire::UsageIn;
use crate::provider::BodyReader;
use crate::sse::{SseEventRef, SseParser, write_event, write_event_lines};
use crate::{anthropic, openai};

mod text;

pub use text::{Mark, Piece, Sent, TextPart, rewrite};

/// A non-streamed answer relayed as the upstream wrote it.
#[derive(Debug)]
pub struct RelayedResponse {
    /// The upstream's body.
    pub body: bytes::Bytes,
    /// The usage it reports.
    pub usage: Usage,
}

/// Reads the usage from an answer body, checking it is a JSON object.
pub(crate) fn response_usage(format: WireFormat, body: &[u8]) -> Result<Usage, ApiError> {
    #[derive(Deserialize)]
    struct OpenAiProbe {
        #[serde(default)]
        usage: Option<UsageIn>,
        #[serde(default)]
        service_tier: Option<ServiceTier>,
    }
    #[derive(Deserialize)]
    struct AnthropicProbe {
        #[serde(default)]
        usage: WireUsage,
    }
    let usage = match format {
        WireFormat::OpenAi => crate::json::from_bytes::<OpenAiProbe>(body).map(|probe| Usage {
            service_tier: probe.service_tier.unwrap_or_default(),
            ..probe
                .usage
                .map(|usage| usage.to_usage())
                .unwrap_or_default()
        }),
        WireFormat::Anthropic => {
            crate::json::from_bytes::<AnthropicProbe>(body).map(|probe| probe.usage.to_canonical())
        }
    };
    usage.map_err(|error| {
        ApiError::upstream(
            ErrorKind::BadGateway,
            format!("The upstream sent an unreadable response: {error}"),
        )
    })
}

/// A stream relayed event by event.
#[derive(Debug)]
pub struct Relay {
    reader: BodyReader,
    /// The most an unfinished event may hold.
    event_cap: usize,
    sse: SseParser,
    meter: Meter,
    ended: bool,
    /// Removes the endpoint's key from an error event's message.
    scrub: crate::provider::Scrub,
    /// An error that came in the same chunk as events before it: handed out after them.
    failure: Option<Box<ApiError>>,
    /// For a reader of the events (an output guard): a mark per event written, since the
    /// last [`Relay::take_marks`].
    marks: Option<Vec<Mark>>,
    /// Anthropic content blocks whose input is not read as text ([`Mark`]).
    opaque_blocks: u64,
}

/// What the relay learns from the events it passes on.
#[derive(Debug)]
struct Meter {
    format: WireFormat,
    /// The client asked for OpenAI's usage chunk (the upstream is always asked for it).
    client_wants_usage: bool,
    usage: WireUsage,
    openai_usage: Option<Usage>,
    /// `[DONE]` or `message_stop` arrived.
    complete: bool,
    /// Events that carried content (OpenAI chunks with choices, Anthropic content deltas):
    /// about a token each, for an estimate when the upstream reports no usage.
    content_events: u64,
    /// The prompt's tokens as the gateway estimated them, for the usage chunk a client asked
    /// for when the upstream sends none.
    prompt_estimate: u64,
    /// The first OpenAI chunk's `id`, `created` and `model` (as written), for that chunk.
    opening: Option<[String; 3]>,
    /// Keep the opening even when the client did not ask for usage (a reader may end the
    /// stream with chunks of its own).
    keep_opening: bool,
}

/// What the relay reads from an OpenAI chunk.
struct OpenAiChunk<'a> {
    /// `choices` has at least one element.
    has_choices: bool,
    /// The raw text of `choices`, when the scanner read the chunk (for a reader's [`Mark`]).
    choices: Option<&'a str>,
    /// The usage, with the service tier the chunk names.
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

impl<'a> OpenAiChunk<'a> {
    fn read(data: &'a str) -> Result<OpenAiChunk<'a>, serde_json::Error> {
        if let Some(chunk) = OpenAiChunk::scan(data) {
            return Ok(chunk);
        }
        #[derive(Deserialize)]
        struct Probe {
            #[serde(default)]
            choices: Option<Vec<IgnoredAny>>,
            #[serde(default)]
            usage: Option<UsageIn>,
            #[serde(default)]
            service_tier: Option<ServiceTier>,
            #[serde(default)]
            error: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_str(data)?;
        Ok(OpenAiChunk {
            choices: None,
            has_choices: probe.choices.is_some_and(|choices| !choices.is_empty()),
            usage: probe.usage.map(|usage| Usage {
                service_tier: probe.service_tier.unwrap_or_default(),
                ..usage.to_usage()
            }),
            error: probe.error,
        })
    }

    /// The common case, without serde; `None` for anything else (an error chunk, a member of
    /// a surprising type, text the scanner refuses).
    fn scan(data: &'a str) -> Option<OpenAiChunk<'a>> {
        let [choices, usage, error, tier] =
            scan::members(data, ["choices", "usage", "error", "service_tier"])?;
        if is_set(error) {
            return None;
        }
        let has_choices = match choices {
            None | Some("null") => false,
            Some(array) if array.starts_with('[') => !array[1..].trim_start().starts_with(']'),
            Some(_) => return None,
        };
        Some(OpenAiChunk {
            has_choices,
            choices,
            usage: parsed::<UsageIn>(usage)?.map(|usage| Usage {
                service_tier: parsed::<ServiceTier>(tier).flatten().unwrap_or_default(),
                ..usage.to_usage()
            }),
            error: None,
        })
    }
}

#[derive(Deserialize)]
struct AnthropicEventProbe<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    message: Option<AnthropicMessageProbe>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<anthropic::error::WireError>,
}

impl<'a> AnthropicEventProbe<'a> {
    fn read(data: &'a str) -> Result<AnthropicEventProbe<'a>, serde_json::Error> {
        match AnthropicEventProbe::scan(data) {
            Some(probe) => Ok(probe),
            None => serde_json::from_str(data),
        }
    }

    /// The common case, without serde; `None` for anything else (an error event, an escaped
    /// type, a member of a surprising type, text the scanner refuses).
    fn scan(data: &'a str) -> Option<AnthropicEventProbe<'a>> {
        let [kind, message, usage, error] =
            scan::members(data, ["type", "message", "usage", "error"])?;
        if is_set(error) {
            return None;
        }
        let kind = kind?.strip_prefix('"')?.strip_suffix('"')?;
        if kind.contains('\\') {
            return None;
        }
        Some(AnthropicEventProbe {
            kind: std::borrow::Cow::Borrowed(kind),
            message: parsed(message)?,
            usage: parsed(usage)?,
            error: None,
        })
    }
}

/// Whether a member the scanner found is there and not `null`.
fn is_set(member: Option<&str>) -> bool {
    member.is_some_and(|text| text != "null")
}

/// A member the scanner found, deserialized (absent and `null` are `None`); the outer `None`
/// when serde refuses it, which leaves the whole event to serde.
fn parsed<T: serde::de::DeserializeOwned>(member: Option<&str>) -> Option<Option<T>> {
    match member {
        None => Some(None),
        Some(text) => serde_json::from_str(text).ok(),
    }
}

#[derive(Deserialize)]
struct AnthropicMessageProbe {
    #[serde(default)]
    usage: WireUsage,
}

impl Relay {
    pub(crate) fn new(
        reader: BodyReader,
        event_cap: usize,
        format: WireFormat,
        client_wants_usage: bool,
        scrub: crate::provider::Scrub,
    ) -> Relay {
        Relay {
            scrub,
            failure: None,
            marks: None,
            opaque_blocks: 0,
            reader,
            event_cap,
            sse: SseParser::new(),
            meter: Meter {
                format,
                client_wants_usage,
                usage: WireUsage::default(),
                openai_usage: None,
                complete: false,
                content_events: 0,
                prompt_estimate: 0,
                opening: None,
                keep_opening: false,
            },
            ended: false,
        }
    }

    /// Events that carried content so far (about a token each).
    pub fn content_events(&self) -> u64 {
        self.meter.content_events
    }

    /// The prompt's tokens as the caller estimates them: the usage chunk an OpenAI client asked
    /// for (`include_usage`) reports them when the upstream ends its stream without one.
    pub fn set_prompt_estimate(&mut self, tokens: u64) {
        self.meter.prompt_estimate = tokens;
    }

    /// Marks each event written from now on with what a reader needs of it ([`Mark`]): the
    /// marks of what each [`Relay::next`] appended are had from [`Relay::take_marks`].
    pub fn mark_events(&mut self) {
        self.marks = Some(Vec::new());
        // The opening chunk's id, time and model, for the finishes a reader's stop writes.
        self.meter.keep_opening = true;
    }

    /// The marks of the events the last [`Relay::next`] appended (their ends counted from
    /// where it began appending), the last reaching its end.
    pub fn take_marks(&mut self) -> Vec<Mark> {
        self.marks.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Ends the stream for the client as its dialect ends an answer a filter stopped, after
    /// what `sent` says went out: each choice still open finishes with `content_filter`
    /// (OpenAI, then its usage chunk if the client asked for one, and `[DONE]`), or the open
    /// content block closes and the message stops with `refusal` (Anthropic).
    pub fn write_filtered_end(&self, sent: &Sent, choices: u32, out: &mut Vec<u8>) {
        let usage = self.usage();
        match self.meter.format {
            WireFormat::OpenAi => {
                let [id, created, model] = self.meter.opening();
                for choice in (0..choices.min(64)).filter(|choice| !sent.finished(*choice)) {
                    let chunk = format!(
                        "{{\"id\":{id},\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model},\"choices\":[{{\"index\":{choice},\"delta\":{{}},\"finish_reason\":\"content_filter\"}}]}}"
                    );
                    write_event(out, None, chunk.as_bytes());
                }
                if self.meter.client_wants_usage {
                    if self.meter.openai_usage.is_some() {
                        self.meter
                            .usage_chunk(usage.prompt_tokens, usage.completion_tokens, out);
                    } else {
                        self.meter.estimated_usage_chunk(out);
                    }
                }
                write_event(out, None, b"[DONE]");
            }
            WireFormat::Anthropic => {
                if let Some(index) = sent.open_block() {
                    let data = format!("{{\"type\":\"content_block_stop\",\"index\":{index}}}");
                    write_event(out, Some("content_block_stop"), data.as_bytes());
                }
                let data = format!(
                    "{{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"refusal\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{}}}}}",
                    usage.completion_tokens
                );
                write_event(out, Some("message_delta"), data.as_bytes());
                write_event(out, Some("message_stop"), br#"{"type":"message_stop"}"#);
            }
        }
    }

    /// Usage seen so far.
    pub fn usage(&self) -> Usage {
        match self.meter.format {
            WireFormat::OpenAi => self.meter.openai_usage.unwrap_or_default(),
            WireFormat::Anthropic => self.meter.usage.to_canonical(),
        }
    }

    /// Appends the bytes of the next upstream chunk for the client. `None` once the stream
    /// ended cleanly; an error (a cut, a malformed event, an error event) ends it too.
    pub async fn next(&mut self, out: &mut Vec<u8>) -> Option<Result<(), ApiError>> {
        if self.ended {
            return self.failure.take().map(|error| Err(*error));
        }
        let start = out.len();
        while out.len() == start {
            let chunk = match self.reader.next_chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    self.ended = true;
                    if self.meter.complete && !self.sse.has_pending() {
                        return None;
                    }
                    return Some(Err(ApiError::upstream(
                        ErrorKind::BadGateway,
                        "The upstream stream ended before it was complete",
                    )
                    .with_code("upstream_stream_cut")));
                }
                Err(error) => {
                    self.ended = true;
                    return Some(Err(error));
                }
            };
            out.reserve(chunk.len());
            let meter = &mut self.meter;
            let marks = &mut self.marks;
            let opaque = &mut self.opaque_blocks;
            let pushed = self.sse.push_each(&chunk, |event| {
                let choices = meter.relay(event, out)?;
                if let Some(marks) = marks
                    && out.len() > marks.last().map_or(start, |mark| start + mark.end)
                {
                    let end = out.len() - start;
                    marks.push(Mark::read(meter.format, event.data, choices, end, opaque));
                }
                Ok(())
            });
            if let Err(error) = pushed {
                self.ended = true;
                // An error event's message may quote the key the upstream refused.
                let error = self.scrub.error(error);
                if out.len() > start {
                    // The events before it go out first: the client keeps every token.
                    self.failure = Some(Box::new(error));
                    return Some(Ok(()));
                }
                return Some(Err(error));
            }
            if self.sse.pending() > self.event_cap {
                self.ended = true;
                return Some(Err(crate::provider::event_too_large(self.event_cap)));
            }
            // An upstream's keep-alive goes on to the client (and to the proxies between), so
            // a long pause before the next token does not look like a dead connection.
            if self.sse.take_comment() && out.len() == start {
                out.extend_from_slice(crate::sse::KEEP_ALIVE);
                if let Some(marks) = &mut self.marks {
                    marks.push(Mark::plain(out.len() - start));
                }
            }
        }
        Some(Ok(()))
    }

    /// Writes, for the client, the error event of this dialect.
    pub fn write_error(&self, error: &ApiError, out: &mut Vec<u8>) {
        match self.meter.format {
            WireFormat::OpenAi => write_event(out, None, &openai::error::encode(error)),
            WireFormat::Anthropic => {
                write_event(out, Some("error"), &anthropic::error::encode(error));
            }
        }
    }
}

impl Meter {
    /// Checks and meters one event, and writes it for the client unless it is left out.
    fn relay<'d>(
        &mut self,
        event: SseEventRef<'d>,
        out: &mut Vec<u8>,
    ) -> Result<Option<&'d str>, ApiError> {
        if self.complete {
            return Ok(None);
        }
        let data = event.data;
        let mut choices = None;
        match self.format {
            WireFormat::OpenAi => {
                if data.trim() == "[DONE]" {
                    self.complete = true;
                    if self.client_wants_usage && self.openai_usage.is_none() {
                        self.estimated_usage_chunk(out);
                    }
                    write_event_lines(out, event.event, data.as_bytes(), event.multiline);
                    return Ok(None);
                }
                let chunk = OpenAiChunk::read(data).map_err(|error| malformed(&error))?;
                choices = chunk.choices;
                if chunk.has_choices {
                    self.content_events += 1;
                }
                if self.opening.is_none() && (self.client_wants_usage || self.keep_opening) {
                    let [id, created, model] =
                        scan::members(data, ["id", "created", "model"]).unwrap_or([None; 3]);
                    self.opening = Some([
                        id.unwrap_or("\"\"").to_owned(),
                        created.unwrap_or("0").to_owned(),
                        model.unwrap_or("\"\"").to_owned(),
                    ]);
                }
                if let Some(error) = chunk.error {
                    let message = error
                        .get("message")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("The upstream reported an error mid-stream");
                    return Err(ApiError::upstream(ErrorKind::Internal, message));
                }
                if let Some(usage) = chunk.usage {
                    self.openai_usage = Some(usage);
                    // The upstream is always asked for usage; a client that did not ask does
                    // not get the usage-only chunk.
                    if !self.client_wants_usage && !chunk.has_choices {
                        return Ok(None);
                    }
                } else if !self.client_wants_usage
                    && let Some(trimmed) = data.strip_suffix(",\"usage\":null}")
                {
                    // Nor the `"usage":null` that asking adds to every chunk (OpenAI writes it
                    // last; any other placement is left alone).
                    write_event_lines(out, event.event, trimmed.as_bytes(), event.multiline);
                    out.truncate(out.len() - 2);
                    out.extend_from_slice(b"}\n\n");
                    return Ok(choices);
                }
            }
            WireFormat::Anthropic => {
                let probe = AnthropicEventProbe::read(data).map_err(|error| malformed(&error))?;
                match probe.kind.as_ref() {
                    "message_start" => {
                        if let Some(message) = &probe.message {
                            self.usage.update(&message.usage);
                        }
                    }
                    "message_delta" => {
                        if let Some(usage) = &probe.usage {
                            self.usage.update(usage);
                        }
                    }
                    "message_stop" => self.complete = true,
                    "content_block_delta" => self.content_events += 1,
                    "error" => {
                        let error = probe.error.unwrap_or(anthropic::error::WireError {
                            kind: None,
                            message: None,
                        });
                        let kind = error.kind.unwrap_or_else(|| "api_error".to_owned());
                        return Err(ApiError::upstream(
                            anthropic::error::kind_from_type(&kind),
                            error.message.unwrap_or_else(|| {
                                "The upstream reported an error mid-stream".to_owned()
                            }),
                        )
                        .with_code(kind));
                    }
                    _ => {}
                }
            }
        }
        write_event_lines(out, event.event, data.as_bytes(), event.multiline);
        Ok(choices)
    }
}

impl Meter {
    /// The first chunk's `id`, `created` and `model` as written (empty ones if none came).
    fn opening(&self) -> [String; 3] {
        self.opening
            .clone()
            .unwrap_or_else(|| ["\"\"".to_owned(), "0".to_owned(), "\"\"".to_owned()])
    }

    /// The usage chunk a client asked for, when the upstream ended its stream without one
    /// (llama.cpp's server does): the prompt as the gateway estimated it, a token per content
    /// chunk. Estimates, as the spend record says; better than no usage at all.
    fn estimated_usage_chunk(&self, out: &mut Vec<u8>) {
        self.usage_chunk(self.prompt_estimate, self.content_events, out);
    }

    /// A usage-only chunk with these counts, under the stream's opening id, time and model.
    fn usage_chunk(&self, prompt: u64, completion: u64, out: &mut Vec<u8>) {
        let [id, created, model] = self.opening();
        let chunk = format!(
            "{{\"id\":{id},\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model},\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{}}}}}",
            prompt + completion
        );
        write_event_lines(out, None, chunk.as_bytes(), false);
    }
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::upstream(
        ErrorKind::BadGateway,
        format!("The upstream sent a malformed stream event: {error}"),
    )
    .with_code("upstream_malformed_chunk")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The facts the relay acts on, however they were read.
    fn openai_facts(chunk: &OpenAiChunk) -> (bool, Option<Usage>, bool) {
        (chunk.has_choices, chunk.usage, chunk.error.is_some())
    }

    fn anthropic_facts(probe: &AnthropicEventProbe<'_>) -> (String, Option<Usage>, Option<Usage>) {
        (
            probe.kind.to_string(),
            probe
                .message
                .as_ref()
                .map(|message| message.usage.to_canonical()),
            probe.usage.map(WireUsage::to_canonical),
        )
    }

    #[test]
    fn openai_chunks_read_the_same_with_or_without_serde() {
        let chunks = [
            // From OpenAI's streaming reference, and the usage chunk `include_usage` adds.
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"Hello \"you\"\n"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#,
            r#"{"id":"chatcmpl-1","choices":[ ],"usage":{"prompt_tokens":1}}"#,
            r#"{"id":"chatcmpl-1","service_tier":"flex","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
            r#"{"choices":null}"#,
            r#"{}"#,
        ];
        for data in chunks {
            let fast = OpenAiChunk::scan(data).unwrap_or_else(|| panic!("slow path for {data}"));
            let spaced = format!(" {data}");
            let slow = OpenAiChunk::read(&spaced).unwrap();
            assert_eq!(openai_facts(&fast), openai_facts(&slow), "{data}");
        }
        let usage = OpenAiChunk::scan(chunks[2]).unwrap().usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (9, 12));
        assert_eq!((usage.cache_read_tokens, usage.reasoning_tokens), (4, 2));
        let flex = OpenAiChunk::scan(chunks[4]).unwrap().usage.unwrap();
        assert_eq!(flex.service_tier, ServiceTier::Flex);
    }

    #[test]
    fn openai_chunks_the_scanner_leaves_to_serde_get_serde_verdicts() {
        // An error chunk, an escaped key, wrong types, broken text.
        let error = r#"{"error":{"message":"overloaded","type":"server_error"}}"#;
        assert!(OpenAiChunk::scan(error).is_none());
        assert!(OpenAiChunk::read(error).unwrap().error.is_some());
        let escaped = r#"{"choices":[],"\u0075sage":{"prompt_tokens":3}}"#;
        assert!(OpenAiChunk::scan(escaped).is_none());
        assert_eq!(
            OpenAiChunk::read(escaped)
                .unwrap()
                .usage
                .unwrap()
                .prompt_tokens,
            3
        );
        for bad in [
            r#"{"choices":5}"#,
            r#"{"usage":"many"}"#,
            r#"{"choices":[],}"#,
            r#"{"choices":[]"#,
        ] {
            assert!(OpenAiChunk::scan(bad).is_none(), "{bad}");
            assert!(OpenAiChunk::read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn anthropic_events_read_the_same_with_or_without_serde() {
        // From Anthropic's streaming reference.
        let events = [
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":7}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            r#"{"type":"message_stop"}"#,
        ];
        for data in events {
            let fast =
                AnthropicEventProbe::scan(data).unwrap_or_else(|| panic!("slow path for {data}"));
            let spaced = format!("{data} ");
            let slow = AnthropicEventProbe::read(&spaced).unwrap();
            assert_eq!(anthropic_facts(&fast), anthropic_facts(&slow), "{data}");
        }
        let start = AnthropicEventProbe::scan(events[0]).unwrap();
        assert_eq!(
            start.message.unwrap().usage.to_canonical().prompt_tokens,
            32
        );
    }

    #[test]
    fn anthropic_events_the_scanner_leaves_to_serde_get_serde_verdicts() {
        let error =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert!(AnthropicEventProbe::scan(error).is_none());
        let probe = AnthropicEventProbe::read(error).unwrap();
        assert_eq!(
            probe.error.unwrap().kind.as_deref(),
            Some("overloaded_error")
        );
        for bad in [r#"{"index":0}"#, r#"{"type":7}"#, r#"{"type":"ping""#] {
            assert!(AnthropicEventProbe::scan(bad).is_none(), "{bad}");
            assert!(AnthropicEventProbe::read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answer_usage_is_read_from_either_dialect() {
        let openai = br#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1}}}"#;
        let usage = response_usage(WireFormat::OpenAi, openai).unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 2));
        assert_eq!(usage.cache_read_tokens, 1);
        let anthropic = br#"{"id":"msg","type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":4,"cache_creation_input_tokens":2}}"#;
        let usage = response_usage(WireFormat::Anthropic, anthropic).unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 4));
        assert_eq!(usage.cache_write_tokens, 2);
        // The tier that served the call and the hour-long cache writes, as each dialect says
        // them (OpenAI at the top, Anthropic inside usage); a tier unknown here is standard.
        let openai = br#"{"id":"c","choices":[],"service_tier":"priority","usage":{"prompt_tokens":5,"completion_tokens":2}}"#;
        let usage = response_usage(WireFormat::OpenAi, openai).unwrap();
        assert_eq!(usage.service_tier, ServiceTier::Priority);
        let anthropic = br#"{"id":"msg","type":"message","content":[],"usage":{"input_tokens":3,"output_tokens":4,"cache_creation_input_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":4,"ephemeral_1h_input_tokens":6},"service_tier":"batch"}}"#;
        let usage = response_usage(WireFormat::Anthropic, anthropic).unwrap();
        assert_eq!(
            (usage.cache_write_tokens, usage.cache_write_1h_tokens),
            (10, 6)
        );
        assert_eq!(usage.service_tier, ServiceTier::Batch);
        let unknown = br#"{"choices":[],"service_tier":"scale","usage":{"prompt_tokens":1}}"#;
        let usage = response_usage(WireFormat::OpenAi, unknown).unwrap();
        assert_eq!(usage.service_tier, ServiceTier::Standard);
        // No usage at all is zero usage; a body that is not JSON is a bad gateway.
        assert_eq!(
            response_usage(WireFormat::OpenAi, br#"{"choices":[]}"#).unwrap(),
            Usage::default()
        );
        for bad in [
            &b"{\"usage\":"[..],
            b"<html>",
            b"{\"usage\":{\"prompt_tokens\":-1}}",
        ] {
            let error = response_usage(WireFormat::OpenAi, bad).unwrap_err();
            assert_eq!(error.kind, ErrorKind::BadGateway);
            assert!(error.message.contains("unreadable"), "{}", error.message);
        }
    }
}
