//! The closed set of upstream kinds and one call to an upstream, streamed or not.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use secrecy::{ExposeSecret, SecretString};
use switchyard_types::{ApiError, ChatRequest, ChatResponse, ErrorKind, StreamEvent, WireFormat};

use crate::{anthropic, openai};

/// Largest upstream error body read for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// An upstream's dialect and authentication scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Chat Completions with a bearer key.
    OpenAi,
    /// Messages with `x-api-key` and `anthropic-version`.
    Anthropic,
}

impl Provider {
    /// The dialect the upstream speaks.
    pub fn format(self) -> WireFormat {
        match self {
            Provider::OpenAi => WireFormat::OpenAi,
            Provider::Anthropic => WireFormat::Anthropic,
        }
    }

    /// The path appended to the API base.
    pub fn chat_path(self) -> &'static str {
        match self {
            Provider::OpenAi => "/chat/completions",
            Provider::Anthropic => "/messages",
        }
    }
}

/// One deployment's endpoint: where to send, as which model, with which key.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Dialect and auth scheme.
    pub provider: Provider,
    /// The full chat endpoint URL.
    pub url: String,
    /// The model name the upstream knows.
    pub model: String,
    /// The provider key, if the upstream needs one.
    pub api_key: Option<SecretString>,
    /// Total time for a non-streamed call; time to first byte and between chunks for a stream.
    pub timeout: Duration,
}

impl Upstream {
    /// Sends `request` and waits for the whole answer.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        request: &ChatRequest,
    ) -> Result<ChatResponse, ApiError> {
        let exchange = async {
            let response = self.send(client, request).await?;
            let body = response.bytes().await.map_err(transport_error)?;
            match self.provider {
                Provider::OpenAi => openai::response::decode(&body, request),
                Provider::Anthropic => anthropic::response::decode(&body, request),
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| timeout_error(self.timeout))?
    }

    /// Sends a streamed `request`; returns once the upstream accepted it (status 2xx).
    pub async fn stream(
        &self,
        client: &reqwest::Client,
        request: &ChatRequest,
    ) -> Result<UpstreamStream, ApiError> {
        let response = tokio::time::timeout(self.timeout, self.send(client, request))
            .await
            .map_err(|_| timeout_error(self.timeout))??;
        let decoder = match self.provider {
            Provider::OpenAi => Decoder::OpenAi(openai::stream::Decoder::new(request)),
            Provider::Anthropic => Decoder::Anthropic(anthropic::stream::Decoder::new(request)),
        };
        Ok(UpstreamStream {
            body: response.bytes_stream().boxed(),
            decoder,
            pending: Vec::new(),
            next: 0,
            idle_timeout: self.timeout,
            ended: false,
        })
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        request: &ChatRequest,
    ) -> Result<reqwest::Response, ApiError> {
        let body = match self.provider {
            Provider::OpenAi => openai::request::encode(request, &self.model)?,
            Provider::Anthropic => anthropic::request::encode(request, &self.model)?,
        };
        let mut builder = client
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        match self.provider {
            Provider::OpenAi => {
                if let Some(key) = &self.api_key {
                    builder = builder.bearer_auth(key.expose_secret());
                }
            }
            Provider::Anthropic => {
                builder = builder.header("anthropic-version", anthropic::API_VERSION);
                if let Some(key) = &self.api_key {
                    builder = builder.header("x-api-key", key.expose_secret());
                }
            }
        }
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = read_limited(response, MAX_ERROR_BODY).await;
        Err(match self.provider {
            Provider::OpenAi => openai::error::decode(status.as_u16(), &headers, &body),
            Provider::Anthropic => anthropic::error::decode(status.as_u16(), &headers, &body),
        })
    }
}

/// Reads at most `limit` bytes of a body; a broken body yields what arrived.
async fn read_limited(response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body
}

fn transport_error(error: reqwest::Error) -> ApiError {
    if error.is_timeout() {
        return ApiError::upstream(ErrorKind::Timeout, "The upstream did not answer in time")
            .with_code("upstream_timeout");
    }
    let message = if error.is_connect() {
        "Could not connect to the upstream"
    } else if error.is_body() || error.is_decode() {
        "The upstream connection broke while sending its answer"
    } else {
        "The upstream request failed"
    };
    ApiError::upstream(ErrorKind::BadGateway, message).with_code("upstream_unreachable")
}

fn timeout_error(timeout: Duration) -> ApiError {
    ApiError::upstream(
        ErrorKind::Timeout,
        format!(
            "The upstream did not answer within {:.1}s",
            timeout.as_secs_f64()
        ),
    )
    .with_code("upstream_timeout")
}

#[derive(Debug)]
enum Decoder {
    OpenAi(openai::stream::Decoder),
    Anthropic(anthropic::stream::Decoder),
}

impl Decoder {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        match self {
            Decoder::OpenAi(decoder) => decoder.push(chunk, out),
            Decoder::Anthropic(decoder) => decoder.push(chunk, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        match self {
            Decoder::OpenAi(decoder) => decoder.finish(out),
            Decoder::Anthropic(decoder) => decoder.finish(out),
        }
    }
}

/// A streamed answer being read from an upstream. Dropping it closes the upstream connection.
pub struct UpstreamStream {
    body: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    decoder: Decoder,
    pending: Vec<StreamEvent>,
    next: usize,
    idle_timeout: Duration,
    ended: bool,
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
            if let Some(event) = self.next_buffered() {
                return Some(Ok(event));
            }
            self.pending.clear();
            self.next = 0;
            if self.ended {
                return None;
            }
            let chunk = match tokio::time::timeout(self.idle_timeout, self.body.next()).await {
                Err(_) => {
                    self.ended = true;
                    return Some(Err(timeout_error(self.idle_timeout)));
                }
                Ok(None) => {
                    self.ended = true;
                    if let Err(error) = self.decoder.finish(&mut self.pending) {
                        return Some(Err(error));
                    }
                    continue;
                }
                Ok(Some(Err(_))) => {
                    self.ended = true;
                    return Some(Err(ApiError::upstream(
                        ErrorKind::BadGateway,
                        "The upstream connection broke in the middle of the stream",
                    )
                    .with_code("upstream_stream_cut")));
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            if let Err(error) = self.decoder.push(&chunk, &mut self.pending) {
                self.ended = true;
                return Some(Err(error));
            }
        }
    }
}
