//! Google error bodies (`{"error":{"code","message","status","details"}}`, a `google.rpc.Status`)
//! into [`ApiError`], for an error answer and for an `error` object inside a stream.
//! <https://ai.google.dev/gemini-api/docs/troubleshooting>, <https://cloud.google.com/apis/design/errors>

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use switchyard_types::{ApiError, ErrorKind, Origin};

/// The `@type` of the detail that says when to retry.
const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// Reads an upstream error answer. The kind follows the HTTP status (the body's `status` name
/// when the HTTP status is not an error status); the message is the body's `error.message`
/// and the code its `error.status`. The wait before a retry comes from `retry-after` or,
/// failing that, from a `RetryInfo` detail.
pub fn decode(status: u16, headers: &http::HeaderMap, body: &[u8]) -> ApiError {
    let wire = read_body(body);
    let fallback = || {
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("error");
        format!("Gemini upstream answered HTTP {status} ({reason}) without error details")
    };
    let mut error = match wire {
        Some(wire) => {
            let http_status = (400..=599).contains(&status).then_some(status);
            let mut error = from_status(wire, http_status);
            if error.message.is_empty() {
                error.message = fallback();
            }
            error
        }
        None => ApiError::new(ErrorKind::from_status(status), Origin::Upstream, fallback()),
    };
    if let Some(wait) = crate::ratelimit::retry_after(headers) {
        error.retry_after = Some(wait);
    }
    error
}

/// A `google.rpc.Status` as read: every field optional, since proxies in front of Google vary.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireStatus {
    /// The HTTP status Google meant (`429`).
    code: Option<i64>,
    /// Human-readable text.
    message: Option<String>,
    /// The canonical status name (`RESOURCE_EXHAUSTED`).
    status: Option<String>,
    /// Typed details (`RetryInfo`, `ErrorInfo`, `QuotaFailure`, `Help`, ...).
    #[serde(default)]
    details: Vec<Value>,
}

/// The error for an `error` object sent in place of an answer (inside a stream), which has
/// no HTTP status of its own.
pub(crate) fn in_body(wire: WireStatus) -> ApiError {
    let mut error = from_status(wire, None);
    if error.message.is_empty() {
        error.message = "the upstream Gemini stream reported an error".into();
    }
    error
}

/// The error `wire` describes. `http_status`, when the error came with one, decides the kind;
/// otherwise (a stream's `error` object) the status name does, then the numeric code. The
/// message is empty when the body had none.
fn from_status(wire: WireStatus, http_status: Option<u16>) -> ApiError {
    let kind = http_status
        .map(ErrorKind::from_status)
        .or_else(|| wire.status.as_deref().and_then(kind_from_status_name))
        .or_else(|| {
            wire.code
                .and_then(|code| u16::try_from(code).ok())
                .filter(|code| (400..=599).contains(code))
                .map(ErrorKind::from_status)
        })
        .unwrap_or(ErrorKind::Internal);
    let mut error = ApiError::new(kind, Origin::Upstream, wire.message.unwrap_or_default());
    error.code = wire.status.filter(|status| !status.is_empty());
    error.retry_after = retry_delay(&wire.details);
    error
}

/// The kind a canonical status name stands for (`google.rpc.Code`, as Google maps each to
/// HTTP); `None` for names without a clear kind.
pub fn kind_from_status_name(name: &str) -> Option<ErrorKind> {
    Some(match name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => ErrorKind::InvalidRequest,
        "UNAUTHENTICATED" => ErrorKind::Authentication,
        "PERMISSION_DENIED" => ErrorKind::PermissionDenied,
        "NOT_FOUND" => ErrorKind::NotFound,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => ErrorKind::Internal,
        "UNAVAILABLE" => ErrorKind::Unavailable,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        _ => return None,
    })
}

/// The `error` object of a body that is Google's shape, the one-element array a non-SSE
/// stream wraps it in, or another JSON shape with a `message`; `None` when the body is not
/// JSON (such a body is never echoed: it may be an HTML page of a proxy).
fn read_body(body: &[u8]) -> Option<WireStatus> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let value = match value {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    match value.get("error") {
        Some(Value::String(message)) => Some(WireStatus {
            message: Some(message.clone()),
            ..WireStatus::default()
        }),
        Some(error @ Value::Object(_)) => serde_json::from_value(error.clone()).ok(),
        _ => Some(WireStatus {
            message: value
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..WireStatus::default()
        }),
    }
}

