//! Work off the request path: tracked tasks and bounded queues, flushed on shutdown.
//!
//! Every task the gateway runs beside its requests (sharing cooldowns, and next the ledger's
//! spend records, audit records, cache writes) is spawned here rather than with a bare
//! `tokio::spawn`, on one runtime that outlives the workers. Shutdown runs in this order: the
//! workers drain their in-flight requests (whose ends may still enqueue records), then
//! [`Background::shutdown`] tells every task to stop, each queue writes out what it holds, and
//! the process waits for them, up to a grace period.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

/// The gateway's background tasks.
#[derive(Debug, Clone)]
pub struct Background {
    tasks: TaskTracker,
    closing: CancellationToken,
    handle: Handle,
}

impl Background {
    /// Background work on the runtime behind `handle`, which must run until
    /// [`Background::shutdown`] returns.
    pub fn on(handle: Handle) -> Background {
        Background {
            tasks: TaskTracker::new(),
            closing: CancellationToken::new(),
            handle,
        }
    }

    /// Runs `task` until it returns; it should return soon after [`Background::closing`]
    /// fires, having written out what it holds.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn_on(task, &self.handle);
    }

    /// Runs `task` on the background runtime and gives back its result (`None` if the runtime
    /// is shutting down). For I/O whose connections belong to that runtime (the store's
    /// pool), whichever worker asks.
    pub async fn run<F, T>(&self, task: F) -> Option<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.tasks.spawn_on(task, &self.handle).await.ok()
    }

    /// Fires when shutdown begins.
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// A bounded queue of `T` drained by `sink` in batches of up to `batch`, in order. Pushing
    /// never waits: past `capacity` queued items a push is refused and counted. On shutdown
    /// the sink gets everything still queued.
    pub fn queue<T, F, Fut>(
        &self,
        name: &'static str,
        capacity: usize,
        batch: usize,
        sink: F,
    ) -> Queue<T>
    where
        T: Send + 'static,
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        self.lingering_queue(name, capacity, batch, Duration::ZERO, sink)
    }

    /// [`Background::queue`] whose sink waits, once an item arrives, up to `linger` for more
    /// (until `batch` are in hand): fewer, larger batches for a sink that pays per batch (a
    /// database transaction). Shutdown does not wait.
    pub fn lingering_queue<T, F, Fut>(
        &self,
        name: &'static str,
        capacity: usize,
        batch: usize,
        linger: Duration,
        mut sink: F,
    ) -> Queue<T>
    where
        T: Send + 'static,
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (sender, mut receiver) = mpsc::channel::<T>(capacity.max(1));
        let closing = self.closing();
        let batch = batch.max(1);
        self.spawn(async move {
            loop {
                let mut items = Vec::with_capacity(batch);
                tokio::select! {
                    biased;
                    received = receiver.recv_many(&mut items, batch) => {
                        if received == 0 {
                            return;
                        }
                        if !linger.is_zero() && items.len() < batch {
                            // Not listening meanwhile: items pushed during the wait wake
                            // nothing (a wake-up per push would cost every request a
                            // cross-thread signal); they are taken in one go after it.
                            tokio::select! {
                                biased;
                                () = closing.cancelled() => {}
                                () = tokio::time::sleep(linger) => {}
                            }
                            while items.len() < batch {
                                match receiver.try_recv() {
                                    Ok(item) => items.push(item),
                                    Err(_) => break,
                                }
                            }
                        }
                        sink(items).await;
                    }
                    () = closing.cancelled() => break,
                }
            }
            // Shutting down: no request pushes any more; write out what is left.
            receiver.close();
            loop {
                let mut items = Vec::with_capacity(batch);
                if receiver.recv_many(&mut items, batch).await == 0 {
                    return;
                }
                sink(items).await;
            }
        });
        Queue {
            sender,
            name,
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Tells every task to stop, then waits for them (queues written out) for up to `grace`.
    /// Returns whether all finished in time.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.closing.cancel();
        self.tasks.close();
        let finished = tokio::time::timeout(grace, self.tasks.wait()).await.is_ok();
        if !finished {
            warn!(
                tasks = self.tasks.len(),
                grace_secs = grace.as_secs_f64(),
                "Background work still running after the grace period; leaving it"
            );
        }
        finished
    }
}

