//! Switchyard's audit log, the pure part: records are leaves of an append-only Merkle tree
//! (RFC 6962 / RFC 9162, as Certificate Transparency builds it), the tree's heads are signed
//! as checkpoints (C2SP signed notes, Ed25519), and anything in the log can be proven: a
//! record's inclusion under a checkpoint, and a later checkpoint's consistency with an
//! earlier one. An export carries records, checkpoints and proofs, and [`export::verify`]
//! checks it with nothing but the log's public keys.
//!
//! # Layout
//! - [`merkle`]: hashes, the tree's frontier, proofs made and checked.
//! - [`note`]: signed notes and their keys.
//! - [`checkpoint`]: a tree head as a signed note.
//! - [`export`]: the export's lines and their offline check.
//! - [`canonical`]: a record's bytes (RFC 8785), the leaf's data.

pub mod canonical;
pub mod checkpoint;
pub mod export;
pub mod merkle;
pub mod note;

pub use canonical::Record;
pub use checkpoint::Checkpoint;
pub use merkle::{Frontier, Hash, Node};
pub use note::{NoteError, Signer, Verifier};

/// A record as the log stores and hashes it: canonical JSON (RFC 8785: keys sorted, no
/// spaces, one way to write each string and number). Numbers in records are integers within
/// ±2^53 (larger amounts travel as decimal strings), which JSON carries exactly.
pub fn canonical(record: &serde_json::Value) -> Result<String, serde_json::Error> {
    canonical::to_string(record)
}
