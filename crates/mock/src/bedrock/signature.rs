//! Verifies the AWS Signature Version 4 of a Bedrock call, as AWS's front end does: the mock
//! knows the test credentials ([`ACCESS_KEY_ID`], [`SECRET_ACCESS_KEY`]), takes the region,
//! date and signed headers the `Authorization` header names, recomputes the signature with
//! `aws-sigv4` from the request it received (method, path, query, those headers, the body's
//! hash) and compares. A session token, when one is sent, is taken as it comes.
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>
//!
//! The clock is not checked: AWS refuses signatures over five minutes old, the mock does not,
//! so tests may sign at any fixed time.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use axum::http::request::Parts;

/// The access key id the mock accepts.
pub(crate) const ACCESS_KEY_ID: &str = "AKIDMOCK";
/// Its secret.
pub(crate) const SECRET_ACCESS_KEY: &str = "mock-secret";

/// The service a Bedrock signature must be scoped to.
const SERVICE: &str = "bedrock";

/// Why a request is refused, each with the error type and message AWS answers with (all 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not a SigV4 one, or no `x-amz-date`.
    Incomplete(String),
    /// An access key the mock does not know.
    UnknownKey,
    /// A signature that does not match, or a credential scope that cannot.
    Mismatch(String),
}

impl Refusal {
    /// The `x-amzn-errortype`.
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            Refusal::Missing => "MissingAuthenticationTokenException",
            Refusal::Incomplete(_) => "IncompleteSignatureException",
            Refusal::UnknownKey => "UnrecognizedClientException",
            Refusal::Mismatch(_) => "InvalidSignatureException",
        }
    }

    /// The body's `message`.
    pub(crate) fn message(&self) -> String {
        match self {
            Refusal::Missing => "Missing Authentication Token".to_owned(),
            Refusal::Incomplete(message) | Refusal::Mismatch(message) => message.clone(),
            Refusal::UnknownKey => {
                "The security token included in the request is invalid.".to_owned()
            }
        }
    }
}

/// The parts of a SigV4 `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// Checks the signature of a request made of `parts` and `body`.
pub(crate) fn verify(parts: &Parts, body: &[u8]) -> Result<(), Refusal> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let Some(authorization) = header("authorization") else {
        return Err(Refusal::Missing);
    };
    let authorization = parse_authorization(authorization).ok_or_else(|| {
        Refusal::Incomplete(format!(
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' \
             parameters of an AWS4-HMAC-SHA256 signature. Authorization={authorization}"
        ))
    })?;
    if authorization.access_key_id != ACCESS_KEY_ID {
        return Err(Refusal::UnknownKey);
    }
    if authorization.service != SERVICE {
        return Err(Refusal::Mismatch(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        )));
    }
    let Some(amz_date) = header("x-amz-date") else {
        return Err(Refusal::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .to_owned(),
        ));
    };
    let time = parse_amz_date(amz_date)
        .ok_or_else(|| Refusal::Incomplete(format!("Invalid X-Amz-Date: {amz_date}")))?;
    if !amz_date.starts_with(authorization.date) {
        return Err(Refusal::Mismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}', from '{amz_date}'.",
            authorization.date,
            amz_date.get(..8).unwrap_or(amz_date)
        )));
    }

    // The headers to sign again: those named, except the ones aws-sigv4 adds itself.
    let host = header("host")
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(ToString::to_string))
        .unwrap_or_default();
    let mut signed = Vec::new();
    let mut checksum = PayloadChecksumKind::NoHeader;
    for name in &authorization.signed_headers {
        match *name {
            "x-amz-date" | "x-amz-security-token" => {}
            "x-amz-content-sha256" => checksum = PayloadChecksumKind::XAmzSha256,
            "host" => signed.push(("host", host.as_str())),
            name => {
                let mut values = parts.headers.get_all(name).iter().peekable();
                if values.peek().is_none() {
                    return Err(Refusal::Mismatch(format!(
                        "The request signature we calculated does not match the signature you \
                         provided: the signed header '{name}' is missing."
                    )));
                }
                for value in values {
                    signed.push((name, value.to_str().unwrap_or_default()));
                }
            }
        }
    }
    let session_token = header("x-amz-security-token").map(str::to_owned);
    let identity = aws_credential_types::Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        session_token,
        None,
        "switchyard-mock",
    )
    .into();
    let mut settings = SigningSettings::default();
    // Only the headers the client named are passed in, so none must be left out.
    settings.excluded_headers = None;
    settings.payload_checksum_kind = checksum;
    let mismatch = || {
        Refusal::Mismatch(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
                .to_owned(),
        )
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(authorization.region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| mismatch())?
        .into();
    // The authority only has to exist: the signed host is the `host` header passed above.
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    let url = format!("http://mock.invalid{path_and_query}");
    let request = SignableRequest::new(
        parts.method.as_str(),
        url,
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| mismatch())?;
    let output = aws_sigv4::http_request::sign(request, &params).map_err(|_| mismatch())?;
    if output.signature() == authorization.signature {
        Ok(())
    } else {
        Err(mismatch())
    }
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/bedrock/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=…`.
fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.trim().strip_prefix("AWS4-HMAC-SHA256")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (key, value) = field.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let mut scope = credential?.split('/');
    let authorization = Authorization {
        access_key_id: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed_headers?.split(';').collect(),
        signature: signature?,
    };
    (scope.next()? == "aws4_request" && scope.next().is_none()).then_some(authorization)
}

/// `20150830T123600Z` as a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u64>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`);
/// `None` before 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let year = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_authorization_headers() {
        let parsed = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDMOCK/20150830/eu-west-1/bedrock/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature=abc123",
        );
        assert_eq!(
            parsed,
            Some(Authorization {
                access_key_id: "AKIDMOCK",
                date: "20150830",
                region: "eu-west-1",
                service: "bedrock",
                signed_headers: vec!["content-type", "host", "x-amz-date"],
                signature: "abc123",
            })
        );
        assert_eq!(parse_authorization("Bearer token"), None);
        assert_eq!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=AKIDMOCK/20150830/bedrock, Signature=x"
            ),
            None
        );
    }

    #[test]
    fn parses_amz_dates() {
        assert_eq!(
            parse_amz_date("20150830T123600Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160))
        );
        assert_eq!(
            parse_amz_date("20000301T000000Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
    }
}
