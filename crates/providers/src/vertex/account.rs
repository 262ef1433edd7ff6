//! A Google service-account key file, the JSON Google issues for a service account
//! (`type`, `project_id`, `private_key_id`, `private_key`, `client_email`, `token_uri`, …),
//! read once and kept with its private key parsed, ready to sign.
//! <https://cloud.google.com/iam/docs/keys-create-delete>

use std::sync::Arc;

use ring::signature::RsaKeyPair;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Google's OAuth 2 token endpoint, used when a key file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// Why a key file cannot be used, or a JWT not signed. No message ever holds the private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VertexError {
    /// The text is not JSON, or a field is not a string.
    #[error("the service-account key file is not valid: {0}")]
    Json(String),
    /// A key file of another kind (`authorized_user`, `external_account`, …).
    #[error(
        "the key file is of type `{0}`, not `service_account`: create a service-account key \
         (IAM → Service accounts → Keys) for Vertex AI"
    )]
    NotServiceAccount(String),
    /// A required field is missing or empty.
    #[error("the service-account key file has no `{0}`")]
    MissingField(&'static str),
    /// `token_uri` is not an `http` or `https` URL.
    #[error("the service-account key file's `token_uri` is not an http(s) URL: {0}")]
    TokenUri(String),
    /// `private_key` is not a usable RSA key.
    #[error("the service-account key file's `private_key` {0}")]
    PrivateKey(String),
    /// Signing failed.
    #[error("signing the service-account JWT failed")]
    Signing,
    /// The system clock reads a time before 1970.
    #[error("the system clock is set before 1970")]
    Clock,
}

/// A Google service account, from its JSON key file: its identity, project, token endpoint
/// and RSA private key. Cheap to clone (the key is shared). `Debug` prints no key.
#[derive(Clone)]
pub struct ServiceAccount {
    project_id: String,
    private_key_id: Option<String>,
    client_email: String,
    token_uri: String,
    key: Arc<RsaKeyPair>,
}

/// The fields of a key file that are read; the others (`client_id`, `auth_uri`, …) are ignored.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<SecretString>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccount {
    /// Reads a key file's JSON text and parses its private key (PEM, PKCS#8, RSA).
    pub fn from_json(text: &str) -> Result<ServiceAccount, VertexError> {
        let file: KeyFile =
            serde_json::from_str(text).map_err(|error| VertexError::Json(error.to_string()))?;
        let present = |value: Option<String>| value.filter(|value| !value.trim().is_empty());
        match file.kind.as_deref() {
            Some("service_account") => {}
            Some(other) => return Err(VertexError::NotServiceAccount(other.to_owned())),
            None => return Err(VertexError::MissingField("type")),
        }
        let project_id = present(file.project_id).ok_or(VertexError::MissingField("project_id"))?;
        let client_email =
            present(file.client_email).ok_or(VertexError::MissingField("client_email"))?;
        let private_key = file
            .private_key
            .ok_or(VertexError::MissingField("private_key"))?;
        let token_uri = present(file.token_uri).unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        check_token_uri(&token_uri)?;
        Ok(ServiceAccount {
            project_id,
            private_key_id: present(file.private_key_id),
            client_email,
            token_uri,
            key: Arc::new(parse_key(&private_key)?),
        })
    }

    /// The project the key belongs to (the usual project of the Vertex AI calls).
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// Where the signed JWT is exchanged for an access token.
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The service account's address, the JWT's issuer.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The id of the key, the JWT header's `kid`.
    pub fn private_key_id(&self) -> Option<&str> {
        self.private_key_id.as_deref()
    }

    /// The same account exchanging its JWTs at `token_uri` instead (a test server, a private
    /// endpoint); the JWT's audience follows.
    pub fn with_token_uri(mut self, token_uri: &str) -> Result<ServiceAccount, VertexError> {
        check_token_uri(token_uri)?;
        token_uri.clone_into(&mut self.token_uri);
        Ok(self)
    }

    /// The RSA key that signs the JWTs.
    pub(super) fn key(&self) -> &RsaKeyPair {
        &self.key
    }
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

