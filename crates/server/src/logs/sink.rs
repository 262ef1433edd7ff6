//! The queue between the threads that log and the thread that writes: lines are appended to
//! one shared buffer under a lock, and a writer thread takes the whole buffer at a time and
//! writes it with one call.
//!
//! A line costs its copy and an uncontended lock, never a system call on the thread that logs:
//! the writer is woken only when the buffer stops being empty or passes [`FLUSH_AT`], and after
//! waking it waits up to [`GATHER`] for more lines to come before it writes. So a gateway
//! answering thousands of calls a second writes its access lines in a few dozen writes a
//! second, and a quiet one writes each line within [`GATHER`] of its making. (A queue of lines
//! that woke its writer for each one cost a wake-up, a write and the writer's spinning per
//! request: a sixth of the process's CPU at one call in flight.)
//!
//! The buffer is bounded in bytes and in lines: behind a sink that has stopped reading, further
//! lines are dropped and counted rather than stall a request or grow memory.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer waits, once lines are waiting, for more to write with them.
pub const GATHER: Duration = Duration::from_millis(20);

/// Bytes waiting that wake the writer at once.
pub const FLUSH_AT: usize = 256 * 1024;

/// What the threads share.
struct Shared {
    state: Mutex<State>,
    /// The writer waits here for lines, for more lines, or for the end.
    wake: Condvar,
    max_bytes: usize,
    max_lines: usize,
}

#[derive(Default)]
struct State {
    /// Lines waiting, each ending in a newline.
    bytes: Vec<u8>,
    lines: usize,
    /// Lines dropped (queue full, or the sink failed).
    dropped: usize,
    /// The writer was woken for a full buffer and has not taken it yet.
    woken: bool,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked while holding the lock left whole lines behind: go on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The logging side: a [`MakeWriter`] whose every write is one line.
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
}

