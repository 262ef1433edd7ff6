//! The `switchyard` binary end to end: hot reload under load (SIGHUP and file changes),
//! rejection of an invalid config, graceful exit on SIGTERM.

#![expect(clippy::expect_used, reason = "test setup fails loudly by design")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_mock::MockServer;

fn config(mock: &str, variant: u32) -> String {
    format!(
        "models:\n  - name: m\n    deployments:\n      - provider: openai_compatible\n        model: \"echo?v={variant}\"\n        api_base: \"{mock}/v1\"\n        api_key: k\n"
    )
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Gateway {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn served_variant(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .map_err(|error| error.to_string())?;
    if response.status() != 200 {
        return Err(format!("status {}", response.status()));
    }
    let deployment = response
        .headers()
        .get("x-switchyard-deployment")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.map_err(|error| error.to_string())?;
    if body["choices"][0]["message"]["content"] != "hi" {
        return Err(format!("wrong answer {body}"));
    }
    Ok(deployment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_lose_no_request() {
    let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock");
    let dir = std::env::temp_dir().join(format!("switchyard-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("switchyard.yaml");
    std::fs::write(&path, config(&mock.base_url(), 0)).expect("write config");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "2"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gateway starts");
    let gateway = Gateway {
        child,
        url: format!("http://127.0.0.1:{port}"),
        dir,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{}/health/readiness", gateway.url))
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the gateway never became ready");

    // Load: four clients sending requests back to back for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU32::new(0));
    let successes = Arc::new(AtomicU32::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, failures, successes) = (stop.clone(), failures.clone(), successes.clone());
        let (client, url) = (client.clone(), gateway.url.clone());
        load.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match served_variant(&client, &url).await {
                    Ok(_) => successes.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        errors.push(error);
                        failures.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            errors
        }));
    }

    // Ten reloads, alternately by SIGHUP and by the file watcher; each must take effect.
    for variant in 1..=10u32 {
        std::fs::write(&path, config(&mock.base_url(), variant)).expect("write config");
        if variant % 2 == 1 {
            signal(&gateway.child, "HUP");
        }
        let expected = format!("openai_compatible/echo?v={variant}");
        let mut seen = false;
        for _ in 0..100 {
            if served_variant(&client, &gateway.url).await.as_deref() == Ok(expected.as_str()) {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(seen, "reload {variant} never took effect");
    }

    // An invalid config is rejected and the running one stays.
    std::fs::write(&path, "models:\n  - name: m\n    deployments: []\n").expect("write config");
    signal(&gateway.child, "HUP");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        served_variant(&client, &gateway.url).await.as_deref(),
        Ok("openai_compatible/echo?v=10")
    );

    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for task in load {
        errors.extend(task.await.expect("joined"));
    }
    assert!(
        errors.is_empty(),
        "failed requests during reloads: {errors:?}"
    );
    assert!(
        successes.load(Ordering::Relaxed) > 100,
        "the load was too light to mean anything"
    );

    // SIGTERM: a clean exit.
    let mut gateway = gateway;
    signal(&gateway.child, "TERM");
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = gateway.child.try_wait().expect("wait") {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exited.expect("exited after SIGTERM").success());
}
