//! AWS credentials and the Signature Version 4 headers of one Bedrock call, computed by AWS's
//! own `aws-sigv4` (canonical request, string to sign, derived key) rather than by hand.
//!
//! Signing follows what the AWS SDKs do for Bedrock: the path is normalised and its `%` encoded
//! a second time in the canonical request (so a model id's `%3A` is signed as `%253A`), the
//! body's SHA-256 is signed but not sent as `x-amz-content-sha256`, and a session token is
//! signed and sent as `x-amz-security-token`.
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use switchyard_types::{ApiError, ErrorKind, Origin};

use super::SERVICE;

/// AWS credentials: an access key, its secret and, for temporary credentials, a session token.
/// `Debug` prints neither the secret nor the token.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The access key id (`AKIA…`, or `ASIA…` for temporary credentials).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretString>,
}

impl Credentials {
    /// From `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, through a
    /// lookup fn so tests pass a map. `None` unless both the key and its secret are set and
    /// not empty; an empty token counts as none.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        Some(Credentials {
            access_key_id: set("AWS_ACCESS_KEY_ID")?,
            secret_access_key: SecretString::from(set("AWS_SECRET_ACCESS_KEY")?),
            session_token: set("AWS_SESSION_TOKEN").map(SecretString::from),
        })
    }
}

/// The headers (`authorization`, `x-amz-date`, `x-amz-security-token` with temporary
/// credentials) to add to a POST of `body` to `url` (which includes the host) in `region` for
/// the service `bedrock`, at `time`. `headers` are the headers that are sent (content type and
/// the like): all of them are signed, so none may change afterwards.
pub fn sign(
    credentials: &Credentials,
    region: &str,
    url: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, ApiError> {
    sign_request(
        credentials,
        region,
        SERVICE,
        &Request {
            method: "POST",
            url,
            headers,
            body,
        },
        time,
    )
}

/// What is signed.
pub(crate) struct Request<'a> {
    /// The HTTP method.
    pub(crate) method: &'a str,
    /// The absolute URL.
    pub(crate) url: &'a str,
    /// The headers sent besides the signature's own.
    pub(crate) headers: &'a http::HeaderMap,
    /// The body.
    pub(crate) body: &'a [u8],
}

/// [`sign`] for any service and method (AWS's published test vectors sign for `service`).
pub(crate) fn sign_request(
    credentials: &Credentials,
    region: &str,
    service: &str,
    request: &Request<'_>,
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, ApiError> {
    // aws-sigv4 panics on a URL without a host: check before handing it over.
    let uri: http::Uri = request
        .url
        .parse()
        .map_err(|_| signing_error("the Bedrock URL to sign is not a valid URL"))?;
    if uri.host().is_none() {
        return Err(signing_error(
            "the Bedrock URL to sign has no host: it must be absolute",
        ));
    }
    let mut headers = Vec::with_capacity(request.headers.len());
    for (name, value) in request.headers {
        let value = value.to_str().map_err(|_| {
            signing_error(format!(
                "the `{name}` header of a Bedrock request is not visible ASCII and cannot be signed"
            ))
        })?;
        headers.push((name.as_str(), value));
    }
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose_secret().to_owned(),
        credentials
            .session_token
            .as_ref()
            .map(|token| token.expose_secret().to_owned()),
        None,
        "switchyard",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| signing_error("incomplete SigV4 signing parameters"))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        headers.into_iter(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|_| signing_error("the Bedrock request cannot be signed"))?;
    let (instructions, _signature) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|_| signing_error("the Bedrock request cannot be signed"))?
        .into_parts();
    let (signed, _params) = instructions.into_parts();
    signed
        .into_iter()
        .map(|header| {
            let name = HeaderName::try_from(header.name())
                .map_err(|_| signing_error("SigV4 produced an invalid header name"))?;
            let mut value = HeaderValue::try_from(header.value())
                .map_err(|_| signing_error("SigV4 produced an invalid header value"))?;
            value.set_sensitive(header.sensitive() || name == http::header::AUTHORIZATION);
            Ok((name, value))
        })
        .collect()
}

