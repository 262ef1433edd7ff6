//! OTLP's `ExportTraceServiceRequest`, written as protobuf straight from the calls' notes.
//!
//! The messages and field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto` and `resource/v1/resource.proto` (OTLP 1.x, stable); the tests
//! decode what is written here with the generated types of `opentelemetry-proto`. Fields are
//! written in field order and proto3 defaults (empty strings, zero) are left out, as any
//! protobuf encoder would; a nested message's length is written once its content is. The
//! wire format's pieces (varints, tags, fixed-width numbers) are a few lines each, inlined
//! here: through a generic encoder they cost several times more per span.

use tokio::time::Instant;

use super::{Call, Outcome, Trace};

/// `Span.SpanKind`.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// `Status.StatusCode`.
#[derive(Debug, Clone, Copy)]
enum Code {
    Ok = 1,
    Error = 2,
}

/// `SpanFlags`: the W3C sampled flag, and whether the parent is known to be remote (bit 8)
/// and is (bit 9).
const SAMPLED_LOCAL_PARENT: u32 = 0x101;
const SAMPLED_REMOTE_PARENT: u32 = 0x301;

/// What every export repeats: the `Resource` (the service) and the `InstrumentationScope`,
/// each written once.
#[derive(Debug)]
pub(super) struct About {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl About {
    /// The resource of service `service_name`, and the gateway's scope at `version`.
    pub(super) fn new(service_name: &str, version: &str) -> About {
        let mut resource = Vec::new();
        attribute(&mut resource, 1, "service.name", Value::Str(service_name));
        attribute(
            &mut resource,
            1,
            "telemetry.sdk.name",
            Value::Str("switchyard"),
        );
        attribute(
            &mut resource,
            1,
            "telemetry.sdk.language",
            Value::Str("rust"),
        );
        attribute(
            &mut resource,
            1,
            "telemetry.sdk.version",
            Value::Str(version),
        );
        let mut scope = Vec::new();
        string(&mut scope, 1, "switchyard");
        string(&mut scope, 2, version);
        About { resource, scope }
    }
}

/// The export of calls' spans, each call's as [`spans`] wrote them.
pub(super) fn encode(about: &About, calls: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256 + calls.iter().map(Vec::len).sum::<usize>());
    // ExportTraceServiceRequest.resource_spans
    message(&mut buf, 1, |buf| {
        // ResourceSpans.resource
        bytes(buf, 1, &about.resource);
        // ResourceSpans.scope_spans
        message(buf, 2, |buf| {
            // ScopeSpans.scope
            bytes(buf, 1, &about.scope);
            for spans in calls {
                buf.extend_from_slice(spans);
            }
        });
    });
    buf
}

/// A call's spans as `ScopeSpans.spans` fields, ready to go into an export: written on the
/// thread that served the call, so that what the call noted is freed where it was made (a
/// worker's memory freed on another thread costs that worker more on its next allocations).
pub(super) fn spans(call: &Call) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1024);
    call_spans(&mut buf, call, &mut fastrand::Rng::new());
    buf
}

