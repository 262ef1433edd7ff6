//! Golden tests of the Gemini request body built from canonical requests.

use serde_json::{Map, Value, json};
use switchyard_types::{
    ChatRequest, ContentPart, ErrorKind, Extra, ImageSource, Message, Reasoning, ResponseFormat,
    Role, Tool, ToolChoice, WireFormat,
};

use super::encode;
use crate::testing::{assistant, tool_result};

/// The model the bodies are built for, unless a test says otherwise.
const MODEL: &str = "gemini-2.5-flash";

const AGENT: &str = include_str!("../../../tests/fixtures/gemini/request_agent.json");

fn thinking(text: &str, signature: Option<&str>) -> ContentPart {
    ContentPart::Thinking {
        text: text.into(),
        signature: signature.map(str::to_owned),
    }
}

fn user(text: &str) -> Message {
    Message::text_message(Role::User, text)
}

fn encoded(request: &ChatRequest) -> Value {
    serde_json::from_slice(&encode(request, MODEL).expect("encodes")).expect("JSON")
}

/// An agent conversation from an OpenAI or Anthropic client: instructions, an image, parallel
/// tool calls and their results, a failed call, structured output and reasoning.
fn agent_request() -> ChatRequest {
    let mut extra = Map::new();
    extra.insert("logit_bias".into(), json!({"50256": -100}));
    ChatRequest {
        model: "travel".into(),
        messages: vec![
            Message::text_message(Role::System, "You are a travel assistant."),
            Message::new(
                Role::User,
                vec![
                    ContentPart::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                        detail: Some("high".into()),
                        cache_control: None,
                    },
                    ContentPart::text("Where was this photo taken, and what's the weather there?"),
                ],
            ),
            Message::text_message(Role::Developer, "Answer in metric units."),
            assistant(
                vec![
                    // Gemini's thought summary (unsigned) and the signature it put on the first
                    // call, as the response decoder left them.
                    thinking("The photo shows the Eiffel Tower.", None),
                    thinking(
                        "",
                        Some("CiwBVKhc7nRyTi3HmggPD9iQiRLe1pTyOhMm6RkHeUM9CR1ouHgWrFchRgA="),
                    ),
                    ContentPart::text("That's Paris; let me check."),
                ],
                &[
                    (
                        "call_1",
                        "get_current_weather",
                        r#"{"location":"Paris, France"}"#,
                    ),
                    ("call_2", "get_local_time", r#"{"city": "Paris"}"#),
                ],
            ),
            tool_result("call_1", r#"{"temperature": 18, "unit": "celsius"}"#),
            tool_result("call_2", "14:05"),
            Message::new(
                Role::User,
                vec![
                    ContentPart::text("Also show me the Louvre webcam."),
                    ContentPart::Image {
                        source: ImageSource::Url(
                            "https://example.com/louvre.webp?size=large".into(),
                        ),
                        detail: None,
                        cache_control: None,
                    },
                ],
            ),
            // An OpenAI client keeps no signatures: the call gets Google's documented stand-in.
            assistant(Vec::new(), &[("call_3", "get_webcam", "")]),
            Message {
                is_error: true,
                ..tool_result("call_3", "webcam offline")
            },
            user("Never mind. Summarise it all as JSON."),
        ],
        tools: vec![
            Tool {
                name: "get_current_weather".into(),
                description: Some("Get the current weather in a given location".into()),
                parameters: json!({
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "The city and country, e.g. Paris, France"},
                        "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit"]}
                    },
                    "required": ["location"],
                    "additionalProperties": false
                }),
                strict: Some(true),
                cache_control: None,
            },
            Tool {
                name: "get_local_time".into(),
                description: None,
                parameters: json!({
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"]
                }),
                strict: None,
                cache_control: Some(json!({"type": "ephemeral"})),
            },
            Tool {
                name: "get_webcam".into(),
                description: Some("Show the webcam of the place being discussed".into()),
                parameters: json!({"type": "object", "properties": {}}),
                strict: None,
                cache_control: None,
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(true),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "summary".into(),
            description: None,
            schema: json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "temperature_c": {"type": "number"},
                    "webcam": {"type": ["string", "null"]}
                },
                "required": ["city", "temperature_c", "webcam"],
                "additionalProperties": false
            }),
            strict: Some(true),
        }),
        max_tokens: Some(2048),
        temperature: Some(0.2),
        top_p: Some(0.9),
        top_k: Some(40),
        n: Some(1),
        stop: vec!["END".into()],
        seed: Some(42),
        user: Some("user-1234".into()),
        metadata: Some(json!({"team": "travel"})),
        reasoning: Some(Reasoning {
            effort: Some("medium".into()),
            budget_tokens: None,
        }),
        stream: true,
        include_usage: true,
        extra: Extra {
            format: WireFormat::OpenAi,
            fields: extra,
        },
        ..ChatRequest::default()
    }
}

