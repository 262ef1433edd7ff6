//! Translation tests for the OpenAI dialect, from the API reference's documented examples.

use serde_json::{Value, json};
use switchyard_types::{
    ChatRequest, ChatResponse, Choice, ContentPart, Delta, ErrorKind, FinishReason, ImageSource,
    MaxTokensKey, ResponseFormat, Role, StreamEvent, ToolCall, ToolChoice, Usage,
};

use super::{error, request, response, stream};

fn to_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

#[test]
fn decodes_a_request_with_tools_images_and_unknown_fields() {
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}},
        "max_completion_tokens": 100,
        "stop": "END",
        "seed": 7,
        "user": "u-1",
        "stream": true,
        "stream_options": {"include_usage": true},
        "logit_bias": {"50256": -100},
        "frequency_penalty": 0.5
    });
    let request = request::decode(body.to_string().as_bytes()).expect("decodes");
    assert_eq!(request.model, "gpt-4o");
    assert_eq!(request.messages.len(), 4);
    assert_eq!(request.messages[0].role, Role::Developer);
    assert_eq!(
        request.messages[1].content[1],
        ContentPart::Image {
            source: ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            },
            detail: Some("low".into()),
            cache_control: None,
        }
    );
    assert_eq!(
        request.messages[2].tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into()
        }]
    );
    assert_eq!(request.messages[3].role, Role::Tool);
    assert_eq!(request.messages[3].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(
        request.tool_choice,
        Some(ToolChoice::Tool("get_weather".into()))
    );
    assert_eq!(request.parallel_tool_calls, Some(false));
    assert!(matches!(
        request.response_format,
        Some(ResponseFormat::JsonSchema { ref name, .. }) if name == "answer"
    ));
    assert_eq!(request.max_tokens, Some(100));
    assert_eq!(request.max_tokens_key, MaxTokensKey::MaxCompletionTokens);
    assert_eq!(request.stop, vec!["END".to_string()]);
    assert!(request.stream && request.include_usage);
    let extra: Vec<&str> = request.extra.fields.keys().map(String::as_str).collect();
    assert_eq!(extra, vec!["logit_bias", "frequency_penalty"]);
}

#[test]
fn reencoding_for_an_openai_upstream_keeps_every_field() {
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"}
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "required",
        "max_tokens": 50,
        "temperature": 0.2,
        "n": 2,
        "stop": ["a", "b"],
        "stream": true,
        "logprobs": true,
        "top_logprobs": 2
    });
    let request = request::decode(body.to_string().as_bytes()).expect("decodes");
    let encoded = to_value(&request::encode(&request, "gpt-4o-2024-08-06").expect("encodes"));
    assert_eq!(
        encoded,
        json!({
            "model": "gpt-4o-2024-08-06",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "content": "done", "tool_call_id": "call_1"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
            "tool_choice": "required",
            "max_tokens": 50,
            "temperature": 0.2,
            "n": 2,
            "stop": ["a", "b"],
            "stream": true,
            "stream_options": {"include_usage": true},
            "logprobs": true,
            "top_logprobs": 2
        })
    );
}

