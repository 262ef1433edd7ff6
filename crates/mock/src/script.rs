//! A response body written ahead of time as a script of byte runs, pauses and an optional
//! abort, then played out with its timing: streams with `ttft_ms` / `chunk_delay_ms`, and the
//! `cut`, `malformed` and `reset` faults.
//!
//! The wire formats write their events into a [`Script`], marking each as structural, content
//! or terminal; the script places the delays before content events and applies the fault.
//! Consecutive events without a pause between them are coalesced into one body frame, so an
//! unpaced stream costs one write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Sleep;

use crate::options::{Fault, Options};
use crate::stats::StreamGuard;

/// One step of a played body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Bytes to send.
    Data(Bytes),
    /// A pause.
    Pause(Duration),
    /// Return `Pending` once, so hyper writes out what it has buffered: without it the bytes
    /// before an [`Frame::Abort`] would be discarded with the connection.
    Flush,
    /// End the body with an error, which aborts the connection.
    Abort,
}

/// The fault a stream script applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamFault {
    None,
    /// Abort after this many content events.
    Cut(usize),
    /// Insert the malformed event after this many content events.
    Malformed(usize),
}

/// A stream body being written.
#[derive(Debug)]
pub(crate) struct Script {
    frames: Vec<Frame>,
    buffer: Vec<u8>,
    ttft: Duration,
    chunk_delay: Duration,
    fault: StreamFault,
    /// The event a `malformed` fault inserts.
    malformed: &'static [u8],
    content_events: usize,
    closed: bool,
}

impl Script {
    /// A script paced and faulted by `options`; `malformed` is the format's broken event.
    pub(crate) fn new(options: &Options, malformed: &'static [u8]) -> Self {
        let fault = match options.fail {
            Some(Fault::Cut) => StreamFault::Cut(options.cut_after),
            Some(Fault::Malformed) => StreamFault::Malformed(options.cut_after),
            Some(
                Fault::Status(_) | Fault::Hang | Fault::Reset | Fault::Safety | Fault::Blocked,
            )
            | None => StreamFault::None,
        };
        Self {
            frames: Vec::new(),
            buffer: Vec::with_capacity(1024),
            ttft: options.ttft,
            chunk_delay: options.chunk_delay,
            fault,
            malformed,
            content_events: 0,
            closed: false,
        }
    }

    /// Writes an event that frames the content (a role chunk, a block start or stop).
    pub(crate) fn structural(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if !self.closed {
            write(&mut self.buffer);
        }
    }

    /// Writes a content event: paced by `ttft` / `chunk_delay`, counted for the faults.
    pub(crate) fn content(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if self.closed {
            return;
        }
        match self.fault {
            StreamFault::Cut(after) if self.content_events >= after => return self.abort(),
            StreamFault::Malformed(after) if self.content_events == after => self.inject(),
            StreamFault::Cut(_) | StreamFault::Malformed(_) | StreamFault::None => {}
        }
        let delay = if self.content_events == 0 {
            self.ttft
        } else {
            self.chunk_delay
        };
        self.pause(delay);
        write(&mut self.buffer);
        self.content_events += 1;
        if self.fault == StreamFault::Cut(self.content_events) {
            self.abort();
        }
    }

    /// Writes an event that ends the stream (finish chunk, usage, `[DONE]`, `message_stop`); a
    /// fault that has not struck yet strikes first.
    pub(crate) fn terminal(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if self.closed {
            return;
        }
        match self.fault {
            StreamFault::Cut(_) => return self.abort(),
            StreamFault::Malformed(after) if self.content_events <= after => self.inject(),
            StreamFault::Malformed(_) | StreamFault::None => {}
        }
        write(&mut self.buffer);
    }

    /// The frames written so far.
    pub(crate) fn into_frames(mut self) -> Vec<Frame> {
        self.flush();
        self.frames
    }

    fn inject(&mut self) {
        self.buffer.extend_from_slice(self.malformed);
        // Inject once: a later content or terminal event must not repeat it.
        self.fault = StreamFault::None;
    }

