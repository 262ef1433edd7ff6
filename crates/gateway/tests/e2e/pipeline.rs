//! The pipeline's shape, through hooks a test registers: a stage answering early, taps that
//! read, hold back, rewrite and end streams (translated, and from an upstream of the client's
//! dialect), the one place every request ends, and the client's body forwarded as written.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_gateway::pipeline::hooks::HookFuture;
use switchyard_gateway::pipeline::{Answer, Ctx, End, Events, Flow, Hook, Step, Tap, Whole};
use switchyard_types::{
    ApiError, ChatResponse, Choice, ContentPart, Delta, ErrorKind, FinishReason, Origin,
    StreamEvent, Usage,
};

use crate::support::{Setup, openai_stream_text, parse_sse, sse_events, start_with};

const MODELS: &str = r#"
models:
  - name: gpt
    deployments:
      - provider: openai_compatible
        model: "echo?chunk_delay_ms=1"
        api_base: "{MOCK}"
        api_key: test-key
  - name: claude
    deployments:
      - provider: anthropic
        model: "echo?chunk_delay_ms=1"
        api_base: "{MOCK}"
        api_key: test-key
  - name: broken
    retries: 0
    deployments:
      - provider: openai_compatible
        model: "echo?fail=500"
        api_base: "{MOCK}"
        api_key: test-key
  - name: slow-stream
    deployments:
      - provider: openai_compatible
        model: "echo?tokens=200&chunk_delay_ms=50"
        api_base: "{MOCK}"
        api_key: test-key
  - name: slow
    deployments:
      - provider: openai_compatible
        model: "echo?latency_ms=4000"
        api_base: "{MOCK}"
        api_key: test-key
  - name: gpt-request-echo
    deployments:
      - provider: openai_compatible
        model: "echo?echo=request"
        api_base: "{MOCK}"
        api_key: test-key
  - name: claude-request-echo
    deployments:
      - provider: anthropic
        model: "echo?echo=request"
        api_base: "{MOCK}"
        api_key: test-key
"#;

