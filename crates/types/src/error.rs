//! The one error type every layer speaks, and the closed set of error kinds.
//!
//! The gateway turns an [`ApiError`] into a status code and the client's own error shape in a
//! single place; providers build one from an upstream's answer.

use std::borrow::Cow;
use std::time::Duration;

/// The longest message (and field path) an error carries; longer ones are cut. Messages quote
/// what clients sent, and a 10 MB model name must not come back whole, nor reach the log.
pub const MAX_MESSAGE: usize = 1024;

/// The longest client-supplied value quoted whole in a message or a log field.
pub const MAX_QUOTED: usize = 256;

/// `text` cut to at most `max` bytes (at a character boundary), marked as cut with its length.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… [cut: {} bytes]", &text[..end], text.len()))
}

/// An owned text cut as [`clip`] cuts it.
fn clipped(text: String, max: usize) -> String {
    match clip(&text, max) {
        Cow::Borrowed(_) => text,
        Cow::Owned(cut) => cut,
    }
}

/// What went wrong, in the terms a client can act on. Each kind has one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or asks for something impossible (400).
    InvalidRequest,
    /// Missing or bad credentials (401).
    Authentication,
    /// Credentials are fine but not allowed to do this (403).
    PermissionDenied,
    /// A budget that applies to the caller has no room for the call (402).
    BudgetExceeded,
    /// Unknown model or route (404).
    NotFound,
    /// The change conflicts with the current state: a name already taken (409).
    Conflict,
    /// The body is over the configured limit (413).
    PayloadTooLarge,
    /// The client did not send its request in time (408).
    RequestTimeout,
    /// Well-formed but semantically refused by the upstream (422).
    Unprocessable,
    /// Too many requests (429).
    RateLimited,
    /// A fault inside the gateway or the upstream's own 500.
    Internal,
    /// The upstream could not be reached or sent something unreadable (502).
    BadGateway,
    /// The upstream or the gateway cannot serve now (503).
    Unavailable,
    /// The upstream did not answer in time (504).
    Timeout,
    /// The upstream is overloaded (Anthropic's 529).
    Overloaded,
}

impl ErrorKind {
    /// The HTTP status a client sees for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::BudgetExceeded => 402,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Unprocessable => 422,
            ErrorKind::RateLimited => 429,
            ErrorKind::Internal => 500,
            ErrorKind::BadGateway => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Overloaded => 529,
        }
    }

    /// Its name in records (audit records, logs): snake case, stable.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Authentication => "authentication",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Unprocessable => "unprocessable",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Internal => "internal",
            ErrorKind::BadGateway => "bad_gateway",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Overloaded => "overloaded",
        }
    }

    /// The kind an upstream HTTP status stands for.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::Timeout,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::PayloadTooLarge,
            422 => ErrorKind::Unprocessable,
            429 => ErrorKind::RateLimited,
            502 => ErrorKind::BadGateway,
            503 => ErrorKind::Unavailable,
            529 => ErrorKind::Overloaded,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Internal,
        }
    }
}

/// Who caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client sent something wrong.
    Client,
    /// The upstream provider answered with an error or misbehaved.
    Upstream,
    /// The gateway itself.
    Internal,
}

/// An error with everything needed to answer a client and to decide on a retry.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Who caused it.
    pub origin: Origin,
    /// A message fit for the client (never a secret, never a body).
    pub message: String,
    /// The request field at fault, as a path like `messages[0].content`.
    pub param: Option<String>,
    /// A machine-readable code (`model_not_found`, `context_length_exceeded`, ...).
    pub code: Option<String>,
    /// How long the client should wait before retrying, when the upstream said so.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error of `kind` from `origin` with `message`.
    pub fn new(kind: ErrorKind, origin: Origin, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            origin,
            message: clipped(message.into(), MAX_MESSAGE),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// A 400 caused by the client, naming the field at fault.
    pub fn invalid_request(message: impl Into<String>, param: Option<String>) -> ApiError {
        ApiError {
            param: param.map(|param| clipped(param, MAX_MESSAGE)),
            ..ApiError::new(ErrorKind::InvalidRequest, Origin::Client, message)
        }
    }

    /// An error caused by the upstream.
    pub fn upstream(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError::new(kind, Origin::Upstream, message)
    }

    /// Sets the machine-readable code.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> ApiError {
        self.code = Some(code.into());
        self
    }

    /// Whether trying again (maybe elsewhere) could succeed.
    pub fn retryable(&self) -> bool {
        match self.kind {
            ErrorKind::RateLimited
            | ErrorKind::BadGateway
            | ErrorKind::Unavailable
            | ErrorKind::Timeout
            | ErrorKind::Overloaded => true,
            ErrorKind::Internal => self.origin == Origin::Upstream,
            ErrorKind::InvalidRequest
            | ErrorKind::Authentication
            | ErrorKind::PermissionDenied
            | ErrorKind::BudgetExceeded
            | ErrorKind::NotFound
            | ErrorKind::PayloadTooLarge
            | ErrorKind::RequestTimeout
            | ErrorKind::Conflict
            | ErrorKind::Unprocessable => false,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.status())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_client_text_is_cut_and_marked() {
        assert_eq!(clip("short", 10), "short");
        let cut = clip("ééééé", 5);
        assert_eq!(cut, "éé… [cut: 10 bytes]");
        let error = ApiError::invalid_request("x".repeat(10_000_000), Some("y".repeat(5000)));
        assert!(
            error.message.len() < MAX_MESSAGE + 40,
            "{}",
            error.message.len()
        );
        assert!(error.message.ends_with("[cut: 10000000 bytes]"));
        assert!(
            error
                .param
                .is_some_and(|param| param.len() < MAX_MESSAGE + 40)
        );
    }

    #[test]
    fn upstream_statuses_map_to_kinds_and_back() {
        for status in [
            400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503, 504, 529,
        ] {
            assert_eq!(ErrorKind::from_status(status).status(), status);
        }
        assert_eq!(ErrorKind::from_status(418), ErrorKind::InvalidRequest);
        assert_eq!(ErrorKind::from_status(599), ErrorKind::Internal);
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(ApiError::upstream(ErrorKind::RateLimited, "slow down").retryable());
        assert!(ApiError::upstream(ErrorKind::Internal, "boom").retryable());
        assert!(!ApiError::new(ErrorKind::Internal, Origin::Internal, "bug").retryable());
        assert!(!ApiError::invalid_request("bad", None).retryable());
    }
}
