//! The request path's stage order, written once, for every kind of call (chat in both dialects,
//! embeddings).
//!
//! A request gets its [`Ctx`] from its first header; [`run`] then walks the stages in order and
//! produces one [`Answer`], which [`respond`] turns into the client's response. Whatever
//! happens after that (the answer written, an error, a client that leaves mid-stream or before
//! a whole answer is ready), the request ends in exactly one place, [`Ctx::finish`].
//!
//! # Layout
//! - [`intake`]: the request's headers and body into the context (413, 400 in the client's shape).
//! - [`hooks`]: the [`Hook`](hooks::Hook) and [`Tap`](hooks::Tap) traits and the `before_model` stage.
//! - [`route`]: attempts, retries with backoff, cooldown-aware deployment choice, fallbacks.
//! - [`call`]: one chat call to one deployment, forwarded, relayed or translated.
//! - [`embed`]: one embeddings call to one deployment.
//! - [`answer`]: what a call produces: a whole answer or a stream of events.
//! - [`respond`]: answers into responses: JSON, or SSE through the one stream pump and its taps.
//! - [`budget`]: the most a call can cost, reserved on its caller's budgets (402 without room).
//! - [`cache`]: answers from the cache (exact match), and answers kept for it.
//! - `account`: at the end, the call's cost, its budgets settled, its spend record queued.
//! - [`finish`]: where every request ends: its log line and the hooks' `finished`.

mod account;
pub mod answer;
pub mod budget;
pub mod cache;
pub mod call;
pub mod embed;
pub mod finish;
pub mod guard;
pub mod hooks;
pub mod intake;
pub mod respond;
pub mod route;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use http::HeaderMap;
use secrecy::SecretString;
use switchyard_types::{
    ApiError, ChatRequest, EmbeddingRequest, ErrorKind, Origin, Usage, WireFormat,
};
use tokio::time::Instant;

pub use answer::{Answer, Events, Whole};
pub use finish::End;
pub use hooks::{AfterFuture, Flow, Hook, Step, Tap};

use crate::governance::{self, Principal, limits};
use crate::ledger;
use crate::router::{Label, ModelGroup};
use crate::runtime::Runtime;
use crate::shared::Shared;
use crate::tokens;

/// The kind of call a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Chat: OpenAI Chat Completions or Anthropic Messages.
    Chat,
    /// OpenAI's `/v1/embeddings`.
    Embed,
}

impl Kind {
    /// Its name in records, metrics and spans (the GenAI conventions' operation name).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Embed => "embeddings",
        }
    }
}

/// The decoded request. Boxed: the context moves (into the response, into a stream's pump)
/// and should stay small.
#[derive(Debug)]
pub enum Call {
    /// The body is not read yet.
    Unread,
    /// A chat request.
    Chat(Box<ChatRequest>),
    /// An embeddings request.
    Embed(Box<EmbeddingRequest>),
}

