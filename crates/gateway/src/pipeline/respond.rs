//! Answers into responses, in the client's dialect: a whole answer as JSON, a stream as SSE
//! through the one stream pump, and an error in the client's error shape. The request ends here
//! ([`Ctx::finish`]) for whole answers and errors; a stream carries its context with it and
//! ends it when the stream ends or is dropped.
//!
//! The pump takes events from an upstream's stream, a relay or a replay, runs them through the
//! call's taps, and encodes them for the client; a relay's bytes are already in the client's
//! dialect and go out as written (a call with taps is never relayed).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use switchyard_providers::embeddings::openai as embeddings_wire;
use switchyard_providers::{anthropic, openai};
use switchyard_types::{ApiError, ChatRequest, FinishReason, StreamEvent, WireFormat};

use super::hooks::{RelayTap, Step, Tap};
use super::{Answer, Ctx, End, Events, Routing, Whole};
use crate::error::reply as error_body;
use crate::headers;

/// The response for `ctx`'s request: its answer, or its error.
pub fn reply(mut ctx: Ctx, result: Result<Answer, ApiError>) -> Response {
    let (mut response, content_type) = match result {
        Ok(Answer::Whole(whole)) => {
            let body = whole_body(&ctx, whole);
            ctx.finish(End::Complete);
            (Response::new(Body::from(body)), Some("application/json"))
        }
        Ok(Answer::Stream(events)) => {
            // The headers are written before the pump takes the context.
            let mut response = Response::new(Body::empty());
            head(response.headers_mut(), &ctx, Some("text/event-stream"));
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            *response.body_mut() = stream(ctx, events);
            return response;
        }
        Err(error) => {
            let response = error_body(ctx.client_format, &error);
            ctx.finish(End::Failed(error));
            (response, None)
        }
    };
    head(response.headers_mut(), &ctx, content_type);
    response
}

/// The headers every answer carries: request id, routing record, content type.
fn head(headers: &mut HeaderMap, ctx: &Ctx, content_type: Option<&'static str>) {
    // Room for every header below, made once: the map would otherwise grow (and rehash) twice
    // or three times on the way to a keyed call's fifteen.
    let cost = if ctx.cost.is_some() { 3 } else { 0 };
    let quota = if ctx.quota.is_some() { 6 } else { 0 };
    let cache = if ctx.cache.is_some() { 4 } else { 0 };
    headers.reserve(7 + cost + quota + cache);
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    routed_by(headers, &ctx.route);
    accounted(headers, ctx);
    if let Some(quota) = &ctx.quota {
        rate_limit_headers(headers, quota);
    }
    if let Some(call) = &ctx.cache {
        super::cache::headers(headers, call);
    }
    if let Ok(id) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert(headers::REQUEST_ID.clone(), id);
    }
}

/// The bytes of a whole answer for the client.
fn whole_body(ctx: &Ctx, whole: Whole) -> Bytes {
    match whole {
        Whole::Raw { body, .. } => body,
        Whole::Chat(response) => Bytes::from(match ctx.client_format {
            WireFormat::OpenAi => openai::response::encode(&response),
            WireFormat::Anthropic => anthropic::response::encode(&response),
        }),
        Whole::Embeddings(response) => {
            let encoding = ctx
                .embeddings()
                .map(|request| request.encoding)
                .unwrap_or_default();
            Bytes::from(embeddings_wire::encode_response(&response, encoding))
        }
    }
}

/// The routing record as response headers: the deployment that served the call, how many
/// attempts it took, and the fallback group used.
pub(crate) fn routed_by(headers: &mut HeaderMap, route: &Routing) {
    if let Some(value) = route.deployment.as_ref().and_then(|label| label.header()) {
        headers.insert(headers::DEPLOYMENT.clone(), value.clone());
    }
    if route.attempts > 0 {
        let attempts = match route.attempts {
            1 => HeaderValue::from_static("1"),
            2 => HeaderValue::from_static("2"),
            3 => HeaderValue::from_static("3"),
            more => HeaderValue::from(more),
        };
        headers.insert(headers::ATTEMPTS.clone(), attempts);
    }
    if let Some(value) = route
        .fallback
        .as_deref()
        .and_then(|group| HeaderValue::from_str(group).ok())
    {
        headers.insert(headers::FALLBACK.clone(), value);
    }
}