/// The sending side of a [`Background::queue`].
#[derive(Debug)]
pub struct Queue<T> {
    sender: mpsc::Sender<T>,
    name: &'static str,
    refused: Arc<AtomicU64>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Queue<T> {
        Queue {
            sender: self.sender.clone(),
            name: self.name,
            refused: Arc::clone(&self.refused),
        }
    }
}

impl<T> Queue<T> {
    /// Queues `item` without waiting; false (and counted) when the queue is full or closed.
    pub fn push(&self, item: T) -> bool {
        match self.sender.try_send(item) {
            Ok(()) => true,
            Err(_) => {
                let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                // The first refusal and then every thousandth: a stuck sink must not flood the
                // log it may be writing to.
                if refused % 1000 == 1 {
                    warn!(
                        queue = self.name,
                        refused, "Background queue full; item dropped"
                    );
                }
                false
            }
        }
    }

    /// Items waiting.
    pub fn depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// Items refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A queue filled just before shutdown is written out whole, in order, even by a slow sink.
    #[tokio::test]
    async fn shutdown_writes_out_what_is_queued() {
        let background = Background::on(Handle::current());
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink_written = Arc::clone(&written);
        let queue = background.queue("test", 10_000, 64, move |items: Vec<u32>| {
            let written = Arc::clone(&sink_written);
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                written.lock().expect("lock").extend(items);
            }
        });
        for item in 0..5_000 {
            assert!(queue.push(item));
        }
        assert!(background.shutdown(Duration::from_secs(30)).await);
        let written = written.lock().expect("lock");
        assert_eq!(*written, (0..5_000).collect::<Vec<_>>());
        assert!(!queue.push(1), "a closed queue takes nothing");
    }

    /// A lingering queue gathers items that trickle in into one batch, and still writes out
    /// at once on shutdown.
    #[tokio::test(start_paused = true)]
    async fn a_lingering_queue_gathers_a_trickle_into_one_batch() {
        let background = Background::on(Handle::current());
        let batches = Arc::new(Mutex::new(Vec::new()));
        let sink_batches = Arc::clone(&batches);
        let queue = background.lingering_queue(
            "test",
            100,
            50,
            Duration::from_millis(100),
            move |items: Vec<u32>| {
                let batches = Arc::clone(&sink_batches);
                async move { batches.lock().expect("lock").push(items) }
            },
        );
        for item in 0..10 {
            assert!(queue.push(item));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            *batches.lock().expect("lock"),
            [(0..10).collect::<Vec<_>>()]
        );
        assert!(queue.push(10));
        assert!(background.shutdown(Duration::from_secs(1)).await);
        assert_eq!(
            batches.lock().expect("lock").len(),
            2,
            "written at shutdown"
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_counts() {
        let background = Background::on(Handle::current());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let mut released = Some(released);
        let queue = background.queue("test", 2, 1, move |_: Vec<u32>| {
            let wait = released.take();
            async move {
                if let Some(wait) = wait {
                    let _ = wait.await;
                }
            }
        });
        // The first item is taken by the sink, which then blocks; two more fill the queue.
        assert!(queue.push(0));
        tokio::task::yield_now().await;
        assert!(queue.push(1) && queue.push(2));
        assert!(!queue.push(3));
        assert_eq!(queue.refused(), 1);
        let _ = release.send(());
        assert!(background.shutdown(Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn a_task_that_ignores_shutdown_is_left_after_the_grace() {
        let background = Background::on(Handle::current());
        background.spawn(std::future::pending());
        assert!(!background.shutdown(Duration::from_millis(20)).await);
    }
}
