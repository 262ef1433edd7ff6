//! The request path's stage order, written once.
//!
//! Today's stages: **route** (the model group a request names, and the deployment that serves
//! it) then **call** (the upstream, streamed or not). Authentication, limits, guards, caching
//! and accounting slot in around them as they are built; the order is this function's body.

use std::sync::Arc;

use switchyard_providers::{Relay, RelayedResponse, UpstreamStream};
use switchyard_types::{
    ApiError, ChatRequest, ChatResponse, ErrorKind, Origin, StreamEvent, WireFormat,
};
use tokio::time::Instant;

use crate::router::ModelGroup;
use crate::runtime::Runtime;

/// What one request carries through the stages.
#[derive(Debug)]
pub struct Ctx {
    /// The id echoed in `x-request-id`.
    pub request_id: String,
    /// The dialect the client speaks.
    pub client_format: WireFormat,
    /// The canonical request.
    pub request: ChatRequest,
    /// The group the request resolved to.
    pub group: Option<Arc<ModelGroup>>,
    /// The deployment that served the call (`provider/model`).
    pub deployment: Option<String>,
    /// When the gateway received the request.
    pub received_at: Instant,
}

impl Ctx {
    /// A context for a freshly parsed request.
    pub fn new(request_id: String, client_format: WireFormat, request: ChatRequest) -> Ctx {
        Ctx {
            request_id,
            client_format,
            request,
            group: None,
            deployment: None,
            received_at: Instant::now(),
        }
    }
}

/// What the pipeline produced.
#[derive(Debug)]
pub enum Outcome {
    /// A whole answer, translated from the upstream's dialect.
    Complete(ChatResponse),
    /// A whole answer in the client's own dialect, as the upstream wrote it.
    Relayed(RelayedResponse),
    /// A stream the upstream has started, translated; its first event was already read.
    Stream(OpenStream),
    /// A stream in the client's own dialect, relayed; its first bytes were already read.
    RelayStream(OpenRelay),
}

/// A relayed stream with its first bytes read ahead.
#[derive(Debug)]
pub struct OpenRelay {
    /// The first bytes for the client (empty if the upstream ended at once).
    pub first: Vec<u8>,
    /// The rest.
    pub rest: Relay,
}

/// An upstream stream with its first event read ahead.
#[derive(Debug)]
pub struct OpenStream {
    /// The first event (none if the upstream ended at once).
    pub first: Option<StreamEvent>,
    /// The rest.
    pub rest: UpstreamStream,
}

/// Runs every stage for `ctx`.
pub async fn run(runtime: &Runtime, ctx: &mut Ctx) -> Result<Outcome, ApiError> {
    // Route.
    let group = runtime
        .group(&ctx.request.model)
        .cloned()
        .ok_or_else(|| model_not_found(&ctx.request.model))?;
    let deployment = group.pick().ok_or_else(|| {
        ApiError::new(
            ErrorKind::Unavailable,
            Origin::Internal,
            format!("Model group `{}` has no deployment", group.name),
        )
    })?;
    ctx.deployment = Some(deployment.label.clone());
    let upstream = &deployment.upstream;

    // Call. An upstream of the client's own dialect is relayed: its answer needs no
    // translation, and nothing after this stage needs to see the content yet. Translation
    // happens only across dialects.
    let relay = upstream.provider.format() == ctx.client_format;
    let outcome = match (ctx.request.stream, relay) {
        (false, false) => Outcome::Complete(upstream.call(&runtime.client, &ctx.request).await?),
        (false, true) => {
            Outcome::Relayed(upstream.call_relayed(&runtime.client, &ctx.request).await?)
        }
        // A stream's first event is read before answering: an upstream that fails before its
        // first byte then gets a real status code instead of a stream that opens and errors.
        (true, false) => {
            let mut rest = upstream.stream(&runtime.client, &ctx.request).await?;
            let first = match rest.next().await {
                Some(Ok(event)) => Some(event),
                Some(Err(error)) => return Err(error),
                None => None,
            };
            Outcome::Stream(OpenStream { first, rest })
        }
        (true, true) => {
            let mut rest = upstream.relay(&runtime.client, &ctx.request).await?;
            let mut first = Vec::new();
            if let Some(Err(error)) = rest.next(&mut first).await {
                return Err(error);
            }
            Outcome::RelayStream(OpenRelay { first, rest })
        }
    };
    ctx.group = Some(group);
    Ok(outcome)
}

fn model_not_found(model: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        Origin::Client,
        format!("The model `{model}` does not exist or you do not have access to it."),
    )
    .with_code("model_not_found")
}
