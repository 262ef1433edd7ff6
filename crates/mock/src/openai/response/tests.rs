//! Tests of the OpenAI completion object and chunk stream.

use serde_json::{Value, json};

use super::*;
use crate::behaviour::{self, Format, Last, LastRole, Prompt, ToolChoice, ToolSpec};
use crate::script::Frame;

fn prompt(text: &str) -> Prompt<'static> {
    Prompt {
        last: Last {
            role: LastRole::User,
            text: text.to_owned(),
        },
        prompt_tokens: 10,
        tools: Vec::new(),
        tool_choice: ToolChoice::Auto,
        parallel_tool_calls: true,
        max_tokens: None,
        stop: Vec::new(),
        format: Format::Text,
    }
}

/// The stream's events: JSON chunks, and `[DONE]` as a string.
fn stream_events(reply: &Reply<'_>, include_usage: bool, options: &Options) -> Vec<Value> {
    let mut script = Script::new(options, MALFORMED_EVENT);
    reply.stream(include_usage, &mut script);
    let mut bytes = Vec::new();
    for frame in script.into_frames() {
        if let Frame::Data(data) = frame {
            bytes.extend_from_slice(&data);
        }
    }
    let text = String::from_utf8(bytes).expect("utf-8");
    assert!(text.ends_with("\n\n"), "events end with a blank line");
    text.split_terminator("\n\n")
        .map(|event| {
            let data = event.strip_prefix("data: ").expect("data event");
            serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned()))
        })
        .collect()
}

#[test]
fn completion_has_every_field() {
    let answer = behaviour::answer(&prompt("hello world"), &Options::default(), b"{}").expect("ok");
    let options = Options {
        cached_tokens: 4,
        reasoning_tokens: 5,
        ..Options::default()
    };
    let reply = Reply::new("echo?tokens=2", 1, &answer, 10, &options);
    let mut value: Value = serde_json::from_slice(&reply.completion()).expect("json");
    assert!(
        value["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    assert!(
        value["created"]
            .as_u64()
            .is_some_and(|created| created > 1_700_000_000)
    );
    value["id"] = json!("ID");
    value["created"] = json!(0);
    assert_eq!(
        value,
        json!({
            "id": "ID", "object": "chat.completion", "created": 0, "model": "echo?tokens=2",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "hello world", "refusal": null,
                            "annotations": []},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 5, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
            },
            "service_tier": "default",
            "system_fingerprint": "fp_mock"
        })
    );
}

#[test]
fn completion_with_tool_calls() {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let mut prompt = prompt("weather please");
    prompt.tools = vec![ToolSpec {
        name: "get_weather",
        schema: Some(&schema),
    }];
    let answer = behaviour::answer(&prompt, &Options::default(), b"{}").expect("ok");
    let reply = Reply::new("m", 1, &answer, 10, &Options::default());
    let value: Value = serde_json::from_slice(&reply.completion()).expect("json");
    let choice = &value["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(
        call["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("call_"))
    );
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], r#"{"city":"mock"}"#);
}

#[test]
fn stream_with_include_usage() {
    let options = Options {
        tokens: Some(3),
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt("ignored"), &options, b"{}").expect("ok");
    let reply = Reply::new("echo", 1, &answer, 10, &options);
    let events = stream_events(&reply, true, &options);
    assert_eq!(events.len(), 1 + 3 + 1 + 1 + 1, "{events:#?}");

    let chunks = &events[..events.len() - 1];
    for chunk in chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert_eq!(chunk["model"], "echo");
        assert_eq!(chunk["system_fingerprint"], "fp_mock");
        assert!(chunk.get("usage").is_some(), "usage on every chunk");
    }
    assert_eq!(
        chunks[0]["choices"],
        json!([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": null},
                "logprobs": null, "finish_reason": null}])
    );
    let contents: Vec<&Value> = chunks[1..4]
        .iter()
        .map(|chunk| &chunk["choices"][0]["delta"]["content"])
        .collect();
    assert_eq!(contents, [&json!("tok1"), &json!(" tok2"), &json!(" tok3")]);
    assert_eq!(
        chunks[4]["choices"],
        json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}])
    );
    assert!(chunks[..5].iter().all(|chunk| chunk["usage"].is_null()));
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["prompt_tokens"], 10);
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 3);
    assert_eq!(chunks[5]["usage"]["total_tokens"], 13);
    assert_eq!(events[events.len() - 1], json!("[DONE]"));
}

