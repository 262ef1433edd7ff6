//! The gateway's own header names, built once: a name given as text is parsed (and a custom
//! one allocated) on every use.

use axum::http::HeaderName;

/// The request's id, echoed on every answer.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The caller's time limit in seconds.
pub static TIMEOUT: HeaderName = HeaderName::from_static("x-switchyard-timeout");
/// The caller's own provider key.
pub static PROVIDER_KEY: HeaderName = HeaderName::from_static("x-switchyard-provider-key");
/// `off` disables fallback groups for the request.
pub static FALLBACKS: HeaderName = HeaderName::from_static("x-switchyard-fallbacks");
/// The deployment that served the call.
pub static DEPLOYMENT: HeaderName = HeaderName::from_static("x-switchyard-deployment");
/// Upstream calls made.
pub static ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
/// The fallback group that served the call.
pub static FALLBACK: HeaderName = HeaderName::from_static("x-switchyard-fallback");
/// Tags recorded with the call's spend (comma-separated).
/// `off` turns the guards off for one request (keys an admin granted `guards_opt_out` only).
pub static GUARDS: HeaderName = HeaderName::from_static("x-switchyard-guards");
/// Comma-separated tags for the call's spend record.
pub static TAGS: HeaderName = HeaderName::from_static("x-switchyard-tags");
/// What the call cost, in US dollars.
pub static COST: HeaderName = HeaderName::from_static("x-switchyard-cost-usd");
/// The call's input tokens.
pub static PROMPT_TOKENS: HeaderName = HeaderName::from_static("x-switchyard-prompt-tokens");
/// The call's output tokens.
pub static COMPLETION_TOKENS: HeaderName =
    HeaderName::from_static("x-switchyard-completion-tokens");
/// The gateway's own time on the call (not spent waiting on providers), microseconds.
pub static OVERHEAD: HeaderName = HeaderName::from_static("x-switchyard-overhead-us");
/// Anthropic's beta features a client opts into, forwarded to Anthropic upstreams.
pub static ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
/// The Anthropic API version a client asks for, forwarded to Anthropic upstreams.
pub static ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
