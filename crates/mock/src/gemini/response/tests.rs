//! Tests of the Gemini response object and `alt=sse` stream.

use serde_json::{Value, json};

use super::*;
use crate::behaviour::{self, Format, Last, LastRole, Prompt, ToolChoice, ToolSpec};
use crate::script::{Frame, Script};

const PROMPT: PromptTokens = PromptTokens { text: 12, media: 0 };

fn prompt(text: &str) -> Prompt<'static> {
    Prompt {
        last: Last {
            role: LastRole::User,
            text: text.to_owned(),
        },
        prompt_tokens: PROMPT.total(),
        tools: Vec::new(),
        tool_choice: ToolChoice::Auto,
        parallel_tool_calls: true,
        max_tokens: None,
        stop: Vec::new(),
        format: Format::Text,
    }
}

/// The stream's `data:` payloads, and whether it ended with an abort. Every event must end
/// with CRLF CRLF.
fn stream_chunks(reply: &Reply<'_>, options: &Options) -> (Vec<Value>, bool) {
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
    assert!(text.is_empty() || text.ends_with("\r\n\r\n"), "{text:?}");
    let chunks = text
        .split_terminator("\r\n\r\n")
        .map(|event| {
            let data = event.strip_prefix("data: ").expect("data line");
            assert!(!data.contains('\n'), "one line per event");
            serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned()))
        })
        .collect();
    (chunks, aborted)
}

fn parts_of(chunk: &Value) -> &Value {
    &chunk["candidates"][0]["content"]["parts"]
}

