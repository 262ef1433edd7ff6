//! Where every request ends: on completion, on an error, when a client leaves mid-stream, and
//! when a client leaves a whole call while the upstream is still working (the request's future
//! is dropped, and with it its context). [`Ctx::finish`] runs once, whichever comes first; the
//! context's `Drop` calls it for the cases nothing else saw. The request's log line is written
//! here, the call's rate-limit reservation is settled with its real usage here, and the
//! hooks' `finished` run here; spend records and audit records are queued here.

use std::sync::Arc;

use switchyard_types::{ApiError, MAX_QUOTED, Origin, clip};
use tracing::{info, warn};

use super::{Ctx, Kind};

/// How a request ended.
#[derive(Debug)]
pub enum End {
    /// The whole answer, or the whole stream, was handed over.
    Complete,
    /// An error: answered with its status, or, once a stream had started, as the stream's own
    /// error event.
    Failed(ApiError),
    /// The client went away first.
    Disconnected,
}

impl End {
    /// The status the client got: a stream that failed after it started was a 200 (its error
    /// came as the stream's own event); a client that left, nginx's 499.
    pub fn client_status(&self, streamed: bool) -> u16 {
        match self {
            End::Complete => 200,
            End::Failed(_) if streamed => 200,
            End::Failed(error) => error.kind.status(),
            End::Disconnected => 499,
        }
    }
}

impl Ctx {
    /// Ends the request with `end`, unless it already ended.
    pub fn finish(&mut self, end: End) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.cache_hit() {
            // An answer from the cache used no tokens (the answer still says what the call
            // that made it used): nothing to settle against limits or budgets.
            self.usage = switchyard_types::Usage::default();
        }
        self.account(&end);
        self.cache_ended(&end);
        self.audit(&end);
        self.log(&end);
        if let (Some(admission), Some(governance)) =
            (self.admission.take(), &self.shared.governance)
        {
            governance.limiter.settle(
                admission,
                self.usage.total_tokens(),
                &self.shared.background,
            );
        }
        if let Some(metrics) = &self.shared.metrics {
            metrics.ended(self, &end);
        }
        if let (Some(traces), Some(trace)) = (self.shared.traces.clone(), self.trace.take()) {
            traces.export(self, trace, &end);
        }
        for hook in &self.shared.hooks {
            hook.finished(self, &end);
        }
    }

    /// Queues the call's audit record.
    fn audit(&self, end: &End) {
        let Some(audit) = &self.shared.audit else {
            return;
        };
        let principal = self.principal.as_deref();
        let (outcome, error, code) = match end {
            End::Complete => ("complete", None, None),
            End::Failed(error) => ("failed", Some(error.kind.name()), error.code.clone()),
            End::Disconnected => ("disconnected", None, None),
        };
        audit.record(crate::audit::CallAudit {
            at: switchyard_store::now_ms(),
            request_id: self.request_id.clone(),
            key_id: principal.map(|p| p.key_id.clone()),
            team_id: principal.and_then(|p| p.team_id.clone()),
            user_id: principal.and_then(|p| p.user_id.clone()),
            dialect: self.client_format.as_str(),
            operation: self.kind.name(),
            model: clip(self.model(), MAX_QUOTED).into_owned(),
            group: self.group.as_ref().map(|group| group.name.clone()),
            deployment: self.route.deployment.as_deref().map(str::to_owned),
            stream: self.streamed,
            status: end.client_status(self.streamed),
            outcome,
            error,
            code,
            usage: self.usage,
            cost_nanos: self.cost.map(|cost| cost.total.nanos()),
            attempts: self.route.attempts,
            latency_ms: i64::try_from(self.route.received_at.elapsed().as_millis())
                .unwrap_or(i64::MAX),
            guards: self
                .verdicts
                .iter()
                .map(|verdict| {
                    (
                        Arc::clone(&verdict.entity),
                        verdict.count,
                        verdict.action,
                        verdict.detail.clone(),
                    )
                })
                .collect(),
        });
    }

    /// The request's one log line.
    fn log(&self, end: &End) {
        let request_id = self.request_id.as_str();
        // The caller's key id (never its secret), when the gateway requires keys.
        let key = self
            .principal
            .as_deref()
            .map(|principal| principal.key_id.as_str());
        let model = &*clip(self.model(), MAX_QUOTED);
        let deployment = self.route.deployment.as_deref().unwrap_or("-");
        let elapsed_ms = self.route.received_at.elapsed().as_millis() as u64;
        let usage = &self.usage;
        match (end, self.streamed) {
            (End::Complete, false) => info!(
                request_id,
                key,
                model,
                deployment,
                status = 200,
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                elapsed_ms,
                "Request completed"
            ),
            (End::Complete | End::Disconnected, true) => info!(
                request_id,
                key,
                model,
                deployment,
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                elapsed_ms,
                outcome = match end {
                    End::Complete => "completed",
                    _ => "client disconnected",
                },
                "Stream ended"
            ),
            (End::Disconnected, false) => info!(
                request_id,
                key,
                model,
                deployment,
                elapsed_ms,
                embeddings = self.kind == Kind::Embed,
                "Client disconnected before the answer"
            ),
            (End::Failed(error), true) => warn!(
                request_id,
                key,
                model,
                deployment,
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                elapsed_ms,
                error = %error.message,
                "Stream failed after it started"
            ),
            (End::Failed(error), false) => {
                let status = error.kind.status();
                match error.origin {
                    Origin::Client => {
                        info!(request_id, key, status, error = %error.message, "Request rejected");
                    }
                    Origin::Upstream => warn!(
                            request_id,
                    key,
                            status,
                            deployment,
                            error = %error.message,
                            "Upstream call failed"
                        ),
                    Origin::Internal => {
                        warn!(request_id, key, status, error = %error.message, "Request failed");
                    }
                }
            }
        }
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // Nothing ended it: the future or stream that owned it was dropped, which happens when
        // the client goes away.
        self.finish(End::Disconnected);
    }
}
