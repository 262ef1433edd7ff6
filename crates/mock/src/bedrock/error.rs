//! Bedrock's error answers: a `{"message": …}` body with the type in `x-amzn-errortype`
//! (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors>,
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html>).

use axum::http::StatusCode;
use axum::response::Response;

use crate::options::Options;
use crate::reply;

/// The suffix Bedrock's front end puts after the type in `x-amzn-errortype`.
const TYPE_SUFFIX: &str = ":http://internal.amazon.com/coral/com.amazon.bedrock/";

/// A 400 `ValidationException`.
pub(crate) fn validation(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "ValidationException", message)
}

/// A 403 for a request whose signature the mock refuses.
pub(crate) fn forbidden(error_type: &str, message: &str) -> Response {
    error(StatusCode::FORBIDDEN, error_type, message)
}

/// The type and message Bedrock answers a status with.
pub(crate) fn for_status(status: u16, model: &str) -> (&'static str, String) {
    match status {
        400 => (
            "ValidationException",
            "Malformed input request, please reformat your input and try again.".to_owned(),
        ),
        401 => (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".to_owned(),
        ),
        403 => (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.".to_owned(),
        ),
        404 => (
            "ResourceNotFoundException",
            format!(
                "Could not resolve the foundation model from the provided model identifier {model}."
            ),
        ),
        408 => (
            "ModelTimeoutException",
            "Model has timed out in processing the request. Try your request again.".to_owned(),
        ),
        424 => (
            "ModelErrorException",
            "The model encountered an error processing the request. Try your request again."
                .to_owned(),
        ),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again.".to_owned(),
        ),
        503 => (
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.".to_owned(),
        ),
        _ if (400..500).contains(&status) => (
            "ValidationException",
            "The request could not be processed.".to_owned(),
        ),
        _ => (
            "InternalServerException",
            "The server encountered an internal error while processing the request.".to_owned(),
        ),
    }
}

/// The `fail=<status>` answer; a 429 also carries `retry-after` of `retry_after` seconds.
pub(crate) fn status_fault(status: u16, model: &str, options: &Options) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (error_type, message) = for_status(status, model);
    let mut response = error(code, error_type, &message);
    if status == 429 {
        reply::insert(
            &mut response,
            "retry-after",
            &options.retry_after.to_string(),
        );
    }
    response
}

/// An error answer in Bedrock's shape.
fn error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let mut body = Vec::with_capacity(message.len() + 16);
    reply::write_json(&mut body, &serde_json::json!({"message": message}));
    let mut response = reply::json(status, body);
    reply::insert(
        &mut response,
        "x-amzn-errortype",
        &format!("{error_type}{TYPE_SUFFIX}"),
    );
    response
}
