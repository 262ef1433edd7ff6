//! End-to-end tests of the Gemini routes over raw HTTP.

use serde_json::{Value, json};

use super::*;

const KEY: (&str, &str) = ("x-goog-api-key", "AIza-test");

fn user(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

async fn post(server: &MockServer, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    exchange(server, "POST", path, headers, &body.to_string()).await
}

/// The `data:` payloads of a Gemini event stream, which separates events with CRLF CRLF.
fn sse_chunks(reply: &Reply) -> Vec<Value> {
    let text = reply.text();
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    text.split_terminator("\r\n\r\n")
        .map(|event| {
            let data = event.strip_prefix("data: ").expect("data line");
            serde_json::from_str(data).expect("JSON chunk")
        })
        .collect()
}

#[tokio::test]
async fn generate_content_echoes_over_http() {
    let server = start().await;
    let reply = post(
        &server,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        &[KEY],
        &user("hello there"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let value = reply.json();
    assert_eq!(
        value["candidates"][0]["content"],
        json!({"parts": [{"text": "hello there"}], "role": "model"})
    );
    assert_eq!(value["candidates"][0]["finishReason"], "STOP");
    assert_eq!(value["modelVersion"], "gemini-2.5-flash");
    assert!(value["responseId"].is_string());
    // 2 words + 3 per content.
    assert_eq!(value["usageMetadata"]["promptTokenCount"], 5);
    assert_eq!(value["usageMetadata"]["candidatesTokenCount"], 2);
    assert_eq!(value["usageMetadata"]["totalTokenCount"], 7);

    // `/v1`, the key as a query parameter, options in the `;`/`,` spelling.
    let reply = post(
        &server,
        "/v1/models/echo;tokens=3,cached_tokens=2:generateContent?key=AIza-test",
        &[],
        &user("ignored"),
    )
    .await;
    assert_eq!(reply.status, 200);
    let value = reply.json();
    assert_eq!(
        value["candidates"][0]["content"]["parts"][0]["text"],
        "tok1 tok2 tok3"
    );
    assert_eq!(value["usageMetadata"]["cachedContentTokenCount"], 2);
    assert_eq!(server.stats().requests, 2);
}

#[tokio::test]
async fn stream_sends_sse_chunks_then_the_finish() {
    let server = start().await;
    let reply = post(
        &server,
        "/v1beta/models/echo%3Ftokens%3D3:streamGenerateContent?alt=sse",
        &[KEY],
        &user("ignored"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.complete);
    assert_eq!(
        reply.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let chunks = sse_chunks(&reply);
    let texts: Vec<_> = chunks
        .iter()
        .map(|chunk| &chunk["candidates"][0]["content"]["parts"][0]["text"])
        .collect();
    assert_eq!(texts, ["tok1", " tok2", " tok3", ""]);
    let finishes: Vec<_> = chunks
        .iter()
        .map(|chunk| chunk["candidates"][0].get("finishReason"))
        .collect();
    assert_eq!(finishes, [None, None, None, Some(&json!("STOP"))]);
    let last = &chunks[3];
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 3);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 7);
    assert_eq!(last["modelVersion"], "echo?tokens=3");
    assert!(!reply.text().contains("[DONE]"));
    let stats = wait_for(&server, |stats| stats.completed_streams == 1).await;
    assert_eq!(stats.active_streams, 0);

    let no_alt = post(
        &server,
        "/v1beta/models/echo:streamGenerateContent",
        &[KEY],
        &user("hi"),
    )
    .await;
    assert_eq!(no_alt.status, 400);
    assert_eq!(no_alt.json()["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        no_alt.json()["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("alt=sse"))
    );
}

#[tokio::test]
async fn tool_call_then_tool_result() {
    let server = start().await;
    let tools = json!([{"functionDeclarations": [{
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "OBJECT",
            "properties": {
                "city": {"type": "STRING"},
                "unit": {"type": "STRING", "enum": ["C", "F"]}
            },
            "required": ["city", "unit"]
        }
    }]}]);
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "weather in Paris?"}]}],
        "tools": tools
    });
    let path = "/v1beta/models/echo:generateContent";
    let reply = post(&server, path, &[KEY], &body).await;
    assert_eq!(reply.status, 200);
    let value = reply.json();
    let content = &value["candidates"][0]["content"];
    assert_eq!(content["role"], "model");
    let call = &content["parts"][0]["functionCall"];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["args"], json!({"city": "mock", "unit": "C"}));
    assert!(call["id"].is_string());
    assert_eq!(value["candidates"][0]["finishReason"], "STOP");

    let body = json!({
        "contents": [
            {"role": "user", "parts": [{"text": "weather in Paris?"}]},
            {"role": "model", "parts": [{"functionCall": call}]},
            {"role": "user", "parts": [{"functionResponse": {
                "id": call["id"], "name": "get_weather", "response": {"temp": 21, "sky": "clear"}
            }}]}
        ],
        "tools": tools
    });
    let reply = post(&server, path, &[KEY], &body).await;
    assert_eq!(
        reply.json()["candidates"][0]["content"]["parts"][0]["text"],
        r#"tool result: {"temp":21,"sky":"clear"}"#
    );
}

