//! Thread-per-core serving: N worker threads, each with its own single-threaded runtime, its own
//! upstream client and connection pool, and its own listening socket on the shared address
//! (`SO_REUSEPORT`, the kernel spreads connections over them). A request lives on one thread
//! from accept to last byte: no cross-thread wake-ups, no memory freed on another thread.
//!
//! A config reload reaches every worker, which builds its runtime from the new config and swaps
//! it in; requests already running finish on the old one. What all workers share (deployment
//! health, hooks, background work: [`Shared`]) is built once, handed to each, and kept across
//! reloads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::app::AppState;
use crate::config::ConfigFile;
use crate::router::checks;
use crate::runtime::{BuildError, Runtime};
use crate::serve::serve;
use crate::shared::Shared;

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

/// Running worker threads.
#[derive(Debug)]
pub struct Workers {
    threads: Vec<std::thread::JoinHandle<Result<(), WorkersError>>>,
    stop: watch::Sender<bool>,
    config: watch::Sender<Arc<ConfigFile>>,
    reloaded: mpsc::UnboundedReceiver<Result<(), String>>,
    addr: SocketAddr,
}

impl Workers {
    /// Starts `workers` threads serving `config` on `addr`, all sharing `shared`; returns once
    /// all listen.
    pub fn start(
        config: ConfigFile,
        addr: SocketAddr,
        workers: usize,
        shared: Arc<Shared>,
    ) -> Result<Workers, WorkersError> {
        // Several sockets on port 0 would each get a port of their own.
        let workers = if cfg!(unix) && addr.port() != 0 {
            workers.max(1)
        } else {
            1
        };
        let shared_for_address = Arc::clone(&shared);
        let ready = Arc::new(AtomicBool::new(true));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (config_tx, config_rx) = watch::channel(Arc::new(config));
        let (reloaded_tx, reloaded_rx) = mpsc::unbounded_channel();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let worker = Worker {
                index,
                ready: Arc::clone(&ready),
                shared: Arc::clone(&shared),
                stop: stop_rx.clone(),
                config: config_rx.clone(),
                reloaded: reloaded_tx.clone(),
                started: started_tx.clone(),
                addr,
                reuse_port: workers > 1,
            };
            let thread = std::thread::Builder::new()
                .name(format!("switchyard-worker-{index}"))
                .spawn(move || worker.run())?;
            threads.push(thread);
        }
        drop(started_tx);
        let mut bound = addr;
        let mut failure = None;
        for _ in 0..workers {
            match started_rx.recv() {
                Ok(Ok(local)) => bound = local,
                Ok(Err(error)) => failure = failure.or(Some(error)),
                Err(_) => failure = failure.or(Some(WorkersError::Panicked)),
            }
        }
        if failure.is_none() {
            let _ = shared_for_address.listening.set(bound);
        }
        let workers = Workers {
            threads,
            stop: stop_tx,
            config: config_tx,
            reloaded: reloaded_rx,
            addr: bound,
        };
        match failure {
            None => Ok(workers),
            Some(error) => {
                let _ = workers.stop_and_join();
                Err(error)
            }
        }
    }

    /// The address the workers listen on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Hands `config` (already validated) to every worker and waits until each has swapped it
    /// in or kept its old one; returns the build errors, if any.
    pub async fn reload(&mut self, config: ConfigFile) -> Result<(), Vec<String>> {
        while self.reloaded.try_recv().is_ok() {}
        self.config.send_replace(Arc::new(config));
        let mut errors = Vec::new();
        for _ in 0..self.threads.len() {
            match self.reloaded.recv().await {
                Some(Ok(())) => {}
                Some(Err(error)) => errors.push(error),
                None => errors.push("a worker has stopped".to_owned()),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Stops accepting, lets every worker drain, and waits for them.
    pub fn stop_and_join(self) -> Result<(), WorkersError> {
        let _ = self.stop.send(true);
        let mut failure = None;
        for thread in self.threads {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => failure = failure.or(Some(error)),
                Err(_) => failure = failure.or(Some(WorkersError::Panicked)),
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// What one worker thread needs.
struct Worker {
    index: usize,
    ready: Arc<AtomicBool>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    config: watch::Receiver<Arc<ConfigFile>>,
    reloaded: mpsc::UnboundedSender<Result<(), String>>,
    started: std::sync::mpsc::Sender<Result<SocketAddr, WorkersError>>,
    addr: SocketAddr,
    /// One of several listeners on the address.
    reuse_port: bool,
}

impl Worker {
    fn run(mut self) -> Result<(), WorkersError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let prepared = async {
                let config = Arc::clone(&self.config.borrow_and_update());
                let built = Runtime::build(&config, &self.shared).await?;
                let listener = bind(self.addr, self.reuse_port)?;
                Ok::<_, WorkersError>((built, listener))
            }
            .await;
            let (built, listener) = match prepared {
                Ok(prepared) => prepared,
                Err(error) => {
                    let _ = self.started.send(Err(error));
                    return Ok(());
                }
            };
            let _ = self.started.send(Ok(listener.local_addr()?));
            let state = AppState {
                runtime: Arc::new(ArcSwap::from_pointee(built)),
                ready: self.ready,
                shared: Arc::clone(&self.shared),
            };
            let current = Arc::clone(&state.runtime);
            let mut stop = self.stop.clone();
            let serving = serve(state, listener, async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            });
            let reloading = async {
                let mut stop = self.stop.clone();
                loop {
                    tokio::select! {
                        changed = self.config.changed() => {
                            if changed.is_err() {
                                break;
                            }
                        }
                        _ = stop.wait_for(|stopped| *stopped) => break,
                    }
                    let config = Arc::clone(&self.config.borrow_and_update());
                    let result = match Runtime::build(&config, &self.shared).await {
                        Ok(runtime) => {
                            current.store(Arc::new(runtime));
                            Ok(())
                        }
                        Err(error) => {
                            warn!(%error, "Reloaded config could not be built; keeping the old one");
                            Err(error.to_string())
                        }
                    };
                    let _ = self.reloaded.send(result);
                }
            };
            // Active health checks run on the first worker only: one probe per deployment.
            let checking = async {
                if self.index == 0 {
                    checks::run(Arc::clone(&current), self.stop.clone()).await;
                }
            };
            let (served, (), ()) = tokio::join!(serving, reloading, checking);
            served?;
            info!("Worker stopped");
            Ok(())
        })
    }
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