/// The call's cost and tokens (whole answers: a stream's are known only at its end) and the
/// gateway's own time on it so far, for calls that reached a provider. The values are written
/// into one buffer that each header holds a slice of: one allocation for all four.
fn accounted(headers: &mut HeaderMap, ctx: &Ctx) {
    use std::fmt::Write as _;
    if ctx.route.attempts == 0 {
        return;
    }
    let overhead = ctx
        .route
        .received_at
        .elapsed()
        .saturating_sub(ctx.route.upstream_wait);
    let mut text = String::with_capacity(64);
    let mut number = itoa::Buffer::new();
    text.push_str(number.format(u64::try_from(overhead.as_micros()).unwrap_or(u64::MAX)));
    let mut ends = [text.len(), 0, 0, 0];
    if let Some(cost) = &ctx.cost {
        let _ = write!(text, "{}", cost.total);
        ends[1] = text.len();
        text.push_str(number.format(ctx.usage.prompt_tokens));
        ends[2] = text.len();
        text.push_str(number.format(ctx.usage.completion_tokens));
        ends[3] = text.len();
    }
    let all = Bytes::from(text);
    let mut start = 0;
    for (name, end) in [
        &headers::OVERHEAD,
        &headers::COST,
        &headers::PROMPT_TOKENS,
        &headers::COMPLETION_TOKENS,
    ]
    .into_iter()
    .zip(ends)
    {
        if end == 0 {
            break;
        }
        if let Ok(value) = HeaderValue::from_maybe_shared(all.slice(start..end)) {
            headers.insert(name.clone(), value);
        }
        start = end;
    }
}

/// OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, for the tightest request
/// and token limits of the caller.
fn rate_limit_headers(headers: &mut HeaderMap, quota: &crate::governance::limits::Quota) {
    use http::HeaderName;
    const REQUESTS: [HeaderName; 3] = [
        HeaderName::from_static("x-ratelimit-limit-requests"),
        HeaderName::from_static("x-ratelimit-remaining-requests"),
        HeaderName::from_static("x-ratelimit-reset-requests"),
    ];
    const TOKENS: [HeaderName; 3] = [
        HeaderName::from_static("x-ratelimit-limit-tokens"),
        HeaderName::from_static("x-ratelimit-remaining-tokens"),
        HeaderName::from_static("x-ratelimit-reset-tokens"),
    ];
    // Every value is written into one buffer, and each header holds a slice of it: one
    // allocation for all six.
    let mut text = String::with_capacity(96);
    let mut ends = [0usize; 6];
    for (index, value) in [quota.requests, quota.tokens].into_iter().enumerate() {
        let Some((limit, remaining, reset)) = value else {
            continue;
        };
        let mut number = itoa::Buffer::new();
        text.push_str(number.format(limit));
        ends[index * 3] = text.len();
        text.push_str(number.format(remaining));
        ends[index * 3 + 1] = text.len();
        reset_text(&mut text, reset);
        ends[index * 3 + 2] = text.len();
    }
    let all = Bytes::from(text);
    let mut start = 0;
    for (index, name) in REQUESTS.into_iter().chain(TOKENS).enumerate() {
        let end = ends[index];
        if end == 0 {
            continue;
        }
        if let Ok(value) = HeaderValue::from_maybe_shared(all.slice(start..end)) {
            headers.insert(name, value);
        }
        start = end;
    }
}

/// Appends a reset time as OpenAI writes it: `20ms`, `1.5s`, `6m0s`.
fn reset_text(text: &mut String, reset: std::time::Duration) {
    use std::fmt::Write;
    let ms = reset.as_millis();
    if ms < 1000 {
        let _ = write!(text, "{ms}ms");
        return;
    }
    let (minutes, seconds, millis) = (ms / 60_000, ms % 60_000 / 1000, ms % 1000);
    if minutes > 0 {
        let _ = write!(text, "{minutes}m");
    }
    let _ = write!(text, "{seconds}");
    if millis > 0 {
        let _ = write!(text, ".{millis:03}");
        while text.ends_with('0') {
            text.pop();
        }
    }
    text.push('s');
}

