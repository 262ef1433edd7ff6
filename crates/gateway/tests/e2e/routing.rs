//! Routing and resilience against the mock's faults: failover, cooldowns and probes, retries
//! before a stream's first byte, fallbacks, latency-aware spreading.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_mock::MockServer;

use super::support::{self, sse_events};

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_failing_deployment_is_taken_out_then_probed_back() {
    // The third deployment points at a port where nothing listens yet.
    let spare = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let spare_addr = spare.local_addr().expect("addr");
    drop(spare);
    let setup = support::start(&format!(
        r#"
routing:
  cooldown_failures: 1
  cooldown_secs: 0.4
  retry_backoff_ms: 0
models:
  - name: trio
    deployments:
      - provider: openai_compatible
        model: "echo?d=a"
        api_base: "{{MOCK}}"
        api_key: k
      - provider: openai_compatible
        model: "echo?d=b"
        api_base: "{{MOCK}}"
        api_key: k
      - provider: openai_compatible
        model: "echo?d=c"
        api_base: "http://{spare_addr}/v1"
        api_key: k
"#
    ))
    .await;
    let mut extra_attempts = Vec::new();
    for _ in 0..20 {
        let response = setup
            .openai(&json!({"model": "trio", "messages": user("hi")}))
            .await;
        assert_eq!(response.status(), 200, "no client sees an error");
        extra_attempts.push(
            header(&response, "x-switchyard-attempts")
                .parse::<u32>()
                .expect("n")
                - 1,
        );
    }
    // One failure takes it out (cooldown_failures: 1): it gets exactly one call of the 20
    // (it is picked a third of the time, so missing it twenty times has odds of 1 in 3,000).
    let failed_calls: u32 = extra_attempts.iter().sum();
    assert_eq!(
        failed_calls, 1,
        "calls to the broken deployment: {extra_attempts:?}"
    );

    // The deployment comes back; after the cooldown a probe finds it and it serves again.
    let revived = MockServer::start(spare_addr)
        .await
        .expect("mock on the spare port");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut served_by_c = 0;
    for _ in 0..30 {
        let response = setup
            .openai(&json!({"model": "trio", "messages": user("hi")}))
            .await;
        assert_eq!(response.status(), 200);
        if header(&response, "x-switchyard-deployment").ends_with("d=c") {
            served_by_c += 1;
        }
    }
    assert!(served_by_c > 0, "the revived deployment never served");
    assert!(revived.stats().requests > 0);
}

