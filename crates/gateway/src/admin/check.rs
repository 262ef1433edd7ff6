//! Validation of admin input: sizes, characters, numbers, roles a caller may grant, and the
//! team ceiling a key's models and limits must stay under. Every refusal names its field.

use serde_json::{Map, Value};
use switchyard_store::{Limits, Role, Team};
use switchyard_types::ApiError;

use crate::governance::principal::matches;

/// The most characters in a name, alias, email or model pattern.
pub const MAX_LABEL: usize = 256;

/// The most entries in a model or tag list.
pub const MAX_ITEMS: usize = 1000;

/// The most bytes of metadata, as JSON.
pub const MAX_METADATA: usize = 16 * 1024;

/// The largest limit (a trillion: anything larger is no limit).
const MAX_LIMIT: u64 = 1_000_000_000_000;

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(
        format!("{field}: {}", message.into()),
        Some(field.to_owned()),
    )
}

/// A short text: not empty, at most `MAX_LABEL` characters, no control characters.
pub fn label(value: &str, field: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_LABEL {
        return Err(invalid(
            field,
            format!("must be at most {MAX_LABEL} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A list of short texts.
pub fn labels(values: &[String], field: &str) -> Result<(), ApiError> {
    if values.len() > MAX_ITEMS {
        return Err(invalid(
            field,
            format!("must have at most {MAX_ITEMS} entries"),
        ));
    }
    for (index, value) in values.iter().enumerate() {
        label(value, &format!("{field}[{index}]"))?;
    }
    Ok(())
}

/// Free-form metadata: at most `MAX_METADATA` bytes as JSON, keys without control characters.
pub fn metadata(value: &Map<String, Value>) -> Result<(), ApiError> {
    if serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len()) > MAX_METADATA {
        return Err(invalid(
            "metadata",
            format!("must be at most {MAX_METADATA} bytes as JSON"),
        ));
    }
    Ok(())
}

/// Limits: each at least 1 (block a key to stop it) and at most a trillion.
pub fn limits(limits: &Limits, field: &str) -> Result<(), ApiError> {
    let mut numbers = vec![
        (limits.rpm, format!("{field}.rpm")),
        (limits.tpm, format!("{field}.tpm")),
        (limits.max_parallel, format!("{field}.max_parallel")),
    ];
    if limits.models.len() > MAX_ITEMS {
        return Err(invalid(
            &format!("{field}.models"),
            format!("must have at most {MAX_ITEMS} entries"),
        ));
    }
    for (model, model_limits) in &limits.models {
        label(model, &format!("{field}.models"))?;
        numbers.push((model_limits.rpm, format!("{field}.models.{model}.rpm")));
        numbers.push((model_limits.tpm, format!("{field}.models.{model}.tpm")));
    }
    for (value, path) in numbers {
        if let Some(value) = value
            && !(1..=MAX_LIMIT).contains(&value)
        {
            return Err(invalid(
                &path,
                "must be between 1 and 1000000000000 (block the key to stop it)",
            ));
        }
    }
    Ok(())
}

/// How much a role may do, for granting: a caller grants at most its own.
fn rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Member => 1,
        Role::TeamAdmin => 2,
        Role::Admin => 3,
    }
}

/// Refuses a role above `most` (the caller's, or the key's user's).
pub fn grant(role: Role, most: Role, whose: &str) -> Result<(), ApiError> {
    if rank(role) > rank(most) {
        return Err(invalid(
            "role",
            format!("`{}` is above {whose} (`{}`)", role.as_str(), most.as_str()),
        ));
    }
    Ok(())
}

/// A key's models and limits under its team's: each limit at most the team's, each model one
/// the team allows (a pattern only if the team lists the same pattern).
pub fn ceiling(models: &[String], key_limits: &Limits, team: &Team) -> Result<(), ApiError> {
    for (key, ceiling, name) in [
        (key_limits.rpm, team.limits.rpm, "rpm"),
        (key_limits.tpm, team.limits.tpm, "tpm"),
        (
            key_limits.max_parallel,
            team.limits.max_parallel,
            "max_parallel",
        ),
    ] {
        if let (Some(key), Some(ceiling)) = (key, ceiling)
            && key > ceiling
        {
            return Err(invalid(
                &format!("limits.{name}"),
                format!("{key} is above the team's {ceiling}"),
            ));
        }
    }
    if team.models.is_empty() {
        return Ok(());
    }
    for (index, model) in models.iter().enumerate() {
        let allowed = team.models.contains(model)
            || (!model.contains('*') && team.models.iter().any(|pattern| matches(pattern, model)));
        if !allowed {
            return Err(invalid(
                &format!("models[{index}]"),
                format!("`{model}` is not among the team's models"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(models: &[&str], rpm: Option<u64>) -> Team {
        Team {
            id: "team_1".into(),
            name: "t".into(),
            models: models.iter().map(|model| (*model).to_owned()).collect(),
            limits: Limits {
                rpm,
                ..Limits::default()
            },
            metadata: Map::new(),
            blocked: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn keys_stay_under_their_team() {
        let team = team(&["gpt-*", "claude"], Some(100));
        let models = |list: &[&str]| list.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>();
        let rpm = |rpm| Limits {
            rpm: Some(rpm),
            ..Limits::default()
        };
        assert!(ceiling(&models(&["gpt-4o", "claude", "gpt-*"]), &rpm(100), &team).is_ok());
        assert!(ceiling(&models(&["gemini"]), &Limits::default(), &team).is_err());
        assert!(ceiling(&models(&["*"]), &Limits::default(), &team).is_err());
        let error = ceiling(&[], &rpm(101), &team).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("limits.rpm"));
    }

    #[test]
    fn labels_refuse_empty_long_and_control_text() {
        assert!(label("ok name", "alias").is_ok());
        assert!(label(" ", "alias").is_err());
        assert!(label(&"x".repeat(MAX_LABEL + 1), "alias").is_err());
        assert!(label("a\u{1b}[31m", "alias").is_err());
        assert!(
            limits(
                &Limits {
                    rpm: Some(0),
                    ..Limits::default()
                },
                "limits"
            )
            .is_err()
        );
        assert!(grant(Role::Admin, Role::TeamAdmin, "yours").is_err());
        assert!(grant(Role::Member, Role::TeamAdmin, "yours").is_ok());
    }
}
