//! Checks of the control plane's sections: the audit log, the guards and their policies, the
//! hooks and the cache.

use std::collections::HashSet;

use super::{AUDIT_KEY_VAR, ConfigError, Env, error_at};
use crate::config::file::{
    AuditConfig, CacheBackend, CacheConfig, GuardsConfig, ModelConfig, RedisConfig, Secret,
    WebhookConfig,
};

/// The audit section, its signing key taken from the environment when the file has none.
pub(super) fn check_audit(
    mut audit: AuditConfig,
    env: &dyn Env,
    errors: &mut Vec<ConfigError>,
) -> AuditConfig {
    if audit.signing_key.is_none() {
        audit.signing_key = env
            .var(AUDIT_KEY_VAR)
            .filter(|key| !key.trim().is_empty())
            .map(Secret::from);
    }
    if let Some(key) = &audit.signing_key
        && let Err(error) = switchyard_audit::Signer::parse(key.expose())
    {
        // Never the key itself in the message.
        errors.push(error_at("audit.signing_key", error.to_string()));
    }
    if audit.signing_key.is_some() && audit.signing_key_file.is_some() {
        errors.push(error_at(
            "audit.signing_key_file",
            "set either audit.signing_key or audit.signing_key_file, not both",
        ));
    }
    let origin = &audit.origin;
    if origin.is_empty() || origin.contains('+') || origin.chars().any(char::is_whitespace) {
        errors.push(error_at(
            "audit.origin",
            "must be a non-empty name without spaces or '+' (a URL without scheme)",
        ));
    }
    if !(audit.checkpoint_interval_secs.is_finite() && audit.checkpoint_interval_secs >= 0.1) {
        errors.push(error_at(
            "audit.checkpoint_interval_secs",
            "must be at least 0.1",
        ));
    }
    if audit.queue_capacity == 0 {
        errors.push(error_at("audit.queue_capacity", "must be at least 1"));
    }
    audit
}

/// The guards, each named policy (built as the runtime will build them), and the policies
/// model groups name.
pub(super) fn check_guards(
    guards: &GuardsConfig,
    models: &[(usize, ModelConfig, Vec<usize>)],
    errors: &mut Vec<ConfigError>,
) {
    if let Err(problems) = crate::guards::Guards::build(guards) {
        errors.extend(
            problems
                .into_iter()
                .map(|(path, message)| error_at(&path, message)),
        );
    }
    for (name, policy) in &guards.policies {
        let prefix = format!("guards.policies.{name}");
        if !policy.policies.is_empty() {
            errors.push(error_at(
                &format!("{prefix}.policies"),
                "a policy holds no policies",
            ));
        }
        if let Err(problems) = crate::guards::Guards::build(policy) {
            errors.extend(
                problems
                    .into_iter()
                    .map(|(path, message)| error_at(&path.replacen("guards", &prefix, 1), message)),
            );
        }
    }
    for (index, model, _) in models {
        if let Some(policy) = &model.guard_policy
            && !guards.policies.contains_key(policy)
        {
            errors.push(error_at(
                &format!("models[{index}].guard_policy"),
                format!("no policy `{policy}` under guards.policies"),
            ));
        }
    }
}

/// The hooks: unique names, URLs, points, time limits, header names.
pub(super) fn check_hooks(hooks: &[WebhookConfig], errors: &mut Vec<ConfigError>) {
    let mut names = HashSet::new();
    for (index, hook) in hooks.iter().enumerate() {
        let at = |field: &str| format!("hooks[{index}].{field}");
        if hook.name.is_empty() || !names.insert(hook.name.as_str()) {
            errors.push(error_at(&at("name"), "empty, or used twice"));
        }
        if switchyard_providers::http::Target::parse(&hook.url).is_err() {
            errors.push(error_at(&at("url"), "not an http:// or https:// URL"));
        }
        let known = |point: &String| matches!(point.as_str(), "before_model" | "after_model");
        if hook.points.is_empty() || !hook.points.iter().all(known) {
            errors.push(error_at(
                &at("points"),
                "before_model, after_model, or both",
            ));
        }
        if hook.timeout_ms == 0 {
            errors.push(error_at(&at("timeout_ms"), "must be at least 1"));
        }
        for name in hook.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(error_at(
                    &at("headers"),
                    format!("`{name}` is not a header name"),
                ));
            }
        }
    }
}

/// The cache section: times that are times, sizes that hold an answer, Redis where it is asked for.
pub(super) fn check_cache(
    cache: &CacheConfig,
    redis: Option<&RedisConfig>,
    errors: &mut Vec<ConfigError>,
) {
    for (path, seconds) in [
        ("cache.ttl_secs", cache.ttl_secs),
        ("cache.max_ttl_secs", cache.max_ttl_secs),
    ] {
        if !(seconds.is_finite() && seconds > 0.0 && seconds <= 365.0 * 86_400.0) {
            errors.push(error_at(path, "must be more than 0 and at most a year"));
        }
    }
    if cache.ttl_secs > cache.max_ttl_secs {
        errors.push(error_at(
            "cache.ttl_secs",
            "must not be more than cache.max_ttl_secs",
        ));
    }
    if cache.max_entry_bytes < 1024 {
        errors.push(error_at("cache.max_entry_bytes", "must be at least 1024"));
    }
    if cache.backend == CacheBackend::Memory && cache.max_bytes < cache.max_entry_bytes {
        errors.push(error_at(
            "cache.max_bytes",
            "must be at least cache.max_entry_bytes",
        ));
    }
    if cache.redis_timeout_ms == 0 {
        errors.push(error_at("cache.redis_timeout_ms", "must be at least 1"));
    }
    let semantic = &cache.semantic;
    if semantic.enabled {
        if semantic.model_dir.is_some() && !cfg!(feature = "semantic-cache") {
            errors.push(error_at(
                "cache.semantic.model_dir",
                "this build has no local embedder (build with --features semantic-cache, or set embeddings_model)",
            ));
        }
        match (semantic.model_dir.as_deref(), semantic.embeddings_model.as_deref()) {
            (None, None) => errors.push(error_at(
                "cache.semantic",
                "needs model_dir (scripts/fetch-models fetches all-MiniLM-L6-v2) or embeddings_model",
            )),
            (Some(_), Some(_)) => errors.push(error_at(
                "cache.semantic",
                "set model_dir or embeddings_model, not both",
            )),
            (None, Some(_)) => {}
            (Some(dir), None) if !std::path::Path::new(dir).join("model.safetensors").exists() => {
                errors.push(error_at(
                    "cache.semantic.model_dir",
                    format!("no model.safetensors in {dir}"),
                ));
            }
            (Some(_), None) => {}
        }
    }
    if !(0.0..=1.0).contains(&semantic.threshold) {
        errors.push(error_at(
            "cache.semantic.threshold",
            "must be between 0 and 1",
        ));
    }
    if semantic.max_entries == 0 {
        errors.push(error_at("cache.semantic.max_entries", "must be at least 1"));
    }
    if cache.backend == CacheBackend::Redis && redis.is_none_or(|redis| redis.url.is_none()) {
        errors.push(error_at("cache.backend", "`redis` needs redis.url"));
    }
}
