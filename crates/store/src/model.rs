//! What the store holds: teams, users, virtual keys, admin changes and spend records, as the
//! gateway and the admin API see them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_ledger::Budget;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the admin API; makes no model calls.
    Viewer,
    /// Calls the models its key allows; reads only itself in the admin API.
    Member,
    /// Calls models, and manages its own team's keys and users.
    TeamAdmin,
    /// Everything.
    Admin,
}

impl Role {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::TeamAdmin => "team_admin",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Role> {
        [Role::Viewer, Role::Member, Role::TeamAdmin, Role::Admin]
            .into_iter()
            .find(|role| role.as_str() == name)
    }
}

/// Rate limits of a key, team or user. `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (prompt and completion) per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u64>,
    /// Limits per model group, on top of the ones above (keys only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelLimits>,
    /// The most that may be spent per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

impl Limits {
    /// No limit at all.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// Limits on one model group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelLimits {
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
}

/// A team: the models its keys may use and limits they cannot exceed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    /// `team_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Model groups the team's keys may use (names, aliases, `*` wildcards); empty: all.
    pub models: Vec<String>,
    /// Limits over all of the team's keys together.
    pub limits: Limits,
    /// Free-form.
    pub metadata: Map<String, Value>,
    /// Every key of a blocked team is refused.
    pub blocked: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// A user: a person or service that keys belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `user_…`.
    pub id: String,
    /// Unique when set.
    pub email: Option<String>,
    /// The team the user belongs to.
    pub team_id: Option<String>,
    /// The highest role the user's keys may have.
    pub role: Role,
    /// Limits over all of the user's keys together.
    pub limits: Limits,
    /// Free-form.
    pub metadata: Map<String, Value>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// A virtual key as stored: everything but its secret, which is never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// `key_…`: names the key in the admin API.
    pub id: String,
    /// The SHA-256 of the secret, hex. Not shown by the admin API.
    #[serde(skip)]
    pub hash: String,
    /// The secret's prefix and last four characters, to recognise it by.
    pub hint: String,
    /// A name for people.
    pub alias: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// What the key may do.
    pub role: Role,
    /// Model groups the key may use (names, aliases, `*` wildcards); empty: all its team allows.
    pub models: Vec<String>,
    /// The key's own limits.
    pub limits: Limits,
    /// Tags recorded with every call made with the key.
    pub tags: Vec<String>,
    /// Free-form.
    pub metadata: Map<String, Value>,
    /// Refused while set.
    pub blocked: bool,
    /// Refused from this Unix millisecond on.
    pub expires_at: Option<i64>,
    /// The hash of the secret before the last rotation. Not shown by the admin API.
    #[serde(skip)]
    pub previous_hash: Option<String>,
    /// The secret before the last rotation works until this Unix millisecond.
    pub previous_valid_until: Option<i64>,
    /// Who created the key.
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// One change made through the admin API: who, what, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the record, increasing.
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// Who made it (a key id, or `master`).
    pub actor: String,
    /// `create`, `update`, `block`, `rotate`, `delete`…
    pub action: String,
    /// `key`, `team` or `user`.
    pub target_kind: String,
    /// The id of what changed.
    pub target_id: String,
    /// What it was (absent for a creation).
    pub before: Option<Value>,
    /// What it is (absent for a deletion).
    pub after: Option<Value>,
}

/// Which rows a list returns: a filter and a page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Page {
    /// Only rows of this team.
    pub team_id: Option<String>,
    /// Only rows of this user.
    pub user_id: Option<String>,
    /// Rows after this id (the last one of the previous page).
    pub after: Option<String>,
    /// At most this many rows (at most 1000; 100 when unset).
    pub limit: Option<u32>,
}

impl Page {
    /// The number of rows a page may hold.
    pub(crate) fn size(&self) -> i64 {
        i64::from(self.limit.unwrap_or(100).clamp(1, 1000))
    }
}

/// One model call, as the ledger records it. A field missing when read is its default (the
/// store leaves false, zero and empty ones out of a record's `detail`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpendRecord {
    /// Position in the record (0 until written).
    #[serde(default)]
    pub seq: i64,
    /// The request's id (`x-request-id`).
    pub request_id: String,
    /// When the call ended, Unix milliseconds.
    pub at: i64,
    /// The caller's key.
    pub key_id: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// The model group asked for.
    pub model: String,
    /// The deployment that answered (`provider/model`).
    pub deployment: Option<String>,
    /// `chat` or `embeddings`.
    pub kind: String,
    /// The key's tags and the request's (`x-switchyard-tags`).
    pub tags: Vec<String>,
    /// Input tokens, cache reads and writes included.
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    /// Input tokens read from the provider's cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's cache.
    pub cache_write_tokens: u64,
    /// Output tokens spent reasoning.
    pub reasoning_tokens: u64,
    /// What the call cost, nano-dollars.
    pub cost_nanos: i64,
    /// Some token counts were counted by the gateway, not reported by the provider.
    pub estimated: bool,
    /// The deployment has no price for input or output tokens: the cost may be short.
    pub unpriced: bool,
    /// Answered from the gateway's cache.
    pub cache_hit: bool,
    /// Answered as a stream.
    pub stream: bool,
    /// The HTTP status the client got (200 for a stream that started).
    pub status: u16,
    /// Upstream calls made.
    pub attempts: u32,
    /// From the request's arrival to its end, milliseconds.
    pub latency_ms: i64,
    /// From the request's arrival to the first token, milliseconds (streams).
    pub ttft_ms: Option<i64>,
    /// What the guards found and did on the call (counts per entity, never the values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardVerdict>,
}

