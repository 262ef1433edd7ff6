//! Tests of the Anthropic stream decoder (upstream side) and encoder (client side).

use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_types::{
    ApiError, ChatRequest, Delta, ErrorKind, FinishReason, Origin, ResponseFormat, StreamEvent,
    Usage,
};

use super::{Decoder, Encoder};
use crate::sse::SseParser;

const TOOL_USE: &str = include_str!("../../../tests/fixtures/anthropic/stream_tool_use.sse");

/// Decodes `chunks` and finishes; `created` is zeroed (it is the decoding time).
fn decode_chunks(request: &ChatRequest, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, ApiError> {
    let mut decoder = Decoder::new(request);
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk, &mut events)?;
    }
    decoder.finish(&mut events)?;
    for event in &mut events {
        if let StreamEvent::Start { created, .. } = event {
            assert!(*created > 1_700_000_000);
            *created = 0;
        }
    }
    Ok(events)
}

fn delta(delta: Delta) -> StreamEvent {
    StreamEvent::Delta { choice: 0, delta }
}

fn args(index: u32, arguments: &str) -> StreamEvent {
    delta(Delta::ToolCallArgs {
        index,
        arguments: arguments.into(),
    })
}

fn tool_use_events() -> Vec<StreamEvent> {
    let input = Usage {
        prompt_tokens: 600,
        completion_tokens: 2,
        cache_read_tokens: 128,
        ..Usage::default()
    };
    vec![
        StreamEvent::Start {
            id: "msg_014p7gG3wDgGV9EUtLvnow3U".into(),
            model: "claude-sonnet-4-5-20250929".into(),
            created: 0,
            system_fingerprint: None,
        },
        StreamEvent::Usage(input),
        delta(Delta::Text("Okay".into())),
        delta(Delta::Text(
            ", let's check the weather for San Francisco, CA:".into(),
        )),
        delta(Delta::ToolCallStart {
            index: 0,
            id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
            name: "get_weather".into(),
        }),
        args(0, "{\"location\":"),
        args(0, " \"San Francisc"),
        args(0, "o, CA\", \"unit\": \"fah"),
        args(0, "renheit\"}"),
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
            stop_sequence: None,
        },
        StreamEvent::Usage(Usage {
            completion_tokens: 89,
            ..input
        }),
    ]
}

#[test]
fn decodes_the_documented_tool_use_stream() {
    let events = decode_chunks(&ChatRequest::default(), &[TOOL_USE.as_bytes()]).expect("decodes");
    assert_eq!(events, tool_use_events());
}

#[test]
fn decodes_byte_by_byte() {
    let bytes: Vec<&[u8]> = TOOL_USE.as_bytes().chunks(1).collect();
    let events = decode_chunks(&ChatRequest::default(), &bytes).expect("decodes");
    assert_eq!(events, tool_use_events());
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_events(cuts in proptest::collection::vec(0usize..4000, 0..24)) {
        let stream = TOOL_USE.as_bytes();
        let mut points: Vec<usize> = cuts.into_iter().map(|cut| cut % (stream.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for point in points {
            chunks.push(&stream[last..point]);
            last = point;
        }
        chunks.push(&stream[last..]);
        let events = decode_chunks(&ChatRequest::default(), &chunks).expect("decodes");
        prop_assert_eq!(events, tool_use_events());
    }
}

#[test]
fn a_stream_cut_before_message_stop_is_an_error() {
    let cut = TOOL_USE
        .find("event: message_stop")
        .expect("fixture has message_stop");
    let mut decoder = Decoder::new(&ChatRequest::default());
    let mut events = Vec::new();
    decoder
        .push(&TOOL_USE.as_bytes()[..cut], &mut events)
        .expect("valid so far");
    assert_eq!(
        events.len(),
        tool_use_events().len(),
        "everything before the cut is decoded"
    );
    let error = decoder.finish(&mut events).expect_err("cut short");
    assert_eq!(
        (error.kind, error.origin),
        (ErrorKind::BadGateway, Origin::Upstream)
    );
    assert!(
        error.message.contains("before message_stop"),
        "{}",
        error.message
    );

    // Cut inside an event.
    let cut = TOOL_USE
        .find("renheit")
        .expect("fixture has the last piece");
    let mut decoder = Decoder::new(&ChatRequest::default());
    decoder
        .push(&TOOL_USE.as_bytes()[..cut], &mut events)
        .expect("valid so far");
    let error = decoder.finish(&mut events).expect_err("cut short");
    assert!(
        error.message.contains("before message_stop"),
        "{}",
        error.message
    );
}

#[test]
fn a_last_event_without_its_blank_line_still_counts() {
    let trimmed = TOOL_USE.trim_end();
    let events = decode_chunks(&ChatRequest::default(), &[trimmed.as_bytes()]).expect("decodes");
    assert_eq!(events, tool_use_events());
}

#[test]
fn error_events_and_malformed_events_fail_the_stream() {
    let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n\
        event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    let mut decoder = Decoder::new(&ChatRequest::default());
    let mut events = Vec::new();
    let error = decoder
        .push(stream.as_bytes(), &mut events)
        .expect_err("error event");
    assert_eq!(error.kind, ErrorKind::Overloaded);
    assert_eq!(error.origin, Origin::Upstream);
    assert_eq!(error.message, "Overloaded");
    assert_eq!(error.code.as_deref(), Some("overloaded_error"));
    assert_eq!(events.len(), 2, "the start was decoded before the error");

    let mut decoder = Decoder::new(&ChatRequest::default());
    let error = decoder
        .push(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":\n\n", &mut events)
        .expect_err("malformed");
    assert_eq!(error.kind, ErrorKind::BadGateway);
    assert_eq!(error.message, "malformed event from upstream Anthropic");
}

#[test]
fn decodes_thinking_and_ignores_unknown_events() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":10,\"output_tokens\":0}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me think\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCg==\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: future_event\ndata: {\"type\":\"future_event\",\"x\":1}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"42\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"###\"},\"usage\":{\"output_tokens\":7}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let events = decode_chunks(&ChatRequest::default(), &[stream.as_bytes()]).expect("decodes");
    assert_eq!(
        events[2..],
        [
            delta(Delta::Thinking("Let me think".into())),
            delta(Delta::ThinkingSignature("EqQBCg==".into())),
            delta(Delta::Text("42".into())),
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop,
                stop_sequence: Some("###".into()),
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 10,
                completion_tokens: 7,
                ..Usage::default()
            }),
        ]
    );
}

