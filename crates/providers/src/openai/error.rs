//! OpenAI error bodies: `{"error":{"message","type","param","code"}}`, read from upstreams
//! (leniently: compatible servers vary) and written for clients.

use serde::Serialize;
use serde_json::Value;
use switchyard_types::{ApiError, ErrorKind};

/// Builds the error for an upstream's non-2xx answer.
pub fn decode(status: u16, headers: &http::HeaderMap, body: &[u8]) -> ApiError {
    let kind = ErrorKind::from_status(status);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed
        .as_ref()
        .map(|value| value.get("error").unwrap_or(value));
    let message = error
        .and_then(|error| match error {
            Value::String(message) => Some(message.clone()),
            Value::Object(object) => object
                .get("message")
                .or_else(|| object.get("detail"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("The upstream answered with status {status}")
            } else {
                format!(
                    "The upstream answered with status {status}: {}",
                    text.chars().take(300).collect::<String>()
                )
            }
        });
    let mut api_error = ApiError::upstream(kind, message);
    api_error.param = error
        .and_then(|error| error.get("param"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    api_error.code = error
        .and_then(|error| error.get("code"))
        .and_then(|code| match code {
            Value::String(code) => Some(code.clone()),
            Value::Number(code) => Some(code.to_string()),
            _ => None,
        });
    api_error.retry_after = crate::ratelimit::retry_after(headers);
    api_error
}

/// OpenAI's error type name for a kind.
pub fn type_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest
        | ErrorKind::PayloadTooLarge
        | ErrorKind::Unprocessable
        | ErrorKind::RequestTimeout
        | ErrorKind::Conflict => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::BudgetExceeded => "budget_exceeded",
        ErrorKind::Internal | ErrorKind::BadGateway => "server_error",
        ErrorKind::Unavailable | ErrorKind::Overloaded => "service_unavailable_error",
        ErrorKind::Timeout => "timeout_error",
    }
}

/// The status an OpenAI client sees: OpenAI has no 529, so overload is a 503.
pub fn status(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::Overloaded => 503,
        other => other.status(),
    }
}

/// Writes the client-facing error body.
pub fn encode(error: &ApiError) -> Vec<u8> {
    serde_json::to_vec(&Body {
        error: Inner {
            message: &error.message,
            kind: type_name(error.kind),
            param: error.param.as_deref(),
            code: error.code.as_deref(),
        },
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}
