//! The mock's embeddings: a deterministic vector per text, the same in every dialect and every
//! process, so a test can compare what two routes answered for one text.
//!
//! The text's FNV-1a hash seeds a SplitMix64 sequence; each draw becomes one component in
//! `[-1, 1)`, and the vector is scaled to length 1. A shorter vector is therefore the start of a
//! longer one, scaled again (as with OpenAI's `dimensions`). Token-id inputs hash their ids.

/// The length of a vector when the request names none.
pub(crate) const DEFAULT_DIMENSIONS: u32 = 8;

/// The longest vector the mock computes.
pub(crate) const MAX_DIMENSIONS: u32 = 4096;

/// The unit-length vector of `text`.
pub(crate) fn of_text(text: &str, dimensions: u32) -> Vec<f32> {
    normalized(&raw(fnv1a(text.as_bytes()), dimensions))
}

/// The vector of `text` before it is scaled to length 1 (Titan's `normalize: false`).
pub(crate) fn of_text_unnormalized(text: &str, dimensions: u32) -> Vec<f32> {
    raw(fnv1a(text.as_bytes()), dimensions)
        .into_iter()
        .map(|value| value as f32)
        .collect()
}

/// The unit-length vector of already tokenized input.
pub(crate) fn of_tokens(ids: &[u32], dimensions: u32) -> Vec<f32> {
    // A prefix keeps `[104, 105]` from hashing like a text of those bytes.
    let mut bytes = b"tokens:".to_vec();
    for id in ids {
        bytes.extend_from_slice(&id.to_le_bytes());
    }
    normalized(&raw(fnv1a(&bytes), dimensions))
}

/// OpenAI's `base64` encoding of a vector: its little-endian `f32` bytes in standard base64
/// with padding.
pub(crate) fn base64(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 0x3f) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

fn raw(seed: u64, dimensions: u32) -> Vec<f64> {
    let mut state = seed;
    (0..dimensions)
        .map(|_| {
            // The top 53 bits as a fraction in [0, 1), then spread over [-1, 1).
            let unit = (splitmix64(&mut state) >> 11) as f64 / (1_u64 << 53) as f64;
            unit * 2.0 - 1.0
        })
        .collect()
}

fn normalized(raw: &[f64]) -> Vec<f32> {
    let length = raw.iter().map(|value| value * value).sum::<f64>().sqrt();
    // A zero vector (never drawn in practice) stays as it is rather than dividing by zero.
    let scale = if length > 0.0 { 1.0 / length } else { 1.0 };
    raw.iter().map(|value| (value * scale) as f32).collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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
    use super::*;

    fn length(vector: &[f32]) -> f64 {
        vector
            .iter()
            .map(|value| f64::from(*value) * f64::from(*value))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let vector = of_text("hello world", DEFAULT_DIMENSIONS);
        assert_eq!(vector.len(), 8);
        assert_eq!(vector, of_text("hello world", 8));
        assert_ne!(vector, of_text("hello world!", 8));
        assert!((length(&vector) - 1.0).abs() < 1e-6, "{vector:?}");
        assert!(vector.iter().all(|value| (-1.0..=1.0).contains(value)));
        assert_ne!(of_tokens(&[104, 105], 8), of_text("hi", 8));
        assert!((length(&of_tokens(&[1, 2, 3], 3)) - 1.0).abs() < 1e-6);
    }

    /// Pinned so that a change of the recipe, which every stored test vector depends on, is
    /// seen.
    #[test]
    fn the_recipe_is_pinned() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        // Computed independently (Python) from the recipe in the module's doc.
        assert_eq!(base64(&of_text("hello", 4)), "bxw/PxCnSD7xywq/NRSqvg==");
    }

    #[test]
    fn shorter_vectors_start_like_longer_ones() {
        let long = of_text_unnormalized("prefix", 16);
        let short = of_text_unnormalized("prefix", 4);
        assert_eq!(&long[..4], &short[..]);
    }

    #[test]
    fn base64_is_little_endian_f32() {
        assert_eq!(base64(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64(&[0.5]), "AAAAPw==");
        assert_eq!(base64(&[]), "");
    }
}
