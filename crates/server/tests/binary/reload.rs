//! Hot reload under load (SIGHUP and file changes), rejection of an invalid config, graceful
//! exit on SIGTERM.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, config};

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
    let (mock, mut gateway, client) =
        support::start("reload", &[("RUST_LOG", "warn")], Stdio::piped()).await;
    let logged = gateway.stderr_text();
    let path = gateway.config_path();

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
            gateway.signal("HUP");
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
    gateway.signal("HUP");
    let mut rejected = false;
    for _ in 0..100 {
        if logged
            .lock()
            .expect("lock")
            .contains("Config reload rejected")
        {
            rejected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        rejected,
        "no rejection logged: {}",
        logged.lock().expect("lock")
    );
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
    gateway.signal("TERM");
    let exited = gateway.wait_exit().await;
    assert!(exited.expect("exited after SIGTERM").success());
}
