use switchyard_types::{ChatResponse, Choice, ContentPart, FinishReason, ToolCall, Usage};

use super::{Gather, Stored};

fn answer() -> ChatResponse {
    let mut first = Choice::new(0);
    first.content = vec![
        ContentPart::Thinking {
            text: "Weighing it up".into(),
            signature: Some("sig-1".into()),
        },
        ContentPart::text("The answer is 42."),
    ];
    first.tool_calls = vec![
        ToolCall {
            id: "call_1".into(),
            name: "lookup".into(),
            arguments: r#"{"q":"forty-two"}"#.into(),
        },
        ToolCall {
            id: "call_2".into(),
            name: "note".into(),
            arguments: "{}".into(),
        },
    ];
    first.finish_reason = FinishReason::ToolCalls;
    let mut second = Choice::new(1);
    second.content = vec![ContentPart::text("Or 41.")];
    second.finish_reason = FinishReason::Other("pause_turn".into());
    second.stop_sequence = Some("END".into());
    ChatResponse {
        id: "chatcmpl-1".into(),
        model: "gpt-test".into(),
        created: 1_700_000_000,
        choices: vec![first, second],
        usage: Usage {
            prompt_tokens: 12,
            completion_tokens: 30,
            cache_read_tokens: 4,
            cache_write_tokens: 0,
            reasoning_tokens: 9,
        },
        system_fingerprint: Some("fp_1".into()),
        service_tier: None,
    }
}

#[test]
fn a_kept_answer_comes_back_whole_as_it_was() {
    let response = answer();
    let stored = Stored::of(&response);
    assert_eq!(stored.response(), response);
    let text = serde_json::to_string(&stored).expect("serialises");
    let read: Stored = serde_json::from_str(&text).expect("reads back");
    assert_eq!(read.response(), response);
}

#[test]
fn its_replay_gathers_back_into_the_same_answer() {
    let response = answer();
    let events = Stored::of(&response).events();
    let mut gather = Gather::new(1 << 20);
    for event in &events {
        assert!(gather.push(event));
    }
    assert_eq!(gather.finish(), response);
}

#[test]
fn a_stream_past_the_limit_is_not_gathered() {
    let events = Stored::of(&answer()).events();
    let mut gather = Gather::new(10);
    assert!(!events.iter().all(|event| gather.push(event)));
}

#[test]
fn filtered_answers_are_recognised() {
    let mut response = answer();
    assert!(!Stored::of(&response).filtered());
    response.choices[1].finish_reason = FinishReason::ContentFilter;
    assert!(Stored::of(&response).filtered());
}