/// A signing failure: the gateway's own fault (its configuration), never the client's.
fn signing_error(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Internal, Origin::Internal, message)
        .with_code("request_signing_failed")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    /// The credentials of AWS's SigV4 test suite.
    fn suite_credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        }
    }

    /// 20150830T123600Z, the suite's time.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_sign(
        credentials: &Credentials,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> HashMap<String, String> {
        let request = Request {
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers,
            body,
        };
        sign_request(credentials, "us-east-1", "service", &request, suite_time())
            .expect("signs")
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_str().expect("ascii").to_owned()))
            .collect()
    }

    /// The suite's `post-vanilla`: a POST of nothing to `/`.
    #[test]
    fn signs_the_suites_post_vanilla() {
        let signed = suite_sign(&suite_credentials(), &http::HeaderMap::new(), b"");
        assert_eq!(
            signed["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        assert_eq!(signed["x-amz-date"], "20150830T123600Z");
        assert_eq!(signed.len(), 2, "{signed:?}");
    }

    /// The suite's `post-x-www-form-urlencoded`: a body and its signed content type.
    #[test]
    fn signs_the_suites_post_x_www_form_urlencoded() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let signed = suite_sign(&suite_credentials(), &headers, b"Param1=value1");
        assert_eq!(
            signed["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    #[test]
    fn a_session_token_is_signed_and_sent() {
        let credentials = Credentials {
            session_token: Some(SecretString::from("session-token")),
            ..suite_credentials()
        };
        let signed = suite_sign(&credentials, &http::HeaderMap::new(), b"");
        assert_eq!(signed["x-amz-security-token"], "session-token");
        assert!(
            signed["authorization"].contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"),
            "{}",
            signed["authorization"]
        );
    }

    #[test]
    fn bedrock_calls_are_signed_for_bedrock_in_their_region() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let url = format!(
            "{}{}",
            super::super::endpoint("eu-west-3"),
            super::super::path("anthropic.claude-3-haiku-20240307-v1:0", true)
        );
        let signed = sign(
            &suite_credentials(),
            "eu-west-3",
            &url,
            &headers,
            b"{}",
            suite_time(),
        )
        .expect("signs");
        let authorization = &signed
            .iter()
            .find(|(name, _)| name == http::header::AUTHORIZATION)
            .expect("an authorization header")
            .1;
        assert!(authorization.is_sensitive());
        let authorization = authorization.to_str().expect("ascii");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-3/bedrock/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, Signature="
            ),
            "{authorization}"
        );
        // A different body is a different signature.
        let other = sign(
            &suite_credentials(),
            "eu-west-3",
            &url,
            &headers,
            b"{ }",
            suite_time(),
        )
        .expect("signs");
        assert_ne!(signed, other);
    }

    #[test]
    fn relative_urls_and_unsignable_headers_are_errors() {
        let error = sign(
            &suite_credentials(),
            "us-east-1",
            "/model/m/converse",
            &http::HeaderMap::new(),
            b"",
            suite_time(),
        )
        .expect_err("no host");
        assert_eq!(error.kind, ErrorKind::Internal);
        assert_eq!(error.code.as_deref(), Some("request_signing_failed"));

        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-odd",
            HeaderValue::from_bytes(b"caf\xe9").expect("opaque bytes are a valid value"),
        );
        let error = sign(
            &suite_credentials(),
            "us-east-1",
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
            &headers,
            b"",
            suite_time(),
        )
        .expect_err("not ASCII");
        assert!(error.message.contains("x-odd"), "{}", error.message);
    }

    #[test]
    fn credentials_come_from_the_environment() {
        let env: HashMap<&str, &str> = [
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", ""),
        ]
        .into();
        let lookup = |name: &str| env.get(name).map(|value| (*value).to_owned());
        let credentials = Credentials::from_env(lookup).expect("key and secret are set");
        assert_eq!(credentials.access_key_id, "AKIDEXAMPLE");
        assert_eq!(credentials.secret_access_key.expose_secret(), "secret");
        assert!(credentials.session_token.is_none());
        assert!(!format!("{credentials:?}").contains("secret\""));

        let with_token = |name: &str| match name {
            "AWS_SESSION_TOKEN" => Some("token".to_owned()),
            other => lookup(other),
        };
        let credentials = Credentials::from_env(with_token).expect("set");
        assert_eq!(
            credentials
                .session_token
                .as_ref()
                .map(|token| token.expose_secret().to_owned()),
            Some("token".to_owned())
        );

        assert!(
            Credentials::from_env(|name| lookup(name).filter(|_| name != "AWS_SECRET_ACCESS_KEY"))
                .is_none()
        );
        assert!(Credentials::from_env(|_| None).is_none());
    }
}
