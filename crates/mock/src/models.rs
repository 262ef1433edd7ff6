//! `GET /v1/models`: the mock's model list, in OpenAI's shape, or in Anthropic's when the
//! request carries an `anthropic-version` header. The bodies are fixed, so they are constants.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::reply;

/// OpenAI's `list` of `model` objects.
const OPENAI_MODELS: &str = concat!(
    r#"{"object":"list","data":["#,
    r#"{"id":"echo","object":"model","created":1700000000,"owned_by":"switchyard-mock"},"#,
    r#"{"id":"mock-gpt-4o","object":"model","created":1700000000,"owned_by":"switchyard-mock"},"#,
    r#"{"id":"mock-gpt-4o-mini","object":"model","created":1700000000,"owned_by":"switchyard-mock"},"#,
    r#"{"id":"mock-claude-sonnet","object":"model","created":1700000000,"owned_by":"switchyard-mock"}"#,
    r#"]}"#
);

/// Anthropic's paginated model list.
const ANTHROPIC_MODELS: &str = concat!(
    r#"{"data":["#,
    r#"{"type":"model","id":"mock-claude-sonnet","display_name":"Mock Claude Sonnet","created_at":"2023-11-14T22:13:20Z"},"#,
    r#"{"type":"model","id":"echo","display_name":"Echo","created_at":"2023-11-14T22:13:20Z"}"#,
    r#"],"has_more":false,"first_id":"mock-claude-sonnet","last_id":"echo"}"#
);

/// Lists the mock models.
pub(crate) async fn list(headers: HeaderMap) -> Response {
    let body = if headers.contains_key("anthropic-version") {
        ANTHROPIC_MODELS
    } else {
        OPENAI_MODELS
    };
    reply::json(StatusCode::OK, body.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_lists_are_json() {
        for body in [OPENAI_MODELS, ANTHROPIC_MODELS] {
            let value: serde_json::Value = serde_json::from_str(body).expect("valid JSON");
            assert!(
                value["data"]
                    .as_array()
                    .is_some_and(|data| !data.is_empty())
            );
        }
    }
}
