//! `POST /v1/chat/completions`: the OpenAI Chat Completions endpoint, its authentication,
//! validation and error shapes (<https://platform.openai.com/docs/guides/error-codes>).

mod request;
mod response;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::Response;
use serde::Serialize;

use self::request::ChatRequest;
use self::response::{MALFORMED_EVENT, Reply};
use crate::behaviour::{self, AnswerError};
use crate::options::{Fault, Options};
use crate::script::{Played, Script};
use crate::stats::StreamGuard;
use crate::{BODY_LIMIT, Shared, faults, ids, reply};

/// Most choices a request may ask for.
const MAX_CHOICES: u32 = 128;

/// Answers one chat completion request.
pub(crate) async fn chat_completions(State(state): State<Shared>, request: Request) -> Response {
    state.counters.request();
    let (parts, body) = request.into_parts();
    let (request, body) = match read_json::<ChatRequest>(&parts.headers, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Some(model) = request.model.as_deref() else {
        return invalid("you must provide a model parameter", Some("model"));
    };
    let Some(messages) = request.messages.as_deref() else {
        return invalid("Missing required parameter: 'messages'.", Some("messages"));
    };
    let options = match Options::parse(model, &parts.headers) {
        Ok(options) => options,
        Err(error) => return invalid(&error.to_string(), Some("model")),
    };
    let n = request.n.unwrap_or(1);
    if !(1..=MAX_CHOICES).contains(&n) {
        return invalid(
            &format!("Invalid 'n': integer must be between 1 and {MAX_CHOICES}, got {n}."),
            Some("n"),
        );
    }
    let prompt = request.prompt(messages);
    let answer = match behaviour::answer(&prompt, &options, &body) {
        Ok(answer) => answer,
        Err(AnswerError::UnknownTool(name)) => {
            return invalid(
                &format!(
                    "Invalid value for 'tool_choice': function '{name}' not found in 'tools'."
                ),
                Some("tool_choice"),
            );
        }
    };

    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    match options.fail {
        Some(Fault::Status(status)) => return status_fault(status, model, &options),
        Some(Fault::Hang) => return faults::hang(&state.shutdown).await,
        Some(Fault::Reset) => return faults::reset(),
        Some(Fault::Cut | Fault::Malformed | Fault::Safety | Fault::Blocked) | None => {}
    }

    let mut reply = Reply::new(model, n, &answer, prompt.prompt_tokens, &options);
    reply.obfuscation = request.include_obfuscation();
    reply.service_tier = request.service_tier();
    let mut response = if request.stream == Some(true) {
        let mut script = Script::new(&options, MALFORMED_EVENT);
        reply.stream(
            request.include_usage() && !options.no_stream_usage,
            &mut script,
        );
        let guard = StreamGuard::new(state.counters.clone());
        reply::event_stream(Played::new(script.into_frames(), Some(guard)).into_body())
    } else {
        let body = reply.completion();
        match options.fail {
            Some(Fault::Cut) => faults::cut(body),
            Some(Fault::Malformed) => faults::malformed(body),
            Some(
                Fault::Status(_) | Fault::Hang | Fault::Reset | Fault::Safety | Fault::Blocked,
            )
            | None => reply::json(StatusCode::OK, body),
        }
    };
    reply::insert(&mut response, "x-request-id", &ids::new("req_", 32));
    if let Some(remaining) = options.ratelimit_remaining {
        reply::insert(&mut response, "x-ratelimit-limit-requests", "100");
        reply::insert(
            &mut response,
            "x-ratelimit-remaining-requests",
            &remaining.to_string(),
        );
    }
    response
}

/// Checks the key, reads the body and parses it as `T`, answering OpenAI's error otherwise.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<(T, axum::body::Bytes), Response> {
    if let Some(refusal) = refusal(headers) {
        return Err(refusal);
    }
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return Err(invalid(
            "The request body could not be read or is too large.",
            None,
        ));
    };
    match serde_json::from_slice(&body) {
        Ok(parsed) => Ok((parsed, body)),
        Err(error) => Err(invalid(
            &format!("We could not parse the JSON body of your request. ({error})"),
            None,
        )),
    }
}

/// Checks `Authorization: Bearer <key>`; a missing key or the key `invalid` is refused.
/// Returns the refusal, if any.
pub(crate) fn refusal(headers: &HeaderMap) -> Option<Response> {
    let key = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization \
             header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ));
    }
    if key == "invalid" {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided: invalid. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ));
    }
    // A key over its own quota, whatever the model: the provider's 429 for that key alone.
    if key == "exhausted" {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached for requests on this key. Please try again in 20s.",
            "requests",
            None,
            Some("rate_limit_exceeded"),
        );
        reply::insert(&mut response, "retry-after", "20");
        return Some(response);
    }
    None
}

/// A 400 `invalid_request_error`.
pub(crate) fn invalid(message: &str, param: Option<&str>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        None,
    )
}

/// The `fail=<status>` answer, with the type, code and headers OpenAI sends for that status.
pub(crate) fn status_fault(status: u16, model: &str, options: &Options) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status {
        401 => error(
            code,
            "Incorrect API key provided: mock. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        403 => error(
            code,
            "Country, region, or territory not supported",
            "request_forbidden",
            None,
            Some("unsupported_country_region_territory"),
        ),
        404 => error(
            code,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            None,
            Some("model_not_found"),
        ),
        429 => {
            let mut response = error(
                code,
                "Rate limit reached for requests per min (RPM): Limit 500, Used 500, \
                 Requested 1. Please try again later.",
                "requests",
                None,
                Some("rate_limit_exceeded"),
            );
            let retry_after = options.retry_after.to_string();
            let reset = format!("{}s", options.retry_after);
            reply::insert(&mut response, "retry-after", &retry_after);
            reply::insert(&mut response, "x-ratelimit-limit-requests", "500");
            reply::insert(&mut response, "x-ratelimit-remaining-requests", "0");
            reply::insert(&mut response, "x-ratelimit-reset-requests", &reset);
            reply::insert(&mut response, "x-ratelimit-limit-tokens", "200000");
            reply::insert(&mut response, "x-ratelimit-remaining-tokens", "199000");
            reply::insert(&mut response, "x-ratelimit-reset-tokens", "300ms");
            response
        }
        500..=502 | 504..=599 => error(
            code,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
        503 => error(
            code,
            "The server is overloaded. Please retry your request after a brief wait.",
            "service_unavailable_error",
            None,
            Some("server_is_overloaded"),
        ),
        _ => error(
            code,
            "Invalid request (mock fault).",
            "invalid_request_error",
            None,
            None,
        ),
    }
}

/// An error response in OpenAI's shape.
fn error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let mut body = Vec::with_capacity(256);
    reply::write_json(
        &mut body,
        &ErrorBody {
            error: ErrorDetail {
                message,
                kind,
                param,
                code,
            },
        },
    );
    let mut response = reply::json(status, body);
    reply::insert(&mut response, "x-request-id", &ids::new("req_", 32));
    response
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}