#[tokio::test]
async fn rate_limit_carries_retry_info() {
    let server = start().await;
    for path in [
        "/v1beta/models/echo;fail=429,retry_after=3:generateContent",
        "/v1beta/models/echo%3Ffail%3D429%26retry_after%3D3:generateContent",
    ] {
        let reply = post(&server, path, &[KEY], &user("hi")).await;
        assert_eq!(reply.status, 429, "{path}");
        assert_eq!(reply.header("retry-after"), Some("3"));
        let error = &reply.json()["error"];
        assert_eq!(error["code"], 429);
        assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
        let retry = error["details"]
            .as_array()
            .expect("details")
            .iter()
            .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
            .expect("a RetryInfo detail");
        assert_eq!(retry["retryDelay"], "3s");
    }
    // Headers work too, and other statuses carry their names.
    let reply = post(
        &server,
        "/v1beta/models/echo:generateContent",
        &[KEY, ("x-mock-fail", "503")],
        &user("hi"),
    )
    .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn safety_and_blocked_are_200s() {
    let server = start().await;
    let reply = post(
        &server,
        "/v1beta/models/echo;fail=safety:generateContent",
        &[KEY],
        &user("hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    let candidate = &reply.json()["candidates"][0];
    assert_eq!(candidate["finishReason"], "SAFETY");
    assert!(candidate.get("content").is_none());
    assert!(
        candidate["safetyRatings"]
            .as_array()
            .is_some_and(|ratings| ratings.iter().any(|rating| rating["probability"] == "HIGH"))
    );

    let reply = post(
        &server,
        "/v1beta/models/echo;fail=blocked:streamGenerateContent?alt=sse",
        &[KEY],
        &user("hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    let chunks = sse_chunks(&reply);
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].get("candidates").is_none());
    assert_eq!(chunks[0]["promptFeedback"]["blockReason"], "SAFETY");
}

#[tokio::test]
async fn authentication_and_validation_errors() {
    let server = start().await;
    let path = "/v1beta/models/echo:generateContent";
    let missing = post(&server, path, &[], &user("hi")).await;
    assert_eq!(missing.status, 403);
    assert_eq!(missing.json()["error"]["status"], "PERMISSION_DENIED");

    let bad_key = post(&server, path, &[("x-goog-api-key", "invalid")], &user("hi")).await;
    assert_eq!(bad_key.status, 400);
    assert_eq!(bad_key.json()["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        bad_key.json()["error"]["details"][0]["reason"],
        "API_KEY_INVALID"
    );

    let bearer = post(
        &server,
        path,
        &[("authorization", "Bearer ya29.token")],
        &user("hi"),
    )
    .await;
    assert_eq!(bearer.status, 200);
    let bad_token = post(
        &server,
        path,
        &[("authorization", "Bearer invalid")],
        &user("hi"),
    )
    .await;
    assert_eq!(bad_token.status, 401);
    assert_eq!(bad_token.json()["error"]["status"], "UNAUTHENTICATED");

    let unknown = post(
        &server,
        "/v1beta/models/echo:countTokens",
        &[KEY],
        &user("hi"),
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["status"], "NOT_FOUND");

    for body in [
        json!({}),
        json!({"contents": []}),
        json!({"contents": [{"role": "user", "parts": []}]}),
        json!({
            "contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"candidateCount": 9}
        }),
    ] {
        let reply = post(&server, path, &[KEY], &body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json()["error"]["code"], 400);
    }
    let bad_option = post(
        &server,
        "/v1beta/models/echo;tokens=x:generateContent",
        &[KEY],
        &user("hi"),
    )
    .await;
    assert_eq!(bad_option.status, 400);
}
