//! The route stage: which model group, which deployment, how many attempts, which fallbacks.
//!
//! A group is tried with up to `1 + retries` attempts. Each attempt goes to a deployment the
//! group's strategy picks among those not cooling down, avoiding deployments already tried
//! while another is available. Only retryable failures (connection errors, timeouts, 429,
//! 5xx) are retried, after a backoff with full jitter (or the upstream's `Retry-After`) when
//! the same deployment must be tried again, and never past the request's deadline. A stream is
//! retried only until its first byte: `call::once` returns after reading it, and after that the
//! stream belongs to the client. When a group fails, its fallback groups are tried in order:
//! the context-window list for a prompt too long, the content-policy list for a refusal, the
//! general list for everything else retryable.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchyard_types::{ApiError, ErrorKind, MAX_QUOTED, Origin, clip};
use tokio::time::Instant;

use switchyard_providers::Limits;
use switchyard_types::ChatRequest;

use super::Routing;
use crate::router::health::Outcome as Health;
use crate::router::{Deployment, ModelGroup, Pick};
use crate::runtime::Runtime;
use crate::tokens;

/// Tries the `requested` group, then its fallbacks. `ineligible` names the deployments of a
/// group that cannot take the request (context window, the caller's own key); `call` makes one
/// attempt on the deployment at an index of a group.
pub async fn run<T, Fut>(
    runtime: &Runtime,
    route: &mut Routing,
    requested: Arc<ModelGroup>,
    mut ineligible: impl FnMut(&ModelGroup) -> Result<Vec<usize>, ApiError>,
    call: impl Fn(Arc<ModelGroup>, usize, Limits) -> Fut,
) -> Result<T, ApiError>
where
    Fut: Future<Output = Result<T, ApiError>>,
{
    let limit = route.timeout.unwrap_or(runtime.routing.max_timeout);
    let deadline = route.received_at + limit;
    let mut rng = fastrand::Rng::new();
    // Fallback groups still to try, in order, and those tried; empty (unallocated) unless the
    // requested group fails.
    let mut queue: Vec<Arc<ModelGroup>> = Vec::new();
    let mut last_error = None;
    let mut next = 0;
    let mut current = Some(Arc::clone(&requested));
    while let Some(group) = current.take() {
        let attempt = match ineligible(&group) {
            Ok(excluded) => {
                attempt_group(runtime, route, &group, &excluded, deadline, &mut rng, &call).await
            }
            Err(error) => Err(error),
        };
        match attempt {
            Ok(outcome) => {
                if group.name != requested.name {
                    route.fallback = Some(group.name.clone());
                }
                route.group = Some(group);
                return Ok(outcome);
            }
            Err(error) => {
                if route.fallbacks_allowed && Instant::now() < deadline {
                    for name in fallbacks_for(&group, &error) {
                        if let Some(fallback) = runtime.group(name)
                            && fallback.name != requested.name
                            && !queue.iter().any(|queued| queued.name == fallback.name)
                        {
                            queue.push(Arc::clone(fallback));
                        }
                    }
                }
                last_error = Some(error);
            }
        }
        current = queue.get(next).cloned();
        next += 1;
    }
    Err(last_error.unwrap_or_else(|| model_not_found(&requested.name)))
}

/// The fallback list that applies to `error`, empty when none does.
fn fallbacks_for<'a>(group: &'a ModelGroup, error: &ApiError) -> &'a [String] {
    if is_context_window(error) {
        &group.context_window_fallbacks
    } else if is_content_policy(error) {
        &group.content_policy_fallbacks
    } else if error.retryable() {
        &group.fallbacks
    } else {
        &[]
    }
}

