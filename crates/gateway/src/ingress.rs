//! Client-facing handlers: the chat and embeddings routes hand each request to the pipeline
//! (which decodes it in the client's dialect and answers in the same); the model list, health
//! and unknown routes answer here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchyard_types::{ApiError, ErrorKind, MAX_QUOTED, Origin, WireFormat, clip};

use crate::app::{AppState, request_id_of};
use crate::error::reply;
use crate::pipeline::{self, Ctx, Kind, respond};

/// `POST /v1/chat/completions`.
pub async fn openai_chat(State(state): State<AppState>, request: Request) -> Response {
    chat(state, WireFormat::OpenAi, request).await
}

/// `POST /v1/messages`.
pub async fn anthropic_messages(State(state): State<AppState>, request: Request) -> Response {
    chat(state, WireFormat::Anthropic, request).await
}

/// Answers one chat request, echoing its id in `x-request-id` whatever the outcome.
pub(crate) async fn chat(state: AppState, format: WireFormat, request: Request) -> Response {
    call(state, format, Kind::Chat, request).await
}

/// `POST /v1/embeddings` (OpenAI's shape, any upstream that embeds).
pub async fn embeddings(State(state): State<AppState>, request: Request) -> Response {
    call(state, WireFormat::OpenAi, Kind::Embed, request).await
}

/// Any call: its context from the first header, the pipeline, the response.
async fn call(state: AppState, format: WireFormat, kind: Kind, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let runtime = state.runtime.load_full();
    let mut ctx = Ctx::new(
        request_id_of(&parts.headers),
        format,
        kind,
        Arc::clone(&state.shared),
    );
    let result = pipeline::run(&runtime, &mut ctx, &parts.headers, body).await;
    respond::reply(ctx, result)
}

/// `GET /v1/models`: the model groups, in OpenAI's list shape, or Anthropic's when the caller
/// is an Anthropic client (it sends `anthropic-version`); each says which providers back it.
/// With keys required, the list holds only the groups the caller's key may use.
pub async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let runtime = state.runtime.load();
    let format = if headers.contains_key("anthropic-version") {
        WireFormat::Anthropic
    } else {
        WireFormat::OpenAi
    };
    let principal = match &state.shared.governance {
        Some(governance) => match governance.authenticate(&headers, format).await {
            Ok(principal) => Some(principal),
            Err(error) => return reply(format, &error),
        },
        None => None,
    };
    let groups: Vec<_> = runtime
        .groups
        .iter()
        .filter(|group| {
            principal
                .as_ref()
                .is_none_or(|principal| principal.may_use(group))
        })
        .collect();
    if format == WireFormat::Anthropic {
        let data: Vec<_> = groups
            .iter()
            .map(|group| {
                json!({"type": "model", "id": group.name, "display_name": group.name, "created_at": "1970-01-01T00:00:00Z", "providers": group.providers()})
            })
            .collect();
        let first = groups.first().map(|group| group.name.clone());
        let last = groups.last().map(|group| group.name.clone());
        return axum::Json(
            json!({"data": data, "has_more": false, "first_id": first, "last_id": last}),
        )
        .into_response();
    }
    let data: Vec<_> = groups
        .iter()
        .map(|group| json!({"id": group.name, "object": "model", "created": 0, "owned_by": "switchyard", "providers": group.providers()}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /health/liveness`: the process answers.
pub async fn liveness() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /health/readiness`: ready to take traffic (false while shutting down).
pub async fn readiness(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "shutting down"})),
        )
            .into_response()
    }
}

/// `GET /metrics`: every metric as OpenMetrics text (Prometheus scrapes it); 404 when
/// `metrics.enabled` is false.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let Some(metrics) = &state.shared.metrics else {
        return unknown_route(HeaderMap::new(), axum::http::Uri::from_static("/metrics")).await;
    };
    metrics.deployments(&state.runtime.load());
    if let Some(ledger) = &state.shared.ledger {
        metrics.queue("spend_records", ledger.queued(), ledger.dropped());
    }
    if let Some(audit) = &state.shared.audit {
        metrics.queue("audit_records", audit.queued(), audit.dropped());
    }
    if let Some(traces) = &state.shared.traces {
        metrics.queue("traced_calls", traces.queued(), traces.dropped());
    }
    let mut response = metrics.encode().into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}

/// Any other route: a 404 in OpenAI's shape (Anthropic's for Anthropic clients).
pub async fn unknown_route(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let format = if headers.contains_key("anthropic-version") {
        WireFormat::Anthropic
    } else {
        WireFormat::OpenAi
    };
    let error = ApiError::new(
        ErrorKind::NotFound,
        Origin::Client,
        format!("Unknown route: {}", clip(uri.path(), MAX_QUOTED)),
    );
    reply(format, &error)
}
