use serde_json::{Value, json};
use switchyard_providers::{anthropic, openai};
use switchyard_types::ChatRequest;

use super::{Key, Scope, of};

const SCOPE: Scope<'static> = Scope {
    tenant: "team:t1",
    group: "gpt",
    namespace: None,
    policy: "",
    placeholders: &[],
    raw: None,
};

fn base() -> Value {
    json!({
        "model": "gpt",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Turn on the lights in the kitchen."}
        ],
        "temperature": 0.2,
        "max_tokens": 100
    })
}

fn request(body: &Value) -> ChatRequest {
    openai::request::decode(body.to_string().as_bytes()).expect("a valid request")
}

fn key(body: &Value) -> Key {
    of(&SCOPE, &request(body))
}

fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut body = base();
    change(&mut body);
    body
}

#[test]
fn what_leaves_the_answer_alone_leaves_the_key_alone() {
    let reference = key(&base());
    for same in [
        with(|body| body["stream"] = json!(true)),
        with(|body| {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }),
        with(|body| body["user"] = json!("someone")),
        with(|body| body["metadata"] = json!({"trace": "abc"})),
        with(|body| body["model"] = json!("gpt-alias")),
    ] {
        assert_eq!(key(&same), reference, "{same}");
    }
}

#[test]
fn everything_that_decides_the_answer_changes_the_key() {
    let reference = key(&base());
    let changes: Vec<Value> = vec![
        with(|body| body["messages"][1]["content"] = json!("Turn off the lights in the kitchen.")),
        with(|body| body["messages"][0]["content"] = json!("You are verbose.")),
        with(|body| body["temperature"] = json!(0.3)),
        with(|body| body["max_tokens"] = json!(101)),
        with(|body| body["seed"] = json!(7)),
        with(|body| body["n"] = json!(2)),
        with(|body| body["top_p"] = json!(0.5)),
        with(|body| body["stop"] = json!(["\n"])),
        with(|body| body["presence_penalty"] = json!(0.5)),
        with(|body| body["response_format"] = json!({"type": "json_object"})),
        with(|body| {
            body["tools"] = json!([{"type": "function", "function": {"name": "lights", "parameters": {"type": "object"}}}]);
        }),
        with(|body| {
            body["tools"] = json!([{"type": "function", "function": {"name": "lights", "parameters": {"type": "object"}}}]);
            body["tool_choice"] = json!("required");
        }),
        with(|body| body["reasoning_effort"] = json!("high")),
        with(|body| {
            body["messages"]
                .as_array_mut()
                .expect("messages")
                .push(json!({"role": "user", "content": "Please."}));
        }),
    ];
    for (index, changed) in changes.iter().enumerate() {
        assert_ne!(key(changed), reference, "change {index}: {changed}");
    }
}

#[test]
fn the_scope_is_part_of_the_key() {
    let request = request(&base());
    let reference = of(&SCOPE, &request);
    let pairs = [("[EMAIL_1]", "a@example.com")];
    let other_pairs = [("[EMAIL_1]", "b@example.com")];
    for scope in [
        Scope {
            tenant: "team:t2",
            ..SCOPE
        },
        Scope {
            tenant: "",
            ..SCOPE
        },
        Scope {
            group: "claude",
            ..SCOPE
        },
        Scope {
            namespace: Some("docs"),
            ..SCOPE
        },
        Scope {
            policy: "strict",
            ..SCOPE
        },
        Scope {
            placeholders: &pairs,
            ..SCOPE
        },
        Scope {
            raw: Some(b"{}"),
            ..SCOPE
        },
    ] {
        assert_ne!(of(&scope, &request), reference, "{scope:?}");
    }
    assert_ne!(
        of(
            &Scope {
                placeholders: &pairs,
                ..SCOPE
            },
            &request
        ),
        of(
            &Scope {
                placeholders: &other_pairs,
                ..SCOPE
            },
            &request
        ),
        "the same placeholder for another value"
    );
}

#[test]
fn both_dialects_asking_the_same_share_a_key() {
    let openai = request(&json!({
        "model": "gpt",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hello"}]
    }));
    let anthropic = anthropic::request::decode(
        json!({
            "model": "gpt",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Hello"}]
        })
        .to_string()
        .as_bytes(),
    )
    .expect("a valid request");
    assert_eq!(of(&SCOPE, &openai), of(&SCOPE, &anthropic));
}

#[test]
fn keys_read_back_from_hex() {
    let key = key(&base());
    assert_eq!(Key::parse(&key.hex()), Some(key));
    assert_eq!(Key::parse("zz"), None);
    assert_eq!(Key::parse(&"g".repeat(64)), None);
}

#[test]
fn the_semantic_scope_leaves_out_only_the_last_user_message() {
    let context = |body: &Value| super::context_of(&SCOPE, &request(body)).expect("a user message");
    let reference = context(&base());
    assert_eq!(
        context(&with(
            |body| body["messages"][1]["content"] = json!("Switch the kitchen lights on.")
        )),
        reference,
        "another wording of the question: the same scope"
    );
    for changed in [
        with(|body| body["messages"][0]["content"] = json!("You are verbose.")),
        with(|body| body["temperature"] = json!(0.9)),
    ] {
        assert_ne!(context(&changed), reference, "{changed}");
    }
    assert_ne!(reference, key(&base()), "never the exact key");
}

#[test]
fn blocks_kept_whole_are_keyed_by_their_content() {
    let asking = |document: &str, user: &str| {
        let body = json!({"model": "claude", "max_tokens": 100, "metadata": {"user_id": user},
            "messages": [{"role": "user", "content": [
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": document}},
                {"type": "text", "text": "Sum it up."}]}]});
        let request =
            anthropic::request::decode(body.to_string().as_bytes()).expect("a valid request");
        of(&SCOPE, &request)
    };
    // Another document, another answer; another end user, the same one.
    assert_ne!(
        asking("Q3 sales rose.", "u1"),
        asking("Q3 sales fell.", "u1")
    );
    assert_eq!(
        asking("Q3 sales rose.", "u1"),
        asking("Q3 sales rose.", "u2")
    );
}
