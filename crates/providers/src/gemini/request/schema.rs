//! A tool's JSON Schema as the OpenAPI 3.0 subset Gemini's `FunctionDeclaration.parameters`
//! accepts. Gemini rejects any keyword it does not know (`$schema`, `additionalProperties`,
//! `strict`, ...), so only the keywords of its `Schema` object are kept; a few common JSON
//! Schema idioms are rewritten into that subset rather than dropped: a type list or an
//! `anyOf` with `null` becomes `nullable`, `oneOf` becomes `anyOf`, `const` becomes a
//! one-value `enum`. What the subset cannot say at all (a `$ref`, an object without properties
//! below the top, an array without one `items` schema) goes whole as
//! `parametersJsonSchema`, which takes JSON Schema as written.
//! <https://ai.google.dev/api/caching#Schema>,
//! <https://ai.google.dev/api/caching#FunctionDeclaration>

use serde_json::{Map, Value};
use switchyard_types::ApiError;

/// The keywords of Gemini's `Schema` kept as they are.
const KEPT: &[&str] = &[
    "title",
    "description",
    "nullable",
    "enum",
    "required",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
];

/// The `format` values Gemini knows (`enum` and `date-time` for strings, the rest numeric);
/// others (`uri`, `email`, ...) are dropped.
const FORMATS: &[&str] = &["enum", "date-time", "float", "double", "int32", "int64"];

/// How a tool's arguments are declared to Gemini.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Declared {
    /// `parameters`: the OpenAPI subset.
    Parameters(Value),
    /// `parametersJsonSchema`: JSON Schema as the client wrote it (but `$schema`).
    JsonSchema(Value),
}

/// The declaration of tool `name`'s arguments (at `tools[index]`), or `None` when the tool
/// takes none: Gemini rejects an object schema whose `properties` is empty.
pub(super) fn parameters(
    schema: &Value,
    name: &str,
    index: usize,
) -> Result<Option<Declared>, ApiError> {
    if schema.is_null() {
        return Ok(None);
    }
    if !expressible(schema, true) {
        let mut whole = schema.clone();
        if let Value::Object(object) = &mut whole {
            object.remove("$schema");
        }
        return Ok(Some(Declared::JsonSchema(whole)));
    }
    let cleaned = clean(schema, "#", &|location| {
        ApiError::invalid_request(
            format!(
                "tool `{name}`: its parameter schema uses `$ref` (at `{location}`), which Gemini \
                 function declarations do not support; inline the referenced definition"
            ),
            Some(format!("tools[{index}]")),
        )
    })?;
    let Value::Object(object) = &cleaned else {
        return Ok(None);
    };
    let no_properties = object
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    let is_object = object.get("type").and_then(Value::as_str) == Some("object");
    if object.is_empty() || (is_object && no_properties) {
        return Ok(None);
    }
    Ok(Some(Declared::Parameters(cleaned)))
}

/// Whether `schema` has a form in Gemini's subset: no `$ref`, no object without properties
/// below the top (`top`), no array without a single `items` schema, at any depth.
fn expressible(schema: &Value, top: bool) -> bool {
    let Value::Object(object) = schema else {
        return true;
    };
    if object.contains_key("$ref") {
        return false;
    }
    let types: Vec<&str> = match object.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let properties = object.get("properties").and_then(Value::as_object);
    if !top && types.contains(&"object") && properties.is_none_or(Map::is_empty) {
        return false;
    }
    if types.contains(&"array") && !object.get("items").is_some_and(Value::is_object) {
        return false;
    }
    let nested = properties
        .into_iter()
        .flat_map(Map::values)
        .chain(object.get("items"))
        .chain(
            ["anyOf", "oneOf"]
                .into_iter()
                .filter_map(|key| object.get(key).and_then(Value::as_array))
                .flatten(),
        );
    nested.into_iter().all(|inner| expressible(inner, false))
}

