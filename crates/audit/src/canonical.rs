//! Canonical JSON (RFC 8785, JCS): object keys sorted by their UTF-16 code units, no
//! whitespace, strings escaped as ECMAScript's `JSON.stringify` escapes them, numbers as
//! ECMAScript writes them. Records are mostly strings and small integers: those are written
//! here directly (an integer within ±2^53 is its decimal digits in both JSON and ECMAScript;
//! serde_json escapes strings exactly as JCS does); any other number is written by `serde_jcs`.
//! [`to_string`] gives the same bytes as `serde_jcs::to_string` (checked against it in tests)
//! at a fraction of the cost.

use serde_json::{Map, Number, Value};

/// Integers up to this magnitude are exact as ECMAScript numbers and written as digits.
const EXACT: u64 = 1 << 53;

/// `value` as canonical JSON.
pub fn to_string(value: &Value) -> Result<String, serde_json::Error> {
    let mut out = String::with_capacity(512);
    write(value, &mut out)?;
    Ok(out)
}

/// The object `fields` with `extra` fields added (their names not among `fields`'), as
/// canonical JSON: a record and its place, without copying the record.
pub fn object_with(
    fields: &Map<String, Value>,
    extra: &[(&str, Value)],
) -> Result<String, serde_json::Error> {
    let mut entries: Vec<(&str, &Value)> = fields
        .iter()
        .map(|(name, value)| (name.as_str(), value))
        .chain(extra.iter().map(|(name, value)| (*name, value)))
        .collect();
    let mut out = String::with_capacity(512);
    write_entries(&mut entries, &mut out)?;
    Ok(out)
}

/// A record: what the log hashes, written as canonical JSON with its place (`seq`) in it.
pub trait Record: Send + Sync + std::fmt::Debug {
    /// The record as canonical JSON, `seq` among its fields.
    fn canonical(&self, seq: u64) -> Result<String, serde_json::Error>;
}

impl Record for Map<String, Value> {
    fn canonical(&self, seq: u64) -> Result<String, serde_json::Error> {
        object_with(self, &[("seq", Value::from(seq))])
    }
}

/// Writes a canonical object field by field, for records whose fields are known: the caller
/// gives the names in canonical order (checked in debug builds).
#[derive(Debug)]
pub struct ObjectWriter {
    out: String,
    last: Option<&'static str>,
}

impl Default for ObjectWriter {
    fn default() -> ObjectWriter {
        ObjectWriter::new()
    }
}

impl ObjectWriter {
    /// An empty object.
    pub fn new() -> ObjectWriter {
        let mut out = String::with_capacity(512);
        out.push('{');
        ObjectWriter { out, last: None }
    }

    fn name(&mut self, name: &'static str) -> Result<(), serde_json::Error> {
        debug_assert!(
            self.last
                .is_none_or(|last| utf16_order(last, name) == std::cmp::Ordering::Less),
            "{name} after {:?}",
            self.last
        );
        if self.last.is_some() {
            self.out.push(',');
        }
        self.last = Some(name);
        write_str(name, &mut self.out)?;
        self.out.push(':');
        Ok(())
    }

    /// A text field.
    pub fn text(&mut self, name: &'static str, value: &str) -> Result<(), serde_json::Error> {
        self.name(name)?;
        write_str(value, &mut self.out)
    }

    /// A whole-number field.
    pub fn number(
        &mut self,
        name: &'static str,
        value: impl Into<Number>,
    ) -> Result<(), serde_json::Error> {
        self.name(name)?;
        write_number(&value.into(), &mut self.out)
    }

    /// A true/false field.
    pub fn boolean(&mut self, name: &'static str, value: bool) -> Result<(), serde_json::Error> {
        self.name(name)?;
        self.out.push_str(if value { "true" } else { "false" });
        Ok(())
    }

    /// A field holding an object written by another writer.
    pub fn object(
        &mut self,
        name: &'static str,
        value: ObjectWriter,
    ) -> Result<(), serde_json::Error> {
        self.name(name)?;
        self.out.push_str(&value.finish());
        Ok(())
    }

    /// A field holding an array of objects written by other writers.
    pub fn objects(
        &mut self,
        name: &'static str,
        values: Vec<ObjectWriter>,
    ) -> Result<(), serde_json::Error> {
        self.name(name)?;
        self.out.push('[');
        for (index, value) in values.into_iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            self.out.push_str(&value.finish());
        }
        self.out.push(']');
        Ok(())
    }

    /// The object's text.
    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