/// A stream's body: the pump, which owns `ctx` until the stream ends.
fn stream(mut ctx: Ctx, events: Box<Events>) -> Body {
    ctx.streamed = true;
    let mut taps = std::mem::take(&mut ctx.taps);
    // A relay's bytes are already in the client's dialect: no encoder to build; its tap (the
    // call was relayed only if its one tap reads relayed streams) reads them as they are.
    let mut relay_tap = None;
    if matches!(&*events, Events::Relay { .. }) && !taps.is_empty() {
        relay_tap = taps.first().and_then(|tap| tap.relayed());
        taps.clear();
    }
    let encoder = match &*events {
        Events::Relay { .. } => None,
        Events::Upstream { .. } | Events::Replay(_) => ctx
            .chat()
            .map(|request| Box::new(Encoder::new(ctx.client_format, request))),
    };
    let choices = ctx
        .chat()
        .map_or(1, |request| request.n.unwrap_or(1).max(1));
    let pump = Pump {
        events,
        encoder,
        taps,
        relay_tap,
        choices,
        finished_choices: 0,
        done: false,
        begun: false,
        ctx,
    };
    // Dropping the body (the client went away) drops the pump, which drops the upstream stream
    // (closing the upstream connection: the provider stops generating) and the context (which
    // ends the request as disconnected).
    let body = futures_util::stream::unfold(pump, |mut pump| async move {
        let bytes = pump.next_bytes().await?;
        Some((Ok::<_, Infallible>(bytes), pump))
    });
    Body::from_stream(body)
}

/// A stream in flight.
struct Pump {
    events: Box<Events>,
    /// The client's encoder (none for a relay, whose bytes need none).
    encoder: Option<Box<Encoder>>,
    taps: Vec<Box<dyn Tap>>,
    /// The tap on a relayed stream (the output guards).
    relay_tap: Option<Box<dyn RelayTap>>,
    /// Choices the answer has (`n`).
    choices: u32,
    /// Choices that got their finish event (one bit each, the first 64).
    finished_choices: u64,
    /// The stream ended (and the request with it).
    done: bool,
    /// The first upstream chunk went through.
    begun: bool,
    ctx: Ctx,
}

impl Pump {
    /// The next bytes for the client, or `None` when the stream is over. Everything one
    /// upstream chunk carried leaves as one chunk: forwarded as it arrives, without a write per
    /// event.
    async fn next_bytes(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if let Events::Relay { first, rest } = &mut *self.events {
            if self.relay_tap.is_none() {
                if !first.is_empty() {
                    let first = std::mem::take(first);
                    self.ctx.cache_bytes(&first);
                    return Some(Bytes::from(first));
                }
                let ended = match rest.next(&mut out).await {
                    Some(Ok(())) => None,
                    Some(Err(error)) => {
                        rest.write_error(&error, &mut out);
                        Some(End::Failed(error))
                    }
                    None => Some(End::Complete),
                };
                self.ctx.usage = rest.usage();
                self.ctx.content_events = rest.content_events();
                self.ctx.cache_bytes(&out);
                if let Some(end) = ended {
                    self.end(end);
                }
            } else {
                // Until something may go out: the tap may hold a whole upstream chunk back.
                while out.is_empty() && !self.done {
                    self.relay_read(&mut out).await;
                }
            }
        } else {
            if !self.begun {
                self.begun = true;
                self.first_batch(&mut out).await;
            }
            while out.is_empty() && !self.done {
                let event = self.next_event().await;
                self.translate(event, &mut out);
                while !self.done {
                    let Some(event) = self.next_buffered() else {
                        break;
                    };
                    self.translate(Some(Ok(event)), &mut out);
                }
            }
        }
        if out.is_empty() && self.done {
            return None;
        }
        Some(Bytes::from(out))
    }

