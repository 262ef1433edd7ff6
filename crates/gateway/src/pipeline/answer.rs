//! What a call produces, whoever produced it (an upstream, a relay, a stage answering early):
//! a whole answer or a stream of events. [`super::respond`] turns either into the client's
//! response.

use axum::body::Bytes;
use switchyard_providers::{Relay, UpstreamStream};
use switchyard_types::{ChatResponse, EmbeddingResponse, StreamEvent, Usage};

/// An answer to a call. It travels up through the route stage's layers, so a stream's state
/// (an upstream connection's reader and decoder, a few hundred bytes) is boxed.
#[derive(Debug)]
pub enum Answer {
    /// All of it at once.
    Whole(Whole),
    /// A stream whose first event (or bytes) is already in hand.
    Stream(Box<Events>),
}

/// A whole answer.
#[derive(Debug)]
pub enum Whole {
    /// A chat answer, encoded in the client's dialect when sent.
    Chat(ChatResponse),
    /// Embeddings, encoded in OpenAI's shape when sent.
    Embeddings(EmbeddingResponse),
    /// The upstream's body in the client's own dialect, sent as written.
    Raw {
        /// The body.
        body: Bytes,
        /// The usage it reports.
        usage: Usage,
    },
}

impl Whole {
    /// The tokens the answer reports.
    pub fn usage(&self) -> Usage {
        match self {
            Whole::Chat(response) => response.usage,
            Whole::Embeddings(response) => response.usage,
            Whole::Raw { usage, .. } => *usage,
        }
    }
}

/// Where a stream's events come from.
#[derive(Debug)]
pub enum Events {
    /// An upstream's stream decoded into canonical events.
    Upstream {
        /// The first event, read before the client got a status (none if the upstream ended
        /// at once).
        first: Option<StreamEvent>,
        /// The rest.
        rest: UpstreamStream,
    },
    /// An upstream of the client's dialect, relayed as written (only when no tap reads the
    /// stream).
    Relay {
        /// The first bytes for the client (empty if the upstream ended at once).
        first: Vec<u8>,
        /// The rest.
        rest: Relay,
    },
    /// Stored events played back (a cache hit, a stage's own answer).
    Replay(std::vec::IntoIter<StreamEvent>),
}
