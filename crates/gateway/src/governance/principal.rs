//! Who is calling: a virtual key with its team and user, or the master key. Built once per key
//! lookup (and cached); read by authorization, the limits and, next, budgets and the ledger.

use switchyard_store::{Key, Limits, Role, Team, User};

use crate::router::ModelGroup;

/// The caller of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The key's id (`key_…`), or `master`.
    pub key_id: String,
    /// The key's alias.
    pub alias: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// What the key may do.
    pub role: Role,
    /// Tags recorded with each call.
    pub tags: Vec<String>,
    /// The key's own model list (empty: whatever the team allows).
    pub key_models: Vec<String>,
    /// The team's model list (empty: all).
    pub team_models: Vec<String>,
    /// The key's limits.
    pub key_limits: Limits,
    /// The team's limits, over all its keys.
    pub team_limits: Limits,
    /// The user's limits, over all their keys.
    pub user_limits: Limits,
    /// Refused from this Unix millisecond on.
    pub expires_at: Option<i64>,
    /// The key, or its team, is blocked.
    pub blocked: Option<&'static str>,
    /// The checks of the key's limits, made once.
    pub plan: super::limits::Plan,
    /// The SHA-256 (hex) of the key's current secret and of its previous one in its grace
    /// period: the cache entries to drop when the key changes.
    pub hashes: Vec<String>,
    /// The named guard policy the key (else its team) calls for (`metadata.guard_policy`).
    pub guard_policy: Option<String>,
    /// An admin let this key turn the guards off per request (`metadata.guards_opt_out`).
    pub guards_opt_out: bool,
}

/// The id the master key acts under.
pub const MASTER: &str = "master";

impl Principal {
    /// The master key: every right, no limits.
    pub fn master() -> Principal {
        Principal {
            key_id: MASTER.to_owned(),
            alias: Some("master key".to_owned()),
            team_id: None,
            user_id: None,
            role: Role::Admin,
            tags: Vec::new(),
            key_models: Vec::new(),
            team_models: Vec::new(),
            key_limits: Limits::default(),
            team_limits: Limits::default(),
            user_limits: Limits::default(),
            expires_at: None,
            blocked: None,
            plan: super::limits::Plan::default(),
            hashes: Vec::new(),
            guard_policy: None,
            guards_opt_out: true,
        }
    }

    /// The principal of `key`, with its team and user when it has them.
    pub fn of(key: Key, team: Option<Team>, user: Option<User>) -> Principal {
        let blocked = if key.blocked {
            Some("This key is blocked")
        } else if team.as_ref().is_some_and(|team| team.blocked) {
            Some("This key's team is blocked")
        } else {
            None
        };
        let mut hashes = vec![key.hash];
        hashes.extend(key.previous_hash);
        let text = |metadata: &serde_json::Map<String, serde_json::Value>, field: &str| {
            metadata
                .get(field)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let guard_policy = text(&key.metadata, "guard_policy").or_else(|| {
            team.as_ref()
                .and_then(|team| text(&team.metadata, "guard_policy"))
        });
        let guards_opt_out =
            key.metadata.get("guards_opt_out") == Some(&serde_json::Value::Bool(true));
        let (team_models, team_limits) =
            team.map_or_else(Default::default, |team| (team.models, team.limits));
        let mut principal = Principal {
            key_id: key.id,
            alias: key.alias,
            team_id: key.team_id,
            user_id: key.user_id,
            role: key.role,
            tags: key.tags,
            key_models: key.models,
            team_models,
            key_limits: key.limits,
            team_limits,
            user_limits: user.map(|user| user.limits).unwrap_or_default(),
            expires_at: key.expires_at,
            blocked,
            plan: super::limits::Plan::default(),
            hashes,
            guard_policy,
            guards_opt_out,
        };
        principal.plan = super::limits::Plan::of(&principal);
        principal
    }

    /// Why the key may not be used at `now` (Unix milliseconds), if it may not.
    pub fn refusal(&self, now: i64) -> Option<&'static str> {
        if let Some(reason) = self.blocked {
            return Some(reason);
        }
        if self.expires_at.is_some_and(|expiry| expiry <= now) {
            return Some("This key has expired");
        }
        None
    }

    /// Whether the key may make model calls at all (viewers read the admin API only).
    pub fn calls_models(&self) -> bool {
        self.role != Role::Viewer
    }

    /// Whether the key may use `group`: its own list and its team's both allow it (an empty
    /// list allows all), by the group's name or any alias, `*` matching any run of characters.
    pub fn may_use(&self, group: &ModelGroup) -> bool {
        allows(&self.key_models, group) && allows(&self.team_models, group)
    }
}

/// Whether `patterns` (empty: all) allow `group` by its name or an alias.
fn allows(patterns: &[String], group: &ModelGroup) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|pattern| {
            std::iter::once(&group.name)
                .chain(&group.aliases)
                .any(|name| matches(pattern, name))
        })
}

/// Whether `name` matches `pattern`, in which `*` stands for any run of characters.
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_of_characters() {
        for (pattern, name, expected) in [
            ("gpt-4o", "gpt-4o", true),
            ("gpt-4o", "gpt-4o-mini", false),
            ("gpt-*", "gpt-4o-mini", true),
            ("gpt-*", "gpt-", true),
            ("gpt-*", "claude", false),
            ("*", "anything", true),
            ("*-mini", "gpt-4o-mini", true),
            ("*-mini", "gpt-4o", false),
            ("openai/*/chat", "openai/gpt/chat", true),
            ("openai/*/chat", "openai/gpt/chatter", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(matches(pattern, name), expected, "{pattern} vs {name}");
        }
    }
}