/// Records every request's end, by request id.
#[derive(Debug, Default)]
struct Ends(Mutex<Vec<(String, &'static str)>>);

impl Ends {
    fn of(&self, request_id: &str) -> Vec<&'static str> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(id, _)| id == request_id)
            .map(|(_, end)| *end)
            .collect()
    }

    /// The ends of `request_id` once there is one (or after five seconds).
    async fn wait(&self, request_id: &str) -> Vec<&'static str> {
        for _ in 0..500 {
            if !self.of(request_id).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Long enough for a second end to show up, if there were one.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.of(request_id)
    }
}

impl Hook for Ends {
    fn finished(&self, ctx: &Ctx, end: &End) {
        let end = match end {
            End::Complete => "complete",
            End::Failed(_) => "failed",
            End::Disconnected => "disconnected",
        };
        self.0
            .lock()
            .expect("lock")
            .push((ctx.request_id.clone(), end));
    }
}

/// Answers `canned` itself, refuses `refuse` with a 429, rewrites `rewrite-me`, and taps
/// streams whose prompt starts with `tap:<kind>`.
#[derive(Debug, Default)]
struct TestHook {
    /// Text deltas and their characters that the `read` tap saw.
    seen: Arc<Mutex<(usize, usize)>>,
}

impl Hook for TestHook {
    fn before_model<'a>(&'a self, ctx: &'a mut Ctx) -> HookFuture<'a> {
        Box::pin(async move {
            let Some(request) = ctx.chat() else {
                return Ok(Flow::Continue);
            };
            let prompt = request.last_user_text().unwrap_or_default();
            if prompt == "canned" {
                return Ok(Flow::Respond(Box::new(canned(request.stream))));
            }
            if prompt == "refuse" {
                let mut error =
                    ApiError::new(ErrorKind::RateLimited, Origin::Client, "Refused by a hook");
                error.retry_after = Some(Duration::from_secs(3));
                return Err(error);
            }
            if prompt == "rewrite-me"
                && let Some(request) = ctx.chat_mut()
                && let Some(message) = request.messages.last_mut()
            {
                message.content = vec![ContentPart::text("rewritten")];
            }
            Ok(Flow::Continue)
        })
    }

    fn tap(&self, ctx: &Ctx) -> Option<Box<dyn Tap>> {
        let prompt = ctx.chat()?.last_user_text()?;
        let kind = prompt.strip_prefix("tap:")?.split(' ').next()?;
        Some(match kind {
            "read" => Box::new(Read(Arc::clone(&self.seen))),
            "upper" => Box::new(Upper),
            "hold" => Box::new(Hold::default()),
            "stop" => Box::new(StopAt("secret")),
            _ => return None,
        })
    }
}

fn canned(stream: bool) -> Answer {
    if stream {
        return Answer::Stream(Box::new(Events::Replay(
            vec![
                StreamEvent::Start {
                    id: "canned-1".into(),
                    model: "canned-model".into(),
                    created: 1,
                    system_fingerprint: None,
                },
                StreamEvent::Delta {
                    choice: 0,
                    delta: Delta::Text("from the hook".into()),
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::Stop,
                    stop_sequence: None,
                },
            ]
            .into_iter(),
        )));
    }
    let mut choice = Choice::new(0);
    choice.content = vec![ContentPart::text("from the hook")];
    Answer::Whole(Whole::Chat(ChatResponse {
        id: "canned-1".into(),
        model: "canned-model".into(),
        created: 1,
        choices: vec![choice],
        usage: Usage::default(),
        ..ChatResponse::default()
    }))
}

/// Reads: counts text deltas and their characters, passes everything.
struct Read(Arc<Mutex<(usize, usize)>>);

impl Tap for Read {
    fn event(&mut self, _: &mut Ctx, event: StreamEvent, out: &mut Vec<StreamEvent>) -> Step {
        if let StreamEvent::Delta {
            delta: Delta::Text(text),
            ..
        } = &event
        {
            let mut seen = self.0.lock().expect("lock");
            seen.0 += 1;
            seen.1 += text.chars().count();
        }
        out.push(event);
        Step::Continue
    }
}

/// Rewrites: text in capitals.
struct Upper;

impl Tap for Upper {
    fn event(&mut self, _: &mut Ctx, event: StreamEvent, out: &mut Vec<StreamEvent>) -> Step {
        out.push(match event {
            StreamEvent::Delta {
                choice,
                delta: Delta::Text(text),
            } => StreamEvent::Delta {
                choice,
                delta: Delta::Text(text.to_uppercase()),
            },
            other => other,
        });
        Step::Continue
    }
}

/// Holds back: all text until the upstream ends, then one delta.
#[derive(Default)]
struct Hold {
    text: String,
    finish: Vec<StreamEvent>,
}

impl Tap for Hold {
    fn event(&mut self, _: &mut Ctx, event: StreamEvent, out: &mut Vec<StreamEvent>) -> Step {
        match event {
            StreamEvent::Delta {
                delta: Delta::Text(text),
                ..
            } => self.text.push_str(&text),
            finish @ StreamEvent::Finish { .. } => self.finish.push(finish),
            other => out.push(other),
        }
        Step::Continue
    }

    fn end(&mut self, _: &mut Ctx, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Delta {
            choice: 0,
            delta: Delta::Text(std::mem::take(&mut self.text)),
        });
        out.append(&mut self.finish);
    }
}

