//! A client's request body forwarded to an upstream of its own dialect as the client wrote it.
//!
//! Only what the gateway must change is changed: the `model` member becomes the deployment's
//! model name and, on an OpenAI stream, `stream_options.include_usage` is set (accounting needs
//! the usage chunk; the relay keeps it from a client that did not ask). Everything else (fields
//! the canonical model does not know, nested or not, content block types, number spellings,
//! string escapes, key order, whitespace) reaches the upstream byte for byte. Re-encoding from
//! the canonical request would normalise all of those, and prompt caches key on the bytes.

use switchyard_types::WireFormat;

use crate::json::scan;

/// What OpenAI's stream options become when the client sent none.
const STREAM_OPTIONS: &[u8] = br#","stream_options":{"include_usage":true}"#;

/// `raw` (a body already decoded as a request of `format`, so valid UTF-8 JSON) with `model` in
/// place of the client's model and, for an OpenAI `stream`, usage asked for. `None` when the
/// body is not one the scanner decides (escaped keys, a key twice, very deep nesting): encode
/// the canonical request instead.
pub fn body(format: WireFormat, raw: &[u8], model: &str, stream: bool) -> Option<Vec<u8>> {
    Edits::of(format, raw, stream).map(|edits| edits.apply(raw, model))
}

/// Where a client's body changes on its way to an upstream of its dialect: found by one scan,
/// then applied for each attempt of the call (each deployment has its own model name), so a
/// retried megabyte body is not scanned again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edits {
    /// The client's `model` value.
    model: std::ops::Range<usize>,
    /// OpenAI's `stream_options`: where, and what goes there.
    options: Option<(std::ops::Range<usize>, Vec<u8>)>,
}

impl Edits {
    /// The edits of `raw`, a body of `format`; `None` when the scanner does not decide it.
    pub fn of(format: WireFormat, raw: &[u8], stream: bool) -> Option<Edits> {
        let [model_span, options_span] = scan::member_spans(raw, ["model", "stream_options"])?;
        let model = model_span?;
        let options = if format == WireFormat::OpenAi && stream {
            match options_span {
                Some(span) => {
                    let text = std::str::from_utf8(&raw[span.clone()]).ok()?;
                    with_usage(text)?.map(|options| (span, options))
                }
                None => {
                    // Before the object's closing brace (the scanner checked there is one, last).
                    let close = raw.trim_ascii_end().len() - 1;
                    Some((close..close, STREAM_OPTIONS.to_vec()))
                }
            }
        } else {
            None
        };
        Some(Edits { model, options })
    }

    /// `raw` (the body these edits were found in) with `model` and the other edits applied.
    pub fn apply(&self, raw: &[u8], model: &str) -> Vec<u8> {
        let model_span = self.model.clone();
        let mut out = Vec::with_capacity(raw.len() + model.len() + STREAM_OPTIONS.len());
        let mut at = 0;
        let write_model = |out: &mut Vec<u8>, at: &mut usize| {
            out.extend_from_slice(&raw[*at..model_span.start]);
            push_json_string(out, model);
            *at = model_span.end;
        };
        match &self.options {
            Some((span, bytes)) if span.start < self.model.start => {
                out.extend_from_slice(&raw[at..span.start]);
                out.extend_from_slice(bytes);
                at = span.end;
                write_model(&mut out, &mut at);
            }
            Some((span, bytes)) => {
                write_model(&mut out, &mut at);
                out.extend_from_slice(&raw[at..span.start]);
                out.extend_from_slice(bytes);
                at = span.end;
            }
            None => write_model(&mut out, &mut at),
        }
        out.extend_from_slice(&raw[at..]);
        out
    }
}

