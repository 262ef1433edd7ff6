//! Verifies the JWT a service account sends to the token endpoint, as Google does: the issuer
//! must be the one account the mock knows, the RS256 signature must check out against that
//! account's public key, the audience must be a token endpoint, the lifetime at most an hour
//! and current, and the scope must include `cloud-platform`. Each refusal carries Google's
//! OAuth error code and description.
//! <https://developers.google.com/identity/protocols/oauth2/service-account#error-codes>
//!
//! The key pair is a test key: the private half is in
//! `crates/providers/tests/fixtures/vertex/service_account.json`, the public half (PKCS#1
//! `RSA PUBLIC KEY`, the form ring verifies with) is embedded here.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The service account the mock knows (the test key file's `client_email`).
pub(crate) const CLIENT_EMAIL: &str = "mock@switchyard-test.iam.gserviceaccount.com";
/// Its key's id (the key file's `private_key_id`), the JWT header's `kid` when sent.
pub(crate) const PRIVATE_KEY_ID: &str = "093ab96b024444f3a12daff2dca01c667da09120";
/// The public half of the test key.
const PUBLIC_KEY_PEM: &str = include_str!("test_public_key.pem");
/// The scope Vertex AI needs.
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's longest assertion lifetime.
const MAX_LIFETIME: u64 = 3600;
/// How far in the future `iat` may be (a client clock slightly ahead).
const CLOCK_SKEW: u64 = 300;

/// Why an assertion is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Not three base64url parts, or a header or claims that are not JSON objects.
    Malformed,
    /// An issuer other than the mock's account.
    UnknownAccount,
    /// Not RS256, another key's `kid`, or a signature that does not verify.
    Signature,
    /// No audience, or one that is not a token endpoint URL.
    Audience,
    /// `iat`/`exp` missing, expired, in the future or more than an hour apart.
    Timeframe,
    /// No `cloud-platform` scope.
    Scope,
}

impl Rejection {
    /// The OAuth `error` code.
    pub(crate) fn error(self) -> &'static str {
        match self {
            Rejection::Scope => "invalid_scope",
            Rejection::Malformed
            | Rejection::UnknownAccount
            | Rejection::Signature
            | Rejection::Audience
            | Rejection::Timeframe => "invalid_grant",
        }
    }

    /// The `error_description`, in Google's words where known.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Rejection::Malformed => "Invalid JWT: the assertion is not a signed JWT.",
            Rejection::UnknownAccount => "Invalid grant: account not found",
            Rejection::Signature => "Invalid JWT Signature.",
            Rejection::Audience => {
                "Invalid JWT: Failed audience check. The right audience is this endpoint's URL."
            }
            Rejection::Timeframe => {
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
                 timeframe. Check your iat and exp values in the JWT claim."
            }
            Rejection::Scope => "Invalid OAuth scope or ID token audience provided.",
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    scope: Option<String>,
    aud: Option<String>,
    iat: Option<u64>,
    exp: Option<u64>,
}

/// Checks `assertion` at `now` (Unix seconds).
pub(crate) fn verify(assertion: &str, now: u64) -> Result<(), Rejection> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let signed = &assertion[..header.len() + 1 + claims.len()];
    let header: Header = decode(header)?;
    let claims: Claims = decode(claims)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Rejection::Malformed)?;

    // Google finds the key by the issuer first, then checks the signature with it.
    if claims.iss.as_deref() != Some(CLIENT_EMAIL) {
        return Err(Rejection::UnknownAccount);
    }
    if header.alg.as_deref() != Some("RS256")
        || header
            .kid
            .as_deref()
            .is_some_and(|kid| kid != PRIVATE_KEY_ID)
    {
        return Err(Rejection::Signature);
    }
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key()?)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| Rejection::Signature)?;

    if claims.aud.as_deref().and_then(url_path) != Some("/token") {
        return Err(Rejection::Audience);
    }
    let (Some(iat), Some(exp)) = (claims.iat, claims.exp) else {
        return Err(Rejection::Timeframe);
    };
    if exp <= now || exp <= iat || exp - iat > MAX_LIFETIME || iat > now + CLOCK_SKEW {
        return Err(Rejection::Timeframe);
    }
    if !claims
        .scope
        .as_deref()
        .is_some_and(|scope| scope.split(' ').any(|scope| scope == SCOPE))
    {
        return Err(Rejection::Scope);
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(part: &str) -> Result<T, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)
}

/// The DER `RSAPublicKey` of the embedded PEM.
fn public_key() -> Result<Vec<u8>, Rejection> {
    let body: String = PUBLIC_KEY_PEM
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    // The embedded file is valid; were it not, nothing would verify.
    STANDARD.decode(body).map_err(|_| Rejection::Signature)
}

/// The path of an absolute `http(s)` URL, without query or fragment.
fn url_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let path = &rest[rest.find('/')?..];
    Some(path.split(['?', '#']).next().unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_token_endpoint_urls() {
        assert_eq!(
            url_path("https://oauth2.googleapis.com/token"),
            Some("/token")
        );
        assert_eq!(
            url_path("http://127.0.0.1:4010/token?expires_in=2"),
            Some("/token")
        );
        assert_eq!(url_path("http://127.0.0.1:4010"), None);
        assert_eq!(url_path("switchyard"), None);
    }

    #[test]
    fn the_embedded_public_key_parses() {
        // An RSA-2048 `RSAPublicKey`: SEQUENCE, 266 bytes.
        let der = public_key().expect("base64");
        assert_eq!(der.len(), 270);
        assert_eq!(der[0], 0x30);
    }

    #[test]
    fn garbage_is_malformed() {
        for assertion in ["", "a.b", "a.b.c.d", "e30.e30.!!", "bm90IGpzb24.e30.AA"] {
            assert_eq!(
                verify(assertion, 0),
                Err(Rejection::Malformed),
                "{assertion}"
            );
        }
    }
}
