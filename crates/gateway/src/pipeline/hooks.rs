//! Hooks: code beside the gateway's own stages that sees every call, in order, at fixed points:
//! before the model (`before_model`: change, refuse or answer the request), after it on a
//! whole answer (`after_model`: change or refuse it), on each event of
//! its stream (a [`Tap`]: read, hold back, rewrite, or end the stream), and when it ended
//! (`finished`, exactly once). Extensions registered in [`crate::shared::Shared`] implement
//! it, and so do HTTP webhooks (`crate::webhook`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use switchyard_providers::relay::{Mark, Sent};
use switchyard_types::{ApiError, StreamEvent};

use super::{Answer, Ctx, End};

/// What a stage decided.
#[derive(Debug)]
pub enum Flow {
    /// Go on to the next stage.
    Continue,
    /// Answer the client with this instead of calling the model (a cache hit, a refusal in a
    /// 200's shape).
    Respond(Box<Answer>),
}

/// What a hook's `before_model` returns.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<Flow, ApiError>> + Send + 'a>>;

/// What a hook's `after_model` returns.
pub type AfterFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'a>>;

/// Code that sees every call at the pipeline's hook points. Every method has a default that
/// does nothing, so a hook implements only the points it cares about.
pub trait Hook: Send + Sync + std::fmt::Debug {
    /// Before the model is called, with the request decoded and its group resolved. May change
    /// the request ([`Ctx::chat_mut`]), refuse it (an error in the client's shape), or answer
    /// it ([`Flow::Respond`]).
    fn before_model<'a>(&'a self, ctx: &'a mut Ctx) -> HookFuture<'a> {
        let _ = ctx;
        Box::pin(std::future::ready(Ok(Flow::Continue)))
    }

    /// After the model, with a whole answer (a stream is seen through a tap): may change the
    /// answer or refuse it (an error in the client's shape).
    fn after_model<'a>(&'a self, ctx: &'a mut Ctx, answer: &'a mut Answer) -> AfterFuture<'a> {
        let _ = (ctx, answer);
        Box::pin(std::future::ready(Ok(())))
    }

    /// A tap for this call's stream, if the hook wants to see or change its events. A call
    /// with a tap is not relayed (unless its only tap reads relayed streams, as the output
    /// guards' does): its answer is decoded, even from an upstream of the client's own
    /// dialect, so that the tap sees canonical events. (Taps see streams; a
    /// whole answer is not passed through them.)
    fn tap(&self, ctx: &Ctx) -> Option<Box<dyn Tap>> {
        let _ = ctx;
        None
    }

    /// The request ended, however it ended; called exactly once per request.
    fn finished(&self, ctx: &Ctx, end: &End) {
        let _ = (ctx, end);
    }
}

/// What a tap decided about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Go on.
    Continue,
    /// End the stream now: after what the tap pushed, every open choice finishes with
    /// `content_filter` and the stream ends as the client's dialect ends one.
    Stop,
}

/// One call's view of its stream, event by event, synchronous (per-event work must stay
/// proportional to the event).
pub trait Tap: Send {
    /// One event on its way to the client. Push into `out` what goes on instead: the event
    /// itself to pass it, nothing to hold it back, other events to rewrite it.
    fn event(&mut self, ctx: &mut Ctx, event: StreamEvent, out: &mut Vec<StreamEvent>) -> Step;

    /// The upstream's stream ended: push whatever was held back.
    fn end(&mut self, ctx: &mut Ctx, out: &mut Vec<StreamEvent>) {
        let _ = (ctx, out);
    }

    /// Whether this tap can read a relayed stream ([`Tap::relayed`]): a call whose only tap
    /// can is still relayed from an upstream of the client's dialect.
    fn reads_relayed(&self) -> bool {
        false
    }

    /// This tap for a relayed stream, when [`Tap::reads_relayed`].
    fn relayed(&self) -> Option<Box<dyn RelayTap>> {
        None
    }
}

/// A tap on a relayed stream: the upstream's events as it wrote them, already in the client's
/// dialect, each with a [`Mark`] of the text it carries. What it lets through goes out as
/// written, unless it rewrote it.
pub trait RelayTap: Send {
    /// The events the relay wrote (`bytes`, ended where `marks` say): append to `out` what
    /// goes to the client now.
    fn events(&mut self, ctx: &mut Ctx, bytes: &[u8], marks: Vec<Mark>, out: &mut Vec<u8>) -> Step;

    /// The upstream's stream ended: append what was held back.
    fn end(&mut self, ctx: &mut Ctx, out: &mut Vec<u8>) -> Step;

    /// What the client has been sent (to end the stream after a [`Step::Stop`]).
    fn sent(&self) -> &Sent;
}

/// The `after_model` point: every hook in order, on a whole answer; the first refusal wins.
pub(crate) async fn after_model(ctx: &mut Ctx, answer: &mut Answer) -> Result<(), ApiError> {
    if ctx.shared.hooks.is_empty() || !matches!(answer, Answer::Whole(_)) {
        return Ok(());
    }
    let shared = Arc::clone(&ctx.shared);
    for hook in &shared.hooks {
        hook.after_model(ctx, answer).await?;
    }
    Ok(())
}

/// The `before_model` point: every hook in order, the first answer or refusal wins; then the
/// hooks' taps are put on the call.
pub(crate) async fn before_model(ctx: &mut Ctx) -> Result<Flow, ApiError> {
    if ctx.shared.hooks.is_empty() {
        return Ok(Flow::Continue);
    }
    let shared = Arc::clone(&ctx.shared);
    for hook in &shared.hooks {
        if let Flow::Respond(answer) = hook.before_model(ctx).await? {
            return Ok(Flow::Respond(answer));
        }
    }
    for hook in &shared.hooks {
        if let Some(tap) = hook.tap(ctx) {
            ctx.taps.push(tap);
        }
    }
    Ok(Flow::Continue)
}
