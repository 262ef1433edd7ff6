//! Golden tests of Converse answers read into the canonical response.

use serde_json::json;
use switchyard_types::{
    ChatRequest, Choice, ContentPart, ErrorKind, FinishReason, Origin, ResponseFormat, ToolCall,
    Usage,
};

use super::decode;

/// The tool request of AWS's "Call a tool with the Converse API" example, with its usage.
const TOOL_USE: &str = include_str!("../../../tests/fixtures/bedrock/response_tool_use.json");
/// A Claude answer with reasoning, redacted reasoning, text in two blocks and cache counts.
const REASONING: &str = include_str!("../../../tests/fixtures/bedrock/response_reasoning.json");

fn request() -> ChatRequest {
    ChatRequest {
        model: "radio".into(),
        ..ChatRequest::default()
    }
}

#[test]
fn decodes_the_documented_tool_request() {
    let response = decode(TOOL_USE.as_bytes(), &request()).expect("decodes");
    assert!(response.id.starts_with("bedrock-"), "{}", response.id);
    assert!(response.created > 1_700_000_000);
    assert_eq!(response.model, "radio");
    assert_eq!(
        response.choices,
        vec![Choice {
            tool_calls: vec![ToolCall {
                id: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q".into(),
                name: "top_song".into(),
                arguments: r#"{"sign":"WZPZ"}"#.into(),
            }],
            finish_reason: FinishReason::ToolCalls,
            ..Choice::new(0)
        }]
    );
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 375,
            completion_tokens: 36,
            ..Usage::default()
        }
    );
}

#[test]
fn decodes_reasoning_text_and_cache_counts() {
    let response = decode(REASONING.as_bytes(), &request()).expect("decodes");
    assert_eq!(
        response.choices,
        vec![Choice {
            content: vec![
                ContentPart::Thinking {
                    text: "The user asks for the most popular song on WZPZ; the tool said \
                           Elemental Hotel by 8 Storey Hike."
                        .into(),
                    signature: Some("ErcBCkgIAxABGAIiQMDqt8XBMTYXzIjg5yIBr2Qd".into()),
                },
                ContentPart::RedactedThinking {
                    data: "RXJyb3I6IHJlZGFjdGVkIGJ5IHNhZmV0eSBzeXN0ZW1z".into(),
                },
                ContentPart::text(
                    "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike."
                ),
            ],
            ..Choice::new(0)
        }]
    );
    // Bedrock's `inputTokens` leaves out the cache; the canonical prompt count includes it.
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 12 + 1024 + 500,
            completion_tokens: 88,
            cache_read_tokens: 1024,
            cache_write_tokens: 500,
            reasoning_tokens: 0,
            ..Usage::default()
        }
    );
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop_reason, expected) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("model_context_window_exceeded", FinishReason::Length),
        ("guardrail_intervened", FinishReason::ContentFilter),
        ("content_filtered", FinishReason::ContentFilter),
        ("tool_use", FinishReason::ToolCalls),
        ("something_new", FinishReason::Other("something_new".into())),
    ] {
        let body = json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
            "stopReason": stop_reason,
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}
        });
        let response = decode(body.to_string().as_bytes(), &request()).expect("decodes");
        assert_eq!(response.choices[0].finish_reason, expected, "{stop_reason}");
    }
}

#[test]
fn a_claude_stop_sequence_is_reported() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "1, 2, 3"}]}},
        "stopReason": "stop_sequence",
        "additionalModelResponseFields": {"stop_sequence": "4"},
        "usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}
    });
    let response = decode(body.to_string().as_bytes(), &request()).expect("decodes");
    assert_eq!(response.choices[0].stop_sequence.as_deref(), Some("4"));
}

#[test]
fn the_json_schema_tool_becomes_answer_text() {
    let request = ChatRequest {
        response_format: Some(ResponseFormat::JsonSchema {
            name: "song".into(),
            description: None,
            schema: json!({"type": "object"}),
            strict: None,
        }),
        ..request()
    };
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Here is the JSON:"},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "json_tool_call", "input": {"song": "Elemental Hotel"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29}
    });
    let response = decode(body.to_string().as_bytes(), &request).expect("decodes");
    assert_eq!(
        response.choices,
        vec![Choice {
            content: vec![ContentPart::text(r#"{"song":"Elemental Hotel"}"#)],
            ..Choice::new(0)
        }]
    );

    // A call to one of the client's tools stays a call.
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "tooluse_2", "name": "top_song", "input": {"sign": "WZPZ"}}}
        ]}},
        "stopReason": "tool_use"
    });
    let response = decode(body.to_string().as_bytes(), &request).expect("decodes");
    assert_eq!(response.choices[0].finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.choices[0].tool_calls[0].name, "top_song");
    assert_eq!(response.usage, Usage::default());
}

#[test]
fn unreadable_answers_are_upstream_errors() {
    let error = decode(b"<html>oops</html>", &request()).expect_err("not JSON");
    assert_eq!(
        (error.kind, error.origin),
        (ErrorKind::BadGateway, Origin::Upstream)
    );
    assert_eq!(error.code.as_deref(), Some("upstream_malformed_response"));
    assert!(!error.message.contains("oops"), "{}", error.message);

    let error = decode(br#"{"stopReason": "end_turn"}"#, &request()).expect_err("no output");
    assert_eq!(error.kind, ErrorKind::BadGateway);
}

/// The tier that served the call (`serviceTier.type`) reaches the usage the call is priced by;
/// `default` and `reserved` are standard, and an answer without one is standard.
#[test]
fn the_service_tier_is_read() {
    for (said, tier) in [
        (Some("priority"), switchyard_types::ServiceTier::Priority),
        (Some("flex"), switchyard_types::ServiceTier::Flex),
        (Some("default"), switchyard_types::ServiceTier::Standard),
        (Some("reserved"), switchyard_types::ServiceTier::Standard),
        (None, switchyard_types::ServiceTier::Standard),
    ] {
        let mut body = json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}
        });
        if let Some(said) = said {
            body["serviceTier"] = json!({"type": said});
        }
        let response = decode(body.to_string().as_bytes(), &request()).expect("decodes");
        assert_eq!(response.usage.service_tier, tier, "{said:?}");
        assert_eq!(response.usage.prompt_tokens, 5);
    }
}
