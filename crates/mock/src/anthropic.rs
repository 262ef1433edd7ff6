//! `POST /v1/messages`: the Anthropic Messages endpoint, its authentication, validation and
//! error shapes (<https://docs.anthropic.com/en/api/errors>,
//! <https://docs.anthropic.com/en/api/rate-limits>).

mod request;
mod response;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use self::request::MessagesRequest;
use self::response::{MALFORMED_EVENT, Reply};
use crate::behaviour::{self, AnswerError};
use crate::options::{Fault, Options};
use crate::script::{Played, Script};
use crate::stats::StreamGuard;
use crate::{BODY_LIMIT, Shared, clock, faults, ids, reply};

/// Answers one messages request.
pub(crate) async fn messages(State(state): State<Shared>, request: Request) -> Response {
    state.counters.request();
    let (parts, body) = request.into_parts();
    let request_id = ids::new("req_", 24);
    if let Some(refusal) = refusal(&parts.headers, &request_id) {
        return refusal;
    }
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
            &request_id,
        );
    };
    let request: MessagesRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return invalid(&format!("Invalid JSON body: {error}"), &request_id),
    };
    let Some(model) = request.model.as_deref() else {
        return invalid("model: Field required", &request_id);
    };
    let Some(messages) = request.messages.as_deref() else {
        return invalid("messages: Field required", &request_id);
    };
    let Some(max_tokens) = request.max_tokens else {
        return invalid("max_tokens: Field required", &request_id);
    };
    let options = match Options::parse(model, &parts.headers) {
        Ok(options) => options,
        Err(error) => return invalid(&format!("model: {error}"), &request_id),
    };
    let name = model.split('?').next().unwrap_or(model);
    if let Err(message) = request.check_thinking(name, max_tokens) {
        return invalid(&message, &request_id);
    }
    let prompt = request.prompt(messages, max_tokens);
    let answer = match behaviour::answer(&prompt, &options, &body) {
        Ok(answer) => answer,
        Err(AnswerError::UnknownTool(name)) => {
            return invalid(
                &format!("tool_choice: Tool '{name}' not found in provided tools"),
                &request_id,
            );
        }
    };

    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    match options.fail {
        Some(Fault::Status(status)) => return status_fault(status, &options, &request_id),
        Some(Fault::Hang) => return faults::hang(&state.shutdown).await,
        Some(Fault::Reset) => return faults::reset(),
        Some(Fault::Cut | Fault::Malformed | Fault::Safety | Fault::Blocked) | None => {}
    }

    let preamble = Reply::preamble();
    let reply = Reply::new(
        model,
        &answer,
        &preamble,
        request.thinking(),
        prompt.prompt_tokens,
        &options,
    )
    .searching(
        request
            .searches_the_web()
            .then_some(prompt.last.text.as_str())
            .filter(|text| !text.is_empty()),
    );
    let mut response = if request.stream == Some(true) {
        let mut script = Script::new(&options, MALFORMED_EVENT);
        reply.stream(&mut script);
        let guard = StreamGuard::new(state.counters.clone());
        reply::event_stream(Played::new(script.into_frames(), Some(guard)).into_body())
    } else {
        let body = reply.message();
        match options.fail {
            Some(Fault::Cut) => faults::cut(body),
            Some(Fault::Malformed) => faults::malformed(body),
            Some(
                Fault::Status(_) | Fault::Hang | Fault::Reset | Fault::Safety | Fault::Blocked,
            )
            | None => reply::json(StatusCode::OK, body),
        }
    };
    reply::insert(&mut response, "request-id", &request_id);
    if let Some(remaining) = options.ratelimit_remaining {
        reply::insert(&mut response, "anthropic-ratelimit-requests-limit", "100");
        let remaining = remaining.to_string();
        reply::insert(
            &mut response,
            "anthropic-ratelimit-requests-remaining",
            &remaining,
        );
    }
    response
}

/// Checks `x-api-key` (missing or `invalid` is refused) and `anthropic-version`; returns the
/// refusal, if any.
fn refusal(headers: &HeaderMap, request_id: &str) -> Option<Response> {
    let key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
            request_id,
        ));
    }
    if key == "invalid" {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
            request_id,
        ));
    }
    if !headers.contains_key("anthropic-version") {
        return Some(invalid("anthropic-version: header is required", request_id));
    }
    None
}

/// A 400 `invalid_request_error`.
fn invalid(message: &str, request_id: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        message,
        request_id,
    )
}

/// The `fail=<status>` answer, with the error type and headers Anthropic sends for it.
fn status_fault(status: u16, options: &Options, request_id: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, message) = match status {
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization. Please retry later.",
        ),
        503 | 529 => ("overloaded_error", "Overloaded"),
        500..=599 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "Invalid request (mock fault)."),
    };
    let mut response = error(code, kind, message, request_id);
    if status == 429 {
        let reset = clock::rfc3339(clock::unix_now() + options.retry_after);
        reply::insert(
            &mut response,
            "retry-after",
            &options.retry_after.to_string(),
        );
        for (limit, remaining, name) in [
            ("50", "0", "requests"),
            ("100000", "0", "tokens"),
            ("80000", "0", "input-tokens"),
            ("20000", "20000", "output-tokens"),
        ] {
            let header = |suffix: &str| format!("anthropic-ratelimit-{name}-{suffix}");
            reply::insert(&mut response, &header("limit"), limit);
            reply::insert(&mut response, &header("remaining"), remaining);
            reply::insert(&mut response, &header("reset"), &reset);
        }
    }
    response
}

/// An error response in Anthropic's shape, with its `request-id` header.
fn error(status: StatusCode, kind: &str, message: &str, request_id: &str) -> Response {
    let mut body = Vec::with_capacity(256);
    reply::write_json(
        &mut body,
        &ErrorBody {
            kind: "error",
            error: ErrorDetail { kind, message },
            request_id,
        },
    );
    let mut response = reply::json(status, body);
    reply::insert(&mut response, "request-id", request_id);
    response
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}