/// Attempts `group` until an answer, a non-retryable error, the retry budget or the deadline.
async fn attempt_group<T, Fut>(
    runtime: &Runtime,
    route: &mut Routing,
    group: &Arc<ModelGroup>,
    excluded: &[usize],
    deadline: Instant,
    rng: &mut fastrand::Rng,
    call: &impl Fn(Arc<ModelGroup>, usize, Limits) -> Fut,
) -> Result<T, ApiError>
where
    Fut: Future<Output = Result<T, ApiError>>,
{
    // Which deployments were tried, kept only when there is a choice to steer.
    let mut tried: Vec<usize> = Vec::new();
    let mut last_error: Option<ApiError> = None;
    for attempt in 0..=group.retries {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let (index, deployment, health) = match group.pick(now, excluded, &tried, rng) {
            Pick::Call(index, deployment, health) => (index, deployment, health),
            Pick::AllCooling(back_in) => {
                return Err(last_error.unwrap_or_else(|| all_cooling(group, back_in)));
            }
        };
        if group.deployments.len() > 1 {
            tried.push(index);
        }
        route.attempts += 1;
        route.deployment = Some(deployment.label.clone());
        route.price = Some(Arc::clone(&deployment.price));
        route.provider = Some(deployment.genai_provider);
        let limits = deployment.upstream.limits(now, Some(deadline - now));
        // Boxed: the call's state (request encoding, the upstream exchange) would otherwise be
        // copied into every enclosing future, and those are moved on each poll setup.
        let outcome = Box::pin(call(Arc::clone(group), index, limits)).await;
        route.upstream_wait += now.elapsed();
        if let Some(spans) = &mut route.attempt_spans {
            spans.push(crate::telemetry::traces::AttemptSpan {
                deployment: deployment.label.clone(),
                provider: deployment.genai_provider,
                span: (now, Instant::now()),
                error: outcome
                    .as_ref()
                    .err()
                    .map(|error| (error.kind.status(), error.message.clone())),
            });
        }
        let error = match outcome {
            Ok(outcome) => {
                let done = Instant::now();
                health.finish(Health::Success(done - now), done);
                return Ok(outcome);
            }
            Err(error) => error,
        };
        // Only the upstream's own trouble counts against its health; a request it rightly
        // refused (400, 404, ...) does not, nor what the caller brought on itself (a rate
        // limit on its own key is the caller's error already; see `call::blame`), such as a
        // time limit of its own that ran out. Otherwise any caller could take a shared
        // deployment out for everyone (and, through Redis, everywhere).
        if error.origin == Origin::Upstream
            && error.retryable()
            && !callers_time_limit(&error, route, now, deadline, deployment)
        {
            let outcome = match error.kind {
                ErrorKind::RateLimited => Health::RateLimited(error.retry_after),
                _ => Health::Failure,
            };
            if let Some(until) = health.finish(outcome, Instant::now()) {
                runtime.health.share_cooldown(&deployment.key, until);
            }
        } else {
            drop(health);
        }
        if !error.retryable() {
            return Err(error);
        }
        // Every deployment has had its turn once `attempt + 1` calls were made.
        let retry_same = attempt as usize + 1 >= group.deployments.len();
        if attempt < group.retries && retry_same {
            let delay = backoff(runtime, attempt, error.retry_after, rng);
            if Instant::now() + delay >= deadline {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
        }
        last_error = Some(error);
    }
    Err(last_error.unwrap_or_else(|| {
        ApiError::upstream(
            ErrorKind::Timeout,
            "The request ran out of time before an answer",
        )
        .with_code("upstream_timeout")
    }))
}

/// Whether `error` from `deployment` is the caller's own time limit running out: the call's
/// deadline came from `x-switchyard-timeout`, before the deployment's own.
fn callers_time_limit(
    error: &ApiError,
    route: &Routing,
    started: Instant,
    deadline: Instant,
    deployment: &Deployment,
) -> bool {
    error.kind == ErrorKind::Timeout
        && route.timeout.is_some()
        && deadline < started + deployment.upstream.timeouts.total
        && Instant::now() >= deadline
}

/// The deployments of `group` that cannot take the request: with the caller's own key
/// (`own_key`), those that do not accept one; for a chat `prompt`, those whose input limit it
/// exceeds. An error when that is all of them. The prompt is counted only when its byte length
/// does not already prove it fits, and then once per request.
pub fn ineligible(
    group: &ModelGroup,
    prompt: Option<(&ChatRequest, &mut Option<u64>)>,
    own_key: bool,
) -> Result<Vec<usize>, ApiError> {
    let mut excluded = Vec::new();
    let mut too_small = 0;
    let mut prompt_tokens = None;
    if let Some((request, counted)) = prompt {
        for (index, deployment) in group.deployments.iter().enumerate() {
            if own_key && !deployment.allow_client_key {
                excluded.push(index);
                continue;
            }
            let Some(limit) = deployment.max_input_tokens else {
                continue;
            };
            if tokens::upper_bound(request) <= limit {
                continue;
            }
            let count = *counted.get_or_insert_with(|| tokens::count(request));
            prompt_tokens = Some(count);
            if count > limit {
                excluded.push(index);
                too_small += 1;
            }
        }
    } else if own_key {
        excluded.extend(
            (0..group.deployments.len())
                .filter(|index| !group.deployments[*index].allow_client_key),
        );
    }
    if excluded.len() < group.deployments.len() {
        return Ok(excluded);
    }
    if too_small > 0 {
        return Err(prompt_too_long(prompt_tokens.unwrap_or_default(), group));
    }
    Err(ApiError::new(
        ErrorKind::PermissionDenied,
        Origin::Client,
        format!(
            "Model group `{}` does not take a caller's own provider key (x-switchyard-provider-key); send the request without it",
            group.name
        ),
    )
    .with_code("provider_key_not_allowed"))
}

/// Every deployment of `group` is too small for the prompt: the provider's own
/// context-length error, raised before calling any of them.
fn prompt_too_long(tokens: u64, group: &ModelGroup) -> ApiError {
    let largest = group
        .deployments
        .iter()
        .filter_map(|deployment| deployment.max_input_tokens)
        .max()
        .unwrap_or_default();
    ApiError::new(
        ErrorKind::InvalidRequest,
        Origin::Client,
        format!(
            "The prompt has {tokens} tokens; model group `{}` takes at most {largest}.",
            group.name
        ),
    )
    .with_code("context_length_exceeded")
}

/// The wait before retry number `attempt + 1`: the upstream's `Retry-After` when it gave one,
/// else exponential backoff with full jitter, capped.
fn backoff(
    runtime: &Runtime,
    attempt: u32,
    retry_after: Option<Duration>,
    rng: &mut fastrand::Rng,
) -> Duration {
    let cap = runtime.routing.backoff_max;
    if let Some(wait) = retry_after {
        return wait.min(cap);
    }
    let ceiling = runtime
        .routing
        .backoff
        .saturating_mul(1u32 << attempt.min(16))
        .min(cap);
    ceiling.mul_f64(rng.f64())
}

fn all_cooling(group: &ModelGroup, back_in: Duration) -> ApiError {
    let seconds = back_in.as_secs_f64().ceil().max(1.0);
    let mut error = ApiError::new(
        ErrorKind::Unavailable,
        Origin::Upstream,
        format!(
            "All {} deployment(s) of model group `{}` are cooling down after failures; the first is back in {seconds:.0}s",
            group.deployments.len(),
            group.name
        ),
    )
    .with_code("deployments_cooling_down");
    error.retry_after = Some(Duration::from_secs_f64(seconds));
    error
}

/// The model names no group: OpenAI's 404.
pub(crate) fn model_not_found(model: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        Origin::Client,
        format!(
            "The model `{}` does not exist or you do not have access to it.",
            clip(model, MAX_QUOTED)
        ),
    )
    .with_code("model_not_found")
}