/// The client's body as it arrived, and whether a stage changed the request since.
#[derive(Debug, Default)]
pub struct Forward {
    /// The bytes the client sent.
    pub raw: Bytes,
    /// A stage changed the decoded request: the upstream body must be encoded from it.
    pub dirty: bool,
    /// The body's share of the process's in-flight body budget, held until the request ends
    /// (its decoded form lives as long).
    pub held: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What one request carries through the stages, from its first header to its end.
pub struct Ctx {
    /// The id echoed in `x-request-id`.
    pub request_id: String,
    /// The dialect the client speaks.
    pub client_format: WireFormat,
    /// The kind of call.
    pub kind: Kind,
    /// The decoded request (read it through [`Ctx::chat`]; change it through
    /// [`Ctx::chat_mut`], which marks the body changed).
    call: Call,
    /// The client's body, forwarded when the upstream speaks its dialect and nothing changed it.
    pub body: Forward,
    /// The model group the request names, resolved once.
    pub group: Option<Arc<ModelGroup>>,
    /// Who is calling, once authenticated (`None` when the gateway serves without keys).
    pub principal: Option<Arc<Principal>>,
    /// The call's place under its rate limits, held until it ends (then settled).
    pub admission: Option<limits::Admission>,
    /// What the caller is told of its limits (`x-ratelimit-*`), admitted or refused.
    pub quota: Option<limits::Quota>,
    /// The call's hold on its budgets, held until it ends (then settled with its cost).
    pub reservation: Option<ledger::budget::Reservation>,
    /// Tags the request adds to its spend record (`x-switchyard-tags`).
    pub tags: Vec<String>,
    /// What the call cost, once it ended.
    pub cost: Option<switchyard_ledger::Cost>,
    /// The caller's own provider key (`x-switchyard-provider-key`), for deployments that
    /// allow it. `SecretString`: its `Debug` prints nothing.
    pub provider_key: Option<SecretString>,
    /// The client's headers that go on to an upstream of its dialect (Anthropic's
    /// `anthropic-beta`, and `anthropic-version` when not the default).
    pub forwarded: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The prompt's tokens, once counted (only when a context window needs checking).
    pub prompt_tokens: Option<u64>,
    /// Tokens used, as the upstream reports them (for streams, so far).
    pub usage: Usage,
    /// Where the request went and how.
    pub route: Routing,
    /// Taps the hooks put on this call's stream.
    pub taps: Vec<Box<dyn Tap>>,
    /// The answer is a stream (its first event was read).
    pub streamed: bool,
    /// What a traced request notes for its spans (`None`: not traced).
    pub trace: Option<Box<crate::telemetry::traces::Trace>>,
    /// A stream's events that carried content so far (about a token each): what the answer's
    /// tokens are estimated from when the upstream reports none (a stream cut short, a server
    /// that never sends usage).
    pub content_events: u64,
    /// The placeholders the PII guard put in the request, restored in the answer.
    pub vault: Option<Box<switchyard_guard::Vault>>,
    /// What the answer must not copy: the system prompt's word runs and its canary.
    pub leaks: Option<Arc<switchyard_guard::leak::Leaks>>,
    /// What the guards found and did (counts per entity, never the values).
    pub verdicts: Vec<guard::Verdict>,
    /// The guards this call runs under (the caller's or the group's policy, or the default).
    pub guards: Option<Arc<crate::guards::Guards>>,
    /// The caller asked for no guards (`x-switchyard-guards: off`).
    pub guards_off: bool,
    /// The call's dealings with the answer cache (`None`: not cached).
    pub cache: Option<Box<cache::CacheCall>>,
    /// State every worker shares: hooks, health, background queues.
    pub shared: Arc<Shared>,
    /// `finish` ran.
    finished: bool,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("request_id", &self.request_id)
            .field("client_format", &self.client_format)
            .field("kind", &self.kind)
            .field("call", &self.call)
            .field("route", &self.route)
            .field("usage", &self.usage)
            .field("taps", &self.taps.len())
            .finish_non_exhaustive()
    }
}

/// The route stage's inputs and record, for any kind of call (chat, embeddings).
#[derive(Debug)]
pub struct Routing {
    /// When the gateway received the request.
    pub received_at: Instant,
    /// The caller's time limit (`x-switchyard-timeout`), already capped.
    pub timeout: Option<Duration>,
    /// Whether fallback groups may be tried (`x-switchyard-fallbacks: off` disables them).
    pub fallbacks_allowed: bool,
    /// The group that served the call.
    pub group: Option<Arc<ModelGroup>>,
    /// The deployment of the last attempt (`provider/model`).
    pub deployment: Option<Label>,
    /// Upstream calls made, over every group.
    pub attempts: u32,
    /// The fallback group that served the call, when one did.
    pub fallback: Option<String>,
    /// What the deployment of the last attempt charges.
    pub price: Option<Arc<switchyard_ledger::Price>>,
    /// Time spent waiting on upstreams (for a stream, until its first event).
    pub upstream_wait: Duration,
    /// From the request's arrival to the stream's first event (streams only).
    pub first_event: Option<Duration>,
    /// The provider of the last attempt, as the GenAI conventions name it (`openai`,
    /// `anthropic`, `aws.bedrock`…).
    pub provider: Option<&'static str>,
    /// Each attempt, for the trace (`None`: not traced).
    pub attempt_spans: Option<Vec<crate::telemetry::traces::AttemptSpan>>,
}

impl Routing {
    /// The routing of a request received now.
    pub fn new() -> Routing {
        Routing {
            received_at: Instant::now(),
            timeout: None,
            fallbacks_allowed: true,
            group: None,
            deployment: None,
            attempts: 0,
            fallback: None,
            price: None,
            upstream_wait: Duration::ZERO,
            first_event: None,
            provider: None,
            attempt_spans: None,
        }
    }
}

impl Default for Routing {
    fn default() -> Routing {
        Routing::new()
    }
}

