//! Golden tests of the Converse body built from canonical requests.

use serde_json::{Map, Value, json};
use switchyard_types::{
    ChatRequest, ContentPart, ErrorKind, Extra, ImageSource, Message, Reasoning, ResponseFormat,
    Role, Tool, ToolChoice, WireFormat,
};

use super::{JSON_OBJECT_INSTRUCTION, encode};
use crate::testing::{assistant, tool_result};

/// The model the bodies are built for, unless a test says otherwise.
const MODEL: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

/// The body expected for [`agent_request`]; its tool and first exchange are those of AWS's
/// "Call a tool with the Converse API" example.
const AGENT: &str = include_str!("../../../tests/fixtures/bedrock/request_agent.json");

fn user(text: &str) -> Message {
    Message::text_message(Role::User, text)
}

fn png() -> ContentPart {
    ContentPart::Image {
        source: ImageSource::Base64 {
            media_type: "image/png".into(),
            data: "iVBORw0KGgo=".into(),
        },
        detail: Some("high".into()),
        cache_control: None,
    }
}

fn top_song() -> Tool {
    Tool {
        name: "top_song".into(),
        description: Some("Get the most popular song played on a radio station.".into()),
        parameters: json!({
            "type": "object",
            "properties": {
                "sign": {
                    "type": "string",
                    "description": "The call sign for the radio station for which you want the most popular song. Example calls signs are WZPZ and WKRP."
                }
            },
            "required": ["sign"]
        }),
        strict: None,
        cache_control: None,
    }
}

fn encoded(request: &ChatRequest) -> Value {
    serde_json::from_slice(&encode(request, MODEL).expect("encodes")).expect("JSON")
}