/// Ends the stream at the first text delta containing a word, which it keeps back.
struct StopAt(&'static str);

impl Tap for StopAt {
    fn event(&mut self, _: &mut Ctx, event: StreamEvent, out: &mut Vec<StreamEvent>) -> Step {
        if let StreamEvent::Delta {
            delta: Delta::Text(text),
            ..
        } = &event
            && text.contains(self.0)
        {
            return Step::Stop;
        }
        out.push(event);
        Step::Continue
    }
}

async fn setup() -> (Setup, Arc<Ends>, Arc<TestHook>) {
    let ends = Arc::new(Ends::default());
    let hook = Arc::new(TestHook::default());
    let hooks: Vec<Arc<dyn Hook>> = vec![
        Arc::clone(&hook) as Arc<dyn Hook>,
        Arc::clone(&ends) as Arc<dyn Hook>,
    ];
    (start_with(MODELS, hooks).await, ends, hook)
}

fn chat(model: &str, prompt: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 200, "messages": [{"role": "user", "content": prompt}]})
}

/// An OpenAI client's stream: its text and each choice's finish reason.
async fn openai_stream(setup: &Setup, model: &str, prompt: &str) -> (String, Vec<Value>, usize) {
    let response = setup.openai(&chat(model, prompt, true)).await;
    assert_eq!(response.status(), 200, "{model}");
    let events = sse_events(response).await;
    assert_eq!(
        events.last().map(|(_, data)| data.as_str()),
        Some("[DONE]"),
        "{model}: the stream did not end with [DONE]: {events:?}"
    );
    let finishes = events
        .iter()
        .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
        .map(|chunk| chunk["choices"][0]["finish_reason"].clone())
        .filter(|reason| !reason.is_null())
        .collect();
    let text_chunks = events
        .iter()
        .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
        .filter(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|text| !text.is_empty())
        })
        .count();
    (openai_stream_text(&events), finishes, text_chunks)
}

