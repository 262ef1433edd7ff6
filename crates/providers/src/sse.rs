//! An incremental Server-Sent Events parser.
//!
//! Bytes arrive in chunks cut anywhere (inside a line, inside a UTF-8 sequence, between `\r`
//! and `\n`); [`SseParser::push`] keeps the unfinished tail and returns each complete event
//! once ([`SseParser::push_each`] lends each one instead, with no allocation per event).
//! Follows the WHATWG event-stream rules for `event:`, `data:` (joined by `\n`), comment lines
//! and the three line endings.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, when present.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// One dispatched event, borrowed from the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEventRef<'a> {
    /// The `event:` field, when present.
    pub event: Option<&'a str>,
    /// The `data:` lines joined by `\n`.
    pub data: &'a str,
    /// `data` came in more than one `data:` line (so holds a `\n`).
    pub multiline: bool,
}

impl SseEventRef<'_> {
    /// An owned copy.
    pub fn to_owned(self) -> SseEvent {
        SseEvent {
            event: self.event.map(str::to_owned),
            data: self.data.to_owned(),
        }
    }
}

/// Parser state between chunks. Its buffers are kept from event to event.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet terminated.
    line: Vec<u8>,
    /// The last byte seen was `\r`; a following `\n` belongs to the same line ending.
    after_cr: bool,
    /// The event being assembled: its `event:` field (if `has_event`) and data.
    event: String,
    has_event: bool,
    data: String,
    has_data: bool,
    /// A comment line (a keep-alive) arrived since [`SseParser::take_comment`] last asked.
    comment: bool,
    /// The event being assembled has more than one data line.
    multiline: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds a chunk and appends every event it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let Ok(()) = self.push_each(chunk, |event| {
            out.push(event.to_owned());
            Ok::<(), std::convert::Infallible>(())
        });
    }

    /// Feeds a chunk and hands every event it completes to `each`, in order, stopping at the
    /// first error `each` returns (the stream is then over: feed the parser no more).
    pub fn push_each<E>(
        &mut self,
        chunk: &[u8],
        mut each: impl FnMut(SseEventRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(b'\n') = rest.first() {
                rest = &rest[1..];
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
            if self.line.is_empty() {
                // The whole line is in this chunk: no copy.
                self.process_line(&rest[..end], &mut each)?;
            } else {
                self.line.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut self.line);
                let result = self.process_line(&line, &mut each);
                self.line = line;
                self.line.clear();
                result?;
            }
            let was_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if was_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// Whether a comment line (an upstream's keep-alive) arrived since the last call.
    pub fn take_comment(&mut self) -> bool {
        std::mem::take(&mut self.comment)
    }

    /// Bytes held for the event not yet complete (its unfinished line and its data so far).
    pub fn pending(&self) -> usize {
        self.line.len() + self.data.len()
    }

    /// Whether bytes of an unfinished event are pending (the stream was cut mid-event).
    pub fn has_pending(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    fn process_line<E>(
        &mut self,
        line: &[u8],
        each: &mut impl FnMut(SseEventRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if line.is_empty() {
            let result = if self.has_data {
                each(SseEventRef {
                    event: self.has_event.then_some(self.event.as_str()),
                    data: &self.data,
                    multiline: self.multiline,
                })
            } else {
                Ok(())
            };
            self.event.clear();
            self.has_event = false;
            self.data.clear();
            self.has_data = false;
            self.multiline = false;
            return result;
        }
        if line[0] == b':' {
            self.comment = true;
            return Ok(());
        }
        // A line is complete here, so a multi-byte character is never split. Valid UTF-8 (the
        // norm) is borrowed; anything else is repaired rather than refused.
        // Field names are ASCII: split the bytes, and check only the value for UTF-8.
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                self.event.clear();
                self.event.push_str(&text(value));
                self.has_event = true;
            }
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                    self.multiline = true;
                }
                self.data.push_str(&text(value));
                self.has_data = true;
            }
            _ => {}
        }
        Ok(())
    }
}

