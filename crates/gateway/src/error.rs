//! The single mapping from an [`ApiError`] to a status code and the client's own error body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_providers::{anthropic, openai};
use switchyard_types::{ApiError, WireFormat};

/// The error as the client's API would answer it.
pub fn reply(format: WireFormat, error: &ApiError) -> Response {
    let (status, body) = match format {
        WireFormat::OpenAi => (
            openai::error::status(error.kind),
            openai::error::encode(error),
        ),
        WireFormat::Anthropic => (error.kind.status(), anthropic::error::encode(error)),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(retry_after) = error.retry_after {
        let seconds = retry_after.as_secs_f64().ceil().max(1.0);
        if let Ok(value) = HeaderValue::from_str(&format!("{seconds:.0}")) {
            headers.insert(header::RETRY_AFTER, value);
        }
    }
    response
}