/// The call's span, then a span per stage and per upstream attempt, its children.
fn call_spans(buf: &mut Vec<u8>, call: &Call, rng: &mut fastrand::Rng) {
    let trace = &call.trace;
    let model = call.group.unwrap_or("unknown");
    let head = Head {
        trace,
        span_id: trace.span_id.to_bytes(),
        parent: trace.parent.map(|parent| parent.to_bytes()),
        kind: Kind::Server,
    };
    let times = (trace.started.1, call.ended);
    head.span(buf, &[call.operation, " ", model], times, |buf| {
        let mut attr = |key: &str, value: Value<'_>| attribute(buf, 9, key, value);
        attr("gen_ai.operation.name", Value::Str(call.operation));
        attr("gen_ai.request.model", Value::Str(model));
        attr("switchyard.request_id", Value::Str(call.request_id));
        attr("switchyard.attempts", Value::Int(i64::from(call.attempts)));
        attr("switchyard.stream", Value::Bool(call.stream));
        if let Some(provider) = call.provider {
            attr("gen_ai.provider.name", Value::Str(provider));
        }
        if let Some(deployment) = call.deployment {
            attr("gen_ai.response.model", Value::Str(served(deployment)));
        }
        if let Some(max) = call.max_tokens {
            attr("gen_ai.request.max_tokens", Value::Int(i64::from(max)));
        }
        if let Some(temperature) = call.temperature {
            attr("gen_ai.request.temperature", Value::Double(temperature));
        }
        if let Some((input, output)) = call.usage {
            let count = |tokens: u64| Value::Int(i64::try_from(tokens).unwrap_or(i64::MAX));
            attr("gen_ai.usage.input_tokens", count(input));
            attr("gen_ai.usage.output_tokens", count(output));
        }
        if !trace.finish_reasons.is_empty() {
            attr(
                "gen_ai.response.finish_reasons",
                Value::Reasons(&trace.finish_reasons),
            );
        }
        if let Some(cost) = call.cost {
            attr("switchyard.cost_usd", Value::Str(&cost.to_string()));
        }
        if let Some(key_id) = call.key_id {
            attr("switchyard.key_id", Value::Str(key_id));
        }
        let (code, message_text) = match &call.outcome {
            Outcome::Complete => {
                attr("http.response.status_code", Value::Int(200));
                (Code::Ok, "")
            }
            Outcome::Disconnected => {
                attr("error.type", Value::Str("client_disconnected"));
                (Code::Error, "the client went away")
            }
            Outcome::Failed {
                status,
                kind,
                message,
            } => {
                attr("http.response.status_code", Value::Int(i64::from(*status)));
                attr("error.type", Value::Str(kind));
                (Code::Error, *message)
            }
        };
        status(buf, code, message_text);
    });
    let mut child = |kind: Kind| Head {
        trace,
        span_id: rng.u64(1..).to_be_bytes(),
        parent: Some(head.span_id),
        kind,
    };
    for (name, from, to) in &trace.stages {
        child(Kind::Internal).span(buf, &[name], (*from, *to), |_| {});
    }
    for attempt in &call.attempt_spans {
        let served = served(&attempt.deployment);
        let name = [call.operation, " ", served];
        child(Kind::Client).span(buf, &name, attempt.span, |buf| {
            let mut attr = |key: &str, value: Value<'_>| attribute(buf, 9, key, value);
            attr("gen_ai.operation.name", Value::Str(call.operation));
            attr("gen_ai.provider.name", Value::Str(attempt.provider));
            attr("gen_ai.request.model", Value::Str(served));
            attr("switchyard.deployment", Value::Str(&attempt.deployment));
            if let Some((code, message_text)) = &attempt.error {
                attr("error.type", Value::Str(&code.to_string()));
                status(buf, Code::Error, message_text);
            }
        });
    }
}

/// The model of a `provider/model` deployment.
fn served(deployment: &str) -> &str {
    deployment
        .split_once('/')
        .map_or(deployment, |(_, model)| model)
}

/// The first fields of a span: ids, name and kind.
struct Head<'a> {
    trace: &'a Trace,
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    kind: Kind,
}

impl Head<'_> {
    /// Writes the span (`Span`, as `ScopeSpans.spans`) named by `name`'s parts, from `times.0`
    /// to `times.1`: its head, its times, what `rest` writes (attributes, status), its flags.
    fn span(
        &self,
        buf: &mut Vec<u8>,
        name: &[&str],
        times: (Instant, Instant),
        rest: impl FnOnce(&mut Vec<u8>),
    ) {
        message(buf, 2, |buf| {
            self.write(buf, name);
            fixed64(buf, 7, self.trace.unix_nanos(times.0));
            fixed64(buf, 8, self.trace.unix_nanos(times.1));
            rest(buf);
            fixed32(buf, 16, self.flags());
        });
    }

    /// Writes `trace_id` (1), `span_id` (2), `parent_span_id` (4), `name` (5, the parts
    /// joined) and `kind` (6).
    fn write(&self, buf: &mut Vec<u8>, name: &[&str]) {
        bytes(buf, 1, &self.trace.trace_id.to_bytes());
        bytes(buf, 2, &self.span_id);
        if let Some(parent) = &self.parent {
            bytes(buf, 4, parent);
        }
        tag(5, LEN, buf);
        varint(name.iter().map(|part| part.len() as u64).sum(), buf);
        for part in name {
            buf.extend_from_slice(part.as_bytes());
        }
        tag(6, VARINT, buf);
        varint(self.kind as u64, buf);
    }

    /// `flags` (16): sampled, and whether the parent is the caller's (remote).
    fn flags(&self) -> u32 {
        match (self.kind, self.trace.parent) {
            (Kind::Server, Some(_)) => SAMPLED_REMOTE_PARENT,
            _ => SAMPLED_LOCAL_PARENT,
        }
    }
}

/// `Span.status` (15): `message` (2) and `code` (3).
fn status(buf: &mut Vec<u8>, code: Code, text: &str) {
    message(buf, 15, |buf| {
        string(buf, 2, text);
        tag(3, VARINT, buf);
        varint(code as u64, buf);
    });
}

/// An attribute's value (`AnyValue`).
enum Value<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// Finish reasons, by OpenAI's names (a reason it has none for, as the provider wrote it).
    Reasons(&'a [switchyard_types::FinishReason]),
}

