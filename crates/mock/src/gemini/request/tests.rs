//! Tests of the Gemini request and the prompt it gives.

use serde_json::json;

use super::*;

fn parse(value: Value) -> GenerateRequest {
    serde_json::from_value(value).expect("valid request")
}

#[test]
fn prompt_counts_tokens_and_reads_config() {
    let request = parse(json!({
        "system_instruction": {"parts": [{"text": "be brief"}]},
        "contents": [{"role": "user", "parts": [
            {"text": "what is"},
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
            {"text": "this"}
        ]}],
        "tools": [{"functionDeclarations": [
            {"name": "look", "description": "Look at it",
             "parameters": {"type": "OBJECT", "properties": {"q": {"type": "STRING"}}}}
        ]}, {"googleSearch": {}}],
        "generationConfig": {
            "stopSequences": ["x"], "maxOutputTokens": 7, "candidateCount": 2,
            "thinkingConfig": {"includeThoughts": true}
        }
    }));
    let contents = request.contents.as_deref().expect("contents");
    let prompt = request.prompt(contents);
    // user 3 words + 3, image 85; system 2+3; declaration 1+3+3.
    assert_eq!(
        request.prompt_tokens(contents),
        PromptTokens {
            text: 6 + 5 + 7,
            media: 85
        }
    );
    assert_eq!(prompt.prompt_tokens, 103);
    assert_eq!(prompt.last.role, LastRole::User);
    assert_eq!(prompt.last.text, "what is\nthis");
    assert_eq!(prompt.stop, ["x"]);
    assert_eq!(prompt.max_tokens, Some(7));
    assert_eq!(prompt.tools.len(), 1);
    assert_eq!(prompt.tool_choice, ToolChoice::Auto);
    assert_eq!(request.candidate_count(), 2);
    assert!(request.include_thoughts());
}

#[test]
fn function_response_is_a_tool_result() {
    let request = parse(json!({
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather",
                                      "response": {"forecast": "sunny", "high": 21}}}
            ]}
        ],
        "toolConfig": {"functionCallingConfig": {
            "mode": "ANY", "allowedFunctionNames": ["get_weather"]
        }}
    }));
    let contents = request.contents.as_deref().expect("contents");
    let prompt = request.prompt(contents);
    assert_eq!(prompt.last.role, LastRole::ToolResult);
    assert_eq!(prompt.last.text, r#"{"forecast":"sunny","high":21}"#);
    assert_eq!(prompt.tool_choice, ToolChoice::Named("get_weather"));
}

#[test]
fn json_formats_and_allowed_functions() {
    let request = parse(json!({
        "contents": [{"parts": [{"text": "hi"}]}],
        "tools": [{"function_declarations": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}],
        "tool_config": {"function_calling_config": {
            "mode": "ANY", "allowed_function_names": ["b", "c"]
        }},
        "generation_config": {
            "response_mime_type": "application/json",
            "response_schema": {"type": "OBJECT"},
            "responseJsonSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}
        }
    }));
    let contents = request.contents.as_deref().expect("contents");
    let prompt = request.prompt(contents);
    assert_eq!(prompt.last.role, LastRole::User);
    assert_eq!(prompt.tool_choice, ToolChoice::Required);
    let names: Vec<_> = prompt.tools.iter().map(|tool| tool.name).collect();
    assert_eq!(names, ["b", "c"]);
    assert!(matches!(
        prompt.format,
        Format::JsonSchema(Some(schema)) if schema["type"] == "object"
    ));
    assert_eq!(request.candidate_count(), 1);
}

#[test]
fn model_turn_last_echoes_the_last_user_text() {
    let request = parse(json!({
        "contents": [
            {"role": "user", "parts": [{"text": "first"}]},
            {"role": "model", "parts": [{"text": "prefill"}]}
        ],
        "generationConfig": {"responseMimeType": "application/json"}
    }));
    let contents = request.contents.as_deref().expect("contents");
    let prompt = request.prompt(contents);
    assert_eq!(prompt.last.role, LastRole::Other);
    assert_eq!(prompt.last.text, "first");
    assert!(matches!(prompt.format, Format::JsonObject));
}
