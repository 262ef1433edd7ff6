//! Reading an upstream's answer: a whole body within its cap, or a stream chunk by chunk
//! ([`BodyReader`], with the first-byte and total deadlines) and decoded into canonical events
//! ([`UpstreamStream`]), each unfinished event within its cap.

use bytes::Bytes;
use switchyard_types::{ApiError, ErrorKind, StreamEvent};

use super::Limits;
use crate::http::Response;
use crate::{anthropic, bedrock, gemini, openai};

/// A whole answer's body, refused past `cap` bytes with the gateway's 502.
pub(super) async fn whole_body(response: Response, cap: usize) -> Result<Bytes, ApiError> {
    response.bytes(cap).await.map_err(|error| {
        if error.is_too_large() {
            return ApiError::upstream(
                ErrorKind::BadGateway,
                format!(
                    "The upstream's answer is larger than the limit of {cap} bytes (server.upstream_body_limit_bytes)"
                ),
            )
            .with_code("upstream_response_too_large");
        }
        transport_error(error)
    })
}

/// An upstream event grew past the cap without completing.
pub(crate) fn event_too_large(cap: usize) -> ApiError {
    ApiError::upstream(
        ErrorKind::BadGateway,
        format!(
            "The upstream sent a stream event larger than the limit of {cap} bytes (server.upstream_event_limit_bytes)"
        ),
    )
    .with_code("upstream_event_too_large")
}

pub(super) fn transport_error(error: crate::http::Error) -> ApiError {
    if error.is_timeout() {
        return ApiError::upstream(ErrorKind::Timeout, "The upstream did not answer in time")
            .with_code("upstream_timeout");
    }
    let message = if error.is_connect() {
        "Could not connect to the upstream"
    } else if error.is_body() {
        "The upstream connection broke while sending its answer"
    } else {
        "The upstream request failed"
    };
    ApiError::upstream(ErrorKind::BadGateway, message).with_code("upstream_unreachable")
}

pub(super) fn timeout_error() -> ApiError {
    ApiError::upstream(ErrorKind::Timeout, "The upstream did not answer in time")
        .with_code("upstream_timeout")
}

#[derive(Debug)]
pub(super) enum Decoder {
    OpenAi(openai::stream::Decoder),
    Anthropic(anthropic::stream::Decoder),
    Gemini(gemini::stream::Decoder),
    Bedrock(bedrock::stream::Decoder),
}

impl Decoder {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        match self {
            Decoder::OpenAi(decoder) => decoder.push(chunk, out),
            Decoder::Anthropic(decoder) => decoder.push(chunk, out),
            Decoder::Gemini(decoder) => decoder.push(chunk, out),
            Decoder::Bedrock(decoder) => decoder.push(chunk, out),
        }
    }

    fn pending(&self) -> usize {
        match self {
            Decoder::OpenAi(decoder) => decoder.pending(),
            Decoder::Anthropic(decoder) => decoder.pending(),
            Decoder::Gemini(decoder) => decoder.pending(),
            Decoder::Bedrock(decoder) => decoder.pending(),
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        match self {
            Decoder::OpenAi(decoder) => decoder.finish(out),
            Decoder::Anthropic(decoder) => decoder.finish(out),
            Decoder::Gemini(decoder) => decoder.finish(out),
            Decoder::Bedrock(decoder) => decoder.finish(out),
        }
    }
}

/// An upstream response body read chunk by chunk, with a limit on the wait for each chunk.
/// Dropping it closes the upstream connection.
pub(crate) struct BodyReader {
    body: Response,
    limits: Limits,
    /// No chunk has arrived yet: the first-byte deadline applies.
    first: bool,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl BodyReader {
    pub(super) fn new(response: Response, limits: Limits) -> BodyReader {
        BodyReader {
            body: response,
            limits,
            first: true,
        }
    }

    /// The next chunk, `None` at the end of the body.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        let deadline = if self.first {
            self.limits.first_byte_deadline
        } else {
            self.limits.deadline
        };
        self.first = false;
        match tokio::time::timeout_at(deadline, self.body.chunk()).await {
            Err(_) => Err(timeout_error()),
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(_)) => Err(ApiError::upstream(
                ErrorKind::BadGateway,
                "The upstream connection broke in the middle of the stream",
            )
            .with_code("upstream_stream_cut")),
        }
    }
}

/// A streamed answer being read from an upstream and decoded into canonical events. Dropping it
/// closes the upstream connection.
pub struct UpstreamStream {
    reader: BodyReader,
    decoder: Decoder,
    /// The most an unfinished event may hold.
    event_cap: usize,
    pending: Vec<StreamEvent>,
    next: usize,
    ended: bool,
    /// The error that ended the stream, handed out after the events decoded before it.
    failure: Option<Box<ApiError>>,
    /// Removes the endpoint's key from an error the upstream sent mid-stream.
    scrub: super::Scrub,
}

impl std::fmt::Debug for UpstreamStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamStream")
            .field("decoder", &self.decoder)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl UpstreamStream {
    /// A stream read by `reader` and decoded by `decoder`, no unfinished event past
    /// `event_cap` bytes.
    pub(super) fn new(
        reader: BodyReader,
        decoder: Decoder,
        event_cap: usize,
        scrub: super::Scrub,
    ) -> UpstreamStream {
        UpstreamStream {
            reader,
            decoder,
            event_cap,
            pending: Vec::new(),
            next: 0,
            ended: false,
            failure: None,
            scrub,
        }
    }

    /// The next event already decoded from bytes that arrived, without waiting for more.
    /// Lets a caller forward everything one upstream chunk carried as one chunk of its own.
    pub fn next_buffered(&mut self) -> Option<StreamEvent> {
        if self.next < self.pending.len() {
            let event = std::mem::replace(
                &mut self.pending[self.next],
                StreamEvent::Usage(Default::default()),
            );
            self.next += 1;
            return Some(event);
        }
        None
    }

    /// The next canonical event; `None` once the stream ended cleanly. After an error, `None`.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, ApiError>> {
        loop {
            // Events decoded before a failure go out first: the client keeps every token that
            // arrived before the stream broke.
            if let Some(event) = self.next_buffered() {
                return Some(Ok(event));
            }
            self.pending.clear();
            self.next = 0;
            if self.ended {
                return self.failure.take().map(|error| Err(*error));
            }
            let result = match self.reader.next_chunk().await {
                Err(error) => Err(error),
                Ok(None) => {
                    self.ended = true;
                    self.decoder.finish(&mut self.pending)
                }
                Ok(Some(chunk)) => match self.decoder.push(&chunk, &mut self.pending) {
                    Ok(()) if self.decoder.pending() > self.event_cap => {
                        Err(event_too_large(self.event_cap))
                    }
                    result => result,
                },
            };
            if let Err(error) = result {
                self.ended = true;
                self.failure = Some(Box::new(self.scrub.error(error)));
            }
        }
    }
}
