//! OpenTelemetry traces: a span per call with the GenAI semantic conventions' attributes, a
//! child span per stage and per upstream attempt, exported over OTLP/HTTP.
//!
//! Nothing is built while a request runs: a traced request only notes when each stage and
//! attempt began and ended (`Trace`), and its spans are made, with those times, when it ends.
//! A gateway without `otel.endpoint` notes nothing at all. The SDK's batch processor exports on
//! a thread of its own. An incoming W3C `traceparent` makes the call's span its child (and its
//! sampling decision holds); the call's own `traceparent` goes to every upstream.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tokio::time::Instant;

use crate::config::file::OtelConfig;
use crate::pipeline::{Ctx, End};

/// The W3C header.
pub static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// The exporter and its tracer.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// Share of traces started here (not continuing a caller's) that are recorded.
    sample_ratio: f64,
}

/// What a traced request notes as it runs.
#[derive(Debug)]
pub struct Trace {
    trace_id: TraceId,
    span_id: SpanId,
    /// The caller's span, from its `traceparent`.
    parent: Option<SpanContext>,
    /// When the request arrived, by the wall clock and the monotonic one.
    started: (SystemTime, Instant),
    /// `traceparent` for upstream calls: this call's span as their parent.
    pub traceparent: HeaderValue,
    /// Stages: name, start, end.
    stages: Vec<(&'static str, Instant, Instant)>,
    /// Why each choice ended (OpenAI's names), as far as the gateway read the answer.
    pub finish_reasons: Vec<String>,
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

impl Traces {
    /// Starts exporting to `config.endpoint` (`…/v1/traces` is added unless given).
    pub fn start(config: &OtelConfig) -> Result<Traces, String> {
        let endpoint = config.endpoint.as_deref().unwrap_or_default();
        let endpoint = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
            endpoint.to_owned()
        } else {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        };
        // The exporter's client speaks TLS through rustls; ring is the provider the gateway
        // uses everywhere (installing it twice is harmless).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| error.to_string())?;
        let provider = SdkTracerProvider::builder()
            .with_id_generator(Ids)
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("switchyard");
        Ok(Traces {
            provider,
            tracer,
            sample_ratio: config.sample_ratio.clamp(0.0, 1.0),
        })
    }

    /// Exports what is waiting (a graceful stop).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
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
            Some(parent) => parent.is_sampled(),
            None => self.sample_ratio >= 1.0 || rng.f64() < self.sample_ratio,
        };
        if !sampled {
            return None;
        }
        let trace_id = parent
            .as_ref()
            .map_or_else(|| TraceId::from(rng.u128(1..)), SpanContext::trace_id);
        let span_id = SpanId::from(rng.u64(1..));
        let traceparent = HeaderValue::try_from(format!("00-{trace_id}-{span_id}-01"))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        let elapsed = arrived.elapsed();
        Some(Box::new(Trace {
            trace_id,
            span_id,
            parent,
            started: (SystemTime::now() - elapsed, arrived),
            traceparent,
            stages: Vec::with_capacity(8),
            finish_reasons: Vec::new(),
        }))
    }

    /// Makes and hands to the exporter the spans of `ctx`'s request, which ended with `end`.
    pub fn export(&self, ctx: &Ctx, trace: &Trace, end: &End) {
        let wall = |at: Instant| trace.started.0 + at.saturating_duration_since(trace.started.1);
        let parent = match &trace.parent {
            Some(parent) => Context::new().with_remote_span_context(parent.clone()),
            None => Context::new(),
        };
        let operation = ctx.kind.name();
        let model = ctx
            .group
            .as_ref()
            .map_or("unknown", |group| group.name.as_str())
            .to_owned();
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", operation),
            KeyValue::new("gen_ai.request.model", model.clone()),
            KeyValue::new("switchyard.request_id", ctx.request_id.clone()),
            KeyValue::new("switchyard.attempts", i64::from(ctx.route.attempts)),
            KeyValue::new("switchyard.stream", ctx.streamed),
        ];
        if let Some(provider) = ctx.route.provider {
            attributes.push(KeyValue::new("gen_ai.provider.name", provider));
        }
        if let Some(deployment) = ctx.route.deployment.as_deref() {
            let served = deployment
                .split_once('/')
                .map_or(deployment, |(_, model)| model);
            attributes.push(KeyValue::new("gen_ai.response.model", served.to_owned()));
        }
        if let Some(request) = ctx.chat() {
            if let Some(max) = request.max_tokens {
                attributes.push(KeyValue::new("gen_ai.request.max_tokens", i64::from(max)));
            }
            if let Some(temperature) = request.temperature {
                attributes.push(KeyValue::new("gen_ai.request.temperature", temperature));
            }
        }
        if ctx.route.attempts > 0 {
            attributes.push(KeyValue::new(
                "gen_ai.usage.input_tokens",
                i64::try_from(ctx.usage.prompt_tokens).unwrap_or(i64::MAX),
            ));
            attributes.push(KeyValue::new(
                "gen_ai.usage.output_tokens",
                i64::try_from(ctx.usage.completion_tokens).unwrap_or(i64::MAX),
            ));
        }
        if !trace.finish_reasons.is_empty() {
            attributes.push(KeyValue::new(
                "gen_ai.response.finish_reasons",
                opentelemetry::Value::Array(
                    trace
                        .finish_reasons
                        .iter()
                        .map(|reason| opentelemetry::StringValue::from(reason.clone()))
                        .collect::<Vec<_>>()
                        .into(),
                ),
            ));
        }
        if let Some(cost) = &ctx.cost {
            attributes.push(KeyValue::new("switchyard.cost_usd", cost.total.to_string()));
        }
        if let Some(principal) = &ctx.principal {
            attributes.push(KeyValue::new("switchyard.key_id", principal.key_id.clone()));
        }
        let status = match end {
            End::Complete => {
                attributes.push(KeyValue::new("http.response.status_code", 200));
                Status::Ok
            }
            End::Disconnected => {
                attributes.push(KeyValue::new("error.type", "client_disconnected"));
                Status::error("the client went away")
            }
            End::Failed(error) => {
                let status = end.client_status(ctx.streamed);
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                attributes.push(KeyValue::new(
                    "error.type",
                    error.code.clone().unwrap_or_else(|| status.to_string()),
                ));
                Status::error(error.message.clone())
            }
        };
        let ended = wall(Instant::now());
        let builder = self
            .tracer
            .span_builder(format!("{operation} {model}"))
            .with_kind(SpanKind::Server)
            .with_start_time(trace.started.0)
            .with_attributes(attributes);
        // The ids the upstream calls were told (`traceparent`): the next ids this thread's
        // spans get (the span is made here, on this thread, now).
        NEXT_IDS.set(Some((trace.trace_id, trace.span_id)));
        let mut span = builder.start_with_context(&self.tracer, &parent);
        NEXT_IDS.set(None);
        span.set_status(status);
        let call = parent.with_remote_span_context(SpanContext::new(
            trace.trace_id,
            trace.span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ));
        for (name, from, to) in &trace.stages {
            self.tracer
                .span_builder(*name)
                .with_kind(SpanKind::Internal)
                .with_start_time(wall(*from))
                .start_with_context(&self.tracer, &call)
                .end_with_timestamp(wall(*to));
        }
        for attempt in ctx.route.attempt_spans.iter().flatten() {
            let served = attempt
                .deployment
                .split_once('/')
                .map_or(&*attempt.deployment, |(_, model)| model)
                .to_owned();
            let mut child = self
                .tracer
                .span_builder(format!("{operation} {served}"))
                .with_kind(SpanKind::Client)
                .with_start_time(wall(attempt.span.0))
                .with_attributes(vec![
                    KeyValue::new("gen_ai.operation.name", operation),
                    KeyValue::new("gen_ai.provider.name", attempt.provider),
                    KeyValue::new("gen_ai.request.model", served),
                    KeyValue::new("switchyard.deployment", attempt.deployment.to_string()),
                ])
                .start_with_context(&self.tracer, &call);
            if let Some((status, message)) = &attempt.error {
                child.set_attribute(KeyValue::new("error.type", status.to_string()));
                child.set_status(Status::Error {
                    description: Cow::Owned(message.clone()),
                });
            }
            child.end_with_timestamp(wall(attempt.span.1));
        }
        span.end_with_timestamp(ended);
    }
}

