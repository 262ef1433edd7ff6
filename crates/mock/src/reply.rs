//! Building responses: JSON bodies, event streams and headers, without going through
//! `Response::builder` (whose `Result` only guards against invalid header input).

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

/// A response with a JSON body.
pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A 200 response whose body is a server-sent event stream.
pub(crate) fn event_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Adds a header built at run time; the mock's names and values (ids, numbers, dates) are
/// always valid, so an invalid one is skipped rather than reported.
pub(crate) fn insert(response: &mut Response, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        response.headers_mut().insert(name, value);
    }
}

/// Serializes `value` as JSON into `buffer`. Serializing the mock's own wire structs cannot
/// fail (no maps with non-string keys, no failing `Serialize` impls).
pub(crate) fn write_json<T: serde::Serialize>(buffer: &mut Vec<u8>, value: &T) {
    if let Err(error) = serde_json::to_writer(&mut *buffer, value) {
        tracing::warn!(%error, "Could not serialize a mock response");
    }
}
