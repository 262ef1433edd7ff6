//! Logs: one line per event on stderr, as text or JSON, written by a thread of their own.
//!
//! Text lines read `2026-11-27T21:12:59.637342Z  INFO span{k=v}: target: message key=value`;
//! JSON lines `{"timestamp":…,"level":…,"fields":{"message":…,…},"target":…,"spans":[…]}`.
//! Whatever a client sent can reach a line (a model name, an error echoing it), so every value
//! is escaped: no value can break a line in two or carry terminal control codes. Text quotes a
//! value holding spaces, quotes, `=`, braces or control characters, and writes control
//! characters and backslashes as escapes; JSON escapes as JSON (and C1 controls too).
//!
//! Lines are built in a reused per-thread buffer with no `fmt` machinery on the common paths
//! (strings, integers), then queued for the writer thread ([`sink`]), which writes whatever has
//! queued up in one go, a few dozen times a second at most. A worker never waits on the
//! terminal, file or pipe behind stderr; should 32k lines or 16 MiB queue up unwritten (the
//! sink has stopped reading), further lines are dropped rather than stall requests or grow
//! memory.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, warn};
use tracing_log::NormalizeEvent;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

mod sink;
#[cfg(test)]
mod tests;

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `time LEVEL spans: target: message key=value …`
    Text,
    /// One JSON object per line.
    Json,
}

/// Lines queued for the writer thread before new ones are dropped.
const QUEUE_LINES: usize = 32 * 1024;

/// Bytes of lines queued for the writer thread before new ones are dropped.
const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// How long the exit waits for queued lines to be written (a sink that has stopped reading
/// must not keep the process from exiting).
const FINISH: Duration = Duration::from_secs(2);

/// The installed logs: the writer thread, and the queue that counts dropped lines.
pub struct Logs {
    writer: Option<sink::Writer>,
    queue: Option<sink::Queue>,
    reported: usize,
}

impl Logs {
    /// Logs a warning with the number of lines dropped since the last report, if any were.
    pub fn report_dropped(&mut self) {
        let Some(queue) = &self.queue else { return };
        let dropped = queue.dropped();
        if dropped > self.reported {
            warn!(
                dropped = dropped - self.reported,
                "Log lines dropped: the log sink is not keeping up"
            );
            self.reported = dropped;
        }
    }

