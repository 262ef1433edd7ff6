//! Golden tests of Anthropic message decoding (upstream side) and encoding (client side).

use serde_json::{Value, json};
use switchyard_types::{
    ChatRequest, ChatResponse, Choice, ContentPart, ErrorKind, FinishReason, ResponseFormat,
    ToolCall, Usage,
};

use super::{decode, encode};

const TOOL_USE: &str = include_str!("../../../tests/fixtures/anthropic/response_tool_use.json");

fn encoded(response: &ChatResponse) -> Value {
    serde_json::from_slice(&encode(response)).expect("JSON")
}

#[test]
fn decodes_a_tool_use_message() {
    let response = decode(TOOL_USE.as_bytes(), &ChatRequest::default()).expect("decodes");
    assert!(response.created > 1_700_000_000, "created is now");
    let expected = ChatResponse {
        id: "msg_01Aq9w938a90dw8q".into(),
        model: "claude-sonnet-4-5-20250929".into(),
        created: response.created,
        choices: vec![Choice {
            content: vec![
                ContentPart::Thinking {
                    text: "The user wants the weather; call the tool.".into(),
                    signature: Some("EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds".into()),
                },
                ContentPart::text("I'll check the current weather in San Francisco for you."),
            ],
            tool_calls: vec![ToolCall {
                id: "toolu_01A09q90qw90lq917835lq9".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"San Francisco, CA","unit":"celsius"}"#.into(),
            }],
            finish_reason: FinishReason::ToolCalls,
            ..Choice::new(0)
        }],
        usage: Usage {
            prompt_tokens: 3042,
            completion_tokens: 87,
            cache_read_tokens: 2000,
            cache_write_tokens: 1000,
            reasoning_tokens: 0,
            ..Usage::default()
        },
        system_fingerprint: None,
        service_tier: None,
    };
    assert_eq!(response, expected);
}

#[test]
fn anthropic_message_round_trips() {
    let response = decode(TOOL_USE.as_bytes(), &ChatRequest::default()).expect("decodes");
    let original: Value = serde_json::from_str(TOOL_USE).expect("fixture is JSON");
    assert_eq!(encoded(&response), original);
}

#[test]
fn stop_reasons_map_both_ways() {
    for (anthropic, canonical, stop_sequence) in [
        ("end_turn", FinishReason::Stop, None),
        ("stop_sequence", FinishReason::Stop, Some("###")),
        ("max_tokens", FinishReason::Length, None),
        ("tool_use", FinishReason::ToolCalls, None),
        ("refusal", FinishReason::ContentFilter, None),
        ("pause_turn", FinishReason::Other("pause_turn".into()), None),
    ] {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": "x"}],
            "stop_reason": anthropic, "stop_sequence": stop_sequence,
            "usage": {"input_tokens": 1, "output_tokens": 1}
        });
        let response =
            decode(body.to_string().as_bytes(), &ChatRequest::default()).expect("decodes");
        assert_eq!(response.choices[0].finish_reason, canonical, "{anthropic}");
        assert_eq!(response.choices[0].stop_sequence.as_deref(), stop_sequence);
        let back = encoded(&response);
        assert_eq!(back["stop_reason"], json!(anthropic));
        assert_eq!(back["stop_sequence"], json!(stop_sequence));
    }
}

#[test]
fn json_tool_answer_becomes_text() {
    let request = ChatRequest {
        response_format: Some(ResponseFormat::JsonSchema {
            name: "report".into(),
            description: None,
            schema: json!({"type": "object"}),
            strict: None,
        }),
        ..ChatRequest::default()
    };
    let body = br#"{"id":"msg_2","type":"message","role":"assistant","model":"m",
        "content":[{"type":"text","text":"Here is the JSON."},{"type":"tool_use","id":"toolu_9","name":"json_tool_call","input":{"summary": "sunny", "temp": 21}}],
        "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":4}}"#;
    let response = decode(body, &request).expect("decodes");
    let choice = &response.choices[0];
    assert_eq!(
        choice.text().as_deref(),
        Some(r#"{"summary":"sunny","temp":21}"#)
    );
    assert!(choice.tool_calls.is_empty());
    assert_eq!(choice.finish_reason, FinishReason::Stop);
    // Text before the forced call is preamble, not part of the JSON answer.
    // Without the emulation the same body is an ordinary tool call.
    let plain = decode(body, &ChatRequest::default()).expect("decodes");
    assert_eq!(plain.choices[0].tool_calls[0].name, "json_tool_call");
    assert_eq!(plain.choices[0].finish_reason, FinishReason::ToolCalls);
}

#[test]
fn encodes_an_openai_upstream_answer_for_an_anthropic_client() {
    let response = ChatResponse {
        id: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT".into(),
        model: "gpt-4o-2024-08-06".into(),
        created: 1_741_569_952,
        choices: vec![
            Choice {
                content: vec![
                    ContentPart::text("Checking both."),
                    ContentPart::Thinking {
                        text: "two calls".into(),
                        signature: None,
                    },
                ],
                tool_calls: vec![
                    ToolCall {
                        id: "call_1".into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Paris"}"#.into(),
                    },
                    ToolCall {
                        id: "call_2".into(),
                        name: "get_time".into(),
                        arguments: "not json".into(),
                    },
                ],
                finish_reason: FinishReason::ToolCalls,
                ..Choice::new(0)
            },
            Choice::new(1),
        ],
        usage: Usage {
            prompt_tokens: 100,
            completion_tokens: 20,
            cache_read_tokens: 64,
            cache_write_tokens: 0,
            reasoning_tokens: 5,
            ..Usage::default()
        },
        system_fingerprint: Some("fp_1".into()),
        service_tier: None,
    };
    assert_eq!(
        encoded(&response),
        json!({
            "id": "msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "type": "message",
            "role": "assistant",
            "model": "gpt-4o-2024-08-06",
            "content": [
                {"type": "thinking", "thinking": "two calls", "signature": ""},
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 36,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 64,
                "output_tokens": 20
            }
        })
    );
}

#[test]
fn refusals_and_empty_answers() {
    let response = ChatResponse {
        id: "msg_x".into(),
        choices: vec![Choice {
            refusal: Some("I can't help with that.".into()),
            ..Choice::new(0)
        }],
        ..ChatResponse::default()
    };
    let body = encoded(&response);
    assert_eq!(body["id"], json!("msg_x"));
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "I can't help with that."}])
    );
    assert_eq!(body["stop_reason"], json!("refusal"));

    let body = encoded(&ChatResponse::default());
    assert_eq!(body["content"], json!([]));
    assert_eq!(body["stop_reason"], json!("end_turn"));
}

#[test]
fn malformed_upstream_bodies_are_bad_gateway() {
    for body in [
        &b"{\"id\": "[..],
        b"<html>oops</html>",
        br#"{"id":"msg_1"}"#,
    ] {
        let error = decode(body, &ChatRequest::default()).expect_err("malformed");
        assert_eq!(error.kind, ErrorKind::BadGateway);
        assert!(!error.message.contains("oops"), "{}", error.message);
    }
}

/// Regression: another provider's finish reason reached Anthropic clients verbatim.
#[test]
fn reasons_anthropic_has_no_name_for_are_end_turn() {
    use switchyard_types::FinishReason;
    let name = |reason: &str| {
        super::stop_reason_name(&FinishReason::Other(reason.into()), None).to_owned()
    };
    assert_eq!(name("malformed_function_call"), "end_turn");
    assert_eq!(name("pause_turn"), "pause_turn");
}
