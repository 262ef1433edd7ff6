//! Signed notes (C2SP `signed-note`, as Go's `golang.org/x/mod/sumdb/note` writes them) with
//! Ed25519 keys: the text, a blank line, and one line per signature,
//! `— <key name> base64(key id ‖ signature)`. A key's id is the first four bytes of
//! SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key). Keys are written as
//! `<name>+<id in hex>+base64(0x01 ‖ public key)` (a verifier key) and
//! `PRIVATE+KEY+<name>+<id in hex>+base64(0x01 ‖ seed)` (a signer key), so keys made by other
//! tools of that family are read here and ours there.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// The algorithm byte of Ed25519 keys.
const ALG_ED25519: u8 = 1;

/// Why a key or a note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The key is not written as a key of this kind.
    #[error("malformed key: {0}")]
    Key(&'static str),
    /// The note is not written as a signed note.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// No signature on the note is by a key given.
    #[error("the note is not signed by any key given")]
    Unverified,
    /// A signature by a key given does not hold: the note was changed.
    #[error("the signature of {0} does not hold: the note was changed")]
    BadSignature(String),
    /// The system gave no randomness for a new key.
    #[error("no randomness for a new key")]
    Random,
}

fn key_id(name: &str, public: &[u8]) -> u32 {
    let mut material = Vec::with_capacity(name.len() + 2 + public.len());
    material.extend_from_slice(name.as_bytes());
    material.push(b'\n');
    material.push(ALG_ED25519);
    material.extend_from_slice(public);
    let hash = digest(&SHA256, &material);
    let bytes = hash.as_ref();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// Reads `<name>+<hex id>+<base64 of algorithm and key>` into its parts, checked.
fn parse_key(text: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::Key("expected name+id+key"));
    };
    if !valid_name(name) {
        return Err(NoteError::Key("the name is empty or has spaces or '+'"));
    }
    if id.len() != 8
        || !id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(NoteError::Key("the id is not eight lowercase hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| NoteError::Key("the id is not hex"))?;
    let key = STANDARD
        .decode(key)
        .map_err(|_| NoteError::Key("the key is not base64"))?;
    match key.split_first() {
        Some((&ALG_ED25519, rest)) if rest.len() == 32 => Ok((name, id, rest.to_vec())),
        Some((&ALG_ED25519, _)) => Err(NoteError::Key("an Ed25519 key is 32 bytes")),
        _ => Err(NoteError::Key("not an Ed25519 key")),
    }
}

fn encode_key(name: &str, id: u32, key: &[u8]) -> String {
    let mut material = Vec::with_capacity(33);
    material.push(ALG_ED25519);
    material.extend_from_slice(key);
    format!("{name}+{id:08x}+{}", STANDARD.encode(material))
}

/// A public key that checks notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    id: u32,
    public: Vec<u8>,
}

impl Verifier {
    /// Reads a verifier key (`name+id+base64`), checking that its id is its key's.
    pub fn parse(text: &str) -> Result<Verifier, NoteError> {
        let (name, id, public) = parse_key(text.trim())?;
        if key_id(name, &public) != id {
            return Err(NoteError::Key("the id does not match the key"));
        }
        Ok(Verifier {
            name: name.to_owned(),
            id,
            public,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public)
            .verify(text, signature)
            .is_ok()
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&encode_key(&self.name, self.id, &self.public))
    }
}

/// A private key that signs notes. Its `Debug` shows only the public half.
pub struct Signer {
    name: String,
    id: u32,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("verifier", &self.verifier().to_string())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A new key named `name`, from the system's randomness.
    pub fn generate(name: &str) -> Result<Signer, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key("the name is empty or has spaces or '+'"));
        }
        let mut seed = [0; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| NoteError::Random)?;
        Signer::from_seed(name, seed)
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer, NoteError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| NoteError::Key("not an Ed25519 seed"))?;
        Ok(Signer {
            name: name.to_owned(),
            id: key_id(name, pair.public_key().as_ref()),
            seed,
            pair,
        })
    }

    /// Reads a signer key (`PRIVATE+KEY+name+id+base64`), checking that its id is its key's.
    pub fn parse(text: &str) -> Result<Signer, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::Key("a signer key starts with PRIVATE+KEY+"))?;
        let (name, id, seed) = parse_key(rest)?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| NoteError::Key("an Ed25519 seed is 32 bytes"))?;
        let signer = Signer::from_seed(name, seed)?;
        if signer.id != id {
            return Err(NoteError::Key("the id does not match the key"));
        }
        Ok(signer)
    }

    /// The key written as a signer key, to be kept secret.
    pub fn to_private_string(&self) -> String {
        format!(
            "PRIVATE+KEY+{}",
            encode_key(&self.name, self.id, &self.seed)
        )
    }

    /// The public half.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            id: self.id,
            public: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// A secret derived from the key for `purpose` (HMAC-SHA256 of the purpose under the
    /// key's seed): keyed hashes that only the key's holder can make.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.seed);
        let tag = ring::hmac::sign(&key, purpose.as_bytes());
        let mut secret = [0; 32];
        secret.copy_from_slice(tag.as_ref());
        secret
    }

    /// Signs `text` (which must end with a newline and hold no blank line): the signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::Malformed("the text does not end with a newline"));
        }
        if text.contains("\n\n") || text.starts_with('\n') {
            return Err(NoteError::Malformed("the text holds a blank line"));
        }
        let signature = self.pair.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&self.id.to_be_bytes());
        blob.extend_from_slice(signature.as_ref());
        Ok(format!(
            "{text}\n\u{2014} {} {}\n",
            self.name,
            STANDARD.encode(blob)
        ))
    }
}

