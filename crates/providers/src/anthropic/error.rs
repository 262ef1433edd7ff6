//! Anthropic error bodies (`{"type":"error","error":{"type":..,"message":..}}`) to and from
//! [`ApiError`]. <https://docs.anthropic.com/en/api/errors>

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_types::{ApiError, ErrorKind, Origin};

/// Reads an upstream error answer. The kind follows the HTTP status; the body's `error.type`
/// becomes the code and its `error.message` the message; `retry-after` (seconds) is kept.
pub fn decode(status: u16, headers: &http::HeaderMap, body: &[u8]) -> ApiError {
    let kind = ErrorKind::from_status(status);
    let (error_type, message) = read_body(body);
    let message = message.unwrap_or_else(|| {
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("error");
        format!("Anthropic upstream answered HTTP {status} ({reason}) without error details")
    });
    let mut error = ApiError::new(kind, Origin::Upstream, message);
    error.code = error_type;
    error.retry_after = crate::ratelimit::retry_after(headers);
    error
}

/// The client-facing body for `error`.
pub fn encode(error: &ApiError) -> Vec<u8> {
    body(error).to_string().into_bytes()
}

/// The body of [`encode`] as JSON, also the payload of a stream's `error` event.
pub(crate) fn body(error: &ApiError) -> Value {
    json!({
        "type": "error",
        "error": {"type": type_name(error.kind), "message": error.message},
    })
}

/// The Anthropic error type for a kind.
pub fn type_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest
        | ErrorKind::Unprocessable
        | ErrorKind::RequestTimeout
        | ErrorKind::Conflict => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::BudgetExceeded => "billing_error",
        ErrorKind::Internal | ErrorKind::BadGateway => "api_error",
        ErrorKind::Unavailable | ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Timeout => "timeout_error",
    }
}

/// The kind an Anthropic error type stands for, for errors that arrive without a status of
/// their own (a stream's `error` event). Unknown types count as an upstream fault.
pub fn kind_from_type(error_type: &str) -> ErrorKind {
    match error_type {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" | "billing_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::PayloadTooLarge,
        "rate_limit_error" => ErrorKind::RateLimited,
        "overloaded_error" => ErrorKind::Overloaded,
        "timeout_error" => ErrorKind::Timeout,
        _ => ErrorKind::Internal,
    }
}

/// The `error` object of an Anthropic error body.
#[derive(Debug, Deserialize)]
pub(crate) struct WireError {
    /// `rate_limit_error`, `overloaded_error`, ...
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    /// Human-readable text.
    pub(crate) message: Option<String>,
}

/// `(error type, message)` from a body that may be Anthropic's shape, another JSON shape
/// (proxies in front of Anthropic) or not JSON at all; a non-JSON body is never echoed.
fn read_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    match value.get("error") {
        Some(Value::String(message)) => (None, Some(message.clone())),
        Some(error) => (text(error.get("type")), text(error.get("message"))),
        None => (None, text(value.get("message"))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderMap, HeaderValue};
    use serde_json::json;

    use super::*;

    #[test]
    fn rate_limit_keeps_message_type_and_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("17"));
        let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
        let error = decode(429, &headers, body);
        assert_eq!(error.kind, ErrorKind::RateLimited);
        assert_eq!(error.origin, Origin::Upstream);
        assert_eq!(
            error.message,
            "Number of request tokens has exceeded your per-minute rate limit"
        );
        assert_eq!(error.code.as_deref(), Some("rate_limit_error"));
        assert_eq!(error.retry_after, Some(Duration::from_secs(17)));
        assert!(error.retryable());
    }

    #[test]
    fn overloaded_529() {
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let error = decode(529, &HeaderMap::new(), body);
        assert_eq!(error.kind, ErrorKind::Overloaded);
        assert_eq!(error.message, "Overloaded");
        assert_eq!(error.code.as_deref(), Some("overloaded_error"));
        assert_eq!(error.retry_after, None);
        assert!(error.retryable());
    }

    #[test]
    fn non_json_and_empty_bodies_get_a_message_without_the_body() {
        let error = decode(502, &HeaderMap::new(), b"<html>secret upstream page</html>");
        assert_eq!(error.kind, ErrorKind::BadGateway);
        assert_eq!(
            error.message,
            "Anthropic upstream answered HTTP 502 (Bad Gateway) without error details"
        );
        assert!(!error.message.contains("secret"));
        let error = decode(500, &HeaderMap::new(), b"");
        assert_eq!(error.kind, ErrorKind::Internal);
        assert!(error.message.contains("HTTP 500"), "{}", error.message);
    }

    #[test]
    fn other_json_shapes_and_bad_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        let error = decode(503, &headers, br#"{"error":"upstream connect error"}"#);
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert_eq!(error.message, "upstream connect error");
        assert_eq!(error.retry_after, None);
        let error = decode(400, &HeaderMap::new(), br#"{"message":"bad thing"}"#);
        assert_eq!(error.message, "bad thing");
        headers.insert("retry-after", HeaderValue::from_static("1.5"));
        assert_eq!(
            decode(429, &headers, b"").retry_after,
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn encode_shape() {
        let error =
            ApiError::invalid_request("max_tokens: Field required", Some("max_tokens".into()));
        let body: Value = serde_json::from_slice(&encode(&error)).unwrap();
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}})
        );
    }

    #[test]
    fn type_names_follow_the_documented_statuses() {
        for (status, name) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ] {
            assert_eq!(type_name(ErrorKind::from_status(status)), name, "{status}");
        }
        for name in [
            "invalid_request_error",
            "authentication_error",
            "permission_error",
            "not_found_error",
            "request_too_large",
            "rate_limit_error",
            "overloaded_error",
            "timeout_error",
            "api_error",
        ] {
            assert_eq!(type_name(kind_from_type(name)), name);
        }
    }
}