#[test]
fn anthropic_only_fields_are_not_sent_to_openai() {
    let mut request =
        request::decode(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
            .expect("decodes");
    request.extra.format = switchyard_types::WireFormat::Anthropic;
    request.extra.fields.insert("top_k".into(), json!(5));
    let encoded = to_value(&request::encode(&request, "m").expect("encodes"));
    assert!(encoded.get("top_k").is_none());
}

#[test]
fn wrong_types_name_the_field() {
    let error = request::decode(br#"{"model":"m","messages":[{"role":"user","content":42}]}"#)
        .expect_err("rejected");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert_eq!(error.param.as_deref(), Some("messages[0].content"));
    let error = request::decode(br#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#)
        .expect_err("rejected");
    assert_eq!(error.param.as_deref(), Some("messages[0].role"));
    let error = request::decode(br#"{"model":"m","messages":[],"temperature":"hot"}"#)
        .expect_err("rejected");
    assert_eq!(error.param.as_deref(), Some("temperature"));
    let error = request::decode(br#"{"messages":[]}"#).expect_err("rejected");
    assert!(error.message.contains("model"), "{}", error.message);
}

#[test]
fn tool_messages_need_a_call_id() {
    let error = request::decode(br#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#)
        .expect_err("rejected");
    assert_eq!(error.param.as_deref(), Some("messages[0].tool_call_id"));
}

#[test]
fn decodes_the_documented_response_with_usage_details() {
    let body = json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "The image shows a boardwalk.", "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 10, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fc9f1d7035"
    });
    let decoded =
        response::decode(body.to_string().as_bytes(), &ChatRequest::default()).expect("decodes");
    assert_eq!(
        decoded.usage,
        Usage {
            prompt_tokens: 1117,
            completion_tokens: 46,
            cache_read_tokens: 1024,
            cache_write_tokens: 0,
            reasoning_tokens: 10,
            ..Usage::default()
        }
    );
    assert_eq!(
        decoded.choices[0].text().as_deref(),
        Some("The image shows a boardwalk.")
    );
    let encoded = to_value(&response::encode(&decoded));
    assert_eq!(
        encoded["choices"][0]["message"]["content"],
        "The image shows a boardwalk."
    );
    assert_eq!(
        encoded["usage"]["prompt_tokens_details"]["cached_tokens"],
        1024
    );
    assert_eq!(
        encoded["usage"]["completion_tokens_details"]["reasoning_tokens"],
        10
    );
    assert_eq!(encoded["usage"]["total_tokens"], 1163);
    assert_eq!(encoded["object"], "chat.completion");
    assert_eq!(encoded["system_fingerprint"], "fp_fc9f1d7035");
}

#[test]
fn encodes_tool_calls_with_null_content() {
    let response = ChatResponse {
        id: "msg_1".into(),
        model: "claude".into(),
        created: 1,
        choices: vec![Choice {
            tool_calls: vec![ToolCall {
                id: "toolu_1".into(),
                name: "f".into(),
                arguments: "{\"a\":1}".into(),
            }],
            finish_reason: FinishReason::ToolCalls,
            ..Choice::new(0)
        }],
        ..ChatResponse::default()
    };
    let encoded = to_value(&response::encode(&response));
    assert_eq!(
        encoded["choices"][0],
        json!({
            "index": 0,
            "message": {"role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            "logprobs": null,
            "finish_reason": "tool_calls"
        })
    );
}

/// A streamed answer with text, two parallel tool calls and usage, as OpenAI sends it.
const TOOL_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me check.\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":9,\"total_tokens\":29,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
    "data: [DONE]\n\n",
);

fn decode_stream(chunks: &[&[u8]]) -> (Vec<StreamEvent>, Result<(), switchyard_types::ApiError>) {
    let mut decoder = stream::Decoder::new(&ChatRequest::default());
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(error) = decoder.push(chunk, &mut events) {
            return (events, Err(error));
        }
    }
    let result = decoder.finish(&mut events);
    (events, result)
}

#[test]
fn decodes_a_streamed_tool_call_answer() {
    let (events, result) = decode_stream(&[TOOL_STREAM.as_bytes()]);
    result.expect("complete stream");
    let delta = |delta| StreamEvent::Delta { choice: 0, delta };
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: "chatcmpl-1".into(),
                model: "gpt-4o".into(),
                created: 1,
                system_fingerprint: None
            },
            delta(Delta::Text("Let me check.".into())),
            delta(Delta::ToolCallStart {
                index: 0,
                id: "call_a".into(),
                name: "get_weather".into()
            }),
            delta(Delta::ToolCallArgs {
                index: 0,
                arguments: "{\"city\":".into()
            }),
            delta(Delta::ToolCallArgs {
                index: 0,
                arguments: "\"Paris\"}".into()
            }),
            delta(Delta::ToolCallStart {
                index: 1,
                id: "call_b".into(),
                name: "get_time".into()
            }),
            delta(Delta::ToolCallArgs {
                index: 1,
                arguments: "{}".into()
            }),
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
                stop_sequence: None
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 20,
                completion_tokens: 9,
                cache_read_tokens: 4,
                ..Usage::default()
            }),
        ]
    );
}

#[test]
fn byte_by_byte_decoding_gives_the_same_events() {
    let (whole, _) = decode_stream(&[TOOL_STREAM.as_bytes()]);
    let bytes: Vec<&[u8]> = TOOL_STREAM.as_bytes().chunks(1).collect();
    let (split, result) = decode_stream(&bytes);
    result.expect("complete stream");
    assert_eq!(split, whole);
}

#[test]
fn a_cut_stream_is_an_error() {
    let cut = &TOOL_STREAM[..TOOL_STREAM.find("\"Paris").expect("marker")];
    let (_, result) = decode_stream(&[cut.as_bytes()]);
    let error = result.expect_err("cut");
    assert_eq!(error.kind, ErrorKind::BadGateway);
}