    fn abort(&mut self) {
        self.flush();
        self.frames.push(Frame::Flush);
        self.frames.push(Frame::Abort);
        self.closed = true;
    }

    fn pause(&mut self, delay: Duration) {
        if !delay.is_zero() {
            self.flush();
            self.frames.push(Frame::Pause(delay));
        }
    }

    fn flush(&mut self) {
        if !self.buffer.is_empty() {
            let bytes = Bytes::from(std::mem::take(&mut self.buffer));
            self.frames.push(Frame::Data(bytes));
        }
    }
}

/// Plays frames as a response body, counting it as a stream when it has a guard.
#[derive(Debug)]
pub(crate) struct Played {
    frames: std::vec::IntoIter<Frame>,
    pause: Option<Pin<Box<Sleep>>>,
    guard: Option<StreamGuard>,
}

impl Played {
    /// A body playing `frames`; `guard` counts it in the stream stats.
    pub(crate) fn new(frames: Vec<Frame>, guard: Option<StreamGuard>) -> Self {
        Self {
            frames: frames.into_iter(),
            pause: None,
            guard,
        }
    }

    /// The playing body.
    pub(crate) fn into_body(self) -> Body {
        Body::from_stream(self)
    }

    fn complete(&mut self) {
        if let Some(guard) = &mut self.guard {
            guard.complete();
        }
    }
}

impl Stream for Played {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(pause) = &mut self.pause {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            match self.frames.next() {
                None => {
                    self.complete();
                    return Poll::Ready(None);
                }
                Some(Frame::Data(bytes)) => {
                    if self.frames.as_slice().is_empty() {
                        self.complete();
                    }
                    return Poll::Ready(Some(Ok(bytes)));
                }
                Some(Frame::Pause(delay)) => self.pause = Some(Box::pin(tokio::time::sleep(delay))),
                Some(Frame::Flush) => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Some(Frame::Abort) => {
                    self.complete();
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "switchyard-mock: injected fault aborts the body",
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(fail: Option<Fault>, cut_after: usize, delay_ms: u64) -> Options {
        Options {
            fail,
            cut_after,
            ttft: Duration::from_millis(delay_ms * 2),
            chunk_delay: Duration::from_millis(delay_ms),
            ..Options::default()
        }
    }

    fn run(options: &Options, contents: usize) -> Vec<Frame> {
        let mut script = Script::new(options, b"X");
        script.structural(|b| b.extend_from_slice(b"<"));
        for n in 0..contents {
            script.content(|b| b.extend_from_slice(n.to_string().as_bytes()));
        }
        script.terminal(|b| b.extend_from_slice(b">"));
        script.into_frames()
    }

    fn data(text: &str) -> Frame {
        Frame::Data(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn unpaced_script_is_one_frame() {
        assert_eq!(run(&options(None, 2, 0), 3), [data("<012>")]);
    }

    #[test]
    fn pauses_before_content() {
        let ms = Duration::from_millis;
        assert_eq!(
            run(&options(None, 2, 5), 2),
            [
                data("<"),
                Frame::Pause(ms(10)),
                data("0"),
                Frame::Pause(ms(5)),
                data("1>")
            ]
        );
    }

    #[test]
    fn cut_aborts_after_content_events() {
        assert_eq!(
            run(&options(Some(Fault::Cut), 2, 0), 5),
            [data("<01"), Frame::Flush, Frame::Abort]
        );
        assert_eq!(
            run(&options(Some(Fault::Cut), 0, 0), 5),
            [data("<"), Frame::Flush, Frame::Abort]
        );
        // Fewer content events than `cut_after`: the terminal events are never sent.
        assert_eq!(
            run(&options(Some(Fault::Cut), 9, 0), 2),
            [data("<01"), Frame::Flush, Frame::Abort]
        );
    }

    #[test]
    fn malformed_is_inserted_once() {
        assert_eq!(
            run(&options(Some(Fault::Malformed), 2, 0), 4),
            [data("<01X23>")]
        );
        assert_eq!(
            run(&options(Some(Fault::Malformed), 9, 0), 2),
            [data("<01X>")]
        );
    }
}
