//! Everything on Switchyard's request path, as a library the `switchyard` binary and the tests
//! drive.
//!
//! # Layout
//! - [`admin`]: the admin API: keys, teams, users, "who am I", the change record.
//! - [`audit`]: the tamper-evident audit log: call and admin records, checkpoints.
//! - [`app`]: the axum router and transport layers (request id).
//! - [`background`]: tracked background tasks and bounded queues, flushed on shutdown.
//! - [`governance`]: keys, teams and model access (authenticate and authorize).
//! - [`guards`]: the PII and secret guards as the config builds them.
//! - [`headers`]: the gateway's own header names.
//! - [`ledger`]: what each call cost, budgets, and spend records (queued, batched).
//! - [`ingress`]: client-facing handlers: OpenAI and Anthropic chat, models, health.
//! - [`pipeline`]: the stage order every call walks.
//! - [`router`]: model groups and the choice of a deployment.
//! - [`runtime`]: what a validated config builds (client, groups, in-process mock).
//! - [`telemetry`]: Prometheus metrics (`/metrics`).
//! - [`shared`]: state every worker shares, built once (health, hooks, background work).
//! - [`config`]: the config file, its loading and validation, and the embedded defaults.
//! - [`error`]: the single mapping from an error to the client's status and body.
//! - [`tokens`]: prompt token counting for the context-window check.
//! - [`serve`]: listening, graceful shutdown, and a gateway on an ephemeral port for tests.
//! - [`webhook`]: hooks that are HTTP services (allow, block, modify).
//! - [`workers`]: thread-per-core serving, one runtime and listener per worker thread.

pub mod admin;
pub mod app;
pub mod audit;
pub mod background;
pub mod cache;
pub mod config;
pub mod error;
pub mod governance;
pub mod guards;
pub mod headers;
pub mod ingress;
pub mod ledger;
pub mod pipeline;
pub mod router;
pub mod runtime;
pub mod serve;
pub mod shared;
pub mod telemetry;
pub mod tokens;
pub mod webhook;
pub mod workers;

pub use app::{AppState, build_router};
pub use runtime::Runtime;
pub use serve::{Gateway, serve};
pub use shared::Shared;
