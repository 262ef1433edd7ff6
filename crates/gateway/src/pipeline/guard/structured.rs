//! Structured answers against what the request asked for: JSON for `json_object`, JSON that
//! follows the schema for `json_schema` (checked with the `jsonschema` crate, draft detected
//! from the schema). What is wrong is said by place (the answer's JSON pointer and the
//! schema's), never by value: the answer's text may hold personal data.

use serde_json::Value;
use switchyard_types::ResponseFormat;

/// What is wrong with `text` as an answer in `format` (`None`: nothing, or nothing asked).
pub fn violation(format: &ResponseFormat, text: &str) -> Option<String> {
    let schema = match format {
        ResponseFormat::Text => return None,
        ResponseFormat::JsonObject => None,
        ResponseFormat::JsonSchema { schema, .. } => Some(schema),
    };
    let instance: Value = match serde_json::from_str(text.trim()) {
        Ok(instance) => instance,
        // serde_json's messages name what it expected and where, never the text.
        Err(error) => return Some(format!("the answer is not JSON ({error})")),
    };
    match schema {
        None => (!instance.is_object()).then(|| "the answer is JSON but not an object".to_owned()),
        Some(schema) => check(schema, &instance),
    }
}

#[cfg(feature = "json-schema")]
fn check(schema: &Value, instance: &Value) -> Option<String> {
    // A schema the crate cannot compile was the provider's to refuse: nothing to hold
    // against the answer.
    let validator = jsonschema::validator_for(schema).ok()?;
    let error = validator.iter_errors(instance).next()?;
    let at = error.instance_path().to_string();
    Some(format!(
        "at {} the answer fails the schema's {}",
        if at.is_empty() { "/" } else { &at },
        error.schema_path()
    ))
}

#[cfg(not(feature = "json-schema"))]
fn check(_schema: &Value, _instance: &Value) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> ResponseFormat {
        ResponseFormat::JsonSchema {
            name: "person".to_owned(),
            description: None,
            schema: json!({"type": "object", "additionalProperties": false,
                "required": ["name", "age"],
                "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}),
            strict: Some(true),
        }
    }

    #[test]
    fn answers_that_follow_the_schema_pass_and_others_are_placed_without_values() {
        assert_eq!(
            violation(&schema(), r#" {"name": "Ada", "age": 36} "#),
            None
        );
        let wrong =
            violation(&schema(), r#"{"name": "Ada", "age": "thirty-six"}"#).expect("a violation");
        assert!(wrong.contains("/age") && wrong.contains("type"), "{wrong}");
        assert!(!wrong.contains("thirty"), "no values: {wrong}");
        let extra = violation(
            &schema(),
            r#"{"name": "Ada", "age": 36, "ssn": "078-05-1120"}"#,
        )
        .expect("a violation");
        assert!(
            extra.contains("additionalProperties") && !extra.contains("078"),
            "{extra}"
        );
        let cut = violation(&schema(), r#"{"name": "Ada", "ag"#).expect("a violation");
        assert!(cut.starts_with("the answer is not JSON"), "{cut}");
        assert!(
            violation(&schema(), r#"{"name": "Ada"}"#).is_some(),
            "required"
        );
    }

    #[test]
    fn json_object_needs_an_object_and_text_needs_nothing() {
        assert_eq!(violation(&ResponseFormat::JsonObject, r#"{"a": 1}"#), None);
        assert!(violation(&ResponseFormat::JsonObject, "[1, 2]").is_some());
        assert!(violation(&ResponseFormat::JsonObject, "Sure! {\"a\": 1}").is_some());
        assert_eq!(violation(&ResponseFormat::Text, "anything"), None);
    }
}
