//! State every worker thread shares, built once per process and handed to each worker; it
//! lives across config reloads.
//!
//! Each worker builds its own [`crate::runtime::Runtime`] (client, pool, groups) from the
//! config; anything that must be one for the whole process lives here instead: a per-worker
//! copy would let N workers allow N times a limit or keep N views of a deployment's health.
//! Deployment health, the hooks, the background tasks, the key cache, limiter and budget
//! counters, metrics, and the ledger and audit queues.

use std::sync::Arc;

use crate::audit::Audit;
use crate::background::Background;
use crate::cache::Cache;
use crate::governance::Governance;
use crate::ledger::Ledger;
use crate::pipeline::Hook;
use crate::runtime::HealthRegistry;
use crate::telemetry::{Metrics, Traces};

/// What all workers share.
#[derive(Debug)]
pub struct Shared {
    /// Deployment health, kept across reloads (and shared with other instances through Redis).
    pub health: Arc<HealthRegistry>,
    /// Hooks every call passes, in order.
    pub hooks: Vec<Arc<dyn Hook>>,
    /// Tracked background tasks and queues, flushed on shutdown.
    pub background: Background,
    /// Keys and their store, when model calls need keys (`None`: no keys, `auth.mode: none`).
    pub governance: Option<Arc<Governance>>,
    /// Spend records and budgets (`None`: `ledger.enabled: false`, or no store).
    pub ledger: Option<Arc<Ledger>>,
    /// The audit log (`None`: `audit.enabled: false`, or no store).
    pub audit: Option<Arc<Audit>>,
    /// Prometheus metrics (`None`: `metrics.enabled: false`).
    pub metrics: Option<Arc<Metrics>>,
    /// OpenTelemetry traces (`None`: no `otel.endpoint`).
    pub traces: Option<Arc<Traces>>,
    /// The answer cache (`None`: no group is cached).
    pub cache: Option<Arc<Cache>>,
    /// The address the gateway answers on, once it listens (what calls to itself use).
    pub listening: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
    /// Permits for open client connections, one per connection, over every worker.
    connections: std::sync::OnceLock<Arc<tokio::sync::Semaphore>>,
    /// Permits for request bodies held, one per KiB, over every worker.
    bodies: std::sync::OnceLock<Arc<tokio::sync::Semaphore>>,
}

impl Shared {
    /// Shared state whose background work runs on `background`'s runtime.
    pub fn new(background: Background) -> Shared {
        Shared {
            health: Arc::new(HealthRegistry::default()),
            hooks: Vec::new(),
            background,
            governance: None,
            ledger: None,
            audit: None,
            metrics: None,
            traces: None,
            cache: None,
            listening: Arc::new(std::sync::OnceLock::new()),
            connections: std::sync::OnceLock::new(),
            bodies: std::sync::OnceLock::new(),
        }
    }

    /// The process-wide body permits, one per KiB of `max_bytes` (set by the first request).
    pub fn bodies(&self, max_bytes: u64) -> Arc<tokio::sync::Semaphore> {
        Arc::clone(self.bodies.get_or_init(|| {
            let kib = usize::try_from(max_bytes / 1024).unwrap_or(usize::MAX);
            Arc::new(tokio::sync::Semaphore::new(
                kib.min(tokio::sync::Semaphore::MAX_PERMITS),
            ))
        }))
    }

    /// The process-wide connection permits, `max` of them (set by the first worker to serve).
    pub fn connections(&self, max: usize) -> Arc<tokio::sync::Semaphore> {
        Arc::clone(
            self.connections
                .get_or_init(|| Arc::new(tokio::sync::Semaphore::new(max))),
        )
    }

    /// Adds `hook` after those already registered.
    #[must_use]
    pub fn with_hook(mut self, hook: Arc<dyn Hook>) -> Shared {
        self.hooks.push(hook);
        self
    }

    /// Requires keys for model calls, checked against `governance` (which starts listening
    /// for other instances' key changes, with Redis).
    #[must_use]
    pub fn with_governance(mut self, governance: Arc<Governance>) -> Shared {
        governance.listen();
        self.governance = Some(governance);
        self
    }

    /// Records spend and enforces budgets through `ledger`.
    #[must_use]
    pub fn with_ledger(mut self, ledger: Arc<Ledger>) -> Shared {
        self.ledger = Some(ledger);
        self
    }

    /// Records every call and admin change in `audit`.
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<Audit>) -> Shared {
        self.audit = Some(audit);
        self
    }

    /// Keeps Prometheus metrics in `metrics` (served on `/metrics`).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Shared {
        self.metrics = Some(metrics);
        self
    }

    /// Answers repeated calls from `cache`.
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<Cache>) -> Shared {
        self.cache = Some(cache);
        self
    }

    /// Traces calls through `traces`.
    #[must_use]
    pub fn with_traces(mut self, traces: Arc<Traces>) -> Shared {
        self.traces = Some(traces);
        self
    }

    /// Shares cooldowns with the other instances through Redis at `url`; the tasks that do it
    /// are background work.
    pub async fn connect_redis(&self, url: &str, prefix: &str) -> Result<(), redis::RedisError> {
        self.health
            .connect_redis(url, prefix, &self.background)
            .await
    }
}
