//! Thread-per-core serving: N worker threads, each with its own single-threaded runtime, its own
//! upstream client and connection pool, and its own listening socket on the shared address
//! (`SO_REUSEPORT`, the kernel spreads connections over them). A request lives on one thread
//! from accept to last byte: no cross-thread wake-ups, no memory freed on another thread.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tracing::info;

use crate::app::AppState;
use crate::config::ConfigFile;
use crate::runtime::{BuildError, HealthRegistry, Runtime};
use crate::serve::serve;

/// Why the workers could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    /// A thread, runtime or socket could not be created.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A worker's runtime could not be built from the config.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A worker thread died.
    #[error("a worker thread panicked")]
    Panicked,
}

/// Serves `config` on `workers` threads until `shutdown` resolves, then drains them all.
/// Returns once every worker has stopped.
pub fn run(
    config: &ConfigFile,
    addr: SocketAddr,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkersError> {
    // Several sockets on port 0 would each get a port of their own.
    let workers = if cfg!(unix) && addr.port() != 0 {
        workers.max(1)
    } else {
        1
    };
    let ready = Arc::new(AtomicBool::new(true));
    let health = Arc::new(HealthRegistry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (started_tx, started_rx) = std::sync::mpsc::channel::<Result<SocketAddr, WorkersError>>();
    let mut threads = Vec::with_capacity(workers);
    for index in 0..workers {
        let config = config.clone();
        let ready = Arc::clone(&ready);
        let health = Arc::clone(&health);
        let mut stop = stop_rx.clone();
        let started = started_tx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("switchyard-worker-{index}"))
            .spawn(move || -> Result<(), WorkersError> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let prepared = async {
                        let built = Runtime::build(&config, &health).await?;
                        let listener = bind(addr, workers > 1)?;
                        Ok::<_, WorkersError>((built, listener))
                    }
                    .await;
                    let (built, listener) = match prepared {
                        Ok(prepared) => prepared,
                        Err(error) => {
                            let _ = started.send(Err(error));
                            return Ok(());
                        }
                    };
                    let _ = started.send(Ok(listener.local_addr()?));
                    let state = AppState {
                        runtime: Arc::new(built),
                        ready,
                    };
                    serve(state, listener, async move {
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    })
                    .await?;
                    Ok(())
                })
            })?;
        threads.push(thread);
    }
    drop(started_tx);
    let mut failure = None;
    for _ in 0..workers {
        match started_rx.recv() {
            Ok(Ok(local)) => info!(address = %local, "Worker listening"),
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(_) => failure = failure.or(Some(WorkersError::Panicked)),
        }
    }
    if failure.is_none() {
        info!(workers, "Switchyard serving");
        let signal = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        signal.block_on(shutdown);
    }
    let _ = stop_tx.send(true);
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(_) => failure = failure.or(Some(WorkersError::Panicked)),
        }
    }
    failure.map_or(Ok(()), Err)
}

/// A listener on `addr`; with `shared`, one of several on the same address.
fn bind(addr: SocketAddr, shared: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
    if shared {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(all(unix, not(target_os = "solaris"), not(target_os = "illumos"))))]
    let _ = shared;
    socket.bind(addr)?;
    socket.listen(1024)
}
