//! The same-dialect relay: when a client and its upstream speak the same dialect and no stage
//! needs to see the content, the upstream's answer goes to the client as the upstream wrote it.
//!
//! Only the SSE framing is parsed (to find event boundaries); each event's JSON is validated
//! without being built, and usage is read where the dialect puts it, so accounting and the
//! stream's error semantics are the same as on the translating path at a fraction of its cost.
//! Fields the gateway does not know reach the client untouched.

use serde::Deserialize;
use serde::de::IgnoredAny;
use switchyard_types::{ApiError, ErrorKind, Usage, WireFormat};

use crate::anthropic::response::WireUsage;
use crate::openai::wire::UsageIn;
use crate::provider::BodyReader;
use crate::sse::{SseEvent, SseParser, write_event};
use crate::{anthropic, openai};

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
    }
    #[derive(Deserialize)]
    struct AnthropicProbe {
        #[serde(default)]
        usage: WireUsage,
    }
    let usage = match format {
        WireFormat::OpenAi => crate::json::from_bytes::<OpenAiProbe>(body).map(|probe| {
            probe
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
    format: WireFormat,
    sse: SseParser,
    events: Vec<SseEvent>,
    /// The client asked for OpenAI's usage chunk (the upstream is always asked for it).
    client_wants_usage: bool,
    usage: WireUsage,
    openai_usage: Option<Usage>,
    /// `[DONE]` or `message_stop` arrived.
    complete: bool,
    ended: bool,
}

#[derive(Deserialize)]
struct OpenAiChunkProbe {
    #[serde(default)]
    choices: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    usage: Option<UsageIn>,
    #[serde(default)]
    error: Option<serde_json::Value>,
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

#[derive(Deserialize)]
struct AnthropicMessageProbe {
    #[serde(default)]
    usage: WireUsage,
}

impl Relay {
    pub(crate) fn new(reader: BodyReader, format: WireFormat, client_wants_usage: bool) -> Relay {
        Relay {
            reader,
            format,
            sse: SseParser::new(),
            events: Vec::new(),
            client_wants_usage,
            usage: WireUsage::default(),
            openai_usage: None,
            complete: false,
            ended: false,
        }
    }

    /// Usage seen so far.
    pub fn usage(&self) -> Usage {
        match self.format {
            WireFormat::OpenAi => self.openai_usage.unwrap_or_default(),
            WireFormat::Anthropic => self.usage.to_canonical(),
        }
    }

    /// Appends the bytes of the next upstream chunk for the client. `None` once the stream
    /// ended cleanly; an error (a cut, a malformed event, an error event) ends it too.
    pub async fn next(&mut self, out: &mut Vec<u8>) -> Option<Result<(), ApiError>> {
        if self.ended {
            return None;
        }
        let start = out.len();
        while out.len() == start {
            let chunk = match self.reader.next_chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    self.ended = true;
                    if self.complete && !self.sse.has_pending() {
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
            self.sse.push(&chunk, &mut self.events);
            let events = std::mem::take(&mut self.events);
            let result = events.iter().try_for_each(|event| self.relay(event, out));
            self.events = events;
            self.events.clear();
            if let Err(error) = result {
                self.ended = true;
                return Some(Err(error));
            }
        }
        Some(Ok(()))
    }

    /// Writes, for the client, the error event of this dialect.
    pub fn write_error(&self, error: &ApiError, out: &mut Vec<u8>) {
        match self.format {
            WireFormat::OpenAi => write_event(out, None, &openai::error::encode(error)),
            WireFormat::Anthropic => {
                write_event(out, Some("error"), &anthropic::error::encode(error));
            }
        }
    }

    fn relay(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        if self.complete {
            return Ok(());
        }
        let data = event.data.as_str();
        match self.format {
            WireFormat::OpenAi => {
                if data.trim() == "[DONE]" {
                    self.complete = true;
                    write_event(out, event.event.as_deref(), data.as_bytes());
                    return Ok(());
                }
                let probe: OpenAiChunkProbe =
                    serde_json::from_str(data).map_err(|error| malformed(&error))?;
                if let Some(error) = probe.error {
                    let message = error
                        .get("message")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("The upstream reported an error mid-stream");
                    return Err(ApiError::upstream(ErrorKind::Internal, message));
                }
                if let Some(usage) = probe.usage {
                    self.openai_usage = Some(usage.to_usage());
                    // The upstream is always asked for usage; a client that did not ask does
                    // not get the usage-only chunk.
                    if !self.client_wants_usage && probe.choices.is_none_or(|c| c.is_empty()) {
                        return Ok(());
                    }
                } else if !self.client_wants_usage
                    && let Some(trimmed) = data.strip_suffix(",\"usage\":null}")
                {
                    // Nor the `"usage":null` that asking adds to every chunk (OpenAI writes it
                    // last; any other placement is left alone).
                    write_event(out, event.event.as_deref(), trimmed.as_bytes());
                    out.truncate(out.len() - 2);
                    out.extend_from_slice(b"}\n\n");
                    return Ok(());
                }
            }
            WireFormat::Anthropic => {
                let probe: AnthropicEventProbe<'_> =
                    serde_json::from_str(data).map_err(|error| malformed(&error))?;
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
        write_event(out, event.event.as_deref(), data.as_bytes());
        Ok(())
    }
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::upstream(
        ErrorKind::BadGateway,
        format!("The upstream sent a malformed stream event: {error}"),
    )
    .with_code("upstream_malformed_chunk")
}
