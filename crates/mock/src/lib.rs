//! # switchyard-mock
//!
//! A test upstream that speaks the OpenAI Chat Completions, Anthropic Messages and Google Gemini
//! wire formats field by field, with latency and fault controls. The gateway's tests, its
//! benchmark and its default configuration run it in-process ([`MockServer`]); the
//! `switchyard-mock` binary serves the same [`router`].
//!
//! Routes (each also without the `/v1` prefix): `POST /v1/chat/completions`,
//! `POST /v1/messages`, `GET /v1/models`; and `GET /mock/stats`, `GET /health`, and
//! `POST /v1/traces` (only with `/v1`: an OTLP/HTTP collector that counts what it receives,
//! shown in the stats). Keys: any non-empty key is accepted but `invalid` (the provider's 401); on Chat Completions the key
//! `exhausted` is over its own quota (a 429 with `retry-after: 20`, whatever the model). Gemini, under
//! `/v1beta` and `/v1`: `POST /v1beta/models/{model}:generateContent` and
//! `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` (other `alt` values are a 400),
//! with an API key in `x-goog-api-key` or `?key=`, or `Authorization: Bearer <token>`.
//!
//! Azure OpenAI: `POST /openai/deployments/{deployment}/chat/completions?api-version=…` and
//! `POST /openai/v1/chat/completions`, with `api-key` or a bearer token; the deployment name
//! carries the options with `;` and `,`; `fail=content_filter` is Azure's content-filter refusal.
//!
//! AWS Bedrock: `POST /model/{modelId}/converse` and `/model/{modelId}/converse-stream`
//! (binary `application/vnd.amazon.eventstream` frames), SigV4-signed with access key
//! `AKIDMOCK` and secret `mock-secret` (the signature is verified); options in the model id with
//! `;` and `,`; `fail=stream_exception` sends an exception frame mid-stream.
//!
//! Google Vertex AI: `POST /token` is the OAuth token endpoint; a service-account JWT
//! (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`) signed with the test
//! key of `crates/providers/tests/fixtures/vertex/service_account.json` is verified (signature,
//! issuer, audience, lifetime, `cloud-platform` scope) and answered with a `ya29.mock-…` token
//! valid 3599 s (`x-mock-token-expires-in` or `/token?expires_in=` for another lifetime).
//! `POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent`
//! and `…:streamGenerateContent?alt=sse` answer as Gemini does, to `Authorization: Bearer` with
//! a token the mock issued and that has not expired (else Google's 401 `UNAUTHENTICATED`).
//!
//! Embeddings, the same vector for the same text in every dialect (8 dimensions unless the
//! request names another length; a text's FNV-1a hash seeds the components, scaled to length 1):
//! OpenAI's `POST /v1/embeddings` (bearer key as for chat; `encoding_format` `float` or
//! `base64`), Gemini's `POST /v1beta/models/{model}:batchEmbedContents`, and Bedrock's
//! `POST /model/{modelId}/invoke` for `amazon.titan-embed-text…` and `cohere.embed…` ids
//! (SigV4-verified; input tokens in `x-amzn-bedrock-input-token-count`).
//!
//! Behaviour is chosen per request by a query suffix on the model string
//! (`"echo?latency_ms=20&fail=500"`) or `x-mock-<option>` headers (headers win): `latency_ms`,
//! `ttft_ms`, `chunk_delay_ms`, `tokens`, `echo=request`, `fail`, `retry_after`, `cut_after`,
//! `cached_tokens`, `reasoning_tokens`, `finish`. `fail` takes a status (400–599), `hang`,
//! `reset`, `cut`, `malformed`, `safety` or `blocked` (Gemini's withheld candidate and blocked
//! prompt; elsewhere an empty content-filter answer). Gemini's model sits in the URL path, where
//! `?` and `&` must be percent-encoded (`models/echo%3Ffail%3D500:generateContent`); there the
//! options may also be written with `;` and `,`:
//! `models/echo;fail=500,retry_after=3:generateContent`.
//! Token counts are words: prompt tokens are the words of each message, system prompt and tool
//! definition plus 3 each, and 85 per image.
//!
//! # Layout
//! - `options`: parsing the behaviour controls.
//! - `behaviour`: what to answer (text, tool calls, finish, token counts); pure.
//! - `openai`, `anthropic`, `gemini`, `azure`, `bedrock`: the endpoints, their request and response shapes and errors.
//! - `embeddings`: `/v1/embeddings`, Gemini `batchEmbedContents` and Bedrock `invoke`.
//! - `vertex`: the OAuth token endpoint and the Gemini endpoints under a project, behind its tokens.
//! - `script`: stream bodies with pacing and stream faults; `faults`: the transport faults.
//! - `stats`: counters; `models`: the model list; `reply`, `ids`, `clock`: response parts.

