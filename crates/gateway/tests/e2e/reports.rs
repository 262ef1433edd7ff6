//! Usage reports through the admin API: daily spend by key, team, model and tag, raw records
//! paged, CSV, and who may read what.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{MASTER, Setup, start_keys};

const MODELS: &str = r#"
models:
  - name: gpt
    deployments:
      - provider: openai_compatible
        model: "echo?tokens=10"
        api_base: "{MOCK}"
        api_key: test-key
        price: {input: 0, output: 100}
  - name: claude
    deployments:
      - provider: anthropic
        model: "echo?tokens=10"
        api_base: "{MOCK}"
        api_key: test-key
        price: {input: 0, output: 200}
"#;

async fn create(setup: &Setup, path: &str, body: Value) -> Value {
    let (status, made) = setup.admin(MASTER, Method::POST, path, &body).await;
    assert_eq!(status, 201, "{made}");
    made
}

async fn chat(setup: &Setup, key: &str, model: &str, tags: &str) {
    let response = setup
        .client
        .post(setup.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-switchyard-tags", tags)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
}

async fn get(setup: &Setup, key: &str, path: &str) -> (u16, String) {
    let response = setup
        .client
        .get(setup.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("sent");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

async fn get_json(setup: &Setup, key: &str, path: &str) -> (u16, Value) {
    let (status, text) = get(setup, key, path).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Waits until the overall report counts `calls` requests (records are written in the
/// background).
async fn settled(setup: &Setup, calls: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, report) = get_json(setup, MASTER, "/admin/spend").await;
        if report["total"]["requests"] == calls || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn spend_is_reported_by_key_team_model_and_tag_to_those_allowed() {
    let setup = start_keys(MODELS).await;
    let team = create(&setup, "/admin/teams", json!({"name": "research"})).await;
    let team_id = team["id"].as_str().expect("id").to_owned();
    let other = create(&setup, "/admin/teams", json!({"name": "other"})).await;
    let research = create(
        &setup,
        "/admin/keys",
        json!({"team_id": team_id, "tags": ["=cmd|calc"]}),
    )
    .await;
    let outsider = create(&setup, "/admin/keys", json!({"team_id": other["id"]})).await;
    let lead = create(
        &setup,
        "/admin/keys",
        json!({"team_id": team_id, "role": "team_admin"}),
    )
    .await;
    let (research_key, research_id) = (
        research["key"].as_str().expect("secret"),
        research["id"].as_str().expect("id"),
    );
    let outsider_key = outsider["key"].as_str().expect("secret");
    // Three calls from research (two gpt at 10 × $100/M, one claude at 10 × $200/M), one
    // from the other team.
    chat(&setup, research_key, "gpt", "eval").await;
    chat(&setup, research_key, "gpt", "eval,nightly").await;
    chat(&setup, research_key, "claude", "").await;
    chat(&setup, outsider_key, "gpt", "").await;
    settled(&setup, 4).await;

    let (status, overall) = get_json(&setup, MASTER, "/admin/spend").await;
    assert_eq!(status, 200, "{overall}");
    assert_eq!(overall["total"]["requests"], 4);
    assert_eq!(overall["total"]["cost_usd"], "0.005");
    assert_eq!(overall["total"]["completion_tokens"], 40);

    let (_, by_model) = get_json(&setup, MASTER, "/admin/spend?by=model").await;
    let costs: Vec<(&str, &str)> = by_model["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            (
                row["value"].as_str().unwrap_or(""),
                row["cost_usd"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(costs, [("claude", "0.002"), ("gpt", "0.003")]);

    let (_, by_tag) = get_json(&setup, MASTER, "/admin/spend?by=tag&value=eval").await;
    assert_eq!(by_tag["total"]["requests"], 2);

    let (_, by_key) = get_json(
        &setup,
        MASTER,
        &format!("/admin/spend?by=key&value={research_id}"),
    )
    .await;
    assert_eq!(by_key["total"]["cost_usd"], "0.004");

    // The team admin reads its team and its keys, not the other team or everything.
    let lead_key = lead["key"].as_str().expect("secret");
    let (status, own_team) = get_json(&setup, lead_key, "/admin/spend?by=team").await;
    assert_eq!(status, 200, "{own_team}");
    assert_eq!(own_team["total"]["requests"], 3);
    let (status, _) = get_json(
        &setup,
        lead_key,
        &format!("/admin/spend?by=key&value={research_id}"),
    )
    .await;
    assert_eq!(status, 200);
    let outsider_id = outsider["id"].as_str().expect("id");
    let (status, _) = get_json(
        &setup,
        lead_key,
        &format!("/admin/spend?by=key&value={outsider_id}"),
    )
    .await;
    assert_eq!(
        status, 404,
        "another team's key is not there for a team admin"
    );
    assert_eq!(
        get_json(&setup, lead_key, "/admin/spend?by=model").await.0,
        403
    );
    let (_, records) = get_json(&setup, lead_key, "/admin/spend/records").await;
    assert_eq!(records["data"].as_array().map(Vec::len), Some(3));
    // A member reads its own key only.
    let (status, own) = get_json(&setup, research_key, "/admin/spend?by=key").await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["total"]["requests"], 3);
    assert_eq!(
        get_json(&setup, research_key, "/admin/spend?by=team")
            .await
            .0,
        403
    );
    assert_eq!(
        get_json(
            &setup,
            outsider_key,
            &format!("/admin/spend/records?key_id={research_id}")
        )
        .await
        .0,
        403
    );

    // Raw records page by `seq`.
    let (_, first) = get_json(&setup, MASTER, "/admin/spend/records?limit=3").await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(3));
    let after = first["next_after"].as_i64().expect("next_after");
    let (_, rest) = get_json(
        &setup,
        MASTER,
        &format!("/admin/spend/records?after={after}"),
    )
    .await;
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        first["data"][1]["tags"],
        json!(["=cmd|calc", "eval", "nightly"])
    );
    assert_eq!(first["data"][0]["cost_usd"], "0.001");

    // CSV: a header, one line per record, formulas defused.
    let (status, csv) = get(&setup, MASTER, "/admin/spend/records?format=csv").await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("seq,request_id,at,key_id"), "{csv}");
    assert!(lines[2].contains(",'=cmd|calc;eval;nightly,"), "{csv}");
    let (_, daily_csv) = get(&setup, MASTER, "/admin/spend?by=model&format=csv").await;
    assert_eq!(daily_csv.lines().count(), 3, "{daily_csv}");

    // Bad parameters are 400s that say what is wrong.
    for bad in [
        "/admin/spend?by=planet",
        "/admin/spend?from=2026-02-30",
        "/admin/spend?from=2026-12-06&to=2026-01-01",
        "/admin/spend?format=xml",
        "/admin/spend?colour=red",
    ] {
        let (status, error) = get_json(&setup, MASTER, bad).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
}
