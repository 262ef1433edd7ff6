//! One chat call to one deployment.
//!
//! The body: to an upstream of the client's dialect, the client's own bytes with only the
//! model replaced (and usage asked for on an OpenAI stream), unless a stage changed the
//! request; otherwise encoded from the canonical request. The answer: relayed as written when
//! the upstream speaks the client's dialect and no tap reads the stream; decoded into canonical
//! form otherwise. A stream's first event (or bytes) is read before returning, so a failure
//! before the first byte is an error the route stage can retry, and once this returns the
//! stream belongs to the client.

use std::borrow::Cow;

use secrecy::SecretString;
use switchyard_providers::{Limits, Upstream, forward};
use switchyard_types::{ApiError, ChatRequest, ErrorKind, Origin, WireFormat};

use super::{Answer, Events, Whole};
use crate::router::Deployment;
use crate::runtime::Runtime;

/// What every attempt of one chat call shares.
#[derive(Debug)]
pub struct CallInput<'a> {
    /// The runtime serving the request.
    pub runtime: &'a Runtime,
    /// The canonical request.
    pub request: &'a ChatRequest,
    /// The client's dialect.
    pub client_format: WireFormat,
    /// The client's body, when no stage changed the request.
    pub raw: Option<&'a [u8]>,
    /// The caller's own provider key.
    pub provider_key: Option<&'a SecretString>,
    /// The client's headers for an upstream of its dialect.
    pub forwarded: &'a [(http::HeaderName, http::HeaderValue)],
    /// Whether an answer in the client's dialect may be relayed (no tap reads the stream).
    pub relay: bool,
    /// A tap reads the relayed stream: its events are marked with the text they carry.
    pub marked: bool,
    /// Where the client's body changes for an upstream of its dialect, found by the first
    /// attempt that forwards it and reused by the others.
    pub edits: std::sync::OnceLock<Option<forward::Edits>>,
    /// The call's W3C `traceparent`, for every upstream (traced calls only).
    pub traceparent: Option<http::HeaderValue>,
}

/// Calls `deployment` for `input` within `limits`.
pub async fn once(
    input: &CallInput<'_>,
    deployment: &Deployment,
    limits: Limits,
) -> Result<Answer, ApiError> {
    let request = input.request;
    let upstream = upstream_for(deployment, input.provider_key)?;
    let own_key = matches!(upstream, Cow::Owned(_));
    let upstream = upstream.as_ref();
    let client = deployment.client(&input.runtime.client);
    let same_dialect = upstream.provider.dialect() == Some(input.client_format);
    let forwarded = input.raw.filter(|_| same_dialect).and_then(|raw| {
        input
            .edits
            .get_or_init(|| forward::Edits::of(input.client_format, raw, request.stream))
            .as_ref()
            .map(|edits| edits.apply(raw, &upstream.model))
    });
    let body = match forwarded {
        Some(body) => body,
        None => upstream.encode(request)?,
    };
    // An upstream of the client's own dialect is relayed: its answer needs no translation,
    // unless a tap needs to see the stream's events.
    let relay = same_dialect && input.relay;
    let extra = if same_dialect { input.forwarded } else { &[] };
    let traced: Vec<(http::HeaderName, http::HeaderValue)>;
    let extra = match &input.traceparent {
        Some(traceparent) => {
            traced = extra
                .iter()
                .cloned()
                .chain([(
                    crate::telemetry::traces::TRACEPARENT.clone(),
                    traceparent.clone(),
                )])
                .collect();
            &traced[..]
        }
        None => extra,
    };
    let answer = async {
        Ok(match (request.stream, relay) {
            (false, false) => Answer::Whole(Whole::Chat(
                upstream.call(client, request, body, extra, limits).await?,
            )),
            (false, true) => {
                let relayed = upstream
                    .call_relayed(client, request, body, extra, limits)
                    .await?;
                Answer::Whole(Whole::Raw {
                    body: relayed.body,
                    usage: relayed.usage,
                })
            }
            (true, false) => {
                let mut rest = upstream
                    .stream(client, request, body, extra, limits)
                    .await?;
                let first = match rest.next().await {
                    Some(Ok(event)) => Some(event),
                    Some(Err(error)) => return Err(error),
                    None => None,
                };
                Answer::Stream(Box::new(Events::Upstream { first, rest }))
            }
            (true, true) => {
                let mut rest = upstream.relay(client, request, body, extra, limits).await?;
                if input.marked {
                    rest.mark_events();
                }
                if request.include_usage {
                    // Reported only if the upstream sends no usage of its own.
                    rest.set_prompt_estimate(crate::tokens::upper_bound(request).div_ceil(4));
                }
                let mut first = Vec::new();
                if let Some(Err(error)) = rest.next(&mut first).await {
                    return Err(error);
                }
                Answer::Stream(Box::new(Events::Relay { first, rest }))
            }
        })
    }
    .await;
    answer.map_err(|error| blame(error, own_key))
}

/// A rate limit on the caller's own provider key is the caller's, not the deployment's: it
/// must not count against the deployment's health, which every caller shares.
pub(crate) fn blame(mut error: ApiError, own_key: bool) -> ApiError {
    if own_key && error.kind == ErrorKind::RateLimited {
        error.origin = Origin::Client;
    }
    error
}

/// The deployment's endpoint, with the caller's own key when the caller sent one and the
/// deployment allows it (for this call only).
pub fn upstream_for<'a>(
    deployment: &'a Deployment,
    provider_key: Option<&SecretString>,
) -> Result<Cow<'a, Upstream>, ApiError> {
    match provider_key {
        Some(key) if deployment.allow_client_key => deployment
            .upstream
            .with_api_key(key)
            .map(Cow::Owned)
            .map_err(|_| {
                ApiError::invalid_request(
                    "x-switchyard-provider-key is not a valid header value",
                    Some("x-switchyard-provider-key".into()),
                )
            }),
        _ => Ok(Cow::Borrowed(&deployment.upstream)),
    }
}
