//! The closed set of upstream kinds and one call to an upstream, streamed or not.
//!
//! # Layout
//! - [`body`]: reading an answer: whole bodies within their cap, streams chunk by chunk and
//!   decoded into canonical events.

mod body;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use switchyard_types::{ApiError, ChatRequest, ChatResponse, ErrorKind, WireFormat};
use tokio::time::Instant;

pub use body::UpstreamStream;
pub(crate) use body::{BodyReader, event_too_large};
use body::{Decoder, timeout_error, transport_error, whole_body};

use crate::http::{Client, Response, Target};
use crate::ratelimit::Headroom;
use crate::relay::{self, Relay, RelayedResponse};
use crate::{anthropic, bedrock, embeddings, gemini, openai, vertex};

/// Largest upstream error body read for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// An upstream's dialect and authentication scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Chat Completions with a bearer key.
    OpenAi,
    /// Messages with `x-api-key` and `anthropic-version`.
    Anthropic,
    /// Gemini `generateContent` with `x-goog-api-key` (Google AI Studio).
    Gemini,
    /// Azure OpenAI: Chat Completions at a deployment's URL with `api-version`, authenticated
    /// by `api-key` or, with `bearer`, a Microsoft Entra ID token.
    Azure {
        /// Send the key as `Authorization: Bearer` rather than `api-key`.
        bearer: bool,
    },
    /// AWS Bedrock Converse, SigV4-signed (see [`Upstream::with_aws`]).
    Bedrock,
    /// Google Vertex AI: Gemini's format, a service account's OAuth token (see
    /// [`Upstream::with_google`]).
    Vertex,
}

/// The Azure OpenAI API version used when a deployment names none.
pub const AZURE_API_VERSION: &str = "2024-10-21";

impl Provider {
    /// The client dialect the upstream speaks, when clients speak it too: such calls are
    /// relayed rather than translated.
    pub fn dialect(self) -> Option<WireFormat> {
        match self {
            Provider::OpenAi | Provider::Azure { .. } => Some(WireFormat::OpenAi),
            Provider::Anthropic => Some(WireFormat::Anthropic),
            Provider::Gemini | Provider::Vertex | Provider::Bedrock => None,
        }
    }

    /// The endpoint for `model` under `api_base`, streamed or not. For Azure, `api_base` is
    /// the resource (`https://NAME.openai.azure.com`), `model` the deployment name, and
    /// `api_version` `v1` selects the version-less v1 API.
    fn endpoint(
        self,
        api_base: &str,
        model: &str,
        stream: bool,
        api_version: Option<&str>,
    ) -> String {
        let base = api_base.trim_end_matches('/');
        match self {
            Provider::OpenAi => format!("{base}/chat/completions"),
            Provider::Anthropic => format!("{base}/messages"),
            Provider::Gemini | Provider::Vertex => {
                format!("{base}/{}", gemini::method_path(model, stream))
            }
            Provider::Bedrock => format!("{base}{}", bedrock::path(model, stream)),
            Provider::Azure { .. } => match api_version.unwrap_or(AZURE_API_VERSION) {
                "v1" => format!("{base}/openai/v1/chat/completions"),
                version => format!(
                    "{base}/openai/deployments/{model}/chat/completions?api-version={version}"
                ),
            },
        }
    }
}

/// Why an endpoint cannot be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The API base and model do not make a URL.
    #[error("not a URL: {0}")]
    Url(String),
    /// The key cannot be sent in a header.
    #[error("the API key is not a valid header value")]
    Key,
}

/// The header that carries `key` to `provider`, marked sensitive (never logged).
fn auth_header(
    provider: Provider,
    key: &SecretString,
) -> Result<(http::HeaderName, http::HeaderValue), EndpointError> {
    let (name, value) = match provider {
        Provider::OpenAi => (
            http::header::AUTHORIZATION,
            format!("Bearer {}", key.expose_secret()),
        ),
        Provider::Anthropic => (
            http::HeaderName::from_static("x-api-key"),
            key.expose_secret().to_owned(),
        ),
        Provider::Gemini => (
            http::HeaderName::from_static("x-goog-api-key"),
            key.expose_secret().to_owned(),
        ),
        Provider::Azure { bearer: false } => (
            http::HeaderName::from_static("api-key"),
            key.expose_secret().to_owned(),
        ),
        Provider::Azure { bearer: true } => (
            http::header::AUTHORIZATION,
            format!("Bearer {}", key.expose_secret()),
        ),
        // Bedrock is signed per request, Vertex given a token per request, instead.
        Provider::Bedrock | Provider::Vertex => return Err(EndpointError::Key),
    };
    let mut value = http::HeaderValue::try_from(value).map_err(|_| EndpointError::Key)?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// Time limits of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole call, stream included.
    pub total: Duration,
    /// Until the first byte of the answer (for streams, the first chunk).
    pub first_byte: Duration,
}