#[test]
fn a_malformed_chunk_is_an_error() {
    let (_, result) = decode_stream(&[b"data: {\"id\":\"x\",\"choices\":[]}\n\ndata: {oops\n\n"]);
    assert_eq!(result.expect_err("malformed").kind, ErrorKind::BadGateway);
}

#[test]
fn an_error_chunk_is_an_error() {
    let (_, result) = decode_stream(&[
        b"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"service_unavailable_error\"}}\n\n",
    ]);
    let error = result.expect_err("error chunk");
    assert_eq!(error.message, "overloaded");
    assert_eq!(error.kind, ErrorKind::Unavailable);
}

fn parse_sse(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).expect("utf-8");
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let data = event.strip_prefix("data: ").expect("data line");
            if data == "[DONE]" {
                Value::String("[DONE]".into())
            } else {
                serde_json::from_str(data).expect("chunk JSON")
            }
        })
        .collect()
}

#[test]
fn encodes_chunks_the_way_openai_streams_them() {
    let request = ChatRequest {
        model: "claude-sonnet".into(),
        stream: true,
        include_usage: true,
        ..ChatRequest::default()
    };
    let (events, _) = decode_stream(&[TOOL_STREAM.as_bytes()]);
    let mut encoder = stream::Encoder::new(&request);
    let mut out = Vec::new();
    for event in &events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    let chunks = parse_sse(&out);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(chunks[0]["usage"], Value::Null);
    assert_eq!(
        chunks[1]["choices"][0]["delta"],
        json!({"content": "Let me check."})
    );
    assert_eq!(
        chunks[2]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
    );
    assert_eq!(
        chunks[3]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]})
    );
    let finish = &chunks[chunks.len() - 3];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = &chunks[chunks.len() - 2];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 20);
    assert_eq!(usage["usage"]["total_tokens"], 29);
    assert_eq!(chunks[chunks.len() - 1], "[DONE]");
    for chunk in &chunks[..chunks.len() - 1] {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "chatcmpl-1");
    }
}

#[test]
fn usage_chunk_only_when_asked() {
    let request = ChatRequest {
        stream: true,
        ..ChatRequest::default()
    };
    let mut encoder = stream::Encoder::new(&request);
    let mut out = Vec::new();
    encoder.encode(&StreamEvent::Usage(Usage::default()), &mut out);
    encoder.finish(&mut out);
    let chunks = parse_sse(&out);
    assert_eq!(chunks.len(), 2, "role chunk and [DONE]: {chunks:?}");
    assert!(chunks[0].get("usage").is_none());
}

#[test]
fn mid_stream_errors_are_error_chunks() {
    let mut encoder = stream::Encoder::new(&ChatRequest::default());
    let mut out = Vec::new();
    encoder.error(
        &switchyard_types::ApiError::upstream(ErrorKind::BadGateway, "cut"),
        &mut out,
    );
    let chunks = parse_sse(&out);
    assert_eq!(chunks[0]["error"]["message"], "cut");
    assert_eq!(chunks[0]["error"]["type"], "server_error");
}

#[test]
fn decodes_upstream_errors_with_retry_after() {
    let mut headers = http::HeaderMap::new();
    headers.insert("retry-after", http::HeaderValue::from_static("7"));
    let body = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    let error = error::decode(429, &headers, body);
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.message, "Rate limit reached");
    assert_eq!(error.code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(error.retry_after, Some(std::time::Duration::from_secs(7)));
    let error = error::decode(502, &http::HeaderMap::new(), b"<html>bad gateway</html>");
    assert_eq!(error.kind, ErrorKind::BadGateway);
    assert!(error.message.contains("bad gateway"));
}

#[test]
fn encodes_errors_in_openai_shape() {
    let error = switchyard_types::ApiError::invalid_request("bad", Some("messages".into()));
    assert_eq!(
        to_value(&error::encode(&error)),
        json!({"error": {"message": "bad", "type": "invalid_request_error", "param": "messages", "code": null}})
    );
}

#[test]
fn thinking_parts_are_not_sent_to_openai() {
    let mut request = ChatRequest {
        model: "m".into(),
        ..ChatRequest::default()
    };
    let mut message = switchyard_types::Message::text_message(Role::Assistant, "answer");
    message.content.insert(
        0,
        ContentPart::Thinking {
            text: "hmm".into(),
            signature: Some("sig".into()),
        },
    );
    request.messages.push(message);
    let encoded = to_value(&request::encode(&request, "m").expect("encodes"));
    assert_eq!(
        encoded["messages"][0]["content"],
        json!([{"type": "text", "text": "answer"}])
    );
}