    /// Writes out what is queued, waiting at most two seconds for the sink.
    pub fn finish(mut self) {
        self.report_dropped();
        if let Some(writer) = self.writer.take() {
            writer.finish(FINISH);
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` (default `info`) filters, lines go to stderr
/// through the writer thread. Should that thread not start, lines are written to stderr by the
/// thread that logs them.
pub fn init(style: Style) -> Logs {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(Lines(style))
        .fmt_fields(Lines(style));
    match sink::start(
        "switchyard-logs",
        std::io::stderr(),
        QUEUE_LINES,
        QUEUE_BYTES,
    ) {
        Ok((queue, writer)) => {
            subscriber.with_writer(queue.clone()).init();
            // A panic's message goes straight to stderr: the lines logged before it first.
            let previous = std::panic::take_hook();
            let waiting = queue.clone();
            std::panic::set_hook(Box::new(move |info| {
                waiting.write_now(&mut std::io::stderr());
                previous(info);
            }));
            Logs {
                writer: Some(writer),
                queue: Some(queue),
                reported: 0,
            }
        }
        Err(error) => {
            subscriber.with_writer(std::io::stderr).init();
            warn!(%error, "The log writer thread did not start: lines are written as they come");
            Logs {
                writer: None,
                queue: None,
                reported: 0,
            }
        }
    }
}

/// The line format, for events (`FormatEvent`) and for span fields (`FormatFields`).
#[derive(Debug, Clone, Copy)]
pub struct Lines(pub Style);

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        with_buffers(|line, scratch| {
            match self.0 {
                Style::Text => {
                    timestamp(line, SystemTime::now());
                    line.push(' ');
                    line.push_str(padded_level(meta.level()));
                    line.push(' ');
                    let mut in_span = false;
                    spans(ctx, |name, fields| {
                        line.push_str(name);
                        if !fields.is_empty() {
                            line.push('{');
                            line.push_str(fields);
                            line.push('}');
                        }
                        line.push(':');
                        in_span = true;
                    });
                    if in_span {
                        line.push(' ');
                    }
                    line.push_str(meta.target());
                    line.push_str(": ");
                    event.record(&mut Fields::new(Style::Text, line, scratch));
                }
                Style::Json => {
                    line.push_str("{\"timestamp\":\"");
                    timestamp(line, SystemTime::now());
                    line.push_str("\",\"level\":\"");
                    line.push_str(meta.level().as_str());
                    line.push_str("\",\"fields\":{");
                    event.record(&mut Fields::new(Style::Json, line, scratch));
                    line.push_str("},\"target\":");
                    json_string(line, meta.target());
                    let mut first = true;
                    spans(ctx, |name, fields| {
                        line.push_str(if first { ",\"spans\":[" } else { "," });
                        first = false;
                        line.push_str("{\"name\":");
                        json_string(line, name);
                        if !fields.is_empty() {
                            line.push(',');
                            line.push_str(fields);
                        }
                        line.push('}');
                    });
                    if !first {
                        line.push(']');
                    }
                    line.push('}');
                }
            }
            line.push('\n');
            writer.write_str(line)
        })
    }
}

/// Calls `each` with the name and the formatted fields (maybe empty) of every span the event
/// is in, outermost first.
fn spans<S, N>(ctx: &FmtContext<'_, S, N>, mut each: impl FnMut(&str, &str))
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let Some(scope) = ctx.event_scope() else {
        return;
    };
    for span in scope.from_root() {
        let extensions = span.extensions();
        let fields = extensions
            .get::<FormattedFields<N>>()
            .map_or("", |fields| fields.as_str());
        each(span.name(), fields);
    }
}

impl<'writer> FormatFields<'writer> for Lines {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        with_buffers(|line, scratch| {
            fields.record(&mut Fields::new(self.0, line, scratch));
            writer.write_str(line)
        })
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        with_buffers(|line, scratch| {
            fields.record(&mut Fields::new(self.0, line, scratch));
            if !current.fields.is_empty() && !line.is_empty() {
                current.fields.push(match self.0 {
                    Style::Text => ' ',
                    Style::Json => ',',
                });
            }
            current.fields.push_str(line);
            Ok(())
        })
    }
}

thread_local! {
    /// The line being built and a scratch buffer for values formatted with `Debug`.
    static BUFFERS: RefCell<(String, String)> = const { RefCell::new((String::new(), String::new())) };
}

/// Runs `f` with two empty buffers: this thread's own, or fresh ones should formatting a value
/// log something itself (re-entry).
fn with_buffers<T>(f: impl FnOnce(&mut String, &mut String) -> T) -> T {
    BUFFERS.with(|buffers| match buffers.try_borrow_mut() {
        Ok(mut buffers) => {
            let (line, scratch) = &mut *buffers;
            line.clear();
            scratch.clear();
            let result = f(line, scratch);
            // A huge line once should not pin its memory for the thread's life.
            if line.capacity() > 64 * 1024 {
                *line = String::new();
            }
            if scratch.capacity() > 64 * 1024 {
                *scratch = String::new();
            }
            result
        }
        Err(_) => f(&mut String::new(), &mut String::new()),
    })
}

/// Writes an event's or a span's fields, in the order they were recorded.
struct Fields<'a> {
    style: Style,
    line: &'a mut String,
    scratch: &'a mut String,
    first: bool,
}

impl<'a> Fields<'a> {
    fn new(style: Style, line: &'a mut String, scratch: &'a mut String) -> Self {
        Self {
            style,
            line,
            scratch,
            first: true,
        }
    }

    /// The separator and key; false for fields that are not written (the log bridge's own).
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        if name.starts_with("log.") {
            return false;
        }
        let first = std::mem::replace(&mut self.first, false);
        match self.style {
            Style::Text => {
                if !first {
                    self.line.push(' ');
                }
                if name != "message" {
                    self.line.push_str(name);
                    self.line.push('=');
                }
            }
            Style::Json => {
                if !first {
                    self.line.push(',');
                }
                json_string(self.line, name);
                self.line.push(':');
            }
        }
        true
    }

    fn string(&mut self, field: &Field, value: &str) {
        if !self.key(field) {
            return;
        }
        match self.style {
            Style::Text if field.name() == "message" => text_escaped(self.line, value, false),
            Style::Text => text_value(self.line, value),
            Style::Json => json_string(self.line, value),
        }
    }

    /// A number or boolean: the same text in both styles.
    fn bare(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            self.line.push_str(value);
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.bare(field, itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.bare(field, itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.bare(field, if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            let mut text = std::mem::take(self.scratch);
            text.clear();
            let _ = write!(text, "{value}");
            self.bare(field, &text);
            *self.scratch = text;
        } else {
            // JSON has no NaN or infinity: those go as strings.
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = std::mem::take(self.scratch);
        text.clear();
        let _ = write!(text, "{value:?}");
        self.string(field, &text);
        *self.scratch = text;
    }
}

/// `INFO` and `WARN` padded to the width of `ERROR`, as columns.
fn padded_level(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => " WARN",
        Level::INFO => " INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// Characters no line may carry as they are: control characters (C0, DEL, C1) and the Unicode
/// line and paragraph separators.
fn is_unsafe(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// What an ASCII byte needs in a text value: 0 nothing, 1 quotes around the value (space, `=`,
/// braces, which delimit span fields), 2 an escape (and quotes). Non-ASCII bytes are 3: their
/// character decides.
const TEXT: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = match byte as u8 {
            b' ' | b'=' | b'{' | b'}' => 1,
            b'"' | b'\\' | 0..0x20 | 0x7f => 2,
            0x80.. => 3,
            _ => 0,
        };
        byte += 1;
    }
    table
};

/// A text value: as it is when it is one plain word, else quoted and escaped.
fn text_value(line: &mut String, value: &str) {
    let plain = match value.bytes().map(|byte| TEXT[usize::from(byte)]).max() {
        None => false,
        Some(0) => true,
        Some(3) => value.chars().all(|c| {
            !(c.is_whitespace() || is_unsafe(c) || matches!(c, '"' | '\\' | '=' | '{' | '}'))
        }),
        Some(_) => false,
    };
    if plain {
        line.push_str(value);
    } else {
        line.push('"');
        text_escaped(line, value, true);
        line.push('"');
    }
}

/// Writes `value` with control characters and backslashes escaped (`\n`, `\u{1b}`, `\\`), so
/// an escape in the line always stands for one character; in a quoted value also quotes.
fn text_escaped(line: &mut String, value: &str, quoted: bool) {
    escaped(line, value, |c| match c {
        '\n' => Some(Escape::Short("\\n")),
        '\r' => Some(Escape::Short("\\r")),
        '\t' => Some(Escape::Short("\\t")),
        '"' if quoted => Some(Escape::Short("\\\"")),
        '\\' => Some(Escape::Short("\\\\")),
        c if is_unsafe(c) => Some(Escape::Rust),
        _ => None,
    });
}

/// A JSON string, quotes included. Beyond what JSON requires, C1 controls and the line
/// separators are escaped too, so a terminal showing the line never acts on them.
fn json_string(line: &mut String, value: &str) {
    line.push('"');
    escaped(line, value, |c| match c {
        '"' => Some(Escape::Short("\\\"")),
        '\\' => Some(Escape::Short("\\\\")),
        '\n' => Some(Escape::Short("\\n")),
        '\r' => Some(Escape::Short("\\r")),
        '\t' => Some(Escape::Short("\\t")),
        c if is_unsafe(c) => Some(Escape::Json),
        _ => None,
    });
    line.push('"');
}

/// How one character is written out.
enum Escape {
    Short(&'static str),
    /// `\u{85}`
    Rust,
    /// `\u0085`
    Json,
}

/// Copies `value`, writing the characters `escape` picks as their escapes. ASCII text that
/// needs nothing (the usual case) is scanned a byte at a time and copied in runs.
fn escaped(line: &mut String, value: &str, escape: impl Fn(char) -> Option<Escape>) {
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if TEXT[usize::from(byte)] < 2 {
            at += 1;
            continue;
        }
        let Some(c) = value[at..].chars().next() else {
            break;
        };
        let next = at + c.len_utf8();
        if let Some(escape) = escape(c) {
            line.push_str(&value[start..at]);
            match escape {
                Escape::Short(text) => line.push_str(text),
                Escape::Rust => {
                    let _ = write!(line, "\\u{{{:x}}}", u32::from(c));
                }
                Escape::Json => {
                    let _ = write!(line, "\\u{:04x}", u32::from(c));
                }
            }
            start = next;
        }
        at = next;
    }
    line.push_str(&value[start..]);
}

/// RFC 3339 in UTC with microseconds: `2026-11-27T21:12:59.637342Z`.
fn timestamp(line: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let in_day = seconds % 86_400;
    let mut digits = itoa::Buffer::new();
    let year = digits.format(year);
    for _ in year.len()..4 {
        line.push('0');
    }
    line.push_str(year);
    let mut two = |separator: char, value: u64| {
        line.push(separator);
        line.push(char::from(b'0' + (value / 10) as u8));
        line.push(char::from(b'0' + (value % 10) as u8));
    };
    two('-', month);
    two('-', day);
    two('T', in_day / 3600);
    two(':', in_day / 60 % 60);
    two(':', in_day % 60);
    let micros = digits.format(since.subsec_micros());
    line.push('.');
    for _ in micros.len()..6 {
        line.push('0');
    }
    line.push_str(micros);
    line.push('Z');
}

/// Year, month (1-12) and day (1-31) of a count of days since 1970-01-01 in the proleptic
/// Gregorian calendar (H. Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}
