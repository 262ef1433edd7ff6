//! The cache stage: after the input guards and `before_model` hooks (the request is then what
//! would go to the model), before routing. A hit is answered here, whole or replayed as a
//! stream in the client's dialect; a miss goes on, and its answer is kept when the call ends
//! complete (a whole answer as it was sent, a stream gathered as it passed the taps, so only
//! what passed the output guards is ever kept; one they stopped is not).
//!
//! Per request: the standard `Cache-Control` request directives (`no-cache`: do not answer
//! from the cache, `no-store`: do not keep the answer, `max-age=N`: no answer older than N
//! seconds, `only-if-cached`: a 504 rather than a call to the model), `x-switchyard-cache:
//! off` (neither), `x-switchyard-cache-ttl` (seconds, up to `cache.max_ttl_secs`) and
//! `x-switchyard-cache-namespace`. Answers carry `x-switchyard-cache: hit|miss|bypass`, the
//! key, and `age` on a hit.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, header};
use switchyard_types::{ApiError, ChatRequest, ContentPart, ErrorKind, Origin, Role, StreamEvent};
use tokio::time::Instant;

use super::{Answer, Ctx, End, Events, Kind, Whole};
use crate::cache::entry::{Entry, FORMAT, Gather, Stored};
use crate::cache::key::{self, Key, Scope};
use crate::cache::semantic::verify;
use crate::cache::{Cache, Captured, Flight, Join, Meaning, Semantic, Settings, Write};
use crate::config::CacheScope;

/// `off` (no lookup, nothing kept) or `refresh` (no lookup; the new answer is kept).
pub static CACHE: HeaderName = HeaderName::from_static("x-switchyard-cache");
/// How long to keep this call's answer, seconds.
pub static CACHE_TTL: HeaderName = HeaderName::from_static("x-switchyard-cache-ttl");
/// The namespace this call's answers are looked up and kept in.
pub static CACHE_NAMESPACE: HeaderName = HeaderName::from_static("x-switchyard-cache-namespace");
/// The call's cache key (hex), on answers.
pub static CACHE_KEY: HeaderName = HeaderName::from_static("x-switchyard-cache-key");
/// A semantic hit's similarity to the request it was kept for.
pub static CACHE_SIMILARITY: HeaderName = HeaderName::from_static("x-switchyard-cache-similarity");

/// The longest last user message answered by meaning, bytes (a longer one is compared
/// exactly only).
const MAX_QUESTION_BYTES: usize = 2048;

/// A namespace's length, at most.
const MAX_NAMESPACE: usize = 64;

/// What became of the call at the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered from it.
    Hit,
    /// Not in it: the model answers (and the answer may be kept).
    Miss,
    /// The request asked to leave the cache out.
    Bypass,
}

impl Outcome {
    /// As `x-switchyard-cache` and `/metrics` say it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Bypass => "bypass",
        }
    }
}

/// What the request asks of the cache.
#[derive(Debug, Clone, Default)]
struct Controls {
    skip_lookup: bool,
    skip_store: bool,
    only_if_cached: bool,
    max_age: Option<Duration>,
    ttl: Option<Duration>,
    namespace: Option<String>,
}

/// A call's dealings with the cache.
#[derive(Debug)]
pub struct CacheCall {
    /// Its key.
    pub key: Key,
    /// Hit, miss or bypass.
    pub outcome: Outcome,
    /// The entry that answered it (a hit).
    pub hit: Option<Arc<Entry>>,
    /// A semantic hit's similarity.
    pub similarity: Option<f32>,
    /// Its question's place in the semantic index, for its answer to be found by meaning.
    meaning: Option<Meaning>,
    controls: Controls,
    tenant: String,
    flight: Option<Flight>,
    capture: Option<Capture>,
}

/// The answer being kept, as it passes.
#[derive(Debug)]
enum Capture {
    Whole(Captured),
    Gather(Gather),
    Relay(Vec<u8>),
}

