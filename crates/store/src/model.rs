//! What the store holds: teams, users, virtual keys and admin changes, as the gateway and the
//! admin API see them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
