//! Tests of the ConverseStream decoder, fed real event-stream frames built with
//! `aws-smithy-eventstream`'s writer.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_types::{
    ApiError, ChatRequest, Delta, ErrorKind, FinishReason, Origin, ResponseFormat, StreamEvent,
    Usage,
};

use super::Decoder;

/// `[event type, payload]` pairs of a Claude answer: reasoning, text, then a tool call.
const REASONING_TEXT_TOOL: &str =
    include_str!("../../../tests/fixtures/bedrock/stream_reasoning_text_tool.json");

fn string(value: &str) -> HeaderValue {
    HeaderValue::String(value.to_owned().into())
}

/// One frame as Bedrock writes it.
fn frame(headers: &[(&'static str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut message = Message::new(payload.to_vec());
    for (name, value) in headers {
        message = message.add_header(Header::new(*name, string(value)));
    }
    let mut bytes = Vec::new();
    write_message_to(&message, &mut bytes).expect("writes the frame");
    bytes
}

fn event(event_type: &str, payload: &Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"message": message}).to_string().as_bytes(),
    )
}

/// The fixture's frames, one per event.
fn fixture_frames() -> Vec<Vec<u8>> {
    let events: Vec<(String, Value)> =
        serde_json::from_str(REASONING_TEXT_TOOL).expect("fixture is JSON");
    events
        .iter()
        .map(|(event_type, payload)| event(event_type, payload))
        .collect()
}

/// The fixture's frames, concatenated.
fn fixture_stream() -> Vec<u8> {
    fixture_frames().concat()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "radio".into(),
        ..ChatRequest::default()
    }
}

/// Decodes `chunks` and finishes; the generated id and `created` are blanked.
fn decode_chunks(request: &ChatRequest, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, ApiError> {
    let mut decoder = Decoder::new(request);
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk, &mut events)?;
    }
    decoder.finish(&mut events)?;
    Ok(blank(events))
}

fn blank(mut events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    for event in &mut events {
        if let StreamEvent::Start { id, created, .. } = event {
            assert!(id.starts_with("bedrock-"), "{id}");
            assert!(*created > 1_700_000_000);
            id.clear();
            *created = 0;
        }
    }
    events
}

fn delta(delta: Delta) -> StreamEvent {
    StreamEvent::Delta { choice: 0, delta }
}

fn fixture_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: String::new(),
            model: "radio".into(),
            created: 0,
            system_fingerprint: None,
        },
        delta(Delta::Thinking("The user wants WZPZ's".into())),
        delta(Delta::Thinking(" top song: call top_song.".into())),
        delta(Delta::ThinkingSignature(
            "ErcBCkgIAxABGAIiQMDqt8XBMTYXzIjg5yIBr2Qd".into(),
        )),
        delta(Delta::Text("I'll look up".into())),
        delta(Delta::Text(" the top song on WZPZ – 🎵.".into())),
        delta(Delta::ToolCallStart {
            index: 0,
            id: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q".into(),
            name: "top_song".into(),
        }),
        delta(Delta::ToolCallArgs {
            index: 0,
            arguments: "{\"sign\": ".into(),
        }),
        delta(Delta::ToolCallArgs {
            index: 0,
            arguments: "\"WZPZ\"}".into(),
        }),
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
            stop_sequence: None,
        },
        StreamEvent::Usage(Usage {
            prompt_tokens: 1375,
            completion_tokens: 66,
            cache_read_tokens: 1000,
            ..Usage::default()
        }),
    ]
}

#[test]
fn decodes_reasoning_text_and_a_tool_call() {
    let stream = fixture_stream();
    let events = decode_chunks(&request(), &[&stream]).expect("decodes");
    assert_eq!(events, fixture_events());
}

