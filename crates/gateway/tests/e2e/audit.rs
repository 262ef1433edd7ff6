//! The audit log end to end: a record for every call (answered, refused, streamed) and every
//! admin change, none with the prompt in it; exports that verify offline with only the public
//! keys; tampering with the stored log (a flipped byte, a deleted record, two swapped, a cut
//! tail) found and named; checkpoints consistent across a restart and a key rotation; a load
//! run on SQLite and on two instances sharing PostgreSQL with one record per call.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_audit::export::{self, Report};
use switchyard_audit::{Signer, Verifier};

use crate::support::{MASTER, Setup, start_keys};

use crate::support::ECHO_MODELS as MODELS;

/// A prompt that must never reach the log.
const PROMPT: &str = "the launch code is 0000 (audit-test-secret)";

/// The log's public keys, as the gateway serves them.
async fn public_keys(setup: &Setup) -> Vec<Verifier> {
    let (status, keys) = setup
        .admin(MASTER, Method::GET, "/admin/audit/keys", &Value::Null)
        .await;
    assert_eq!(status, 200, "{keys}");
    keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| Verifier::parse(key.as_str().expect("text")).expect("a public key"))
        .collect()
}

/// An export of `setup`'s log (`query` appended to the path).
async fn export_text(setup: &Setup, key: &str, query: &str) -> String {
    let response = setup
        .client
        .get(setup.url(&format!("/admin/audit/export{query}")))
        .bearer_auth(key)
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    response.text().await.expect("body")
}

fn check(text: &str, keys: &[Verifier]) -> Report {
    export::verify(text.as_bytes(), keys)
}

fn problems(report: &Report) -> Vec<String> {
    report.problems.iter().map(ToString::to_string).collect()
}

/// The records of an export, parsed.
fn records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("json line"))
        .filter(|line| line["type"] == "record")
        .map(|line| line["record"].clone())
        .collect()
}

/// A chat call as the OpenAI SDK sends it; returns the status and the request id.
async fn call(setup: &Setup, key: &str, model: &str, stream: bool) -> (u16, String) {
    let response = setup
        .client
        .post(setup.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": PROMPT}],
        }))
        .send()
        .await
        .expect("call");
    let status = response.status().as_u16();
    let id = response.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let _ = response.bytes().await;
    (status, id)
}

async fn new_key(setup: &Setup, body: Value) -> (String, String) {
    let (status, key) = setup
        .admin(MASTER, Method::POST, "/admin/keys", &body)
        .await;
    assert_eq!(status, 201, "{key}");
    (
        key["id"].as_str().expect("id").to_owned(),
        key["key"].as_str().expect("secret").to_owned(),
    )
}

