//! `/metrics`: what a call leaves in the Prometheus metrics, and label sets that stay bounded
//! whatever clients send.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::{MASTER, start, start_keys};

const MODELS: &str = r#"
models:
  - name: gpt
    deployments:
      - provider: openai_compatible
        model: "echo?tokens=7"
        api_base: "{MOCK}"
        api_key: test-key
        price: {input: 1, output: 2}
  - name: claude
    deployments:
      - provider: anthropic
        model: "echo?tokens=5"
        api_base: "{MOCK}"
        api_key: test-key
"#;

/// The value of the sample `name{labels}` (labels as written, in order), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

#[tokio::test]
async fn calls_are_counted_timed_and_priced_by_model_group() {
    let setup = start(MODELS).await;
    for stream in [false, true, false] {
        let response = setup
            .openai(&json!({"model": "gpt", "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await;
    }
    let response = setup
        .anthropic(&json!({"model": "claude", "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;
    assert_eq!(
        setup
            .openai(&json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}))
            .await
            .status(),
        404
    );
    // A streamed call ends when its body is read out; give its end a moment.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let response = setup.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/openmetrics-text")),
    );
    let text = response.text().await.expect("text");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let requests = |labels: &str| sample(&text, &format!("switchyard_requests_total{{{labels}}}"));
    assert_eq!(
        requests(r#"model="gpt",kind="chat",stream="false",status="200""#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        requests(r#"model="gpt",kind="chat",stream="true",status="200""#),
        Some(1.0)
    );
    assert_eq!(
        requests(r#"model="claude",kind="chat",stream="false",status="200""#),
        Some(1.0)
    );
    assert_eq!(
        requests(r#"model="unknown",kind="chat",stream="false",status="404""#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"switchyard_tokens_total{model="gpt",team="",type="completion"}"#
        ),
        Some(21.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"switchyard_request_duration_seconds_count{model="gpt"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"switchyard_time_to_first_token_seconds_count{model="gpt"}"#
        ),
        Some(1.0)
    );
    assert!(sample(&text, "switchyard_overhead_seconds_count").is_some_and(|n| n == 4.0));
    assert_eq!(sample(&text, "switchyard_requests_in_flight"), Some(0.0));
    assert!(
        sample(&text, r#"switchyard_cost_usd_total{model="gpt",team=""}"#)
            .is_some_and(|usd| usd > 0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_provider_name="anthropic",gen_ai_request_model="claude",gen_ai_token_type="output"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"gen_ai_server_request_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"switchyard_deployment_available{model="gpt",deployment="openai_compatible/echo?tokens=7"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn thousands_of_made_up_model_names_grow_no_label_set() {
    let setup = start(MODELS).await;
    let before = setup
        .get("/metrics")
        .await
        .text()
        .await
        .expect("text")
        .lines()
        .count();
    for n in 0..2000 {
        let response = setup
            .openai(&json!({"model": format!("made-up-{n}"), "messages": [{"role": "user", "content": "x"}]}))
            .await;
        assert_eq!(response.status(), 404);
    }
    let text = setup.get("/metrics").await.text().await.expect("text");
    assert!(
        !text.contains("made-up"),
        "client text never becomes a label"
    );
    assert_eq!(
        sample(
            &text,
            r#"switchyard_requests_total{model="unknown",kind="chat",stream="false",status="404"}"#
        ),
        Some(2000.0)
    );
    // A handful of new series (the unknown model's request and error counters), not 2,000.
    let after = text.lines().count();
    assert!(after < before + 20, "{before} lines before, {after} after");
}

#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let setup = start_keys(MODELS).await;
    let (status, key) = setup
        .admin(
            MASTER,
            Method::POST,
            "/admin/keys",
            &json!({"limits": {"rpm": 1, "budget": {"max_usd": "0"}}}),
        )
        .await;
    assert_eq!(status, 201);
    let secret = key["key"].as_str().expect("secret");
    let call = |key: String| {
        let client = setup.client.clone();
        let url = setup.url("/v1/chat/completions");
        async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    };
    assert_eq!(call(secret.to_owned()).await, 402);
    assert_eq!(call(secret.to_owned()).await, 429);
    assert_eq!(call("sy-wrong".to_owned()).await, 401);
    let text = setup.get("/metrics").await.text().await.expect("text");
    for reason in ["budget", "rate_limit", "auth"] {
        assert_eq!(
            sample(
                &text,
                &format!("switchyard_rejections_total{{reason=\"{reason}\"}}")
            ),
            Some(1.0),
            "{reason}: {text}"
        );
    }
}
