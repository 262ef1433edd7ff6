//! The request path's stage order, written once.
//!
//! Today's stages: **route** (the model group a request names; attempts over its deployments
//! with retries, then its fallback groups) wrapped around **call** (one upstream call,
//! translated or relayed). Authentication, limits, guards, caching and accounting slot in
//! around them as they are built; the order is [`run`]'s body.
//!
//! # Layout
//! - [`route`]: attempts, retries with backoff, cooldown-aware deployment choice, fallbacks.
//! - [`call`]: one call to one deployment.
//! - [`embed`]: one embeddings call to one deployment.

pub mod call;
pub mod embed;
pub mod route;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use switchyard_providers::{Relay, RelayedResponse, UpstreamStream};
use switchyard_types::{ApiError, ChatRequest, ChatResponse, StreamEvent, WireFormat};
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
    /// The prompt's tokens, once counted (only when a context window needs checking).
    pub prompt_tokens: Option<u64>,
    /// Where the request went and how.
    pub route: Routing,
}

/// The route stage's inputs and record, for any kind of call (chat, embeddings).
#[derive(Debug)]
pub struct Routing {
    /// The model (group) the client asked for.
    pub model: String,
    /// When the gateway received the request.
    pub received_at: Instant,
    /// The caller's time limit (`x-switchyard-timeout`), already capped.
    pub timeout: Option<Duration>,
    /// Whether fallback groups may be tried (`x-switchyard-fallbacks: off` disables them).
    pub fallbacks_allowed: bool,
    /// The caller's own provider key (`x-switchyard-provider-key`), for deployments that
    /// allow it. `SecretString`: its `Debug` prints nothing.
    pub provider_key: Option<SecretString>,
    /// The group that served the call.
    pub group: Option<Arc<ModelGroup>>,
    /// The deployment of the last attempt (`provider/model`).
    pub deployment: Option<crate::router::Label>,
    /// Upstream calls made, over every group.
    pub attempts: u32,
    /// The fallback group that served the call, when one did.
    pub fallback: Option<String>,
}

impl Routing {
    /// The routing of a request for `model` received now.
    pub fn new(model: String) -> Routing {
        Routing {
            model,
            received_at: Instant::now(),
            timeout: None,
            fallbacks_allowed: true,
            provider_key: None,
            group: None,
            deployment: None,
            attempts: 0,
            fallback: None,
        }
    }
}

impl Ctx {
    /// A context for a freshly parsed request.
    pub fn new(request_id: String, client_format: WireFormat, request: ChatRequest) -> Ctx {
        let route = Routing::new(request.model.clone());
        Ctx {
            request_id,
            client_format,
            request,
            prompt_tokens: None,
            route,
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

/// An upstream stream with its first event read ahead.
#[derive(Debug)]
pub struct OpenStream {
    /// The first event (none if the upstream ended at once).
    pub first: Option<StreamEvent>,
    /// The rest.
    pub rest: UpstreamStream,
}

/// A relayed stream with its first bytes read ahead.
#[derive(Debug)]
pub struct OpenRelay {
    /// The first bytes for the client (empty if the upstream ended at once).
    pub first: Vec<u8>,
    /// The rest.
    pub rest: Relay,
}

/// Runs every stage for `ctx`.
pub async fn run(runtime: &Runtime, ctx: &mut Ctx) -> Result<Outcome, ApiError> {
    let Ctx {
        request,
        client_format,
        prompt_tokens,
        route,
        ..
    } = ctx;
    let (request, client_format) = (&*request, *client_format);
    let provider_key = route.provider_key.clone();
    route::run(
        runtime,
        route,
        |group| route::too_small(request, prompt_tokens, group),
        |group, index, limits| {
            let provider_key = provider_key.clone();
            async move {
                let deployment = &group.deployments[index];
                call::once(
                    runtime,
                    request,
                    client_format,
                    provider_key.as_ref(),
                    deployment,
                    limits,
                )
                .await
            }
        },
    )
    .await
}