#[tokio::test]
async fn every_call_and_admin_change_is_recorded_once_and_proven_without_the_prompt() {
    let setup = start_keys(MODELS).await;
    let (status, team) = setup
        .admin(
            MASTER,
            Method::POST,
            "/admin/teams",
            &json!({"name": "research"}),
        )
        .await;
    assert_eq!(status, 201);
    let team_id = team["id"].as_str().expect("id").to_owned();
    let (key_id, secret) = new_key(&setup, json!({"team_id": team_id, "models": ["gpt"]})).await;
    let mut calls = Vec::new();
    for stream in [false, false, true] {
        calls.push(call(&setup, &secret, "gpt", stream).await);
    }
    calls.push(call(&setup, &secret, "claude", false).await); // not allowed: 403
    calls.push(call(&setup, "sk-not-a-key", "gpt", false).await); // 401
    let statuses: Vec<u16> = calls.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 200, 403, 401]);

    let text = export_text(&setup, MASTER, "").await;
    let keys = public_keys(&setup).await;
    let report = check(&text, &keys);
    assert!(report.ok(), "{:?}", problems(&report));
    assert!(report.header.as_ref().expect("header").complete);
    assert!(!text.contains("launch code"), "the prompt is in the log");
    let records = records(&text);
    // Two admin changes (the team, the key) and five calls.
    assert_eq!(records.len(), 7);
    let by_id: HashMap<&str, &Value> = records
        .iter()
        .filter(|record| record["event"] == "call")
        .map(|record| (record["request_id"].as_str().expect("id"), record))
        .collect();
    assert_eq!(by_id.len(), 5);
    for (status, id) in &calls {
        let record = by_id.get(id.as_str()).expect("a record for the call");
        assert_eq!(record["status"], *status, "{record}");
    }
    let denied = by_id[calls[3].1.as_str()];
    assert_eq!(
        (
            denied["error"].as_str(),
            denied["key"].as_str(),
            denied["team"].as_str()
        ),
        (
            Some("permission_denied"),
            Some(key_id.as_str()),
            Some(team_id.as_str())
        )
    );
    let anonymous = by_id[calls[4].1.as_str()];
    assert_eq!(anonymous["error"], "authentication");
    assert!(anonymous.get("key").is_none());
    let streamed = by_id[calls[2].1.as_str()];
    assert_eq!(
        (
            streamed["stream"].as_bool(),
            streamed["tokens"]["prompt"].as_u64().map(|t| t > 0)
        ),
        (Some(true), Some(true))
    );
    let admin: Vec<&Value> = records.iter().filter(|r| r["event"] == "admin").collect();
    assert_eq!(admin[1]["target"]["id"], key_id.as_str());
    assert!(
        admin[1]["after"].get("hash").is_none(),
        "a key's digest is in the log"
    );

    // A time range: from the first record written at or after `since`, all of them after it.
    let since = records[2]["at"].as_i64().expect("at");
    let text = export_text(&setup, MASTER, &format!("?since={since}")).await;
    let report = check(&text, &keys);
    assert!(report.ok(), "{:?}", problems(&report));
    let header = report.header.as_ref().expect("header");
    assert!(
        header.complete && header.from_seq <= 2 && header.to_seq == 7,
        "{header:?}"
    );
    assert_eq!(report.span.map(|(_, last)| last), Some(6));

    // One team's records: a filtered export, which verifies but cannot claim completeness.
    let text = export_text(&setup, MASTER, &format!("?team={team_id}&event=call")).await;
    let report = check(&text, &keys);
    assert!(report.ok(), "{:?}", problems(&report));
    assert!(!report.header.as_ref().expect("header").complete);
    assert_eq!(report.records, 4);

    // A member reads nothing; a bad filter is a 400.
    let (_, member) = new_key(&setup, json!({"team_id": team_id})).await;
    let (status, _) = setup
        .admin(&member, Method::GET, "/admin/audit/export", &Value::Null)
        .await;
    assert_eq!(status, 403);
    let (status, body) = setup
        .admin(
            MASTER,
            Method::GET,
            "/admin/audit/records?since=yesterday",
            &Value::Null,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // Proofs one at a time, as the routes serve them.
    let (status, proof) = setup
        .admin(
            MASTER,
            Method::GET,
            "/admin/audit/proof?seq=3",
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{proof}");
    assert!(
        proof["record"]
            .as_str()
            .expect("record")
            .contains("\"seq\":3")
    );
}

/// Runs `statements` on the SQLite file at `url` (as someone with the file would).
async fn tamper(url: &str, statements: &[&str]) {
    let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
    for statement in statements {
        let result = sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(&pool)
            .await;
        assert!(result.is_ok(), "{statement}: {:?}", result.err());
    }
    pool.close().await;
}

#[tokio::test]
async fn tampering_with_the_stored_log_is_found_and_named() {
    let folder = std::env::temp_dir().join(switchyard_store::new_id("sy-audit"));
    let url = format!("sqlite://{}", folder.join("store.db").display());
    let setup = start_keys(&format!("{MODELS}\nstore:\n  url: \"{url}\"\n")).await;
    for _ in 0..12 {
        assert_eq!(call(&setup, MASTER, "gpt", false).await.0, 200);
    }
    let keys = public_keys(&setup).await;
    let clean = export_text(&setup, MASTER, "").await;
    let report = check(&clean, &keys);
    assert!(report.ok(), "{:?}", problems(&report));
    let size = report.header.expect("header").anchor;
    assert_eq!(size, 12);
    // Someone with the database file removes the triggers first.
    tamper(
        &url,
        &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
    )
    .await;
    let body = |seq: usize| records(&clean)[seq].to_string();
    let (five, three, four) = (body(5), body(3), body(4));
    let restore = |seq: usize, text: &str| {
        format!(
            "UPDATE audit_log SET body = '{}' WHERE seq = {seq}",
            text.replace('\'', "''")
        )
    };

    // One byte flipped.
    tamper(&url, &["UPDATE audit_log SET body = replace(body, '\"status\":200', '\"status\":201') WHERE seq = 5"]).await;
    let report = check(&export_text(&setup, MASTER, "").await, &keys);
    assert_eq!(
        problems(&report),
        [format!(
            "line 8: record 5: not in the log as checkpoint {size} signed it: changed, or not at its place"
        )]
    );
    tamper(&url, &[&restore(5, &five)]).await;
    assert!(check(&export_text(&setup, MASTER, "").await, &keys).ok());

    // A record deleted.
    tamper(&url, &["DELETE FROM audit_log WHERE seq = 5"]).await;
    let report = check(&export_text(&setup, MASTER, "").await, &keys);
    assert_eq!(problems(&report), ["record 5 is missing (before record 6)"]);
    let row = format!(
        "INSERT INTO audit_log (seq, at, event, body) VALUES (5, 0, 'call', '{}')",
        five.replace('\'', "''")
    );
    tamper(&url, &[&row]).await;
    assert!(check(&export_text(&setup, MASTER, "").await, &keys).ok());

    // Two records swapped.
    tamper(&url, &[&restore(3, &four), &restore(4, &three)]).await;
    let report = check(&export_text(&setup, MASTER, "").await, &keys);
    let found = problems(&report);
    assert!(
        found.contains(&"line 6: record 3: the record says it is record 4: moved".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(&"line 7: record 4: the record says it is record 3: moved".to_owned()),
        "{found:?}"
    );
    tamper(&url, &[&restore(3, &three), &restore(4, &four)]).await;

    // The tail cut off.
    tamper(&url, &["DELETE FROM audit_log WHERE seq >= 9"]).await;
    let report = check(&export_text(&setup, MASTER, "").await, &keys);
    assert_eq!(
        problems(&report),
        [format!(
            "records 9 to 11 are missing (at the end, which checkpoint {size} covers: truncated)"
        )]
    );
    drop(setup);
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test]
async fn checkpoints_stay_consistent_across_a_restart_and_a_key_rotation() {
    let folder = std::env::temp_dir().join(switchyard_store::new_id("sy-audit"));
    let store = format!(
        "store:\n  url: \"sqlite://{}\"\n",
        folder.join("store.db").display()
    );
    // First run: a key file made beside the database.
    let yaml = format!("{MODELS}\n{store}audit:\n  checkpoint_interval_secs: 0.2\n");
    let setup = start_keys(&yaml).await;
    for _ in 0..5 {
        call(&setup, MASTER, "gpt", false).await;
    }
    let first_keys = public_keys(&setup).await;
    let Setup { gateway, mock, .. } = setup;
    gateway.shutdown().await.expect("shut down");
    drop(mock);
    assert!(folder.join("audit-signing.key").exists());

    // Second run, same key file: the log goes on, and the export proves both runs' checkpoints
    // consistent.
    let setup = start_keys(&yaml).await;
    for _ in 0..4 {
        call(&setup, MASTER, "gpt", true).await;
    }
    assert_eq!(public_keys(&setup).await, first_keys);
    let text = export_text(&setup, MASTER, "").await;
    let report = check(&text, &first_keys);
    assert!(report.ok(), "{:?}", problems(&report));
    assert!(report.checkpoints >= 2, "{}", report.checkpoints);
    assert_eq!(report.records, 9);
    let Setup { gateway, mock, .. } = setup;
    gateway.shutdown().await.expect("shut down");
    drop(mock);

    // Third run with a new key: old checkpoints still check with the old key, and only with it.
    let rotated = Signer::generate("switchyard.local/audit").expect("key");
    let yaml = format!(
        "{MODELS}\n{store}audit:\n  signing_key: \"{}\"\n",
        rotated.to_private_string()
    );
    let setup = start_keys(&yaml).await;
    call(&setup, MASTER, "gpt", false).await;
    let keys = public_keys(&setup).await;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], rotated.verifier());
    let text = export_text(&setup, MASTER, "").await;
    let report = check(&text, &keys);
    assert!(report.ok(), "{:?}", problems(&report));
    assert_eq!(report.records, 10);
    let only_new = check(&text, &[rotated.verifier()]);
    assert!(
        problems(&only_new).iter().any(|problem| problem
            .contains("checkpoint refused: the note is not signed by any key given")),
        "{:?}",
        problems(&only_new)
    );
    drop(setup);
    let _ = std::fs::remove_dir_all(folder);
}