impl Ctx {
    /// The context of a request whose first header just arrived.
    pub fn new(
        request_id: String,
        client_format: WireFormat,
        kind: Kind,
        shared: Arc<Shared>,
    ) -> Ctx {
        if let Some(metrics) = &shared.metrics {
            metrics.started();
        }
        Ctx {
            request_id,
            client_format,
            kind,
            call: Call::Unread,
            body: Forward::default(),
            group: None,
            principal: None,
            admission: None,
            quota: None,
            reservation: None,
            tags: Vec::new(),
            cost: None,
            provider_key: None,
            forwarded: Vec::new(),
            prompt_tokens: None,
            usage: Usage::default(),
            route: Routing::new(),
            taps: Vec::new(),
            streamed: false,
            trace: None,
            content_events: 0,
            vault: None,
            leaks: None,
            verdicts: Vec::new(),
            guards: None,
            guards_off: false,
            cache: None,
            shared,
            finished: false,
        }
    }

    /// The chat request, once decoded.
    pub fn chat(&self) -> Option<&ChatRequest> {
        match &self.call {
            Call::Chat(request) => Some(request),
            Call::Unread | Call::Embed(_) => None,
        }
    }

    /// The chat request to change. The client's bytes are then no longer what goes upstream:
    /// the upstream body is encoded from the changed request.
    pub fn chat_mut(&mut self) -> Option<&mut ChatRequest> {
        match &mut self.call {
            Call::Chat(request) => {
                self.body.dirty = true;
                Some(request)
            }
            Call::Unread | Call::Embed(_) => None,
        }
    }

    /// The model (group) the client asked for; empty before the body is read.
    pub fn model(&self) -> &str {
        match &self.call {
            Call::Chat(request) => &request.model,
            Call::Embed(request) => &request.model,
            Call::Unread => "",
        }
    }

    /// When a stage begins, for a traced request (no clock read otherwise).
    pub fn stage_start(&self) -> Option<Instant> {
        self.trace.as_ref().map(|_| Instant::now())
    }

    /// Notes for the trace that stage `name` ran from `started` until now, if it `ran`: a
    /// stage with nothing to do for the call (no keys, no limits, no budget, no guards) gets
    /// no span.
    pub fn stage(&mut self, name: &'static str, started: Option<Instant>, ran: bool) {
        if let (Some(trace), Some(started), true) = (&mut self.trace, started, ran) {
            trace.stage(name, started);
        }
    }

    /// The embeddings request, once decoded.
    pub fn embeddings(&self) -> Option<&EmbeddingRequest> {
        match &self.call {
            Call::Embed(request) => Some(request),
            Call::Unread | Call::Chat(_) => None,
        }
    }
}

