//! Wire formats of LLM providers and the client that calls them.
//!
//! Each dialect lives in one module with one role per file: `request` (client JSON ⇄ canonical
//! request), `response` (provider JSON ⇄ canonical response), `stream` (a chunk-by-chunk decoder
//! of the provider's stream and an encoder of canonical events into the client's framing) and
//! `error` (provider error bodies ⇄ [`ApiError`]). The same module serves both sides: the gateway
//! decodes a client's request with it and encodes a request for an upstream with it.
//!
//! # Layout
//! - [`openai`]: OpenAI Chat Completions and every OpenAI-compatible server (presets in `openai::compat`).
//! - [`anthropic`]: Anthropic Messages.
//! - [`gemini`]: Google Gemini `generateContent` (AI Studio and Vertex AI), upstream side only.
//! - [`bedrock`]: Amazon Bedrock Converse and ConverseStream, SigV4-signed, upstream side only.
//! - [`vertex`]: Google Vertex AI: service-account JWTs, the cached access token, the API base.
//! - [`embeddings`]: `/v1/embeddings` for clients; OpenAI, Gemini and Bedrock embedding calls.
//! - [`sse`]: an incremental Server-Sent Events parser that accepts any chunk boundary.
//! - [`json`]: JSON parsing that names the offending field.
//! - [`http`]: the shared upstream HTTP client.
//! - [`provider`]: [`Provider`], the closed set of upstream kinds, and one call to an upstream.
//! - [`ratelimit`]: `Retry-After` and reset headers, and the rate-limit headroom upstreams report.
//! - [`relay`]: the same-dialect path, forwarding an upstream's answer as it was written.
//! - [`forward`]: a client's body forwarded to an upstream of its dialect, only the model changed.

mod answer;
pub mod anthropic;
pub mod bedrock;
pub mod embeddings;
pub mod forward;
pub mod gemini;
pub mod http;
pub mod json;
pub mod openai;
pub mod provider;
pub mod ratelimit;
mod reasoning;
pub mod relay;
pub mod sse;
mod turns;
pub mod vertex;

pub use provider::{Caps, EndpointError, Limits, Provider, Timeouts, Upstream, UpstreamStream};
pub use ratelimit::Headroom;
pub use relay::{Relay, RelayedResponse};
pub use switchyard_types::ApiError;

#[cfg(test)]
mod robustness;
#[cfg(test)]
mod testing;
