//! Client-facing handlers: read and decode the body in the client's dialect, run the pipeline,
//! and answer in the same dialect, as JSON or as a stream.

use std::convert::Infallible;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use switchyard_providers::{Relay, UpstreamStream, anthropic, openai};
use switchyard_types::{ApiError, ChatRequest, ErrorKind, Origin, StreamEvent, Usage, WireFormat};
use tracing::{info, warn};

use crate::app::{AppState, request_id_of, set_request_id};
use crate::error::reply;
use crate::headers;
use crate::pipeline::{self, Ctx, Outcome, Routing};

/// `POST /v1/chat/completions`.
pub async fn openai_chat(State(state): State<AppState>, request: Request) -> Response {
    chat(state, WireFormat::OpenAi, request).await
}

/// `POST /v1/messages`.
pub async fn anthropic_messages(State(state): State<AppState>, request: Request) -> Response {
    chat(state, WireFormat::Anthropic, request).await
}

/// Answers one chat request, echoing its id in `x-request-id` whatever the outcome.
pub(crate) async fn chat(state: AppState, format: WireFormat, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let request_id = request_id_of(&parts.headers);
    let mut response = answer(state, request_id.clone(), format, parts, body).await;
    set_request_id(&mut response, &request_id);
    response
}

async fn answer(
    state: AppState,
    request_id: String,
    format: WireFormat,
    parts: Parts,
    body: Body,
) -> Response {
    let runtime = state.runtime.load_full();
    let runtime = runtime.as_ref();
    let bytes = match read_body(&parts.headers, body, runtime.server.body_limit).await {
        Ok(bytes) => bytes,
        Err(error) => return answer_error(format, &request_id, None, &error),
    };
    let decoded = match format {
        WireFormat::OpenAi => openai::request::decode(&bytes),
        WireFormat::Anthropic => anthropic::request::decode(&bytes),
    };
    let request = match decoded {
        Ok(request) => request,
        Err(error) => return answer_error(format, &request_id, None, &error),
    };
    let mut ctx = Ctx::new(request_id, format, request);
    if let Err(error) = read_routing_headers(&parts.headers, runtime, &mut ctx.route) {
        return answer_error(format, &ctx.request_id, None, &error);
    }
    match pipeline::run(runtime, &mut ctx).await {
        Ok(Outcome::Complete(response)) => {
            let body = match format {
                WireFormat::OpenAi => openai::response::encode(&response),
                WireFormat::Anthropic => anthropic::response::encode(&response),
            };
            json_reply(&ctx, Bytes::from(body), &response.usage)
        }
        Ok(Outcome::Relayed(relayed)) => json_reply(&ctx, relayed.body, &relayed.usage),
        Ok(Outcome::Stream(open)) => stream_reply(
            ctx,
            Source::Translate {
                first: open.first,
                upstream: open.rest,
                encoder: None,
            },
        ),
        Ok(Outcome::RelayStream(open)) => stream_reply(
            ctx,
            Source::Relay {
                first: Some(open.first),
                relay: open.rest,
            },
        ),
        Err(error) => {
            let deployment = ctx.route.deployment.clone();
            let mut reply = answer_error(format, &ctx.request_id, deployment.as_deref(), &error);
            served_by(reply.headers_mut(), &ctx);
            reply
        }
    }
}

fn json_reply(ctx: &Ctx, body: Bytes, usage: &Usage) -> Response {
    info!(
        request_id = ctx.request_id.as_str(),
        model = ctx.request.model.as_str(),
        deployment = ctx.route.deployment.as_deref().unwrap_or("-"),
        status = 200,
        prompt_tokens = usage.prompt_tokens,
        completion_tokens = usage.completion_tokens,
        elapsed_ms = ctx.route.received_at.elapsed().as_millis() as u64,
        "Request completed"
    );
    let mut reply = (StatusCode::OK, body).into_response();
    let headers = reply.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    served_by(headers, ctx);
    reply
}