/// Runs every stage for `ctx`, whose request arrived with `headers` and `body`.
///
/// Stages that are not built yet have their place marked here, so that each joins as one line.
pub async fn run(
    runtime: &Runtime,
    ctx: &mut Ctx,
    headers: &HeaderMap,
    body: Body,
) -> Result<Answer, ApiError> {
    if let Some(traces) = &ctx.shared.traces {
        ctx.trace = traces.begin(headers, ctx.route.received_at);
        if ctx.trace.is_some() {
            ctx.route.attempt_spans = Some(Vec::new());
        }
    }
    // The gateway's own headers first: a malformed one is refused before any other work.
    intake::headers(runtime, ctx, headers)?;
    // From the headers alone, before the body: a caller without a valid key must not make the
    // gateway read, buffer and parse up to `body_limit_bytes` of body.
    let started = ctx.stage_start();
    authenticate(ctx, headers).await?;
    ctx.stage("authenticate", started, ctx.principal.is_some());
    let started = ctx.stage_start();
    intake::body(runtime, ctx, headers, body).await?;
    ctx.stage("read body", started, true);
    // The group is resolved once, before everything that depends on it: model access, limits,
    // budgets and cache scopes are all per group, and an unknown model is a 404 before any
    // of them does work.
    resolve(runtime, ctx)?;
    // Model access right after the group is known: a denied model costs no token counting,
    // no limit and no hook.
    authorize(ctx)?;
    // Before routing, which checks context windows: a prompt that may not fit is counted here,
    // off the worker, rather than on it inside the route stage.
    count_prompt(runtime, ctx).await?;
    // Limits once the caller may use the group and the prompt's tokens are as known as they
    // get before the call; a refusal costs the upstream nothing.
    let started = ctx.stage_start();
    admit(ctx).await?;
    ctx.stage("rate limits", started, ctx.admission.is_some());
    // Budgets after rate limits: a call the limits refuse holds no money; the most the call
    // can cost is known once its group (prices) and prompt (tokens) are.
    let started = ctx.stage_start();
    budget::reserve(runtime, ctx).await?;
    ctx.stage("budget", started, ctx.reservation.is_some());
    // The input guards before any hook, cache or upstream sees the request: what they take
    // out (a secret, personal data) is out for everything after them. Tokenizing puts a tap
    // on the call, so its answer is decoded and restored rather than relayed.
    let started = ctx.stage_start();
    guard::input(runtime, ctx).await?;
    ctx.stage("guards", started, ctx.guards.is_some());
    // Hooks see the request once it is decoded and its group known, and before the model:
    // they may change it, refuse it, or answer it themselves (a 429). They also put their
    // taps on the stream here, which decides whether a same-dialect answer may be relayed as
    // written.
    let mut answer = match hooks::before_model(ctx).await? {
        Flow::Respond(answer) => *answer,
        // The cache after the hooks, which may change the request: it is looked up as it
        // would go to the model (guarded and changed), in the caller's scope.
        Flow::Continue => match cache::lookup(ctx, headers).await? {
            Some(answer) => answer,
            // Route last among the stages before the model: it makes the upstream calls,
            // with retries and fallbacks, and needs everything above settled.
            None => route(runtime, ctx).await?,
        },
    };
    // A whole answer's usage is known now; a stream's accrues in the pump, event by event.
    if let (Some(trace), Answer::Whole(whole)) = (&mut ctx.trace, &answer) {
        trace.finish_reasons = match whole {
            Whole::Chat(response) => response
                .choices
                .iter()
                .map(|choice| choice.finish_reason.clone())
                .collect(),
            Whole::Raw { body, .. } => {
                crate::telemetry::traces::finish_reasons_of(ctx.client_format, body)
            }
            Whole::Embeddings(_) => Vec::new(),
        };
    }
    // Hooks see a whole answer as the model gave it (placeholders and all), then its
    // placeholders get their values back (a stream's, in the guard's tap).
    hooks::after_model(ctx, &mut answer).await?;
    guard::output(ctx, &mut answer)?;
    match &answer {
        Answer::Whole(whole) => ctx.usage = whole.usage(),
        // The stream's first event was read before the call returned.
        Answer::Stream(_) => ctx.route.first_event = Some(ctx.route.received_at.elapsed()),
    }
    // A structured answer that is not what was asked is refused after its usage is known
    // (the call is charged: the model did answer).
    guard::structured(ctx, &answer)?;
    // Kept for the cache only once every guard passed it (a stream, as it passes the taps).
    cache::capture(ctx, &answer);
    // The client's bytes have gone upstream; a stream may last minutes, and a coding agent's
    // body can be megabytes: not kept for the stream's life.
    ctx.body.raw = Bytes::new();
    Ok(answer)
}

/// The caller, from the key its headers present (when the gateway requires keys).
async fn authenticate(ctx: &mut Ctx, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(governance) = &ctx.shared.governance {
        ctx.principal = Some(governance.authenticate(headers, ctx.client_format).await?);
    }
    Ok(())
}

/// Whether the caller may use the group it asked for: a 403 naming the model if not.
fn authorize(ctx: &Ctx) -> Result<(), ApiError> {
    match (&ctx.principal, &ctx.group) {
        (Some(principal), Some(group)) => governance::authorize(principal, ctx.model(), group),
        _ => Ok(()),
    }
}

/// The call under its caller's rate limits: reserved now, settled when it ends (429 with
/// `Retry-After` when over one).
async fn admit(ctx: &mut Ctx) -> Result<(), ApiError> {
    let (Some(governance), Some(principal), Some(group)) =
        (&ctx.shared.governance, &ctx.principal, &ctx.group)
    else {
        return Ok(());
    };
    if principal.plan.is_empty() {
        return Ok(());
    }
    let checks = principal.plan.checks(&group.name, estimated_tokens(ctx));
    if checks.is_empty() {
        return Ok(());
    }
    match governance.limiter.admit(checks).await {
        Ok((admission, quota)) => {
            ctx.quota = Some(quota);
            ctx.admission = Some(admission);
            Ok(())
        }
        Err(refusal) => {
            ctx.quota = Some(refusal.quota);
            Err(refusal.error)
        }
    }
}