#[tokio::test]
async fn a_hook_answers_early_and_no_upstream_is_called() {
    let (setup, ends, _) = setup().await;
    let response = setup.openai(&chat("gpt", "canned", false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "from the hook");
    let (text, finishes, _) = openai_stream(&setup, "gpt", "canned").await;
    assert_eq!(text, "from the hook");
    assert_eq!(finishes, vec![json!("stop")]);
    // An Anthropic client gets the same replay in its own event sequence.
    let events = sse_events(setup.anthropic(&chat("claude", "canned", true)).await).await;
    let names: Vec<_> = events.iter().filter_map(|(name, _)| name.clone()).collect();
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    assert_eq!(setup.mock.stats().requests, 0, "the upstream was called");
    // A refusal is an error in the client's shape, with its status.
    let response = setup.anthropic(&chat("claude", "refuse", false)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["message"], "Refused by a hook");
    drop(ends);
}

#[tokio::test]
async fn taps_read_rewrite_hold_back_and_end_streams_on_both_paths() {
    let (setup, _, hook) = setup().await;
    // `gpt` speaks the client's dialect (relayed without a tap), `claude` is translated.
    for model in ["gpt", "claude"] {
        let prompt = "tap:read one two three";
        *hook.seen.lock().expect("lock") = (0, 0);
        let (text, finishes, _) = openai_stream(&setup, model, prompt).await;
        assert_eq!(text, prompt, "{model}");
        assert_eq!(finishes, vec![json!("stop")], "{model}");
        let (deltas, chars) = *hook.seen.lock().expect("lock");
        assert!(deltas >= 3, "{model}: the tap saw {deltas} deltas");
        assert_eq!(chars, prompt.chars().count(), "{model}");

        let (text, _, _) = openai_stream(&setup, model, "tap:upper make it loud").await;
        assert_eq!(text, "TAP:UPPER MAKE IT LOUD", "{model}");

        let (text, finishes, chunks) = openai_stream(&setup, model, "tap:hold a b c d").await;
        assert_eq!(text, "tap:hold a b c d", "{model}");
        assert_eq!(chunks, 1, "{model}: held text came out in {chunks} chunks");
        assert_eq!(finishes, vec![json!("stop")], "{model}");

        let (text, finishes, _) =
            openai_stream(&setup, model, "tap:stop public secret never shown").await;
        assert_eq!(text, "tap:stop public", "{model}");
        assert_eq!(finishes, vec![json!("content_filter")], "{model}");
    }
    // An Anthropic client's stream ends as Anthropic's do: the open block closed, a refusal
    // stop reason, `message_stop`.
    for model in ["claude", "gpt"] {
        let response = setup
            .anthropic(&chat(model, "tap:stop public secret never shown", true))
            .await;
        let events = sse_events(response).await;
        let names: Vec<&str> = events.iter().filter_map(|(n, _)| n.as_deref()).collect();
        assert_eq!(
            &names[names.len() - 3..],
            ["content_block_stop", "message_delta", "message_stop"],
            "{model}: {names:?}"
        );
        let delta: Value =
            serde_json::from_str(&events[events.len() - 2].1).expect("message_delta");
        assert_eq!(delta["delta"]["stop_reason"], "refusal", "{model}");
        let text: String = events
            .iter()
            .filter(|(name, _)| name.as_deref() == Some("content_block_delta"))
            .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
            .filter_map(|event| event["delta"]["text"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(text, "tap:stop public", "{model}");
    }
}

#[tokio::test]
async fn every_request_ends_exactly_once() {
    let (setup, ends, _) = setup().await;
    let send = |id: &'static str, model: &'static str, stream: bool| {
        setup
            .client
            .post(setup.url("/v1/chat/completions"))
            .header("x-request-id", id)
            .json(&chat(model, "hello there", stream))
            .send()
    };
    // Completion, whole and streamed, relayed and translated.
    for (id, model, stream) in [
        ("end-whole", "gpt", false),
        ("end-whole-translated", "claude", false),
        ("end-stream", "gpt", true),
        ("end-stream-translated", "claude", true),
    ] {
        let response = send(id, model, stream).await.expect("sent");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("body");
        assert_eq!(ends.wait(id).await, ["complete"], "{id}");
    }
    // Errors: before routing, and from the upstream.
    for (id, model) in [("end-404", "no-such-model"), ("end-500", "broken")] {
        let response = send(id, model, false).await.expect("sent");
        assert!(response.status().is_client_error() || response.status().is_server_error());
        assert_eq!(ends.wait(id).await, ["failed"], "{id}");
    }
    // A client that leaves mid-stream.
    let mut response = send("end-left-stream", "slow-stream", true)
        .await
        .expect("sent");
    assert!(response.chunk().await.expect("first chunk").is_some());
    drop(response);
    assert_eq!(ends.wait("end-left-stream").await, ["disconnected"]);
    // A client that leaves a whole call while the upstream is still working: well before the
    // upstream's four seconds are up.
    let started = std::time::Instant::now();
    let left = tokio::time::timeout(
        Duration::from_millis(300),
        send("end-left-whole", "slow", false),
    )
    .await;
    assert!(left.is_err(), "the slow call answered early");
    assert_eq!(ends.wait("end-left-whole").await, ["disconnected"]);
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// The upstream's view of the body, as the `echo=request` mock writes it back (its compact
/// JSON: the whitespace outside strings removed, every other byte kept).
async fn echoed(response: reqwest::Response, anthropic: bool) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let text = if anthropic {
        // After a web search's blocks, when the request offered the server tool.
        body["content"]
            .as_array()
            .and_then(|blocks| blocks.iter().find(|block| block["type"] == "text"))
            .map_or(&Value::Null, |block| &block["text"])
    } else {
        &body["choices"][0]["message"]["content"]
    };
    text.as_str().expect("text").to_owned()
}

async fn post_raw(setup: &Setup, path: &str, body: &str) -> reqwest::Response {
    setup
        .client
        .post(setup.url(path))
        .header("content-type", "application/json")
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .body(body.to_owned())
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn a_same_dialect_body_reaches_the_upstream_as_the_client_wrote_it() {
    let (setup, _, _) = setup().await;
    // Fields the gateway does not know, nested in messages and at the top, with number
    // spellings and escapes that a decode and re-encode would normalise; and block types the
    // gateway does not model, in both dialects.
    let openai = [
        r#"{"model":"gpt-request-echo","messages":[{"role":"user","content":"hi","x_note":{"n":1.0e2,"s":"\u00e9\/"}}],"temperature":0.50,"x_vendor":{"deep":[1.50,{"k":-0E0}]}}"#,
        r#"{"model":"gpt-request-echo","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"input_audio","input_audio":{"data":"AAA=","format":"wav"}}]}]}"#,
    ];
    let anthropic = [
        r#"{"model":"claude-request-echo","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"hi","x_hint":{"n":2.50E1}}]}],"metadata":{"user_id":"u\u0031"}}"#,
        r#"{"model":"claude-request-echo","max_tokens":100,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"a\nb"},"citations":{"enabled":true}},{"type":"text","text":"sum up"}]}]}"#,
        r#"{"model":"claude-request-echo","max_tokens":100,"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3,"allowed_domains":["example.com"]}],"messages":[{"role":"user","content":"search the web"}]}"#,
        r#"{"model":"claude-request-echo","max_tokens":100,"messages":[{"role":"user","content":"find it"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"search","input":{"q":"x"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"search_result","source":"https://example.com","title":"X","content":[{"type":"text","text":"found"}]}]}]}]}"#,
        // An image from the Files API.
        r#"{"model":"claude-request-echo","max_tokens":100,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"file_011CNha8iCJcU1wXNR6q4V8w"}},{"type":"text","text":"describe it"}]}]}"#,
    ];
    let cases = openai
        .iter()
        .map(|body| ("/v1/chat/completions", *body, "gpt-request-echo", false))
        .chain(
            anthropic
                .iter()
                .map(|body| ("/v1/messages", *body, "claude-request-echo", true)),
        );
    for (path, body, model, is_anthropic) in cases {
        let seen = echoed(post_raw(&setup, path, body).await, is_anthropic).await;
        assert_eq!(seen, body.replace(model, "echo?echo=request"));
    }
    // Such a block cannot be translated for another dialect: a clear 400, no upstream call.
    let calls = setup.mock.stats().requests;
    for (body, kind) in [
        (anthropic[1], "`document`"),
        (anthropic[2], "`web_search_20250305`"),
        (anthropic[4], "`image:file`"),
    ] {
        let to_openai = body.replace("claude-request-echo", "gpt");
        let response = post_raw(&setup, "/v1/messages", &to_openai).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.expect("json");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains(kind)),
            "{body}"
        );
    }
    assert_eq!(setup.mock.stats().requests, calls);
    // A stream: usage asked for, the rest as written.
    let streamed = r#"{"model":"gpt-request-echo","stream":true,"messages":[{"role":"user","content":"hi"}],"x_vendor":1.0e2}"#;
    let response = post_raw(&setup, "/v1/chat/completions", streamed).await;
    let text = response.text().await.expect("body");
    let seen = openai_stream_text(&parse_sse(&text));
    assert_eq!(
        seen,
        r#"{"model":"echo?echo=request","stream":true,"messages":[{"role":"user","content":"hi"}],"x_vendor":1.0e2,"stream_options":{"include_usage":true}}"#
    );
}

#[tokio::test]
async fn a_changed_request_is_encoded_from_the_canonical_model() {
    let (setup, _, _) = setup().await;
    let body = r#"{"model":"gpt-request-echo","messages":[{"role":"user","content":"rewrite-me"}],"x_vendor":1.0e2}"#;
    let seen = echoed(post_raw(&setup, "/v1/chat/completions", body).await, false).await;
    let seen: Value = serde_json::from_str(&seen).expect("json");
    assert_eq!(seen["messages"][0]["content"], "rewritten");
    assert_eq!(seen["x_vendor"], json!(100.0));
}