/// `x-switchyard-timeout` (seconds, capped by `routing.max_timeout_secs`) and
/// `x-switchyard-fallbacks` (`off` disables fallback groups for this request).
pub(crate) fn read_routing_headers(
    headers: &HeaderMap,
    runtime: &crate::runtime::Runtime,
    route: &mut Routing,
) -> Result<(), ApiError> {
    // One pass over the request's few headers rather than a hashed lookup per name (most
    // requests carry none of these); the first value of each counts, as with `get`.
    let (mut timeout, mut provider_key, mut fallbacks) = (None, None, None);
    for (name, value) in headers {
        if *name == headers::TIMEOUT {
            timeout.get_or_insert(value);
        } else if *name == headers::PROVIDER_KEY {
            provider_key.get_or_insert(value);
        } else if *name == headers::FALLBACKS {
            fallbacks.get_or_insert(value);
        }
    }
    if let Some(value) = timeout {
        let seconds = value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
            .ok_or_else(|| {
                ApiError::invalid_request(
                    "x-switchyard-timeout must be a number of seconds greater than 0",
                    Some("x-switchyard-timeout".into()),
                )
            })?;
        route.timeout = Some(
            std::time::Duration::from_secs_f64(seconds.min(1e9)).min(runtime.routing.max_timeout),
        );
    }
    if let Some(value) = provider_key {
        let key = value.to_str().map(str::trim).unwrap_or_default();
        if key.is_empty() {
            return Err(ApiError::invalid_request(
                "x-switchyard-provider-key must not be empty",
                Some("x-switchyard-provider-key".into()),
            ));
        }
        route.provider_key = Some(secrecy::SecretString::from(key.to_owned()));
    }
    if let Some(value) = fallbacks {
        route.fallbacks_allowed = match value.to_str().map(str::trim) {
            Ok("off" | "false" | "0" | "none") => false,
            Ok("on" | "true" | "1") => true,
            _ => {
                return Err(ApiError::invalid_request(
                    "x-switchyard-fallbacks must be `on` or `off`",
                    Some("x-switchyard-fallbacks".into()),
                ));
            }
        };
    }
    Ok(())
}

/// Which deployment served the call, how many attempts it took, and the fallback group used.
fn served_by(headers: &mut HeaderMap, ctx: &Ctx) {
    routed_by(headers, &ctx.route);
}

/// The routing record as response headers.
pub(crate) fn routed_by(headers: &mut HeaderMap, route: &Routing) {
    if let Some(value) = route.deployment.as_ref().and_then(|label| label.header()) {
        headers.insert(headers::DEPLOYMENT.clone(), value.clone());
    }
    if route.attempts > 0 {
        let attempts = match route.attempts {
            1 => HeaderValue::from_static("1"),
            2 => HeaderValue::from_static("2"),
            3 => HeaderValue::from_static("3"),
            more => HeaderValue::from(more),
        };
        headers.insert(headers::ATTEMPTS.clone(), attempts);
    }
    if let Some(value) = route
        .fallback
        .as_deref()
        .and_then(|group| HeaderValue::from_str(group).ok())
    {
        headers.insert(headers::FALLBACK.clone(), value);
    }
}

pub(crate) fn answer_error(
    format: WireFormat,
    request_id: &str,
    deployment: Option<&str>,
    error: &ApiError,
) -> Response {
    let status = error.kind.status();
    match error.origin {
        Origin::Client => info!(%request_id, status, error = %error.message, "Request rejected"),
        Origin::Upstream => warn!(
            %request_id,
            status,
            deployment = deployment.unwrap_or("-"),
            error = %error.message,
            "Upstream call failed"
        ),
        Origin::Internal => warn!(%request_id, status, error = %error.message, "Request failed"),
    }
    reply(format, error)
}

/// Reads the body, refusing more than `limit` bytes (by `content-length` before reading when
/// the client sent one).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            Origin::Client,
            format!("The request body is larger than the limit of {limit} bytes"),
        )
        .with_code("request_too_large")
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(_) => Err(ApiError::invalid_request(
            "The request body could not be read",
            None,
        )),
    }
}

/// The client's stream encoder.
enum Encoder {
    OpenAi(openai::stream::Encoder),
    Anthropic(anthropic::stream::Encoder),
}

impl Encoder {
    fn new(format: WireFormat, request: &ChatRequest) -> Encoder {
        match format {
            WireFormat::OpenAi => Encoder::OpenAi(openai::stream::Encoder::new(request)),
            WireFormat::Anthropic => Encoder::Anthropic(anthropic::stream::Encoder::new(request)),
        }
    }

    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match self {
            Encoder::OpenAi(encoder) => encoder.encode(event, out),
            Encoder::Anthropic(encoder) => encoder.encode(event, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Encoder::OpenAi(encoder) => encoder.finish(out),
            Encoder::Anthropic(encoder) => encoder.finish(out),
        }
    }

    fn error(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        match self {
            Encoder::OpenAi(encoder) => encoder.error(error, out),
            Encoder::Anthropic(encoder) => encoder.error(error, out),
        }
    }
}

