//! Tests of the Gemini stream decoder.

use proptest::prelude::*;
use switchyard_types::{
    ApiError, ChatRequest, Delta, ErrorKind, FinishReason, Origin, StreamEvent, Usage,
};

use super::Decoder;

const TEXT_THEN_CALL: &str =
    include_str!("../../../tests/fixtures/gemini/stream_text_then_call.sse");

/// Decodes `chunks` and finishes; `created` is zeroed (it is the decoding time).
fn decode_chunks(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, ApiError> {
    let mut decoder = Decoder::new(&ChatRequest::default());
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk, &mut events)?;
    }
    decoder.finish(&mut events)?;
    Ok(zero_created(events))
}

fn zero_created(mut events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    for event in &mut events {
        if let StreamEvent::Start { created, .. } = event {
            assert!(*created > 1_700_000_000);
            *created = 0;
        }
    }
    events
}

fn delta(delta: Delta) -> StreamEvent {
    StreamEvent::Delta { choice: 0, delta }
}

fn usage(completion: u64) -> StreamEvent {
    StreamEvent::Usage(Usage {
        prompt_tokens: 72,
        completion_tokens: completion,
        reasoning_tokens: if completion == 0 { 0 } else { 57 },
        ..Usage::default()
    })
}

fn text_then_call_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: "OQd5aNn3G4C_1dkP8p6L4AE".into(),
            model: "gemini-2.5-flash".into(),
            created: 0,
            system_fingerprint: None,
        },
        delta(Delta::Thinking(
            "**Finding the weather**\n\nThe user asks about Paris, so I call the weather tool."
                .into(),
        )),
        usage(0),
        delta(Delta::Text("I'll check".into())),
        usage(3 + 57),
        delta(Delta::Text(" the weather in Paris (°C) for you.".into())),
        usage(14 + 57),
        delta(Delta::ThinkingSignature(
            "CiIBVKhc7oDPpCaXyJKKssjqr4hNmfUqYTW5WRVSnXb71Dbh".into(),
        )),
        delta(Delta::ToolCallStart {
            index: 0,
            id: "call_OQd5aNn3G4C_1dkP8p6L4AE_0".into(),
            name: "get_current_weather".into(),
        }),
        delta(Delta::ToolCallArgs {
            index: 0,
            arguments: r#"{"location":"Paris, France","unit":"celsius"}"#.into(),
        }),
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
            stop_sequence: None,
        },
        usage(31 + 57),
    ]
}

#[test]
fn decodes_text_then_a_function_call() {
    let events = decode_chunks(&[TEXT_THEN_CALL.as_bytes()]).expect("decodes");
    assert_eq!(events, text_then_call_events());
}

