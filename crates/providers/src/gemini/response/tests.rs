//! Golden tests of Gemini answer decoding.

use serde_json::json;
use switchyard_types::{
    ChatRequest, ChatResponse, Choice, ContentPart, ErrorKind, FinishReason, Origin, ToolCall,
    Usage,
};

use super::decode;

const FUNCTION_CALL: &str =
    include_str!("../../../tests/fixtures/gemini/response_function_call.json");
const SAFETY: &str = include_str!("../../../tests/fixtures/gemini/response_safety.json");
const PROMPT_BLOCKED: &str =
    include_str!("../../../tests/fixtures/gemini/response_prompt_blocked.json");

fn request() -> ChatRequest {
    ChatRequest {
        model: "weather-bot".into(),
        ..ChatRequest::default()
    }
}

#[test]
fn decodes_parallel_function_calls_with_thoughts_and_usage() {
    let response = decode(FUNCTION_CALL.as_bytes(), &request()).expect("decodes");
    assert!(response.created > 1_700_000_000, "created is now");
    let expected = ChatResponse {
        id: "mpBYaLDSLc2m1dkP-6T8gAU".into(),
        model: "gemini-2.5-flash".into(),
        created: response.created,
        choices: vec![Choice {
            content: vec![
                // The two thought parts are one piece of reasoning.
                ContentPart::Thinking {
                    text: "**Planning the calls**\n\nThe user wants the temperature in London and in Paris, so I will call the tool twice.".into(),
                    signature: None,
                },
                ContentPart::text("I'll check both cities."),
                // The first call's signature, kept for the next request.
                ContentPart::Thinking {
                    text: String::new(),
                    signature: Some(
                        "CiwBVKhc7nRyTi3HmggPD9iQiRLe1pTyOhMm6RkHeUM9CR1ouHgWrFchRgA=".into(),
                    ),
                },
            ],
            tool_calls: vec![
                ToolCall {
                    id: "call_mpBYaLDSLc2m1dkP-6T8gAU_0".into(),
                    name: "get_current_temperature".into(),
                    arguments: r#"{"location":"London"}"#.into(),
                },
                ToolCall {
                    id: "call_mpBYaLDSLc2m1dkP-6T8gAU_1".into(),
                    name: "get_current_temperature".into(),
                    arguments: r#"{"location":"Paris"}"#.into(),
                },
            ],
            finish_reason: FinishReason::ToolCalls,
            ..Choice::new(0)
        }],
        usage: Usage {
            prompt_tokens: 1250,
            completion_tokens: 42 + 111,
            cache_read_tokens: 1024,
            cache_write_tokens: 0,
            reasoning_tokens: 111,
            ..Usage::default()
        },
        system_fingerprint: None,
        service_tier: None,
    };
    assert_eq!(response, expected);
}

#[test]
fn a_safety_stop_is_a_content_filter_finish() {
    let response = decode(SAFETY.as_bytes(), &request()).expect("decodes");
    assert_eq!(response.id, "b3J5aN-WJ7OH1dkP8qS3sQM");
    assert_eq!(response.model, "gemini-2.0-flash");
    assert_eq!(
        response.choices,
        vec![Choice {
            finish_reason: FinishReason::ContentFilter,
            ..Choice::new(0)
        }]
    );
    assert_eq!(response.usage.prompt_tokens, 18);
    assert_eq!(response.usage.completion_tokens, 0);
}

#[test]
fn a_blocked_prompt_is_a_client_error() {
    let error = decode(PROMPT_BLOCKED.as_bytes(), &request()).expect_err("blocked");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert_eq!(error.origin, Origin::Client);
    assert_eq!(error.code.as_deref(), Some("content_filter"));
    assert!(
        error.message.contains("PROHIBITED_CONTENT"),
        "{}",
        error.message
    );
    assert!(!error.retryable());
}

#[test]
fn finish_reasons_map_to_canonical_ones() {
    for (reason, expected) in [
        ("STOP", FinishReason::Stop),
        ("MAX_TOKENS", FinishReason::Length),
        ("SAFETY", FinishReason::ContentFilter),
        ("RECITATION", FinishReason::ContentFilter),
        ("BLOCKLIST", FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
        ("SPII", FinishReason::ContentFilter),
        (
            "MALFORMED_FUNCTION_CALL",
            FinishReason::Other("malformed_function_call".into()),
        ),
        ("OTHER", FinishReason::Other("other".into())),
    ] {
        let body = json!({
            "candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": reason}]
        });
        let response = decode(body.to_string().as_bytes(), &request()).expect("decodes");
        assert_eq!(response.choices[0].finish_reason, expected, "{reason}");
    }
}

#[test]
fn several_candidates_ids_and_signed_text() {
    // Vertex leaves out `index` and (in older versions) `responseId`; a text part can carry
    // the signature of an answer without calls.
    let body = json!({
        "candidates": [
            {"content": {"parts": [{"text": "Hello", "thoughtSignature": "sig-0"}], "role": "model"}, "finishReason": "STOP"},
            {"content": {"parts": [{"functionCall": {"id": "fc-7", "name": "ping"}}], "role": "model"}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}
    });
    let response = decode(body.to_string().as_bytes(), &request()).expect("decodes");
    assert!(response.id.starts_with("gemini-"), "{}", response.id);
    assert_eq!(response.model, "weather-bot");
    assert_eq!(
        response.choices,
        vec![
            Choice {
                content: vec![
                    ContentPart::Thinking {
                        text: String::new(),
                        signature: Some("sig-0".into()),
                    },
                    ContentPart::text("Hello"),
                ],
                ..Choice::new(0)
            },
            Choice {
                tool_calls: vec![ToolCall {
                    id: "fc-7".into(),
                    name: "ping".into(),
                    arguments: "{}".into(),
                }],
                finish_reason: FinishReason::ToolCalls,
                ..Choice::new(1)
            },
        ]
    );
}

#[test]
fn unreadable_and_empty_answers_are_upstream_errors() {
    let error = decode(b"<html>oops</html>", &request()).expect_err("not JSON");
    assert_eq!(
        (error.kind, error.origin),
        (ErrorKind::BadGateway, Origin::Upstream)
    );
    assert!(!error.message.contains("oops"), "{}", error.message);

    let error = decode(br#"{"usageMetadata": {"promptTokenCount": 3}}"#, &request())
        .expect_err("no candidates");
    assert_eq!(error.kind, ErrorKind::BadGateway);

    let body = br#"{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}"#;
    let error = decode(body, &request()).expect_err("error body");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert_eq!(error.message, "The model is overloaded.");
}
