//! A client's request body forwarded to an upstream of its own dialect as the client wrote it.
//!
//! Only what the gateway must change is changed: the `model` member becomes the deployment's
//! model name and, on an OpenAI stream, `stream_options.include_usage` is set (accounting needs
//! the usage chunk; the relay keeps it from a client that did not ask). Everything else (fields
//! the canonical model does not know, nested or not, content block types, number spellings,
//! string escapes, key order, whitespace) reaches the upstream byte for byte. Re-encoding from
//! the canonical request would normalise all of those, and prompt caches key on the bytes.

use std::ops::Range;

use switchyard_types::WireFormat;

use crate::json::scan;

/// What OpenAI's stream options become when the client sent none.
const STREAM_OPTIONS: &[u8] = br#","stream_options":{"include_usage":true}"#;

/// `raw` (a body already decoded as a request of `format`) with `model` in place of the
/// client's model and, for an OpenAI `stream`, usage asked for. `None` when the body is not one
/// the scanner decides (escaped keys, a key twice, very deep nesting): encode the canonical
/// request instead.
pub fn body(format: WireFormat, raw: &[u8], model: &str, stream: bool) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(raw).ok()?;
    let [model_span, options_span] = scan::member_spans(text, ["model", "stream_options"])?;
    let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::with_capacity(2);
    edits.push((model_span?, serde_json::to_vec(model).ok()?));
    if format == WireFormat::OpenAi && stream {
        match options_span {
            Some(span) => {
                if let Some(options) = with_usage(&text[span.clone()])? {
                    edits.push((span, options));
                }
            }
            None => {
                // Before the object's closing brace (the scanner checked there is one, last).
                let close = text.trim_end().len() - 1;
                edits.push((close..close, STREAM_OPTIONS.to_vec()));
            }
        }
    }
    edits.sort_by_key(|(span, _)| span.start);
    let extra: usize = edits.iter().map(|(_, bytes)| bytes.len()).sum();
    let mut out = Vec::with_capacity(raw.len() + extra);
    let mut at = 0;
    for (span, bytes) in edits {
        out.extend_from_slice(&raw[at..span.start]);
        out.extend_from_slice(&bytes);
        at = span.end;
    }
    out.extend_from_slice(&raw[at..]);
    Some(out)
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
