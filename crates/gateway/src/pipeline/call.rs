//! One call to one deployment: relayed when the upstream speaks the client's dialect,
//! translated otherwise. A stream's first event (or bytes) is read before returning, so a
//! failure before the first byte is an error the route stage can retry, and once this returns
//! the stream belongs to the client.

use switchyard_providers::Limits;
use switchyard_types::ApiError;

use super::{Ctx, OpenRelay, OpenStream, Outcome};
use crate::router::Deployment;
use crate::runtime::Runtime;

/// Calls `deployment` for `ctx`'s request within `limits`.
pub async fn once(
    runtime: &Runtime,
    ctx: &Ctx,
    deployment: &Deployment,
    limits: Limits,
) -> Result<Outcome, ApiError> {
    // A caller's own key replaces the configured one, for this call only, where allowed.
    let with_caller_key;
    let upstream = match &ctx.provider_key {
        Some(key) if deployment.allow_client_key => {
            with_caller_key = deployment.upstream.with_api_key(key).map_err(|_| {
                ApiError::invalid_request(
                    "x-switchyard-provider-key is not a valid header value",
                    Some("x-switchyard-provider-key".into()),
                )
            })?;
            &with_caller_key
        }
        _ => &deployment.upstream,
    };
    let client = &runtime.client;
    let request = &ctx.request;
    // An upstream of the client's own dialect is relayed: its answer needs no translation,
    // and nothing after this stage needs to see the content yet.
    let relay = upstream.provider.dialect() == Some(ctx.client_format);
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