/// The request's cache controls; a malformed one is a 400.
fn controls(headers: &HeaderMap, settings: &Settings) -> Result<Controls, ApiError> {
    let mut controls = Controls::default();
    let refuse = |name: &HeaderName, why: &str| {
        ApiError::invalid_request(format!("{name} {why}"), Some(name.as_str().to_owned()))
    };
    for value in headers.get_all(header::CACHE_CONTROL) {
        let text = value
            .to_str()
            .map_err(|_| refuse(&header::CACHE_CONTROL, "must be ASCII text"))?;
        for directive in text.split(',').map(str::trim) {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive, None),
            };
            match name.to_ascii_lowercase().as_str() {
                "no-cache" => controls.skip_lookup = true,
                "no-store" => controls.skip_store = true,
                "only-if-cached" => controls.only_if_cached = true,
                "max-age" => {
                    let seconds = argument
                        .and_then(|text| text.parse::<u64>().ok())
                        .ok_or_else(|| {
                            refuse(&header::CACHE_CONTROL, "max-age must be whole seconds")
                        })?;
                    controls.max_age = Some(Duration::from_secs(seconds));
                }
                // Directives a cache does not know are ignored (RFC 9111, 5.2.3).
                _ => {}
            }
        }
    }
    if let Some(value) = headers.get(&CACHE) {
        match value.to_str().map(str::trim) {
            Ok("off") => {
                controls.skip_lookup = true;
                controls.skip_store = true;
            }
            Ok("refresh") => controls.skip_lookup = true,
            Ok("on") => {}
            _ => return Err(refuse(&CACHE, "must be `on`, `off` or `refresh`")),
        }
    }
    if let Some(value) = headers.get(&CACHE_TTL) {
        let seconds = value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
            .ok_or_else(|| refuse(&CACHE_TTL, "must be a number of seconds greater than 0"))?;
        controls.ttl = Some(
            Duration::try_from_secs_f64(seconds)
                .unwrap_or(settings.max_ttl)
                .min(settings.max_ttl),
        );
    }
    if let Some(value) = headers.get(&CACHE_NAMESPACE) {
        let namespace = value.to_str().map(str::trim).unwrap_or_default();
        let valid = !namespace.is_empty()
            && namespace.len() <= MAX_NAMESPACE
            && namespace
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._:-/".contains(&byte));
        if !valid {
            return Err(refuse(
                &CACHE_NAMESPACE,
                "must be 1 to 64 letters, digits or . _ : - /",
            ));
        }
        controls.namespace = Some(namespace.to_owned());
    }
    Ok(controls)
}

/// Whose answers the call may be given.
fn tenant(ctx: &Ctx, scope: CacheScope) -> String {
    match (scope, ctx.principal.as_deref()) {
        (CacheScope::Global, _) | (_, None) => String::new(),
        (CacheScope::Team, Some(principal)) => match &principal.team_id {
            Some(team) => format!("team:{team}"),
            None => format!("key:{}", principal.key_id),
        },
        (CacheScope::Key, Some(principal)) => format!("key:{}", principal.key_id),
    }
}

/// The guard policy the call runs under, by name (its output guards shape the answer).
fn policy(ctx: &Ctx) -> &str {
    if ctx.guards_off {
        return "off";
    }
    if ctx.guards.is_none() {
        return "";
    }
    ctx.principal
        .as_deref()
        .and_then(|principal| principal.guard_policy.as_deref())
        .or_else(|| ctx.group.as_ref()?.guard_policy.as_deref())
        .unwrap_or("default")
}