/// `schema` in Gemini's subset. `location` is where it sits in the tool's schema (a JSON
/// pointer), for the `$ref` error built by `unsupported_ref`.
fn clean(
    schema: &Value,
    location: &str,
    unsupported_ref: &dyn Fn(&str) -> ApiError,
) -> Result<Value, ApiError> {
    let Value::Object(object) = schema else {
        // A boolean schema (`true`: anything) has no Gemini form; an empty schema is closest.
        return Ok(Value::Object(Map::new()));
    };
    if object.contains_key("$ref") {
        return Err(unsupported_ref(location));
    }
    let mut out = Map::new();
    let mut nullable = false;
    let mut variants: Option<Vec<Value>> = None;
    for (key, value) in object {
        match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    let mut named: Vec<&Value> = Vec::with_capacity(types.len());
                    for kind in types {
                        if kind == "null" {
                            nullable = true;
                        } else {
                            named.push(kind);
                        }
                    }
                    match named.as_slice() {
                        [] => {}
                        [kind] => {
                            out.insert("type".into(), (*kind).clone());
                        }
                        kinds => {
                            let alternatives = kinds
                                .iter()
                                .map(|kind| {
                                    let mut alternative = Map::new();
                                    alternative.insert("type".into(), (*kind).clone());
                                    Value::Object(alternative)
                                })
                                .collect();
                            variants = Some(alternatives);
                        }
                    }
                }
                Value::String(kind) if kind == "null" => nullable = true,
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "properties" => {
                if let Value::Object(properties) = value {
                    let mut cleaned = Map::new();
                    for (name, property) in properties {
                        let at = format!("{location}/properties/{name}");
                        cleaned.insert(name.clone(), clean(property, &at, unsupported_ref)?);
                    }
                    out.insert("properties".into(), Value::Object(cleaned));
                }
            }
            // A tuple (`items` as a list) has no Gemini form.
            "items" if value.is_object() => {
                let at = format!("{location}/items");
                out.insert("items".into(), clean(value, &at, unsupported_ref)?);
            }
            "anyOf" | "oneOf" => {
                if let Value::Array(alternatives) = value {
                    let mut cleaned = Vec::with_capacity(alternatives.len());
                    for (k, alternative) in alternatives.iter().enumerate() {
                        if alternative.get("type").and_then(Value::as_str) == Some("null") {
                            nullable = true;
                            continue;
                        }
                        let at = format!("{location}/{key}/{k}");
                        cleaned.push(clean(alternative, &at, unsupported_ref)?);
                    }
                    variants = Some(cleaned);
                }
            }
            "const" if !object.contains_key("enum") => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            "format"
                if value
                    .as_str()
                    .is_some_and(|format| FORMATS.contains(&format)) =>
            {
                out.insert("format".into(), value.clone());
            }
            kept if KEPT.contains(&kept) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    match variants {
        // `anyOf: [X, {type: null}]` (how Pydantic writes `Optional[X]`) is X, nullable.
        Some(mut alternatives) if alternatives.len() == 1 => {
            if let Some(Value::Object(only)) = alternatives.pop() {
                for (key, value) in only {
                    out.entry(key).or_insert(value);
                }
            }
        }
        Some(alternatives) if !alternatives.is_empty() => {
            out.insert("anyOf".into(), Value::Array(alternatives));
        }
        Some(_) | None => {}
    }
    if nullable {
        // Gemini's enums hold strings only; `null` is said by `nullable`.
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            values.retain(|value| !value.is_null());
        }
        out.insert("nullable".into(), true.into());
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cleaned(schema: Value) -> Option<Value> {
        match parameters(&schema, "lookup", 0).expect("cleans") {
            Some(Declared::Parameters(value)) => Some(value),
            Some(Declared::JsonSchema(value)) => panic!("sent whole: {value}"),
            None => None,
        }
    }

    fn sent_whole(schema: &Value) -> Option<Value> {
        match parameters(schema, "lookup", 0).expect("declares") {
            Some(Declared::JsonSchema(value)) => Some(value),
            _ => None,
        }
    }

    #[test]
    fn keeps_the_subset_and_drops_the_rest() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "title": "Lookup",
            "additionalProperties": false,
            "strict": true,
            "properties": {
                // A property named like a keyword is a property, not a keyword.
                "type": {"type": "string", "enum": ["city", "airport"], "description": "What to look up"},
                "when": {"type": "string", "format": "date-time", "examples": ["2025-01-01T00:00:00Z"]},
                "homepage": {"type": "string", "format": "uri", "maxLength": 200},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}, "minItems": 1}
            },
            "required": ["type"],
            "$defs": {"unused": {"type": "string"}}
        });
        assert_eq!(
            cleaned(schema),
            Some(json!({
                "type": "object",
                "title": "Lookup",
                "properties": {
                    "type": {"type": "string", "enum": ["city", "airport"], "description": "What to look up"},
                    "when": {"type": "string", "format": "date-time"},
                    "homepage": {"type": "string", "maxLength": 200},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1}
                },
                "required": ["type"]
            }))
        );
    }

    #[test]
    fn rewrites_nullable_idioms_one_of_and_const() {
        let schema = json!({
            "type": "object",
            "properties": {
                "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", null]},
                "count": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "How many"},
                "id": {"type": ["string", "integer"]},
                "target": {"oneOf": [{"type": "string"}, {"type": "object", "properties": {"x": {"type": "number"}}}]},
                "kind": {"const": "point"}
            }
        });
        assert_eq!(
            cleaned(schema),
            Some(json!({
                "type": "object",
                "properties": {
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "nullable": true},
                    "count": {"description": "How many", "type": "integer", "nullable": true},
                    "id": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "target": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"x": {"type": "number"}}}]},
                    "kind": {"enum": ["point"]}
                }
            }))
        );
    }

    #[test]
    fn a_tool_without_parameters_declares_none() {
        assert_eq!(cleaned(Value::Null), None);
        assert_eq!(cleaned(json!({})), None);
        assert_eq!(cleaned(json!({"type": "object", "properties": {}})), None);
        assert_eq!(
            cleaned(json!({"type": "object", "additionalProperties": false})),
            None
        );
    }

    #[test]
    fn what_the_subset_cannot_say_goes_whole_as_json_schema() {
        // Pydantic's output for a nested model: a `$ref` into `$defs`.
        let refs = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"address": {"$ref": "#/$defs/Address"}},
            "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}}}
        });
        let mut expected = refs.clone();
        if let Value::Object(object) = &mut expected {
            object.remove("$schema");
        }
        assert_eq!(sent_whole(&refs), Some(expected));
        // An object of free-form keys below the top, and an array with no item schema (both
        // refused by Gemini's `parameters`), deep inside.
        let free_form = json!({"type": "object", "properties": {"options": {
            "type": "array", "items": {"type": "object", "properties": {"meta": {"type": "object"}}}}}});
        assert_eq!(sent_whole(&free_form).as_ref(), Some(&free_form));
        let untyped_items =
            json!({"type": "object", "properties": {"values": {"type": ["array", "null"]}}});
        assert_eq!(sent_whole(&untyped_items).as_ref(), Some(&untyped_items));
        let tuple = json!({"type": "object", "properties": {"pair": {"type": "array", "items": [{"type": "string"}, {"type": "number"}]}}});
        assert!(sent_whole(&tuple).is_some());
        let any_of = json!({"type": "object", "properties": {"x": {"anyOf": [{"type": "object"}, {"type": "string"}]}}});
        assert!(sent_whole(&any_of).is_some());
        // The top object without properties is a tool without arguments, as before.
        assert_eq!(
            parameters(&json!({"type": "object"}), "lookup", 0).expect("ok"),
            None
        );
    }
}
