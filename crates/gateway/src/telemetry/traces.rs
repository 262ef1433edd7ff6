//! OpenTelemetry traces: a span per call with the GenAI semantic conventions' attributes, a
//! child span per stage and per upstream attempt, exported over OTLP/HTTP (protobuf).
//!
//! Nothing is built while a request runs: a traced request only notes when each stage and
//! attempt began and ended ([`Trace`]). When it ends, its spans are written straight into
//! OTLP's protobuf messages ([`otlp`]) from the notes and a few shared values ([`Call`], no
//! span objects), on the thread that served it, and queued as bytes; a background task takes
//! the queue in batches, wraps each batch into one export and posts it to the collector. A gateway without `otel.endpoint` notes nothing at all. An incoming W3C
//! `traceparent` makes the call's span its child (and its sampling decision holds); the call's
//! own `traceparent` goes to every upstream.
//!
//! The OpenTelemetry SDK's span objects, batch processor and OTLP conversion cost about as
//! much per call as serving the call (`bench/instructions.sh`, 100k instructions a call against
//! 77k); writing the protobuf from the notes costs a few thousand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanId, TraceId};
use switchyard_providers::http::{Client, Target};
use switchyard_types::{FinishReason, WireFormat};
use tokio::time::Instant;
use tracing::warn;

use crate::background::{Background, Queue};
use crate::config::file::OtelConfig;
use crate::pipeline::{Ctx, End};

mod otlp;

/// The W3C header.
pub static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// Calls waiting to be exported, at most; past it a call's spans are dropped (and counted).
const QUEUE: usize = 8192;

/// Calls per export, at most.
const BATCH: usize = 512;

/// How long the exporter waits, once a call is waiting, for more to fill its batch.
const LINGER: Duration = Duration::from_secs(1);

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one export may take once the gateway is stopping.
const CLOSING_TIMEOUT: Duration = Duration::from_secs(2);

/// Exports tried per batch when the collector is unreachable or busy.
const EXPORT_TRIES: u32 = 3;

/// The exporter's queue.
#[derive(Debug)]
pub struct Traces {
    /// Each call's spans, written as protobuf on the thread that served it.
    queue: Queue<Vec<u8>>,
    /// Share of traces started here (not continuing a caller's) that are recorded.
    sample_ratio: f64,
}

/// What a traced request notes as it runs.
#[derive(Debug)]
pub struct Trace {
    trace_id: TraceId,
    span_id: SpanId,
    /// The caller's span, from its `traceparent`.
    parent: Option<SpanId>,
    /// When the request arrived, by the wall clock and the monotonic one.
    started: (SystemTime, Instant),
    /// `traceparent` for upstream calls: this call's span as their parent.
    pub traceparent: HeaderValue,
    /// Stages: name, start, end.
    stages: Vec<(&'static str, Instant, Instant)>,
    /// Why each choice ended, as far as the gateway read the answer.
    pub finish_reasons: Vec<FinishReason>,
}

/// One upstream attempt, as the route stage notes it.
#[derive(Debug, Clone)]
pub struct AttemptSpan {
    /// `provider/model`.
    pub deployment: crate::router::Label,
    /// `gen_ai.provider.name`.
    pub provider: &'static str,
    /// When it began and ended.
    pub span: (Instant, Instant),
    /// Its error, when it failed: status and message.
    pub error: Option<(u16, String)>,
}

/// An ended call, as its spans are written: its notes, and what its attributes read borrowed
/// from the call's context.
#[derive(Debug)]
struct Call<'a> {
    trace: Box<Trace>,
    ended: Instant,
    /// `gen_ai.operation.name`: `chat`, `embeddings`.
    operation: &'static str,
    /// The model group asked for (`None`: unknown).
    group: Option<&'a str>,
    request_id: &'a str,
    attempts: u32,
    stream: bool,
    provider: Option<&'static str>,
    deployment: Option<&'a str>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    /// Input and output tokens, when an upstream was reached.
    usage: Option<(u64, u64)>,
    cost: Option<switchyard_ledger::Usd>,
    key_id: Option<&'a str>,
    outcome: Outcome<'a>,
    attempt_spans: Vec<AttemptSpan>,
}