/// `count` calls, `parallel` at a time, spread over `setups`: the request ids answered 200.
async fn load(setups: &[&Setup], count: usize, parallel: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for wave in 0..count.div_ceil(parallel) {
        let calls = (0..parallel.min(count - wave * parallel)).map(|n| {
            let setup = setups[n % setups.len()];
            call(
                setup,
                MASTER,
                if n % 2 == 0 { "gpt" } else { "claude" },
                n % 3 == 0,
            )
        });
        for (status, id) in futures_util::future::join_all(calls).await {
            assert_eq!(status, 200);
            ids.push(id);
        }
    }
    ids
}

/// The request ids of an export's call records, checked: verified, one per call.
async fn assert_one_record_per_call(setup: &Setup, ids: &[String]) {
    let text = export_text(setup, MASTER, "?event=call").await;
    let report = check(&text, &public_keys(setup).await);
    assert!(report.ok(), "{:?}", problems(&report));
    let mut recorded: Vec<String> = records(&text)
        .iter()
        .map(|record| record["request_id"].as_str().expect("id").to_owned())
        .collect();
    recorded.sort();
    let mut expected = ids.to_vec();
    expected.sort();
    assert_eq!(
        recorded.len(),
        expected.len(),
        "records for {} calls",
        ids.len()
    );
    assert_eq!(recorded, expected);
}

