//! Listening and graceful shutdown, and [`Gateway`]: a whole gateway on an ephemeral port, for
//! tests and benchmarks.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tower_service::Service;
use tracing::{error, info, warn};

use crate::app::{AppState, build_router, chat_route};
use crate::ingress;
use crate::router::checks;
use crate::runtime::Runtime;
use crate::shared::Shared;

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests and streams
/// finish for up to the configured grace period, and returns.
///
/// Connections speak HTTP/1.1, or HTTP/2 with prior knowledge, each on a task of its own.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let settings = state.runtime.load().server.clone();
    let grace = settings.shutdown_grace;
    let ready = Arc::clone(&state.ready);
    let connections = state.shared.connections(settings.max_connections);
    let app = Arc::new(App {
        router: build_router(state.clone()),
        state,
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Without a timer hyper applies no header timeout at all: a client sending nothing, or a
    // byte at a time, or idling between requests would hold its connection forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(settings.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(settings.http2_keep_alive))
        .keep_alive_timeout(settings.http2_keep_alive);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let stopping = tokio_util::sync::CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A permit per open connection, for the whole process: at the limit, new connections
        // wait in the listen backlog rather than exhaust file descriptors and memory.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small SSE chunks must leave at once; Nagle would hold them back.
        let _ = tcp.set_nodelay(true);
        let app = Arc::clone(&app);
        let service = hyper::service::service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.handle(request).await) }
        });
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        let first_bytes = settings.header_read_timeout;
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // The auto builder reads the first bytes to tell HTTP/1.1 from HTTP/2, and hyper's
            // header timer starts only after that: a connection that sends nothing is closed
            // here (and at once on shutdown: there is no request to drain).
            // (A peek, not `readable()`: a fresh socket may report itself readable at once.)
            let mut first = [0u8; 1];
            let peeked = tokio::select! {
                peeked = tokio::time::timeout(first_bytes, tcp.peek(&mut first)) => peeked,
                () = stopping.cancelled() => return,
            };
            if !matches!(peeked, Ok(Ok(1))) {
                return;
            }
            let connection = watcher.watch(
                builder
                    .serve_connection(TokioIo::new(tcp), service)
                    .into_owned(),
            );
            // A client that goes away mid-request is no error of ours.
            let _ = connection.await;
        });
    }
    drop(listener);
    stopping.cancel();
    ready.store(false, Ordering::Relaxed);
    info!(
        grace_secs = grace.as_secs_f64(),
        "Shutting down: draining in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            warn!("Shutdown grace period over: closing the remaining connections");
        }
    }
    Ok(())
}

/// What every connection serves: the chat routes directly, everything else through the router.
struct App {
    state: AppState,
    router: Router,
}

impl App {
    async fn handle(&self, request: hyper::Request<Incoming>) -> Response {
        let request: Request = request.map(Body::new);
        // The chat routes skip the router's matching and layers: they are most of the traffic
        // and need nothing from them. Other methods on these paths still get the router's 405.
        if request.method() == Method::POST
            && let Some(format) = chat_route(request.uri().path())
        {
            return ingress::chat(self.state.clone(), format, request).await;
        }
        let mut router = self.router.clone();
        let Ok(()) =
            std::future::poll_fn(|cx| Service::<Request>::poll_ready(&mut router, cx)).await;
        let Ok(response) = router.call(request).await;
        response
    }
}

/// An accept that failed: a connection reset before it was accepted is the client's business;
/// anything else (out of file descriptors, say) is logged and waited out for a second.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    error!(%error, "Accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// A gateway serving on an ephemeral loopback port until dropped.
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    runtime: Arc<ArcSwap<Runtime>>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    stop_checks: watch::Sender<bool>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Gateway {
    /// Starts a gateway for `runtime` (built with `shared`) on `127.0.0.1:0`.
    pub async fn start(runtime: Runtime, shared: Arc<Shared>) -> std::io::Result<Gateway> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let _ = shared.listening.set(addr);
        let (stop, stopped) = oneshot::channel::<()>();
        let state = AppState::new(runtime, Arc::clone(&shared));
        let runtime = Arc::clone(&state.runtime);
        let (stop_checks, checks_stopped) = watch::channel(false);
        tokio::task::spawn(checks::run(Arc::clone(&runtime), checks_stopped));
        let done = tokio::task::spawn(serve(state, listener, async move {
            let _ = stopped.await;
        }));
        Ok(Gateway {
            addr,
            runtime,
            shared,
            stop: Some(stop),
            stop_checks,
            done: Some(done),
        })
    }

    /// Swaps in a new runtime: requests already running finish on the old one.
    pub fn reload(&self, runtime: Runtime) {
        self.runtime.store(Arc::new(runtime));
    }

    /// The runtime serving now.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it shares between its requests (hooks, health, background work).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Begins a graceful shutdown, waits until the server returned (in-flight requests
    /// drained), then flushes the background work.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        let _ = self.stop_checks.send(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = match self.done.take() {
            Some(done) => done.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        let grace = self.runtime.load().server.shutdown_grace;
        self.shared.background.shutdown(grace).await;
        served
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.stop_checks.send(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