/// How a stream ended, logged once when the stream is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    /// Still running: dropped now means the client went away.
    Open,
    Complete,
    Failed,
}

/// Where a stream's bytes come from.
enum Source {
    /// Decoded from the upstream's dialect and encoded in the client's.
    Translate {
        first: Option<StreamEvent>,
        upstream: UpstreamStream,
        /// Built on first use, from the request.
        encoder: Option<Box<Encoder>>,
    },
    /// The upstream speaks the client's dialect: relayed as written.
    Relay {
        first: Option<Vec<u8>>,
        relay: Relay,
    },
}

/// A stream in flight: what is left to send and what to log at the end.
struct Streaming {
    source: Source,
    ctx: Ctx,
    usage: Usage,
    end: StreamEnd,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let outcome = match self.end {
            StreamEnd::Open => "client disconnected",
            StreamEnd::Complete => "completed",
            StreamEnd::Failed => "failed mid-stream",
        };
        info!(
            request_id = self.ctx.request_id.as_str(),
            model = self.ctx.request.model.as_str(),
            deployment = self.ctx.route.deployment.as_deref().unwrap_or("-"),
            prompt_tokens = self.usage.prompt_tokens,
            completion_tokens = self.usage.completion_tokens,
            elapsed_ms = self.ctx.route.received_at.elapsed().as_millis() as u64,
            outcome,
            "Stream ended"
        );
    }
}

impl Streaming {
    /// The next bytes for the client, or `None` when the stream is over. Everything one
    /// upstream chunk carried leaves as one chunk: forwarded as it arrives, without a write per
    /// event.
    async fn next_bytes(&mut self) -> Option<Bytes> {
        if self.end != StreamEnd::Open {
            return None;
        }
        let mut out = Vec::new();
        match &mut self.source {
            Source::Translate {
                first,
                upstream,
                encoder,
            } => {
                let encoder = encoder.get_or_insert_with(|| {
                    Box::new(Encoder::new(self.ctx.client_format, &self.ctx.request))
                });
                while out.is_empty() && self.end == StreamEnd::Open {
                    let event = match first.take() {
                        Some(event) => Some(Ok(event)),
                        None => upstream.next().await,
                    };
                    translate(
                        &self.ctx,
                        event,
                        encoder,
                        &mut self.usage,
                        &mut self.end,
                        &mut out,
                    );
                    while self.end == StreamEnd::Open {
                        let Some(event) = upstream.next_buffered() else {
                            break;
                        };
                        translate(
                            &self.ctx,
                            Some(Ok(event)),
                            encoder,
                            &mut self.usage,
                            &mut self.end,
                            &mut out,
                        );
                    }
                }
            }
            Source::Relay { first, relay } => {
                if let Some(first) = first.take().filter(|first| !first.is_empty()) {
                    return Some(Bytes::from(first));
                }
                match relay.next(&mut out).await {
                    Some(Ok(())) => {}
                    Some(Err(error)) => {
                        relay.write_error(&error, &mut out);
                        self.end = StreamEnd::Failed;
                        log_stream_error(&self.ctx, &error);
                    }
                    None => self.end = StreamEnd::Complete,
                }
                self.usage = relay.usage();
            }
        }
        if out.is_empty() && self.end != StreamEnd::Open {
            return None;
        }
        Some(Bytes::from(out))
    }
}

/// Encodes one upstream event (or the end, or an error) for the client.
fn translate(
    ctx: &Ctx,
    event: Option<Result<StreamEvent, ApiError>>,
    encoder: &mut Encoder,
    usage: &mut Usage,
    end: &mut StreamEnd,
    out: &mut Vec<u8>,
) {
    match event {
        Some(Ok(event)) => {
            if let StreamEvent::Usage(reported) = &event {
                usage.merge(reported);
            }
            encoder.encode(&event, out);
        }
        Some(Err(error)) => {
            encoder.error(&error, out);
            *end = StreamEnd::Failed;
            log_stream_error(ctx, &error);
        }
        None => {
            encoder.finish(out);
            *end = StreamEnd::Complete;
        }
    }
}

fn log_stream_error(ctx: &Ctx, error: &ApiError) {
    warn!(
        request_id = ctx.request_id.as_str(),
        deployment = ctx.route.deployment.as_deref().unwrap_or("-"),
        error = %error.message,
        "Upstream stream failed after it started"
    );
}

