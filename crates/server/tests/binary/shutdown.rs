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

/// Spend and audit records of calls answered before and during a SIGTERM are all in the store
/// after the gateway exits (the queues are written out after the in-flight calls drained), and
/// the last checkpoint, signed at exit with the key made at start, covers every audit record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_spend_or_audit_record() {
    let mock = switchyard_mock::MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock");
    // The embedded store (switchyard-data/ in the gateway's directory), calls that take 20 ms.
    let config = format!(
        "server:\n  shutdown_grace_secs: 10\nmodels:\n  - name: m\n    deployments:\n      - provider: openai_compatible\n        model: \"echo?tokens=3&latency_ms=20\"\n        api_base: \"{}/v1\"\n        api_key: k\n        price: {{input: 1, output: 1}}\n",
        mock.base_url()
    );
    let mut gateway = Gateway::spawn("shutdown-spend", &config, &[], Stdio::null());
    let client = client();
    assert!(gateway.wait_ready(&client).await, "never ready");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // 16 clients calling back to back until the gateway stops answering.
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, stop) = (client.clone(), std::sync::Arc::clone(&stop));
            let url = format!("{}/v1/chat/completions", gateway.url);
            tokio::spawn(async move {
                let mut answered = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let sent = client
                        .post(&url)
                        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 200 => {
                            if response.bytes().await.is_ok() {
                                answered += 1;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    gateway.signal("TERM");
    let exited = gateway.wait_exit().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(exited.expect("exited after SIGTERM").success());
    let mut answered = 0;
    for worker in workers {
        answered += worker.await.expect("client");
    }
    assert!(
        answered > 100,
        "only {answered} calls answered before the signal"
    );
    let url = format!(
        "sqlite://{}",
        gateway.dir.join("switchyard-data/switchyard.db").display()
    );
    let store = switchyard_store::Store::connect(&switchyard_store::Options::new(url))
        .await
        .expect("the store opens");
    let records = store
        .spend_records(&switchyard_store::SpendQuery {
            limit: 10_000,
            ..switchyard_store::SpendQuery::default()
        })
        .await
        .expect("records");
    let ok = records.iter().filter(|record| record.status == 200).count() as u64;
    assert_eq!(ok, answered, "every answered call has its record");
    assert!(records.iter().all(|record| record.cost_nanos > 0));

    let mut audited = Vec::new();
    loop {
        let page = store
            .audit_records(&switchyard_store::AuditQuery {
                after: audited
                    .last()
                    .map(|r: &switchyard_store::AuditRecord| r.seq),
                limit: 1000,
                ..switchyard_store::AuditQuery::default()
            })
            .await
            .expect("audit records");
        if page.is_empty() {
            break;
        }
        audited.extend(page);
    }
    let ok = audited
        .iter()
        .filter(|record| record.body.contains("\"status\":200"))
        .count() as u64;
    assert_eq!(ok, answered, "every answered call has its audit record");
    let head = store.audit_head().await.expect("head");
    assert_eq!(head.size, audited.len() as u64);
    let checkpoint = store
        .audit_latest_checkpoint()
        .await
        .expect("checkpoint")
        .expect("one was signed at exit");
    assert_eq!((checkpoint.size, checkpoint.root), (head.size, head.root));
    let key = std::fs::read_to_string(gateway.dir.join("switchyard-data/audit-signing.key"))
        .expect("the key made at start");
    let verifier = switchyard_audit::Signer::parse(&key)
        .expect("a key")
        .verifier();
    let (opened, _) =
        switchyard_audit::Checkpoint::open(&checkpoint.note, &[verifier]).expect("signed by it");
    assert_eq!(opened.size, head.size);
    store.close().await;
}
