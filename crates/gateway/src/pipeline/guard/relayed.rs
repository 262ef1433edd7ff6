//! The output guards on a relayed stream: the upstream's events go to the client as it wrote
//! them, each held back until the text it carries is scanned, and let out whole; an event
//! whose text a redaction changes is written again with only that text replaced. A finding to
//! block ends the stream in the client's dialect (the pump writes the `content_filter` end).
//!
//! The same rules as the decoded path's tap (`OutputTap`): each part of each choice is held by
//! a short tail; anything else of a choice (a finish, a tool call or block starting) lets out
//! what is held of it first. Events leave in the order they came.

use std::collections::VecDeque;
use std::sync::Arc;

use switchyard_guard::leak::Leaks;
use switchyard_providers::relay::{Mark, Sent, TextPart, rewrite};
use switchyard_types::{ResponseFormat, WireFormat};

use super::{find, held_json, note_output};
use crate::guards::Guards;
use crate::pipeline::Ctx;
use crate::pipeline::hooks::{RelayTap, Step};

/// A choice's part: its text, refusal, or one tool call's arguments.
type Key = (u32, TextPart);

/// The output guards' tap on a relayed stream.
pub(super) struct RelayedOutput {
    guards: Arc<Guards>,
    leaks: Option<Arc<Leaks>>,
    json: Option<(ResponseFormat, bool)>,
    format: WireFormat,
    /// Events held back, in order.
    queue: VecDeque<Held>,
    /// The held events' bytes, one after another from `front`.
    buffer: Vec<u8>,
    front: usize,
    /// The number of the queue's first event (events are numbered as they come).
    first: u64,
    /// What is held of each part: its text not yet let out, and the events it came in (a
    /// few parts at most: a list).
    parts: Vec<(Key, HeldPart)>,
    sent: Sent,
}

/// One event held back.
struct Held {
    /// Its bytes' length in the buffer.
    len: usize,
    /// Its mark, without its texts (they are in `parts`).
    mark: Mark,
    /// Its pieces of text not yet let out.
    waiting: usize,
    /// Texts a redaction replaced.
    changes: Vec<(u32, TextPart, String)>,
}

#[derive(Default)]
struct HeldPart {
    text: String,
    /// The events (by number) the text came in, and how much of it each carried.
    pieces: VecDeque<(u64, usize)>,
}

impl RelayedOutput {
    pub(super) fn new(
        guards: Arc<Guards>,
        leaks: Option<Arc<Leaks>>,
        json: Option<(ResponseFormat, bool)>,
        format: WireFormat,
    ) -> RelayedOutput {
        RelayedOutput {
            guards,
            leaks,
            json,
            format,
            queue: VecDeque::new(),
            buffer: Vec::new(),
            front: 0,
            first: 0,
            parts: Vec::new(),
            sent: Sent::default(),
        }
    }

    /// One event in: held, its text added to its parts, and what may go out let out.
    fn event(&mut self, ctx: &mut Ctx, bytes: &[u8], mut mark: Mark, out: &mut Vec<u8>) -> Step {
        if self.queue.is_empty() && mark.pieces.is_empty() && mark.touches.is_empty() {
            // Nothing held and nothing to read: out as it came.
            self.sent.note(&mark);
            out.extend_from_slice(bytes);
            return Step::Continue;
        }
        let number = self.first + self.queue.len() as u64;
        let pieces = std::mem::take(&mut mark.pieces);
        let touches = std::mem::take(&mut mark.touches);
        if self.buffer.capacity() == 0 {
            // A short answer's events all fit without growing.
            self.buffer.reserve(8 * 1024);
            self.queue.reserve(32);
        }
        self.buffer.extend_from_slice(bytes);
        self.queue.push_back(Held {
            len: bytes.len(),
            mark,
            waiting: pieces.len(),
            changes: Vec::new(),
        });
        for piece in &pieces {
            let key = (piece.choice, piece.part);
            // Another part of the same choice starting lets the held ones out first.
            if self.finish(ctx, |held| held.0 == key.0 && held.1 != key.1) == Step::Stop {
                return Step::Stop;
            }
            let at = match self.parts.iter().position(|(held, _)| *held == key) {
                Some(at) => at,
                None => {
                    self.parts.push((
                        key,
                        HeldPart {
                            text: String::with_capacity(512),
                            pieces: VecDeque::with_capacity(32),
                        },
                    ));
                    self.parts.len() - 1
                }
            };
            let part = &mut self.parts[at].1;
            part.pieces.push_back((number, piece.text.len()));
            part.text.push_str(&piece.text);
        }
        for choice in touches {
            if self.finish(ctx, |held| held.0 == choice) == Step::Stop {
                return Step::Stop;
            }
        }
        for piece in &pieces {
            let key = (piece.choice, piece.part);
            if self.release(ctx, key, false) == Step::Stop {
                return Step::Stop;
            }
        }
        self.drain(out);
        Step::Continue
    }

