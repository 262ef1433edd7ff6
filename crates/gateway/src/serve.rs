//! Listening and graceful shutdown, and [`Gateway`]: a whole gateway on an ephemeral port, for
//! tests and benchmarks.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::app::{AppState, build_router};
use crate::router::checks;
use crate::runtime::Runtime;

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests and streams
/// finish for up to the configured grace period, and returns.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.runtime.load().server.shutdown_grace;
    let ready = Arc::clone(&state.ready);
    let (draining_tx, draining_rx) = oneshot::channel::<()>();
    let app = build_router(state);
    let listener = listener.tap_io(|tcp| {
        // Small SSE chunks must leave at once; Nagle would hold them back.
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready.store(false, Ordering::Relaxed);
            info!(
                grace_secs = grace.as_secs_f64(),
                "Shutting down: draining in-flight requests"
            );
            let _ = draining_tx.send(());
        })
        .into_future();
    let deadline = async move {
        if draining_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            warn!("Shutdown grace period over: closing the remaining connections");
            Ok(())
        }
    }
}

/// A gateway serving on an ephemeral loopback port until dropped.
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    runtime: Arc<ArcSwap<Runtime>>,
    stop: Option<oneshot::Sender<()>>,
    stop_checks: watch::Sender<bool>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Gateway {
    /// Starts a gateway for `runtime` on `127.0.0.1:0`.
    pub async fn start(runtime: Runtime) -> std::io::Result<Gateway> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let state = AppState::new(runtime);
        let runtime = Arc::clone(&state.runtime);
        let (stop_checks, checks_stopped) = watch::channel(false);
        tokio::task::spawn(checks::run(Arc::clone(&runtime), checks_stopped));
        let done = tokio::task::spawn(serve(state, listener, async move {
            let _ = stopped.await;
        }));
        Ok(Gateway {
            addr,
            runtime,
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

    /// Begins a graceful shutdown and waits until the server returned.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        let _ = self.stop_checks.send(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.done.take() {
            Some(done) => done.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
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
