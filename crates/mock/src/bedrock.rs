//! `POST /model/{modelId}/converse` and `POST /model/{modelId}/converse-stream`: Amazon
//! Bedrock's Converse API, with SigV4 verification, Bedrock's validation and error shapes, and
//! the stream as binary event-stream frames
//! (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>).
//!
//! Requests must be signed for the service `bedrock`, in any region, with the access key
//! `AKIDMOCK` and the secret `mock-secret` (see [`signature`]). The options ride on the model id
//! (percent-decoded; `echo;fail=500,retry_after=3` or `echo?fail=500&retry_after=3`) or on
//! `x-mock-*` headers. Besides the common faults, `fail=stream_exception` ends a stream after
//! `cut_after` deltas with a `modelStreamErrorException` frame (another type with
//! `fail=stream_exception:throttlingException`); a call that is not streamed answers it with
//! the HTTP error of that type.

pub(crate) mod error;
mod request;
mod response;
pub(crate) mod signature;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use self::request::ConverseRequest;
use self::response::{Reply, malformed_event};
use crate::behaviour::{self, AnswerError};
use crate::options::{Fault, Options};
use crate::script::{Played, Script};
use crate::stats::StreamGuard;
use crate::{BODY_LIMIT, Shared, faults, ids, reply};

/// The fault value that asks for an exception frame in a stream.
const STREAM_EXCEPTION: &str = "stream_exception";
/// The exception it sends unless another is named.
const DEFAULT_EXCEPTION: &str = "modelStreamErrorException";

/// Answers one `converse` call.
pub(crate) async fn converse(
    State(state): State<Shared>,
    model: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    answer(state, model, request, false).await
}

/// Answers one `converse-stream` call.
pub(crate) async fn converse_stream(
    State(state): State<Shared>,
    model: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    answer(state, model, request, true).await
}

async fn answer(
    state: Shared,
    model: Result<Path<String>, PathRejection>,
    request: Request,
    stream: bool,
) -> Response {
    state.counters.request();
    let mut response = respond(&state, model, request, stream).await;
    reply::insert(&mut response, "x-amzn-requestid", &request_id());
    response
}

async fn respond(
    state: &Shared,
    model: Result<Path<String>, PathRejection>,
    request: Request,
    stream: bool,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return error::validation(&format!(
            "Input is too long: the request body exceeds {BODY_LIMIT} bytes."
        ));
    };
    if let Err(refusal) = signature::verify(&parts, &body) {
        return error::forbidden(refusal.error_type(), &refusal.message());
    }
    let Ok(Path(model)) = model else {
        return error::validation("The provided model identifier is invalid.");
    };
    let (options_model, headers, exception) = stream_exception(&model, &parts.headers);
    let options = match Options::parse(&options_model, &headers) {
        Ok(options) => options,
        Err(error) => return error::validation(&format!("modelId: {error}")),
    };
    let request: ConverseRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return error::validation(&format!("Malformed input request: {error}"));
        }
    };
    let messages = match request.validate() {
        Ok(messages) => messages,
        Err(message) => return error::validation(&message),
    };
    let prompt = request.prompt(messages);
    let answer = match behaviour::answer(&prompt, &options, &body) {
        Ok(answer) => answer,
        Err(AnswerError::UnknownTool(name)) => {
            return error::validation(&format!(
                "The tool {name} named in toolChoice is not defined in toolConfig.tools."
            ));
        }
    };

    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    match options.fail {
        Some(Fault::Status(status)) => return error::status_fault(status, &model, &options),
        Some(Fault::Hang) => return faults::hang(&state.shutdown).await,
        Some(Fault::Reset) => return faults::reset(),
        Some(Fault::Cut | Fault::Malformed | Fault::Safety | Fault::Blocked) | None => {}
    }

    let reply = Reply::new(
        &answer,
        prompt.prompt_tokens,
        request.thinking(),
        &options,
        exception.as_deref(),
    )
    .reporting_stop_sequence(request.reports_stop_sequence())
    .at_tier(request.served_tier());
    if stream {
        let mut script = Script::new(&options, malformed_event());
        reply.stream(&mut script);
        let guard = StreamGuard::new(state.counters.clone());
        return event_stream(Played::new(script.into_frames(), Some(guard)).into_body());
    }
    if let Some(exception) = &exception {
        return error::status_fault(exception_status(exception), &model, &options);
    }
    let body = reply.response();
    match options.fail {
        Some(Fault::Cut) => faults::cut(body),
        Some(Fault::Malformed) => faults::malformed(body),
        Some(Fault::Status(_) | Fault::Hang | Fault::Reset | Fault::Safety | Fault::Blocked)
        | None => reply::json(StatusCode::OK, body),
    }
}

/// Takes the `stream_exception` fault, which the common option parser does not know, out of
/// the model id and the headers. Returns the model id in the parser's spelling (the first `?`
/// or `;` starts the options, `&`, `,` or `;` separate them), the headers left and the
/// exception type asked for. A `x-mock-fail` header wins over the model id, as for every
/// option.
fn stream_exception(model: &str, headers: &HeaderMap) -> (String, HeaderMap, Option<String>) {
    let exception_of = |value: &str| {
        let value = value.trim();
        let rest = value.strip_prefix(STREAM_EXCEPTION)?;
        match rest.strip_prefix(':') {
            Some(kind) if !kind.is_empty() => Some(kind.to_owned()),
            _ if rest.is_empty() => Some(DEFAULT_EXCEPTION.to_owned()),
            _ => None,
        }
    };
    let mut exception = None;
    let options_model = match model.split_once(['?', ';']) {
        Some((name, options)) => {
            let mut kept = Vec::new();
            for pair in options
                .split(['&', ',', ';'])
                .filter(|pair| !pair.is_empty())
            {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                match exception_of(value) {
                    Some(kind) if key.trim().eq_ignore_ascii_case("fail") => {
                        exception = Some(kind);
                    }
                    _ => kept.push(pair),
                }
            }
            format!("{name}?{}", kept.join("&"))
        }
        None => model.to_owned(),
    };
    let mut headers = headers.clone();
    if let Some(value) = headers
        .get("x-mock-fail")
        .and_then(|value| value.to_str().ok())
    {
        exception = exception_of(value);
        if exception.is_some() {
            headers.remove("x-mock-fail");
        }
    }
    (options_model, headers, exception)
}

/// The HTTP status of the error a stream exception stands for.
fn exception_status(exception: &str) -> u16 {
    match exception {
        "throttlingException" => 429,
        "validationException" => 400,
        "serviceUnavailableException" => 503,
        "internalServerException" => 500,
        "modelTimeoutException" => 408,
        _ => 424,
    }
}

/// A 200 whose body is an event stream of binary frames.
fn event_stream(body: axum::body::Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A request id in AWS's UUID shape.
fn request_id() -> String {
    ids::uuid()
}

#[cfg(test)]
mod tests;