/// Looks the call up: its answer on a hit, `None` to call the model.
pub(super) async fn lookup(ctx: &mut Ctx, headers: &HeaderMap) -> Result<Option<Answer>, ApiError> {
    let Some(cache) = ctx.shared.cache.clone() else {
        return Ok(None);
    };
    let (Some(group), Some(request), Kind::Chat) = (&ctx.group, ctx.chat(), ctx.kind) else {
        return Ok(None);
    };
    if !cache.covers(group.cache) {
        return Ok(None);
    }
    let mut controls = controls(headers, &cache.settings)?;
    if request.stream && !cache.settings.streams {
        controls.skip_store = true;
    }
    let tenant = tenant(ctx, cache.settings.scope);
    let placeholders = ctx
        .vault
        .as_deref()
        .map(switchyard_guard::Vault::pairs)
        .unwrap_or_default();
    let scope = Scope {
        tenant: &tenant,
        group: &group.name,
        namespace: controls.namespace.as_deref(),
        policy: policy(ctx),
        placeholders: &placeholders,
        raw: request.first_unkept().map(|_| &ctx.body.raw[..]),
    };
    let key = key::of(&scope, request);
    // The semantic scope: everything but the question, exactly.
    let semantic = cache.semantic.as_ref().and_then(|semantic| {
        let question = question(request, semantic)?;
        let scope = key::context_of(&Scope { raw: None, ..scope }, request)?;
        Some((Arc::clone(semantic), scope, question))
    });
    let label = Arc::clone(&group.label);
    let mut call = CacheCall {
        key,
        outcome: Outcome::Bypass,
        hit: None,
        similarity: None,
        meaning: None,
        controls,
        tenant,
        flight: None,
        capture: None,
    };
    if !call.controls.skip_lookup {
        if let Some(entry) = find(&cache, &mut call).await {
            return Ok(Some(hit(ctx, call, entry, &label)));
        }
        call.outcome = Outcome::Miss;
    }
    if let Some((semantic, scope, question)) = semantic
        && !(call.controls.skip_lookup && call.controls.skip_store)
    {
        let vector = embed(&semantic, &question).await;
        if let Some(vector) = vector {
            if !call.controls.skip_lookup
                && let Some((entry, similarity)) = by_meaning(
                    ctx.shared.metrics.clone().as_deref(),
                    &cache,
                    &semantic,
                    &scope,
                    &vector,
                    &question,
                    call.controls.max_age,
                )
                .await
            {
                call.similarity = Some(similarity);
                return Ok(Some(hit(ctx, call, entry, &label)));
            }
            call.meaning = Some(Meaning {
                scope,
                vector,
                text: question.into(),
            });
        }
    }
    if let Some(metrics) = &ctx.shared.metrics {
        metrics.cache_lookup(&label, call.outcome.name());
    }
    let only_if_cached = call.controls.only_if_cached;
    ctx.cache = Some(Box::new(call));
    if only_if_cached {
        return Err(ApiError::new(
            ErrorKind::Timeout,
            Origin::Client,
            "The answer is not in the cache (Cache-Control: only-if-cached)",
        )
        .with_code("cache_miss"));
    }
    Ok(None)
}

/// The call's entry, waiting for an identical call in the air to bring it (single flight): a
/// call that finds none leads the flight of its key, unless it keeps nothing.
async fn find(cache: &Cache, call: &mut CacheCall) -> Option<Arc<Entry>> {
    let deadline = Instant::now() + cache.settings.wait;
    loop {
        if let Some(entry) = cache.get(&call.key, call.controls.max_age).await
            && let Some(entry) = cache.ready(&call.key, entry)
        {
            return Some(entry);
        }
        if !cache.settings.single_flight || call.controls.skip_store {
            return None;
        }
        match cache.join(call.key) {
            Join::Lead(flight) => {
                call.flight = Some(flight);
                return None;
            }
            // The leader's answer is written (or it ended without one) when its flight ends:
            // look again; past the wait, call the model too.
            Join::Follow(mut ended) => {
                if tokio::time::timeout_at(deadline, ended.changed())
                    .await
                    .is_err()
                {
                    return None;
                }
            }
        }
    }
}

/// The last user message, when the request may be answered by meaning: no tools, nothing
/// the canonical model cannot hold, one choice, sampled no hotter than allowed, a last message from the user in text alone, short
/// enough for the model to read whole.
fn question(request: &ChatRequest, semantic: &Semantic) -> Option<String> {
    // A block the canonical model keeps only the type of (a document) would leave its content
    // out of the scope: such a request is looked up exactly only.
    if !request.tools.is_empty()
        || request.first_opaque().is_some()
        || request.n.unwrap_or(1) > 1
        || request.temperature.unwrap_or(1.0) > semantic.max_temperature
    {
        return None;
    }
    let last = request.messages.last()?;
    if last.role != Role::User
        || last
            .content
            .iter()
            .any(|part| !matches!(part, ContentPart::Text { .. }))
    {
        return None;
    }
    let text = last.text();
    (!text.trim().is_empty() && text.len() <= MAX_QUESTION_BYTES).then_some(text)
}

