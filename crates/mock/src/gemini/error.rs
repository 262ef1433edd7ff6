//! Google's error shape, `{"error": {"code", "message", "status", "details"}}`, with the
//! `google.rpc` status names and detail messages the Gemini API sends
//! (<https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes>,
//! <https://cloud.google.com/apis/design/errors>).

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use crate::options::Options;
use crate::reply;

/// The service named in `ErrorInfo` details.
const SERVICE: &str = "generativelanguage.googleapis.com";
/// Where the 429 message and its `Help` detail point.
const RATE_LIMITS_URL: &str = "https://ai.google.dev/gemini-api/docs/rate-limits";

/// The `google.rpc.Code` name Google sends with an HTTP status.
pub(crate) fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if status.is_client_error() => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

/// A 400 `INVALID_ARGUMENT`.
pub(crate) fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message, Vec::new())
}

/// A 404 `NOT_FOUND`.
pub(crate) fn not_found(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, message, Vec::new())
}

/// No API key and no bearer token: Google's 403 for unregistered callers.
pub(crate) fn missing_credentials() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "Method doesn't allow unregistered callers (callers without established identity). \
         Please use API Key or other form of API consumer identity to call this API.",
        Vec::new(),
    )
}

/// The API key `invalid`: Google answers 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID`.
pub(crate) fn invalid_api_key() -> Response {
    let message = "API key not valid. Please pass a valid API key.";
    error(
        StatusCode::BAD_REQUEST,
        message,
        vec![
            Detail::ErrorInfo {
                reason: "API_KEY_INVALID",
                domain: "googleapis.com",
                metadata: Metadata { service: SERVICE },
            },
            Detail::LocalizedMessage {
                locale: "en-US",
                message,
            },
        ],
    )
}

/// The bearer token `invalid` (Vertex AI style): 401 `UNAUTHENTICATED`.
pub(crate) fn invalid_token() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login \
         cookie or other valid authentication credential. See \
         https://developers.google.com/identity/sign-in/web/devconsole-project.",
        vec![Detail::ErrorInfo {
            reason: "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            domain: "googleapis.com",
            metadata: Metadata { service: SERVICE },
        }],
    )
}

/// The `fail=<status>` answer, with the message and details Gemini sends for that status; a
/// 429 also carries `RetryInfo` and a `Retry-After` header of `retry_after` seconds.
pub(crate) fn status_fault(status: u16, model: &str, version: &str, options: &Options) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_delay = format!("{}s", options.retry_after);
    let (message, details) = match status {
        400 => (
            "Request contains an invalid argument.".to_owned(),
            Vec::new(),
        ),
        401 => return invalid_token(),
        403 => ("The caller does not have permission".to_owned(), Vec::new()),
        404 => (
            format!(
                "models/{model} is not found for API version {version}, or is not supported \
                 for generateContent. Call ListModels to see the list of available models and \
                 their supported methods."
            ),
            Vec::new(),
        ),
        429 => (
            format!(
                "You exceeded your current quota, please check your plan and billing details. \
                 For more information on this error, head to: {RATE_LIMITS_URL}. Please retry \
                 in {retry_delay}."
            ),
            vec![
                Detail::QuotaFailure {
                    violations: [Violation {
                        quota_metric: "generativelanguage.googleapis.com/generate_content_requests",
                        quota_id: "GenerateRequestsPerMinutePerProjectPerModel",
                        quota_dimensions: QuotaDimensions {
                            location: "global",
                            model,
                        },
                        quota_value: "60",
                    }],
                },
                Detail::Help {
                    links: [Link {
                        description: "Learn more about Gemini API quotas",
                        url: RATE_LIMITS_URL,
                    }],
                },
                Detail::RetryInfo {
                    retry_delay: &retry_delay,
                },
            ],
        ),
        500 => (
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting"
                .to_owned(),
            Vec::new(),
        ),
        503 => (
            "The model is overloaded. Please try again later.".to_owned(),
            Vec::new(),
        ),
        504 => (
            "Deadline expired before operation could complete.".to_owned(),
            Vec::new(),
        ),
        _ if code.is_client_error() => ("Precondition check failed.".to_owned(), Vec::new()),
        _ => ("Internal error encountered.".to_owned(), Vec::new()),
    };
    let mut response = error(code, &message, details);
    if status == 429 {
        reply::insert(
            &mut response,
            "retry-after",
            &options.retry_after.to_string(),
        );
    }
    response
}

/// An error response in Google's shape.
fn error(status: StatusCode, message: &str, details: Vec<Detail<'_>>) -> Response {
    let mut body = Vec::with_capacity(256);
    reply::write_json(
        &mut body,
        &ErrorBody {
            error: Status {
                code: status.as_u16(),
                message,
                status: status_name(status),
                details,
            },
        },
    );
    reply::json(status, body)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: Status<'a>,
}

/// `google.rpc.Status` in its HTTP mapping.
#[derive(Serialize)]
struct Status<'a> {
    code: u16,
    message: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<Detail<'a>>,
}

/// The `google.rpc` detail messages the mock sends, tagged with their `@type`.
#[derive(Serialize)]
#[serde(tag = "@type")]
enum Detail<'a> {
    #[serde(rename = "type.googleapis.com/google.rpc.ErrorInfo")]
    ErrorInfo {
        reason: &'static str,
        domain: &'static str,
        metadata: Metadata,
    },
    #[serde(rename = "type.googleapis.com/google.rpc.LocalizedMessage")]
    LocalizedMessage {
        locale: &'static str,
        message: &'a str,
    },
    #[serde(rename = "type.googleapis.com/google.rpc.QuotaFailure")]
    QuotaFailure { violations: [Violation<'a>; 1] },
    #[serde(rename = "type.googleapis.com/google.rpc.Help")]
    Help { links: [Link; 1] },
    #[serde(rename = "type.googleapis.com/google.rpc.RetryInfo")]
    RetryInfo {
        #[serde(rename = "retryDelay")]
        retry_delay: &'a str,
    },
}

#[derive(Serialize)]
struct Metadata {
    service: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Violation<'a> {
    quota_metric: &'static str,
    quota_id: &'static str,
    quota_dimensions: QuotaDimensions<'a>,
    quota_value: &'static str,
}

#[derive(Serialize)]
struct QuotaDimensions<'a> {
    location: &'static str,
    model: &'a str,
}

#[derive(Serialize)]
struct Link {
    description: &'static str,
    url: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_follow_google_rpc() {
        for (code, name) in [
            (400, "INVALID_ARGUMENT"),
            (401, "UNAUTHENTICATED"),
            (403, "PERMISSION_DENIED"),
            (404, "NOT_FOUND"),
            (429, "RESOURCE_EXHAUSTED"),
            (500, "INTERNAL"),
            (502, "INTERNAL"),
            (503, "UNAVAILABLE"),
            (504, "DEADLINE_EXCEEDED"),
            (412, "FAILED_PRECONDITION"),
            (529, "INTERNAL"),
        ] {
            let status = StatusCode::from_u16(code).expect("valid status");
            assert_eq!(status_name(status), name, "{code}");
        }
    }
}
