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
            ..Usage::default()
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

fn chunk(delta: &str, finish: Option<&str>) -> String {
    let finish = finish.map_or("null".to_owned(), |reason| format!("\"{reason}\""));
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

fn relayed(finish: &str) -> super::Entry {
    let text = [
        chunk(r#"{"role":"assistant","content":"Hel"}"#, None),
        chunk(r#"{"content":"lo"}"#, None),
        chunk("{}", Some(finish)),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let answer = Stored {
        usage: Usage {
            prompt_tokens: 5,
            completion_tokens: 2,
            ..Usage::default()
        },
        ..Stored::default()
    };
    super::Entry {
        format: super::FORMAT,
        stored_at: 1,
        expires_at: 2,
        tenant: String::new(),
        team: None,
        group: "gpt".into(),
        namespace: None,
        tags: Vec::new(),
        cost_nanos: 0,
        answer,
        relayed: super::Relayed::of(
            switchyard_types::WireFormat::OpenAi,
            true,
            text.into_bytes(),
        ),
    }
}

#[test]
fn a_relayed_stream_is_decoded_when_first_given_out() {
    let entry = relayed("stop");
    assert!(entry.weight() > 300, "its bytes are weighed");
    let decoded = entry.decoded().expect("decodes");
    assert!(decoded.relayed.is_none());
    let response = decoded.answer.response();
    assert_eq!(response.choices[0].text().as_deref(), Some("Hello"));
    assert_eq!(response.choices[0].finish_reason, FinishReason::Stop);
    assert_eq!(
        decoded.answer.usage.total_tokens(),
        7,
        "the usage kept beside it"
    );
}

#[test]
fn a_relayed_answer_a_filter_stopped_is_never_given_out() {
    assert!(relayed("content_filter").decoded().is_none());
}
