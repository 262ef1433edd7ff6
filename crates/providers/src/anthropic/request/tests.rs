//! Golden tests of Anthropic request decoding (client side) and encoding (upstream side).

use serde_json::{Map, Value, json};
use switchyard_types::{
    ChatRequest, ContentPart, ErrorKind, Extra, ImageSource, MaxTokensKey, Message, Reasoning,
    ResponseFormat, Role, Tool, ToolCall, ToolChoice, WireFormat,
};

use super::{decode, encode};

const AGENT: &str = include_str!("../../../tests/fixtures/anthropic/request_agent.json");

fn tool_message(id: &str, content: Vec<ContentPart>) -> Message {
    Message {
        tool_call_id: Some(id.into()),
        ..Message::new(Role::Tool, content)
    }
}

fn cached_text(text: &str) -> ContentPart {
    ContentPart::Text {
        text: text.into(),
        cache_control: Some(json!({"type": "ephemeral"})),
    }
}

fn encoded(request: &ChatRequest) -> Value {
    serde_json::from_slice(&encode(request, "claude-sonnet-4-5").expect("encodes")).expect("JSON")
}

#[test]
fn decodes_a_coding_agent_request() {
    let request = decode(AGENT.as_bytes()).expect("decodes");
    let weather_schema = json!({
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
        },
        "required": ["location"]
    });
    let mut extra = Map::new();
    extra.insert("service_tier".into(), json!("auto"));
    extra.insert(
        "container".into(),
        json!("container_011CPR5CNjB747bTd36fQLFk"),
    );
    let expected = ChatRequest {
        model: "claude-sonnet-4-5".into(),
        messages: vec![
            Message::new(
                Role::System,
                vec![
                    ContentPart::text("You are a coding agent."),
                    cached_text("Project rules: answer briefly."),
                ],
            ),
            Message::new(
                Role::User,
                vec![
                    ContentPart::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                        detail: None,
                        cache_control: None,
                    },
                    ContentPart::text("What is the weather where this photo was taken?"),
                ],
            ),
            Message {
                tool_calls: vec![ToolCall {
                    id: "toolu_01A09q90qw90lq917835lq9".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"location":"San Francisco, CA","unit":"celsius"}"#.into(),
                }],
                ..Message::new(
                    Role::Assistant,
                    vec![
                        ContentPart::Thinking {
                            text: "The photo shows the Golden Gate Bridge.".into(),
                            signature: Some(
                                "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds".into(),
                            ),
                        },
                        ContentPart::text("That is San Francisco; let me check."),
                    ],
                )
            },
            // The tool result comes first, the rest of the user turn after it.
            tool_message(
                "toolu_01A09q90qw90lq917835lq9",
                vec![cached_text("15 degrees")],
            ),
            Message::new(
                Role::User,
                vec![ContentPart::text("Also show me the webcam.")],
            ),
            Message {
                tool_calls: vec![ToolCall {
                    id: "toolu_02".into(),
                    name: "get_webcam".into(),
                    arguments: "{}".into(),
                }],
                ..Message::new(Role::Assistant, Vec::new())
            },
            Message {
                is_error: true,
                ..tool_message(
                    "toolu_02",
                    vec![
                        ContentPart::text("camera offline"),
                        ContentPart::Image {
                            source: ImageSource::Url("https://example.com/fallback.png".into()),
                            detail: None,
                            cache_control: None,
                        },
                    ],
                )
            },
        ],
        tools: vec![
            Tool {
                name: "get_weather".into(),
                description: Some("Get the current weather in a given location".into()),
                parameters: weather_schema,
                strict: None,
                cache_control: None,
            },
            Tool {
                name: "get_webcam".into(),
                description: None,
                parameters: json!({"type": "object", "properties": {}}),
                strict: None,
                cache_control: Some(json!({"type": "ephemeral"})),
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(false),
        response_format: None,
        max_tokens: Some(1024),
        max_tokens_key: MaxTokensKey::MaxTokens,
        temperature: None,
        top_p: None,
        top_k: None,
        n: None,
        stop: vec!["###".into()],
        seed: None,
        user: Some("user-7c1d".into()),
        metadata: None,
        reasoning: Some(Reasoning {
            effort: None,
            budget_tokens: Some(2048),
        }),
        stream: true,
        include_usage: true,
        extra: Extra {
            format: WireFormat::Anthropic,
            fields: extra,
        },
        opaque_tools: Vec::new(),
    };
    assert_eq!(request, expected);
    assert_eq!(
        request.extra.fields.keys().collect::<Vec<_>>(),
        ["service_tier", "container"],
        "extra fields keep the client's order"
    );
}