    /// The next upstream chunk of a relayed stream through its tap: what the tap lets out, and
    /// at the end what it held, then the end (the dialect's `content_filter` end if it
    /// stopped the stream, the error event if the upstream failed).
    async fn relay_read(&mut self, out: &mut Vec<u8>) {
        let (Events::Relay { first, rest }, Some(tap)) = (&mut *self.events, &mut self.relay_tap)
        else {
            return;
        };
        let mut bytes = std::mem::take(first);
        let ended = if bytes.is_empty() {
            match rest.next(&mut bytes).await {
                Some(Ok(())) => None,
                Some(Err(error)) => Some(End::Failed(error)),
                None => Some(End::Complete),
            }
        } else {
            None
        };
        self.ctx.usage = rest.usage();
        self.ctx.content_events = rest.content_events();
        let marks = rest.take_marks();
        let mut step = tap.events(&mut self.ctx, &bytes, marks, out);
        if step == Step::Continue && ended.is_some() {
            step = tap.end(&mut self.ctx, out);
        }
        if step == Step::Stop {
            self.ctx.cache_spoiled();
            rest.write_filtered_end(tap.sent(), self.choices, out);
            self.end(End::Complete);
            return;
        }
        self.ctx.cache_bytes(out);
        match ended {
            Some(End::Failed(error)) => {
                rest.write_error(&error, out);
                self.end(End::Failed(error));
            }
            Some(end) => self.end(end),
            None => {}
        }
    }

    /// The events of the upstream's first chunk, usage first: a dialect that opens its stream
    /// with the prompt's size (Anthropic's `message_start`) then reports it when the upstream
    /// put it in its first chunk (Gemini does, on every chunk) rather than zero.
    async fn first_batch(&mut self, out: &mut Vec<u8>) {
        let Some(first) = self.next_event().await else {
            self.translate(None, out);
            return;
        };
        let mut batch = vec![first];
        while let Some(event) = self.next_buffered() {
            batch.push(Ok(event));
        }
        batch.sort_by_key(|event| !matches!(event, Ok(StreamEvent::Usage(_))));
        for event in batch {
            if self.done {
                break;
            }
            self.translate(Some(event), out);
        }
    }

    /// The next event of a decoded stream, waiting for it if need be.
    async fn next_event(&mut self) -> Option<Result<StreamEvent, ApiError>> {
        match &mut *self.events {
            Events::Upstream { first, rest } => match first.take() {
                Some(event) => Some(Ok(event)),
                None => rest.next().await,
            },
            Events::Replay(events) => events.next().map(Ok),
            Events::Relay { .. } => None,
        }
    }

    /// The next event already decoded, without waiting.
    fn next_buffered(&mut self) -> Option<StreamEvent> {
        match &mut *self.events {
            Events::Upstream { rest, .. } => rest.next_buffered(),
            // A replay is all in hand: it leaves in one chunk.
            Events::Replay(events) => events.next(),
            Events::Relay { .. } => None,
        }
    }

    /// One upstream event (or the end, or an error) through the taps and out to the client.
    fn translate(&mut self, event: Option<Result<StreamEvent, ApiError>>, out: &mut Vec<u8>) {
        match event {
            Some(Ok(event)) => {
                // Usage is what the upstream reported, whatever the taps make of the event.
                match &event {
                    StreamEvent::Usage(reported) => self.ctx.usage.merge(reported),
                    StreamEvent::Delta { .. } => self.ctx.content_events += 1,
                    StreamEvent::Finish { reason, .. } => {
                        if let Some(trace) = &mut self.ctx.trace {
                            trace.finish_reasons.push(reason.clone());
                        }
                    }
                    StreamEvent::Start { .. } => {}
                }
                if self.taps.is_empty() {
                    self.emit(&event, out);
                    return;
                }
                let (events, step) = through_taps(&mut self.taps, &mut self.ctx, vec![event]);
                for event in &events {
                    self.emit(event, out);
                }
                if step == Step::Stop {
                    self.stop(out);
                }
            }
            Some(Err(error)) => {
                if let Some(encoder) = &mut self.encoder {
                    encoder.error(&error, out);
                }
                self.end(End::Failed(error));
            }
            None => {
                // The upstream ended: each tap sees what the taps before it released, then
                // releases what it held back.
                let mut held = Vec::new();
                let mut stopped = false;
                for index in 0..self.taps.len() {
                    if !held.is_empty() {
                        let (passed, step) = through_taps(
                            &mut self.taps[index..=index],
                            &mut self.ctx,
                            std::mem::take(&mut held),
                        );
                        held = passed;
                        stopped |= step == Step::Stop;
                    }
                    self.taps[index].end(&mut self.ctx, &mut held);
                }
                for event in &held {
                    self.emit(event, out);
                }
                if stopped {
                    self.stop(out);
                    return;
                }
                if let Some(encoder) = &mut self.encoder {
                    encoder.finish(out);
                }
                self.end(End::Complete);
            }
        }
    }