/// How the call ended, as its span says it.
#[derive(Debug)]
enum Outcome<'a> {
    Complete,
    Disconnected,
    Failed {
        status: u16,
        /// `error.type`: the error's code, else its status.
        kind: std::borrow::Cow<'a, str>,
        message: &'a str,
    },
}

/// Where the batches go, and what every batch repeats.
#[derive(Debug)]
struct Exporter {
    client: Client,
    target: Target,
    headers: HeaderMap,
    /// The `Resource` and `InstrumentationScope` of every batch.
    about: otlp::About,
    /// Batches the collector never took.
    failed: AtomicU64,
    /// Set when the gateway stops: what is left gets one short try each.
    closing: tokio_util::sync::CancellationToken,
}

impl Traces {
    /// Starts exporting to `config.endpoint` (`…/v1/traces` is added unless given), from a
    /// task on `background` (which writes out what is queued when it shuts down).
    pub fn start(config: &OtelConfig, background: &Background) -> Result<Traces, String> {
        let endpoint = config.endpoint.as_deref().unwrap_or_default();
        let endpoint = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
            endpoint.to_owned()
        } else {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        };
        let target = Target::parse(&endpoint).map_err(|error| error.to_string())?;
        let client = switchyard_providers::http::client(EXPORT_TIMEOUT)
            .map_err(|error| error.to_string())?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("otel.headers: {name:?} is not a header name"))?;
            let mut value = HeaderValue::from_str(value.expose().trim())
                .map_err(|_| format!("otel.headers: the value of {name} is not a header value"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        let exporter = Arc::new(Exporter {
            client,
            target,
            headers,
            about: otlp::About::new(&config.service_name, env!("CARGO_PKG_VERSION")),
            failed: AtomicU64::new(0),
            closing: background.closing(),
        });
        let queue = background.lingering_queue("traced calls", QUEUE, BATCH, LINGER, {
            move |calls: Vec<Vec<u8>>| {
                let exporter = Arc::clone(&exporter);
                async move { exporter.export(&calls).await }
            }
        });
        Ok(Traces {
            queue,
            sample_ratio: config.sample_ratio.clamp(0.0, 1.0),
        })
    }

    /// Calls waiting to be exported.
    pub fn queued(&self) -> usize {
        self.queue.depth()
    }

    /// Calls whose spans were dropped: the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.refused()
    }

    /// The trace of a request with `headers` that arrived at `arrived`, or `None` when it is
    /// not sampled.
    pub fn begin(&self, headers: &http::HeaderMap, arrived: Instant) -> Option<Box<Trace>> {
        let parent = headers
            .get(&TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_traceparent);
        let mut rng = fastrand::Rng::new();
        let sampled = match &parent {
            Some(parent) => parent.sampled,
            None => self.sample_ratio >= 1.0 || rng.f64() < self.sample_ratio,
        };
        if !sampled {
            return None;
        }
        let trace_id = parent
            .as_ref()
            .map_or_else(|| TraceId::from(rng.u128(1..)), |parent| parent.trace_id);
        let span_id = SpanId::from(rng.u64(1..));
        let traceparent = traceparent(trace_id, span_id);
        let elapsed = arrived.elapsed();
        Some(Box::new(Trace {
            trace_id,
            span_id,
            parent: parent.map(|parent| parent.span_id),
            started: (SystemTime::now() - elapsed, arrived),
            traceparent,
            stages: Vec::with_capacity(8),
            finish_reasons: Vec::new(),
        }))
    }

    /// Queues the spans of `ctx`'s request, noted in `trace`, which ended with `end`.
    pub fn export(&self, ctx: &mut Ctx, trace: Box<Trace>, end: &End) {
        let outcome = match end {
            End::Complete => Outcome::Complete,
            End::Disconnected => Outcome::Disconnected,
            End::Failed(error) => {
                let status = end.client_status(ctx.streamed);
                Outcome::Failed {
                    status,
                    kind: error.code.as_deref().map_or_else(
                        || std::borrow::Cow::Owned(status.to_string()),
                        std::borrow::Cow::Borrowed,
                    ),
                    message: &error.message,
                }
            }
        };
        let request = ctx.chat();
        let call = Call {
            trace,
            ended: Instant::now(),
            operation: ctx.kind.name(),
            group: ctx.group.as_ref().map(|group| group.label.as_str()),
            request_id: &ctx.request_id,
            attempts: ctx.route.attempts,
            stream: ctx.streamed,
            provider: ctx.route.provider,
            deployment: ctx.route.deployment.as_deref(),
            max_tokens: request.and_then(|request| request.max_tokens),
            temperature: request.and_then(|request| request.temperature),
            usage: (ctx.route.attempts > 0)
                .then_some((ctx.usage.prompt_tokens, ctx.usage.completion_tokens)),
            cost: ctx.cost.map(|cost| cost.total),
            key_id: ctx
                .principal
                .as_ref()
                .map(|principal| principal.key_id.as_str()),
            outcome,
            attempt_spans: ctx.route.attempt_spans.take().unwrap_or_default(),
        };
        self.queue.push(otlp::spans(&call));
    }
}

