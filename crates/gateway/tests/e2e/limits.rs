//! Rate limits end to end: in one instance, and exact across two instances sharing Redis (and
//! PostgreSQL when `SWITCHYARD_TEST_POSTGRES_URL` is set, else one SQLite file); key changes
//! reaching the other instance; Redis cut and restored under each outage policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{MASTER, Setup, start_keys};

const MODELS: &str = r#"
models:
  - name: gpt
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
  - name: gpt-mini
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
  - name: gpt-slow
    deployments:
      - provider: openai_compatible
        model: "echo?tokens=20&chunk_delay_ms=50"
        api_base: "{MOCK}"
        api_key: test-key
  - name: gpt-20
    deployments:
      - provider: openai_compatible
        model: "echo?tokens=20"
        api_base: "{MOCK}"
        api_key: test-key
"#;

async fn key(setup: &Setup, body: Value) -> String {
    let (status, key) = setup
        .admin(MASTER, Method::POST, "/admin/keys", &body)
        .await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().expect("secret").to_owned()
}

/// A chat call with `key`: its status and headers.
async fn call(setup: &Setup, key: &str, body: Value) -> reqwest::Response {
    setup
        .client
        .post(setup.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("sent")
}

fn hello(model: &str, max_tokens: u32) -> Value {
    json!({"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hello"}]})
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_key_over_its_request_limit_gets_429_with_retry_after_and_headers() {
    let setup = start_keys(MODELS).await;
    let secret = key(&setup, json!({"limits": {"rpm": 5}})).await;
    for expected in (0..5).rev() {
        let response = call(&setup, &secret, hello("gpt", 16)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "x-ratelimit-limit-requests").as_deref(),
            Some("5")
        );
        assert_eq!(
            header(&response, "x-ratelimit-remaining-requests"),
            Some(expected.to_string())
        );
        assert!(header(&response, "x-ratelimit-reset-requests").is_some());
    }
    let refused = call(&setup, &secret, hello("gpt", 16)).await;
    assert_eq!(refused.status(), 429);
    // One request every 12 s comes back: the client is told to wait that long.
    assert_eq!(header(&refused, "retry-after").as_deref(), Some("12"));
    assert_eq!(
        header(&refused, "x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("5 requests per minute")
    );
    // Anthropic clients get their own shape.
    let (status, body) = setup.chat_as(&secret, "anthropic", "claude").await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn team_and_per_model_limits_hold_over_keys_and_models() {
    let setup = start_keys(MODELS).await;
    let (status, team) = setup
        .admin(
            MASTER,
            Method::POST,
            "/admin/teams",
            &json!({"name": "t", "limits": {"rpm": 3}}),
        )
        .await;
    assert_eq!(status, 201);
    let team = team["id"].as_str().expect("id");
    let (a, b) = (
        key(&setup, json!({"team_id": team})).await,
        key(&setup, json!({"team_id": team})).await,
    );
    let mut passed = 0;
    for secret in [&a, &b, &a, &b, &a, &b] {
        if call(&setup, secret, hello("gpt", 16)).await.status() == 200 {
            passed += 1;
        }
    }
    assert_eq!(passed, 3);

    let per_model = key(&setup, json!({"limits": {"models": {"gpt": {"rpm": 2}}}})).await;
    let statuses: Vec<u16> =
        futures_util::future::join_all((0..3).map(|_| call(&setup, &per_model, hello("gpt", 16))))
            .await
            .iter()
            .map(|response| response.status().as_u16())
            .collect();
    assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 2);
    assert_eq!(
        call(&setup, &per_model, hello("gpt-mini", 16))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn token_limits_reserve_max_tokens_and_settle_with_real_usage() {
    let setup = start_keys(MODELS).await;
    let secret = key(&setup, json!({"limits": {"tpm": 400}})).await;
    // Each call reserves the prompt and 300 tokens; the echo uses far fewer, so the
    // reservation comes back when the call ends and the next one fits.
    for stream in [false, true, false, true] {
        let mut body = hello("gpt", 300);
        body["stream"] = json!(stream);
        let response = call(&setup, &secret, body).await;
        assert_eq!(response.status(), 200, "stream {stream}");
        let _ = response.text().await;
    }
    // Two at once do not fit: the second is refused while the first holds its reservation.
    let slow = |max_tokens| {
        let mut body = hello("gpt-slow", max_tokens);
        body["stream"] = json!(true);
        body
    };
    let first = call(&setup, &secret, slow(300)).await;
    assert_eq!(first.status(), 200);
    let second = call(&setup, &secret, slow(300)).await;
    assert_eq!(second.status(), 429);
    assert_eq!(
        header(&second, "x-ratelimit-limit-tokens").as_deref(),
        Some("400")
    );
    let _ = first.text().await;
    // More than the limit in one call never fits: no Retry-After.
    let huge = call(&setup, &secret, hello("gpt", 5000)).await;
    assert_eq!(huge.status(), 429);
    assert_eq!(header(&huge, "retry-after"), None);
    let body: Value = huge.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("too large")
    );
}

#[tokio::test]
async fn streamed_calls_are_charged_their_real_usage() {
    let setup = start_keys(MODELS).await;
    // 100 a minute: what comes back in the few milliseconds between the calls is under a token.
    let secret = key(&setup, json!({"limits": {"tpm": 100}})).await;
    // No max_tokens: only the prompt is reserved, and 20 completion tokens come back.
    let mut body = hello("gpt-20", 1);
    body.as_object_mut().expect("object").remove("max_tokens");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = call(&setup, &secret, body).await;
    assert_eq!(response.status(), 200);
    let events = crate::support::parse_sse(&response.text().await.expect("body"));
    let used = events
        .iter()
        .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
        .find_map(|chunk| chunk["usage"]["total_tokens"].as_u64())
        .expect("a usage chunk");
    assert!(used >= 20, "{used}");
    // The next call sees the stream's whole usage taken, and its own small reservation.
    let next = call(&setup, &secret, hello("gpt", 1)).await;
    assert_eq!(next.status(), 200);
    let remaining: u64 = header(&next, "x-ratelimit-remaining-tokens")
        .expect("header")
        .parse()
        .expect("number");
    assert!(remaining < 100 - used, "{remaining} left after {used} used");
    assert!(
        remaining >= 100 - used - 10,
        "{remaining} left after {used} used"
    );
}

#[tokio::test]
async fn calls_in_flight_are_limited_until_they_end() {
    let setup = start_keys(MODELS).await;
    let secret = key(&setup, json!({"limits": {"max_parallel": 1}})).await;
    let mut body = hello("gpt-slow", 64);
    body["stream"] = json!(true);
    let first = call(&setup, &secret, body.clone()).await;
    assert_eq!(first.status(), 200);
    assert_eq!(call(&setup, &secret, hello("gpt", 16)).await.status(), 429);
    let _ = first.text().await;
    // The end of the stream freed its place.
    assert_eq!(call(&setup, &secret, hello("gpt", 16)).await.status(), 200);
}

/// Two gateways sharing a store and Redis (`redis`, else the test Redis), with `extra`
/// config; `None` without a test Redis. The PostgreSQL database made for them goes when the
/// returned guard does.
async fn pair(redis: Option<&str>, extra: &str) -> Option<(Setup, Setup, Database)> {
    pair_of(MODELS, redis, extra).await
}

/// [`pair`] with the model groups `models`.
pub(crate) async fn pair_of(
    models: &str,
    redis: Option<&str>,
    extra: &str,
) -> Option<(Setup, Setup, Database)> {
    let Ok(test_redis) = std::env::var("SWITCHYARD_TEST_REDIS_URL") else {
        eprintln!("skipped: SWITCHYARD_TEST_REDIS_URL is not set");
        return None;
    };
    let redis = redis.map_or(test_redis, str::to_owned);
    let redis = format!(
        "redis:\n  url: \"{redis}\"\n  prefix: \"{}\"\n",
        switchyard_store::new_id("sy-test")
    );
    Some(instances(models, &redis, extra).await)
}

/// Two gateways sharing PostgreSQL and no Redis, or `None` without a test PostgreSQL.
async fn postgres_pair() -> Option<(Setup, Setup, Database)> {
    if std::env::var("SWITCHYARD_TEST_POSTGRES_URL").is_err() {
        eprintln!("skipped: SWITCHYARD_TEST_POSTGRES_URL is not set");
        return None;
    }
    Some(instances(MODELS, "", "").await)
}

/// Two gateways sharing a store (a fresh PostgreSQL database when the tests have one, else a
/// SQLite file), with `shared` and `extra` config.
pub(crate) async fn instances(models: &str, shared: &str, extra: &str) -> (Setup, Setup, Database) {
    let prefix = switchyard_store::new_id("sy-test");
    let (store, database) = match std::env::var("SWITCHYARD_TEST_POSTGRES_URL") {
        Ok(server) => {
            let admin = sqlx::PgPool::connect(&server).await.expect("postgres");
            let name = switchyard_store::new_id("sy_gw");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .expect("create database");
            let (base, _) = server.rsplit_once('/').expect("database in url");
            (format!("{base}/{name}"), Database(Some((server, name))))
        }
        Err(_) => {
            let folder = std::env::temp_dir().join(&prefix);
            (
                format!("sqlite://{}", folder.join("store.db").display()),
                Database(None),
            )
        }
    };
    let yaml = format!(
        "{models}\nstore:\n  url: \"{store}\"\n{shared}auth:\n  master_key: {MASTER}\n{extra}"
    );
    (start_keys(&yaml).await, start_keys(&yaml).await, database)
}

/// A test database, dropped (connections and all) when this goes.
pub(crate) struct Database(Option<(String, String)>);

impl Drop for Database {
    fn drop(&mut self) {
        let Some((server, name)) = self.0.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&server).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn two_instances_sharing_redis_admit_exactly_the_limit() {
    let Some((a, b, _database)) = pair(None, "").await else {
        return;
    };
    let secret = key(&a, json!({"limits": {"rpm": 100}})).await;
    let calls = (0..200).map(|index| {
        let (setup, secret) = (if index % 2 == 0 { &a } else { &b }, &secret);
        async move {
            let response = call(setup, secret, hello("gpt", 16)).await;
            (response.status().as_u16(), header(&response, "retry-after"))
        }
    });
    let started = std::time::Instant::now();
    let results = futures_util::future::join_all(calls).await;
    // 100 a minute is one more every 0.6 s: a slow run may see a slot come back meanwhile.
    let refilled = (started.elapsed().as_secs_f64() / 0.6).floor() as usize;
    let passed = results.iter().filter(|(status, _)| *status == 200).count();
    let refused: Vec<_> = results
        .iter()
        .filter(|(status, _)| *status == 429)
        .collect();
    assert!(
        (100..=100 + refilled).contains(&passed),
        "{passed} admitted ({refilled} refilled): {results:?}"
    );
    assert_eq!(refused.len(), 200 - passed);
    // The next request is back 0.6 s after the last one admitted: Retry-After rounds it up.
    assert!(
        refused
            .iter()
            .all(|(_, retry)| retry.as_deref() == Some("1")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn two_instances_share_token_limits_on_streamed_calls() {
    let Some((a, b, _database)) = pair(None, "").await else {
        return;
    };
    let secret = key(&a, json!({"limits": {"tpm": 1000}})).await;
    // Each stream reserves 100 tokens of output and a few of prompt; the streams last long
    // enough that none settles before all were decided: 9 fit in 1000.
    let calls = (0..30).map(|index| {
        let (setup, secret) = (if index % 2 == 0 { &a } else { &b }, &secret);
        async move {
            let mut body = hello("gpt-slow", 100);
            body["stream"] = json!(true);
            let response = call(setup, secret, body).await;
            let status = response.status().as_u16();
            let _ = response.text().await;
            status
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert_eq!(
        statuses.iter().filter(|status| **status == 200).count(),
        9,
        "{statuses:?}"
    );
    // Settled with their real usage (in Redis, moments after each stream ended), the
    // reservations came back.
    let deadline = Instant::now() + Duration::from_secs(1);
    while call(&b, &secret, hello("gpt", 100)).await.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "reservations were not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_key_blocked_on_one_instance_is_refused_by_the_other_within_a_second() {
    let Some((a, b, _database)) = pair(None, "").await else {
        return;
    };
    blocked_on_one_refused_by_the_other(&a, &b).await;
}

#[tokio::test]
async fn without_redis_instances_sharing_postgres_hear_key_changes_from_it() {
    let Some((a, b, _database)) = postgres_pair().await else {
        return;
    };
    blocked_on_one_refused_by_the_other(&a, &b).await;
}

async fn blocked_on_one_refused_by_the_other(a: &Setup, b: &Setup) {
    let (status, made) = a
        .admin(MASTER, Method::POST, "/admin/keys", &json!({}))
        .await;
    assert_eq!(status, 201);
    let (id, secret) = (
        made["id"].as_str().expect("id"),
        made["key"].as_str().expect("key"),
    );
    // B has the key in its cache now.
    assert_eq!(call(b, secret, hello("gpt", 16)).await.status(), 200);
    let (status, _) = a
        .admin(
            MASTER,
            Method::POST,
            &format!("/admin/keys/{id}/block"),
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let blocked_at = Instant::now();
    loop {
        if call(b, secret, hello("gpt", 16)).await.status() == 401 {
            break;
        }
        assert!(
            blocked_at.elapsed() < Duration::from_secs(1),
            "still served after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy to Redis that can be cut (every connection closed, new ones refused) and
/// restored.
pub(crate) struct Proxy {
    addr: std::net::SocketAddr,
    down: Arc<AtomicBool>,
}

impl Proxy {
    pub(crate) async fn start(target: &str) -> Proxy {
        let target = target
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let down = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&down);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if flag.load(Ordering::SeqCst) {
                    let _ = client.shutdown().await;
                    continue;
                }
                let (target, flag) = (target.clone(), Arc::clone(&flag));
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
                    let cut = async {
                        while !flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        () = cut => {}
                    }
                });
            }
        });
        Proxy { addr, down }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn with_redis_cut_each_policy_holds_and_limits_recover_when_it_returns() {
    let Ok(redis) = std::env::var("SWITCHYARD_TEST_REDIS_URL") else {
        eprintln!("skipped: SWITCHYARD_TEST_REDIS_URL is not set");
        return;
    };
    for policy in ["closed", "open"] {
        let proxy = Proxy::start(&redis).await;
        let extra = format!("limits:\n  on_redis_error: {policy}\n  redis_timeout_ms: 200\n");
        let Some((a, _b, _database)) = pair(Some(&proxy.url()), &extra).await else {
            return;
        };
        let secret = key(&a, json!({"limits": {"rpm": 1000}})).await;
        // Connected: shared counters.
        let deadline = Instant::now() + Duration::from_secs(5);
        while call(&a, &secret, hello("gpt", 16)).await.status() != 200 {
            assert!(Instant::now() < deadline);
        }
        proxy.set_down(true);
        // The proxy closes its open connections within 10 ms.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let response = call(&a, &secret, hello("gpt", 16)).await;
        let waited = started.elapsed();
        // Decided within the bound, either way.
        assert!(waited < Duration::from_secs(2), "{policy}: {waited:?}");
        match policy {
            "closed" => {
                assert_eq!(response.status(), 503, "{policy}");
                let body: Value = response.json().await.expect("json");
                assert_eq!(body["error"]["code"], "rate_limiter_unavailable");
            }
            _ => assert_eq!(response.status(), 200, "{policy}"),
        }
        proxy.set_down(false);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if call(&a, &secret, hello("gpt", 16)).await.status() == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{policy}: limits did not recover"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
