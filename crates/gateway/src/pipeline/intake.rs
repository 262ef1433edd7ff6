//! The request into the context: the gateway's own headers, then the body, read within the
//! limit and decoded in the client's dialect. Errors are the client's, in its own shape.

use axum::body::{Body, Bytes};
use http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use switchyard_providers::embeddings::openai as embeddings_wire;
use switchyard_providers::{anthropic, openai};
use switchyard_types::{ApiError, ErrorKind, Origin, WireFormat};

use super::{Call, Ctx, Kind};
use crate::headers;
use crate::runtime::Runtime;

/// `x-switchyard-timeout` (seconds, capped by `routing.max_timeout_secs`),
/// `x-switchyard-provider-key` and `x-switchyard-fallbacks` (`off` disables fallback groups
/// for this request).
pub fn headers(runtime: &Runtime, ctx: &mut Ctx, request: &HeaderMap) -> Result<(), ApiError> {
    // One pass over the request's few headers rather than a hashed lookup per name (most
    // requests carry none of these); the first value of each counts, as with `get`.
    let (mut timeout, mut provider_key, mut fallbacks) = (None, None, None);
    for (name, value) in request {
        if *name == headers::TIMEOUT {
            timeout.get_or_insert(value);
        } else if *name == headers::PROVIDER_KEY {
            provider_key.get_or_insert(value);
        } else if *name == headers::FALLBACKS {
            fallbacks.get_or_insert(value);
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
        ctx.route.own_key = true;
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

/// Reads and decodes the body; the client's bytes are kept for forwarding.
pub async fn body(
    runtime: &Runtime,
    ctx: &mut Ctx,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), ApiError> {
    let limit = runtime.server.body_limit;
    let bytes = tokio::time::timeout(
        runtime.server.body_read_timeout,
        read_body(headers, body, limit),
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
    Ok(())
}

/// Reads the body, refusing more than `limit` bytes (by `content-length` before reading when
/// the client sent one).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
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
