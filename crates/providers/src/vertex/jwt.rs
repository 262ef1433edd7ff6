//! The JWT a service account signs to ask for an access token (the "JWT bearer" grant of
//! RFC 7523): header `{"alg":"RS256","typ":"JWT","kid"}`, claims `iss`, `scope`, `aud`, `iat`,
//! `exp`, signed with RSASSA-PKCS1-v1_5 over SHA-256.
//! <https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests>

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::RSA_PKCS1_SHA256;
use serde_json::json;

use super::account::{ServiceAccount, VertexError};

/// The OAuth scope the access token is asked for: all of Google Cloud, which Vertex AI needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// How long an assertion is valid: Google's maximum.
const LIFETIME: Duration = Duration::from_secs(3600);

/// The signed JWT assertion of `account` at `now`: issuer the account's address, audience its
/// token endpoint, valid for an hour.
pub fn assertion(account: &ServiceAccount, now: SystemTime) -> Result<String, VertexError> {
    let iat = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| VertexError::Clock)?
        .as_secs();
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = account.private_key_id() {
        header["kid"] = json!(kid);
    }
    let claims = json!({
        "iss": account.client_email(),
        "scope": SCOPE,
        "aud": account.token_uri(),
        "iat": iat,
        "exp": iat + LIFETIME.as_secs(),
    });
    let mut jwt = String::with_capacity(1024);
    URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut jwt);
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut jwt);
    let key = account.key();
    let mut signature = vec![0; key.public().modulus_len()];
    // PKCS#1 v1.5 padding is deterministic: the random source is not drawn from.
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        jwt.as_bytes(),
        &mut signature,
    )
    .map_err(|_| VertexError::Signing)?;
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
    Ok(jwt)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use serde_json::Value;

    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/vertex/service_account.json");
    /// The fixture key's public half (PKCS#1 `RSA PUBLIC KEY`), as the mock embeds it.
    const PUBLIC_KEY: &str = include_str!("../../../mock/src/vertex/test_public_key.pem");

    fn public_key_der() -> Vec<u8> {
        let body: String = PUBLIC_KEY
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        STANDARD.decode(body).expect("base64")
    }

    fn decode_json(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    }

    #[test]
    fn assertion_is_a_signed_jwt_with_googles_claims() {
        let account = ServiceAccount::from_json(FIXTURE).expect("reads");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let jwt = assertion(&account, now).expect("signs");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "{jwt}");
        assert_eq!(
            decode_json(parts[0]),
            json!({"alg": "RS256", "typ": "JWT", "kid": "093ab96b024444f3a12daff2dca01c667da09120"})
        );
        assert_eq!(
            decode_json(parts[1]),
            json!({
                "iss": "mock@switchyard-test.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_767_225_600,
                "exp": 1_767_229_200,
            })
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url");
        assert_eq!(signature.len(), 256);
        let signed = format!("{}.{}", parts[0], parts[1]);
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key_der());
        public
            .verify(signed.as_bytes(), &signature)
            .expect("the test key's public half verifies the signature");

        // Any change to the signed part breaks the signature.
        let tampered = signed.replace(parts[1], &URL_SAFE_NO_PAD.encode(b"{\"iss\":\"x\"}"));
        assert!(public.verify(tampered.as_bytes(), &signature).is_err());
        // PKCS#1 v1.5 is deterministic: the same claims, the same JWT.
        assert_eq!(assertion(&account, now).expect("signs"), jwt);
    }

    #[test]
    fn the_audience_is_the_token_endpoint_in_use() {
        let account = ServiceAccount::from_json(FIXTURE)
            .expect("reads")
            .with_token_uri("http://127.0.0.1:9/token")
            .expect("a URL");
        let jwt = assertion(&account, SystemTime::now()).expect("signs");
        let claims = decode_json(jwt.split('.').nth(1).expect("claims"));
        assert_eq!(claims["aud"], "http://127.0.0.1:9/token");
        assert_eq!(
            claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
            3600
        );
    }

    #[test]
    fn a_clock_before_1970_is_an_error() {
        let account = ServiceAccount::from_json(FIXTURE).expect("reads");
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(assertion(&account, before), Err(VertexError::Clock));
    }
}