    /// Lets out what may go of one part (all of it when `last`); `Stop` to end the stream.
    fn release(&mut self, ctx: &mut Ctx, key: Key, last: bool) -> Step {
        let Some((scanner, actions)) = &self.guards.output else {
            return Step::Continue;
        };
        let Some(at) = self.parts.iter().position(|(held, _)| *held == key) else {
            return Step::Continue;
        };
        let part = &mut self.parts[at].1;
        if key.1 == TextPart::Text
            && let Some(step) = held_json(self.json.as_ref(), &mut ctx.verdicts, &part.text, last)
        {
            return step;
        }
        if !last && part.text.len() <= switchyard_guard::stream::HOLD {
            // Nothing of a part shorter than the hold can go out yet.
            return Step::Continue;
        }
        let lengths: Vec<usize> = part.pieces.iter().map(|(_, length)| *length).collect();
        let leaks = self.leaks.as_deref();
        let released = switchyard_guard::stream::release_pieces(
            &part.text,
            &lengths,
            |text| find(scanner, leaks, text),
            |category| actions.get(&category).copied(),
            last,
        );
        for (finding, action) in &released.findings {
            note_output(&mut ctx.verdicts, finding, *action);
        }
        if released.blocked {
            return Step::Stop;
        }
        for (index, (number, _)) in part.pieces.drain(..released.count).enumerate() {
            let held = &mut self.queue[(number - self.first) as usize];
            held.waiting -= 1;
            if let Some((_, text)) = released.rewritten.iter().find(|(at, _)| *at == index) {
                held.changes.push((key.0, key.1, text.clone()));
            }
        }
        part.text.drain(..released.len);
        if last {
            self.parts.remove(at);
        }
        Step::Continue
    }

    /// Lets out all of each held part `which` picks.
    fn finish(&mut self, ctx: &mut Ctx, which: impl Fn(&Key) -> bool) -> Step {
        let keys: Vec<Key> = self
            .parts
            .iter()
            .map(|(key, _)| *key)
            .filter(|key| which(key))
            .collect();
        for key in keys {
            if self.release(ctx, key, true) == Step::Stop {
                return Step::Stop;
            }
        }
        Step::Continue
    }

    /// Forgets everything held (the stream ends here).
    fn clear(&mut self) {
        self.queue.clear();
        self.parts.clear();
        self.buffer.clear();
        self.front = 0;
    }

    /// Writes out the events at the front whose text has all been let out.
    fn drain(&mut self, out: &mut Vec<u8>) {
        while self.queue.front().is_some_and(|held| held.waiting == 0) {
            let Some(held) = self.queue.pop_front() else {
                break;
            };
            self.first += 1;
            self.sent.note(&held.mark);
            let bytes = &self.buffer[self.front..self.front + held.len];
            self.front += held.len;
            if held.changes.is_empty() {
                out.extend_from_slice(bytes);
                continue;
            }
            let changes: Vec<(u32, TextPart, &str)> = held
                .changes
                .iter()
                .map(|(choice, part, text)| (*choice, *part, text.as_str()))
                .collect();
            match rewrite(self.format, bytes, &changes) {
                Some(bytes) => out.extend_from_slice(&bytes),
                // Read once already, so it reads again; if not, it does not go out as it was.
                None => tracing::warn!(
                    "A relayed event a guard redacted could not be rewritten; left out"
                ),
            }
        }
        if self.queue.is_empty() {
            self.buffer.clear();
            self.front = 0;
        }
    }
}

impl RelayTap for RelayedOutput {
    fn events(&mut self, ctx: &mut Ctx, bytes: &[u8], marks: Vec<Mark>, out: &mut Vec<u8>) -> Step {
        let mut start = 0;
        for mark in marks {
            let end = mark.end.clamp(start, bytes.len());
            if self.event(ctx, &bytes[start..end], mark, out) == Step::Stop {
                self.clear();
                return Step::Stop;
            }
            start = end;
        }
        if start < bytes.len() {
            // Bytes no mark covers (none are written so): kept in order all the same.
            return self.event(ctx, &bytes[start..], Mark::default(), out);
        }
        Step::Continue
    }

    fn end(&mut self, ctx: &mut Ctx, out: &mut Vec<u8>) -> Step {
        if self.finish(ctx, |_| true) == Step::Stop {
            self.clear();
            return Step::Stop;
        }
        self.drain(out);
        Step::Continue
    }

    fn sent(&self) -> &Sent {
        &self.sent
    }
}