#[test]
fn anthropic_to_anthropic_round_trips() {
    let request = decode(AGENT.as_bytes()).expect("decodes");
    let original: Value = serde_json::from_str(AGENT).expect("fixture is JSON");
    assert_eq!(encoded(&request), original);
}

#[test]
fn decode_errors_name_the_field() {
    let cases: [(&str, &str); 7] = [
        (r#"{"model":"m","messages":[]}"#, "max_tokens"),
        (r#"{"max_tokens":5,"messages":[]}"#, "model"),
        (r#"{"model":"m","max_tokens":5}"#, "messages"),
        (
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":5}]}"#,
            "messages[0].content",
        ),
        (
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":7}]}]}"#,
            "messages[0].content[1].text",
        ),
        (
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png"}}]}]}"#,
            "messages[0].content[0].source.data",
        ),
        (
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"n","input":{}}]}]}"#,
            "messages[0].content[0]",
        ),
    ];
    for (body, param) in cases {
        let error = decode(body.as_bytes()).expect_err(body);
        assert_eq!(error.kind, ErrorKind::InvalidRequest, "{body}");
        assert_eq!(
            error.param.as_deref(),
            Some(param),
            "{body}: {}",
            error.message
        );
    }
    let error = decode(br#"{"model":"m","messages":[]}"#).expect_err("no max_tokens");
    assert_eq!(error.message, "max_tokens: Field required");
    // A server tool is kept whole.
    let request = decode(
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5},{"name":"f","input_schema":{"type":"object"}}]}"#,
    )
    .expect("server tool");
    assert_eq!(
        request.opaque_tools,
        [json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 5})]
    );
    assert_eq!(request.first_opaque(), Some("web_search_20250305"));
    assert_eq!(request.tools.len(), 1);
    // A block type without a canonical place is kept whole too.
    let request = decode(
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document"}]}]}"#,
    )
    .expect("document");
    assert_eq!(ContentPart::opaque_in(&request.messages), Some("document"));
}

