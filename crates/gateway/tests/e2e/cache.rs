//! The answer cache as clients see it: a repeated call answered without the model, whole or
//! replayed as a stream in either dialect; the request's controls; single flight; what is
//! never kept; tenants that never share; hits on the record at no cost; invalidation through
//! the admin API; two instances sharing answers through Redis. By meaning: `semantic_cache.rs`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    MASTER, Setup, openai_stream_text_and_finish, parse_sse, spend_records, start, start_keys,
};

pub(crate) const MODELS: &str = r#"
cache:
  enabled: true
models:
  - name: gpt
    aliases: [gpt-alias]
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
  - name: claude
    deployments:
      - provider: anthropic
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
  - name: slow
    deployments:
      - provider: openai_compatible
        model: "echo?latency_ms=300"
        api_base: "{MOCK}"
        api_key: test-key
  - name: failing
    retries: 0
    deployments:
      - provider: openai_compatible
        model: "echo?fail=500"
        api_base: "{MOCK}"
        api_key: test-key
  - name: uncached
    cache: false
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
"#;

/// What a call got: status, headers, body.
pub(crate) struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Got {
    pub(crate) fn cache(&self) -> &str {
        self.header("x-switchyard-cache").unwrap_or("")
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub(crate) fn text(&self) -> String {
        self.json()["choices"][0]["message"]["content"]
            .as_str()
            .expect("text")
            .to_owned()
    }
}

async fn send(
    setup: &Setup,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &Value,
) -> Got {
    let mut request = setup.client.post(setup.url(path)).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if path.ends_with("/messages") {
        request = request.header("anthropic-version", "2023-06-01");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("sent");
    Got {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

pub(crate) async fn openai(setup: &Setup, headers: &[(&str, &str)], body: &Value) -> Got {
    send(setup, "/v1/chat/completions", None, headers, body).await
}

pub(crate) fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

fn streamed(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body
}

#[tokio::test]
async fn a_repeated_call_is_answered_from_the_cache_whole_and_streamed() {
    let setup = start(MODELS).await;
    let first = openai(&setup, &[], &ask("gpt", "What is the capital of France?")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.cache(), "miss");
    let key = first
        .header("x-switchyard-cache-key")
        .expect("key")
        .to_owned();
    assert_eq!(key.len(), 64);

    let again = openai(&setup, &[], &ask("gpt", "What is the capital of France?")).await;
    assert_eq!(again.cache(), "hit", "{}", again.body);
    assert_eq!(again.text(), first.text());
    for count in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(
            again.json()["usage"][count],
            first.json()["usage"][count],
            "{count}"
        );
    }
    assert_eq!(again.header("x-switchyard-cache-key"), Some(key.as_str()));
    assert!(again.header("age").is_some());
    assert_eq!(setup.mock.stats().requests, 1, "one upstream call");

    // The same question by the group's alias, and streamed: replayed as a stream.
    let replay = openai(
        &setup,
        &[],
        &streamed(ask("gpt-alias", "What is the capital of France?")),
    )
    .await;
    assert_eq!(replay.cache(), "hit");
    assert!(replay.body.ends_with("data: [DONE]\n\n"), "{}", replay.body);
    let (text, finish) = openai_stream_text_and_finish(&replay.body);
    assert_eq!(text, first.text());
    assert_eq!(finish, "stop");
    let events = parse_sse(&replay.body);
    let usage = events
        .iter()
        .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
        .find(|chunk| chunk["usage"].is_object())
        .expect("a usage chunk, as asked");
    assert_eq!(
        usage["usage"]["total_tokens"],
        first.json()["usage"]["total_tokens"]
    );
    assert_eq!(setup.mock.stats().requests, 1);

    // A group that is not cached calls the model each time.
    for _ in 0..2 {
        let got = openai(
            &setup,
            &[],
            &ask("uncached", "What is the capital of France?"),
        )
        .await;
        assert_eq!(got.status, 200);
        assert!(got.header("x-switchyard-cache").is_none());
    }
    assert_eq!(setup.mock.stats().requests, 3);
}

#[tokio::test]
async fn a_streamed_answer_is_kept_and_given_whole_or_streamed_in_either_dialect() {
    let setup = start(MODELS).await;
    let body = json!({
        "model": "claude",
        "max_tokens": 200,
        "stream": true,
        "messages": [{"role": "user", "content": "Name three rivers in Africa."}]
    });
    let first = send(&setup, "/v1/messages", None, &[], &body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.cache(), "miss");
    let text_of = |events: &[(Option<String>, String)]| -> String {
        events
            .iter()
            .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
            .filter_map(|event| event["delta"]["text"].as_str().map(str::to_owned))
            .collect()
    };
    let expected = text_of(&parse_sse(&first.body));
    assert!(!expected.is_empty());

    let replay = send(&setup, "/v1/messages", None, &[], &body).await;
    assert_eq!(replay.cache(), "hit", "{}", replay.body);
    let events = parse_sse(&replay.body);
    assert_eq!(text_of(&events), expected);
    let names: Vec<&str> = events
        .iter()
        .filter_map(|(name, _)| name.as_deref())
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let start: Value = serde_json::from_str(&events[0].1).expect("message_start");
    assert!(
        start["message"]["usage"]["input_tokens"].as_u64() > Some(0),
        "the replay reports the prompt's tokens: {start}"
    );

    let mut whole = body.clone();
    whole["stream"] = json!(false);
    let got = send(&setup, "/v1/messages", None, &[], &whole).await;
    assert_eq!(got.cache(), "hit");
    assert_eq!(got.json()["content"][0]["text"], json!(expected));
    assert_eq!(got.json()["stop_reason"], "end_turn");

    // An OpenAI client asking the same of the same group shares the answer.
    let openai_body = json!({
        "model": "claude",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Name three rivers in Africa."}]
    });
    let got = openai(&setup, &[], &openai_body).await;
    assert_eq!(got.cache(), "hit", "{}", got.body);
    assert_eq!(got.text(), expected);
    assert_eq!(setup.mock.stats().requests, 1);
}

#[tokio::test]
async fn the_request_decides_whether_the_cache_is_read_and_kept() {
    let setup = start(MODELS).await;
    let question = ask("gpt", "How far is the Moon?");
    // no-store: the answer is not kept.
    let got = openai(&setup, &[("cache-control", "no-store")], &question).await;
    assert_eq!(got.cache(), "miss");
    assert_eq!(openai(&setup, &[], &question).await.cache(), "miss");
    assert_eq!(openai(&setup, &[], &question).await.cache(), "hit");
    // no-cache: the model answers again, and its answer replaces the kept one.
    let got = openai(&setup, &[("cache-control", "no-cache")], &question).await;
    assert_eq!(got.cache(), "bypass");
    assert_eq!(setup.mock.stats().requests, 3);
    // off: neither.
    let got = openai(&setup, &[("x-switchyard-cache", "off")], &question).await;
    assert_eq!(got.cache(), "bypass");
    assert_eq!(setup.mock.stats().requests, 4);
    // Another namespace holds other answers.
    let docs = [("x-switchyard-cache-namespace", "docs")];
    assert_eq!(openai(&setup, &docs, &question).await.cache(), "miss");
    assert_eq!(openai(&setup, &docs, &question).await.cache(), "hit");
    // only-if-cached: what is not there is a 504, not a call.
    let calls = setup.mock.stats().requests;
    let got = openai(
        &setup,
        &[("cache-control", "only-if-cached")],
        &ask("gpt", "Something never asked"),
    )
    .await;
    assert_eq!(got.status, 504, "{}", got.body);
    assert_eq!(got.json()["error"]["code"], "cache_miss");
    assert_eq!(setup.mock.stats().requests, calls);
    let got = openai(&setup, &[("cache-control", "only-if-cached")], &question).await;
    assert_eq!(got.cache(), "hit");
    // A short time to live: gone after it.
    let brief = ask("gpt", "What time is it?");
    let ttl = [("x-switchyard-cache-ttl", "0.5")];
    assert_eq!(openai(&setup, &ttl, &brief).await.cache(), "miss");
    assert_eq!(openai(&setup, &[], &brief).await.cache(), "hit");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(openai(&setup, &[], &brief).await.cache(), "miss");
    // max-age: an answer older than asked is not given.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = openai(&setup, &[("cache-control", "max-age=1")], &question).await;
    assert_eq!(
        got.cache(),
        "miss",
        "the kept answer is older than a second"
    );
    // Malformed controls are the client's error, in its shape.
    for (name, value) in [
        ("x-switchyard-cache", "sometimes"),
        ("x-switchyard-cache-ttl", "-3"),
        ("x-switchyard-cache-namespace", "has spaces"),
        ("cache-control", "max-age=soon"),
    ] {
        let got = openai(&setup, &[(name, value)], &question).await;
        assert_eq!(got.status, 400, "{name}: {value}");
        assert_eq!(got.json()["error"]["param"], name);
    }
}

#[tokio::test]
async fn identical_calls_at_once_make_one_upstream_call() {
    let setup = start(MODELS).await;
    let calls = (0..10).map(|_| {
        let setup = &setup;
        async move { openai(setup, &[], &ask("slow", "Summarise the news.")).await }
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|got| got.status == 200));
    let texts: std::collections::HashSet<String> = results.iter().map(Got::text).collect();
    assert_eq!(texts.len(), 1, "everyone got the same answer");
    let hits = results.iter().filter(|got| got.cache() == "hit").count();
    assert_eq!(hits, 9, "one call went upstream, nine waited for it");
    assert_eq!(setup.mock.stats().requests, 1);
}

#[tokio::test]
async fn failures_and_blocked_answers_are_never_kept() {
    let yaml = format!(
        "{MODELS}guards:\n  output:\n    banned_terms: block\n    banned:\n      - name: secret_project\n        terms: [bluebird]\n"
    );
    let setup = start(&yaml).await;
    for _ in 0..2 {
        let got = openai(&setup, &[], &ask("failing", "Hello?")).await;
        assert_eq!(got.status, 500);
        assert_eq!(got.cache(), "miss");
    }
    assert_eq!(setup.mock.stats().requests, 2);
    // The echo model repeats the banned word: the output guard blocks it, whole and streamed.
    let banned = ask("gpt", "Tell me about bluebird");
    for _ in 0..2 {
        let got = openai(&setup, &[], &banned).await;
        assert_eq!(got.json()["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(got.cache(), "miss");
    }
    let banned_stream = streamed(ask("gpt", "More about bluebird"));
    for _ in 0..2 {
        let got = openai(&setup, &[], &banned_stream).await;
        let (_, finish) = openai_stream_text_and_finish(&got.body);
        assert_eq!(finish, "content_filter");
        assert_eq!(got.cache(), "miss");
    }
    assert_eq!(setup.mock.stats().requests, 6);
}

async fn team_key(setup: &Setup, team: &str, role: &str) -> (String, String) {
    let (status, team) = setup
        .admin(MASTER, Method::POST, "/admin/teams", &json!({"name": team}))
        .await;
    assert_eq!(status, 201, "{team}");
    let team_id = team["id"].as_str().expect("id").to_owned();
    let (status, key) = setup
        .admin(
            MASTER,
            Method::POST,
            "/admin/keys",
            &json!({"team_id": team_id, "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    (
        key["key"].as_str().expect("secret").to_owned(),
        key["id"].as_str().expect("id").to_owned(),
    )
}

#[tokio::test]
async fn tenants_never_share_answers_and_hits_cost_nothing() {
    let setup = start_keys(MODELS).await;
    let (alpha, alpha_id) = team_key(&setup, "alpha", "member").await;
    let (beta, _) = team_key(&setup, "beta", "member").await;
    let question = ask("gpt", "Our internal roadmap for next year");
    let path = "/v1/chat/completions";
    let got = send(&setup, path, Some(&alpha), &[], &question).await;
    assert_eq!(got.cache(), "miss");
    assert_eq!(
        send(&setup, path, Some(&alpha), &[], &question)
            .await
            .cache(),
        "hit"
    );
    let other = send(&setup, path, Some(&beta), &[], &question).await;
    assert_eq!(
        other.cache(),
        "miss",
        "another team never gets alpha's answer"
    );
    assert_ne!(
        other.header("x-switchyard-cache-key"),
        got.header("x-switchyard-cache-key")
    );
    assert_eq!(setup.mock.stats().requests, 2);

    let records = spend_records(&setup, &alpha_id, 2).await;
    assert_eq!(records.len(), 2, "a hit is on the record too");
    let hit = records
        .iter()
        .find(|record| record.cache_hit)
        .expect("the hit");
    assert_eq!(hit.cost_nanos, 0);
    assert_eq!(
        hit.prompt_tokens + hit.completion_tokens,
        0,
        "no tokens used"
    );
    assert_eq!(hit.status, 200);
    let miss = records
        .iter()
        .find(|record| !record.cache_hit)
        .expect("the miss");
    assert!(miss.prompt_tokens > 0);
}

#[tokio::test]
async fn cached_answers_are_dropped_through_the_admin_api() {
    let setup = start_keys(MODELS).await;
    let (member, _) = team_key(&setup, "alpha", "member").await;
    let (team_admin, _) = team_key(&setup, "beta", "team_admin").await;
    let path = "/v1/chat/completions";
    let call = |text: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let (setup, member) = (&setup, &member);
        async move { send(setup, path, Some(member), headers, &ask("gpt", text)).await }
    };
    let first = call("One", &[]).await;
    let key = first
        .header("x-switchyard-cache-key")
        .expect("key")
        .to_owned();
    call("Two", &[("x-switchyard-cache-namespace", "docs")]).await;
    call("Three", &[("x-switchyard-tags", "nightly")]).await;
    for text in ["One", "Three"] {
        assert_eq!(call(text, &[]).await.cache(), "hit");
    }

    let (status, stats) = setup
        .admin(MASTER, Method::GET, "/admin/cache", &Value::Null)
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["backend"], "memory");
    assert_eq!(stats["entries"], 3);

    // A team admin of another team drops nothing of alpha's.
    let (status, removed) = setup
        .admin(
            &team_admin,
            Method::DELETE,
            &format!("/admin/cache?key={key}"),
            &Value::Null,
        )
        .await;
    assert_eq!((status, removed["removed"].as_u64()), (200, Some(0)));
    let (status, _) = setup
        .admin(
            &member,
            Method::DELETE,
            "/admin/cache?all=true",
            &Value::Null,
        )
        .await;
    assert_eq!(status, 403, "members drop nothing");

    let (status, removed) = setup
        .admin(
            MASTER,
            Method::DELETE,
            &format!("/admin/cache?key={key}"),
            &Value::Null,
        )
        .await;
    assert_eq!((status, removed["removed"].as_u64()), (200, Some(1)));
    assert_eq!(call("One", &[]).await.cache(), "miss");

    let (_, removed) = setup
        .admin(
            MASTER,
            Method::DELETE,
            "/admin/cache?namespace=docs",
            &Value::Null,
        )
        .await;
    assert_eq!(removed["removed"], 1);
    assert_eq!(
        call("Two", &[("x-switchyard-cache-namespace", "docs")])
            .await
            .cache(),
        "miss"
    );
    let (_, removed) = setup
        .admin(
            MASTER,
            Method::DELETE,
            "/admin/cache?tag=nightly",
            &Value::Null,
        )
        .await;
    assert_eq!(removed["removed"], 1);
    assert_eq!(call("Three", &[]).await.cache(), "miss");

    for bad in [
        "/admin/cache",
        "/admin/cache?key=abc",
        "/admin/cache?tag=a&namespace=b",
    ] {
        let (status, body) = setup.admin(MASTER, Method::DELETE, bad, &Value::Null).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn instances_sharing_redis_share_answers() {
    let Ok(redis) = std::env::var("SWITCHYARD_TEST_REDIS_URL") else {
        eprintln!("skipped: SWITCHYARD_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = switchyard_store::new_id("sy-test");
    let yaml = MODELS.replace(
        "cache:\n  enabled: true\n",
        &format!(
            "cache:\n  enabled: true\n  backend: redis\nredis:\n  url: \"{redis}\"\n  prefix: \"{prefix}\"\n"
        ),
    );
    let (one, two) = (start(&yaml).await, start(&yaml).await);
    // The connection is made in the background: wait until the first instance keeps answers.
    let question = ask("gpt", "Shared between instances");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        openai(&one, &[], &question).await;
        if openai(&one, &[], &question).await.cache() == "hit" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Redis never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = openai(&two, &[], &streamed(question.clone())).await;
    assert_eq!(got.cache(), "hit", "{}", got.body);
    assert_eq!(
        two.mock.stats().requests,
        0,
        "the second instance never called its model"
    );
    let (text, _) = openai_stream_text_and_finish(&got.body);
    assert!(text.contains("Shared between instances"), "{text}");

    let key = got
        .header("x-switchyard-cache-key")
        .expect("key")
        .to_owned();
    let cache = two.gateway.shared().cache.clone().expect("a cache");
    let removed = cache
        .invalidate(&switchyard_gateway::cache::Selector {
            team: None,
            what: switchyard_gateway::cache::What::All,
        })
        .await
        .expect("invalidated");
    assert!(removed >= 1);
    assert_eq!(
        openai(&one, &[], &question).await.cache(),
        "miss",
        "{key} gone for both"
    );
}

#[tokio::test]
async fn tokenized_personal_data_never_lets_one_persons_answer_reach_another() {
    let yaml = format!("{MODELS}guards:\n  pii:\n    action: tokenize\n");
    let setup = start(&yaml).await;
    // Both prompts go upstream as "Write to [EMAIL_1]": the same text, other people.
    let ada = ask("gpt", "Write to ada.lovelace@example.com");
    let alan = ask("gpt", "Write to alan.turing@example.com");
    let first = openai(&setup, &[], &ada).await;
    assert_eq!(first.cache(), "miss");
    assert!(
        first.text().contains("ada.lovelace@example.com"),
        "{}",
        first.text()
    );
    let other = openai(&setup, &[], &alan).await;
    assert_eq!(other.cache(), "miss", "another address is another call");
    assert!(
        other.text().contains("alan.turing@example.com"),
        "{}",
        other.text()
    );
    assert!(!other.text().contains("ada.lovelace"));
    // The same person again: answered from the cache, with their own address.
    let again = openai(&setup, &[], &streamed(ada.clone())).await;
    assert_eq!(again.cache(), "hit");
    let (text, _) = openai_stream_text_and_finish(&again.body);
    assert!(text.contains("ada.lovelace@example.com"), "{text}");
    assert_eq!(setup.mock.stats().requests, 2);
}

#[tokio::test]
async fn metrics_count_lookups_writes_and_what_hits_saved() {
    let yaml = format!("{MODELS}metrics:\n  enabled: true\n");
    let setup = start(&yaml).await;
    let question = ask("gpt", "Count me");
    openai(&setup, &[], &question).await;
    openai(&setup, &[], &question).await;
    openai(&setup, &[("x-switchyard-cache", "off")], &question).await;
    let text = setup.get("/metrics").await.text().await.expect("text");
    for line in [
        r#"switchyard_cache_lookups_total{model="gpt",result="miss"} 1"#,
        r#"switchyard_cache_lookups_total{model="gpt",result="hit"} 1"#,
        r#"switchyard_cache_lookups_total{model="gpt",result="bypass"} 1"#,
        r#"switchyard_cache_writes_total{result="stored"} 1"#,
        "switchyard_cache_entries 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    let saved = text
        .lines()
        .find(|line| line.starts_with(r#"switchyard_cache_saved_tokens_total{model="gpt"}"#))
        .expect("saved tokens");
    assert!(!saved.ends_with(" 0"), "{saved}");
}