#[test]
fn encodes_an_agent_conversation() {
    let expected: Value = serde_json::from_str(AGENT).expect("fixture is JSON");
    assert_eq!(encoded(&agent_request()), expected);
}

#[test]
fn a_minimal_request_has_only_contents() {
    let request = ChatRequest {
        model: "gemini-2.5-flash".into(),
        messages: vec![user("Explain how AI works in a few words")],
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&request),
        json!({"contents": [{"role": "user", "parts": [{"text": "Explain how AI works in a few words"}]}]})
    );
}

#[test]
fn tool_choices_map_to_function_calling_modes() {
    let tool = Tool {
        name: "get_weather".into(),
        description: None,
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        strict: None,
        cache_control: None,
    };
    for (choice, config) in [
        (ToolChoice::Auto, json!({"mode": "AUTO"})),
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
        (
            ToolChoice::Tool("get_weather".into()),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
        ),
    ] {
        let request = ChatRequest {
            messages: vec![user("Weather in Oslo?")],
            tools: vec![tool.clone()],
            tool_choice: Some(choice),
            ..ChatRequest::default()
        };
        assert_eq!(
            encoded(&request)["toolConfig"],
            json!({"functionCallingConfig": config})
        );
    }
}

#[test]
fn reasoning_maps_to_a_thinking_budget() {
    let thinking_config = |effort: Option<&str>, budget_tokens: Option<u32>| {
        let request = ChatRequest {
            messages: vec![user("Prove it.")],
            reasoning: Some(Reasoning {
                effort: effort.map(str::to_owned),
                budget_tokens,
            }),
            ..ChatRequest::default()
        };
        encoded(&request)["generationConfig"]["thinkingConfig"].clone()
    };
    assert_eq!(
        thinking_config(None, Some(3000)),
        json!({"thinkingBudget": 3000, "includeThoughts": true})
    );
    assert_eq!(
        thinking_config(Some("low"), None),
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    assert_eq!(
        thinking_config(Some("high"), None),
        json!({"thinkingBudget": 24576, "includeThoughts": true})
    );
    assert_eq!(
        thinking_config(Some("minimal"), None),
        json!({"thinkingBudget": 0})
    );
    assert_eq!(thinking_config(None, None), Value::Null);

    let request = ChatRequest {
        messages: vec![user("Prove it.")],
        reasoning: Some(Reasoning {
            effort: Some("extreme".into()),
            budget_tokens: None,
        }),
        ..ChatRequest::default()
    };
    let error = encode(&request, MODEL).expect_err("unknown effort");
    assert_eq!(error.param.as_deref(), Some("reasoning_effort"));
}

#[test]
fn json_object_asks_for_json_only() {
    let request = ChatRequest {
        messages: vec![user("List three colours as JSON.")],
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&request)["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
}

#[test]
fn signatures_go_back_where_gemini_put_them() {
    let request = ChatRequest {
        messages: vec![
            user("Hi"),
            // An answer without calls: Gemini signed its last part.
            assistant(
                vec![
                    thinking("", Some("sig-text")),
                    ContentPart::text("Hello"),
                    ContentPart::text(" there!"),
                ],
                &[],
            ),
            user("Think about it."),
            // Signed thinking (an Anthropic client replaying a block) stays a thought part;
            // unsigned and redacted thinking go nowhere.
            assistant(
                vec![
                    thinking("Considering it.", Some("sig-thought")),
                    thinking("Unsigned musing.", None),
                    ContentPart::RedactedThinking {
                        data: "opaque".into(),
                    },
                    ContentPart::text("Done."),
                ],
                &[],
            ),
            user("Thanks"),
        ],
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&request)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello"}, {"text": " there!", "thoughtSignature": "sig-text"}]},
            {"role": "user", "parts": [{"text": "Think about it."}]},
            {"role": "model", "parts": [
                {"text": "Considering it.", "thought": true, "thoughtSignature": "sig-thought"},
                {"text": "Done."}
            ]},
            {"role": "user", "parts": [{"text": "Thanks"}]}
        ])
    );
}