fn write(value: &Value, out: &mut String) -> Result<(), serde_json::Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out)?,
        Value::String(text) => write_str(text, out)?,
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Value::Object(fields) => {
            let mut entries: Vec<(&str, &Value)> = fields
                .iter()
                .map(|(name, value)| (name.as_str(), value))
                .collect();
            write_entries(&mut entries, out)?;
        }
    }
    Ok(())
}

fn write_entries(
    entries: &mut [(&str, &Value)],
    out: &mut String,
) -> Result<(), serde_json::Error> {
    entries.sort_unstable_by(|(a, _), (b, _)| utf16_order(a, b));
    out.push('{');
    for (index, (name, value)) in entries.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_str(name, out)?;
        out.push(':');
        write(value, out)?;
    }
    out.push('}');
    Ok(())
}

/// Orders by UTF-16 code units, as JCS sorts keys (byte order where both are ASCII).
fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

fn write_str(text: &str, out: &mut String) -> Result<(), serde_json::Error> {
    let plain = text
        .bytes()
        .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\');
    if plain {
        out.reserve(text.len() + 2);
        out.push('"');
        out.push_str(text);
        out.push('"');
        return Ok(());
    }
    // serde_json escapes `"`, `\` and control characters (\b \t \n \f \r, else \u00xx in
    // lowercase hex) and nothing else: JCS's rules.
    out.push_str(&serde_json::to_string(text)?);
    Ok(())
}

fn write_number(number: &Number, out: &mut String) -> Result<(), serde_json::Error> {
    if let Some(value) = number.as_u64().filter(|value| *value <= EXACT) {
        out.push_str(itoa::Buffer::new().format(value));
    } else if let Some(value) = number
        .as_i64()
        .filter(|value| value.unsigned_abs() <= EXACT)
    {
        out.push_str(itoa::Buffer::new().format(value));
    } else {
        out.push_str(&serde_jcs::to_string(number)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_same_bytes_as_serde_jcs() {
        let values = [
            json!(null),
            json!({"b": 1, "a": [true, false, null], "c": {"z": "x", "y": -3}}),
            json!({"\u{e000}": 1, "\u{1f600}": 2, "a": 3, "A": 4, "": 5, "é": 6}),
            json!(
                "quotes \" and \\ and \n\t\r\u{8}\u{c} and \u{1} \u{1f} \u{7f} \u{2028} / é \u{1f600}"
            ),
            json!([
                0,
                -0,
                1,
                -1,
                9_007_199_254_740_992_u64,
                -9_007_199_254_740_992_i64
            ]),
            json!([
                9_007_199_254_740_993_u64,
                u64::MAX,
                i64::MIN,
                1.5,
                -0.25,
                1e21,
                1e-7,
                123.456,
                5e-324
            ]),
            json!({"nested": [{"k": [1, {"b": "x", "a": "y"}]}], "seq": 4}),
        ];
        for value in values {
            assert_eq!(
                to_string(&value).expect("canonical"),
                serde_jcs::to_string(&value).expect("jcs"),
                "{value}"
            );
        }
    }

    #[test]
    fn an_object_written_field_by_field_is_canonical() {
        let mut inner = ObjectWriter::new();
        inner.number("a", 1u64).expect("field");
        inner.number("b", -2i64).expect("field");
        let mut writer = ObjectWriter::new();
        writer.number("at", 1u64).expect("field");
        writer.boolean("cache_hit", false).expect("field");
        writer.text("model", "naïve \"x\"\n").expect("field");
        writer.object("tokens", inner).expect("field");
        writer.number("v", 1u64).expect("field");
        let text = writer.finish();
        let parsed: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(text, serde_jcs::to_string(&parsed).expect("jcs"));
    }

    #[test]
    fn extra_fields_take_their_sorted_place() {
        let fields = json!({"status": 200, "request_id": "r", "at": 1});
        let Value::Object(fields) = fields else {
            unreachable!()
        };
        let written = object_with(&fields, &[("seq", json!(7))]).expect("canonical");
        assert_eq!(written, r#"{"at":1,"request_id":"r","seq":7,"status":200}"#);
        let mut whole = fields.clone();
        whole.insert("seq".into(), json!(7));
        assert_eq!(written, serde_jcs::to_string(&whole).expect("jcs"));
    }
}