#[test]
fn response_with_usage_and_thought() {
    let options = Options {
        cached_tokens: 5,
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt("one two three"), &options, b"{}").expect("ok");
    let reply = Reply::new("echo;tokens=0", 1, &answer, PROMPT, true, &options);
    let mut value: Value = serde_json::from_slice(&reply.response()).expect("json");
    assert!(
        value["responseId"]
            .as_str()
            .is_some_and(|id| id.len() == 23)
    );
    value["responseId"] = json!("ID");
    assert_eq!(
        value,
        json!({
            "candidates": [{
                "content": {"parts": [
                    {"text": "Mock reasoning.", "thought": true},
                    {"text": "one two three"}
                ], "role": "model"},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {
                "promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 17,
                "cachedContentTokenCount": 5,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
                "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 5}],
                "thoughtsTokenCount": 2
            },
            "modelVersion": "echo;tokens=0",
            "responseId": "ID"
        })
    );
}

#[test]
fn candidates_and_max_tokens() {
    let mut prompt = prompt("a b c d");
    prompt.max_tokens = Some(2);
    let answer = behaviour::answer(&prompt, &Options::default(), b"{}").expect("ok");
    let reply = Reply::new("m", 3, &answer, PROMPT, false, &Options::default());
    let value: Value = serde_json::from_slice(&reply.response()).expect("json");
    let candidates = value["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 3);
    for (index, candidate) in candidates.iter().enumerate() {
        assert_eq!(candidate["index"], index);
        assert_eq!(candidate["finishReason"], "MAX_TOKENS");
        assert_eq!(candidate["content"]["parts"], json!([{"text": "a b"}]));
    }
    assert_eq!(value["usageMetadata"]["candidatesTokenCount"], 6);
    assert_eq!(value["usageMetadata"]["totalTokenCount"], 18);
    assert!(value["usageMetadata"].get("thoughtsTokenCount").is_none());
}

#[test]
fn stream_sends_a_chunk_per_word_then_the_finish() {
    let options = Options::default();
    let answer = behaviour::answer(&prompt("hello big world"), &options, b"{}").expect("ok");
    let reply = Reply::new("m", 1, &answer, PROMPT, false, &options);
    let (chunks, aborted) = stream_chunks(&reply, &options);
    assert!(!aborted);
    let texts: Vec<_> = chunks
        .iter()
        .map(|chunk| parts_of(chunk)[0]["text"].as_str().expect("text"))
        .collect();
    assert_eq!(texts, ["hello", " big", " world", ""]);
    let running: Vec<_> = chunks
        .iter()
        .map(|chunk| {
            chunk["usageMetadata"]["candidatesTokenCount"]
                .as_u64()
                .expect("count")
        })
        .collect();
    assert_eq!(running, [1, 2, 3, 3]);
    for chunk in &chunks[..3] {
        assert!(chunk["candidates"][0].get("finishReason").is_none());
        assert_eq!(chunk["candidates"][0]["content"]["role"], "model");
        assert_eq!(chunk["modelVersion"], "m");
        assert_eq!(chunk["responseId"], chunks[3]["responseId"]);
    }
    let last = &chunks[3];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["usageMetadata"],
        json!({
            "promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]
        })
    );
}

#[test]
fn function_calls_arrive_whole_in_one_chunk() {
    let schema = json!({
        "type": "OBJECT",
        "properties": {"location": {"type": "STRING"}},
        "required": ["location"]
    });
    let mut prompt = prompt("use get_time and get_weather");
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
    let reply = Reply::new("m", 1, &answer, PROMPT, false, &Options::default());
    let value: Value = serde_json::from_slice(&reply.response()).expect("json");
    let parts = parts_of(&value);
    assert_eq!(parts[0]["functionCall"]["name"], "get_weather");
    assert_eq!(
        parts[0]["functionCall"]["args"],
        json!({"location": "mock"})
    );
    assert_eq!(parts[1]["functionCall"]["name"], "get_time");
    assert_eq!(parts[1]["functionCall"]["args"], json!({}));
    assert!(
        parts[0]["functionCall"]["id"]
            .as_str()
            .is_some_and(|id| id.len() == 8)
    );
    assert_eq!(value["candidates"][0]["finishReason"], "STOP");

    let (chunks, _) = stream_chunks(&reply, &Options::default());
    assert_eq!(chunks.len(), 2);
    assert_eq!(parts_of(&chunks[0]), parts);
    assert_eq!(parts_of(&chunks[1]), &json!([{"text": ""}]));
    assert_eq!(chunks[1]["candidates"][0]["finishReason"], "STOP");
}

#[test]
fn safety_and_blocked_withhold_the_answer() {
    let safety = Options {
        fail: Some(Fault::Safety),
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt("hi"), &safety, b"{}").expect("ok");
    let reply = Reply::new("m", 1, &answer, PROMPT, true, &safety);
    let value: Value = serde_json::from_slice(&reply.response()).expect("json");
    let candidate = &value["candidates"][0];
    assert_eq!(candidate["finishReason"], "SAFETY");
    assert!(candidate.get("content").is_none());
    let ratings = candidate["safetyRatings"].as_array().expect("ratings");
    let high: Vec<_> = ratings
        .iter()
        .filter(|rating| rating["probability"] == "HIGH")
        .collect();
    assert_eq!(high.len(), 1);
    assert_eq!(high[0]["blocked"], true);
    assert!(value["usageMetadata"].get("thoughtsTokenCount").is_none());
    let (chunks, _) = stream_chunks(&reply, &safety);
    assert_eq!(chunks, std::slice::from_ref(&value));

    let blocked = Options {
        fail: Some(Fault::Blocked),
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt("hi"), &blocked, b"{}").expect("ok");
    let reply = Reply::new("m", 1, &answer, PROMPT, false, &blocked);
    let value: Value = serde_json::from_slice(&reply.response()).expect("json");
    assert!(value.get("candidates").is_none());
    assert_eq!(value["promptFeedback"]["blockReason"], "SAFETY");
    assert_eq!(
        value["promptFeedback"]["safetyRatings"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    assert_eq!(
        value["usageMetadata"]["totalTokenCount"],
        value["usageMetadata"]["promptTokenCount"]
    );
}

#[test]
fn cut_and_malformed_streams() {
    let cut = Options {
        tokens: Some(5),
        fail: Some(Fault::Cut),
        cut_after: 2,
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt(""), &cut, b"{}").expect("ok");
    let reply = Reply::new("m", 1, &answer, PROMPT, false, &cut);
    let (chunks, aborted) = stream_chunks(&reply, &cut);
    assert!(aborted);
    assert_eq!(chunks.len(), 2);
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["candidates"][0].get("finishReason").is_none())
    );

    let malformed = Options {
        tokens: Some(3),
        fail: Some(Fault::Malformed),
        cut_after: 1,
        ..Options::default()
    };
    let answer = behaviour::answer(&prompt(""), &malformed, b"{}").expect("ok");
    let reply = Reply::new("m", 1, &answer, PROMPT, false, &malformed);
    let (chunks, aborted) = stream_chunks(&reply, &malformed);
    assert!(!aborted);
    assert_eq!(chunks[1], json!("{this is not json"));
    assert_eq!(parts_of(&chunks[2])[0]["text"], " tok2");
    assert_eq!(
        chunks.last().expect("last")["candidates"][0]["finishReason"],
        "STOP"
    );
}

#[test]
fn thought_streams_before_text() {
    let answer = behaviour::answer(&prompt("hi"), &Options::default(), b"{}").expect("ok");
    let reply = Reply::new("m", 1, &answer, PROMPT, true, &Options::default());
    let (chunks, _) = stream_chunks(&reply, &Options::default());
    let parts: Vec<_> = chunks
        .iter()
        .map(|chunk| parts_of(chunk)[0].clone())
        .collect();
    assert_eq!(
        parts,
        [
            json!({"text": "Mock", "thought": true}),
            json!({"text": " reasoning.", "thought": true}),
            json!({"text": "hi"}),
            json!({"text": ""}),
        ]
    );
    assert_eq!(chunks[3]["usageMetadata"]["thoughtsTokenCount"], 2);
    assert_eq!(chunks[3]["usageMetadata"]["totalTokenCount"], 15);
}
