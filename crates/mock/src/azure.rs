//! Azure OpenAI: Chat Completions at `/openai/deployments/{deployment}/chat/completions?api-version=…`
//! (and the v1 API's `/openai/v1/chat/completions`), authenticated by `api-key` or an Entra ID
//! bearer token. Answers are OpenAI's, with Azure's content-filter annotations; the deployment
//! name carries the options (`echo;fail=content_filter`), like a Gemini model path.
//!
//! `fail=content_filter` answers Azure's 400 `content_filter` error with its
//! `innererror.content_filter_result`.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::{Shared, openai, reply};

/// `POST /openai/deployments/{deployment}/chat/completions`.
pub(crate) async fn deployment(
    State(state): State<Shared>,
    Path(deployment): Path<String>,
    request: Request,
) -> Response {
    let has_version = request.uri().query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.starts_with("api-version="))
    });
    if !has_version {
        return error(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "404", "message": "Resource not found"}}),
        );
    }
    forward(state, Some(deployment), request).await
}

/// `POST /openai/v1/chat/completions`: the model is in the body.
pub(crate) async fn v1(State(state): State<Shared>, request: Request) -> Response {
    forward(state, None, request).await
}

/// `POST /openai/deployments/{deployment}/embeddings` and `/openai/v1/embeddings`: OpenAI's
/// embeddings at Azure's URLs.
pub(crate) async fn embeddings(
    State(state): State<Shared>,
    deployment: Option<Path<String>>,
    request: Request,
) -> Response {
    forward_to(
        state,
        deployment.map(|Path(name)| name),
        request,
        Target::Embeddings,
    )
    .await
}

/// Which OpenAI endpoint an Azure route stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Chat,
    Embeddings,
}

async fn forward(state: Shared, deployment: Option<String>, request: Request) -> Response {
    forward_to(state, deployment, request, Target::Chat).await
}

async fn forward_to(
    state: Shared,
    deployment: Option<String>,
    request: Request,
    target: Target,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let key = parts
        .headers
        .get("api-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::to_owned)
        });
    let Some(key) = key.filter(|key| key != "invalid") else {
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
        );
    };
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "BadRequest", "message": "The request body could not be read."}}),
        );
    };
    let Ok(mut payload) = serde_json::from_slice::<Value>(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "BadRequest", "message": "The request body is not valid JSON."}}),
        );
    };
    // The deployment (or the body's model) carries the options, Gemini-path style.
    let model = deployment
        .or_else(|| payload["model"].as_str().map(str::to_owned))
        .unwrap_or_default()
        .replacen(';', "?", 1)
        .replace(',', "&");
    if model.contains("fail=content_filter") {
        return content_filter();
    }
    payload["model"] = Value::String(model);
    let stream = payload["stream"] == Value::Bool(true);
    parts.headers.remove("api-key");
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {key}")) {
        parts.headers.insert(header::AUTHORIZATION, value);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    let request = Request::from_parts(parts, Body::from(body));
    if target == Target::Embeddings {
        return crate::embeddings::create(State(state), request).await;
    }
    let response = openai::chat_completions(State(state), request).await;
    if stream || response.status() != StatusCode::OK {
        return response;
    }
    annotate(response).await
}

/// Adds Azure's content-filter results to a whole answer.
async fn annotate(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut answer) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let safe = json!({
        "hate": {"filtered": false, "severity": "safe"},
        "self_harm": {"filtered": false, "severity": "safe"},
        "sexual": {"filtered": false, "severity": "safe"},
        "violence": {"filtered": false, "severity": "safe"}
    });
    answer["prompt_filter_results"] =
        json!([{"prompt_index": 0, "content_filter_results": safe.clone()}]);
    if let Some(choices) = answer["choices"].as_array_mut() {
        for choice in choices {
            choice["content_filter_results"] = safe.clone();
        }
    }
    let mut response = reply::json(
        StatusCode::OK,
        serde_json::to_vec(&answer).unwrap_or_default(),
    );
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// Azure's refusal of a prompt by its content filter.
fn content_filter() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        json!({"error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
            "type": null,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": true, "severity": "high"},
                    "self_harm": {"filtered": false, "severity": "safe"},
                    "sexual": {"filtered": false, "severity": "safe"},
                    "violence": {"filtered": false, "severity": "safe"}
                }
            }
        }}),
    )
}

fn error(status: StatusCode, body: Value) -> Response {
    reply::json(status, serde_json::to_vec(&body).unwrap_or_default())
}