#[test]
fn blocks_and_server_tools_without_a_canonical_place_are_written_again_whole() {
    // A web-search conversation as Claude Code sends it: the server tool, the search and its
    // results in the previous turn, a document and a search result inside a tool result, an
    // image from the Files API.
    let body = br#"{"model":"m","max_tokens":50,"tools":[{"name":"read","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search","max_uses":3,"allowed_domains":["example.com"]}],"messages":[
        {"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"a\nb"},"citations":{"enabled":true}},{"type":"text","text":"search it"}]},
        {"role":"assistant","content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}},{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[{"type":"web_search_result","url":"https://example.com","title":"E","encrypted_content":"xyz","page_age":null}]},{"type":"text","text":"found"},{"type":"tool_use","id":"t1","name":"read","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"search_result","source":"https://example.com","title":"X","content":[{"type":"text","text":"x"}]}]},{"type":"image","source":{"type":"file","file_id":"file_1"}},{"type":"text","text":"and now?"}]}]}"#;
    let whole: Value = serde_json::from_slice(body).expect("JSON");
    let request = decode(body).expect("decodes");
    // Only another dialect's upstream refuses them now.
    let encoded: Value =
        serde_json::from_slice(&encode(&request, "claude-sonnet-4-5").expect("encodes"))
            .expect("JSON");
    assert_eq!(encoded["tools"][1], whole["tools"][1]);
    assert_eq!(
        encoded["messages"][0]["content"][0],
        whole["messages"][0]["content"][0]
    );
    assert_eq!(
        encoded["messages"][1]["content"][0],
        whole["messages"][1]["content"][0]
    );
    assert_eq!(
        encoded["messages"][1]["content"][1],
        whole["messages"][1]["content"][1]
    );
    let last = &encoded["messages"][2]["content"];
    assert_eq!(
        last[0]["content"][0],
        whole["messages"][2]["content"][0]["content"][0]
    );
    assert_eq!(last[1], whole["messages"][2]["content"][1]);
}

#[test]
fn decodes_string_system_thinking_modes_and_tool_choices() {
    let request = decode(
        br#"{"model":"m","max_tokens":5,"system":"Be brief.","messages":[{"role":"user","content":"hi"}],
            "thinking":{"type":"disabled"},"tools":[{"type":"custom","name":"t","input_schema":{"type":"object"}}],
            "tool_choice":{"type":"tool","name":"t"},"temperature":0.2,"top_k":40}"#,
    )
    .expect("decodes");
    assert_eq!(
        request.messages,
        vec![
            Message::text_message(Role::System, "Be brief."),
            Message::text_message(Role::User, "hi"),
        ]
    );
    assert_eq!(request.reasoning, None);
    assert_eq!(request.tool_choice, Some(ToolChoice::Tool("t".into())));
    assert_eq!(request.parallel_tool_calls, None);
    assert_eq!((request.temperature, request.top_k), (Some(0.2), Some(40)));
    assert!(!request.stream && !request.include_usage);

    // Adaptive thinking is its effort (Anthropic's default without one), and reaches
    // Anthropic upstreams whole.
    let request = decode(
        br#"{"model":"m","max_tokens":5,"messages":[],"thinking":{"type":"adaptive"},"tool_choice":{"type":"any"}}"#,
    )
    .expect("decodes");
    assert_eq!(
        request.reasoning,
        Some(Reasoning {
            effort: Some("high".into()),
            budget_tokens: None
        })
    );
    assert_eq!(request.tool_choice, Some(ToolChoice::Required));
    assert_eq!(
        request
            .extra
            .for_format(WireFormat::Anthropic)
            .and_then(|f| f.get("thinking")),
        Some(&json!({"type": "adaptive"}))
    );
}

/// The request an OpenAI SDK client sends, as the OpenAI decoder makes it canonical.
fn openai_style_request() -> ChatRequest {
    ChatRequest {
        model: "gpt-4o".into(),
        messages: vec![
            Message::text_message(Role::System, "You are terse."),
            Message::new(
                Role::User,
                vec![
                    ContentPart::text("Describe this image"),
                    ContentPart::Image {
                        source: ImageSource::from_url("data:image/png;base64,iVBORw0KGgo="),
                        detail: Some("high".into()),
                        cache_control: None,
                    },
                ],
            ),
            Message::text_message(Role::Developer, "Answer in French."),
            Message {
                tool_calls: vec![
                    ToolCall {
                        id: "call_abc".into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city": "Paris"}"#.into(),
                    },
                    ToolCall {
                        id: "functions.get_time:1".into(),
                        name: "get_time".into(),
                        arguments: String::new(),
                    },
                ],
                ..Message::text_message(Role::Assistant, "")
            },
            tool_message("call_abc", vec![ContentPart::text("18C")]),
            tool_message("functions.get_time:1", vec![ContentPart::text("12:00")]),
            Message::text_message(Role::User, "thanks"),
            Message::text_message(Role::User, "now as JSON"),
        ],
        tools: vec![
            Tool {
                name: "get_weather".into(),
                description: Some("Weather by city".into()),
                parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
                strict: Some(true),
                cache_control: None,
            },
            Tool {
                name: "get_time".into(),
                description: None,
                parameters: Value::Null,
                strict: None,
                cache_control: None,
            },
        ],
        tool_choice: None,
        parallel_tool_calls: Some(false),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "weather_report".into(),
            description: None,
            schema: json!({"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}),
            strict: Some(true),
        }),
        max_tokens: None,
        max_tokens_key: MaxTokensKey::MaxCompletionTokens,
        temperature: Some(1.5),
        top_p: None,
        top_k: None,
        n: Some(1),
        stop: vec!["END".into()],
        seed: Some(42),
        user: Some("user-42".into()),
        metadata: Some(json!({"trace": "abc"})),
        reasoning: Some(Reasoning {
            effort: Some("high".into()),
            budget_tokens: None,
        }),
        stream: true,
        include_usage: true,
        extra: Extra {
            format: WireFormat::OpenAi,
            fields: [("logit_bias".to_owned(), json!({"50256": -100}))]
                .into_iter()
                .collect(),
        },
        opaque_tools: Vec::new(),
    }
}

#[test]
fn encodes_an_openai_client_request_for_anthropic() {
    let body = encoded(&openai_style_request());
    let expected = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Answer in French."}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Describe this image"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "functions_get_time_1", "name": "get_time", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_abc", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "functions_get_time_1", "content": "12:00"},
                {"type": "text", "text": "thanks"},
                {"type": "text", "text": "now as JSON"}
            ]}
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather by city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
            {"name": "json_tool_call", "description": "Respond with the answer, a JSON value following this schema.",
             "input_schema": {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}}
        ],
        // With the client's tools present the answer is either one of them or the JSON.
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        // Thinking cannot go with a forced tool: the effort hint yields. Temperature is clamped.
        "temperature": 1.0,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
        "stream": true
    });
    assert_eq!(body, expected);
}