mod anthropic;
mod azure;
mod bedrock;
mod behaviour;
mod clock;
mod embeddings;
mod faults;
mod gemini;
mod ids;
mod models;
mod openai;
mod options;
mod reply;
mod script;
mod stats;
mod vertex;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::stats::Counters;
pub use self::stats::MockStats;

/// Largest request body the mock reads.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// State shared by the routes and the [`MockServer`] that serves them.
#[derive(Debug)]
struct ServerState {
    counters: Arc<Counters>,
    /// Set to `true` when the server shuts down; ends hanging requests.
    shutdown: watch::Sender<bool>,
}

type Shared = Arc<ServerState>;

impl ServerState {
    fn new() -> Shared {
        Arc::new(Self {
            counters: Arc::new(Counters::default()),
            shutdown: watch::Sender::new(false),
        })
    }
}

/// The mock's routes, with their own counters, for callers that serve them themselves.
pub fn router() -> Router {
    router_with(ServerState::new())
}

fn router_with(state: Shared) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/chat/completions", post(openai::chat_completions))
        .route("/v1/messages", post(anthropic::messages))
        .route("/messages", post(anthropic::messages))
        .route("/v1/embeddings", post(embeddings::create))
        .route("/embeddings", post(embeddings::create))
        // Gemini puts the method after a `:` inside the last segment, which axum cannot route.
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure::deployment),
        )
        .route("/openai/v1/chat/completions", post(azure::v1))
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(azure::embeddings),
        )
        .route("/openai/v1/embeddings", post(azure::embeddings))
        .route("/v1beta/models/{*rest}", post(gemini::models))
        .route("/v1/models/{*rest}", post(gemini::models))
        .route("/model/{model_id}/converse", post(bedrock::converse))
        .route(
            "/model/{model_id}/converse-stream",
            post(bedrock::converse_stream),
        )
        .route("/model/{model_id}/invoke", post(embeddings::invoke))
        .merge(vertex::routes(Arc::clone(&state)))
        .route("/v1/models", get(models::list))
        .route("/models", get(models::list))
        .route("/v1/traces", post(traces))
        .route("/mock/stats", get(stats))
        .route("/health", get(health))
        .with_state(state)
}

async fn stats(State(state): State<Shared>) -> Response {
    let mut body = Vec::with_capacity(128);
    reply::write_json(&mut body, &state.counters.snapshot());
    reply::json(StatusCode::OK, body)
}

/// An OTLP/HTTP trace export: counted and acknowledged (an empty `ExportTraceServiceResponse`),
/// so that a gateway's traces have somewhere to go in benchmarks and tests.
async fn traces(State(state): State<Shared>, body: axum::body::Bytes) -> Response {
    state.counters.trace_export(body.len());
    let mut response = Response::new(axum::body::Body::empty());
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-protobuf"),
    );
    response
}

async fn health() -> &'static str {
    "ok"
}

/// A running mock server. Dropping it stops accepting connections and lets the open ones
/// finish; [`MockServer::shutdown`] also waits for them.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    state: Shared,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds `addr` (use `127.0.0.1:0` for an ephemeral port) and serves in a background task
    /// on the current Tokio runtime until dropped or shut down.
    pub async fn start(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = ServerState::new();
        let app = router_with(Arc::clone(&state));
        let mut down = state.shutdown.subscribe();
        // Small SSE writes must leave at once: Nagle's algorithm would hold them for an ACK.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "Could not set TCP_NODELAY");
            }
        });
        let task = tokio::spawn(async move {
            let signal = async move {
                // An error means the sender is gone: shut down as well.
                let _ = down.wait_for(|down| *down).await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::warn!(%error, "Mock server stopped");
            }
        });
        Ok(Self {
            addr,
            state,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL like `http://127.0.0.1:PORT` (no trailing slash, no `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the counters (as served on `/mock/stats`).
    pub fn stats(&self) -> MockStats {
        self.state.counters.snapshot()
    }

    /// Stops accepting connections, ends hanging requests and waits for open connections to
    /// finish.
    pub async fn shutdown(mut self) {
        self.state.shutdown.send_replace(true);
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(%error, "Mock server task failed");
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.state.shutdown.send_replace(true);
    }
}

#[cfg(test)]
mod tests;
