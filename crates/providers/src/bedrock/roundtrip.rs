//! The whole Bedrock path against `switchyard-mock` over HTTP: a body from
//! [`request::encode`], signed by [`sign::sign`] (which the mock verifies), read back with
//! [`response::decode`], [`stream::Decoder`] or [`error::decode`].

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use serde_json::json;
use switchyard_mock::MockServer;
use switchyard_types::{
    ApiError, ChatRequest, ChatResponse, Delta, ErrorKind, FinishReason, Message, Role,
    StreamEvent, Tool, Usage,
};

use super::sign::{Credentials, sign};
use super::{error, path, request, response, stream};

fn mock_credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIDMOCK".into(),
        secret_access_key: SecretString::from("mock-secret"),
        session_token: Some(SecretString::from("mock-session")),
    }
}

/// One signed call; the answer's status, headers and body.
async fn post(
    server: &MockServer,
    credentials: &Credentials,
    model: &str,
    request: &ChatRequest,
) -> crate::http::Response {
    let body = request::encode(request, model).expect("encodes");
    let url = format!("{}{}", server.base_url(), path(model, request.stream));
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    for (name, value) in sign(
        credentials,
        "us-west-2",
        &url,
        &headers,
        &body,
        SystemTime::now(),
    )
    .expect("signs")
    {
        headers.insert(name, value);
    }
    let client = crate::http::client(Duration::from_secs(5)).expect("a client");
    let target = crate::http::Target::parse(&url).expect("a URL");
    client
        .post(&target, headers, body.into())
        .await
        .expect("the mock answers")
}

async fn converse(
    server: &MockServer,
    model: &str,
    request: &ChatRequest,
) -> Result<ChatResponse, ApiError> {
    let response = post(server, &mock_credentials(), model, request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes(usize::MAX).await.expect("a body");
    if status == 200 {
        response::decode(&body, request)
    } else {
        Err(error::decode(status, &headers, &body))
    }
}

/// The events of a streamed call, fed to the decoder chunk by chunk as they arrive.
async fn converse_stream(
    server: &MockServer,
    model: &str,
    request: &ChatRequest,
) -> (Vec<StreamEvent>, Result<(), ApiError>) {
    let mut response = post(server, &mock_credentials(), model, request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        super::EVENT_STREAM_CONTENT_TYPE
    );
    let mut decoder = stream::Decoder::new(request);
    let mut events = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        if let Err(error) = decoder.push(&chunk, &mut events) {
            return (events, Err(error));
        }
    }
    let result = decoder.finish(&mut events);
    (events, result)
}

async fn start() -> MockServer {
    MockServer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("binds")
}

fn chat(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "radio".into(),
        messages,
        ..ChatRequest::default()
    }
}

fn top_song() -> Tool {
    Tool {
        name: "top_song".into(),
        description: Some("Get the most popular song played on a radio station.".into()),
        parameters: json!({
            "type": "object",
            "properties": {"sign": {"type": "string"}},
            "required": ["sign"]
        }),
        strict: None,
        cache_control: None,
    }
}

#[tokio::test]
async fn a_tool_loop_round_trips() {
    let server = start().await;
    let mut request = chat(vec![
        Message::text_message(Role::System, "Be brief."),
        Message::text_message(Role::User, "What is the most popular song on WZPZ?"),
    ]);
    request.tools = vec![top_song()];
    let model = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/echo";
    let answer = converse(&server, model, &request).await.expect("answers");
    let choice = &answer.choices[0];
    assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
    let call = choice.tool_calls[0].clone();
    assert_eq!(call.name, "top_song");
    assert_eq!(call.arguments, r#"{"sign":"mock"}"#);

    request.messages.push(Message {
        tool_calls: vec![call.clone()],
        ..Message::text_message(Role::Assistant, "")
    });
    request.messages.push(Message {
        tool_call_id: Some(call.id),
        ..Message::text_message(Role::Tool, r#"{"song": "Elemental Hotel"}"#)
    });
    let answer = converse(&server, model, &request).await.expect("answers");
    assert_eq!(
        answer.choices[0].text().as_deref(),
        Some(r#"tool result: {"song":"Elemental Hotel"}"#)
    );
    assert_eq!(answer.choices[0].finish_reason, FinishReason::Stop);
    assert!(answer.usage.prompt_tokens > 0);
}

#[tokio::test]
async fn a_stream_round_trips() {
    let server = start().await;
    let request = ChatRequest {
        stream: true,
        ..chat(vec![Message::text_message(Role::User, "hello there")])
    };
    let (events, result) = converse_stream(&server, "echo;cached_tokens=2", &request).await;
    result.expect("complete");
    assert!(matches!(events[0], StreamEvent::Start { .. }));
    assert_eq!(
        events[1..],
        [
            StreamEvent::Delta {
                choice: 0,
                delta: Delta::Text("hello".into())
            },
            StreamEvent::Delta {
                choice: 0,
                delta: Delta::Text(" there".into())
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop,
                stop_sequence: None
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 5,
                completion_tokens: 2,
                cache_read_tokens: 2,
                ..Usage::default()
            }),
        ]
    );
}

#[tokio::test]
async fn faults_become_api_errors() {
    let server = start().await;
    let request = chat(vec![Message::text_message(Role::User, "hi")]);
    let error = converse(&server, "echo;fail=429,retry_after=3", &request)
        .await
        .expect_err("throttled");
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.code.as_deref(), Some("ThrottlingException"));
    assert_eq!(error.retry_after, Some(Duration::from_secs(3)));

    let wrong = Credentials {
        secret_access_key: SecretString::from("not-the-secret"),
        ..mock_credentials()
    };
    let response = post(&server, &wrong, "echo", &request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let error = error::decode(
        status,
        &headers,
        &response.bytes(usize::MAX).await.expect("a body"),
    );
    assert_eq!(error.kind, ErrorKind::Authentication);
    assert_eq!(error.code.as_deref(), Some("InvalidSignatureException"));

    let request = ChatRequest {
        stream: true,
        ..chat(vec![Message::text_message(Role::User, "one two three")])
    };
    let (events, result) = converse_stream(
        &server,
        "echo;fail=stream_exception:throttlingException,cut_after=1",
        &request,
    )
    .await;
    let error = result.expect_err("an exception frame");
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.code.as_deref(), Some("ThrottlingException"));
    assert_eq!(events.len(), 2, "{events:?}");

    let (_, result) = converse_stream(&server, "echo;fail=cut,cut_after=1", &request).await;
    let error = result.expect_err("cut");
    assert_eq!(error.code.as_deref(), Some("upstream_stream_cut"));
}