/// A `KeyValue` as field `field`: `key` (1) and `value` (2, an `AnyValue`). A scalar's
/// lengths are known before it is written, so they go first; an array's are filled in after.
fn attribute(buf: &mut Vec<u8>, field: u32, key: &str, value: Value<'_>) {
    let value_length = match &value {
        Value::Str(text) => 1 + varint_len(text.len() as u64) + text.len(),
        Value::Bool(_) => 2,
        Value::Int(number) => 1 + varint_len(u64::from_ne_bytes(number.to_ne_bytes())),
        Value::Double(_) => 9,
        Value::Reasons(_) => {
            message(buf, field, |buf| {
                string(buf, 1, key);
                message(buf, 2, |buf| any_value(buf, &value));
            });
            return;
        }
    };
    let key_length = key.len();
    let length = 2
        + varint_len(key_length as u64)
        + key_length
        + varint_len(value_length as u64)
        + value_length;
    buf.reserve(length + 6);
    tag(field, LEN, buf);
    varint(length as u64, buf);
    // KeyValue.key, then KeyValue.value.
    buf.push(0x0a);
    varint(key_length as u64, buf);
    buf.extend_from_slice(key.as_bytes());
    buf.push(0x12);
    varint(value_length as u64, buf);
    any_value(buf, &value);
}

/// An `AnyValue`'s content: one of `string_value` (1), `bool_value` (2), `int_value` (3),
/// `double_value` (4) or `array_value` (5). A oneof's member is written even when it holds
/// its default, so that the value is known to be set.
fn any_value(buf: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Str(text) => {
            tag(1, LEN, buf);
            varint(text.len() as u64, buf);
            buf.extend_from_slice(text.as_bytes());
        }
        Value::Bool(flag) => {
            tag(2, VARINT, buf);
            varint(u64::from(*flag), buf);
        }
        Value::Int(number) => {
            tag(3, VARINT, buf);
            // int64 on the wire: two's complement, as a varint.
            varint(u64::from_ne_bytes(number.to_ne_bytes()), buf);
        }
        Value::Double(number) => {
            tag(4, I64, buf);
            buf.extend_from_slice(&number.to_le_bytes());
        }
        Value::Reasons(reasons) => message(buf, 5, |buf| {
            for reason in reasons.iter() {
                let name = match reason {
                    switchyard_types::FinishReason::Other(name) => name.as_str(),
                    known => known.openai(),
                };
                // ArrayValue.values
                message(buf, 1, |buf| any_value(buf, &Value::Str(name)));
            }
        }),
    }
}

/// A length-delimited field `field` whose content `write` appends; its length goes before it
/// once known (one byte is kept for it, enough under 128 bytes; more are made room for).
fn message(buf: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    tag(field, LEN, buf);
    buf.push(0);
    let start = buf.len();
    write(buf);
    let length = buf.len() - start;
    if length < 0x80 {
        // Under 128: the byte kept is the whole varint.
        buf[start - 1] = length as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        varint(length as u64, &mut prefix);
        buf[start - 1] = prefix[0];
        buf.splice(start..start, prefix[1..].iter().copied());
    }
}

/// The wire types of the fields written here.
const VARINT: u32 = 0;
const I64: u32 = 1;
const LEN: u32 = 2;
const I32: u32 = 5;

/// A field's tag: its number and wire type.
#[inline]
fn tag(field: u32, wire_type: u32, buf: &mut Vec<u8>) {
    varint(u64::from(field << 3 | wire_type), buf);
}