/// Regression: Claude Code's `metadata.user_id` (about 150 characters) went to OpenAI as
/// `user`, which OpenAI refuses past 64.
#[test]
fn a_long_user_is_sent_as_its_hash() {
    let long = format!(
        "user_{}_account__session_{}",
        "a".repeat(64),
        "b".repeat(36)
    );
    let mut canonical = request::decode(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
            .to_string()
            .as_bytes(),
    )
    .expect("decodes");
    canonical.user = Some(long.clone());
    let sent = to_value(&request::encode(&canonical, "m").expect("encodes"));
    let user = sent["user"].as_str().expect("user");
    assert_eq!(user.len(), 64);
    assert!(user.bytes().all(|byte| byte.is_ascii_hexdigit()));
    let again = to_value(&request::encode(&canonical, "m").expect("encodes"));
    assert_eq!(again["user"], user, "not stable");
    canonical.user = Some("short-id".to_owned());
    let sent = to_value(&request::encode(&canonical, "m").expect("encodes"));
    assert_eq!(sent["user"], "short-id");
}

/// Regression: images inside an Anthropic client's tool results went into `role: tool`
/// messages, which OpenAI refuses (text only there). They follow the tool messages in one user
/// message instead, and the tool messages stay together after the assistant's calls.
#[test]
fn images_from_tool_results_follow_the_tool_messages() {
    let body = json!({
        "model": "m", "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "look at both"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "shot", "input": {}},
                {"type": "tool_use", "id": "t2", "name": "shot", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [
                    {"type": "text", "text": "first"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
                ]},
                {"type": "tool_result", "tool_use_id": "t2", "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}}
                ]}
            ]}
        ]
    });
    let canonical =
        crate::anthropic::request::decode(body.to_string().as_bytes()).expect("decodes");
    let sent = to_value(&request::encode(&canonical, "m").expect("encodes"));
    let messages = sent["messages"].as_array().expect("messages");
    let roles: Vec<&str> = messages
        .iter()
        .map(|message| message["role"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool", "user"]);
    for tool in &messages[2..4] {
        let text = tool["content"].to_string();
        assert!(!text.contains("image_url"), "{text}");
    }
    assert_eq!(messages[2]["content"][0]["text"], "first");
    let images = &messages[4]["content"];
    assert_eq!(images[1]["image_url"]["url"], "data:image/png;base64,AAAA");
    assert_eq!(images[2]["image_url"]["url"], "https://example.com/b.png");
}

/// What vendors refuse, from a request the gateway encodes (an Anthropic client's, here):
/// `cache_control` only where it is understood, Mistral's nine-character tool-call ids (the
/// same for a call and its result), `max_completion_tokens` for OpenAI's current models.
#[test]
fn vendor_quirks_shape_the_encoded_request() {
    use super::compat::{self, nine_char_id};
    let body = json!({
        "model": "m", "max_tokens": 100,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01AbCdEfGh", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01AbCdEfGh", "content": "done"}]}
        ]
    });
    let canonical =
        crate::anthropic::request::decode(body.to_string().as_bytes()).expect("decodes");
    let sent = |provider: &str| {
        to_value(&request::encode_for(&canonical, "m", compat::quirks(provider)).expect("encodes"))
    };
    let openrouter = sent("openrouter");
    assert!(openrouter.to_string().contains("cache_control"));
    assert_eq!(openrouter["max_tokens"], 100);
    let openai = sent("openai");
    assert!(!openai.to_string().contains("cache_control"), "{openai}");
    assert_eq!(openai["max_completion_tokens"], 100);
    assert!(openai.get("max_tokens").is_none());
    let mistral = sent("mistral");
    let messages = mistral["messages"].as_array().expect("messages");
    let call_id = messages[2]["tool_calls"][0]["id"].as_str().expect("id");
    assert_eq!(call_id.len(), 9);
    assert!(call_id.bytes().all(|byte| byte.is_ascii_alphanumeric()));
    assert_eq!(messages[3]["tool_call_id"], call_id);
    assert_eq!(call_id, nine_char_id("toolu_01AbCdEfGh"));
    assert_eq!(nine_char_id("abcDEF123"), "abcDEF123", "a valid id is kept");
}