fn check_token_uri(token_uri: &str) -> Result<(), VertexError> {
    crate::http::Target::parse(token_uri)
        .map(drop)
        .map_err(|_| VertexError::TokenUri(token_uri.to_owned()))
}

/// The PKCS#8 PEM block of a key file (`-----BEGIN PRIVATE KEY-----`) as a ring key pair. The
/// decoded DER is zeroed when dropped.
fn parse_key(pem: &SecretString) -> Result<RsaKeyPair, VertexError> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.expose_secret().as_bytes()).map_err(|_| {
        VertexError::PrivateKey(
            "is not a PEM `PRIVATE KEY` (PKCS#8) block as Google writes it".to_owned(),
        )
    })?;
    RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|rejected| {
        VertexError::PrivateKey(format!(
            "is not an RSA key of 2048 to 8192 bits ({rejected})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/vertex/service_account.json");

    fn fixture_with(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut value: Value = serde_json::from_str(FIXTURE).expect("fixture JSON");
        change(value.as_object_mut().expect("an object"));
        value.to_string()
    }

    #[test]
    fn reads_the_fixture() {
        let account = ServiceAccount::from_json(FIXTURE).expect("reads");
        assert_eq!(account.project_id(), "switchyard-test");
        assert_eq!(
            account.client_email(),
            "mock@switchyard-test.iam.gserviceaccount.com"
        );
        assert_eq!(account.token_uri(), DEFAULT_TOKEN_URI);
        assert_eq!(
            account.private_key_id(),
            Some("093ab96b024444f3a12daff2dca01c667da09120")
        );
        assert_eq!(account.key().public().modulus_len(), 256);
    }

    #[test]
    fn debug_prints_no_key() {
        let account = ServiceAccount::from_json(FIXTURE).expect("reads");
        let debug = format!("{account:?}");
        assert!(debug.contains("switchyard-test"), "{debug}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert!(!debug.contains("MII"), "{debug}");
        assert!(!debug.contains("modulus"), "{debug}");
    }

    #[test]
    fn token_uri_defaults_and_can_be_replaced() {
        let text = fixture_with(|file| {
            file.remove("token_uri");
        });
        let account = ServiceAccount::from_json(&text).expect("reads");
        assert_eq!(account.token_uri(), DEFAULT_TOKEN_URI);
        let account = account
            .with_token_uri("http://127.0.0.1:4010/token")
            .expect("an http URL");
        assert_eq!(account.token_uri(), "http://127.0.0.1:4010/token");
        assert_eq!(
            account.clone().with_token_uri("file:///etc/passwd").err(),
            Some(VertexError::TokenUri("file:///etc/passwd".into()))
        );
    }

    #[test]
    fn refuses_other_key_files() {
        let text = fixture_with(|file| {
            file.insert("type".into(), json!("authorized_user"));
        });
        assert_eq!(
            ServiceAccount::from_json(&text).err(),
            Some(VertexError::NotServiceAccount("authorized_user".into()))
        );
        for field in ["type", "project_id", "client_email", "private_key"] {
            let text = fixture_with(|file| {
                file.remove(field);
            });
            assert_eq!(
                ServiceAccount::from_json(&text).err(),
                Some(VertexError::MissingField(field)),
                "{field}"
            );
        }
        let error = ServiceAccount::from_json("{\"type\": ").expect_err("not JSON");
        assert!(matches!(error, VertexError::Json(_)), "{error:?}");
    }

    #[test]
    fn bad_keys_are_named_without_their_content() {
        let text = fixture_with(|file| {
            file.insert(
                "private_key".into(),
                json!(
                    "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END PRIVATE KEY-----\n"
                ),
            );
        });
        let error = ServiceAccount::from_json(&text).expect_err("not a key");
        assert!(matches!(error, VertexError::PrivateKey(_)), "{error:?}");
        assert!(!error.to_string().contains("c2VjcmV0"), "{error}");

        let text = fixture_with(|file| {
            file.insert("private_key".into(), json!("secret-material"));
        });
        let error = ServiceAccount::from_json(&text).expect_err("not PEM");
        assert!(!error.to_string().contains("secret-material"), "{error}");
    }
}