/// `bytes` as text: borrowed when it is UTF-8 (checked the fast way), repaired otherwise.
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Writes one event in SSE framing: an optional `event:` line and one `data:` line per line of
/// `data` (a parsed event's lines are joined by `\n`; written back as one line, the second
/// would reach the client as a line of no field at all).
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &[u8]) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    let mut rest = data;
    while let Some(end) = memchr::memchr(b'\n', rest) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&rest[..end]);
        out.push(b'\n');
        rest = &rest[end + 1..];
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(rest);
    out.extend_from_slice(b"\n\n");
}

/// [`write_event`] for data known to be one line (`multiline` false), which then needs no
/// search for line breaks: the relay's per-event path.
pub fn write_event_lines(out: &mut Vec<u8>, event: Option<&str>, data: &[u8], multiline: bool) {
    if multiline {
        return write_event(out, event, data);
    }
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

/// A comment line (a keep-alive) to pass on to a client.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Regression: multi-line data was written back as one `data:` line with a raw newline
    /// inside, which a client reads as a line of no field.
    #[test]
    fn written_events_parse_back_the_same() {
        for data in [
            "one line",
            "two\nlines",
            "\nstarts and ends\n",
            "",
            "a\n\nb",
        ] {
            let mut out = Vec::new();
            write_event(&mut out, Some("e"), data.as_bytes());
            let parsed = parse_all(&[&out]);
            assert_eq!(parsed.len(), 1, "{data:?}");
            assert_eq!(parsed[0].data, data);
            assert_eq!(parsed[0].event.as_deref(), Some("e"));
        }
        let mut parser = SseParser::new();
        parser.push(b": keep-alive\n\n", &mut Vec::new());
        assert!(parser.take_comment());
        assert!(!parser.take_comment());
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk, &mut out);
        }
        out
    }

    #[test]
    fn parses_events_data_and_comments() {
        let events = parse_all(&[
            b": ping\n\nevent: message_start\ndata: {\"a\":1}\n\ndata: one\ndata: two\n\n",
        ]);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "one\ntwo".into()
                },
            ]
        );
    }

    #[test]
    fn accepts_crlf_and_cr_split_across_chunks() {
        let events = parse_all(&[b"data: x\r", b"\n\r", b"\ndata: y\r\r"]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data, "x");
        assert_eq!(events[1].data, "y");
    }

    #[test]
    fn lends_the_same_events_and_stops_at_the_first_error() {
        let stream = b"event: a\ndata: 1\n\ndata: 2\ndata: 3\n\nevent: c\ndata: 4\n\n";
        let mut lent = Vec::new();
        let mut parser = SseParser::new();
        let result = parser.push_each(stream, |event| {
            lent.push(event.to_owned());
            Ok::<(), ()>(())
        });
        assert_eq!(result, Ok(()));
        assert_eq!(lent, parse_all(&[stream]));
        assert_eq!(
            lent[1].event, None,
            "an event name does not outlive its event"
        );

        let mut seen = Vec::new();
        let result = SseParser::new().push_each(stream, |event| {
            seen.push(event.data.to_owned());
            if event.data.contains('2') {
                Err("stop")
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err("stop"));
        assert_eq!(seen, ["1", "2\n3"]);
    }

    #[test]
    fn keeps_an_unfinished_event_pending() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.push(b"data: {\"partial\"", &mut out);
        assert!(out.is_empty());
        assert!(parser.has_pending());
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_events(cuts in proptest::collection::vec(0usize..200, 0..12)) {
            let stream = "event: a\ndata: héllo wörld\n\n: comment\r\ndata: {\"k\":\"v\"}\r\n\r\nevent: b\rdata: 1\rdata: 2\r\r".as_bytes();
            let whole = parse_all(&[stream]);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for point in points {
                chunks.push(&stream[last..point]);
                last = point;
            }
            chunks.push(&stream[last..]);
            prop_assert_eq!(parse_all(&chunks), whole);
        }
    }
}
