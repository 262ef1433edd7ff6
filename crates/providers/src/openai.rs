//! OpenAI Chat Completions, spoken by OpenAI and every OpenAI-compatible server.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat>.
//!
//! # Layout
//! - [`request`]: client JSON → canonical, canonical → upstream JSON.
//! - [`response`]: upstream JSON → canonical, canonical → client JSON.
//! - [`stream`]: the chunk stream decoder and the client-side chunk encoder.
//! - [`error`]: error bodies both ways.
//! - [`compat`]: presets for OpenAI-compatible vendors (base URL, auth).
//! - `wire`: the serde shapes shared by the above.

pub mod compat;
pub mod error;
pub mod request;
pub mod response;
pub mod stream;
pub(crate) mod wire;

#[cfg(test)]
mod tests;