/// How much of an upstream's answer the gateway holds at once; more is a 502, not memory
/// growing with whatever an upstream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// A whole (non-streamed) answer, in bytes.
    pub body: usize,
    /// One stream event (an SSE line or event, a Bedrock frame) not yet complete, in bytes.
    pub event: usize,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            body: 64 * 1024 * 1024,
            event: 16 * 1024 * 1024,
        }
    }
}

/// The deadlines of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole call ends by then.
    pub deadline: Instant,
    /// The first byte arrives by then.
    pub first_byte_deadline: Instant,
}

/// One deployment's endpoint: where to send, as which model, with which key.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Dialect and auth scheme.
    pub provider: Provider,
    /// The full chat endpoint URL.
    pub url: Target,
    /// The endpoint for streamed calls (Gemini has its own; the others stream at `url`).
    pub stream_url: Target,
    /// The model name the upstream knows.
    pub model: String,
    /// The provider key, if the upstream needs one.
    pub api_key: Option<SecretString>,
    /// Default time limits of a call to this endpoint.
    pub timeouts: Timeouts,
    /// The auth and version headers, built once (marked sensitive: never logged).
    headers: http::HeaderMap,
    /// The rate-limit headroom its answers report.
    pub headroom: Arc<Headroom>,
    /// Region and credentials that sign every request (Bedrock).
    aws: Option<Arc<AwsSigning>>,
    /// The service account whose token authorizes every request (Vertex).
    google: Option<Arc<vertex::TokenSource>>,
    /// The API base, for endpoints other than chat (embeddings).
    api_base: String,
    /// Azure's `api-version`, for endpoints other than chat.
    api_version: Option<String>,
    /// How much of an answer is held at once.
    caps: Caps,
    /// What an OpenAI-compatible vendor refuses or needs.
    quirks: openai::compat::Quirks,
}

/// What SigV4 signing needs.
#[derive(Debug)]
struct AwsSigning {
    region: String,
    credentials: bedrock::sign::Credentials,
}

impl Upstream {
    /// An endpoint; its headers are built here once rather than on every call.
    pub fn new(
        provider: Provider,
        api_base: &str,
        model: String,
        api_key: Option<SecretString>,
        timeouts: Timeouts,
        api_version: Option<&str>,
    ) -> Result<Upstream, EndpointError> {
        let parse = |stream: bool| {
            let url = provider.endpoint(api_base, &model, stream, api_version);
            Target::parse(&url).map_err(|_| EndpointError::Url(url))
        };
        let (url, stream_url) = (parse(false)?, parse(true)?);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        if provider == Provider::Anthropic {
            headers.insert(
                "anthropic-version",
                http::HeaderValue::from_static(anthropic::API_VERSION),
            );
        }
        if let Some(key) = &api_key
            && !matches!(provider, Provider::Bedrock | Provider::Vertex)
        {
            let (name, value) = auth_header(provider, key)?;
            headers.insert(name, value);
        }
        Ok(Upstream {
            provider,
            url,
            stream_url,
            model,
            api_key,
            timeouts,
            headers,
            headroom: Arc::default(),
            aws: None,
            google: None,
            api_base: api_base.trim_end_matches('/').to_owned(),
            api_version: api_version.map(str::to_owned),
            caps: Caps::default(),
            quirks: openai::compat::Quirks::default(),
        })
    }

    /// Encodes for a vendor with `quirks` (OpenAI-compatible upstreams).
    #[must_use]
    pub fn with_quirks(mut self, quirks: openai::compat::Quirks) -> Upstream {
        self.quirks = quirks;
        self
    }

    /// Holds at most `caps` of an answer at once.
    #[must_use]
    pub fn with_caps(mut self, caps: Caps) -> Upstream {
        self.caps = caps;
        self
    }

    /// Authorizes every request with a token of `tokens` (Vertex).
    #[must_use]
    pub fn with_google(mut self, tokens: Arc<vertex::TokenSource>) -> Upstream {
        self.google = Some(tokens);
        self
    }

