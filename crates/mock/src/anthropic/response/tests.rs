//! Tests of the Anthropic message object and event stream.

use serde_json::{Value, json};

use super::*;
use crate::behaviour::{self, Format, Last, LastRole, Prompt, ToolChoice, ToolSpec};
use crate::options::Fault;
use crate::script::{Frame, Script};

fn prompt(text: &str) -> Prompt<'static> {
    Prompt {
        last: Last {
            role: LastRole::User,
            text: text.to_owned(),
        },
        prompt_tokens: 12,
        tools: Vec::new(),
        tool_choice: ToolChoice::Auto,
        parallel_tool_calls: true,
        max_tokens: Some(100),
        stop: Vec::new(),
        format: Format::Text,
    }
}

/// The stream's frames as (event name, data) pairs, and whether it ended with an abort.
fn stream_events(reply: &Reply<'_>, options: &Options) -> (Vec<(String, Value)>, bool) {
    let mut script = Script::new(options, MALFORMED_EVENT);
    reply.stream(&mut script);
    let mut bytes = Vec::new();
    let mut aborted = false;
    for frame in script.into_frames() {
        match frame {
            Frame::Data(data) => bytes.extend_from_slice(&data),
            Frame::Abort => aborted = true,
            Frame::Pause(_) | Frame::Flush => {}
        }
    }
    let text = String::from_utf8(bytes).expect("utf-8");
    let events = text
        .split_terminator("\n\n")
        .map(|event| {
            let (name, data) = event.split_once('\n').expect("two lines");
            let name = name.strip_prefix("event: ").expect("event line");
            let data = data.strip_prefix("data: ").expect("data line");
            let data =
                serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned()));
            (name.to_owned(), data)
        })
        .collect();
    (events, aborted)
}

fn summary(events: &[(String, Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(name, data)| {
            assert_eq!(
                data["type"].as_str(),
                Some(name.as_str()),
                "type matches event"
            );
            match name.as_str() {
                "content_block_start" => format!("start {}", data["content_block"]["type"]),
                "content_block_delta" => format!("delta {}", data["delta"]["type"]),
                _ => name.clone(),
            }
            .replace('"', "")
        })
        .collect()
}

fn weather_answer(schema: &Value) -> Answer {
    let mut prompt = prompt("what is the weather");
    prompt.tools = vec![ToolSpec {
        name: "get_weather",
        schema: Some(schema),
    }];
    behaviour::answer(&prompt, &Options::default(), b"{}").expect("ok")
}

#[test]
fn stream_event_order_for_text_and_tool_use() {
    let schema = json!({
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"enum": ["celsius"]}},
        "required": ["location", "unit"]
    });
    let answer = weather_answer(&schema);
    let preamble = Reply::preamble();
    let reply = Reply::new(
        "claude?x=1",
        &answer,
        &preamble,
        false,
        12,
        &Options::default(),
    );
    let (events, aborted) = stream_events(&reply, &Options::default());
    assert!(!aborted);
    let summary = summary(&events);
    let json_deltas = summary
        .iter()
        .filter(|s| *s == "delta input_json_delta")
        .count();
    assert!(json_deltas >= 2);
    let mut expected = vec![
        "message_start",
        "ping",
        "start text",
        "delta text_delta",
        "delta text_delta",
        "content_block_stop",
        "start tool_use",
    ];
    expected.extend(std::iter::repeat_n("delta input_json_delta", json_deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(summary, expected);

    let start = &events[0].1["message"];
    assert!(
        start["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("msg_"))
    );
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["model"], "claude?x=1");
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["input_tokens"], 12);
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(events[1].1, json!({"type": "ping"}));
    assert_eq!(
        events[2].1,
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "text", "text": ""}})
    );
    let tool_start = &events[6].1;
    assert_eq!(tool_start["index"], 1);
    assert_eq!(tool_start["content_block"]["input"], json!({}));
    assert_eq!(tool_start["content_block"]["name"], "get_weather");
    assert!(
        tool_start["content_block"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("toolu_"))
    );
    let partial: String = events
        .iter()
        .filter(|(_, data)| data["delta"]["type"] == "input_json_delta")
        .map(|(_, data)| data["delta"]["partial_json"].as_str().expect("piece"))
        .collect();
    assert_eq!(partial, r#"{"location":"mock","unit":"celsius"}"#);
    let delta = &events[events.len() - 2].1;
    assert_eq!(
        delta,
        &json!({"type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"output_tokens": 3}})
    );
    assert_eq!(events[events.len() - 1].1, json!({"type": "message_stop"}));
}

#[test]
fn message_with_stop_sequence_and_cache() {
    let mut prompt = prompt("one two END three");
    prompt.stop = vec!["END"];
    let options = Options {
        cached_tokens: 5,
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt, &options, b"{}").expect("ok");
    let preamble = Reply::preamble();
    let reply = Reply::new("m", &answer, &preamble, false, 12, &options);
    let mut value: Value = serde_json::from_slice(&reply.message()).expect("json");
    value["id"] = json!("ID");
    assert_eq!(
        value,
        json!({
            "id": "ID", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": "one two "}],
            "stop_reason": "stop_sequence", "stop_sequence": "END",
            "usage": {"input_tokens": 7, "output_tokens": 2,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5}
        })
    );
}

#[test]
fn thinking_block_comes_first() {
    let answer = behaviour::answer(&prompt("hi"), &Options::default(), b"{}").expect("ok");
    let preamble = Reply::preamble();
    let reply = Reply::new("m", &answer, &preamble, true, 12, &Options::default());
    let value: Value = serde_json::from_slice(&reply.message()).expect("json");
    assert_eq!(value["content"][0]["type"], "thinking");
    assert_eq!(value["content"][0]["thinking"], "Mock reasoning.");
    assert!(value["content"][0]["signature"].is_string());
    assert_eq!(value["content"][1], json!({"type": "text", "text": "hi"}));
    assert_eq!(value["usage"]["output_tokens"], 3);

    let (events, _) = stream_events(&reply, &Options::default());
    assert_eq!(
        summary(&events)[2..8],
        [
            "start thinking",
            "delta thinking_delta",
            "delta thinking_delta",
            "delta signature_delta",
            "content_block_stop",
            "start text"
        ]
    );
}

#[test]
fn cut_stream_has_no_message_stop() {
    let options = Options {
        tokens: Some(5),
        fail: Some(Fault::Cut),
        cut_after: 2,
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt(""), &options, b"{}").expect("ok");
    let preamble = Reply::preamble();
    let reply = Reply::new("m", &answer, &preamble, false, 12, &options);
    let (events, aborted) = stream_events(&reply, &options);
    assert!(aborted);
    assert_eq!(
        summary(&events),
        [
            "message_start",
            "ping",
            "start text",
            "delta text_delta",
            "delta text_delta"
        ]
    );
}

#[test]
fn malformed_event_inside_content_block_delta() {
    let options = Options {
        tokens: Some(3),
        fail: Some(Fault::Malformed),
        cut_after: 1,
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt(""), &options, b"{}").expect("ok");
    let preamble = Reply::preamble();
    let reply = Reply::new("m", &answer, &preamble, false, 12, &options);
    let (events, aborted) = stream_events(&reply, &options);
    assert!(!aborted);
    assert_eq!(events[4].0, "content_block_delta");
    assert_eq!(events[4].1, json!("{this is not json"));
    assert_eq!(events[5].1["delta"]["text"], " tok2");
    assert_eq!(events[events.len() - 1].0, "message_stop");
}
