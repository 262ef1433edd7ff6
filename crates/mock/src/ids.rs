//! Response, tool-call and request ids (`chatcmpl-…`, `call_…`, `msg_…`, `toolu_…`, `req_…`):
//! unique within a process and random-looking, without a random-number dependency.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static COUNTER: AtomicU64 = AtomicU64::new(0);
static SEED: OnceLock<u64> = OnceLock::new();

/// `prefix` followed by `len` alphanumeric characters.
pub(crate) fn new(prefix: &str, len: usize) -> String {
    let seed = *SEED.get_or_init(|| RandomState::new().hash_one(0_u64));
    let mut state = seed
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    let mut bits = 0_u64;
    for at in 0..len {
        // Ten base-62 digits per 64-bit draw.
        if at % 10 == 0 {
            bits = splitmix64(&mut state);
        }
        id.push(char::from(ALPHABET[(bits % 62) as usize]));
        bits /= 62;
    }
    id
}

/// An id in AWS's UUID shape (8-4-4-4-12, lower case).
pub(crate) fn uuid() -> String {
    let chars = new("", 32).to_ascii_lowercase();
    let part = |range: std::ops::Range<usize>| chars.get(range).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_prefixed_and_distinct() {
        let ids: HashSet<String> = (0..1000).map(|_| new("call_", 24)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 29 && id.starts_with("call_"))
        );
        assert!(
            ids.iter()
                .all(|id| id[5..].bytes().all(|b| b.is_ascii_alphanumeric()))
        );
    }
}
