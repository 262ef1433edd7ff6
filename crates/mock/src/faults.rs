//! Faults that break the transport rather than answer: `hang`, `reset`, and the non-stream
//! forms of `cut` and `malformed`. Status-code faults are answered by each wire format in its
//! own error shape; the stream forms of `cut` and `malformed` live in [`crate::script`].

use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::watch;

use crate::reply;
use crate::script::{Frame, Played};

/// Never answers: waits until the client goes away (hyper then drops this future) or the
/// server shuts down (then the connection is reset).
pub(crate) async fn hang(shutdown: &watch::Sender<bool>) -> Response {
    let mut down = shutdown.subscribe();
    // An error means the sender is gone, which is a shutdown too.
    let _ = down.wait_for(|down| *down).await;
    reset()
}

/// A response whose body fails before its first byte, so hyper aborts the connection: the
/// client sees a connection or body error, never a complete response.
pub(crate) fn reset() -> Response {
    Response::new(Played::new(vec![Frame::Abort], None).into_body())
}

/// A 200 that announces the full JSON length, sends half of it, then aborts the connection.
pub(crate) fn cut(json: Vec<u8>) -> Response {
    let length = json.len();
    let mut bytes = Bytes::from(json);
    let head = bytes.split_to(length / 2);
    let frames = vec![Frame::Data(head), Frame::Flush, Frame::Abort];
    let mut response = Response::new(Played::new(frames, None).into_body());
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A complete 200 whose JSON body is truncated (invalid JSON).
pub(crate) fn malformed(mut json: Vec<u8>) -> Response {
    json.truncate(json.len() / 2);
    reply::json(StatusCode::OK, json)
}
