//! The axum router: routes and transport layers only; domain logic lives in the pipeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::ingress;
use crate::runtime::Runtime;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The built config. A reload swaps it; a request keeps the one it started with.
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// False once shutdown began: readiness then fails so load balancers drain the instance.
    pub ready: Arc<AtomicBool>,
}

impl AppState {
    /// State for `runtime`, ready to serve.
    pub fn new(runtime: Runtime) -> AppState {
        AppState {
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            ready: Arc::new(AtomicBool::new(true)),
        }
    }
}

/// The request's id, set by the request-id layer, read by handlers for logs.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Builds the router with every route, with and without the `/v1` prefix.
pub fn build_router(state: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(ingress::openai_chat))
        .route("/chat/completions", post(ingress::openai_chat))
        .route("/v1/messages", post(ingress::anthropic_messages))
        .route("/messages", post(ingress::anthropic_messages))
        .route("/v1/models", get(ingress::models))
        .route("/models", get(ingress::models))
        .route("/health/liveness", get(ingress::liveness))
        .route("/health/readiness", get(ingress::readiness))
        .fallback(ingress::unknown_route)
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Gives every request an id (the client's `x-request-id` when it sent a sane one) and echoes
/// it in the response.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 128
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(new_request_id, str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A process-unique id: a per-process random prefix and a counter.
fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or(0),
        );
        hasher.finish()
    });
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("req_{:08x}{count:08x}", prefix as u32)
}