    /// The embeddings endpoint, where the provider has one this gateway speaks to.
    pub fn embeddings_url(&self) -> Option<Target> {
        let base = &self.api_base;
        let model = &self.model;
        let url = match self.provider {
            Provider::OpenAi => format!("{base}/embeddings"),
            Provider::Azure { .. } => {
                match self.api_version.as_deref().unwrap_or(AZURE_API_VERSION) {
                    "v1" => format!("{base}/openai/v1/embeddings"),
                    version => format!(
                        "{base}/openai/deployments/{model}/embeddings?api-version={version}"
                    ),
                }
            }
            Provider::Gemini | Provider::Vertex => {
                format!("{base}/{}", embeddings::gemini::path(model))
            }
            Provider::Bedrock => format!("{base}{}", embeddings::bedrock::path(model)),
            Provider::Anthropic => return None,
        };
        Target::parse(&url).ok()
    }

    /// POSTs `body` to `url` with this endpoint's authentication, within `limits`; the
    /// answer's headers and body, or the provider's error.
    pub async fn post(
        &self,
        client: &Client,
        url: &Target,
        body: Vec<u8>,
        limits: Limits,
    ) -> Result<(http::HeaderMap, Bytes), ApiError> {
        let exchange = async {
            let response = self.send_body(client, url, body, &[]).await?;
            let headers = response.headers().clone();
            let body = whole_body(response, self.caps.body).await?;
            Ok((headers, body))
        };
        tokio::time::timeout_at(limits.deadline, exchange)
            .await
            .map_err(|_| timeout_error())?
    }

    /// Signs every request with SigV4 for `region` with `credentials` (Bedrock).
    #[must_use]
    pub fn with_aws(mut self, region: String, credentials: bedrock::sign::Credentials) -> Upstream {
        self.aws = Some(Arc::new(AwsSigning {
            region,
            credentials,
        }));
        self
    }

    /// The same endpoint called with `key` instead of its configured one (a caller's own
    /// provider key, for one call).
    pub fn with_api_key(&self, key: &SecretString) -> Result<Upstream, EndpointError> {
        let mut upstream = self.clone();
        let (name, value) = auth_header(self.provider, key)?;
        upstream.headers.insert(name, value);
        upstream.api_key = Some(key.clone());
        Ok(upstream)
    }

    /// Reports rate-limit headroom into `headroom` (shared with the router) instead of a
    /// private one.
    #[must_use]
    pub fn with_headroom(mut self, headroom: Arc<Headroom>) -> Upstream {
        self.headroom = headroom;
        self
    }

    /// The limits of a call starting `now` with this endpoint's timeouts, capped by `cap` (the
    /// time the caller has left).
    pub fn limits(&self, now: Instant, cap: Option<Duration>) -> Limits {
        let total = cap.map_or(self.timeouts.total, |cap| cap.min(self.timeouts.total));
        Limits {
            deadline: now + total,
            first_byte_deadline: now + total.min(self.timeouts.first_byte),
        }
    }

    /// Sends `body` (the request for `request` in this upstream's dialect: [`Upstream::encode`]
    /// or a forwarded client body) and waits for the whole answer.
    pub async fn call(
        &self,
        client: &Client,
        request: &ChatRequest,
        body: Vec<u8>,
        extra: &[(http::HeaderName, http::HeaderValue)],
        limits: Limits,
    ) -> Result<ChatResponse, ApiError> {
        let exchange = async {
            let response = self.send(client, request, body, extra).await?;
            let body = whole_body(response, self.caps.body).await?;
            match self.provider {
                Provider::OpenAi | Provider::Azure { .. } => {
                    openai::response::decode(&body, request)
                }
                Provider::Anthropic => anthropic::response::decode(&body, request),
                Provider::Gemini | Provider::Vertex => gemini::response::decode(&body, request),
                Provider::Bedrock => bedrock::response::decode(&body, request),
            }
        };
        tokio::time::timeout_at(limits.deadline, exchange)
            .await
            .map_err(|_| timeout_error())?
    }