    /// Encodes one event for the client.
    fn emit(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if let StreamEvent::Finish { choice, .. } = event
            && *choice < 64
        {
            self.finished_choices |= 1 << choice;
        }
        if self.ctx.cache.is_some() {
            self.ctx.cache_event(event);
        }
        if let Some(encoder) = &mut self.encoder {
            encoder.encode(event, out);
        }
    }

    /// A tap ended the stream: every choice still open finishes with `content_filter`, and
    /// the stream ends as the dialect ends one. The upstream is closed when the pump drops.
    fn stop(&mut self, out: &mut Vec<u8>) {
        self.ctx.cache_spoiled();
        for choice in 0..self.choices.min(64) {
            if self.finished_choices & (1 << choice) == 0 {
                let finish = StreamEvent::Finish {
                    choice,
                    reason: FinishReason::ContentFilter,
                    stop_sequence: None,
                };
                self.emit(&finish, out);
            }
        }
        if let Some(encoder) = &mut self.encoder {
            encoder.finish(out);
        }
        self.end(End::Complete);
    }

    fn end(&mut self, end: End) {
        self.done = true;
        self.ctx.finish(end);
    }
}

/// `events` through `taps` in order; whether one of them stopped the stream (the taps after it
/// still see what it let through).
fn through_taps(
    taps: &mut [Box<dyn Tap>],
    ctx: &mut Ctx,
    mut events: Vec<StreamEvent>,
) -> (Vec<StreamEvent>, Step) {
    let mut step = Step::Continue;
    for tap in taps {
        let mut next = Vec::with_capacity(events.len());
        for event in events {
            if tap.event(ctx, event, &mut next) == Step::Stop {
                step = Step::Stop;
                break;
            }
        }
        events = next;
    }
    (events, step)
}

/// The client's stream encoder.
enum Encoder {
    OpenAi(openai::stream::Encoder),
    Anthropic(anthropic::stream::Encoder),
}

impl Encoder {
    fn new(format: WireFormat, request: &ChatRequest) -> Encoder {
        match format {
            WireFormat::OpenAi => Encoder::OpenAi(openai::stream::Encoder::new(request)),
            WireFormat::Anthropic => Encoder::Anthropic(anthropic::stream::Encoder::new(request)),
        }
    }

    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match self {
            Encoder::OpenAi(encoder) => encoder.encode(event, out),
            Encoder::Anthropic(encoder) => encoder.encode(event, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Encoder::OpenAi(encoder) => encoder.finish(out),
            Encoder::Anthropic(encoder) => encoder.finish(out),
        }
    }

    fn error(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        match self {
            Encoder::OpenAi(encoder) => encoder.error(error, out),
            Encoder::Anthropic(encoder) => encoder.error(error, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reset_text;
    use std::time::Duration;

    #[test]
    fn reset_times_read_as_openai_writes_them() {
        for (ms, text) in [
            (0, "0ms"),
            (20, "20ms"),
            (1000, "1s"),
            (1500, "1.5s"),
            (12_345, "12.345s"),
            (360_000, "6m0s"),
            (61_200, "1m1.2s"),
        ] {
            let mut written = String::new();
            reset_text(&mut written, Duration::from_millis(ms));
            assert_eq!(written, text);
        }
    }
}
