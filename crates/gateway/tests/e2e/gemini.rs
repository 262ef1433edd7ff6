//! OpenAI and Anthropic clients reaching a Gemini upstream (the mock plays Gemini).

use serde_json::{Value, json};

use super::support::{openai_stream_text, sse_events, standard};

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

#[tokio::test]
async fn openai_client_gets_text_and_usage_from_gemini() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({"model": "gemini", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello gemini"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "hello gemini");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["completion_tokens"], 2);
    assert!(body["usage"]["prompt_tokens"].as_u64().expect("count") > 0);
}

#[tokio::test]
async fn openai_client_streams_from_gemini() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({"model": "gemini", "messages": user("one two three"), "stream": true, "stream_options": {"include_usage": true}}))
        .await;
    assert_eq!(response.status(), 200);
    let events = sse_events(response).await;
    assert_eq!(openai_stream_text(&events), "one two three");
    assert_eq!(events.last().map(|(_, data)| data.as_str()), Some("[DONE]"));
    let usage: Value = serde_json::from_str(&events[events.len() - 2].1).expect("usage chunk");
    assert_eq!(usage["usage"]["completion_tokens"], 3);
}

/// Regression: an Anthropic client's `message_start` said `input_tokens: 0` although Gemini's
/// first chunk carries the prompt's count.
#[tokio::test]
async fn anthropic_client_streaming_from_gemini_gets_input_tokens_at_the_start() {
    let setup = standard().await;
    let response = setup
        .anthropic(&json!({"model": "gemini", "max_tokens": 50, "stream": true, "messages": user("one two three")}))
        .await;
    assert_eq!(response.status(), 200);
    let events = sse_events(response).await;
    assert_eq!(events[0].0.as_deref(), Some("message_start"));
    let start: Value = serde_json::from_str(&events[0].1).expect("json");
    let input = start["message"]["usage"]["input_tokens"]
        .as_u64()
        .expect("count");
    assert!(input > 0, "{start}");
    let (_, delta) = events
        .iter()
        .find(|(name, _)| name.as_deref() == Some("message_delta"))
        .expect("message_delta");
    let delta: Value = serde_json::from_str(delta).expect("json");
    assert_eq!(delta["usage"]["output_tokens"], 3);
    if let Some(total_input) = delta["usage"]["input_tokens"].as_u64() {
        assert_eq!(total_input, input);
    }
}

#[tokio::test]
async fn tool_calls_come_back_from_gemini_streamed_and_not() {
    let setup = standard().await;
    let body: Value = setup
        .openai(&json!({"model": "gemini", "messages": user("weather in Paris?"), "tools": weather_tool()}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("args")).expect("json");
    assert_eq!(arguments, json!({"city": "mock"}));

    setup.assert_anthropic_streamed_tool_call("gemini").await;
}

#[tokio::test]
async fn a_pydantic_style_schema_with_refs_reaches_gemini_as_json_schema() {
    let setup = standard().await;
    // What Pydantic writes for a nested model, and a free-form object: Gemini's `parameters`
    // subset refuses both, so the schema goes whole as `parametersJsonSchema`.
    let tools = json!([{"type": "function", "function": {"name": "ship", "parameters": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"to": {"$ref": "#/$defs/Address"}, "meta": {"type": "object"}},
        "required": ["to"],
        "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    }}}]);
    let response = setup
        .openai(&json!({"model": "gemini", "messages": user("ship it"), "tools": tools, "tool_choice": "required"}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "ship", "{body}");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("args")).expect("json");
    assert!(
        arguments.get("to").is_some(),
        "the mock filled the schema it was sent: {arguments}"
    );
}

#[tokio::test]
async fn a_tool_result_goes_back_to_gemini_by_name() {
    let setup = standard().await;
    let body: Value = setup
        .openai(&json!({
            "model": "gemini",
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"sky\":\"clear\"}"}
            ],
            "tools": weather_tool()
        }))
        .await
        .json()
        .await
        .expect("json");
    let content = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("text");
    assert!(
        content.starts_with("tool result:") && content.contains("clear"),
        "{content}"
    );
}

#[tokio::test]
async fn gemini_faults_reach_the_client_in_its_own_shape() {
    let setup = standard().await;
    let response = setup
        .openai(&json!({"model": "gemini-429", "messages": user("x")}))
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    let body: Value = setup
        .openai(&json!({"model": "gemini-safety", "messages": user("x")}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["choices"][0]["finish_reason"], "content_filter",
        "{body}"
    );

    let response = setup
        .anthropic(&json!({"model": "gemini-blocked", "max_tokens": 10, "messages": user("x")}))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "error");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("SAFETY"),
        "{body}"
    );
}

#[tokio::test]
async fn a_json_schema_answer_with_tools_declared_comes_from_gemini() {
    // Gemini refuses a JSON response type together with function declarations (the mock
    // too); the schema goes as one more function, and its call comes back as the text.
    let setup = standard().await;
    let format = json!({"type": "json_schema", "json_schema": {"name": "forecast", "strict": true, "schema": {"type": "object", "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}}, "required": ["city", "celsius"], "additionalProperties": false}}});
    // The final turn of an agent: tools still declared, none to be called, a structured answer.
    let request = json!({
        "model": "gemini",
        "messages": user("Summarise the forecast."),
        "tools": weather_tool(),
        "tool_choice": "none",
        "response_format": format,
    });
    let body = setup.openai_json(&request).await;
    let message = &body["choices"][0]["message"];
    assert!(message.get("tool_calls").is_none(), "{body}");
    let answer: Value =
        serde_json::from_str(message["content"].as_str().expect("text")).expect("JSON text");
    assert!(
        answer["city"].is_string() && answer["celsius"].is_number(),
        "{answer}"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let events = sse_events(setup.openai(&streamed).await).await;
    let text = openai_stream_text(&events);
    let answer: Value = serde_json::from_str(&text).expect("JSON text");
    assert!(answer["city"].is_string(), "{text}");
    assert!(
        !events.iter().any(|(_, data)| data.contains("tool_calls")),
        "no call reaches the client"
    );

    // With calls allowed, the model may still call the client's own tool.
    let mut calling = request;
    calling["tool_choice"] = json!("auto");
    calling["messages"] = user("What is the weather? use get_weather");
    let body = setup.openai_json(&calling).await;
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather",
        "{body}"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");

    // A JSON object with tools: asked for in the system instruction, no JSON response type.
    let body = setup
        .openai_json(&json!({"model": "gemini", "messages": user("hi"), "tools": weather_tool(), "tool_choice": "none", "response_format": {"type": "json_object"}}))
        .await;
    assert_eq!(body["choices"][0]["finish_reason"], "stop", "{body}");
}
