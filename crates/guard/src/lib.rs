//! Switchyard's guards, the pure part: what is sensitive in a text and what becomes of it.
//!
//! Recognizers find personal data (e-mail addresses, card numbers, IBANs, US SSNs, phone
//! numbers, IP addresses, dates of birth, crypto wallets) and secrets (provider and cloud keys,
//! private keys, JWTs, connection strings, high-entropy tokens), each a pattern checked by what
//! the value itself carries (Luhn, mod-97, SSN ranges, address checksums) and raised by
//! context words. Operators redact, mask, label, hash or tokenize what they find; a per-request
//! vault restores tokenized values in answers, whole or streamed. No I/O, no state beyond a
//! request.
//!
//! # Layout
//! - [`injection`]: prompt-injection and jailbreak detection (normalisation, phrases, decoding).
//! - [`leak`]: system-prompt copies and canaries in answers.
//! - [`ngram`]: its trained tier (hashed character n-grams, logistic regression), and training.
//! - [`similar`]: its similarity tier (MinHash sketches of known jailbreaks).
//! - [`scan`]: recognizers, scores, thresholds, overlaps.
//! - [`validate`]: the checksums and registries.
//! - [`stream`]: output guards on a stream: hold back, redact, block.
//! - [`vault`]: operators, placeholders and their restoration.
//! - [`eval`]: the labelled set and the scores (`switchyard eval guards`).

pub mod eval;
pub mod head;
pub mod injection;
pub mod leak;
pub mod ngram;
pub mod scan;
pub mod similar;
pub mod stream;
pub mod validate;
pub mod vault;

pub use scan::{Category, Finding, Recognizer, Scanner};
pub use vault::{Operator, Restorer, Vault};
