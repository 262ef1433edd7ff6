//! End-to-end tests: the gateway and the mock provider on ephemeral ports, driven over HTTP.

#![expect(
    clippy::expect_used,
    reason = "test setup and assertions fail loudly by design"
)]

mod audit;
mod azure;
mod bedrock;
pub(crate) mod cache;
mod chat;
mod clients;
mod embeddings;
mod errors;
mod gemini;
mod guards;
pub(crate) mod hostile;
mod keys;
mod ledger;
pub(crate) mod limits;
mod metrics;
mod output_guards;
mod pipeline;
mod reports;
mod routing;
mod semantic_cache;
mod support;
mod traces;
mod usage;
mod vertex;
mod webhooks;
