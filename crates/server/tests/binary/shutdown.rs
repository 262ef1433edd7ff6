//! Background work is written out on SIGTERM, after the in-flight requests finished: cooldowns
//! opened just before the signal still reach Redis (the queue that publishes them is flushed).

use std::process::Stdio;

use crate::support::{Gateway, client};

/// Deployments that fail, one cooldown each.
const GROUPS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooldowns_queued_just_before_sigterm_reach_redis() {
    let Ok(url) = std::env::var("SWITCHYARD_TEST_REDIS_URL") else {
        eprintln!("skipped: SWITCHYARD_TEST_REDIS_URL is not set (CI sets it)");
        return;
    };
    let prefix = format!(
        "switchyard-shutdown-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let mock = switchyard_mock::MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock");
    let mut config = format!(
        "routing:\n  cooldown_failures: 1\n  cooldown_secs: 120\nredis:\n  url: \"{url}\"\n  prefix: \"{prefix}\"\nmodels:\n"
    );
    for group in 0..GROUPS {
        config.push_str(&format!(
            "  - name: g{group}\n    retries: 0\n    deployments:\n      - provider: openai_compatible\n        model: \"echo?fail=500&v={group}\"\n        api_base: \"{}/v1\"\n        api_key: k\n",
            mock.base_url()
        ));
    }
    let mut gateway = Gateway::spawn("shutdown-flush", &config, &[], Stdio::null());
    let client = client();
    assert!(gateway.wait_ready(&client).await, "never ready");

    let calls = (0..GROUPS).map(|group| {
        let client = client.clone();
        let url = format!("{}/v1/chat/completions", gateway.url);
        async move {
            client
                .post(url)
                .json(&serde_json::json!({"model": format!("g{group}"), "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|status| *status == 500), "{statuses:?}");
    gateway.signal("TERM");
    let exited = gateway.wait_exit().await;
    assert!(exited.expect("exited after SIGTERM").success());

    let redis = redis::Client::open(url.as_str()).expect("redis url");
    let mut connection = redis
        .get_multiplexed_async_connection()
        .await
        .expect("redis answers");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:cooldown:*"))
        .query_async(&mut connection)
        .await
        .expect("keys");
    assert_eq!(keys.len(), GROUPS, "cooldowns lost on shutdown");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .expect("cleanup");
}
