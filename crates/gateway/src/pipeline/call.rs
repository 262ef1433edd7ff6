//! One call to one deployment: relayed when the upstream speaks the client's dialect,
//! translated otherwise. A stream's first event (or bytes) is read before returning, so a
//! failure before the first byte is an error the route stage can retry, and once this returns
//! the stream belongs to the client.

use std::borrow::Cow;

use secrecy::SecretString;
use switchyard_providers::{Limits, Upstream};
use switchyard_types::{ApiError, ChatRequest, WireFormat};

use super::{OpenRelay, OpenStream, Outcome};
use crate::router::Deployment;
use crate::runtime::Runtime;

/// Calls `deployment` for `request` (from a `client_format` client) within `limits`.
pub async fn once(
    runtime: &Runtime,
    request: &ChatRequest,
    client_format: WireFormat,
    provider_key: Option<&SecretString>,
    deployment: &Deployment,
    limits: Limits,
) -> Result<Outcome, ApiError> {
    let upstream = upstream_for(deployment, provider_key)?;
    let upstream = upstream.as_ref();
    let client = deployment.client(&runtime.client);
    // An upstream of the client's own dialect is relayed: its answer needs no translation,
    // and nothing after this stage needs to see the content yet.
    let relay = upstream.provider.dialect() == Some(client_format);
    Ok(match (request.stream, relay) {
        (false, false) => Outcome::Complete(upstream.call(client, request, limits).await?),
        (false, true) => Outcome::Relayed(upstream.call_relayed(client, request, limits).await?),
        (true, false) => {
            let mut rest = upstream.stream(client, request, limits).await?;
            let first = match rest.next().await {
                Some(Ok(event)) => Some(event),
                Some(Err(error)) => return Err(error),
                None => None,
            };
            Outcome::Stream(OpenStream { first, rest })
        }
        (true, true) => {
            let mut rest = upstream.relay(client, request, limits).await?;
            let mut first = Vec::new();
            if let Some(Err(error)) = rest.next(&mut first).await {
                return Err(error);
            }
            Outcome::RelayStream(OpenRelay { first, rest })
        }
    })
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
