//! JSON parsing that names the offending field, for errors a client can act on.

pub(crate) mod scan;

use serde::de::DeserializeOwned;
use switchyard_types::ApiError;

/// Parses JSON bytes like `serde_json::from_slice`, with the same errors, but checks that the
/// text is UTF-8 once for the whole body rather than once per string in it (several times
/// cheaper on the small bodies of chat calls).
pub fn from_bytes<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// Parses `body` as `T`; on failure the error names the field path (`messages[0].content`).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Tracking the path costs on every field; only a body that fails is parsed again with it.
    match from_bytes(body) {
        Ok(value) => Ok(value),
        Err(_) => parse_tracked(body),
    }
}

fn parse_tracked<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|error| {
                ApiError::invalid_request(format!("Invalid JSON: {error}"), None)
            })?;
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::invalid_request(
                    format!("Invalid JSON in request body: {inner}"),
                    None,
                ));
            }
            let param = (path != ".").then_some(path);
            let message = match &param {
                Some(path) => format!("Invalid value for '{path}': {inner}"),
                None => format!("Invalid request body: {inner}"),
            };
            Err(ApiError::invalid_request(message, param))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct Body {
        model: String,
        messages: Vec<Msg>,
    }

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct Msg {
        content: String,
    }

    #[test]
    fn names_the_field_with_the_wrong_type() {
        let error = parse::<Body>(br#"{"model":"m","messages":[{"content":5}]}"#).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("messages[0].content"));
        assert!(error.message.contains("invalid type"), "{}", error.message);
    }

    #[test]
    fn reports_syntax_errors_without_a_field() {
        let error = parse::<Body>(b"{\"model\": ").unwrap_err();
        assert_eq!(error.param, None);
        assert!(
            error.message.starts_with("Invalid JSON"),
            "{}",
            error.message
        );
    }

    #[test]
    fn names_a_missing_field() {
        let error = parse::<Body>(br#"{"messages":[]}"#).unwrap_err();
        assert!(
            error.message.contains("missing field `model`"),
            "{}",
            error.message
        );
    }
}