#[test]
fn json_schema_without_tools_forces_the_json_tool() {
    let mut request = openai_style_request();
    request.tools.clear();
    request.messages.truncate(2);
    request.parallel_tool_calls = None;
    let body = encoded(&request);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "json_tool_call"})
    );
    assert_eq!(body["tools"].as_array().map(Vec::len), Some(1));
    assert!(body.get("thinking").is_none());
}

#[test]
fn reasoning_effort_becomes_a_thinking_budget() {
    let mut request = openai_style_request();
    request.response_format = None;
    request.messages.truncate(3);
    let body = encoded(&request);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 4096})
    );
    // The budget must stay below max_tokens; thinking requires default sampling.
    assert_eq!(body["max_tokens"], json!(8192));
    assert!(body.get("temperature").is_none());
    assert_eq!(
        body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );

    request.max_tokens = Some(3000);
    request.reasoning = Some(Reasoning {
        effort: Some("low".into()),
        budget_tokens: None,
    });
    let body = encoded(&request);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(body["max_tokens"], json!(3000));

    request.reasoning = Some(Reasoning {
        effort: Some("medium".into()),
        budget_tokens: None,
    });
    request.max_tokens = Some(1500);
    let body = encoded(&request);
    assert!(
        body.get("thinking").is_none(),
        "no room for the minimum budget: {body}"
    );
    assert_eq!(body["temperature"], json!(1.0));

    request.max_tokens = None;
    request.reasoning = Some(Reasoning {
        effort: Some("minimal".into()),
        budget_tokens: None,
    });
    assert!(encoded(&request).get("thinking").is_none());

    // Mid tool loop without Anthropic-signed thinking to replay, thinking is left off.
    let mut request = openai_style_request();
    request.response_format = None;
    request.messages.truncate(6);
    assert!(encoded(&request).get("thinking").is_none());

    request.reasoning = Some(Reasoning {
        effort: Some("extreme".into()),
        budget_tokens: None,
    });
    let error = encode(&request, "m").expect_err("unknown effort");
    assert_eq!(error.param.as_deref(), Some("reasoning_effort"));
}

#[test]
fn an_openai_effort_is_adaptive_thinking_on_models_that_only_take_that() {
    // As the OpenAI SDK sends it: `reasoning_effort` with a temperature and no limit.
    let request = crate::openai::request::decode(
        br#"{"model":"opus","messages":[{"role":"user","content":"Prove there are infinitely many primes."}],"reasoning_effort":"medium","temperature":0.3}"#,
    )
    .expect("decodes");
    let body: Value =
        serde_json::from_slice(&encode(&request, "claude-opus-4-7").expect("encodes"))
            .expect("JSON");
    assert_eq!(body["thinking"], json!({"type": "adaptive"}));
    assert_eq!(body["output_config"], json!({"effort": "medium"}));
    // Room to think and answer; thinking takes no temperature.
    assert_eq!(body["max_tokens"], json!(16384));
    assert!(body.get("temperature").is_none(), "{body}");

    // The same request to a model that takes budgets gets one.
    let body: Value =
        serde_json::from_slice(&encode(&request, "claude-sonnet-4-5").expect("encodes"))
            .expect("JSON");
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert!(body.get("output_config").is_none());
}

#[test]
fn an_anthropic_clients_adaptive_thinking_survives_translation() {
    // Claude Code's shape: adaptive thinking, an effort and a structured-output format in
    // `output_config`.
    let request = decode(
        br#"{"model":"claude-opus-4-7","max_tokens":32000,"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"adaptive","display":"summarized"},"output_config":{"effort":"low","format":{"type":"json_schema","schema":{"type":"object"}}}}"#,
    )
    .expect("decodes");
    assert_eq!(
        request.reasoning,
        Some(Reasoning {
            effort: Some("low".into()),
            budget_tokens: None
        })
    );
    // Re-encoded for an Anthropic upstream (a stage changed the request): nothing lost.
    let body: Value =
        serde_json::from_slice(&encode(&request, "claude-opus-4-7").expect("encodes"))
            .expect("JSON");
    assert_eq!(
        body["thinking"],
        json!({"type": "adaptive", "display": "summarized"})
    );
    assert_eq!(
        body["output_config"],
        json!({"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}})
    );
    assert_eq!(body["max_tokens"], json!(32000));
    // For an older Claude: a budget.
    let body: Value =
        serde_json::from_slice(&encode(&request, "claude-3-7-sonnet-20250219").expect("encodes"))
            .expect("JSON");
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    // For an OpenAI upstream: its effort; Anthropic's `max` as OpenAI's `high`.
    let body: Value =
        serde_json::from_slice(&crate::openai::request::encode(&request, "o3").expect("encodes"))
            .expect("JSON");
    assert_eq!(body["reasoning_effort"], json!("low"));
    let mut request = request;
    request.reasoning = Some(Reasoning {
        effort: Some("max".into()),
        budget_tokens: None,
    });
    let body: Value =
        serde_json::from_slice(&crate::openai::request::encode(&request, "o3").expect("encodes"))
            .expect("JSON");
    assert_eq!(body["reasoning_effort"], json!("high"));
}

#[test]
fn json_object_asks_for_json_in_the_system_prompt() {
    let request = ChatRequest {
        messages: vec![Message::text_message(Role::User, "list three colors")],
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::default()
    };
    let body = encoded(&request);
    assert_eq!(
        body["system"],
        json!(super::upstream::JSON_OBJECT_INSTRUCTION)
    );
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "list three colors"}])
    );
    assert_eq!(body["max_tokens"], json!(4096));
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
}