/// The tokens a call is expected to use, reserved against token limits: the prompt (counted
/// if it was, else about four bytes a token) plus the most it may generate (`max_tokens`).
fn estimated_tokens(ctx: &Ctx) -> u64 {
    match &ctx.call {
        Call::Chat(request) => {
            let prompt = ctx
                .prompt_tokens
                .unwrap_or_else(|| tokens::upper_bound(request).div_ceil(4));
            prompt + u64::from(request.max_tokens.unwrap_or(0))
        }
        Call::Embed(_) | Call::Unread => (ctx.body.raw.len() as u64).div_ceil(4),
    }
}

/// The model group the request names (by name or alias); a 404 in the client's shape if none.
fn resolve(runtime: &Runtime, ctx: &mut Ctx) -> Result<(), ApiError> {
    let group = runtime
        .group(ctx.model())
        .ok_or_else(|| route::model_not_found(ctx.model()))?;
    ctx.group = Some(Arc::clone(group));
    Ok(())
}

/// Counts the prompt when some deployment's input limit is below its byte length (a token is
/// at least a byte, so a shorter prompt fits everywhere and is never counted).
async fn count_prompt(runtime: &Runtime, ctx: &mut Ctx) -> Result<(), ApiError> {
    let Some(limit) = runtime.smallest_input_limit else {
        return Ok(());
    };
    if ctx.prompt_tokens.is_some()
        || ctx
            .chat()
            .is_none_or(|request| tokens::upper_bound(request) <= limit)
    {
        return Ok(());
    }
    let Call::Chat(request) = std::mem::replace(&mut ctx.call, Call::Unread) else {
        return Ok(());
    };
    let (request, tokens) = tokens::count_off_worker(request).await;
    if tokens.is_none() {
        return Err(ApiError::new(
            ErrorKind::Internal,
            Origin::Internal,
            "Counting the prompt's tokens failed",
        ));
    }
    ctx.call = Call::Chat(request);
    ctx.prompt_tokens = tokens;
    Ok(())
}

/// The route stage for the call's kind: attempts over the group's deployments, then its
/// fallback groups.
async fn route(runtime: &Runtime, ctx: &mut Ctx) -> Result<Answer, ApiError> {
    // Relayed unless a tap must see canonical events (the output guards' tap reads a relayed
    // stream's own events, when it is the only one).
    let relay = match ctx.taps.as_slice() {
        [] => true,
        [tap] => tap.reads_relayed(),
        _ => false,
    };
    let marked = relay && !ctx.taps.is_empty();
    let traceparent = ctx.trace.as_ref().map(|trace| trace.traceparent.clone());
    let Ctx {
        call,
        body,
        group,
        provider_key,
        forwarded,
        prompt_tokens,
        route,
        client_format,
        ..
    } = ctx;
    let Some(requested) = group.clone() else {
        return Err(unresolved());
    };
    let raw = (!body.dirty).then_some(&body.raw[..]);
    let provider_key = provider_key.as_ref();
    let own_key = provider_key.is_some();
    match &*call {
        Call::Chat(request) => {
            let input = call::CallInput {
                runtime,
                request,
                client_format: *client_format,
                raw,
                provider_key,
                forwarded,
                relay,
                marked,
                edits: std::sync::OnceLock::new(),
                traceparent,
            };
            let input = &input;
            route::run(
                runtime,
                route,
                requested,
                |group| route::ineligible(group, Some((request, prompt_tokens)), own_key),
                move |group, index, limits| async move {
                    call::once(input, &group.deployments[index], limits).await
                },
            )
            .await
        }
        Call::Embed(request) => {
            let input = embed::EmbedInput {
                runtime,
                request,
                raw,
                provider_key,
                edits: std::sync::OnceLock::new(),
            };
            let input = &input;
            route::run(
                runtime,
                route,
                requested,
                |group| route::ineligible(group, None, own_key),
                move |group, index, limits| async move {
                    embed::once(input, &group.deployments[index], limits).await
                },
            )
            .await
        }
        Call::Unread => Err(unresolved()),
    }
}

/// A stage ran before the one it needs (a bug, not the client's doing).
fn unresolved() -> ApiError {
    ApiError::new(
        ErrorKind::Internal,
        Origin::Internal,
        "The request reached routing before it was read and resolved",
    )
}