#[test]
fn stream_without_include_usage_omits_usage() {
    let answer = behaviour::answer(&prompt("a b"), &Options::default(), b"{}").expect("ok");
    let reply = Reply::new("echo", 1, &answer, 10, &Options::default());
    let events = stream_events(&reply, false, &Options::default());
    assert_eq!(events.len(), 1 + 2 + 1 + 1);
    assert!(events.iter().all(|event| event.get("usage").is_none()));
}

#[test]
fn stream_of_tool_calls() {
    let schema = json!({
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"]
    });
    let mut prompt = prompt("get_weather and get_time");
    prompt.tools = vec![
        ToolSpec {
            name: "get_weather",
            schema: Some(&schema),
        },
        ToolSpec {
            name: "get_time",
            schema: None,
        },
    ];
    let answer = behaviour::answer(&prompt, &Options::default(), b"{}").expect("ok");
    let reply = Reply::new("m", 1, &answer, 10, &Options::default());
    let events = stream_events(&reply, false, &Options::default());
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null, "refusal": null})
    );
    let mut arguments = [String::new(), String::new()];
    let mut headers = 0;
    let mut pieces = [0, 0];
    for event in &events[1..events.len() - 2] {
        let call = &event["choices"][0]["delta"]["tool_calls"][0];
        let index = usize::try_from(call["index"].as_u64().expect("index")).expect("small");
        if call.get("id").is_some() {
            headers += 1;
            assert_eq!(call["type"], "function");
            assert_eq!(call["function"]["arguments"], "");
            assert!(call["function"]["name"].is_string());
        } else {
            assert_eq!(
                call.as_object().map(|o| o.len()),
                Some(2),
                "only index and function"
            );
            assert!(call["function"].get("name").is_none());
            pieces[index] += 1;
            arguments[index].push_str(call["function"]["arguments"].as_str().expect("piece"));
        }
    }
    assert_eq!(headers, 2);
    assert!(pieces.iter().all(|count| *count >= 2), "{pieces:?}");
    assert_eq!(arguments, [r#"{"city":"mock","days":1}"#, "{}"]);
    assert_eq!(
        events[events.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn choices_interleave_by_index() {
    let answer = behaviour::answer(&prompt("a b"), &Options::default(), b"{}").expect("ok");
    let reply = Reply::new("m", 2, &answer, 10, &Options::default());
    let events = stream_events(&reply, false, &Options::default());
    let order: Vec<(u64, Value)> = events[..events.len() - 1]
        .iter()
        .map(|event| {
            let choice = &event["choices"][0];
            (
                choice["index"].as_u64().expect("index"),
                choice["delta"]["content"].clone(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (0, json!("")),
            (1, json!("")),
            (0, json!("a")),
            (1, json!("a")),
            (0, json!(" b")),
            (1, json!(" b")),
            (0, Value::Null),
            (1, Value::Null),
        ]
    );
    let value: Value = serde_json::from_slice(&reply.completion()).expect("json");
    assert_eq!(value["choices"][1]["index"], 1);
    assert_eq!(value["usage"]["completion_tokens"], 4);
}

#[test]
fn malformed_event_is_inserted() {
    let options = Options {
        tokens: Some(3),
        fail: Some(crate::options::Fault::Malformed),
        cut_after: 1,
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt(""), &options, b"{}").expect("ok");
    let reply = Reply::new("m", 1, &answer, 10, &options);
    let events = stream_events(&reply, false, &options);
    assert_eq!(events[2], json!("{this is not json"));
    assert_eq!(events[3]["choices"][0]["delta"]["content"], " tok2");
    assert_eq!(events[events.len() - 1], json!("[DONE]"));
}
