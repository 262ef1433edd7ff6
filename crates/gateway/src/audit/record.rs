//! What an audit record says. A model call's record names who called (key, team, user ids),
//! what was asked and what answered, the outcome, tokens and cost; never the prompt or the
//! answer. An admin change's record is the change as the store recorded it, with secrets'
//! digests left out and e-mail addresses replaced by keyed hashes (HMAC-SHA256 under a key
//! derived from the signing key), which only the log's owner can make to look one up.

use ring::hmac;
use serde_json::{Map, Value, json};
use switchyard_store::{AuditEntry, Change};
use switchyard_types::Usage;

/// A model call, as the request's end hands it over (built on the worker: plain fields, no
/// JSON; the writer makes the record).
#[derive(Debug, Clone)]
pub struct CallAudit {
    /// When it ended, Unix milliseconds.
    pub at: i64,
    /// `x-request-id`.
    pub request_id: String,
    /// The caller's key, team and user.
    pub key_id: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// The client's dialect (`openai`, `anthropic`).
    pub dialect: &'static str,
    /// `chat` or `embeddings`.
    pub operation: &'static str,
    /// The model the client asked for (cut to a few hundred characters).
    pub model: String,
    /// The model group it resolved to.
    pub group: Option<String>,
    /// The deployment that answered (`provider/model`).
    pub deployment: Option<String>,
    /// Answered as a stream.
    pub stream: bool,
    /// The status the client got.
    pub status: u16,
    /// `complete`, `failed` or `disconnected`.
    pub outcome: &'static str,
    /// The error's kind, when it failed.
    pub error: Option<&'static str>,
    /// The error's code, when it has one (`budget_exceeded`, `model_not_allowed`).
    pub code: Option<String>,
    /// Tokens by kind.
    pub usage: Usage,
    /// What it cost, nano-dollars (`None`: not priced).
    pub cost_nanos: Option<i64>,
    /// Upstream calls made.
    pub attempts: u32,
    /// From arrival to end, milliseconds.
    pub latency_ms: i64,
}

impl CallAudit {
    /// The record to append.
    pub fn entry(self) -> AuditEntry {
        let mut body = Map::new();
        body.insert("v".into(), json!(1));
        body.insert("event".into(), json!("call"));
        body.insert("at".into(), json!(self.at));
        body.insert("request_id".into(), json!(self.request_id));
        insert_some(&mut body, "key", self.key_id.clone());
        insert_some(&mut body, "team", self.team_id.clone());
        insert_some(&mut body, "user", self.user_id);
        body.insert("dialect".into(), json!(self.dialect));
        body.insert("operation".into(), json!(self.operation));
        body.insert("model".into(), json!(self.model));
        insert_some(&mut body, "group", self.group);
        insert_some(&mut body, "deployment", self.deployment);
        body.insert("stream".into(), json!(self.stream));
        body.insert("status".into(), json!(self.status));
        body.insert("outcome".into(), json!(self.outcome));
        insert_some(&mut body, "error", self.error);
        insert_some(&mut body, "code", self.code);
        let usage = &self.usage;
        body.insert(
            "tokens".into(),
            json!({
                "prompt": usage.prompt_tokens,
                "completion": usage.completion_tokens,
                "cache_read": usage.cache_read_tokens,
                "cache_write": usage.cache_write_tokens,
                "reasoning": usage.reasoning_tokens,
            }),
        );
        if let Some(nanos) = self.cost_nanos {
            // A decimal string: exact, and clear of JSON's 2^53 limit on integers.
            let cost = switchyard_ledger::Usd::from_nanos(nanos).to_string();
            body.insert("cost_usd".into(), json!(cost));
        }
        body.insert("cache_hit".into(), json!(false));
        body.insert("attempts".into(), json!(self.attempts));
        body.insert("latency_ms".into(), json!(self.latency_ms));
        AuditEntry {
            at: self.at,
            event: "call",
            team_id: self.team_id,
            key_id: self.key_id,
            body,
        }
    }
}

fn insert_some(body: &mut Map<String, Value>, name: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        body.insert(name.to_owned(), value.into());
    }
}

/// Fields of stored entities that never go into the log: the digests of key secrets.
const LEFT_OUT: [&str; 2] = ["hash", "previous_hash"];

/// Fields replaced by a keyed hash: personal data.
const PSEUDONYMISED: [&str; 1] = ["email"];

/// The keyed hash that stands for `value` in the log.
pub fn pseudonym(key: &hmac::Key, value: &str) -> String {
    let tag = hmac::sign(key, value.as_bytes());
    let hex: String = tag
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("hmac-sha256:{hex}")
}

fn scrub(value: Option<Value>, key: &hmac::Key) -> Value {
    let Some(Value::Object(mut fields)) = value else {
        return Value::Null;
    };
    for name in LEFT_OUT {
        fields.remove(name);
    }
    for name in PSEUDONYMISED {
        if let Some(Value::String(text)) = fields.get(name) {
            let hashed = pseudonym(key, text);
            fields.insert(name.to_owned(), Value::String(hashed));
        }
    }
    Value::Object(fields)
}

/// The record of an admin change.
pub fn admin_entry(change: Change, key: &hmac::Key) -> AuditEntry {
    // The team concerned: the team itself, or the team of the key or user changed.
    let team_of = |value: &Option<Value>| {
        value
            .as_ref()
            .and_then(|v| v.get("team_id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let team_id = if change.target_kind == "team" {
        Some(change.target_id.clone())
    } else {
        team_of(&change.after).or_else(|| team_of(&change.before))
    };
    let key_id = (change.target_kind == "key").then(|| change.target_id.clone());
    let mut body = Map::new();
    body.insert("v".into(), json!(1));
    body.insert("event".into(), json!("admin"));
    body.insert("at".into(), json!(change.at));
    body.insert("change".into(), json!(change.seq));
    body.insert("actor".into(), json!(change.actor));
    body.insert("action".into(), json!(change.action));
    body.insert(
        "target".into(),
        json!({"kind": change.target_kind, "id": change.target_id}),
    );
    insert_some(&mut body, "team", team_id.clone());
    body.insert("before".into(), scrub(change.before, key));
    body.insert("after".into(), scrub(change.after, key));
    AuditEntry {
        at: change.at,
        event: "admin",
        team_id,
        key_id,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_record_holds_no_secret_digest_and_no_address() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let change = Change {
            seq: 7,
            at: 1,
            actor: "master".into(),
            action: "update".into(),
            target_kind: "user".into(),
            target_id: "usr_1".into(),
            before: Some(json!({"id": "usr_1", "email": "ada@example.com", "team_id": "team_1"})),
            after: Some(json!({"id": "usr_1", "email": "ada@example.org", "hash": "abc"})),
        };
        let entry = admin_entry(change, &key);
        let text = switchyard_audit::canonical(&entry.body).expect("json");
        assert!(!text.contains("ada@"), "{text}");
        assert!(!text.contains("\"hash\""), "{text}");
        assert!(text.contains(&pseudonym(&key, "ada@example.com")));
        assert_eq!(entry.team_id.as_deref(), Some("team_1"));
        assert_eq!(entry.event, "admin");
    }
}
