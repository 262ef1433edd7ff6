//! Checks of the control plane's sections: the audit log, the guards and their policies, and
//! the hooks.

use std::collections::HashSet;

use super::{AUDIT_KEY_VAR, ConfigError, Env, error_at};
use crate::config::file::{AuditConfig, GuardsConfig, ModelConfig, Secret, WebhookConfig};

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