impl Exporter {
    /// Posts `calls`' spans as one export, trying again a few times while the collector is
    /// unreachable or busy; a batch it never takes is dropped (and logged, sparingly).
    async fn export(&self, calls: &[Vec<u8>]) {
        let body = Bytes::from(otlp::encode(&self.about, calls));
        let mut delay = Duration::from_millis(500);
        let mut failure = String::new();
        for attempt in 1..=EXPORT_TRIES {
            // Stopping, the rest of the queue must not wait out a dead collector's timeouts.
            let closing = self.closing.is_cancelled();
            let sent = tokio::time::timeout(
                if closing {
                    CLOSING_TIMEOUT
                } else {
                    EXPORT_TIMEOUT
                },
                self.client
                    .post(&self.target, self.headers.clone(), body.clone()),
            )
            .await;
            let retry = match sent {
                Ok(Ok(response)) if response.status().is_success() => {
                    // The body (an `ExportTraceServiceResponse`, perhaps partial success) is
                    // read to its end, which keeps the connection for the next batch; nothing
                    // would be done about what it says.
                    let _ = response.bytes_limited(64 * 1024).await;
                    return;
                }
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    failure = format!("the collector answered {status}");
                    // As OTLP/HTTP says: only these are worth another try.
                    matches!(status, 429 | 502 | 503 | 504)
                }
                Ok(Err(error)) => {
                    failure = format!("the collector could not be reached: {error}");
                    true
                }
                Err(_) => {
                    failure = "the collector did not answer in time".to_owned();
                    true
                }
            };
            if !retry || attempt == EXPORT_TRIES || closing {
                break;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        // The first failure and then every hundredth: a dead collector must not flood the log.
        if failed % 100 == 1 {
            warn!(
                calls = calls.len(),
                failed_batches = failed,
                "Traces not exported: {failure}"
            );
        }
    }
}

impl Trace {
    /// Notes that stage `name` ran from `from` until now.
    pub fn stage(&mut self, name: &'static str, from: Instant) {
        self.stages.push((name, from, Instant::now()));
    }

