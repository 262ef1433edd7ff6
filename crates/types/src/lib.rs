//! The canonical model every Switchyard stage shares: what a chat request, a response and a
//! stream event are, independent of any provider's wire format. Pure data, no I/O.
//!
//! # Layout
//! - [`request`]: [`ChatRequest`], messages, content parts, tools, response formats.
//! - [`response`]: [`ChatResponse`], choices, finish reasons.
//! - [`stream`]: [`StreamEvent`], the unit a streamed answer is made of.
//! - [`embeddings`]: [`EmbeddingRequest`] and [`EmbeddingResponse`], texts in, vectors out.
//! - [`usage`]: [`Usage`], token counts as providers report them.
//! - [`error`]: [`ApiError`] and [`ErrorKind`], the one error every layer speaks.
//! - [`format`]: [`WireFormat`], the API dialects a client or an upstream can speak.

pub mod embeddings;
pub mod error;
pub mod format;
pub mod request;
pub mod response;
pub mod stream;
pub mod usage;

pub use embeddings::{EmbeddingRequest, EmbeddingResponse, Encoding, Inputs};
pub use error::{ApiError, ErrorKind, MAX_QUOTED, Origin, clip};
pub use format::WireFormat;
pub use request::{
    ChatRequest, ContentPart, Extra, ImageSource, MaxTokensKey, Message, Reasoning, ResponseFormat,
    Role, Tool, ToolCall, ToolChoice,
};
pub use response::{ChatResponse, Choice, FinishReason};
pub use stream::{Delta, StreamEvent};
pub use usage::{ServiceTier, Usage};
