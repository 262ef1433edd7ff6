//! The request into the context: the gateway's own headers, then the body, read within the
//! limit and decoded in the client's dialect. Errors are the client's, in its own shape.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use bytes::BytesMut;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use switchyard_providers::embeddings::openai as embeddings_wire;
use switchyard_providers::{anthropic, openai};
use switchyard_types::{ApiError, ErrorKind, Origin, WireFormat};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Call, Ctx, Kind};
use crate::headers;
use crate::runtime::Runtime;

/// `x-switchyard-timeout` (seconds, capped by `routing.max_timeout_secs`),
/// `x-switchyard-provider-key`, `x-switchyard-fallbacks` (`off` disables fallback groups
/// for this request), `x-switchyard-guards` (`off`, for keys granted it) and
/// `x-switchyard-tags`.
pub fn headers(runtime: &Runtime, ctx: &mut Ctx, request: &HeaderMap) -> Result<(), ApiError> {
    // One pass over the request's few headers rather than a hashed lookup per name (most
    // requests carry none of these); the first value of each counts, as with `get`.
    let (mut timeout, mut provider_key, mut fallbacks) = (None, None, None);
    for (name, value) in request {
        if *name == headers::TAGS {
            tags(ctx, value)?;
        } else if *name == headers::TIMEOUT {
            timeout.get_or_insert(value);
        } else if *name == headers::PROVIDER_KEY {
            provider_key.get_or_insert(value);
        } else if *name == headers::FALLBACKS {
            fallbacks.get_or_insert(value);
        } else if *name == headers::GUARDS {
            ctx.guards_off = match value.to_str().map(str::trim) {
                Ok("off") => true,
                Ok("on") => false,
                _ => {
                    return Err(ApiError::invalid_request(
                        "x-switchyard-guards must be `on` or `off`",
                        Some("x-switchyard-guards".into()),
                    ));
                }
            };
        } else if ctx.client_format == WireFormat::Anthropic
            && (*name == headers::ANTHROPIC_BETA
                || (*name == headers::ANTHROPIC_VERSION && value != anthropic::API_VERSION))
        {
            // Beta features (Claude Code's among them) and a newer API version are the
            // client's to choose; the gateway sends its default version otherwise.
            ctx.forwarded.push((name.clone(), value.clone()));
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
        ctx.route.timeout = Some(
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
        ctx.provider_key = Some(secrecy::SecretString::from(key.to_owned()));
    }
    if let Some(value) = fallbacks {
        ctx.route.fallbacks_allowed = match value.to_str().map(str::trim) {
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

/// Tags a request may add to its spend record, at most.
const MAX_TAGS: usize = 8;

/// A tag's length, at most.
const MAX_TAG_BYTES: usize = 64;

/// `x-switchyard-tags`: comma-separated tags for the call's spend record (on top of its key's),
/// at most 8 of at most 64 bytes each across every such header.
fn tags(ctx: &mut Ctx, value: &http::HeaderValue) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        ApiError::invalid_request(
            format!("x-switchyard-tags {why}"),
            Some("x-switchyard-tags".into()),
        )
    };
    let text = value
        .to_str()
        .map_err(|_| refuse("must be visible ASCII text"))?;
    for tag in text.split(',').map(str::trim).filter(|tag| !tag.is_empty()) {
        if tag.len() > MAX_TAG_BYTES {
            return Err(refuse(&format!(
                "holds a tag longer than {MAX_TAG_BYTES} bytes"
            )));
        }
        if ctx.tags.iter().any(|known| known == tag) {
            continue;
        }
        if ctx.tags.len() == MAX_TAGS {
            return Err(refuse(&format!("holds more than {MAX_TAGS} tags")));
        }
        ctx.tags.push(tag.to_owned());
    }
    Ok(())
}

/// Reads and decodes the body; the client's bytes are kept for forwarding.
pub async fn body(
    runtime: &Runtime,
    ctx: &mut Ctx,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), ApiError> {
    let limit = runtime.server.body_limit;
    let budget = ctx.shared.bodies(runtime.server.max_body_bytes_in_flight);
    let (bytes, held) = tokio::time::timeout(
        runtime.server.body_read_timeout,
        read_body(headers, body, limit, budget),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            ErrorKind::RequestTimeout,
            Origin::Client,
            format!(
                "The request body did not arrive within {} seconds",
                runtime.server.body_read_timeout.as_secs_f64()
            ),
        )
        .with_code("request_timeout")
    })??;
    let call = match (ctx.kind, ctx.client_format) {
        (Kind::Chat, WireFormat::OpenAi) => Call::Chat(Box::new(openai::request::decode(&bytes)?)),
        (Kind::Chat, WireFormat::Anthropic) => {
            Call::Chat(Box::new(anthropic::request::decode(&bytes)?))
        }
        (Kind::Embed, _) => Call::Embed(Box::new(embeddings_wire::decode_request(&bytes)?)),
    };
    ctx.call = call;
    ctx.body.raw = bytes;
    ctx.body.held = held;
    Ok(())
}

/// Reads the body, refusing more than `limit` bytes (by `content-length` before reading when
/// the client sent one), and takes its share of the process's in-flight `budget` (one permit
/// per KiB): up front for a declared length, chunk by chunk otherwise. Past the budget the
/// request is refused with a 503, not held.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    budget: Arc<Semaphore>,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), ApiError> {
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
    let mut held: Option<OwnedSemaphorePermit> = None;
    let take = |bytes: u64, held: &mut Option<OwnedSemaphorePermit>| {
        let wanted = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        let have = held.as_ref().map_or(0, |permit| permit.num_permits());
        let more = (wanted as usize).saturating_sub(have);
        if more == 0 {
            return Ok(());
        }
        let permit = Arc::clone(&budget)
            .try_acquire_many_owned(u32::try_from(more).unwrap_or(u32::MAX))
            .map_err(|_| busy())?;
        match held {
            Some(held) => held.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    };
    if let Some(length) = declared {
        take(length, &mut held)?;
    }
    let mut body = Limited::new(body, limit);
    let mut collected = BytesMut::new();
    let mut first: Option<Bytes> = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(too_large());
            }
            Err(_) => {
                return Err(ApiError::invalid_request(
                    "The request body could not be read",
                    None,
                ));
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        // One chunk (the common case) is kept as it arrived, without a copy.
        match first.take() {
            None if collected.is_empty() => first = Some(data),
            Some(previous) => {
                collected.extend_from_slice(&previous);
                collected.extend_from_slice(&data);
            }
            None => collected.extend_from_slice(&data),
        }
        let so_far = first.as_ref().map_or(collected.len(), Bytes::len);
        take(so_far as u64, &mut held)?;
    }
    let bytes = first.unwrap_or_else(|| collected.freeze());
    Ok((bytes, held))
}

/// The process holds as many request bodies as it may.
fn busy() -> ApiError {
    let mut error = ApiError::new(
        ErrorKind::Unavailable,
        Origin::Internal,
        "The gateway holds as many request bodies as it may right now; try again shortly",
    )
    .with_code("server_busy");
    error.retry_after = Some(std::time::Duration::from_secs(1));
    error
}