/// A spend record to be written, its text borrowed (from a call's context, or from a queued
/// record's bytes): a [`SpendRecord`] without its `seq`, which the store gives it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SpendRow<'a> {
    /// The request's id (`x-request-id`).
    pub request_id: &'a str,
    /// When the call ended, Unix milliseconds.
    pub at: i64,
    /// The caller's key.
    pub key_id: Option<&'a str>,
    /// The key's team.
    pub team_id: Option<&'a str>,
    /// The key's user.
    pub user_id: Option<&'a str>,
    /// The model group asked for.
    pub model: &'a str,
    /// The deployment that answered (`provider/model`).
    pub deployment: Option<&'a str>,
    /// `chat` or `embeddings`.
    pub kind: &'a str,
    /// The key's tags and the request's.
    pub tags: Vec<&'a str>,
    /// Input tokens, cache reads and writes included.
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    /// Input tokens read from the provider's cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's cache.
    pub cache_write_tokens: u64,
    /// Output tokens spent reasoning.
    pub reasoning_tokens: u64,
    /// What the call cost, nano-dollars.
    pub cost_nanos: i64,
    /// Some token counts were counted by the gateway.
    pub estimated: bool,
    /// The deployment has no price for input or output tokens.
    pub unpriced: bool,
    /// Answered from the gateway's cache.
    pub cache_hit: bool,
    /// Answered as a stream.
    pub stream: bool,
    /// The HTTP status recorded.
    pub status: u16,
    /// Upstream calls made.
    pub attempts: u32,
    /// From the request's arrival to its end, milliseconds.
    pub latency_ms: i64,
    /// From the request's arrival to the first token, milliseconds.
    pub ttft_ms: Option<i64>,
    /// What the guards found and did.
    pub guards: Vec<GuardVerdict>,
}

impl<'a> From<&'a SpendRecord> for SpendRow<'a> {
    fn from(record: &'a SpendRecord) -> SpendRow<'a> {
        SpendRow {
            request_id: &record.request_id,
            at: record.at,
            key_id: record.key_id.as_deref(),
            team_id: record.team_id.as_deref(),
            user_id: record.user_id.as_deref(),
            model: &record.model,
            deployment: record.deployment.as_deref(),
            kind: &record.kind,
            tags: record.tags.iter().map(String::as_str).collect(),
            prompt_tokens: record.prompt_tokens,
            completion_tokens: record.completion_tokens,
            cache_read_tokens: record.cache_read_tokens,
            cache_write_tokens: record.cache_write_tokens,
            reasoning_tokens: record.reasoning_tokens,
            cost_nanos: record.cost_nanos,
            estimated: record.estimated,
            unpriced: record.unpriced,
            cache_hit: record.cache_hit,
            stream: record.stream,
            status: record.status,
            attempts: record.attempts,
            latency_ms: record.latency_ms,
            ttft_ms: record.ttft_ms,
            guards: record.guards.clone(),
        }
    }
}

/// One guard's verdict on a call: an entity, what was done, how many times.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardVerdict {
    /// The entity (`EMAIL`, `PROMPT_INJECTION`, `SYSTEM_PROMPT`, a hook's name…).
    pub entity: String,
    /// What was done (`tokenize`, `block`, `flag`, `output_redact`…).
    pub action: String,
    /// How many times.
    pub count: u32,
    /// What else the guard reports, never a value (the injection score and tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What the daily aggregates are kept by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Every call (one value, the empty string).
    All,
    /// By key id.
    Key,
    /// By team id.
    Team,
    /// By user id.
    User,
    /// By model group.
    Model,
    /// By tag (a call with several tags counts under each).
    Tag,
}

impl Dimension {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::All => "all",
            Dimension::Key => "key",
            Dimension::Team => "team",
            Dimension::User => "user",
            Dimension::Model => "model",
            Dimension::Tag => "tag",
        }
    }

    /// The dimension named `name`.
    pub fn parse(name: &str) -> Option<Dimension> {
        [
            Dimension::All,
            Dimension::Key,
            Dimension::Team,
            Dimension::User,
            Dimension::Model,
            Dimension::Tag,
        ]
        .into_iter()
        .find(|dimension| dimension.as_str() == name)
    }
}

/// One day's totals for one value of a dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Daily {
    /// What it is kept by.
    pub dimension: Dimension,
    /// The key, team, user, model or tag.
    pub value: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Calls.
    pub requests: u64,
    /// Calls that ended in an error status.
    pub failures: u64,
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Cache reads.
    pub cache_read_tokens: u64,
    /// Cache writes.
    pub cache_write_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Spend, nano-dollars.
    pub cost_nanos: i64,
}

/// Which raw spend records to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendQuery {
    /// Records after this position.
    pub after: i64,
    /// From this Unix millisecond.
    pub from_ms: i64,
    /// Before this Unix millisecond.
    pub to_ms: i64,
    /// Only this key's.
    pub key_id: Option<String>,
    /// Only this team's.
    pub team_id: Option<String>,
    /// Only this user's.
    pub user_id: Option<String>,
    /// Only this model group's.
    pub model: Option<String>,
    /// At most this many (at most 10,000).
    pub limit: u32,
}

impl Default for SpendQuery {
    fn default() -> SpendQuery {
        SpendQuery {
            after: 0,
            from_ms: 0,
            to_ms: i64::MAX,
            key_id: None,
            team_id: None,
            user_id: None,
            model: None,
            limit: 1000,
        }
    }
}
