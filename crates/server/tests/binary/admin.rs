//! Keys from the command line: `switchyard teams|keys|users|whoami` against a running gateway
//! whose master key comes from `SWITCHYARD_MASTER_KEY`, and the refusal to serve without keys
//! on a non-loopback address.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_mock::MockServer;

use crate::support::{self, Gateway};

const MASTER: &str = "sy-cli-master-key-0123456789";

/// Runs `switchyard <args>` against `gateway` with `key`; (success, stdout as JSON, stderr).
fn admin(gateway: &Gateway, key: &str, args: &[&str]) -> (bool, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .args(["--url", &gateway.url])
        .env("SWITCHYARD_ADMIN_KEY", key)
        .env_remove("SWITCHYARD_MASTER_KEY")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (
        output.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::String(stdout)),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn chat(client: &reqwest::Client, gateway: &Gateway, key: &str) -> u16 {
    client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .bearer_auth(key)
        .timeout(Duration::from_secs(5))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_made_and_blocked_from_the_command_line_work_at_once() {
    let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock");
    let name = format!("admin-cli-{}", std::process::id());
    let folder = std::env::temp_dir().join(format!("switchyard-{name}"));
    let config = format!(
        "{}store:\n  url: \"sqlite://{}\"\n",
        support::config(&mock.base_url(), 0),
        folder.join("data/switchyard.db").display()
    );
    let mut gateway = Gateway::spawn(
        "admin-cli",
        &config,
        &[("SWITCHYARD_MASTER_KEY", MASTER), ("RUST_LOG", "info")],
        Stdio::piped(),
    );
    let logs = gateway.stderr_text();
    let client = support::client();
    assert!(
        gateway.wait_ready(&client).await,
        "the gateway never became ready"
    );
    assert_eq!(chat(&client, &gateway, "").await, 401);

    let (ok, team, stderr) = admin(
        &gateway,
        MASTER,
        &[
            "teams", "create", "--name", "platform", "--models", "m", "--rpm", "50",
        ],
    );
    assert!(ok, "{stderr}");
    let team_id = team["id"].as_str().expect("team id");
    assert_eq!(team["limits"]["rpm"], 50);

    let (ok, key, stderr) = admin(
        &gateway,
        MASTER,
        &[
            "keys",
            "create",
            "--alias",
            "ci",
            "--team",
            team_id,
            "--models",
            "m",
            "--rpm",
            "5",
            "--tags",
            "ci,nightly",
        ],
    );
    assert!(ok, "{stderr}");
    let (key_id, secret) = (
        key["id"].as_str().expect("id"),
        key["key"].as_str().expect("secret"),
    );
    assert!(secret.starts_with("sy-"));
    assert_eq!(key["tags"], json!(["ci", "nightly"]));
    assert_eq!(chat(&client, &gateway, secret).await, 200);

    let (ok, listed, _) = admin(&gateway, MASTER, &["keys", "list", "--team", team_id]);
    assert!(ok);
    assert_eq!(listed["data"][0]["alias"], "ci");
    assert!(
        !listed.to_string().contains(secret),
        "secrets are shown once"
    );

    // The key itself is a member: it reads itself and may not manage keys.
    let (ok, me, _) = admin(&gateway, secret, &["whoami"]);
    assert!(ok);
    assert_eq!(me["role"], "member");
    let (ok, _, stderr) = admin(&gateway, secret, &["keys", "create"]);
    assert!(!ok);
    assert!(stderr.starts_with("403"), "{stderr}");

    let (ok, _, stderr) = admin(&gateway, MASTER, &["keys", "block", key_id]);
    assert!(ok, "{stderr}");
    assert_eq!(chat(&client, &gateway, secret).await, 401);
    let (ok, _, _) = admin(&gateway, MASTER, &["keys", "unblock", key_id]);
    assert!(ok);
    assert_eq!(chat(&client, &gateway, secret).await, 200);

    let (ok, rotated, _) = admin(&gateway, MASTER, &["keys", "rotate", key_id]);
    assert!(ok);
    let fresh = rotated["key"].as_str().expect("new secret");
    assert_eq!(chat(&client, &gateway, secret).await, 401);
    assert_eq!(chat(&client, &gateway, fresh).await, 200);

    // Budgets from the command line, and the key's spend reported: its three answered calls.
    let (ok, budgeted, stderr) = admin(
        &gateway,
        MASTER,
        &[
            "keys",
            "create",
            "--budget-usd",
            "5",
            "--budget-period",
            "daily",
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        budgeted["limits"]["budget"],
        json!({"max_usd": "5", "period": "daily"})
    );
    let mut requests = 0;
    for _ in 0..100 {
        let (ok, report, stderr) = admin(
            &gateway,
            MASTER,
            &["spend", "--by", "key", "--value", key_id],
        );
        assert!(ok, "{stderr}");
        requests = report["total"]["requests"].as_u64().unwrap_or(0);
        if requests >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(requests, 3);

    let (ok, _, stderr) = admin(&gateway, "sy-wrong", &["keys", "list"]);
    assert!(!ok);
    assert!(stderr.starts_with("401"), "{stderr}");

    // Each call's log line names the key by its id; no secret is ever written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = logs.lock().expect("logs").clone();
    assert!(
        logs.lines()
            .any(|line| line.contains("Request completed") && line.contains(key_id)),
        "{logs}"
    );
    for secret in [secret, fresh, MASTER] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    drop(gateway);
    let _ = std::fs::remove_dir_all(folder);
}

#[test]
fn without_a_master_key_it_serves_only_on_loopback_unless_told() {
    let dir = std::env::temp_dir().join(format!("switchyard-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("open.yaml");
    std::fs::write(&path, "server:\n  listen: 0.0.0.0:0\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("SWITCHYARD_MASTER_KEY")
        .stdout(Stdio::null())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without keys"), "{stderr}");
    let check = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("check-config")
        .arg(&path)
        .env_remove("SWITCHYARD_MASTER_KEY")
        .output()
        .expect("runs");
    assert!(!check.status.success());
    // Said explicitly, it is a valid choice.
    std::fs::write(&path, "server:\n  listen: 0.0.0.0:0\nauth:\n  mode: none\n").expect("write");
    let check = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("check-config")
        .arg(&path)
        .env_remove("SWITCHYARD_MASTER_KEY")
        .output()
        .expect("runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `switchyard audit export` writes the log; `audit verify` checks it offline with the public
/// key `audit keys` prints, and names the record when a byte of the file is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_exported_and_verified_from_the_command_line() {
    let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock");
    let folder = std::env::temp_dir().join(format!("switchyard-audit-cli-{}", std::process::id()));
    let config = format!(
        "{}store:\n  url: \"sqlite://{}\"\n",
        support::config(&mock.base_url(), 0),
        folder.join("data/switchyard.db").display()
    );
    let mut gateway = Gateway::spawn(
        "audit-cli",
        &config,
        &[("SWITCHYARD_MASTER_KEY", MASTER)],
        Stdio::null(),
    );
    let client = support::client();
    assert!(gateway.wait_ready(&client).await, "never ready");
    for _ in 0..6 {
        assert_eq!(chat(&client, &gateway, MASTER).await, 200);
    }
    let (ok, keys, stderr) = admin(&gateway, MASTER, &["audit", "keys"]);
    assert!(ok, "{stderr}");
    let public_key = keys["key"].as_str().expect("key").to_owned();
    let file = folder.join("audit.jsonl");
    let file = file.to_str().expect("path");
    let (ok, _, stderr) = admin(&gateway, MASTER, &["audit", "export", "--out", file]);
    assert!(ok, "{stderr}");
    let verify = |path: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["audit", "verify", path, "--public-key", &public_key])
            .output()
            .expect("runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = verify(file);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with(
            "OK: 6 records 0 to 5 of switchyard.local/audit proven under checkpoint 6"
        ),
        "{stdout}"
    );
    // One byte changed in record 2 (line 5: the header, a checkpoint, then records 0, 1, 2).
    let text = std::fs::read_to_string(file).expect("export");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[4] = lines[4].replacen("\"status\":200", "\"status\":500", 1);
    let tampered = folder.join("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n")).expect("write");
    let (ok, _, stderr) = verify(tampered.to_str().expect("path"));
    assert!(!ok);
    assert!(
        stderr.starts_with("line 5: record 2: not in the log as checkpoint 6 signed it"),
        "{stderr}"
    );
    // Checked with another key, nothing holds.
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["audit", "new-key", "--name", "someone.else/audit"])
        .output()
        .expect("runs");
    let stranger = String::from_utf8_lossy(&output.stderr)
        .trim()
        .trim_start_matches("public key: ")
        .to_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["audit", "verify", file, "--public-key", &stranger])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    gateway.signal("TERM");
    let _ = gateway.wait_exit().await;
    let _ = std::fs::remove_dir_all(folder);
}

/// What a checkpoint covered when it was acknowledged survives the process being killed: after
/// a SIGKILL and a restart, the log still proves every record under it, and goes on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_checkpoint_loses_nothing_it_covers() {
    let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock");
    let config = support::config(&mock.base_url(), 0);
    let envs = [("SWITCHYARD_MASTER_KEY", MASTER)];
    let mut gateway = Gateway::spawn("audit-crash", &config, &envs, Stdio::null());
    let client = support::client();
    assert!(gateway.wait_ready(&client).await, "never ready");
    for _ in 0..20 {
        assert_eq!(chat(&client, &gateway, MASTER).await, 200);
    }
    let (ok, acknowledged, stderr) = admin(&gateway, MASTER, &["audit", "checkpoint"]);
    assert!(ok, "{stderr}");
    let size = acknowledged["size"].as_u64().expect("size");
    assert_eq!(size, 20);
    gateway.signal("KILL");
    let _ = gateway.wait_exit().await;

    let mut gateway = Gateway::spawn("audit-crash", &config, &envs, Stdio::null());
    assert!(
        gateway.wait_ready(&client).await,
        "never ready after the crash"
    );
    assert_eq!(chat(&client, &gateway, MASTER).await, 200);
    let (ok, keys, _) = admin(&gateway, MASTER, &["audit", "keys"]);
    assert!(ok);
    let file = gateway.dir.join("after-crash.jsonl");
    let file = file.to_str().expect("path").to_owned();
    let (ok, _, stderr) = admin(&gateway, MASTER, &["audit", "export", "--out", &file]);
    assert!(ok, "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["audit", "verify", &file, "--public-key"])
        .arg(keys["key"].as_str().expect("key"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("OK: 21 records 0 to 20"), "{stdout}");
    let text = std::fs::read_to_string(&file).expect("export");
    assert!(
        text.contains(
            acknowledged["note"]
                .as_str()
                .expect("note")
                .replace('\n', "\\n")
                .as_str()
        ),
        "the acknowledged checkpoint is in the export"
    );
    gateway.signal("TERM");
    let _ = gateway.wait_exit().await;
    let _ = std::fs::remove_dir_all(&gateway.dir);
}