#[test]
fn json_mode_tool_input_streams_as_text() {
    let request = ChatRequest {
        response_format: Some(ResponseFormat::JsonSchema {
            name: "w".into(),
            description: None,
            schema: json!({"type": "object"}),
            strict: None,
        }),
        ..ChatRequest::default()
    };
    let stream = TOOL_USE.replace("\"name\":\"get_weather\"", "\"name\":\"json_tool_call\"");
    let events = decode_chunks(&request, &[stream.as_bytes()]).expect("decodes");
    let text: String = events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::Delta {
                delta: Delta::Text(text),
                ..
            } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        text,
        // The text block before the forced call is preamble and is dropped.
        "{\"location\": \"San Francisco, CA\", \"unit\": \"fahrenheit\"}"
    );
    assert!(!events.iter().any(|event| matches!(
        event,
        StreamEvent::Delta {
            delta: Delta::ToolCallStart { .. } | Delta::ToolCallArgs { .. },
            ..
        }
    )));
    assert!(events.contains(&StreamEvent::Finish {
        choice: 0,
        reason: FinishReason::Stop,
        stop_sequence: None
    }));
}

/// Parses SSE bytes back into `(event name, data)` pairs.
fn parse_sse(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    parser.push(bytes, &mut events);
    assert!(!parser.has_pending(), "every event is terminated");
    events
        .into_iter()
        .map(|event| {
            let data: Value = serde_json::from_str(&event.data).expect("data is JSON");
            let name = event.event.expect("every event is named");
            assert_eq!(data["type"], json!(name), "event name matches data type");
            (name, data)
        })
        .collect()
}

fn encode_all(request: &ChatRequest, events: &[StreamEvent]) -> Vec<u8> {
    let mut encoder = Encoder::new(request);
    let mut out = Vec::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    out
}

/// The canonical events of a streamed OpenAI answer with text and two tool calls.
fn openai_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: "chatcmpl-123".into(),
            model: "gpt-4o".into(),
            created: 1_694_268_190,
            system_fingerprint: Some("fp_44709d6fcb".into()),
        },
        delta(Delta::Text("Let me ".into())),
        delta(Delta::Text("check.".into())),
        delta(Delta::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "get_weather".into(),
        }),
        args(0, "{\"city\":"),
        args(0, "\"Paris\"}"),
        delta(Delta::ToolCallStart {
            index: 1,
            id: "call_2".into(),
            name: "get_time".into(),
        }),
        args(1, "{}"),
        StreamEvent::Delta {
            choice: 1,
            delta: Delta::Text("other choice".into()),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
            stop_sequence: None,
        },
        StreamEvent::Usage(Usage {
            prompt_tokens: 100,
            completion_tokens: 20,
            cache_read_tokens: 64,
            ..Usage::default()
        }),
    ]
}