/// A prompt too long for the model, as the providers word it.
fn is_context_window(error: &ApiError) -> bool {
    if error.code.as_deref() == Some("context_length_exceeded") {
        return true;
    }
    let message = error.message.to_ascii_lowercase();
    error.kind == ErrorKind::InvalidRequest
        && (message.contains("context length")
            || message.contains("context window")
            || message.contains("prompt is too long")
            || message.contains("maximum number of tokens"))
}

/// A refusal by the provider's content policy, as the providers word it.
fn is_content_policy(error: &ApiError) -> bool {
    if matches!(
        error.code.as_deref(),
        Some("content_filter" | "content_policy_violation")
    ) {
        return true;
    }
    let message = error.message.to_ascii_lowercase();
    error.kind == ErrorKind::InvalidRequest
        && (message.contains("content policy") || message.contains("content management policy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_context_window_errors_of_each_provider() {
        let openai = ApiError::upstream(
            ErrorKind::InvalidRequest,
            "This model's maximum context length is 8192 tokens.",
        )
        .with_code("context_length_exceeded");
        let anthropic = ApiError::upstream(
            ErrorKind::InvalidRequest,
            "prompt is too long: 210000 tokens > 200000 maximum",
        );
        assert!(is_context_window(&openai));
        assert!(is_context_window(&anthropic));
        assert!(!is_context_window(&ApiError::upstream(
            ErrorKind::InvalidRequest,
            "bad field"
        )));
    }

    #[test]
    fn recognises_content_policy_refusals() {
        let azure = ApiError::upstream(
            ErrorKind::InvalidRequest,
            "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        )
        .with_code("content_filter");
        assert!(is_content_policy(&azure));
        assert!(!is_content_policy(&ApiError::upstream(
            ErrorKind::Internal,
            "boom"
        )));
    }
}