    /// Sends `body` for a streamed `request`; returns once the upstream accepted it (status
    /// 2xx).
    pub async fn stream(
        &self,
        client: &Client,
        request: &ChatRequest,
        body: Vec<u8>,
        extra: &[(http::HeaderName, http::HeaderValue)],
        limits: Limits,
    ) -> Result<UpstreamStream, ApiError> {
        let response = tokio::time::timeout_at(
            limits.first_byte_deadline,
            self.send(client, request, body, extra),
        )
        .await
        .map_err(|_| timeout_error())??;
        let decoder = match self.provider {
            Provider::OpenAi | Provider::Azure { .. } => {
                Decoder::OpenAi(openai::stream::Decoder::new(request))
            }
            Provider::Anthropic => Decoder::Anthropic(anthropic::stream::Decoder::new(request)),
            Provider::Gemini | Provider::Vertex => {
                Decoder::Gemini(gemini::stream::Decoder::new(request))
            }
            Provider::Bedrock => Decoder::Bedrock(bedrock::stream::Decoder::new(request)),
        };
        Ok(UpstreamStream::new(
            BodyReader::new(response, limits),
            decoder,
            self.caps.event,
            self.scrub(),
        ))
    }

    /// Sends `body` for `request` to an upstream of the client's own dialect and waits for the
    /// whole answer, kept as the upstream wrote it.
    pub async fn call_relayed(
        &self,
        client: &Client,
        request: &ChatRequest,
        body: Vec<u8>,
        extra: &[(http::HeaderName, http::HeaderValue)],
        limits: Limits,
    ) -> Result<RelayedResponse, ApiError> {
        let exchange = async {
            let response = self.send(client, request, body, extra).await?;
            let body = whole_body(response, self.caps.body).await?;
            let usage = relay::response_usage(self.relayed_dialect()?, &body)?;
            Ok(RelayedResponse { body, usage })
        };
        tokio::time::timeout_at(limits.deadline, exchange)
            .await
            .map_err(|_| timeout_error())?
    }

    /// Sends `body` for a streamed `request` to an upstream of the client's own dialect; the
    /// stream is relayed as the upstream writes it. Returns once the upstream accepted it.
    pub async fn relay(
        &self,
        client: &Client,
        request: &ChatRequest,
        body: Vec<u8>,
        extra: &[(http::HeaderName, http::HeaderValue)],
        limits: Limits,
    ) -> Result<Relay, ApiError> {
        let response = tokio::time::timeout_at(
            limits.first_byte_deadline,
            self.send(client, request, body, extra),
        )
        .await
        .map_err(|_| timeout_error())??;
        Ok(Relay::new(
            BodyReader::new(response, limits),
            self.caps.event,
            self.relayed_dialect()?,
            request.include_usage,
            self.scrub(),
        ))
    }

    /// The dialect of a relayed call (only providers that clients also speak are relayed).
    fn relayed_dialect(&self) -> Result<WireFormat, ApiError> {
        self.provider.dialect().ok_or_else(|| {
            ApiError::new(
                ErrorKind::Internal,
                switchyard_types::Origin::Internal,
                "This upstream's dialect cannot be relayed",
            )
        })
    }

    /// The body for `request` in this upstream's dialect, encoded from the canonical request;
    /// refused when the request holds a block or tool that only the client's own bytes carry
    /// (see `ContentPart::Opaque`), which every encoder would otherwise drop.
    pub fn encode(&self, request: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        // Blocks and tools kept whole are written again for an Anthropic upstream.
        let untranslatable = match self.provider {
            Provider::Anthropic => request.first_unkept(),
            _ => request.first_opaque(),
        };
        if let Some(kind) = untranslatable {
            return Err(ApiError::invalid_request(
                format!(
                    "The request has a content block or tool of type `{}`, which the gateway passes untouched only to an upstream of the client's own API; `{}` needs the request translated",
                    switchyard_types::clip(kind, switchyard_types::MAX_QUOTED),
                    self.model
                ),
                Some("messages".into()),
            )
            .with_code("unsupported_content_block"));
        }
        match self.provider {
            Provider::OpenAi | Provider::Azure { .. } => {
                openai::request::encode_for(request, &self.model, self.quirks)
            }
            Provider::Anthropic => anthropic::request::encode(request, &self.model),
            Provider::Gemini | Provider::Vertex => gemini::request::encode(request, &self.model),
            Provider::Bedrock => bedrock::request::encode(request, &self.model),
        }
    }

    async fn send(
        &self,
        client: &Client,
        request: &ChatRequest,
        body: Vec<u8>,
        extra: &[(http::HeaderName, http::HeaderValue)],
    ) -> Result<Response, ApiError> {
        let url = if request.stream {
            &self.stream_url
        } else {
            &self.url
        };
        self.send_body(client, url, body, extra).await
    }