/// An agent conversation from an Anthropic or OpenAI client: instructions with a cache
/// marker, an image, signed reasoning, parallel calls and their results (one JSON, one text),
/// a call id of another provider's shape, a failed call, structured output, sampling and a
/// thinking budget.
fn agent_request() -> ChatRequest {
    let mut extra = Map::new();
    extra.insert("logit_bias".into(), json!({"50256": -100}));
    ChatRequest {
        model: "radio".into(),
        messages: vec![
            Message::new(
                Role::System,
                vec![ContentPart::Text {
                    text: "You are a radio assistant.".into(),
                    cache_control: Some(json!({"type": "ephemeral"})),
                }],
            ),
            Message::new(
                Role::User,
                vec![
                    png(),
                    ContentPart::text("What is the most popular song on WZPZ and on this station?"),
                ],
            ),
            Message::text_message(Role::Developer, "Answer briefly."),
            assistant(
                vec![
                    ContentPart::Thinking {
                        text: "Two stations: call top_song twice.".into(),
                        signature: Some("ErcBCkgIAxABGAIiQMDqt8XBMTYXzIjg5yIBr2Qd".into()),
                    },
                    // Reasoning from another provider has no signature Bedrock would accept.
                    ContentPart::Thinking {
                        text: "Unsigned musing.".into(),
                        signature: None,
                    },
                    ContentPart::text("Let me check both."),
                ],
                &[
                    (
                        "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                        "top_song",
                        r#"{"sign": "WZPZ"}"#,
                    ),
                    ("functions.top_song:1", "top_song", r#"{"sign":"WKRP"}"#),
                ],
            ),
            tool_result(
                "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                r#"{"song": "Elemental Hotel", "artist": "8 Storey Hike"}"#,
            ),
            Message {
                is_error: true,
                ..tool_result("functions.top_song:1", "Station WKRP not found.")
            },
            user("Never mind WKRP. Summarise it as JSON."),
        ],
        tools: vec![
            top_song(),
            Tool {
                name: "get_station".into(),
                description: Some(String::new()),
                parameters: Value::Null,
                strict: None,
                cache_control: Some(json!({"type": "ephemeral"})),
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(true),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "summary".into(),
            description: Some("The summary.".into()),
            schema: json!({
                "type": "object",
                "properties": {"song": {"type": "string"}, "artist": {"type": "string"}},
                "required": ["song", "artist"]
            }),
            strict: Some(true),
        }),
        max_tokens: Some(2048),
        temperature: Some(1.3),
        top_p: Some(0.9),
        top_k: Some(40),
        n: Some(1),
        stop: vec!["END".into()],
        seed: Some(42),
        user: Some("user-1234".into()),
        metadata: Some(json!({"team": "radio"})),
        reasoning: Some(Reasoning {
            effort: None,
            budget_tokens: Some(1024),
        }),
        stream: true,
        include_usage: true,
        extra: Extra {
            format: WireFormat::Anthropic,
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
fn the_documented_first_request() {
    let request = ChatRequest {
        model: "radio".into(),
        messages: vec![user("What is the most popular song on WZPZ?")],
        tools: vec![top_song()],
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&request),
        json!({
            "messages": [{"role": "user", "content": [{"text": "What is the most popular song on WZPZ?"}]}],
            "toolConfig": {"tools": [{"toolSpec": {
                "name": "top_song",
                "description": "Get the most popular song played on a radio station.",
                "inputSchema": {"json": top_song().parameters}
            }}]}
        })
    );
}

#[test]
fn tool_choices_map_and_none_declares_no_tools() {
    for (choice, expected) in [
        (ToolChoice::Auto, json!({"auto": {}})),
        (ToolChoice::Required, json!({"any": {}})),
        (
            ToolChoice::Tool("top_song".into()),
            json!({"tool": {"name": "top_song"}}),
        ),
    ] {
        let request = ChatRequest {
            messages: vec![user("Top song on WZPZ?")],
            tools: vec![top_song()],
            tool_choice: Some(choice),
            ..ChatRequest::default()
        };
        assert_eq!(encoded(&request)["toolConfig"]["toolChoice"], expected);
    }

    // `none`: no toolConfig, so the history's calls and results are written as text.
    let request = ChatRequest {
        messages: vec![
            user("Top song on WZPZ?"),
            assistant(
                Vec::new(),
                &[("tooluse_1", "top_song", r#"{"sign":"WZPZ"}"#)],
            ),
            tool_result("tooluse_1", "Elemental Hotel"),
            Message {
                is_error: true,
                ..tool_result("tooluse_1", "")
            },
            user("Thanks; no more tools."),
        ],
        tools: vec![top_song()],
        tool_choice: Some(ToolChoice::None),
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&request),
        json!({"messages": [
            {"role": "user", "content": [{"text": "Top song on WZPZ?"}]},
            {"role": "assistant", "content": [{"text": "[tool call tooluse_1 top_song: {\"sign\":\"WZPZ\"}]"}]},
            {"role": "user", "content": [
                {"text": "[tool result tooluse_1: Elemental Hotel]"},
                {"text": "[tool result tooluse_1 (error): (no output)]"},
                {"text": "Thanks; no more tools."}
            ]}
        ]})
    );
}

#[test]
fn json_object_asks_for_json_in_the_system_prompt() {
    let request = ChatRequest {
        messages: vec![user("List three colours as JSON.")],
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&request)["system"],
        json!([{"text": JSON_OBJECT_INSTRUCTION}])
    );
}

#[test]
fn a_json_schema_answer_is_a_forced_tool_call() {
    let schema = json!({"type": "object", "properties": {"colour": {"type": "string"}}});
    let format = ResponseFormat::JsonSchema {
        name: "colour".into(),
        description: None,
        schema: schema.clone(),
        strict: None,
    };
    let json_tool = json!({"toolSpec": {
        "name": "json_tool_call",
        "description": "Respond with the answer, a JSON value following this schema.",
        "inputSchema": {"json": schema}
    }});
    // Without client tools, or with tool choice `none`, the JSON tool is forced.
    for (tools, choice) in [
        (Vec::new(), None),
        (vec![top_song()], Some(ToolChoice::None)),
    ] {
        let request = ChatRequest {
            messages: vec![user("A colour?")],
            tools,
            tool_choice: choice,
            response_format: Some(format.clone()),
            ..ChatRequest::default()
        };
        assert_eq!(
            encoded(&request)["toolConfig"],
            json!({"tools": [json_tool.clone()], "toolChoice": {"tool": {"name": "json_tool_call"}}})
        );
    }
    // With client tools the answer is a call to one of them or the JSON.
    let request = ChatRequest {
        messages: vec![user("A colour?")],
        tools: vec![top_song()],
        tool_choice: Some(ToolChoice::Auto),
        response_format: Some(format),
        ..ChatRequest::default()
    };
    let config = &encoded(&request)["toolConfig"];
    assert_eq!(config["toolChoice"], json!({"any": {}}));
    assert_eq!(config["tools"][1], json_tool);
}

#[test]
fn images_need_bytes_in_a_known_format() {
    let image = |source: ImageSource| ContentPart::Image {
        source,
        detail: None,
        cache_control: None,
    };
    for (media_type, format) in [
        ("image/png", "png"),
        ("image/jpeg", "jpeg"),
        ("image/jpg", "jpeg"),
        ("IMAGE/GIF", "gif"),
        ("image/webp", "webp"),
    ] {
        let request = ChatRequest {
            messages: vec![Message::new(
                Role::User,
                vec![image(ImageSource::Base64 {
                    media_type: media_type.into(),
                    data: "AAAA".into(),
                })],
            )],
            ..ChatRequest::default()
        };
        assert_eq!(
            encoded(&request)["messages"][0]["content"][0],
            json!({"image": {"format": format, "source": {"bytes": "AAAA"}}})
        );
    }

    let request = ChatRequest {
        messages: vec![
            user("Look:"),
            Message::new(
                Role::User,
                vec![
                    ContentPart::text("this"),
                    image(ImageSource::Url("https://example.com/cat.png".into())),
                ],
            ),
        ],
        ..ChatRequest::default()
    };
    let error = encode(&request, MODEL).expect_err("URL images");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert_eq!(error.param.as_deref(), Some("messages[1].content[1]"));
    assert!(error.message.contains("URL"), "{}", error.message);

    let request = ChatRequest {
        messages: vec![Message::new(
            Role::User,
            vec![image(ImageSource::Base64 {
                media_type: "image/tiff".into(),
                data: "AAAA".into(),
            })],
        )],
        ..ChatRequest::default()
    };
    let error = encode(&request, MODEL).expect_err("TIFF");
    assert!(error.message.contains("image/tiff"), "{}", error.message);
}

#[test]
fn invalid_requests_name_the_field() {
    let request = ChatRequest {
        messages: vec![
            user("Top song?"),
            assistant(Vec::new(), &[("tooluse_1", "top_song", "[1, 2]")]),
        ],
        tools: vec![top_song()],
        ..ChatRequest::default()
    };
    let error = encode(&request, MODEL).expect_err("arguments must be an object");
    assert_eq!(
        error.param.as_deref(),
        Some("messages[1].tool_calls[0].function.arguments")
    );

    let request = ChatRequest {
        messages: vec![Message {
            tool_call_id: None,
            ..tool_result("", "sunny")
        }],
        ..ChatRequest::default()
    };
    let error = encode(&request, MODEL).expect_err("no id");
    assert_eq!(error.param.as_deref(), Some("messages[0].tool_call_id"));

    let request = ChatRequest {
        messages: vec![user("Hi")],
        n: Some(2),
        ..ChatRequest::default()
    };
    let error = encode(&request, MODEL).expect_err("one choice only");
    assert_eq!(error.param.as_deref(), Some("n"));
}

#[test]
fn a_minimal_request_has_only_messages_and_empty_text_is_never_sent() {
    let request = ChatRequest {
        model: "amazon.nova-lite-v1:0".into(),
        messages: vec![
            Message::text_message(Role::System, ""),
            user("Hello"),
            Message::text_message(Role::Assistant, ""),
            user("Are you there?"),
        ],
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&request),
        json!({"messages": [{"role": "user", "content": [{"text": "Hello"}, {"text": "Are you there?"}]}]})
    );
}

/// A client's `service_tier` reaches an upstream of another dialect in its words: Converse's
/// `serviceTier`, Anthropic's `service_tier` (`auto` or `standard_only`), OpenAI's.
#[test]
fn a_clients_service_tier_is_translated() {
    let openai_client = |tier: &str| {
        crate::openai::request::decode(
            json!({"model": "m", "service_tier": tier,
                "messages": [{"role": "user", "content": "hi"}]})
            .to_string()
            .as_bytes(),
        )
        .expect("decodes")
    };
    let body = |bytes: Vec<u8>| serde_json::from_slice::<Value>(&bytes).expect("JSON");
    for (tier, converse, anthropic) in [
        ("priority", Some("priority"), Some("auto")),
        ("flex", Some("flex"), Some("standard_only")),
        ("default", Some("default"), Some("standard_only")),
        ("auto", None, Some("auto")),
        ("scale", None, None),
    ] {
        let request = openai_client(tier);
        let bedrock = body(encode(&request, "anthropic.claude-sonnet-4").expect("encodes"));
        assert_eq!(
            bedrock["serviceTier"]["type"].as_str(),
            converse,
            "{tier} to Bedrock"
        );
        let claude = body(crate::anthropic::request::encode(&request, "claude").expect("encodes"));
        assert_eq!(
            claude["service_tier"].as_str(),
            anthropic,
            "{tier} to Anthropic"
        );
        // To OpenAI, an OpenAI client's own field goes as it was, once.
        let openai = crate::openai::request::encode(&request, "gpt").expect("encodes");
        let text = String::from_utf8(openai.clone()).expect("utf-8");
        assert_eq!(text.matches("service_tier").count(), 1, "{text}");
        assert_eq!(body(openai)["service_tier"].as_str(), Some(tier));
    }
    let anthropic_client = crate::anthropic::request::decode(
        json!({"model": "m", "max_tokens": 5, "service_tier": "standard_only",
            "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
        .as_bytes(),
    )
    .expect("decodes");
    let openai = body(crate::openai::request::encode(&anthropic_client, "gpt").expect("encodes"));
    assert_eq!(openai["service_tier"].as_str(), Some("default"));
    let bedrock = body(encode(&anthropic_client, "anthropic.claude").expect("encodes"));
    assert_eq!(bedrock["serviceTier"]["type"].as_str(), Some("default"));
    let claude =
        body(crate::anthropic::request::encode(&anthropic_client, "claude").expect("encodes"));
    assert_eq!(claude["service_tier"].as_str(), Some("standard_only"));
}
