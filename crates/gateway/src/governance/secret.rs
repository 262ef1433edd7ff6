//! Virtual key secrets: 256 random bits behind a recognisable prefix, shown once, stored only
//! as their SHA-256. A hash lookup is the comparison: no secret is ever compared byte by byte
//! with another, and the master key is compared through its hash in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// What every virtual key starts with, so that secret scanners and people recognise one.
pub const PREFIX: &str = "sy-";

/// A SHA-256.
pub type Digest = [u8; 32];

/// A new secret: the prefix and 256 random bits in base64url (46 characters in all).
pub fn generate() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The SHA-256 of `secret`.
pub fn digest(secret: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref());
    out
}

/// A digest as the store keeps it (lowercase hex).
pub fn hex(digest: &Digest) -> String {
    let mut out = String::with_capacity(64);
    for byte in digest {
        for nibble in [byte >> 4, byte & 0xf] {
            out.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
        }
    }
    out
}

/// A digest read back from its hex form.
pub fn from_hex(text: &str) -> Option<Digest> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, pair) in bytes.chunks_exact(2).enumerate() {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        out[index] = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// What the admin API shows of a secret: its prefix and last four characters.
pub fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{PREFIX}…{tail}")
}

/// Whether two digests are equal, in time that does not depend on where they differ.
pub fn same(a: &Digest, b: &Digest) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(hint(&a), format!("sy-…{}", &a[a.len() - 4..]));
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let value = digest("sy-example");
        assert_eq!(from_hex(&hex(&value)), Some(value));
        assert_eq!(
            hex(&digest("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(from_hex("zz"), None);
        assert!(same(&value, &value));
        assert!(!same(&value, &digest("sy-other")));
    }
}
