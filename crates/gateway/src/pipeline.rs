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

pub mod call;
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
    /// When the gateway received the request.
    pub received_at: Instant,
    /// The caller's time limit (`x-switchyard-timeout`), already capped.
    pub timeout: Option<Duration>,
    /// Whether fallback groups may be tried (`x-switchyard-fallbacks: off` disables them).
    pub fallbacks_allowed: bool,
    /// The group that served the call.
    pub group: Option<Arc<ModelGroup>>,
    /// The deployment of the last attempt (`provider/model`).
    pub deployment: Option<String>,
    /// Upstream calls made, over every group.
    pub attempts: u32,
    /// The fallback group that served the call, when one did.
    pub fallback: Option<String>,
    /// The prompt's tokens, once counted (only when a context window needs checking).
    pub prompt_tokens: Option<u64>,
    /// The caller's own provider key (`x-switchyard-provider-key`), for deployments that
    /// allow it. `SecretString`: its `Debug` prints nothing.
    pub provider_key: Option<SecretString>,
}

impl Ctx {
    /// A context for a freshly parsed request.
    pub fn new(request_id: String, client_format: WireFormat, request: ChatRequest) -> Ctx {
        Ctx {
            request_id,
            client_format,
            request,
            received_at: Instant::now(),
            timeout: None,
            fallbacks_allowed: true,
            group: None,
            deployment: None,
            attempts: 0,
            fallback: None,
            prompt_tokens: None,
            provider_key: None,
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
    route::run(runtime, ctx).await
}
