//! A bound in bytes on the lines queued for the writer thread. The queue's own bound counts
//! lines, and lines are not all small: without this, lines queued behind a stuck sink could
//! hold tens of megabytes.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::fmt::MakeWriter;

/// Bytes queued and lines refused, shared by the queueing side and the writing side.
#[derive(Debug, Default)]
pub struct Budget {
    queued: AtomicUsize,
    refused: AtomicUsize,
    max: usize,
}

impl Budget {
    /// A budget of `max` queued bytes.
    pub fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            max,
            ..Budget::default()
        })
    }

    /// Lines refused because the budget was spent.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes `bytes` from the budget, unless that would pass it.
    fn take(&self, bytes: usize) -> bool {
        let mut queued = self.queued.load(Ordering::Relaxed);
        loop {
            if queued.saturating_add(bytes) > self.max {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            match self.queued.compare_exchange_weak(
                queued,
                queued + bytes,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => queued = now,
            }
        }
    }

    /// Gives `bytes` back (written, or dropped by the queue itself).
    fn give(&self, bytes: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
                Some(queued.saturating_sub(bytes))
            });
    }
}

/// The queueing side: each line takes its bytes from the budget before it is queued, or is
/// refused.
#[derive(Clone)]
pub struct Bounded {
    inner: NonBlocking,
    budget: Arc<Budget>,
}

impl Bounded {
    /// `inner` bounded by `budget`.
    pub fn new(inner: NonBlocking, budget: Arc<Budget>) -> Bounded {
        Bounded { inner, budget }
    }
}

impl io::Write for Bounded {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        if !self.budget.take(line.len()) {
            return Ok(line.len());
        }
        // The queue may still drop the line (its own bound, in lines): then the bytes come
        // back here, as the writer thread will never see them. Under a concurrent drop the
        // count may be off by a line, only while the queue is full anyway.
        let counter = self.inner.error_counter();
        let before = counter.dropped_lines();
        let written = self.inner.write(line);
        if counter.dropped_lines() != before {
            self.budget.give(line.len());
        }
        written
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<'a> MakeWriter<'a> for Bounded {
    type Writer = Bounded;

    fn make_writer(&'a self) -> Bounded {
        self.clone()
    }
}

/// The writing side: gives the bytes of every line it writes back to the budget.
pub struct Counted<W> {
    inner: W,
    budget: Arc<Budget>,
}

impl<W> Counted<W> {
    /// `inner`, giving back to `budget`.
    pub fn new(inner: W, budget: Arc<Budget>) -> Counted<W> {
        Counted { inner, budget }
    }
}

impl<W: io::Write> io::Write for Counted<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.budget.give(written);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::mpsc;

    use tracing_appender::non_blocking::NonBlockingBuilder;

    use super::*;

    /// A sink that takes nothing until released, then records what it gets.
    struct Stuck {
        release: mpsc::Receiver<()>,
        released: bool,
        got: Arc<std::sync::Mutex<usize>>,
    }

    impl io::Write for Stuck {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if !self.released {
                let _ = self.release.recv();
                self.released = true;
            }
            *self.got.lock().expect("lock") += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Regression: lines behind a stuck sink were bounded only in number; a few thousand long
    /// ones took hundreds of megabytes.
    #[test]
    fn a_stuck_sink_holds_no_more_than_the_budget() {
        let (release, released) = mpsc::channel();
        let got = Arc::new(std::sync::Mutex::new(0));
        let budget = Budget::new(10_000);
        let sink = Counted::new(
            Stuck {
                release: released,
                released: false,
                got: Arc::clone(&got),
            },
            Arc::clone(&budget),
        );
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(1_000)
            .finish(sink);
        let mut bounded = Bounded::new(writer, Arc::clone(&budget));
        let line = vec![b'x'; 1_000];
        for _ in 0..100 {
            bounded.write_all(&line).expect("write");
        }
        // At most the budget is queued (one more line may sit in the stuck write).
        assert!(budget.refused() >= 88, "refused {}", budget.refused());
        let _ = release.send(());
        drop(bounded);
        drop(guard);
        let got = *got.lock().expect("lock");
        assert!(got <= 11_000, "{got} bytes written");
        assert_eq!(got, (100 - budget.refused()) * 1_000);
        // Written lines gave their bytes back.
        assert!(budget.take(10_000));
    }
}