/// A base-128 varint, least significant group first.
#[inline]
fn varint(mut value: u64, buf: &mut Vec<u8>) {
    while value >= 0x80 {
        buf.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// The bytes [`varint`] writes for `value`.
#[inline]
fn varint_len(value: u64) -> usize {
    // One byte per started group of seven bits (at least one).
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// A `bytes` field.
fn bytes(buf: &mut Vec<u8>, field: u32, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    tag(field, LEN, buf);
    varint(value.len() as u64, buf);
    buf.extend_from_slice(value);
}

/// A `string` field.
fn string(buf: &mut Vec<u8>, field: u32, value: &str) {
    bytes(buf, field, value.as_bytes());
}

/// A `fixed64` field.
fn fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    tag(field, I64, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// A `fixed32` field.
fn fixed32(buf: &mut Vec<u8>, field: u32, value: u32) {
    tag(field, I32, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{SpanId, TraceId};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Decoded;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use prost::Message;
    use tokio::time::Instant;

    use super::*;
    use crate::telemetry::traces::AttemptSpan;

    /// The spans of a failed call with a long error message, a stage and two attempts.
    fn call_spans_of(n: u64) -> Vec<u8> {
        let arrived = Instant::now();
        let trace = Trace {
            trace_id: TraceId::from(u128::from(n) + 1),
            span_id: SpanId::from(n + 1),
            parent: None,
            started: (SystemTime::now(), arrived),
            traceparent: http::HeaderValue::from_static(""),
            stages: vec![("authenticate", arrived, arrived + Duration::from_micros(5))],
            finish_reasons: vec![switchyard_types::FinishReason::Length],
        };
        let attempt = |error: Option<(u16, String)>| AttemptSpan {
            deployment: crate::router::Label::new("openai/gpt-4o"),
            provider: "openai",
            span: (arrived, arrived + Duration::from_millis(3)),
            error,
        };
        let request_id = format!("req-{n}");
        let message = "x".repeat(300);
        spans(&Call {
            trace: Box::new(trace),
            ended: arrived + Duration::from_millis(9),
            operation: "chat",
            group: Some("gpt"),
            request_id: &request_id,
            attempts: 2,
            stream: true,
            provider: Some("openai"),
            deployment: Some("openai/gpt-4o"),
            max_tokens: Some(300),
            temperature: None,
            usage: Some((1 << 40, 7)),
            cost: None,
            key_id: None,
            outcome: Outcome::Failed {
                status: 502,
                kind: "upstream_error".into(),
                message: &message,
            },
            attempt_spans: vec![attempt(Some((503, "busy".to_owned()))), attempt(None)],
        })
    }

    /// A batch far past 16 KiB (three-byte lengths) and spans past 128 bytes (two-byte ones)
    /// read back whole with OTLP's generated types.
    #[test]
    fn varints_are_protobufs() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut ours = Vec::new();
            varint(value, &mut ours);
            let mut theirs = Vec::new();
            prost::encoding::encode_varint(value, &mut theirs);
            assert_eq!(ours, theirs, "{value}");
            assert_eq!(varint_len(value), theirs.len(), "{value}");
        }
    }

    #[test]
    fn a_large_batch_decodes_with_the_otlp_types() {
        let calls: Vec<Vec<u8>> = (0..300).map(call_spans_of).collect();
        let about = About::new("svc", "1.2.3");
        let encoded = encode(&about, &calls);
        assert!(encoded.len() > 100_000, "{}", encoded.len());
        let export = ExportTraceServiceRequest::decode(encoded.as_slice())
            .unwrap_or_else(|error| panic!("decodes: {error}"));
        assert_eq!(export.resource_spans.len(), 1);
        let resource = &export.resource_spans[0];
        let scope = &resource.scope_spans[0];
        assert_eq!(
            scope.scope.as_ref().map(|s| s.version.as_str()),
            Some("1.2.3")
        );
        let spans: &[Span] = &scope.spans;
        assert_eq!(
            spans.len(),
            300 * 4,
            "a call, a stage and two attempts each"
        );
        let last: Vec<&Span> = spans
            .iter()
            .filter(|span| span.trace_id == TraceId::from(300u128).to_bytes())
            .collect();
        assert_eq!(last.len(), 4);
        let call_span = last[0];
        assert_eq!(call_span.name, "chat gpt");
        assert_eq!(call_span.kind, Kind::Server as i32);
        assert_eq!(
            call_span.end_time_unix_nano - call_span.start_time_unix_nano,
            9_000_000
        );
        let status = call_span.status.clone().unwrap_or_default();
        assert_eq!(
            (status.code, status.message.len()),
            (Code::Error as i32, 300)
        );
        let find = |key: &str| {
            call_span
                .attributes
                .iter()
                .find(|attribute| attribute.key == key)
                .and_then(|attribute| attribute.value.clone())
                .and_then(|value| value.value)
        };
        assert_eq!(
            find("gen_ai.usage.input_tokens"),
            Some(Decoded::IntValue(1 << 40))
        );
        assert_eq!(find("switchyard.stream"), Some(Decoded::BoolValue(true)));
        assert_eq!(
            find("http.response.status_code"),
            Some(Decoded::IntValue(502))
        );
        assert_eq!(
            find("error.type"),
            Some(Decoded::StringValue("upstream_error".to_owned()))
        );
        assert_eq!(find("gen_ai.request.temperature"), None);
        for child in &last[1..] {
            assert_eq!(child.parent_span_id, call_span.span_id);
            assert_eq!(child.flags, SAMPLED_LOCAL_PARENT);
        }
        assert_eq!(last[1].name, "authenticate");
        assert_eq!(
            last[1].end_time_unix_nano - last[1].start_time_unix_nano,
            5_000
        );
        assert_eq!(last[2].name, "chat gpt-4o");
        assert_eq!(
            last[2]
                .status
                .as_ref()
                .map(|status| status.message.as_str()),
            Some("busy")
        );
        assert!(
            last[3].status.is_none(),
            "the attempt that served has no status"
        );
    }
}