/// Appends `text` as a JSON string; only a name with quotes, backslashes or control characters
/// goes through serde's escaping.
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .any(|byte| byte == b'"' || byte == b'\\' || byte < 0x20)
    {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// The client's `stream_options` with `include_usage` set: `Some(None)` when it already is
/// (the bytes stay as they are), `None` when the member is not an object or `null`.
fn with_usage(options: &str) -> Option<Option<Vec<u8>>> {
    let mut value: serde_json::Value = serde_json::from_str(options).ok()?;
    match &mut value {
        serde_json::Value::Null => Some(Some(br#"{"include_usage":true}"#.to_vec())),
        serde_json::Value::Object(map) => {
            if map.get("include_usage") == Some(&serde_json::Value::Bool(true)) {
                return Some(None);
            }
            map.insert("include_usage".to_owned(), serde_json::Value::Bool(true));
            serde_json::to_vec(&value).ok().map(Some)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn edits_found_once_serve_every_attempt() {
        let raw = br#"{"stream":true,"model":"group","messages":[{"role":"user","content":"hi"}]}"#;
        let edits = Edits::of(WireFormat::OpenAi, raw, true).expect("decided");
        for model in ["gpt-4o", "gpt-4o-mini", "a \"quoted\" name"] {
            assert_eq!(
                Some(edits.apply(raw, model)),
                body(WireFormat::OpenAi, raw, model, true)
            );
        }
        let text = String::from_utf8(edits.apply(raw, "m2")).expect("utf-8");
        assert!(
            text.contains(r#""model":"m2""#) && text.contains("include_usage"),
            "{text}"
        );
    }

    use super::*;

    fn forwarded(format: WireFormat, raw: &str, stream: bool) -> String {
        let body = body(format, raw.as_bytes(), "upstream-model", stream).expect("forwardable");
        String::from_utf8(body).expect("utf-8")
    }

    #[test]
    fn only_the_model_changes_in_an_anthropic_body() {
        let raw = r#"{ "model" : "claude",  "max_tokens":1.0e2,"x_new":{"deep":[1,2e0,"\u00e9"]},
            "messages":[{"role":"user","content":[{"type":"future_block","data":"\/"}]}],"stream":true}"#;
        assert_eq!(
            forwarded(WireFormat::Anthropic, raw, true),
            raw.replace(r#""claude""#, r#""upstream-model""#)
        );
    }

    #[test]
    fn an_openai_stream_asks_for_usage() {
        let raw = r#"{"model":"gpt","messages":[],"stream":true,"n":1.50}"#;
        assert_eq!(
            forwarded(WireFormat::OpenAi, raw, true),
            r#"{"model":"upstream-model","messages":[],"stream":true,"n":1.50,"stream_options":{"include_usage":true}}"#
        );
        let raw = r#"{"stream_options":{"x":1,"include_usage":false},"model":"gpt","stream":true}"#;
        assert_eq!(
            forwarded(WireFormat::OpenAi, raw, true),
            r#"{"stream_options":{"x":1,"include_usage":true},"model":"upstream-model","stream":true}"#
        );
        let raw = r#"{"model":"gpt","stream":true,"stream_options":{"include_usage": true}}"#;
        assert_eq!(
            forwarded(WireFormat::OpenAi, raw, true),
            raw.replace("gpt", "upstream-model")
        );
        let raw = r#"{"model":"gpt","stream":true,"stream_options":null}"#;
        assert_eq!(
            forwarded(WireFormat::OpenAi, raw, true),
            r#"{"model":"upstream-model","stream":true,"stream_options":{"include_usage":true}}"#
        );
    }

    #[test]
    fn a_whole_openai_call_keeps_its_stream_options() {
        let raw = r#"{"model":"gpt","messages":[]}"#;
        assert_eq!(
            forwarded(WireFormat::OpenAi, raw, false),
            r#"{"model":"upstream-model","messages":[]}"#
        );
    }

    #[test]
    fn undecided_bodies_are_left_to_the_encoder() {
        for raw in [
            r#"{"model":"a","model":"b"}"#,
            r#"{"mod\u0065l":"a"}"#,
            r#"{"messages":[]}"#,
            r#"{"model":"a","stream_options":[1]}"#,
        ] {
            assert_eq!(
                body(WireFormat::OpenAi, raw.as_bytes(), "m", true),
                None,
                "{raw}"
            );
        }
    }

    #[test]
    fn a_model_name_is_written_as_a_json_string() {
        let raw = r#"{"model":"a"}"#;
        assert_eq!(
            body(WireFormat::Anthropic, raw.as_bytes(), "we\"ird", false),
            Some(br#"{"model":"we\"ird"}"#.to_vec())
        );
    }
}