/// `retryDelay` of a `RetryInfo` detail: a protobuf JSON duration such as `"7s"` or `"0.5s"`.
fn retry_delay(details: &[Value]) -> Option<Duration> {
    details
        .iter()
        .filter(|detail| detail.get("@type").and_then(Value::as_str) == Some(RETRY_INFO))
        .find_map(|detail| {
            let delay = detail.get("retryDelay")?.as_str()?;
            crate::ratelimit::seconds(delay.trim().strip_suffix('s')?)
        })
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::*;

    const RATE_LIMITED: &str = include_str!("../../tests/fixtures/gemini/error_rate_limited.json");

    #[test]
    fn rate_limit_keeps_message_status_and_retry_delay() {
        let error = decode(429, &HeaderMap::new(), RATE_LIMITED.as_bytes());
        assert_eq!(error.kind, ErrorKind::RateLimited);
        assert_eq!(error.origin, Origin::Upstream);
        assert!(
            error.message.starts_with("You exceeded your current quota"),
            "{}",
            error.message
        );
        assert_eq!(error.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(error.retry_after, Some(Duration::from_secs(47)));
        assert!(error.retryable());
    }

    #[test]
    fn retry_after_header_wins_over_retry_info() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        let error = decode(429, &headers, RATE_LIMITED.as_bytes());
        assert_eq!(error.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn documented_statuses_map_to_kinds() {
        for (code, status, kind) in [
            (400, "INVALID_ARGUMENT", ErrorKind::InvalidRequest),
            (400, "FAILED_PRECONDITION", ErrorKind::InvalidRequest),
            (401, "UNAUTHENTICATED", ErrorKind::Authentication),
            (403, "PERMISSION_DENIED", ErrorKind::PermissionDenied),
            (404, "NOT_FOUND", ErrorKind::NotFound),
            (429, "RESOURCE_EXHAUSTED", ErrorKind::RateLimited),
            (500, "INTERNAL", ErrorKind::Internal),
            (503, "UNAVAILABLE", ErrorKind::Unavailable),
            (504, "DEADLINE_EXCEEDED", ErrorKind::Timeout),
        ] {
            let body =
                format!(r#"{{"error":{{"code":{code},"message":"m","status":"{status}"}}}}"#);
            assert_eq!(decode(code, &HeaderMap::new(), body.as_bytes()).kind, kind);
            // An odd HTTP status (a proxy answering 200) leaves the status name to decide.
            assert_eq!(decode(200, &HeaderMap::new(), body.as_bytes()).kind, kind);
            assert_eq!(kind_from_status_name(status), Some(kind));
        }
    }

    #[test]
    fn invalid_key_and_vertex_array_bodies() {
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}"#;
        let error = decode(400, &HeaderMap::new(), body);
        assert_eq!(error.kind, ErrorKind::InvalidRequest);
        assert_eq!(
            error.message,
            "API key not valid. Please pass a valid API key."
        );
        assert_eq!(error.code.as_deref(), Some("INVALID_ARGUMENT"));
        assert_eq!(error.retry_after, None);

        let body = br#"[{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}]"#;
        let error = decode(503, &HeaderMap::new(), body);
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert_eq!(
            error.message,
            "The model is overloaded. Please try again later."
        );
    }

    #[test]
    fn non_json_and_empty_bodies_get_a_message_without_the_body() {
        let error = decode(502, &HeaderMap::new(), b"<html>secret proxy page</html>");
        assert_eq!(error.kind, ErrorKind::BadGateway);
        assert_eq!(
            error.message,
            "Gemini upstream answered HTTP 502 (Bad Gateway) without error details"
        );
        let error = decode(500, &HeaderMap::new(), br#"{"error":{"code":500}}"#);
        assert_eq!(error.kind, ErrorKind::Internal);
        assert!(error.message.contains("HTTP 500"), "{}", error.message);
    }

    #[test]
    fn fractional_retry_delays() {
        let details = [serde_json::json!({"@type": RETRY_INFO, "retryDelay": "1.5s"})];
        assert_eq!(retry_delay(&details), Some(Duration::from_millis(1500)));
        let details = [serde_json::json!({"@type": RETRY_INFO, "retryDelay": "soon"})];
        assert_eq!(retry_delay(&details), None);
    }
}
