//! Accounting, when a request ends: the call's cost from its usage at its deployment's
//! prices, its budget reservation settled with that cost, and its spend record queued.

use switchyard_ledger::{Cost, Usd};

use super::{Ctx, End};
use crate::ledger;

/// Prompts longer than this (bytes of text) are estimated at four bytes a token rather than
/// counted with the tokenizer, which would hold the worker thread (a request ends there).
const COUNT_UP_TO: u64 = 64 * 1024;

impl Ctx {
    /// Fills in the tokens of a stream whose upstream reported none (cut short by the client or
    /// the upstream, or a server that never sends usage): the prompt counted with the
    /// tokenizer (o200k; four bytes a token past 64 KiB of text), the output at a token per
    /// content event. Returns whether it did.
    fn estimate_usage(&mut self) -> bool {
        if !self.streamed || self.content_events == 0 || self.usage.completion_tokens > 0 {
            return false;
        }
        self.usage.completion_tokens = self.content_events;
        if self.usage.prompt_tokens == 0 {
            self.usage.prompt_tokens = match (self.prompt_tokens, self.chat()) {
                (Some(counted), _) => counted,
                (None, Some(request)) => {
                    let bound = crate::tokens::upper_bound(request);
                    if bound <= COUNT_UP_TO {
                        crate::tokens::count(request)
                    } else {
                        bound.div_ceil(4)
                    }
                }
                (None, None) => 0,
            };
        }
        true
    }

    /// Prices the call, settles its budgets and queues its spend record (calls that reached a
    /// provider, or were answered for one).
    pub(super) fn account(&mut self, end: &End) {
        let hit = self.cache_hit();
        let (cost, estimated) = match self.route.price.clone() {
            // Answered from the cache: recorded, at no cost.
            _ if hit => (Cost::default(), false),
            Some(price) => {
                let estimated = self.estimate_usage();
                // Images are counted only for a model that prices them apart from their
                // tokens.
                let images = match (price.image, self.chat()) {
                    (Some(_), Some(request)) => request.image_count(),
                    _ => 0,
                };
                (Cost::of(&price, &self.usage, images), estimated)
            }
            None => {
                // Refused before routing: nothing spent, nothing held but what is released
                // here.
                if let (Some(reservation), Some(ledger), Some(principal)) = (
                    self.reservation.take(),
                    &self.shared.ledger,
                    &self.principal,
                ) {
                    ledger.settle(reservation, Usd::ZERO, &ledger::applying(principal));
                }
                return;
            }
        };
        self.cost = Some(cost);
        let Some(ledger) = &self.shared.ledger else {
            return;
        };
        if let (Some(reservation), Some(principal)) = (self.reservation.take(), &self.principal) {
            ledger.settle(reservation, cost.total, &ledger::applying(principal));
        }
        let principal = self.principal.as_deref();
        let mut tags: Vec<&str> = principal
            .map(|p| p.tags.iter().map(String::as_str).collect())
            .unwrap_or_default();
        for tag in &self.tags {
            if !tags.contains(&tag.as_str()) {
                tags.push(tag);
            }
        }
        // Unlike the status the client got (`End::client_status`), a stream that failed after
        // it began is recorded with its error's status: the aggregates count it as a failure.
        let status = match end {
            End::Complete => 200,
            End::Failed(error) => error.kind.status(),
            // nginx's "client closed request".
            End::Disconnected => 499,
        };
        let elapsed = self.route.received_at.elapsed();
        ledger.record(&switchyard_store::SpendRow {
            request_id: &self.request_id,
            at: switchyard_store::now_ms(),
            key_id: principal.map(|p| p.key_id.as_str()),
            team_id: principal.and_then(|p| p.team_id.as_deref()),
            user_id: principal.and_then(|p| p.user_id.as_deref()),
            model: self
                .group
                .as_ref()
                .map_or_else(|| self.model(), |group| group.name.as_str()),
            deployment: self.route.deployment.as_deref(),
            kind: self.kind.name(),
            tags,
            prompt_tokens: self.usage.prompt_tokens,
            completion_tokens: self.usage.completion_tokens,
            cache_read_tokens: self.usage.cache_read_tokens,
            cache_write_tokens: self.usage.cache_write_tokens,
            reasoning_tokens: self.usage.reasoning_tokens,
            cost_nanos: cost.total.nanos(),
            estimated,
            unpriced: cost.unpriced,
            cache_hit: hit,
            stream: self.streamed,
            status,
            attempts: self.route.attempts,
            latency_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            ttft_ms: self
                .route
                .first_event
                .map(|ttft| i64::try_from(ttft.as_millis()).unwrap_or(i64::MAX)),
            guards: self
                .verdicts
                .iter()
                .map(|verdict| switchyard_store::GuardVerdict {
                    entity: verdict.entity.to_string(),
                    action: verdict.action.to_owned(),
                    detail: verdict.detail.as_deref().map(str::to_owned),
                    count: verdict.count,
                })
                .collect(),
        });
    }
}
