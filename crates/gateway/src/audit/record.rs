//! What an audit record says. A model call's record names who called (key, team, user ids),
//! what was asked and what answered, the outcome, tokens and cost; never the prompt or the
//! answer. An admin change's record is the change as the store recorded it, with secrets'
//! digests left out and e-mail addresses replaced by keyed hashes (HMAC-SHA256 under a key
//! derived from the signing key), which only the log's owner can make to look one up.

use ring::hmac;
use serde_json::{Map, Value, json};
use switchyard_audit::Record;
use switchyard_audit::canonical::ObjectWriter;
use switchyard_store::{AuditEntry, Change};
use switchyard_types::Usage;

/// One guard verdict as a record holds it: entity, count, action, detail.
pub type GuardNote = (
    std::sync::Arc<str>,
    u32,
    &'static str,
    Option<std::sync::Arc<str>>,
);

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
    /// What the guards found and did: entity, count, action, detail (never the values).
    pub guards: Vec<GuardNote>,
}

impl CallAudit {
    /// The record to append.
    pub fn entry(self) -> AuditEntry {
        AuditEntry {
            at: self.at,
            event: "call",
            team_id: self.team_id.clone(),
            key_id: self.key_id.clone(),
            body: Box::new(self),
        }
    }
}

/// Written field by field in canonical order (no map built, nothing sorted): the same bytes
/// as the record's fields put through RFC 8785 (checked in the tests).
impl Record for CallAudit {
    fn canonical(&self, seq: u64) -> Result<String, serde_json::Error> {
        let mut record = ObjectWriter::new();
        record.number("at", self.at)?;
        record.number("attempts", self.attempts)?;
        record.boolean("cache_hit", false)?;
        if let Some(code) = &self.code {
            record.text("code", code)?;
        }
        if let Some(nanos) = self.cost_nanos {
            // A decimal string: exact, and clear of JSON's 2^53 limit on integers.
            let cost = switchyard_ledger::Usd::from_nanos(nanos).to_string();
            record.text("cost_usd", &cost)?;
        }
        if let Some(deployment) = &self.deployment {
            record.text("deployment", deployment)?;
        }
        record.text("dialect", self.dialect)?;
        if let Some(error) = self.error {
            record.text("error", error)?;
        }
        record.text("event", "call")?;
        if let Some(group) = &self.group {
            record.text("group", group)?;
        }
        if !self.guards.is_empty() {
            let mut verdicts = Vec::with_capacity(self.guards.len());
            for (entity, count, action, detail) in &self.guards {
                let mut verdict = ObjectWriter::new();
                verdict.text("action", action)?;
                verdict.number("count", *count)?;
                if let Some(detail) = detail {
                    verdict.text("detail", detail)?;
                }
                verdict.text("entity", entity)?;
                verdicts.push(verdict);
            }
            record.objects("guards", verdicts)?;
        }
        if let Some(key) = &self.key_id {
            record.text("key", key)?;
        }
        record.number("latency_ms", self.latency_ms)?;
        record.text("model", &self.model)?;
        record.text("operation", self.operation)?;
        record.text("outcome", self.outcome)?;
        record.text("request_id", &self.request_id)?;
        record.number("seq", seq)?;
        record.number("status", self.status)?;
        record.boolean("stream", self.stream)?;
        if let Some(team) = &self.team_id {
            record.text("team", team)?;
        }
        let usage = &self.usage;
        let mut tokens = ObjectWriter::new();
        tokens.number("cache_read", usage.cache_read_tokens)?;
        tokens.number("cache_write", usage.cache_write_tokens)?;
        tokens.number("completion", usage.completion_tokens)?;
        tokens.number("prompt", usage.prompt_tokens)?;
        tokens.number("reasoning", usage.reasoning_tokens)?;
        record.object("tokens", tokens)?;
        if let Some(user) = &self.user_id {
            record.text("user", user)?;
        }
        record.number("v", 1u64)?;
        Ok(record.finish())
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
        body: Box::new(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_record_is_canonical_json_with_every_field() {
        let call = CallAudit {
            at: 1_796_610_014_340,
            request_id: "req_1".into(),
            key_id: Some("key_1".into()),
            team_id: Some("team_1".into()),
            user_id: Some("usr_1".into()),
            dialect: "anthropic",
            operation: "chat",
            model: "claude \"sonnet\"\n\u{1F600}".into(),
            group: Some("claude".into()),
            deployment: Some("anthropic/claude-sonnet-4-5".into()),
            stream: true,
            status: 402,
            outcome: "failed",
            error: Some("budget_exceeded"),
            code: Some("budget_exceeded".into()),
            usage: Usage {
                prompt_tokens: 12,
                completion_tokens: 3,
                cache_read_tokens: 4,
                cache_write_tokens: 5,
                reasoning_tokens: 1,
                ..Usage::default()
            },
            cost_nanos: Some(1_234_567),
            attempts: 2,
            latency_ms: 88,
            guards: vec![
                (std::sync::Arc::from("EMAIL"), 2, "tokenize", None),
                (
                    std::sync::Arc::from("PROMPT_INJECTION"),
                    1,
                    "flag",
                    Some(std::sync::Arc::from("score 0.93, tier model")),
                ),
            ],
        };
        let text = call.canonical(41).expect("json");
        let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            switchyard_audit::canonical(&parsed).expect("canonical"),
            text
        );
        assert_eq!(parsed["seq"], 41);
        assert_eq!(parsed["cost_usd"], "0.001234567");
        assert_eq!(parsed["tokens"]["cache_write"], 5);
        assert_eq!(parsed.as_object().map(Map::len), Some(24));
        assert_eq!(parsed["guards"][0]["count"], 2);
        assert_eq!(parsed["guards"][1]["detail"], "score 0.93, tier model");
    }

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
        let text = entry.body.canonical(3).expect("json");
        assert!(!text.contains("ada@"), "{text}");
        assert!(!text.contains("\"hash\""), "{text}");
        assert!(text.contains(&pseudonym(&key, "ada@example.com")));
        assert_eq!(entry.team_id.as_deref(), Some("team_1"));
        assert_eq!(entry.event, "admin");
    }
}