#[test]
fn encode_rejects_what_anthropic_cannot_do() {
    let mut request = openai_style_request();
    request.n = Some(2);
    let error = encode(&request, "m").expect_err("n > 1");
    assert_eq!(
        (error.kind, error.param.as_deref()),
        (ErrorKind::InvalidRequest, Some("n"))
    );

    let mut request = openai_style_request();
    request.messages[3].tool_calls[0].arguments = r#"{"city": "Par"#.into();
    let error = encode(&request, "m").expect_err("bad arguments");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert_eq!(
        error.param.as_deref(),
        Some("messages[3].tool_calls[0].function.arguments")
    );
    assert!(error.message.contains("messages[3]"), "{}", error.message);
}

#[test]
fn encode_merges_turns_and_drops_what_anthropic_rejects() {
    let request = ChatRequest {
        messages: vec![
            Message::text_message(Role::User, "a"),
            Message::text_message(Role::User, ""),
            Message::text_message(Role::User, "b"),
            Message::text_message(Role::Assistant, "c"),
            Message {
                // Reasoning from another provider has no Anthropic signature.
                content: vec![ContentPart::Thinking {
                    text: "hmm".into(),
                    signature: None,
                }],
                ..Message::text_message(Role::Assistant, "")
            },
            Message::text_message(Role::Assistant, "d"),
            Message::text_message(Role::User, "e"),
        ],
        tool_choice: Some(ToolChoice::Auto),
        ..ChatRequest::default()
    };
    let body = encoded(&request);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
            {"role": "user", "content": "e"}
        ])
    );
    assert!(
        body.get("tool_choice").is_none(),
        "no tools, no tool_choice"
    );
    assert!(body.get("system").is_none());
}

#[test]
fn anthropic_extras_are_forwarded_only_to_anthropic() {
    let mut request = decode(
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"service_tier":"auto","max_tokens_extra":{"a":[1]}}"#,
    )
    .expect("decodes");
    let body = encoded(&request);
    assert_eq!(body["service_tier"], json!("auto"));
    assert_eq!(body["max_tokens_extra"], json!({"a": [1]}));
    request.extra.format = WireFormat::OpenAi;
    let body = encoded(&request);
    assert!(body.get("max_tokens_extra").is_none());
    // A tier is translated rather than forwarded: OpenAI's `auto` is Anthropic's too.
    assert_eq!(body["service_tier"], json!("auto"));
}

/// Regressions: current Claude models refuse `temperature` with `top_p`, and Anthropic
/// refuses whitespace-only stop sequences; OpenAI clients send both.
#[test]
fn sampling_and_stops_anthropic_refuses_are_left_out() {
    let request = ChatRequest {
        messages: vec![Message::text_message(Role::User, "a")],
        temperature: Some(0.5),
        top_p: Some(0.9),
        stop: vec!["\n".into(), " ".into(), "END".into()],
        ..ChatRequest::default()
    };
    let body = encoded(&request);
    assert_eq!(body["temperature"], json!(0.5));
    assert!(body.get("top_p").is_none());
    assert_eq!(body["stop_sequences"], json!(["END"]));
    let only_top_p = ChatRequest {
        temperature: None,
        stop: vec!["\n".into()],
        ..request
    };
    let body = encoded(&only_top_p);
    assert_eq!(body["top_p"], json!(0.9));
    assert!(body.get("stop_sequences").is_none());
}