thread_local! {
    /// Ids the next span made on this thread takes, instead of random ones.
    static NEXT_IDS: std::cell::Cell<Option<(TraceId, SpanId)>> = const { std::cell::Cell::new(None) };
}

/// Random ids, but for a span whose ids were chosen before it was made (a call's span, whose
/// id its upstream calls were already told).
#[derive(Debug)]
struct Ids;

impl opentelemetry_sdk::trace::IdGenerator for Ids {
    fn new_trace_id(&self) -> TraceId {
        NEXT_IDS
            .get()
            .map_or_else(|| TraceId::from(fastrand::u128(1..)), |(trace, _)| trace)
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_IDS
            .get()
            .map_or_else(|| SpanId::from(fastrand::u64(1..)), |(_, span)| span)
    }
}

/// The finish reasons of a relayed whole answer, read from its body (traced calls only):
/// OpenAI's `choices[].finish_reason`, Anthropic's `stop_reason`.
pub fn finish_reasons_of(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        choices: Vec<Choice>,
        #[serde(default)]
        stop_reason: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Choice {
        #[serde(default)]
        finish_reason: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(body) => body
            .choices
            .into_iter()
            .filter_map(|choice| choice.finish_reason)
            .chain(body.stop_reason)
            .collect(),
        Err(_) => Vec::new(),
    }
}

impl Trace {
    /// Notes that stage `name` ran from `from` until now.
    pub fn stage(&mut self, name: &'static str, from: Instant) {
        self.stages.push((name, from, Instant::now()));
    }
}

/// A W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`), if well formed.
fn parse_traceparent(text: &str) -> Option<SpanContext> {
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
    let trace = TraceId::from_hex(trace)
        .ok()
        .filter(|id| *id != TraceId::INVALID)?;
    let span = SpanId::from_hex(span)
        .ok()
        .filter(|id| *id != SpanId::INVALID)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(SpanContext::new(
        trace,
        span,
        TraceFlags::new(flags & 1),
        true,
        TraceState::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_read_as_the_w3c_spec_writes_it() {
        let parent = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            .unwrap_or_else(|| panic!("valid"));
        assert_eq!(
            parent.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert!(parent.is_sampled() && parent.is_remote());
        let unsampled =
            parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
        assert!(unsampled.is_some_and(|parent| !parent.is_sampled()));
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
