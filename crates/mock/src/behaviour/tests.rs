//! Tests of the format-neutral answer.

use serde_json::json;

use super::*;

fn prompt(text: &str) -> Prompt<'static> {
    Prompt {
        last: Last {
            role: LastRole::User,
            text: text.to_owned(),
        },
        prompt_tokens: 0,
        tools: Vec::new(),
        tool_choice: ToolChoice::Auto,
        parallel_tool_calls: true,
        max_tokens: None,
        stop: Vec::new(),
        format: Format::Text,
    }
}

fn content(answer: &Answer) -> &str {
    answer
        .text
        .as_ref()
        .map(|text| text.content.as_str())
        .expect("text answer")
}

#[test]
fn echoes_last_user_text_in_word_pieces() {
    let answer = answer(&prompt("hello there\nworld"), &Options::default(), b"{}").expect("ok");
    assert_eq!(content(&answer), "hello there\nworld");
    let text = answer.text.as_ref().expect("text");
    assert_eq!(
        text.pieces().collect::<Vec<_>>(),
        ["hello", " there", "\nworld"]
    );
    assert_eq!(answer.completion_tokens, 3);
    assert_eq!(answer.finish, Finish::Stop);
    assert_eq!(answer.stop_sequence, None);
}

#[test]
fn tool_result_is_echoed_with_prefix() {
    let mut prompt = prompt("sunny");
    prompt.last.role = LastRole::ToolResult;
    let answer = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(content(&answer), "tool result: sunny");
}

#[test]
fn tokens_option_counts_exactly() {
    let options = Options {
        tokens: Some(4),
        ..Options::default()
    };
    let answer = answer(&prompt("ignored"), &options, b"{}").expect("ok");
    assert_eq!(content(&answer), "tok1 tok2 tok3 tok4");
    let text = answer.text.as_ref().expect("text");
    assert_eq!(
        text.pieces().collect::<Vec<_>>(),
        ["tok1", " tok2", " tok3", " tok4"]
    );
    assert_eq!(answer.completion_tokens, 4);
}

#[test]
fn max_tokens_truncates_with_length() {
    let mut prompt = prompt("a b c d e");
    prompt.max_tokens = Some(2);
    let answer = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(content(&answer), "a b");
    assert_eq!(answer.finish, Finish::Length);
    assert_eq!(answer.completion_tokens, 2);
}

#[test]
fn stop_sequence_cuts_at_earliest_match() {
    let mut prompt = prompt("one two three four");
    prompt.stop = vec!["four", " three"];
    let answer = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(content(&answer), "one two");
    assert_eq!(answer.finish, Finish::Stop);
    assert_eq!(answer.stop_sequence.as_deref(), Some(" three"));
    assert_eq!(answer.completion_tokens, 2);
}

#[test]
fn max_tokens_before_stop_wins() {
    let mut prompt = prompt("one two three four");
    prompt.stop = vec!["four"];
    prompt.max_tokens = Some(1);
    let answer = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(content(&answer), "one");
    assert_eq!(answer.finish, Finish::Length);
    assert_eq!(answer.stop_sequence, None);
}

#[test]
fn stop_before_max_tokens_wins() {
    let mut prompt = prompt("one two three four");
    prompt.stop = vec!["three"];
    prompt.max_tokens = Some(3);
    let answer = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(content(&answer), "one two ");
    assert_eq!(answer.finish, Finish::Stop);
    assert_eq!(answer.stop_sequence.as_deref(), Some("three"));
}

#[test]
fn echo_request_is_compact_body_in_byte_pieces() {
    let options = Options {
        echo_request: true,
        ..Options::default()
    };
    let body = br#"{ "model": "m",  "messages": [ {"role": "user", "content": "hi there"} ] }"#;
    let answer = answer(&prompt("hi there"), &options, body).expect("ok");
    let expected = r#"{"model":"m","messages":[{"role":"user","content":"hi there"}]}"#;
    assert_eq!(content(&answer), expected);
    let text = answer.text.as_ref().expect("text");
    assert!(text.pieces().all(|piece| piece.len() <= 16));
    assert_eq!(text.pieces().collect::<String>(), expected);
}