#[test]
fn decodes_byte_by_byte() {
    let stream = fixture_stream();
    let chunks: Vec<&[u8]> = stream.chunks(1).collect();
    let events = decode_chunks(&request(), &chunks).expect("decodes");
    assert_eq!(events, fixture_events());
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_events(cuts in proptest::collection::vec(0usize..8000, 0..32)) {
        let stream = fixture_stream();
        let mut points: Vec<usize> = cuts.into_iter().map(|cut| cut % (stream.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for point in points {
            chunks.push(&stream[last..point]);
            last = point;
        }
        chunks.push(&stream[last..]);
        let events = decode_chunks(&request(), &chunks).expect("decodes");
        prop_assert_eq!(events, fixture_events());
    }
}

#[test]
fn a_cut_stream_is_an_error_wherever_it_is_cut() {
    let frames = fixture_frames();
    let stream = frames.concat();
    let metadata = frames[frames.len() - 1].len();
    let message_stop = stream.len() - metadata - frames[frames.len() - 2].len();
    // Cut at a frame boundary before `messageStop`, inside a frame, inside a prelude.
    for cut in [
        message_stop,
        stream.len() - 7,
        stream.len() - metadata + 5,
        3,
    ] {
        let mut decoder = Decoder::new(&request());
        let mut events = Vec::new();
        decoder
            .push(&stream[..cut], &mut events)
            .expect("valid so far");
        let error = decoder.finish(&mut events).expect_err("cut short");
        assert_eq!(
            (error.kind, error.origin),
            (ErrorKind::BadGateway, Origin::Upstream),
            "cut at {cut}"
        );
        assert_eq!(error.code.as_deref(), Some("upstream_stream_cut"));
    }
    // Everything before the cut was decoded.
    let mut decoder = Decoder::new(&request());
    let mut events = Vec::new();
    decoder
        .push(&stream[..message_stop], &mut events)
        .expect("valid so far");
    assert_eq!(blank(events), fixture_events()[..9]);
}

#[test]
fn exception_frames_are_errors_of_their_kind() {
    for (exception_type, kind) in [
        ("throttlingException", ErrorKind::RateLimited),
        ("modelStreamErrorException", ErrorKind::BadGateway),
        ("internalServerException", ErrorKind::Internal),
        ("validationException", ErrorKind::InvalidRequest),
        ("serviceUnavailableException", ErrorKind::Unavailable),
    ] {
        let mut stream = event("messageStart", &json!({"role": "assistant"}));
        stream.extend(event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ));
        stream.extend(exception(exception_type, "Too many tokens, slow down."));
        let mut decoder = Decoder::new(&request());
        let mut events = Vec::new();
        let error = decoder
            .push(&stream, &mut events)
            .expect_err("an exception frame");
        assert_eq!(error.kind, kind, "{exception_type}");
        assert_eq!(error.origin, Origin::Upstream);
        assert_eq!(error.message, "Too many tokens, slow down.");
        let mut code = exception_type.to_owned();
        code[..1].make_ascii_uppercase();
        assert_eq!(error.code, Some(code));
        // The text before the exception was delivered.
        assert_eq!(blank(events)[1..], [delta(Delta::Text("Hel".into()))]);
    }
}

#[test]
fn corrupt_frames_and_payloads_are_errors() {
    let mut stream = event("messageStart", &json!({"role": "assistant"}));
    let last = stream.len() - 1;
    stream[last] ^= 0xff;
    let error = Decoder::new(&request())
        .push(&stream, &mut Vec::new())
        .expect_err("bad CRC");
    assert_eq!(error.kind, ErrorKind::BadGateway);
    assert_eq!(error.code.as_deref(), Some("upstream_malformed_chunk"));

    let stream = frame(
        &[
            (":event-type", "contentBlockDelta"),
            (":message-type", "event"),
        ],
        b"{this is not json",
    );
    let error = Decoder::new(&request())
        .push(&stream, &mut Vec::new())
        .expect_err("not JSON");
    assert_eq!(error.code.as_deref(), Some("upstream_malformed_chunk"));
    assert!(
        error.message.contains("contentBlockDelta"),
        "{}",
        error.message
    );
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
    let mut stream = Vec::new();
    for (event_type, payload) in [
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Here is the JSON:"}}),
        ),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "json_tool_call"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"song\":"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Elemental Hotel\"}"}}}),
        ),
        ("messageStop", json!({"stopReason": "tool_use"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29}}),
        ),
    ] {
        stream.extend(event(event_type, &payload));
    }
    let events = decode_chunks(&request, &[&stream]).expect("decodes");
    assert_eq!(
        events[1..],
        [
            delta(Delta::Text("{\"song\":".into())),
            delta(Delta::Text("\"Elemental Hotel\"}".into())),
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop,
                stop_sequence: None,
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 20,
                completion_tokens: 9,
                ..Usage::default()
            }),
        ]
    );
}

#[test]
fn guardrails_and_limits_map_to_finish_reasons() {
    for (stop_reason, reason) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("guardrail_intervened", FinishReason::ContentFilter),
        ("content_filtered", FinishReason::ContentFilter),
    ] {
        let mut stream = event("messageStart", &json!({"role": "assistant"}));
        stream.extend(event("messageStop", &json!({"stopReason": stop_reason})));
        let events = decode_chunks(&request(), &[&stream]).expect("complete without metadata");
        assert_eq!(
            events[1],
            StreamEvent::Finish {
                choice: 0,
                reason,
                stop_sequence: None
            }
        );
    }
}

/// A stream's `metadata` names the tier that served it, which its usage carries.
#[test]
fn the_metadata_service_tier_is_read() {
    let mut stream = Vec::new();
    for (event_type, payload) in [
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "hi"}}),
        ),
        ("messageStop", json!({"stopReason": "end_turn"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
                "metrics": {"latencyMs": 10}, "serviceTier": {"type": "flex"}}),
        ),
    ] {
        stream.extend(event(event_type, &payload));
    }
    let events = decode_chunks(&request(), &[&stream]).expect("decodes");
    let usage = events.iter().find_map(|event| match event {
        StreamEvent::Usage(usage) => Some(*usage),
        _ => None,
    });
    assert_eq!(
        usage.map(|usage| (usage.prompt_tokens, usage.service_tier)),
        Some((3, switchyard_types::ServiceTier::Flex))
    );
}
