//! `POST /v1beta/models/{model}:generateContent` and `…:streamGenerateContent?alt=sse` (also
//! under `/v1`): the Gemini API endpoints, their authentication, validation and error shapes
//! (<https://ai.google.dev/api/generate-content>, <https://ai.google.dev/api#authentication>).
//!
//! Authentication is an API key in `x-goog-api-key` or `?key=`, or (Vertex AI style) an
//! `Authorization: Bearer` token. The options ride on the model path segment (see [`path`]) or
//! `x-mock-*` headers.

pub(crate) mod error;
mod path;
mod request;
mod response;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use self::path::{Method, PathError, Target};
use self::request::GenerateRequest;
use self::response::{MALFORMED_EVENT, Reply};
use crate::behaviour::{self, AnswerError};
use crate::options::{Fault, Options};
use crate::script::{Played, Script};
use crate::stats::StreamGuard;
use crate::{BODY_LIMIT, Shared, faults, reply};

/// Most candidates a request may ask for.
const MAX_CANDIDATES: i64 = 8;

/// The query parameters the mock reads.
#[derive(Debug, Default, Deserialize)]
struct Params {
    /// `sse` for an event stream.
    alt: Option<String>,
    /// The API key, when not sent as `x-goog-api-key`.
    key: Option<String>,
}

/// Answers one `generateContent` or `streamGenerateContent` call; `rest` is the path after
/// `models/`.
pub(crate) async fn models(
    State(state): State<Shared>,
    rest: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    state.counters.request();
    let (parts, body) = request.into_parts();
    let params = Query::<Params>::try_from_uri(&parts.uri)
        .map(|Query(params)| params)
        .unwrap_or_default();
    if let Some(refusal) = refusal(&parts.headers, params.key.as_deref()) {
        return refusal;
    }
    let version = if parts.uri.path().starts_with("/v1beta/") {
        "v1beta"
    } else {
        "v1"
    };
    let Ok(Path(rest)) = rest else {
        return error::invalid("The resource name is not valid UTF-8 once percent-decoded.");
    };
    if let Some(model) = rest
        .trim_start_matches('/')
        .strip_suffix(":batchEmbedContents")
    {
        return crate::embeddings::batch_embed_contents(
            &state,
            model,
            version,
            &parts.headers,
            body,
        )
        .await;
    }
    let target = match Target::parse(&rest) {
        Ok(target) => target,
        Err(PathError::Malformed) => {
            return error::not_found(&format!(
                "Expected models/{{model}}:generateContent or \
                 models/{{model}}:streamGenerateContent, got models/{rest}."
            ));
        }
        Err(PathError::UnknownMethod) => {
            return error::not_found(&format!(
                "switchyard-mock serves only generateContent and streamGenerateContent, not \
                 models/{rest}."
            ));
        }
    };
    let stream = target.method == Method::Stream;
    if stream && params.alt.as_deref() != Some("sse") {
        return error::invalid(
            "switchyard-mock answers streamGenerateContent only with alt=sse; add ?alt=sse.",
        );
    }
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return error::invalid(&format!(
            "Request payload size exceeds the limit: {BODY_LIMIT} bytes."
        ));
    };
    let request: GenerateRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return error::invalid(&format!("Invalid JSON payload received. {error}")),
    };
    let contents = match request.contents.as_deref() {
        Some(contents) if !contents.is_empty() => contents,
        Some(_) | None => {
            return error::invalid(
                "* GenerateContentRequest.contents: contents is not specified\n",
            );
        }
    };
    if let Some(at) = contents
        .iter()
        .position(|content| content.parts.as_ref().is_none_or(Vec::is_empty))
    {
        return error::invalid(&format!(
            "* GenerateContentRequest.contents[{at}].parts: contents.parts must not be empty.\n"
        ));
    }
    let options = match Options::parse(&path::options_model(target.model), &parts.headers) {
        Ok(options) => options,
        Err(error) => return error::invalid(&format!("model: {error}")),
    };
    let candidates = request.candidate_count();
    let Some(candidates) = u32::try_from(candidates)
        .ok()
        .filter(|count| (1..=MAX_CANDIDATES).contains(&i64::from(*count)))
    else {
        return error::invalid(&format!(
            "* GenerateContentRequest.generation_config.candidate_count: must be between 1 and \
             {MAX_CANDIDATES}, got {candidates}.\n"
        ));
    };
    if request.json_with_functions() {
        return error::invalid(
            "Function calling with a response mime type: 'application/json' is unsupported",
        );
    }
    let prompt = request.prompt(contents);
    let answer = match behaviour::answer(&prompt, &options, &body) {
        Ok(answer) => answer,
        Err(AnswerError::UnknownTool(name)) => {
            return error::invalid(&format!(
                "* GenerateContentRequest.tool_config.function_calling_config.\
                 allowed_function_names: function '{name}' is not declared in tools.\n"
            ));
        }
    };

    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    match options.fail {
        Some(Fault::Status(status)) => {
            return error::status_fault(status, target.model, version, &options);
        }
        Some(Fault::Hang) => return faults::hang(&state.shutdown).await,
        Some(Fault::Reset) => return faults::reset(),
        Some(Fault::Cut | Fault::Malformed | Fault::Safety | Fault::Blocked) | None => {}
    }

    let reply = Reply::new(
        target.model,
        candidates,
        &answer,
        request.prompt_tokens(contents),
        request.include_thoughts(),
        &options,
    );
    if stream {
        let mut script = Script::new(&options, MALFORMED_EVENT);
        reply.stream(&mut script);
        let guard = StreamGuard::new(state.counters.clone());
        return reply::event_stream(Played::new(script.into_frames(), Some(guard)).into_body());
    }
    let body = reply.response();
    match options.fail {
        Some(Fault::Cut) => faults::cut(body),
        Some(Fault::Malformed) => faults::malformed(body),
        Some(Fault::Status(_) | Fault::Hang | Fault::Reset | Fault::Safety | Fault::Blocked)
        | None => reply::json(StatusCode::OK, body),
    }
}

/// Checks the credentials: an API key (`x-goog-api-key`, else `?key=`) or a bearer token. A
/// missing credential is refused with Google's 403, the key `invalid` with its 400 and the
/// token `invalid` with its 401. Returns the refusal, if any.
fn refusal(headers: &HeaderMap, query_key: Option<&str>) -> Option<Response> {
    let key = headers
        .get("x-goog-api-key")
        .and_then(|value| value.to_str().ok())
        .or(query_key)
        .map(str::trim)
        .filter(|key| !key.is_empty());
    if let Some(key) = key {
        return (key == "invalid").then(error::invalid_api_key);
    }
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    match token {
        Some("invalid") => Some(error::invalid_token()),
        Some(_) => None,
        None => Some(error::missing_credentials()),
    }
}