/// A note's text, checked against `verifiers`: at least one signature by one of them, and
/// none by one of them that fails. Signatures by other keys are ignored. Returns the text and
/// the key that signed it.
pub fn open<'a>(
    note: &str,
    verifiers: &'a [Verifier],
) -> Result<(String, &'a Verifier), NoteError> {
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the signatures do not end with a newline",
        ));
    }
    let mut verified = None;
    for line in signatures.lines() {
        let line = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
            "a signature line starts with an em dash",
        ))?;
        let (name, blob) = line.split_once(' ').ok_or(NoteError::Malformed(
            "a signature line is name and signature",
        ))?;
        let blob = STANDARD
            .decode(blob)
            .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        if blob.len() < 5 {
            return Err(NoteError::Malformed("a signature is too short"));
        }
        let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
        let Some(verifier) = verifiers.iter().find(|v| v.name == name && v.id == id) else {
            continue;
        };
        if !verifier.verify(text.as_bytes(), &blob[4..]) {
            return Err(NoteError::BadSignature(verifier.to_string()));
        }
        verified.get_or_insert(verifier);
    }
    let verifier = verified.ok_or(NoteError::Unverified)?;
    Ok((text.to_owned(), verifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const SIGNATURE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn keys_and_signatures_match_the_reference_implementation_byte_for_byte() {
        let signer = Signer::parse(SKEY).expect("signer key");
        assert_eq!(signer.verifier().to_string(), VKEY);
        assert_eq!(signer.to_private_string(), SKEY);
        let note = signer.sign(TEXT).expect("signs");
        assert_eq!(note, format!("{TEXT}\n{SIGNATURE}"));
        let verifiers = [Verifier::parse(VKEY).expect("verifier key")];
        let (text, by) = open(&note, &verifiers).expect("opens");
        assert_eq!((text.as_str(), by.name()), (TEXT, "PeterNeumann"));
    }

    #[test]
    fn a_changed_note_or_an_unknown_key_is_refused() {
        let verifiers = [Verifier::parse(VKEY).expect("verifier key")];
        let note = format!("{TEXT}\n{SIGNATURE}");
        let changed = note.replace("cryptography", "cryptographY");
        assert!(matches!(
            open(&changed, &verifiers),
            Err(NoteError::BadSignature(_))
        ));
        let other = Signer::generate("other").expect("new key");
        assert_eq!(
            open(&note, &[other.verifier()]).map(|(text, _)| text),
            Err(NoteError::Unverified)
        );
        // Signed by both: either key opens it.
        let both = format!("{}{}", other.sign(TEXT).expect("signs"), SIGNATURE);
        assert!(open(&both, &verifiers).is_ok());
        assert!(open(&both, &[other.verifier()]).is_ok());
    }

    #[test]
    fn mangled_keys_are_refused() {
        let bytes = VKEY.as_bytes();
        for i in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[i] = mangled[i].wrapping_add(1);
            if let Ok(text) = std::str::from_utf8(&mangled) {
                assert!(Verifier::parse(text).is_err(), "{text}");
            }
        }
        assert!(Verifier::parse(&VKEY[..VKEY.len() - 4]).is_err());
        assert!(Signer::parse(VKEY).is_err());
        assert!(Signer::generate("has space").is_err());
        assert!(Signer::generate("has+plus").is_err());
    }

    #[test]
    fn a_new_key_round_trips_through_its_text() {
        let signer = Signer::generate("switchyard.example/audit").expect("new key");
        let again = Signer::parse(&signer.to_private_string()).expect("reads back");
        assert_eq!(again.verifier(), signer.verifier());
        assert!(!format!("{signer:?}").contains(&signer.to_private_string()));
        assert!(signer.sign("no newline").is_err());
        assert!(signer.sign("a\n\nb\n").is_err());
    }
}