#[test]
fn decodes_byte_by_byte() {
    let bytes: Vec<&[u8]> = TEXT_THEN_CALL.as_bytes().chunks(1).collect();
    let events = decode_chunks(&bytes).expect("decodes");
    assert_eq!(events, text_then_call_events());
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_events(cuts in proptest::collection::vec(0usize..4000, 0..24)) {
        let stream = TEXT_THEN_CALL.as_bytes();
        let mut points: Vec<usize> = cuts.into_iter().map(|cut| cut % (stream.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for point in points {
            chunks.push(&stream[last..point]);
            last = point;
        }
        chunks.push(&stream[last..]);
        let events = decode_chunks(&chunks).expect("decodes");
        prop_assert_eq!(events, text_then_call_events());
    }
}

#[test]
fn a_stream_cut_before_a_finish_reason_is_an_error() {
    let cut = TEXT_THEN_CALL
        .find("data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\"")
        .expect("fixture has the call chunk");
    let mut decoder = Decoder::new(&ChatRequest::default());
    let mut events = Vec::new();
    decoder
        .push(&TEXT_THEN_CALL.as_bytes()[..cut], &mut events)
        .expect("valid so far");
    assert_eq!(
        zero_created(events.clone()),
        text_then_call_events()[..7],
        "everything before the cut is decoded"
    );
    let error = decoder.finish(&mut events).expect_err("cut short");
    assert_eq!(
        (error.kind, error.origin),
        (ErrorKind::BadGateway, Origin::Upstream)
    );
    assert_eq!(error.code.as_deref(), Some("upstream_stream_cut"));
    assert!(
        error.message.contains("ended before it was complete"),
        "{}",
        error.message
    );

    // Cut inside the last chunk's JSON.
    let cut = TEXT_THEN_CALL.find("Paris, France").expect("in the call");
    let mut decoder = Decoder::new(&ChatRequest::default());
    decoder
        .push(&TEXT_THEN_CALL.as_bytes()[..cut], &mut events)
        .expect("valid so far");
    let error = decoder.finish(&mut events).expect_err("cut short");
    assert_eq!(error.code.as_deref(), Some("upstream_stream_cut"));
}

#[test]
fn a_last_event_without_its_blank_line_still_counts() {
    let trimmed = TEXT_THEN_CALL.trim_end();
    let events = decode_chunks(&[trimmed.as_bytes()]).expect("complete");
    assert_eq!(events, text_then_call_events());
}

#[test]
fn malformed_chunks_and_error_objects_are_errors() {
    let mut decoder = Decoder::new(&ChatRequest::default());
    let error = decoder
        .push(b"data: {\"candidates\": [\r\n\r\n", &mut Vec::new())
        .expect_err("malformed");
    assert_eq!(error.kind, ErrorKind::BadGateway);
    assert_eq!(error.code.as_deref(), Some("upstream_malformed_chunk"));

    let mut decoder = Decoder::new(&ChatRequest::default());
    let chunk = b"data: {\"error\": {\"code\": 429, \"message\": \"Resource has been exhausted (e.g. check quota).\", \"status\": \"RESOURCE_EXHAUSTED\"}}\r\n\r\n";
    let error = decoder
        .push(chunk, &mut Vec::new())
        .expect_err("error chunk");
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(
        error.message,
        "Resource has been exhausted (e.g. check quota)."
    );
    assert_eq!(error.code.as_deref(), Some("RESOURCE_EXHAUSTED"));

    let mut decoder = Decoder::new(&ChatRequest::default());
    let chunk = b"data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"}, \"responseId\": \"r1\"}\r\n\r\n";
    let error = decoder
        .push(chunk, &mut Vec::new())
        .expect_err("blocked prompt");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert_eq!(error.code.as_deref(), Some("content_filter"));
}

#[test]
fn candidates_count_their_own_tool_calls_and_finish_once() {
    let stream = concat!(
        "data: {\"candidates\": [",
        "{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"a\", \"args\": {}}}], \"role\": \"model\"}, \"index\": 0},",
        "{\"content\": {\"parts\": [{\"text\": \"Hi\"}], \"role\": \"model\"}, \"index\": 1}",
        "], \"responseId\": \"r2\", \"modelVersion\": \"gemini-2.5-pro\"}\n\n",
        "data: {\"candidates\": [",
        "{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"b\"}}], \"role\": \"model\"}, \"finishReason\": \"STOP\", \"index\": 0},",
        "{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"c\", \"args\": {\"x\": 1}}}], \"role\": \"model\"}, \"finishReason\": \"MAX_TOKENS\", \"index\": 1}",
        "], \"responseId\": \"r2\", \"modelVersion\": \"gemini-2.5-pro\"}\n\n",
    );
    let events = decode_chunks(&[stream.as_bytes()]).expect("decodes");
    let start = |choice: u32, index: u32, name: &str| StreamEvent::Delta {
        choice,
        delta: Delta::ToolCallStart {
            index,
            id: format!("call_r2_{index}"),
            name: name.into(),
        },
    };
    let args = |choice: u32, index: u32, arguments: &str| StreamEvent::Delta {
        choice,
        delta: Delta::ToolCallArgs {
            index,
            arguments: arguments.into(),
        },
    };
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: "r2".into(),
                model: "gemini-2.5-pro".into(),
                created: 0,
                system_fingerprint: None,
            },
            start(0, 0, "a"),
            args(0, 0, "{}"),
            StreamEvent::Delta {
                choice: 1,
                delta: Delta::Text("Hi".into()),
            },
            start(0, 1, "b"),
            args(0, 1, "{}"),
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
                stop_sequence: None,
            },
            start(1, 0, "c"),
            args(1, 0, r#"{"x":1}"#),
            StreamEvent::Finish {
                choice: 1,
                reason: FinishReason::Length,
                stop_sequence: None,
            },
        ]
    );
}