#[test]
fn encodes_an_openai_stream_as_anthropic_events() {
    let out = encode_all(&ChatRequest::default(), &openai_events());
    assert!(out.starts_with(b"event: message_start\ndata: {\"type\":\"message_start\""));
    let block_start = |index: u32, block: Value| json!({"type": "content_block_start", "index": index, "content_block": block});
    let block_delta = |index: u32, delta: Value| json!({"type": "content_block_delta", "index": index, "delta": delta});
    let block_stop = |index: u32| json!({"type": "content_block_stop", "index": index});
    let expected = vec![
        json!({"type": "message_start", "message": {
            "id": "msg_chatcmpl-123", "type": "message", "role": "assistant", "model": "gpt-4o",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}
        }}),
        json!({"type": "ping"}),
        block_start(0, json!({"type": "text", "text": ""})),
        block_delta(0, json!({"type": "text_delta", "text": "Let me "})),
        block_delta(0, json!({"type": "text_delta", "text": "check."})),
        block_stop(0),
        block_start(
            1,
            json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}),
        ),
        block_delta(
            1,
            json!({"type": "input_json_delta", "partial_json": "{\"city\":"}),
        ),
        block_delta(
            1,
            json!({"type": "input_json_delta", "partial_json": "\"Paris\"}"}),
        ),
        block_stop(1),
        block_start(
            2,
            json!({"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}),
        ),
        block_delta(2, json!({"type": "input_json_delta", "partial_json": "{}"})),
        block_stop(2),
        json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 36, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 64, "output_tokens": 20}}),
        json!({"type": "message_stop"}),
    ];
    let data: Vec<Value> = parse_sse(&out).into_iter().map(|(_, data)| data).collect();
    assert_eq!(data, expected);
}

#[test]
fn encoder_output_decodes_back_to_the_same_content() {
    let out = encode_all(&ChatRequest::default(), &openai_events());
    let events = decode_chunks(&ChatRequest::default(), &[&out]).expect("decodes");
    let content = |events: &[StreamEvent]| -> Vec<StreamEvent> {
        events
            .iter()
            .filter(|event| {
                matches!(
                    event,
                    StreamEvent::Delta { choice: 0, .. } | StreamEvent::Finish { .. }
                )
            })
            .cloned()
            .collect()
    };
    assert_eq!(content(&events), content(&openai_events()));
    assert_eq!(
        events.last(),
        openai_events().last(),
        "final usage survives"
    );
}

#[test]
fn encodes_thinking_and_text_before_start() {
    let request = ChatRequest {
        model: "claude-via-gateway".into(),
        ..ChatRequest::default()
    };
    let events = [
        delta(Delta::Thinking("Hmm".into())),
        delta(Delta::ThinkingSignature("sig".into())),
        delta(Delta::Thinking("Again".into())),
        delta(Delta::Refusal("No.".into())),
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Stop,
            stop_sequence: Some("###".into()),
        },
    ];
    let out = parse_sse(&encode_all(&request, &events));
    let names: Vec<&str> = out.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let message = &out[0].1["message"];
    assert!(
        message["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("msg_") && id.len() > 4)
    );
    assert_eq!(message["model"], json!("claude-via-gateway"));
    assert_eq!(
        out[2].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        out[4].1["delta"],
        json!({"type": "signature_delta", "signature": "sig"})
    );
    assert_eq!(
        out[6].1["index"],
        json!(1),
        "signed thinking is closed, new thinking gets a block"
    );
    assert_eq!(
        out[10].1["delta"],
        json!({"type": "text_delta", "text": "No."})
    );
    assert_eq!(
        out[12].1["delta"],
        json!({"stop_reason": "stop_sequence", "stop_sequence": "###"})
    );
}

#[test]
fn encoder_errors_end_the_stream() {
    let mut encoder = Encoder::new(&ChatRequest::default());
    let mut out = Vec::new();
    encoder.encode(&openai_events()[0], &mut out);
    encoder.encode(&delta(Delta::Text("partial".into())), &mut out);
    let error = ApiError::upstream(ErrorKind::Overloaded, "Overloaded");
    encoder.error(&error, &mut out);
    encoder.encode(&delta(Delta::Text("late".into())), &mut out);
    encoder.finish(&mut out);
    let events = parse_sse(&out);
    let (name, data) = events.last().expect("events");
    assert_eq!(name, "error");
    assert_eq!(
        data,
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(
        events.len(),
        5,
        "start, ping, block start, delta, error: nothing after"
    );
}

#[test]
fn an_empty_stream_still_has_a_message() {
    let out = parse_sse(&encode_all(&ChatRequest::default(), &[]));
    let names: Vec<&str> = out.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["message_start", "ping", "message_delta", "message_stop"]
    );
    assert_eq!(out[2].1["delta"]["stop_reason"], json!("end_turn"));
}