#[tokio::test]
async fn a_load_run_leaves_exactly_one_record_per_call_on_sqlite() {
    let folder = std::env::temp_dir().join(switchyard_store::new_id("sy-audit"));
    let setup = start_keys(&format!(
        "{MODELS}\nstore:\n  url: \"sqlite://{}\"\n",
        folder.join("store.db").display()
    ))
    .await;
    let ids = load(&[&setup], 600, 40).await;
    assert_one_record_per_call(&setup, &ids).await;
    drop(setup);
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test]
async fn two_instances_under_load_share_one_log_on_postgres() {
    if std::env::var("SWITCHYARD_TEST_POSTGRES_URL").is_err() {
        eprintln!("skipped: SWITCHYARD_TEST_POSTGRES_URL is not set");
        return;
    }
    let (one, two, _database) = crate::limits::instances(MODELS, "", "").await;
    let ids = load(&[&one, &two], 600, 40).await;
    // Each instance writes what it holds (an export drains only its own instance's queue);
    // then either exports the whole log: both wrote into one tree.
    let (status, checkpoint) = one
        .admin(
            MASTER,
            Method::POST,
            "/admin/audit/checkpoint",
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{checkpoint}");
    assert_one_record_per_call(&two, &ids).await;
    let text = export_text(&one, MASTER, "").await;
    let report = check(&text, &public_keys(&one).await);
    assert!(report.ok(), "{:?}", problems(&report));
    assert_eq!(report.records, 600);
}