#[test]
fn json_modes() {
    let mut prompt = prompt("say \"hi\"");
    prompt.format = Format::JsonObject;
    let answer_object = answer(&prompt, &Options::default(), b"{}").expect("ok");
    let parsed: serde_json::Value = serde_json::from_str(content(&answer_object)).expect("json");
    assert_eq!(parsed, json!({"echo": "say \"hi\""}));

    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    prompt.format = Format::JsonSchema(Some(&schema));
    let answer_schema = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(content(&answer_schema), r#"{"n":1}"#);
}

fn weather_tools(schema: &serde_json::Value) -> Vec<ToolSpec<'_>> {
    vec![
        ToolSpec {
            name: "get_weather",
            schema: Some(schema),
        },
        ToolSpec {
            name: "get_time",
            schema: None,
        },
    ]
}

#[test]
fn calls_tools_named_in_text_or_the_first() {
    let schema = json!({
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"]
    });
    let mut prompt = prompt("use get_time and get_weather please");
    prompt.tools = weather_tools(&schema);
    let both = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(both.text, None);
    let names: Vec<_> = both.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["get_weather", "get_time"]);
    assert_eq!(both.tool_calls[0].arguments_json, r#"{"city":"mock"}"#);
    assert_eq!(both.tool_calls[1].arguments_json, "{}");
    assert_eq!(both.finish, Finish::ToolCalls);
    assert_eq!(both.completion_tokens, 2);

    prompt.parallel_tool_calls = false;
    let one = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(one.tool_calls.len(), 1);

    prompt.last.text = "nothing named".to_owned();
    prompt.parallel_tool_calls = true;
    let first = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(first.tool_calls.len(), 1);
    assert_eq!(first.tool_calls[0].name, "get_weather");

    prompt.tool_choice = ToolChoice::Named("get_time");
    let named = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert_eq!(named.tool_calls[0].name, "get_time");

    prompt.tool_choice = ToolChoice::Named("missing");
    assert_eq!(
        answer(&prompt, &Options::default(), b"{}"),
        Err(AnswerError::UnknownTool("missing".to_owned()))
    );
}

#[test]
fn no_tool_calls_when_none_or_after_tool_result() {
    let schema = json!({});
    let mut prompt = prompt("get_weather");
    prompt.tools = weather_tools(&schema);
    prompt.tool_choice = ToolChoice::None;
    assert!(
        answer(&prompt, &Options::default(), b"{}")
            .expect("ok")
            .tool_calls
            .is_empty()
    );
    prompt.tool_choice = ToolChoice::Auto;
    prompt.last.role = LastRole::ToolResult;
    let after = answer(&prompt, &Options::default(), b"{}").expect("ok");
    assert!(after.tool_calls.is_empty());
    assert_eq!(content(&after), "tool result: get_weather");
}

#[test]
fn argument_pieces_are_at_least_two() {
    for json in [
        "{}",
        r#"{"a":"mock"}"#,
        r#"{"location":"mock","unit":"celsius"}"#,
    ] {
        let call = ToolCall {
            name: "f".to_owned(),
            arguments: serde_json::from_str(json).expect("json"),
            arguments_json: json.to_owned(),
        };
        let pieces: Vec<_> = call.argument_pieces().collect();
        assert!(pieces.len() >= 2, "{json}: {pieces:?}");
        assert_eq!(pieces.concat(), json);
    }
}

#[test]
fn finish_option_overrides() {
    let options = Options {
        finish: Some(Finish::ContentFilter),
        ..Options::default()
    };
    let answer = answer(&prompt("hi"), &options, b"{}").expect("ok");
    assert_eq!(answer.finish, Finish::ContentFilter);
}

#[test]
fn safety_faults_withhold_the_answer() {
    for fault in [Fault::Safety, Fault::Blocked] {
        let options = Options {
            fail: Some(fault),
            tokens: Some(3),
            ..Options::default()
        };
        let answer = answer(&prompt("hi"), &options, b"{}").expect("ok");
        assert_eq!(content(&answer), "");
        assert_eq!(answer.finish, Finish::ContentFilter);
        assert_eq!(answer.completion_tokens, 0);
    }
}
