//! Bedrock errors into [`ApiError`]: an error answer (the type in the `x-amzn-errortype`
//! header, the text in a `{"message": …}` body) and an exception frame inside a stream (the
//! type in its `:exception-type` header).
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors>,
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html>

use serde::Deserialize;
use switchyard_types::{ApiError, ErrorKind, Origin};

/// Reads an upstream error answer. The kind follows the error type (the HTTP status when the
/// type is missing or unknown); the code is the type's name (`ThrottlingException`); the
/// message is the body's. The wait before a retry comes from `retry-after`.
pub fn decode(status: u16, headers: &http::HeaderMap, body: &[u8]) -> ApiError {
    let wire: WireError = serde_json::from_slice(body).unwrap_or_default();
    let error_type = headers
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or(wire.kind)
        .map(|kind| type_name(&kind).to_owned())
        .filter(|kind| !kind.is_empty());
    let kind = error_type
        .as_deref()
        .and_then(kind_from_type)
        .unwrap_or_else(|| ErrorKind::from_status(status));
    let message = wire
        .message
        .filter(|message| !message.trim().is_empty())
        .unwrap_or_else(|| {
            let reason = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|status| status.canonical_reason())
                .unwrap_or("error");
            format!("Bedrock upstream answered HTTP {status} ({reason}) without error details")
        });
    let mut error = ApiError::new(kind, Origin::Upstream, message);
    error.code = error_type;
    error.retry_after = crate::ratelimit::retry_after(headers);
    error
}

/// The error an exception frame of a stream stands for: `exception_type` is its
/// `:exception-type` header (`throttlingException`), `payload` its `{"message": …}` body.
pub(crate) fn exception(exception_type: &str, payload: &[u8]) -> ApiError {
    let wire: WireError = serde_json::from_slice(payload).unwrap_or_default();
    let code = pascal_case(exception_type);
    let kind = kind_from_type(&code).unwrap_or(ErrorKind::BadGateway);
    let message = wire
        .message
        .filter(|message| !message.trim().is_empty())
        .unwrap_or_else(|| format!("the upstream Bedrock stream reported {code}"));
    ApiError::new(kind, Origin::Upstream, message).with_code(code)
}

/// The kind an error type stands for, from the errors Converse and ConverseStream document and
/// the common errors of every AWS API; `None` for other types.
pub fn kind_from_type(error_type: &str) -> Option<ErrorKind> {
    let kind = match pascal_case(error_type).as_str() {
        "ValidationException" | "SerializationException" => ErrorKind::InvalidRequest,
        // Bad gateway credentials: the operator's key or signature, not the client's request.
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId" => ErrorKind::Authentication,
        "AccessDeniedException" => ErrorKind::PermissionDenied,
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "ThrottlingException" | "ServiceQuotaExceededException" => ErrorKind::RateLimited,
        // The model is being loaded (429 on the wire): nothing the caller's rate changes.
        "ModelNotReadyException" | "ServiceUnavailableException" => ErrorKind::Unavailable,
        "ModelTimeoutException" => ErrorKind::Timeout,
        // 424: the model failed, before or during the stream.
        "ModelErrorException" | "ModelStreamErrorException" => ErrorKind::BadGateway,
        "InternalServerException" | "InternalFailure" => ErrorKind::Internal,
        _ => return None,
    };
    Some(kind)
}

/// The bare type name of `x-amzn-errortype` (`ValidationException:http://internal.amazon.com/…`)
/// or of an awsJson `__type` (`com.amazon.coral.service#UnrecognizedClientException`).
fn type_name(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or(raw);
    name.rsplit('#').next().unwrap_or(name).trim()
}