#[test]
fn a_tool_result_needs_the_call_it_answers() {
    let request = ChatRequest {
        messages: vec![
            user("Weather?"),
            assistant(Vec::new(), &[("call_1", "get_weather", "{}")]),
            tool_result("call_9", "sunny"),
        ],
        ..ChatRequest::default()
    };
    let error = encode(&request, MODEL).expect_err("no call with that id");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert_eq!(error.param.as_deref(), Some("messages[2].tool_call_id"));
    assert!(error.message.contains("call_9"), "{}", error.message);

    let request = ChatRequest {
        messages: vec![Message {
            tool_call_id: None,
            ..tool_result("", "sunny")
        }],
        ..ChatRequest::default()
    };
    let error = encode(&request, MODEL).expect_err("no id at all");
    assert_eq!(error.param.as_deref(), Some("messages[0].tool_call_id"));
}

#[test]
fn a_reused_call_id_names_the_latest_call() {
    // Ids generated per response can repeat across turns; the latest earlier call counts.
    let request = ChatRequest {
        messages: vec![
            user("Weather, then time?"),
            assistant(Vec::new(), &[("call_0", "get_weather", "{}")]),
            tool_result("call_0", "sunny"),
            assistant(Vec::new(), &[("call_0", "get_time", "{}")]),
            tool_result("call_0", "noon"),
        ],
        ..ChatRequest::default()
    };
    let body = encoded(&request);
    assert_eq!(
        body["contents"][4]["parts"][0]["functionResponse"]["name"],
        "get_time"
    );
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
}

#[test]
fn invalid_tool_arguments_name_the_message() {
    let request = ChatRequest {
        messages: vec![
            user("Weather?"),
            assistant(Vec::new(), &[("call_1", "get_weather", "[1, 2]")]),
        ],
        ..ChatRequest::default()
    };
    let error = encode(&request, MODEL).expect_err("arguments must be an object");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert_eq!(
        error.param.as_deref(),
        Some("messages[1].tool_calls[0].function.arguments")
    );
    assert!(
        error.message.starts_with("messages[1]"),
        "{}",
        error.message
    );
}

#[test]
fn image_urls_get_a_mime_type_from_their_extension() {
    let image = |url: &str| ContentPart::Image {
        source: ImageSource::Url(url.into()),
        detail: None,
        cache_control: None,
    };
    let request = ChatRequest {
        messages: vec![Message::new(
            Role::User,
            vec![
                image("https://example.com/a.PNG"),
                image("gs://bucket/scan.pdf"),
                image("https://example.com/photo?format=png"),
            ],
        )],
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&request)["contents"][0]["parts"],
        json!([
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.PNG"}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/scan.pdf"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo?format=png"}}
        ])
    );
}