/// `question`'s vector, made on the blocking pool (milliseconds of CPU); `None` if the model
/// cannot (then the call is looked up exactly only).
async fn embed(semantic: &Arc<Semantic>, question: &str) -> Option<Vec<f32>> {
    let (embedder, text) = (Arc::clone(&semantic.embedder), question.to_owned());
    match tokio::task::spawn_blocking(move || embedder.embed(&text)).await {
        Ok(Ok(vector)) => Some(vector),
        Ok(Err(error)) => {
            tracing::debug!(%error, "Not looked up by meaning");
            None
        }
        Err(_) => None,
    }
}

/// A kept answer whose question means the same as `question` in `scope`, and its similarity:
/// the most similar candidates above the threshold, each verified, the first whose answer is
/// still kept.
async fn by_meaning(
    metrics: Option<&crate::telemetry::Metrics>,
    cache: &Cache,
    semantic: &Semantic,
    scope: &Key,
    vector: &[f32],
    question: &str,
    max_age: Option<Duration>,
) -> Option<(Arc<Entry>, f32)> {
    for candidate in semantic.index.search(scope, vector, semantic.threshold, 3) {
        if semantic.verify
            && let Err(mismatch) = verify::check(question, &candidate.item.text)
        {
            if let Some(metrics) = metrics {
                metrics.cache_rejected(mismatch.name());
            }
            continue;
        }
        let key = candidate.item.key;
        match cache.get(&key, max_age).await {
            Some(entry) => {
                if let Some(entry) = cache.ready(&key, entry) {
                    return Some((entry, candidate.similarity));
                }
            }
            // Gone from the cache (expired, evicted, invalidated): gone from the index.
            None if max_age.is_none() => semantic.index.remove(scope, &key),
            None => {}
        }
    }
    None
}

/// The call answered with `entry`.
fn hit(ctx: &mut Ctx, mut call: CacheCall, entry: Arc<Entry>, label: &Arc<String>) -> Answer {
    if let Some(metrics) = &ctx.shared.metrics {
        metrics.cache_lookup(
            label,
            if call.similarity.is_some() {
                "semantic_hit"
            } else {
                "hit"
            },
        );
        metrics.cache_saved(label, &entry.answer.usage, entry.cost_nanos);
    }
    let stream = ctx.chat().is_some_and(|request| request.stream);
    let answer = if stream {
        Answer::Stream(Box::new(Events::Replay(entry.answer.events().into_iter())))
    } else {
        Answer::Whole(Whole::Chat(entry.answer.response()))
    };
    call.outcome = Outcome::Hit;
    call.hit = Some(entry);
    ctx.cache = Some(Box::new(call));
    answer
}

/// Gets ready to keep the answer of a call that missed: a whole one now, a stream as it
/// passes.
pub(super) fn capture(ctx: &mut Ctx, answer: &Answer) {
    let Some(call) = ctx.cache.as_deref_mut() else {
        return;
    };
    if call.outcome == Outcome::Hit || call.controls.skip_store {
        return;
    }
    let limit = ctx
        .shared
        .cache
        .as_ref()
        .map_or(0, |cache| cache.settings.max_entry_bytes);
    call.capture = match answer {
        Answer::Whole(Whole::Chat(response)) => {
            Some(Capture::Whole(Captured::Response(response.clone())))
        }
        Answer::Whole(Whole::Raw { body, .. }) if body.len() <= limit => {
            Some(Capture::Whole(Captured::Body {
                format: ctx.client_format,
                bytes: body.clone(),
            }))
        }
        Answer::Whole(_) => None,
        Answer::Stream(events) => match **events {
            Events::Relay { .. } => Some(Capture::Relay(Vec::new())),
            Events::Upstream { .. } | Events::Replay(_) => {
                Some(Capture::Gather(Gather::new(limit)))
            }
        },
    };
}

