//! Keys, teams and roles, end to end: the admin API makes them, model calls are checked
//! against them in both dialects.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{MASTER, Setup, start_keys};

const MODELS: &str = r#"
models:
  - name: gpt
    aliases: [gpt-alias]
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
  - name: secret-model
    deployments:
      - provider: openai_compatible
        model: echo
        api_base: "{MOCK}"
        api_key: test-key
"#;

/// Creates a key with `body` as the master key; returns (id, secret).
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

async fn new_team(setup: &Setup, body: Value) -> String {
    let (status, team) = setup
        .admin(MASTER, Method::POST, "/admin/teams", &body)
        .await;
    assert_eq!(status, 201, "{team}");
    team["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn calls_without_a_valid_key_get_401_in_their_own_shape() {
    let setup = start_keys(MODELS).await;
    let missing = setup
        .client
        .post(setup.url("/v1/chat/completions"))
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert_eq!(body["error"]["code"], "missing_api_key");

    let (status, body) = setup.chat_as("sy-not-a-key", "openai", "gpt").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("invalid_api_key"))
    );
    let (status, body) = setup.chat_as("sy-not-a-key", "anthropic", "claude").await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    // The model list is not for strangers either.
    let (status, _) = setup
        .admin("sy-not-a-key", Method::GET, "/v1/models", &Value::Null)
        .await;
    assert_eq!(status, 401);

    // The master key calls any model.
    let (status, body) = setup.chat_as(MASTER, "openai", "secret-model").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_unauthenticated_call_is_refused_before_its_body_is_read() {
    let setup = start_keys(MODELS).await;
    // Headers promising 10 MB, and no body at all: the refusal must not wait for it.
    let mut stream = tokio::net::TcpStream::connect(setup.gateway.addr())
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n",
        )
        .await
        .expect("write");
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut answer))
        .await
        .expect("answered without the body")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..read]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
}