/// The writer thread, to stop at exit.
pub struct Writer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a writer thread named `name` writing to `sink`, with room for `max_lines` lines and
/// `max_bytes` bytes waiting.
pub fn start<W>(
    name: &str,
    sink: W,
    max_lines: usize,
    max_bytes: usize,
) -> io::Result<(Queue, Writer)>
where
    W: Write + Send + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        max_bytes,
        max_lines,
    });
    let thread = std::thread::Builder::new().name(name.to_owned()).spawn({
        let shared = Arc::clone(&shared);
        move || write_lines(&shared, sink)
    })?;
    Ok((
        Queue {
            shared: Arc::clone(&shared),
        },
        Writer {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The writer thread: waits for lines, gathers for a moment, writes them all, and again, until
/// the end is asked and nothing waits.
fn write_lines<W: Write>(shared: &Shared, mut sink: W) {
    let mut batch = Vec::new();
    loop {
        let lines = {
            let mut state = shared.lock();
            while state.bytes.is_empty() && !state.closing {
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !state.closing && state.bytes.len() < FLUSH_AT {
                state = shared
                    .wake
                    .wait_timeout(state, GATHER)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if state.bytes.is_empty() && state.closing {
                return;
            }
            std::mem::swap(&mut state.bytes, &mut batch);
            state.woken = false;
            std::mem::take(&mut state.lines)
        };
        if sink.write_all(&batch).and_then(|()| sink.flush()).is_err() {
            shared.lock().dropped += lines;
        }
        batch.clear();
        // A burst once should not pin its memory for the process's life.
        if batch.capacity() > 4 * FLUSH_AT {
            batch = Vec::new();
        }
    }
}

impl Queue {
    /// Queues one line, or drops it if the queue is full.
    fn push(&self, line: &[u8]) {
        let shared = &*self.shared;
        let mut state = shared.lock();
        if state.lines >= shared.max_lines || state.bytes.len() + line.len() > shared.max_bytes {
            state.dropped += 1;
            return;
        }
        let was_empty = state.bytes.is_empty();
        state.bytes.extend_from_slice(line);
        state.lines += 1;
        // Wake the writer when it waits for a first line, or when enough wait to write now.
        let full = !state.woken && state.bytes.len() >= FLUSH_AT;
        state.woken |= full;
        drop(state);
        if was_empty || full {
            shared.wake.notify_one();
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> usize {
        self.shared.lock().dropped
    }

    /// Writes what waits to `sink` from this thread, now (for a panic message, which must come
    /// after the lines logged before it).
    pub fn write_now(&self, sink: &mut impl Write) {
        let mut state = self.shared.lock();
        if !state.bytes.is_empty() {
            let _ = sink.write_all(&state.bytes);
            state.bytes.clear();
            state.lines = 0;
        }
    }
}

impl Write for Queue {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Queue {
    type Writer = Queue;

    fn make_writer(&'a self) -> Queue {
        self.clone()
    }
}

impl Writer {
    /// Writes out what waits and stops the thread, waiting at most `limit` for the sink (one
    /// that has stopped reading must not keep the process from exiting).
    pub fn finish(mut self, limit: Duration) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        let Some(thread) = self.thread.take() else {
            return;
        };
        let (done, finished) = std::sync::mpsc::channel();
        let joiner = std::thread::Builder::new()
            .name("switchyard-logs-exit".into())
            .spawn(move || {
                let _ = thread.join();
                let _ = done.send(());
            });
        if joiner.is_ok() {
            let _ = finished.recv_timeout(limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    /// A sink that records each write it gets, after an optional gate opens.
    #[derive(Clone, Default)]
    struct Recorded {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl Write for Recorded {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.writes.lock().expect("lock").push(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A sink that takes nothing until released.
    struct Stuck {
        release: mpsc::Receiver<()>,
        released: bool,
        got: Arc<Mutex<usize>>,
    }

    impl Write for Stuck {
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

    /// A stuck sink, the sender that releases it, and the count of bytes it took.
    fn stuck() -> (Stuck, mpsc::Sender<()>, Arc<Mutex<usize>>) {
        let (release, released) = mpsc::channel();
        let got = Arc::new(Mutex::new(0));
        let sink = Stuck {
            release: released,
            released: false,
            got: Arc::clone(&got),
        };
        (sink, release, got)
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_in_few_writes() {
        let sink = Recorded::default();
        let (queue, writer) = start("test-logs", sink.clone(), 100_000, 1 << 24).expect("start");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut queue = queue.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        queue
                            .write_all(format!("thread {t} line {i}\n").as_bytes())
                            .expect("write");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("join");
        }
        writer.finish(Duration::from_secs(5));
        let writes = sink.writes.lock().expect("lock");
        let text = String::from_utf8(writes.concat()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8_000);
        // Each thread's lines come in the order it logged them.
        for t in 0..4 {
            let own: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<String> =
                (0..2_000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(own, expected);
        }
        assert!(
            writes.len() < 200,
            "{} writes for 8,000 lines",
            writes.len()
        );
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn a_lone_line_is_written_soon() {
        let sink = Recorded::default();
        let (mut queue, writer) = start("test-logs", sink.clone(), 100, 10_000).expect("start");
        queue.write_all(b"one\n").expect("write");
        let started = Instant::now();
        while sink.writes.lock().expect("lock").is_empty() {
            assert!(started.elapsed() < Duration::from_secs(5), "never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sink.writes.lock().expect("lock").concat(), b"one\n");
        writer.finish(Duration::from_secs(5));
    }

    /// Regression: lines behind a stuck sink were bounded only in number; a few thousand long
    /// ones took hundreds of megabytes.
    #[test]
    fn a_stuck_sink_holds_no_more_than_the_bounds() {
        let (sink, release, got) = stuck();
        let (mut queue, writer) = start("test-logs", sink, 1_000, 10_000).expect("start");
        let line = [b'x'; 1_000];
        queue.write_all(&line).expect("write");
        // The first line reaches the stuck write; the rest wait behind it.
        std::thread::sleep(GATHER * 5);
        for _ in 0..99 {
            queue.write_all(&line).expect("write");
        }
        assert_eq!(
            queue.dropped(),
            89,
            "ten lines of 1,000 bytes fit in 10,000"
        );
        let _ = release.send(());
        writer.finish(Duration::from_secs(5));
        assert_eq!(*got.lock().expect("lock"), 11 * 1_000);
    }

    #[test]
    fn a_stuck_sink_holds_no_more_than_the_bound_in_lines() {
        let (sink, release, got) = stuck();
        let (mut queue, writer) = start("test-logs", sink, 3, 1 << 20).expect("start");
        queue.write_all(b"first\n").expect("write");
        std::thread::sleep(GATHER * 5);
        for _ in 0..5 {
            queue.write_all(b"x\n").expect("write");
        }
        assert_eq!(queue.dropped(), 2);
        let _ = release.send(());
        writer.finish(Duration::from_secs(5));
        assert_eq!(*got.lock().expect("lock"), 6 + 3 * 2);
    }

    #[test]
    fn finish_gives_up_on_a_sink_that_never_reads() {
        let (sink, _release, _got) = stuck();
        let (mut queue, writer) = start("test-logs", sink, 100, 10_000).expect("start");
        queue.write_all(b"never written\n").expect("write");
        let started = Instant::now();
        writer.finish(Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn write_now_writes_the_lines_still_waiting() {
        let (sink, release, got) = stuck();
        let (mut queue, writer) = start("test-logs", sink, 100, 10_000).expect("start");
        queue.write_all(b"taken\n").expect("write");
        std::thread::sleep(GATHER * 5);
        queue.write_all(b"waiting\n").expect("write");
        let mut direct = Vec::new();
        queue.write_now(&mut direct);
        assert_eq!(direct, b"waiting\n");
        let _ = release.send(());
        writer.finish(Duration::from_secs(5));
        // The writer wrote only what it had taken: nothing twice.
        assert_eq!(*got.lock().expect("lock"), 6);
    }
}