impl Ctx {
    /// A stream event the client got, for the answer being kept.
    pub(super) fn cache_event(&mut self, event: &StreamEvent) {
        if let Some(call) = self.cache.as_deref_mut()
            && let Some(Capture::Gather(gather)) = &mut call.capture
            && !gather.push(event)
        {
            call.capture = None;
        }
    }

    /// Relayed stream bytes the client got, for the answer being kept.
    pub(super) fn cache_bytes(&mut self, bytes: &[u8]) {
        let limit = self
            .shared
            .cache
            .as_ref()
            .map_or(0, |cache| cache.settings.max_entry_bytes);
        if let Some(call) = self.cache.as_deref_mut()
            && let Some(Capture::Relay(kept)) = &mut call.capture
        {
            if kept.len() + bytes.len() > limit.saturating_mul(2) {
                call.capture = None;
            } else {
                kept.extend_from_slice(bytes);
            }
        }
    }

    /// A tap stopped the stream: its answer is not kept.
    pub(super) fn cache_spoiled(&mut self) {
        if let Some(call) = self.cache.as_deref_mut() {
            call.capture = None;
        }
    }

    /// Whether the call was answered from the cache.
    pub fn cache_hit(&self) -> bool {
        self.cache
            .as_deref()
            .is_some_and(|call| call.outcome == Outcome::Hit)
    }

    /// The request ended: a complete answer is queued to be kept; otherwise its flight ends
    /// here (followers look again, then call the model).
    pub(super) fn cache_ended(&mut self, end: &End) {
        let Some(call) = self.cache.as_deref_mut() else {
            return;
        };
        let (capture, flight) = (call.capture.take(), call.flight.take());
        let (End::Complete, Some(capture), Some(cache)) = (end, capture, &self.shared.cache) else {
            return;
        };
        let answer = match capture {
            Capture::Whole(captured) => captured,
            Capture::Gather(gather) => Captured::Response(gather.finish()),
            Capture::Relay(bytes) => Captured::Stream {
                format: self.client_format,
                bytes,
            },
        };
        let principal = self.principal.as_deref();
        let mut tags = principal.map(|p| p.tags.clone()).unwrap_or_default();
        for tag in &self.tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        let ttl = call
            .controls
            .ttl
            .unwrap_or(cache.settings.ttl)
            .min(cache.settings.max_ttl);
        let write = Write {
            key: call.key,
            meta: Entry {
                format: FORMAT,
                stored_at: u64::try_from(switchyard_store::now_ms()).unwrap_or(0),
                expires_at: 0,
                tenant: std::mem::take(&mut call.tenant),
                team: principal.and_then(|p| p.team_id.clone()),
                group: self
                    .group
                    .as_ref()
                    .map_or_else(String::new, |group| group.name.clone()),
                namespace: call.controls.namespace.clone(),
                tags,
                cost_nanos: self.cost.map_or(0, |cost| cost.total.nanos()),
                answer: Stored::default(),
                relayed: None,
            },
            ttl,
            answer,
            usage: self.usage,
            flight,
            meaning: call.meaning.take(),
        };
        cache.put(write);
    }
}

/// The cache's headers on an answer.
pub(super) fn headers(headers: &mut HeaderMap, call: &CacheCall) {
    headers.insert(CACHE.clone(), HeaderValue::from_static(call.outcome.name()));
    if let Ok(key) = HeaderValue::from_str(&call.key.hex()) {
        headers.insert(CACHE_KEY.clone(), key);
    }
    if let Some(entry) = &call.hit {
        headers.insert(
            header::AGE,
            HeaderValue::from(crate::cache::age_of(entry).as_secs()),
        );
    }
    if let Some(similarity) = call.similarity
        && let Ok(value) = HeaderValue::from_str(&format!("{similarity:.3}"))
    {
        headers.insert(CACHE_SIMILARITY.clone(), value);
    }
}