#[tokio::test]
async fn keys_reach_only_their_models_by_name_alias_and_wildcard() {
    let setup = start_keys(MODELS).await;
    let (_, secret) = new_key(
        &setup,
        json!({"alias": "ci", "models": ["gpt-*", "claude"]}),
    )
    .await;
    for (format, model) in [
        ("openai", "gpt"),
        ("openai", "gpt-mini"),
        ("openai", "gpt-alias"),
        ("anthropic", "claude"),
        ("openai", "claude"),
    ] {
        let (status, body) = setup.chat_as(&secret, format, model).await;
        assert_eq!(status, 200, "{format} {model}: {body}");
    }
    for format in ["openai", "anthropic"] {
        let (status, body) = setup.chat_as(&secret, format, "secret-model").await;
        assert_eq!(status, 403, "{body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains("secret-model"), "{message}");
        assert_eq!(body["error"]["type"], "permission_error");
    }
    // An unknown model is still a 404, not a 403.
    let (status, _) = setup.chat_as(&secret, "openai", "no-such-model").await;
    assert_eq!(status, 404);

    let (status, list) = setup
        .admin(&secret, Method::GET, "/v1/models", &Value::Null)
        .await;
    assert_eq!(status, 200);
    let mut ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|model| model["id"].as_str().expect("id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["claude", "gpt", "gpt-mini"]);
}

#[tokio::test]
async fn teams_set_the_ceiling_and_a_blocked_team_blocks_its_keys() {
    let setup = start_keys(MODELS).await;
    let team = new_team(
        &setup,
        json!({"name": "research", "models": ["gpt"], "limits": {"rpm": 100}}),
    )
    .await;
    // Over the team's limit, or outside its models: refused at creation.
    let (status, body) = setup
        .admin(
            MASTER,
            Method::POST,
            "/admin/keys",
            &json!({"team_id": team, "limits": {"rpm": 500}}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["param"]),
        (400, &json!("limits.rpm")),
        "{body}"
    );
    let (status, body) = setup
        .admin(
            MASTER,
            Method::POST,
            "/admin/keys",
            &json!({"team_id": team, "models": ["claude"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // A key with no list of its own gets the team's.
    let (_, secret) = new_key(&setup, json!({"team_id": team})).await;
    assert_eq!(setup.chat_as(&secret, "openai", "gpt").await.0, 200);
    assert_eq!(setup.chat_as(&secret, "openai", "gpt-mini").await.0, 403);

    let (status, _) = setup
        .admin(
            MASTER,
            Method::PATCH,
            &format!("/admin/teams/{team}"),
            &json!({"blocked": true}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = setup.chat_as(&secret, "openai", "gpt").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("team")
    );
    // A team with keys cannot be deleted.
    let (status, _) = setup
        .admin(
            MASTER,
            Method::DELETE,
            &format!("/admin/teams/{team}"),
            &Value::Null,
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn block_unblock_rotate_expire_and_delete_take_effect_at_once() {
    let setup = start_keys(MODELS).await;
    let (id, secret) = new_key(&setup, json!({})).await;
    assert_eq!(setup.chat_as(&secret, "openai", "gpt").await.0, 200);

    let (status, _) = setup
        .admin(
            MASTER,
            Method::POST,
            &format!("/admin/keys/{id}/block"),
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = setup.chat_as(&secret, "anthropic", "claude").await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("blocked")
    );
    setup
        .admin(
            MASTER,
            Method::POST,
            &format!("/admin/keys/{id}/unblock"),
            &Value::Null,
        )
        .await;
    assert_eq!(setup.chat_as(&secret, "openai", "gpt").await.0, 200);

    // Rotation with a grace period: both secrets work; without one, only the new one.
    let (status, rotated) = setup
        .admin(
            MASTER,
            Method::POST,
            &format!("/admin/keys/{id}/rotate"),
            &json!({"grace_secs": 60}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["key"].as_str().expect("new secret").to_owned();
    assert_ne!(second, secret);
    assert_eq!(setup.chat_as(&secret, "openai", "gpt").await.0, 200);
    assert_eq!(setup.chat_as(&second, "openai", "gpt").await.0, 200);
    let (_, rotated) = setup
        .admin(
            MASTER,
            Method::POST,
            &format!("/admin/keys/{id}/rotate"),
            &Value::Null,
        )
        .await;
    let third = rotated["key"].as_str().expect("new secret").to_owned();
    assert_eq!(setup.chat_as(&second, "openai", "gpt").await.0, 401);
    assert_eq!(setup.chat_as(&secret, "openai", "gpt").await.0, 401);
    assert_eq!(setup.chat_as(&third, "openai", "gpt").await.0, 200);

    // Expiry.
    let (status, _) = setup
        .admin(
            MASTER,
            Method::PATCH,
            &format!("/admin/keys/{id}"),
            &json!({"expires_at": 1}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = setup.chat_as(&third, "openai", "gpt").await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("expired")
    );

    let (status, _) = setup
        .admin(
            MASTER,
            Method::DELETE,
            &format!("/admin/keys/{id}"),
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = setup
        .admin(
            MASTER,
            Method::GET,
            &format!("/admin/keys/{id}"),
            &Value::Null,
        )
        .await;
    assert_eq!(status, 404);

    // Every change is on record, by whom, with before and after; no secret or hash in it.
    let (status, changes) = setup
        .admin(MASTER, Method::GET, "/admin/changes", &Value::Null)
        .await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = changes["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|change| change["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "create", "block", "unblock", "rotate", "rotate", "update", "delete"
        ]
    );
    assert!(
        changes["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|change| change["actor"] == "master")
    );
    let text = changes.to_string();
    for secret in [&secret, &second, &third] {
        assert!(!text.contains(secret.as_str()));
    }
    assert!(!text.contains("\"hash\""));
}

#[tokio::test]
async fn roles_decide_what_the_admin_api_and_model_calls_allow() {
    let setup = start_keys(MODELS).await;
    let red = new_team(&setup, json!({"name": "red"})).await;
    let blue = new_team(&setup, json!({"name": "blue"})).await;
    let (_, team_admin) = new_key(&setup, json!({"team_id": red, "role": "team_admin"})).await;
    let (_, member) = new_key(&setup, json!({"team_id": red})).await;
    let (_, viewer) = new_key(&setup, json!({"role": "viewer"})).await;

    // A team admin makes keys in its own team only, and never above its own role.
    let (status, made) = setup
        .admin(
            &team_admin,
            Method::POST,
            "/admin/keys",
            &json!({"alias": "bot"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["team_id"], json!(red));
    let (status, _) = setup
        .admin(
            &team_admin,
            Method::POST,
            "/admin/keys",
            &json!({"team_id": blue}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = setup
        .admin(
            &team_admin,
            Method::POST,
            "/admin/keys",
            &json!({"role": "admin"}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, listed) = setup
        .admin(&team_admin, Method::GET, "/admin/keys", &Value::Null)
        .await;
    assert_eq!(status, 200);
    assert!(
        listed["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|key| key["team_id"] == json!(red))
    );
    assert_eq!(listed["data"].as_array().expect("data").len(), 3);
    let (status, _) = setup
        .admin(
            &team_admin,
            Method::POST,
            "/admin/teams",
            &json!({"name": "x"}),
        )
        .await;
    assert_eq!(status, 403);

    // A member reads itself and calls models; it manages nothing.
    let (status, me) = setup
        .admin(&member, Method::GET, "/admin/whoami", &Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (me["role"].as_str(), me["team_id"].as_str()),
        (Some("member"), Some(red.as_str()))
    );
    let (status, _) = setup
        .admin(&member, Method::POST, "/admin/keys", &json!({}))
        .await;
    assert_eq!(status, 403);
    let (status, listed) = setup
        .admin(&member, Method::GET, "/admin/keys", &Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"].as_array().expect("data").len(), 1);
    assert_eq!(setup.chat_as(&member, "openai", "gpt").await.0, 200);

    // A viewer reads everything (the four keys made here) and calls nothing.
    let (status, listed) = setup
        .admin(&viewer, Method::GET, "/admin/keys", &Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"].as_array().expect("data").len(), 4);
    let (status, _) = setup
        .admin(
            &viewer,
            Method::PATCH,
            &format!("/admin/teams/{red}"),
            &json!({"blocked": true}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = setup.chat_as(&viewer, "openai", "gpt").await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn hostile_admin_input_is_refused_or_stored_verbatim_never_executed() {
    let setup = start_keys(MODELS).await;
    let hostile = "'); DROP TABLE api_keys; -- \" OR 1=1 ☃";
    let (status, key) = setup
        .admin(
            MASTER,
            Method::POST,
            "/admin/keys",
            &json!({"alias": hostile, "tags": [hostile], "metadata": {hostile: hostile}}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let id = key["id"].as_str().expect("id");
    let (status, read) = setup
        .admin(
            MASTER,
            Method::GET,
            &format!("/admin/keys/{id}"),
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(read["alias"], hostile);
    assert_eq!(read["metadata"][hostile], hostile);
    // An id made of SQL is just an id that does not exist.
    let (status, _) = setup
        .admin(
            MASTER,
            Method::GET,
            "/admin/keys/x'%20OR%20'1'='1",
            &Value::Null,
        )
        .await;
    assert_eq!(status, 404);

    for (body, param) in [
        (json!({"alias": 5}), "alias"),
        (json!({"models": "gpt"}), "models"),
        (json!({"limits": {"rpm": -1}}), "limits.rpm"),
        (json!({"limits": {"rpm": 0}}), "limits.rpm"),
        (json!({"alias": "x".repeat(10_000)}), "alias"),
        (json!({"alias": "bell\u{7}"}), "alias"),
        (json!({"alias": "nul\u{0}"}), "alias"),
        (json!({"role": "root"}), "role"),
        (json!({"unknown_field": 1}), ""),
        (json!({"team_id": "team_missing"}), "team_id"),
    ] {
        let (status, answer) = setup
            .admin(MASTER, Method::POST, "/admin/keys", &body)
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
        if !param.is_empty() {
            assert_eq!(answer["error"]["param"], param, "{body}: {answer}");
        }
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(message.len() < 2000, "{message}");
    }
    // Not JSON, and not UTF-8.
    for bytes in [
        b"{not json".to_vec(),
        vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
    ] {
        let response = setup
            .client
            .post(setup.url("/admin/keys"))
            .bearer_auth(MASTER)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 400);
    }
    // A wrong master key is a 401 (and never a timing oracle: it is compared as a digest).
    let (status, _) = setup
        .admin(
            "sy-master-key-for-tests-0123456780",
            Method::GET,
            "/admin/keys",
            &Value::Null,
        )
        .await;
    assert_eq!(status, 401);
}