    /// Sends `body` to `url` with this endpoint's headers (and `extra`, a client's own headers
    /// forwarded to an upstream of its dialect), signature or token; a non-2xx answer becomes
    /// the provider's error.
    async fn send_body(
        &self,
        client: &Client,
        url: &Target,
        body: Vec<u8>,
        extra: &[(http::HeaderName, http::HeaderValue)],
    ) -> Result<Response, ApiError> {
        let mut headers = self.headers.clone();
        // A client's header replaces the endpoint's own of that name; a name the client sent
        // more than once (`anthropic-beta`) keeps every value.
        for (index, (name, value)) in extra.iter().enumerate() {
            if extra[..index].iter().any(|(earlier, _)| earlier == name) {
                headers.append(name.clone(), value.clone());
            } else {
                headers.insert(name.clone(), value.clone());
            }
        }
        if let Some(tokens) = &self.google {
            headers.insert(
                http::header::AUTHORIZATION,
                tokens.authorization(client).await?,
            );
        }
        if let Some(aws) = &self.aws {
            let signed = bedrock::sign::sign(
                &aws.credentials,
                &aws.region,
                url.as_str(),
                &self.headers,
                &body,
                std::time::SystemTime::now(),
            )?;
            for (name, mut value) in signed {
                value.set_sensitive(true);
                headers.append(name, value);
            }
        }
        let response = client
            .post(url, headers, Bytes::from(body))
            .await
            .map_err(transport_error)?;
        self.headroom.record(response.headers());
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status.is_redirection() {
            // Never followed (a redirect could carry the key to another host); the usual cause
            // is an `api_base` missing its version path or using http for https.
            return Err(ApiError::upstream(
                ErrorKind::BadGateway,
                format!(
                    "The upstream answered {} (a redirect), which the gateway does not follow; check the deployment's api_base",
                    status.as_u16()
                ),
            )
            .with_code("upstream_redirect"));
        }
        let headers = response.headers().clone();
        let mut body = response.bytes_limited(MAX_ERROR_BODY).await;
        // Before the message is read out of it (and cut to length, which could leave part of
        // a key behind).
        self.scrub_bytes(&mut body);
        let error = match self.provider {
            Provider::OpenAi | Provider::Azure { .. } => {
                openai::error::decode(status.as_u16(), &headers, &body)
            }
            Provider::Anthropic => anthropic::error::decode(status.as_u16(), &headers, &body),
            Provider::Gemini | Provider::Vertex => {
                gemini::error::decode(status.as_u16(), &headers, &body)
            }
            Provider::Bedrock => bedrock::error::decode(status.as_u16(), &headers, &body),
        };
        Err(error)
    }

    /// Removes the key this endpoint sent (the configured one, or a caller's own) from bytes
    /// an upstream wrote: providers echo a refused key in their error messages ("Incorrect API
    /// key provided: sk-…"), which would reach the client and the logs.
    fn scrub_bytes(&self, text: &mut Vec<u8>) {
        self.scrub().bytes(text);
    }

    /// What removes this endpoint's key from what the upstream writes, for its streams.
    pub(crate) fn scrub(&self) -> Scrub {
        Scrub(self.api_key.clone())
    }
}

/// Removes an endpoint's key from text an upstream wrote (error bodies, and errors in the
/// middle of a stream). Keys shorter than eight bytes are left alone: they would match ordinary
/// words, and real keys are long.
#[derive(Clone, Default)]
pub(crate) struct Scrub(Option<SecretString>);

impl std::fmt::Debug for Scrub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrub")
    }
}

impl Scrub {
    fn key(&self) -> Option<&[u8]> {
        let key = self.0.as_ref()?.expose_secret().as_bytes();
        (key.len() >= 8).then_some(key)
    }

    /// `text` with every occurrence of the key replaced by `[redacted]`.
    pub(crate) fn bytes(&self, text: &mut Vec<u8>) {
        let Some(key) = self.key() else {
            return;
        };
        let finder = memchr::memmem::Finder::new(key);
        if finder.find(text).is_none() {
            return;
        }
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for found in finder.find_iter(text) {
            out.extend_from_slice(&text[at..found]);
            out.extend_from_slice(b"[redacted]");
            at = found + key.len();
        }
        out.extend_from_slice(&text[at..]);
        *text = out;
    }

    /// `error` with the key removed from its message.
    pub(crate) fn error(&self, mut error: ApiError) -> ApiError {
        if let Some(key) = self.key()
            && memchr::memmem::find(error.message.as_bytes(), key).is_some()
        {
            let mut bytes = std::mem::take(&mut error.message).into_bytes();
            self.bytes(&mut bytes);
            error.message = String::from_utf8_lossy(&bytes).into_owned();
        }
        error
    }
}
