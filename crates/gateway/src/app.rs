//! The axum router: routes and transport layers only; domain logic lives in the pipeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use switchyard_types::WireFormat;

use crate::headers;
use crate::ingress;
use crate::runtime::Runtime;
use crate::shared::Shared;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The built config. A reload swaps it; a request keeps the one it started with.
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// False once shutdown began: readiness then fails so load balancers drain the instance.
    pub ready: Arc<AtomicBool>,
    /// What every worker shares.
    pub shared: Arc<Shared>,
}

impl AppState {
    /// State for `runtime` and `shared`, ready to serve.
    pub fn new(runtime: Runtime, shared: Arc<Shared>) -> AppState {
        AppState {
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            ready: Arc::new(AtomicBool::new(true)),
            shared,
        }
    }
}

/// Builds the router with every route, with and without the `/v1` prefix.
///
/// The chat routes give their requests an id themselves (the hot path skips a middleware
/// layer); every other route gets one from the request-id layer.
pub fn build_router(state: AppState) -> Router {
    let others = Router::new()
        .route("/v1/models", get(ingress::models))
        .route("/models", get(ingress::models))
        .route("/health/liveness", get(ingress::liveness))
        .route("/health/readiness", get(ingress::readiness))
        .route("/metrics", get(ingress::metrics))
        .merge(crate::admin::routes())
        .fallback(ingress::unknown_route)
        .layer(middleware::from_fn(request_id));
    let mut router = Router::new();
    for (path, format) in CHAT_ROUTES {
        let handler = match format {
            WireFormat::OpenAi => post(ingress::openai_chat),
            WireFormat::Anthropic => post(ingress::anthropic_messages),
        };
        router = router.route(path, handler);
    }
    router
        .route("/v1/embeddings", post(ingress::embeddings))
        .route("/embeddings", post(ingress::embeddings))
        .merge(others)
        .with_state(state)
}

/// The chat routes and the dialect each speaks, with and without the `/v1` prefix.
const CHAT_ROUTES: [(&str, WireFormat); 4] = [
    ("/v1/chat/completions", WireFormat::OpenAi),
    ("/chat/completions", WireFormat::OpenAi),
    ("/v1/messages", WireFormat::Anthropic),
    ("/messages", WireFormat::Anthropic),
];

/// The dialect of the chat route at `path`, if it is one.
pub(crate) fn chat_route(path: &str) -> Option<WireFormat> {
    CHAT_ROUTES
        .iter()
        .find(|(route, _)| *route == path)
        .map(|(_, format)| *format)
}

/// The request's id: the client's `x-request-id` when it sent a sane one, else a new one.
pub fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get(&headers::REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 128
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(new_request_id, str::to_owned)
}

/// Echoes the request id in a response.
pub fn set_request_id(response: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response
            .headers_mut()
            .insert(headers::REQUEST_ID.clone(), value);
    }
}

/// The request-id layer of the routes other than chat.
async fn request_id(request: Request, next: Next) -> Response {
    let id = request_id_of(request.headers());
    let mut response = next.run(request).await;
    set_request_id(&mut response, &id);
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
    // `req_`, the prefix in 8 hex digits, the count in at least 8, written directly: the
    // formatting machinery costs more than the rest of making an id.
    let mut id = String::with_capacity(28);
    id.push_str("req_");
    push_hex(&mut id, u64::from(prefix as u32), 8);
    let width = (16 - count.leading_zeros() as usize / 4).max(8);
    push_hex(&mut id, count, width);
    id
}

/// Appends the low `width` hex digits of `value`.
fn push_hex(out: &mut String, value: u64, width: usize) {
    for position in (0..width).rev() {
        let nibble = ((value >> (position * 4)) & 0xf) as u8;
        out.push(char::from(if nibble < 10 {
            b'0' + nibble
        } else {
            b'a' + nibble - 10
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_match_formatting() {
        for (value, width) in [
            (0u64, 8),
            (0xdead_beef, 8),
            (0x1_0000_0000, 9),
            (u64::MAX, 16),
        ] {
            let mut out = String::new();
            push_hex(&mut out, value, width);
            assert_eq!(out, format!("{value:0width$x}"));
        }
        let id = new_request_id();
        assert!(id.starts_with("req_") && id.len() == 20, "{id}");
        assert_ne!(new_request_id(), new_request_id());
    }
}