/// `throttlingException` (a stream's spelling) as `ThrottlingException` (the HTTP one).
fn pascal_case(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// An error body as read: Bedrock writes `message`, the signature and token errors of AWS's
/// front end `Message`, and awsJson bodies name their type in `__type`.
#[derive(Debug, Default, Deserialize)]
struct WireError {
    #[serde(alias = "Message")]
    message: Option<String>,
    #[serde(rename = "__type", alias = "code", alias = "Code")]
    kind: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderMap, HeaderValue};

    use super::*;

    fn typed(error_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
        headers
    }

    const THROTTLED: &str = include_str!("../../tests/fixtures/bedrock/error_throttled.json");

    #[test]
    fn throttling_keeps_message_code_and_retry_after() {
        let mut headers =
            typed("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/");
        headers.insert("retry-after", HeaderValue::from_static("2"));
        let error = decode(429, &headers, THROTTLED.as_bytes());
        assert_eq!(error.kind, ErrorKind::RateLimited);
        assert_eq!(error.origin, Origin::Upstream);
        assert_eq!(
            error.message,
            "Too many requests, please wait before trying again."
        );
        assert_eq!(error.code.as_deref(), Some("ThrottlingException"));
        assert_eq!(error.retry_after, Some(Duration::from_secs(2)));
        assert!(error.retryable());
    }

    #[test]
    fn documented_error_types_map_to_kinds() {
        for (status, error_type, kind) in [
            (400, "ValidationException", ErrorKind::InvalidRequest),
            (403, "AccessDeniedException", ErrorKind::PermissionDenied),
            (404, "ResourceNotFoundException", ErrorKind::NotFound),
            (408, "ModelTimeoutException", ErrorKind::Timeout),
            (424, "ModelErrorException", ErrorKind::BadGateway),
            (429, "ThrottlingException", ErrorKind::RateLimited),
            (429, "ModelNotReadyException", ErrorKind::Unavailable),
            (500, "InternalServerException", ErrorKind::Internal),
            (503, "ServiceUnavailableException", ErrorKind::Unavailable),
            (400, "ServiceQuotaExceededException", ErrorKind::RateLimited),
            (
                403,
                "UnrecognizedClientException",
                ErrorKind::Authentication,
            ),
            (403, "InvalidSignatureException", ErrorKind::Authentication),
            (
                403,
                "MissingAuthenticationTokenException",
                ErrorKind::Authentication,
            ),
            (403, "ExpiredTokenException", ErrorKind::Authentication),
        ] {
            let body = br#"{"message":"m"}"#;
            let error = decode(status, &typed(error_type), body);
            assert_eq!(error.kind, kind, "{error_type}");
            assert_eq!(error.code.as_deref(), Some(error_type));
            assert_eq!(error.message, "m");
        }
    }

    #[test]
    fn the_type_may_come_from_the_body_and_the_message_capitalised() {
        let body = br#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","Message":"The security token included in the request is invalid."}"#;
        let error = decode(403, &HeaderMap::new(), body);
        assert_eq!(error.kind, ErrorKind::Authentication);
        assert_eq!(error.code.as_deref(), Some("UnrecognizedClientException"));
        assert_eq!(
            error.message,
            "The security token included in the request is invalid."
        );
    }

    #[test]
    fn unknown_types_and_bodies_fall_back_to_the_status() {
        let error = decode(503, &typed("SomethingNewException"), b"");
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert_eq!(error.code.as_deref(), Some("SomethingNewException"));
        assert_eq!(
            error.message,
            "Bedrock upstream answered HTTP 503 (Service Unavailable) without error details"
        );
        let error = decode(502, &HeaderMap::new(), b"<html>secret proxy page</html>");
        assert_eq!(error.kind, ErrorKind::BadGateway);
        assert_eq!(error.code, None);
        assert!(!error.message.contains("secret"), "{}", error.message);
    }

    #[test]
    fn stream_exceptions_use_the_http_names() {
        for (exception_type, kind) in [
            ("internalServerException", ErrorKind::Internal),
            ("modelStreamErrorException", ErrorKind::BadGateway),
            ("throttlingException", ErrorKind::RateLimited),
            ("validationException", ErrorKind::InvalidRequest),
            ("serviceUnavailableException", ErrorKind::Unavailable),
            ("modelTimeoutException", ErrorKind::Timeout),
            ("newKindOfException", ErrorKind::BadGateway),
        ] {
            let error = exception(exception_type, br#"{"message":"stream broke"}"#);
            assert_eq!(error.kind, kind, "{exception_type}");
            assert_eq!(error.origin, Origin::Upstream);
            assert_eq!(error.message, "stream broke");
            assert_eq!(
                error.code.as_deref(),
                Some(pascal_case(exception_type).as_str())
            );
        }
        let error = exception("throttlingException", b"not json");
        assert_eq!(
            error.message,
            "the upstream Bedrock stream reported ThrottlingException"
        );
    }
}