fn stream_reply(ctx: Ctx, source: Source) -> Response {
    let mut headers = HeaderMap::new();
    served_by(&mut headers, &ctx);
    let streaming = Streaming {
        source,
        ctx,
        usage: Usage::default(),
        end: StreamEnd::Open,
    };
    // Dropping the body (the client went away) drops `Streaming`, which drops the upstream
    // stream and so closes the upstream connection: the provider stops generating.
    let body = futures_util::stream::unfold(streaming, |mut streaming| async move {
        let bytes = streaming.next_bytes().await?;
        Some((Ok::<_, Infallible>(bytes), streaming))
    });
    let mut response = Response::new(Body::from_stream(body));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    *response.headers_mut() = headers;
    response
}

/// `POST /v1/embeddings` (OpenAI's shape, any upstream that embeds).
pub async fn embeddings(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let request_id = request_id_of(&headers);
    let mut response = embed(state, &request_id, &headers, body).await;
    set_request_id(&mut response, &request_id);
    response
}

async fn embed(state: AppState, request_id: &str, headers: &HeaderMap, body: Body) -> Response {
    use switchyard_providers::embeddings::openai as wire;

    use crate::pipeline::embed::{self, Embedded};
    use crate::pipeline::route;

    let runtime = state.runtime.load_full();
    let runtime = runtime.as_ref();
    let format = WireFormat::OpenAi;
    let bytes = match read_body(headers, body, runtime.server.body_limit).await {
        Ok(bytes) => bytes,
        Err(error) => return answer_error(format, request_id, None, &error),
    };
    let request = match wire::decode_request(&bytes) {
        Ok(request) => request,
        Err(error) => return answer_error(format, request_id, None, &error),
    };
    let mut routing = Routing::new(request.model.clone());
    if let Err(error) = read_routing_headers(headers, runtime, &mut routing) {
        return answer_error(format, request_id, None, &error);
    }
    let provider_key = routing.provider_key.clone();
    let result = route::run(
        runtime,
        &mut routing,
        |_| Ok(Vec::new()),
        |group, index, limits| {
            let (request, provider_key) = (&request, provider_key.clone());
            async move {
                let deployment = &group.deployments[index];
                embed::once(runtime, request, provider_key.as_ref(), deployment, limits).await
            }
        },
    )
    .await;
    let (body, usage) = match result {
        Ok(Embedded::Relayed(body, usage)) => (body, usage),
        Ok(Embedded::Translated(response)) => (
            Bytes::from(wire::encode_response(&response, request.encoding)),
            response.usage,
        ),
        Err(error) => {
            let mut reply = answer_error(format, request_id, routing.deployment.as_deref(), &error);
            routed_by(reply.headers_mut(), &routing);
            return reply;
        }
    };
    info!(
        %request_id,
        model = request.model.as_str(),
        deployment = routing.deployment.as_deref().unwrap_or("-"),
        status = 200,
        prompt_tokens = usage.prompt_tokens,
        inputs = request.inputs.len(),
        "Embeddings completed"
    );
    let mut reply = (StatusCode::OK, body).into_response();
    let headers = reply.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    routed_by(headers, &routing);
    reply
}

/// `GET /v1/models`: the model groups, in OpenAI's list shape, or Anthropic's when the caller
/// is an Anthropic client (it sends `anthropic-version`); each says which providers back it.
pub async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let runtime = state.runtime.load();
    let groups = &runtime.groups;
    if headers.contains_key("anthropic-version") {
        let data: Vec<_> = groups
            .iter()
            .map(|group| {
                json!({"type": "model", "id": group.name, "display_name": group.name, "created_at": "1970-01-01T00:00:00Z", "providers": group.providers()})
            })
            .collect();
        let first = groups.first().map(|group| group.name.clone());
        let last = groups.last().map(|group| group.name.clone());
        return axum::Json(
            json!({"data": data, "has_more": false, "first_id": first, "last_id": last}),
        )
        .into_response();
    }
    let data: Vec<_> = groups
        .iter()
        .map(|group| json!({"id": group.name, "object": "model", "created": 0, "owned_by": "switchyard", "providers": group.providers()}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /health/liveness`: the process answers.
pub async fn liveness() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /health/readiness`: ready to take traffic (false while shutting down).
pub async fn readiness(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "shutting down"})),
        )
            .into_response()
    }
}

/// Any other route: a 404 in OpenAI's shape (Anthropic's for Anthropic clients).
pub async fn unknown_route(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let format = if headers.contains_key("anthropic-version") {
        WireFormat::Anthropic
    } else {
        WireFormat::OpenAi
    };
    let error = ApiError::new(
        ErrorKind::NotFound,
        Origin::Client,
        format!("Unknown route: {}", uri.path()),
    );
    reply(format, &error)
}
