//! Builds a JSON instance from a JSON schema: the arguments of a mock tool call and the body of
//! a `json_schema` response format.
//!
//! Values are fixed so tests can predict them: strings are `"mock"` (or the first `enum` value),
//! numbers `1`, booleans `true`, arrays `[]`. Objects carry their `required` properties, or all
//! properties when there is no `required` list, in the schema's property order (or Gemini's
//! `propertyOrdering`). Type names match in any case: Gemini's OpenAPI-style schemas spell them
//! `STRING`, `OBJECT`, …

use serde_json::{Map, Value};

/// How deep nested objects are filled in before they become `{}`.
const MAX_DEPTH: usize = 8;

/// How nested objects are filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nesting {
    /// Only the top-level object gets properties; nested objects are `{}` (tool arguments).
    Flat,
    /// Nested objects recurse (structured output).
    Deep,
}

/// An instance of `schema`; a missing schema gives `{}`.
pub(crate) fn instance(schema: Option<&Value>, nesting: Nesting) -> Value {
    match schema {
        Some(schema) => value_for(schema, nesting, 0),
        None => Value::Object(Map::new()),
    }
}

fn value_for(schema: &Value, nesting: Nesting, depth: usize) -> Value {
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return first.clone();
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema
            .get(combinator)
            .and_then(Value::as_array)
            .and_then(|schemas| schemas.iter().find(|s| !is_null_schema(s)))
        {
            return value_for(first, nesting, depth);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => Some(kind.to_ascii_lowercase()),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .find(|kind| kind != "null"),
        _ => None,
    };
    match kind.as_deref() {
        Some("string") => Value::String("mock".to_owned()),
        Some("integer" | "number") => Value::from(1),
        Some("boolean") => Value::Bool(true),
        Some("array") => Value::Array(Vec::new()),
        Some("null") => Value::Null,
        Some("object") => object_for(schema, nesting, depth),
        None if schema.get("properties").is_some() => object_for(schema, nesting, depth),
        _ => Value::Null,
    }
}

fn object_for(schema: &Value, nesting: Nesting, depth: usize) -> Value {
    let mut object = Map::new();
    let fill = depth == 0 || (nesting == Nesting::Deep && depth < MAX_DEPTH);
    if !fill {
        return Value::Object(object);
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Value::Object(object);
    };
    let required = schema.get("required").and_then(Value::as_array);
    let ordering: Vec<&str> = schema
        .get("propertyOrdering")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| properties.contains_key(*name))
        .collect();
    let rest = properties
        .keys()
        .map(String::as_str)
        .filter(|name| !ordering.contains(name));
    for name in ordering.iter().copied().chain(rest) {
        let wanted =
            required.is_none_or(|required| required.iter().any(|r| r.as_str() == Some(name)));
        if let Some(property) = properties.get(name)
            && wanted
        {
            object.insert(name.to_owned(), value_for(property, nesting, depth + 1));
        }
    }
    Value::Object(object)
}

fn is_null_schema(schema: &Value) -> bool {
    schema
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.eq_ignore_ascii_case("null"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn required_properties_by_type() {
        let schema = json!({
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
                "precise": {"type": "boolean"},
                "ratio": {"type": "number"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "extra": {"type": "object", "properties": {"a": {"type": "string"}}},
                "optional": {"type": "string"}
            },
            "required": ["location", "unit", "days", "precise", "ratio", "tags", "extra"]
        });
        assert_eq!(
            instance(Some(&schema), Nesting::Flat),
            json!({
                "location": "mock", "unit": "celsius", "days": 1, "precise": true,
                "ratio": 1, "tags": [], "extra": {}
            })
        );
    }

    #[test]
    fn all_properties_without_required() {
        let schema = json!({
            "type": "object",
            "properties": {"q": {"type": "string"}, "n": {"type": ["integer", "null"]}}
        });
        assert_eq!(
            instance(Some(&schema), Nesting::Flat),
            json!({"q": "mock", "n": 1})
        );
    }

    #[test]
    fn property_order_follows_schema() {
        let schema = json!({
            "type": "object",
            "properties": {"b": {"type": "string"}, "a": {"type": "string"}},
            "required": ["a", "b"]
        });
        let text = serde_json::to_string(&instance(Some(&schema), Nesting::Flat)).expect("json");
        assert_eq!(text, r#"{"b":"mock","a":"mock"}"#);
    }

    #[test]
    fn deep_nesting_recurses() {
        let schema = json!({
            "type": "object",
            "properties": {
                "person": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                    "required": ["name"]
                },
                "choice": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}
            }
        });
        assert_eq!(
            instance(Some(&schema), Nesting::Deep),
            json!({"person": {"name": "mock"}, "choice": true})
        );
    }

    #[test]
    fn gemini_schema_types_and_property_ordering() {
        let schema = json!({
            "type": "OBJECT",
            "properties": {
                "a": {"type": "STRING"},
                "b": {"type": "INTEGER", "nullable": true},
                "c": {"type": "ARRAY", "items": {"type": "STRING"}}
            },
            "propertyOrdering": ["c", "a"]
        });
        let text = serde_json::to_string(&instance(Some(&schema), Nesting::Deep)).expect("json");
        assert_eq!(text, r#"{"c":[],"a":"mock","b":1}"#);
    }

    #[test]
    fn missing_or_empty_schema_is_an_empty_object() {
        assert_eq!(instance(None, Nesting::Flat), json!({}));
        assert_eq!(
            instance(Some(&json!({"type": "object"})), Nesting::Flat),
            json!({})
        );
    }
}
