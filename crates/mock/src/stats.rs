//! Request and stream counters, shared by the router and [`crate::MockServer`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A snapshot of the mock's counters, as served on `GET /mock/stats`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MockStats {
    /// Requests to the chat completions, messages and Gemini generation routes.
    pub requests: u64,
    /// Stream bodies being sent right now.
    pub active_streams: u64,
    /// Stream bodies whose last byte was produced (a `cut` stream counts here: it ran its
    /// script to the end).
    pub completed_streams: u64,
    /// Stream bodies dropped before completion: the client went away.
    pub cancelled_streams: u64,
    /// OTLP trace exports received on `POST /v1/traces` (the mock doubles as a collector).
    #[serde(default)]
    pub trace_exports: u64,
    /// Their bodies' bytes, together.
    #[serde(default)]
    pub trace_bytes: u64,
}

/// The live counters behind [`MockStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    active_streams: AtomicU64,
    completed_streams: AtomicU64,
    cancelled_streams: AtomicU64,
    trace_exports: AtomicU64,
    trace_bytes: AtomicU64,
}

impl Counters {
    /// Counts one request.
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one OTLP trace export of `bytes`.
    pub(crate) fn trace_export(&self, bytes: usize) {
        self.trace_exports.fetch_add(1, Ordering::Relaxed);
        self.trace_bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The current values.
    pub(crate) fn snapshot(&self) -> MockStats {
        MockStats {
            requests: self.requests.load(Ordering::Relaxed),
            active_streams: self.active_streams.load(Ordering::Relaxed),
            completed_streams: self.completed_streams.load(Ordering::Relaxed),
            cancelled_streams: self.cancelled_streams.load(Ordering::Relaxed),
            trace_exports: self.trace_exports.load(Ordering::Relaxed),
            trace_bytes: self.trace_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Counts one stream body: active from creation until [`StreamGuard::complete`] (completed) or
/// its drop (cancelled, the client went away).
#[derive(Debug)]
pub(crate) struct StreamGuard {
    counters: Arc<Counters>,
    done: bool,
}

impl StreamGuard {
    /// Counts a new active stream.
    pub(crate) fn new(counters: Arc<Counters>) -> Self {
        counters.active_streams.fetch_add(1, Ordering::Relaxed);
        Self {
            counters,
            done: false,
        }
    }

    /// The last byte was produced.
    pub(crate) fn complete(&mut self) {
        if !self.done {
            self.done = true;
            self.counters.active_streams.fetch_sub(1, Ordering::Relaxed);
            self.counters
                .completed_streams
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.done {
            self.counters.active_streams.fetch_sub(1, Ordering::Relaxed);
            self.counters
                .cancelled_streams
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_completion_and_cancellation() {
        let counters = Arc::new(Counters::default());
        let mut finished = StreamGuard::new(Arc::clone(&counters));
        let dropped = StreamGuard::new(Arc::clone(&counters));
        assert_eq!(counters.snapshot().active_streams, 2);
        finished.complete();
        finished.complete();
        drop(finished);
        drop(dropped);
        let stats = counters.snapshot();
        assert_eq!(stats.active_streams, 0);
        assert_eq!(stats.completed_streams, 1);
        assert_eq!(stats.cancelled_streams, 1);
    }
}