    /// `at` by the wall clock, in nanoseconds since the Unix epoch.
    fn unix_nanos(&self, at: Instant) -> u64 {
        let wall = self.started.0 + at.saturating_duration_since(self.started.1);
        wall.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
    }
}

/// The finish reasons of a relayed whole answer in `dialect` (traced calls only): OpenAI's
/// `"finish_reason"` keys, Anthropic's `"stop_reason"` key.
///
/// The relay has already checked that the body is JSON, and inside a JSON string every quote
/// is escaped; so a `"finish_reason"` whose first quote is not escaped, followed by a colon,
/// is a key. OpenAI writes tool arguments as strings, so its answers have such keys only in
/// their choices. Anthropic writes tool input as objects, which may have a `stop_reason` of
/// their own; its message's comes after its content, so the last one is the message's.
/// Looking for the keys costs a small part of parsing the answer again.
pub fn finish_reasons_of(dialect: WireFormat, body: &[u8]) -> Vec<FinishReason> {
    use memchr::memmem::Finder;
    static FINISH_REASON: std::sync::LazyLock<Finder<'static>> =
        std::sync::LazyLock::new(|| Finder::new(b"\"finish_reason\""));
    static STOP_REASON: std::sync::LazyLock<Finder<'static>> =
        std::sync::LazyLock::new(|| Finder::new(b"\"stop_reason\""));
    let (finder, read): (&Finder<'static>, fn(&str) -> FinishReason) = match dialect {
        WireFormat::OpenAi => (&FINISH_REASON, FinishReason::from_openai),
        WireFormat::Anthropic => (
            &STOP_REASON,
            switchyard_providers::anthropic::response::finish_reason,
        ),
    };
    let key = finder.needle().len();
    let mut reasons: Vec<FinishReason> = finder
        .find_iter(body)
        .filter_map(|at| {
            let escapes = body[..at]
                .iter()
                .rev()
                .take_while(|byte| **byte == b'\\')
                .count();
            if escapes % 2 == 1 {
                return None;
            }
            let value = body[at + key..].trim_ascii_start().strip_prefix(b":")?;
            // A reason is a string without escapes; `null` is none.
            let value = value.trim_ascii_start().strip_prefix(b"\"")?;
            let end = memchr::memchr2(b'"', b'\\', value)?;
            (value[end] == b'"')
                .then(|| std::str::from_utf8(&value[..end]).ok())
                .flatten()
                .map(read)
        })
        .collect();
    if dialect == WireFormat::Anthropic && reasons.len() > 1 {
        reasons.drain(..reasons.len() - 1);
    }
    reasons
}

/// The W3C `traceparent` of a sampled span (`00-<trace id>-<span id>-01`).
fn traceparent(trace_id: TraceId, span_id: SpanId) -> HeaderValue {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = Vec::with_capacity(55);
    text.extend_from_slice(b"00-");
    let hex = |text: &mut Vec<u8>, bytes: &[u8]| {
        for byte in bytes {
            text.push(DIGITS[usize::from(byte >> 4)]);
            text.push(DIGITS[usize::from(byte & 0x0f)]);
        }
    };
    hex(&mut text, &trace_id.to_bytes());
    text.push(b'-');
    hex(&mut text, &span_id.to_bytes());
    text.extend_from_slice(b"-01");
    HeaderValue::from_maybe_shared(Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A caller's span, from its W3C `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parent {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
}

/// A W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`), if well formed.
fn parse_traceparent(text: &str) -> Option<Parent> {
    let mut parts = text.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2
        || version == "ff"
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = TraceId::from_hex(trace)
        .ok()
        .filter(|id| *id != TraceId::INVALID)?;
    let span_id = SpanId::from_hex(span)
        .ok()
        .filter(|id| *id != SpanId::INVALID)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(Parent {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_are_read_from_the_keys_of_a_relayed_answer() {
        let openai = br#"{"choices":[{"index":0,"message":{"content":"he wrote \"finish_reason\": \"tool_calls\"","tool_calls":[{"function":{"arguments":"{\"finish_reason\":\"x\"}"}}]},"finish_reason" : "length"},{"index":1,"finish_reason":null},{"index":2,"finish_reason":"content_filter"}],"usage":{}}"#;
        assert_eq!(
            finish_reasons_of(WireFormat::OpenAi, openai),
            [FinishReason::Length, FinishReason::ContentFilter]
        );
        // A tool's input is an object, which may have keys of either name.
        let anthropic = br#"{"type":"message","content":[{"type":"tool_use","id":"t","name":"f","input":{"stop_reason":"end_turn","finish_reason":"stop"}}],"stop_reason":"max_tokens"}"#;
        assert_eq!(
            finish_reasons_of(WireFormat::Anthropic, anthropic),
            [FinishReason::Length]
        );
        assert!(finish_reasons_of(WireFormat::OpenAi, br#"{"choices":[]}"#).is_empty());
        assert!(finish_reasons_of(WireFormat::Anthropic, b"").is_empty());
    }

    #[test]
    fn traceparent_is_read_as_the_w3c_spec_writes_it() {
        let parent = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            .unwrap_or_else(|| panic!("valid"));
        assert_eq!(
            parent.trace_id.to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(parent.span_id.to_string(), "b7ad6b7169203331");
        assert!(parent.sampled);
        let unsampled =
            parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
        assert!(unsampled.is_some_and(|parent| !parent.sampled));
        assert_eq!(
            traceparent(parent.trace_id, parent.span_id),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        for bad in [
            "",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-xyz-b7ad6b7169203331-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }
}
