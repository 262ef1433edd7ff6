//! OpenAI's `encoding_format: "base64"`: a vector's little-endian `f32` bytes in standard
//! base64 with padding (RFC 4648 §4). Written here rather than taken from a crate: the two
//! loops below are all the crate would be used for.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The base64 text of `vector`.
pub(crate) fn encode_vector(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    encode(&bytes)
}

/// The vector `text` holds; `None` when it is not base64 or not a whole number of `f32`s.
pub(crate) fn decode_vector(text: &str) -> Option<Vec<f32>> {
    let bytes = decode(text)?;
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect(),
    )
}

fn encode(bytes: &[u8]) -> String {
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

fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (at, quad) in text.chunks_exact(4).enumerate() {
        // Padding may only end the last quad: `x===` is never valid, `xx==` and `xxx=` are.
        let padding = quad.iter().rev().take_while(|&&byte| byte == b'=').count();
        if padding > 2 || (padding > 0 && at + 1 != quads) {
            return None;
        }
        let mut n = 0_u32;
        for &byte in &quad[..4 - padding] {
            n = (n << 6) | u32::from(sextet(byte)?);
        }
        n <<= 6 * padding as u32;
        let [_, first, second, third] = n.to_be_bytes();
        out.push(first);
        if padding < 2 {
            out.push(second);
        }
        if padding < 1 {
            out.push(third);
        }
    }
    Some(out)
}

fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn vectors_are_little_endian_f32_in_padded_base64() {
        // 1.0 = 00 00 80 3F, -2.0 = 00 00 00 C0.
        assert_eq!(encode_vector(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(decode_vector("AACAPwAAAMA="), Some(vec![1.0, -2.0]));
        assert_eq!(encode_vector(&[]), "");
        assert_eq!(decode_vector(""), Some(Vec::new()));
    }

    #[test]
    fn rfc_4648_test_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).as_deref(), Some(plain.as_bytes()));
        }
    }

    #[test]
    fn rejects_what_is_not_base64_of_floats() {
        assert_eq!(decode("Zm9"), None, "not a whole quad");
        assert_eq!(decode("Zg==Zg=="), None, "padding inside");
        assert_eq!(decode("Z==="), None, "too much padding");
        assert_eq!(decode("Zm9v YmFy"), None, "not in the alphabet");
        assert_eq!(decode("Zm9-"), None, "URL-safe alphabet");
        // Six bytes are not a whole number of f32s.
        assert_eq!(decode_vector("Zm9vYmFy"), None);
    }

    proptest! {
        #[test]
        fn vectors_round_trip(vector in proptest::collection::vec(-1e6_f32..1e6, 0..40)) {
            prop_assert_eq!(decode_vector(&encode_vector(&vector)), Some(vector));
        }
    }
}