#[tokio::test]
async fn a_stream_failing_before_its_first_byte_is_retried_elsewhere() {
    let setup = support::start(
        r#"
routing:
  retry_backoff_ms: 0
models:
  - name: pair
    strategy: cost
    deployments:
      - provider: openai_compatible
        model: "echo?fail=503"
        api_base: "{MOCK}"
        api_key: k
      - provider: anthropic
        model: "echo"
        api_base: "{MOCK}"
        api_key: k
        input_cost_per_mtok: 5
"#,
    )
    .await;
    // The cost strategy sends the first attempt to the free, failing deployment.
    let response = setup
        .openai(&json!({"model": "pair", "messages": user("one two three"), "stream": true}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-switchyard-attempts"), "2");
    assert_eq!(
        header(&response, "x-switchyard-deployment"),
        "anthropic/echo"
    );
    let events = sse_events(response).await;
    assert_eq!(support::openai_stream_text(&events), "one two three");
}

#[tokio::test]
async fn a_stream_cut_after_it_started_is_not_retried() {
    let setup = support::start(
        r#"
models:
  - name: cutter
    deployments:
      - provider: openai_compatible
        model: "echo?fail=cut&cut_after=2&chunk_delay_ms=5"
        api_base: "{MOCK}"
        api_key: k
"#,
    )
    .await;
    let response = setup
        .openai(&json!({"model": "cutter", "messages": user("a b c d e f"), "stream": true}))
        .await;
    assert_eq!(header(&response, "x-switchyard-attempts"), "1");
    let events = sse_events(response).await;
    let last: Value = serde_json::from_str(&events.last().expect("events").1).expect("json");
    assert!(last["error"].is_object(), "{events:?}");
    assert_eq!(setup.mock.stats().requests, 1, "no second upstream call");
}

#[tokio::test]
async fn a_rate_limited_deployment_hands_over_to_another() {
    let setup = support::start(
        r#"
models:
  - name: limited
    strategy: cost
    deployments:
      - provider: openai_compatible
        model: "echo?fail=429&retry_after=30"
        api_base: "{MOCK}"
        api_key: k
      - provider: openai_compatible
        model: "echo"
        api_base: "{MOCK}"
        api_key: k
        output_cost_per_mtok: 1
"#,
    )
    .await;
    let response = setup
        .openai(&json!({"model": "limited", "messages": user("hi")}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-switchyard-attempts"), "2");
    // The limited one now cools down: the next call goes straight to the other.
    let response = setup
        .openai(&json!({"model": "limited", "messages": user("hi")}))
        .await;
    assert_eq!(header(&response, "x-switchyard-attempts"), "1");
}

#[tokio::test]
async fn a_group_whose_deployments_all_cool_down_says_so() {
    let setup = support::start(
        r#"
routing:
  cooldown_failures: 1
  cooldown_secs: 30
models:
  - name: broken
    retries: 0
    deployments:
      - provider: openai_compatible
        model: "echo?fail=500"
        api_base: "{MOCK}"
        api_key: k
"#,
    )
    .await;
    let first = setup
        .openai(&json!({"model": "broken", "messages": user("hi")}))
        .await;
    assert_eq!(first.status(), 500);
    let second = setup
        .openai(&json!({"model": "broken", "messages": user("hi")}))
        .await;
    assert_eq!(second.status(), 503);
    let retry_after: u64 = header(&second, "retry-after").parse().expect("retry-after");
    assert!((29..=30).contains(&retry_after), "{retry_after}");
    let body: Value = second.json().await.expect("json");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("cooling down"), "{message}");
    assert_eq!(body["error"]["code"], "deployments_cooling_down");
    assert_eq!(setup.mock.stats().requests, 1, "no call while cooling");
}

#[tokio::test]
async fn fallbacks_serve_when_a_group_fails_unless_the_caller_says_no() {
    let setup = support::start(
        r#"
models:
  - name: primary
    retries: 1
    fallbacks: [backup]
    deployments:
      - provider: openai_compatible
        model: "echo?fail=503"
        api_base: "{MOCK}"
        api_key: k
  - name: backup
    deployments:
      - provider: anthropic
        model: "echo"
        api_base: "{MOCK}"
        api_key: k
"#,
    )
    .await;
    let response = setup
        .openai(&json!({"model": "primary", "messages": user("fall back")}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-switchyard-fallback"), "backup");
    assert_eq!(header(&response, "x-switchyard-attempts"), "3");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "fall back");

    let response = setup
        .openai_with(
            ("x-switchyard-fallbacks", "off"),
            &json!({"model": "primary", "messages": user("no")}),
        )
        .await;
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn a_caller_timeout_bounds_every_attempt() {
    let setup = support::start(
        r#"
models:
  - name: slow
    deployments:
      - provider: openai_compatible
        model: "echo?latency_ms=2000"
        api_base: "{MOCK}"
        api_key: k
"#,
    )
    .await;
    let started = std::time::Instant::now();
    let response = setup
        .openai_with(
            ("x-switchyard-timeout", "0.3"),
            &json!({"model": "slow", "messages": user("x")}),
        )
        .await;
    assert_eq!(response.status(), 504);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let response = setup
        .openai_with(
            ("x-switchyard-timeout", "soon"),
            &json!({"model": "slow", "messages": user("x")}),
        )
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn latency_aware_routing_prefers_the_faster_deployment() {
    let setup = support::start(
        r#"
models:
  - name: racers
    strategy: latency
    deployments:
      - provider: openai_compatible
        model: "echo?latency_ms=10"
        api_base: "{MOCK}"
        api_key: k
      - provider: openai_compatible
        model: "echo?latency_ms=50"
        api_base: "{MOCK}"
        api_key: k
"#,
    )
    .await;
    let setup = std::sync::Arc::new(setup);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let setup = std::sync::Arc::clone(&setup);
        tasks.push(tokio::spawn(async move {
            let mut fast = 0;
            for _ in 0..25 {
                let response = setup
                    .openai(&json!({"model": "racers", "messages": user("x")}))
                    .await;
                if header(&response, "x-switchyard-deployment").ends_with("latency_ms=10") {
                    fast += 1;
                }
            }
            fast
        }));
    }
    let mut fast = 0;
    for task in tasks {
        fast += task.await.expect("joined");
    }
    assert!(fast >= 160, "{fast} of 200 went to the faster deployment");
}

/// A gateway in front of `mock` with `yaml`, whose deployment health lives in `shared`.
async fn gateway_with(
    mock: &MockServer,
    yaml: &str,
    shared: std::sync::Arc<switchyard_gateway::Shared>,
) -> switchyard_gateway::Gateway {
    let text = yaml.replace("{MOCK}", &format!("{}/v1", mock.base_url()));
    let config = switchyard_gateway::config::validate(
        &text,
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("valid config");
    let runtime = switchyard_gateway::Runtime::build(&config, &shared)
        .await
        .expect("runtime");
    switchyard_gateway::Gateway::start(runtime, shared)
        .await
        .expect("gateway")
}

#[tokio::test]
async fn two_instances_sharing_redis_honour_each_others_cooldowns() {
    let Ok(url) = std::env::var("SWITCHYARD_TEST_REDIS_URL") else {
        eprintln!("skipped: SWITCHYARD_TEST_REDIS_URL is not set (CI sets it)");
        return;
    };
    let prefix = format!(
        "switchyard-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let yaml = format!(
        r#"
routing:
  cooldown_failures: 1
  cooldown_secs: 30
redis:
  url: "{url}"
  prefix: "{prefix}"
models:
  - name: shared
    retries: 0
    deployments:
      - provider: openai_compatible
        model: "echo?fail=500"
        api_base: "{{MOCK}}"
        api_key: k
"#
    );
    let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock");
    let registry = || async {
        let shared = crate::support::shared(Vec::new());
        shared
            .connect_redis(&url, &prefix)
            .await
            .expect("redis answers");
        shared
    };
    let (shared_a, shared_b) = (registry().await, registry().await);
    let a = gateway_with(&mock, &yaml, std::sync::Arc::clone(&shared_a)).await;
    let b = gateway_with(&mock, &yaml, std::sync::Arc::clone(&shared_b)).await;
    let client = crate::support::test_client(Duration::from_secs(5));
    let ask = |base: String| {
        let client = client.clone();
        async move {
            client
                .post(format!("{base}/v1/chat/completions"))
                .json(&json!({"model": "shared", "messages": user("x")}))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        ask(a.base_url()).await,
        500,
        "A calls the upstream and opens the cooldown"
    );
    // Wait until A has shared it (the key is written just before it is published).
    let mut redis = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    for _ in 0..100 {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:cooldown:*"))
            .query_async(&mut redis)
            .await
            .expect("keys");
        if !keys.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut honoured = false;
    for _ in 0..100 {
        if ask(b.base_url()).await == 503 {
            honoured = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(honoured, "B never learned of A's cooldown");
    assert_eq!(
        mock.stats().requests,
        1,
        "B did not call the cooling upstream"
    );

    // An instance that starts later finds the cooldown still running.
    let registry_c = registry().await;
    let c = gateway_with(&mock, &yaml, registry_c).await;
    assert_eq!(ask(c.base_url()).await, 503);
    assert_eq!(mock.stats().requests, 1);
}

#[tokio::test]
async fn rate_limit_headers_lower_a_deployments_share_before_it_hits_the_limit() {
    let setup = support::start(
        r#"
models:
  - name: pair
    deployments:
      - provider: openai_compatible
        model: "echo"
        api_base: "{MOCK}"
        api_key: k
      - provider: openai_compatible
        model: "echo?ratelimit_remaining=1"
        api_base: "{MOCK}"
        api_key: k
"#,
    )
    .await;
    let mut tight = 0;
    for request in 0..300 {
        let response = setup
            .openai(&json!({"model": "pair", "messages": user("x")}))
            .await;
        assert_eq!(response.status(), 200);
        // Until its first answer the gateway cannot know; count once both have answered.
        if request >= 20 && header(&response, "x-switchyard-deployment").contains("ratelimit") {
            tight += 1;
        }
    }
    // 1% of its limit left: a twentieth of its weight, about 5% of the calls (50% without).
    assert!(
        tight < 40,
        "the nearly exhausted deployment still got {tight} of 280 calls"
    );
}

#[tokio::test]
async fn active_health_checks_find_a_broken_deployment_before_traffic_and_bring_it_back() {
    let spare = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let spare_addr = spare.local_addr().expect("addr");
    drop(spare);
    let setup = support::start(&format!(
        r#"
routing:
  cooldown_failures: 1
  cooldown_secs: 60
models:
  - name: checked
    health_check_interval_secs: 0.1
    deployments:
      - provider: openai_compatible
        model: "echo?d=up"
        api_base: "{{MOCK}}"
        api_key: k
      - provider: openai_compatible
        model: "echo?d=down"
        api_base: "http://{spare_addr}/v1"
        api_key: k
"#
    ))
    .await;
    // Let a check find the broken one (waiting on its state, not a guess of the time a check
    // takes on a busy machine); then no request should need a second attempt.
    let down_is = |available: bool| {
        let runtime = setup.gateway.runtime();
        async move {
            for _ in 0..100 {
                let group = runtime.group("checked").expect("the group");
                let now = tokio::time::Instant::now();
                if group.deployments[1].health.snapshot(now).available == available {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the checks never set the broken deployment's availability to {available}");
        }
    };
    down_is(false).await;
    for _ in 0..20 {
        let response = setup
            .openai(&json!({"model": "checked", "messages": user("x")}))
            .await;
        assert_eq!(header(&response, "x-switchyard-attempts"), "1");
        assert!(header(&response, "x-switchyard-deployment").ends_with("d=up"));
    }
    // It comes back long before its 60 s cooldown: a passing check returns it.
    let _revived = MockServer::start(spare_addr)
        .await
        .expect("mock on the spare port");
    down_is(true).await;
    let mut back = false;
    for _ in 0..40 {
        let response = setup
            .openai(&json!({"model": "checked", "messages": user("x")}))
            .await;
        if header(&response, "x-switchyard-deployment").ends_with("d=down") {
            back = true;
            break;
        }
    }
    assert!(back, "the repaired deployment never served again");
}

#[tokio::test]
async fn a_prompt_too_long_for_a_group_goes_to_its_context_window_fallback_without_a_call() {
    let setup = support::start(
        r#"
models:
  - name: small
    context_window_fallbacks: [large]
    deployments:
      - provider: openai_compatible
        model: "echo?d=small"
        api_base: "{MOCK}"
        api_key: k
        max_input_tokens: 40
  - name: large
    deployments:
      - provider: anthropic
        model: "echo?d=large"
        api_base: "{MOCK}"
        api_key: k
        max_input_tokens: 100000
"#,
    )
    .await;
    let short = setup
        .openai(&json!({"model": "small", "messages": user("short prompt")}))
        .await;
    assert_eq!(
        header(&short, "x-switchyard-deployment"),
        "openai_compatible/echo?d=small"
    );
    let before = setup.mock.stats().requests;

    let long = "many words ".repeat(60);
    let response = setup
        .openai(&json!({"model": "small", "messages": user(&long)}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-switchyard-fallback"), "large");
    assert_eq!(
        header(&response, "x-switchyard-deployment"),
        "anthropic/echo?d=large"
    );
    assert_eq!(
        header(&response, "x-switchyard-attempts"),
        "1",
        "the small model was not called"
    );
    assert_eq!(setup.mock.stats().requests, before + 1);

    // Without a fallback the caller hears why, in the provider's own terms.
    let response = setup
        .openai_with(
            ("x-switchyard-fallbacks", "off"),
            &json!({"model": "small", "messages": user(&long)}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "context_length_exceeded");
}

#[tokio::test]
async fn a_caller_may_bring_its_own_provider_key_where_a_deployment_allows_it() {
    let setup = support::start(
        r#"
models:
  - name: byok
    retries: 0
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: invalid
        allow_client_key: true
  - name: fixed
    retries: 0
    deployments:
      - provider: anthropic
        model: echo
        api_base: "{MOCK}"
        api_key: invalid
"#,
    )
    .await;
    let ask = |model: &'static str, key: Option<&'static str>| {
        let mut request = setup
            .client
            .post(setup.url("/v1/chat/completions"))
            .json(&json!({"model": model, "messages": user("x")}));
        if let Some(key) = key {
            request = request.header("x-switchyard-provider-key", key);
        }
        async move { request.send().await.expect("sent").status().as_u16() }
    };
    // The mock refuses the key `invalid`, as a provider refuses a revoked key.
    assert_eq!(ask("byok", None).await, 401);
    assert_eq!(ask("byok", Some("caller-key")).await, 200);
    // Regression: a key the deployment does not take was dropped and the call went out on the
    // server's key. It is refused instead.
    let response = setup
        .client
        .post(setup.url("/v1/chat/completions"))
        .header("x-switchyard-provider-key", "caller-key")
        .json(&json!({"model": "fixed", "messages": user("x")}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "provider_key_not_allowed");
    assert_eq!(
        setup.mock.stats().requests,
        2,
        "the refused call went upstream"
    );
}

/// Regression: three callers with tiny `x-switchyard-timeout`s against a slow upstream, or a
/// caller whose own key was over quota, took a shared deployment out for everyone.
#[tokio::test]
async fn failures_a_caller_brings_on_itself_do_not_cool_a_shared_deployment() {
    let setup = support::start(
        r#"
routing:
  cooldown_failures: 1
  cooldown_secs: 60
models:
  - name: slow
    retries: 0
    deployments:
      - provider: openai_compatible
        model: "echo?latency_ms=300"
        api_base: "{MOCK}"
        api_key: test-key
  - name: byok
    retries: 0
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
        allow_client_key: true
  - name: slow-own-limit
    retries: 0
    deployments:
      - provider: openai_compatible
        model: "echo?latency_ms=300&v=2"
        api_base: "{MOCK}"
        api_key: test-key
        timeout_secs: 0.05
"#,
    )
    .await;
    let ask = |model: &'static str, header: Option<(&'static str, &'static str)>| {
        let mut request = setup
            .client
            .post(setup.url("/v1/chat/completions"))
            .json(&json!({"model": model, "messages": user("x")}));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move { request.send().await.expect("sent").status().as_u16() }
    };
    for _ in 0..3 {
        assert_eq!(
            ask("slow", Some(("x-switchyard-timeout", "0.05"))).await,
            504
        );
    }
    assert_eq!(ask("slow", None).await, 200, "the deployment was taken out");
    for _ in 0..3 {
        assert_eq!(
            ask("byok", Some(("x-switchyard-provider-key", "exhausted"))).await,
            429
        );
    }
    assert_eq!(ask("byok", None).await, 200, "the deployment was taken out");
    // A deployment's own time limit running out still counts against it.
    assert_eq!(ask("slow-own-limit", None).await, 504);
    assert_eq!(ask("slow-own-limit", None).await, 503, "not taken out");
}

/// Regression: a long prompt without spaces was counted on the worker thread, stalling every
/// other request on it for as long as the count took.
#[tokio::test]
async fn counting_a_long_prompt_does_not_stall_other_requests() {
    let setup = support::start(
        r#"
server:
  body_limit_bytes: 8000000
models:
  - name: tiny
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: k
        max_input_tokens: 10
  - name: gpt
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: k
"#,
    )
    .await;
    let long = "x".repeat(400_000);
    let started = std::time::Instant::now();
    let big = async {
        let response = setup
            .openai(&json!({"model": "tiny", "messages": user(&long)}))
            .await;
        (response.status().as_u16(), started.elapsed())
    };
    let small = async {
        // After the long prompt's body has arrived and its count began.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let response = setup
            .openai(&json!({"model": "gpt", "messages": user("hi")}))
            .await;
        (response.status().as_u16(), started.elapsed())
    };
    let ((big_status, big_done), (small_status, small_done)) = tokio::join!(big, small);
    assert_eq!(big_status, 400, "the long prompt fits no deployment");
    assert_eq!(small_status, 200);
    assert!(
        small_done < big_done,
        "the short request waited for the count: {small_done:?} vs {big_done:?}"
    );
}
