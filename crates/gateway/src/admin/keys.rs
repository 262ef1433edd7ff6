//! `/admin/keys`: create (the secret shown once), list, read, update, block, unblock, rotate
//! (the old secret kept for a grace period), delete.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_store::{Key, Limits, Page, Role, Team, User, new_id, now_ms};
use switchyard_types::{ApiError, ErrorKind, Origin};

use super::{Caller, Query, answer, body, check, forbidden, present, store_error, unchanged_since};
use crate::app::AppState;
use crate::governance::{Changed, secret};

/// The body of `POST /admin/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    alias: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
    role: Option<Role>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    metadata: Map<String, Value>,
    /// Unix milliseconds.
    expires_at: Option<i64>,
    /// From now.
    expires_in_secs: Option<f64>,
    #[serde(default)]
    blocked: bool,
}

/// The body of `PATCH /admin/keys/{id}`: only what it names changes; `null` clears alias
/// and expiry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Update {
    #[serde(deserialize_with = "present")]
    alias: Option<Option<String>>,
    #[serde(deserialize_with = "present")]
    team_id: Option<Option<String>>,
    role: Option<Role>,
    models: Option<Vec<String>>,
    limits: Option<Limits>,
    tags: Option<Vec<String>>,
    metadata: Option<Map<String, Value>>,
    #[serde(deserialize_with = "present")]
    expires_at: Option<Option<i64>>,
    blocked: Option<bool>,
}

/// The body of `POST /admin/keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Rotate {
    /// How long the old secret keeps working (0: it stops at once).
    grace_secs: f64,
}

/// The team and user a key belongs to, read from the store (400 when one does not exist).
async fn owners(
    caller: &Caller,
    team_id: Option<&str>,
    user_id: Option<&str>,
) -> Result<(Option<Team>, Option<User>), ApiError> {
    let (team_id, user_id) = (team_id.map(str::to_owned), user_id.map(str::to_owned));
    caller
        .governance
        .with_store(move |store| async move {
            let team = match &team_id {
                Some(id) => Some(store.team(id).await?),
                None => None,
            };
            let user = match &user_id {
                Some(id) => Some(store.user(id).await?),
                None => None,
            };
            Ok((team, user))
        })
        .await
        .map_err(|error| match error {
            switchyard_store::StoreError::NotFound(what) => {
                ApiError::invalid_request(format!("No such {what}"), Some(format!("{what}_id")))
            }
            error => store_error(error),
        })
}

/// The metadata fields that set a key's guards: only admins grant or change them.
const GUARD_FIELDS: [&str; 2] = ["guard_policy", "guards_opt_out"];

/// Refuses a change to a key's guard fields (`guard_policy`, `guards_opt_out`) by anyone but
/// an admin.
fn guard_grants(
    caller: &Caller,
    before: Option<&Map<String, Value>>,
    after: &Map<String, Value>,
) -> Result<(), ApiError> {
    if caller.principal.role == Role::Admin {
        return Ok(());
    }
    let changed = GUARD_FIELDS
        .iter()
        .any(|field| before.and_then(|before| before.get(*field)) != after.get(*field));
    if changed {
        return Err(forbidden(
            "Only admins set a key's guard_policy or guards_opt_out metadata",
        ));
    }
    Ok(())
}

/// Checks a key as it would be stored, with its team and user, for `caller`.
fn validate(
    key: &Key,
    team: Option<&Team>,
    user: Option<&User>,
    caller: &Caller,
) -> Result<(), ApiError> {
    if let Some(alias) = &key.alias {
        check::label(alias, "alias")?;
    }
    check::labels(&key.models, "models")?;
    check::labels(&key.tags, "tags")?;
    check::metadata(&key.metadata)?;
    check::limits(&key.limits, "limits")?;
    check::grant(key.role, caller.principal.role, "your own role")?;
    if let Some(user) = user {
        check::grant(key.role, user.role, "the user's role")?;
        if user.team_id.is_some() && user.team_id != key.team_id {
            return Err(ApiError::invalid_request(
                "team_id: the key's user belongs to another team",
                Some("team_id".to_owned()),
            ));
        }
    }
    if let Some(team) = team {
        check::ceiling(&key.models, &key.limits, team)?;
    }
    if !caller.writes(key.team_id.as_deref()) {
        return Err(forbidden("You may manage keys of your own team only"));
    }
    Ok(())
}

/// The key as the admin API shows it, with its secret when it was just made.
fn shown(key: &Key, secret: Option<&str>) -> Value {
    let mut value = serde_json::to_value(key).unwrap_or(Value::Null);
    if let (Some(secret), Value::Object(object)) = (secret, &mut value) {
        object.insert("key".to_owned(), json!(secret));
    }
    value
}

/// `POST /admin/keys`.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Response {
    answer(state, headers, async |caller| {
        let request: Create = body(&bytes)?;
        if !matches!(caller.principal.role, Role::Admin | Role::TeamAdmin) {
            return Err(forbidden("Only admins and team admins create keys"));
        }
        // A team admin's keys are its team's unless it says otherwise (and it may not).
        let mut team_id = request.team_id.or_else(|| {
            (caller.principal.role == Role::TeamAdmin)
                .then(|| caller.principal.team_id.clone())
                .flatten()
        });
        let (_, user) = owners(&caller, None, request.user_id.as_deref()).await?;
        if team_id.is_none() {
            team_id = user.as_ref().and_then(|user| user.team_id.clone());
        }
        let (team, _) = owners(&caller, team_id.as_deref(), None).await?;
        let now = now_ms();
        let expires_at = match (request.expires_at, request.expires_in_secs) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_request(
                    "Give expires_at or expires_in_secs, not both",
                    Some("expires_in_secs".to_owned()),
                ));
            }
            (Some(at), None) => Some(at),
            (None, Some(seconds)) if seconds.is_finite() && seconds > 0.0 => {
                Some(now.saturating_add((seconds * 1000.0).min(i64::MAX as f64) as i64))
            }
            (None, Some(_)) => {
                return Err(ApiError::invalid_request(
                    "expires_in_secs must be a positive number",
                    Some("expires_in_secs".to_owned()),
                ));
            }
            (None, None) => None,
        };
        let role = request
            .role
            .unwrap_or(match user.as_ref().map(|user| user.role) {
                Some(Role::Viewer) => Role::Viewer,
                _ => Role::Member,
            });
        let secret = secret::generate().map_err(|_| {
            ApiError::new(
                ErrorKind::Internal,
                Origin::Internal,
                "No randomness for a key",
            )
        })?;
        let key = Key {
            id: new_id("key"),
            hash: secret::hex(&secret::digest(&secret)),
            hint: secret::hint(&secret),
            alias: request.alias,
            team_id,
            user_id: request.user_id,
            role,
            models: request.models,
            limits: request.limits,
            tags: request.tags,
            metadata: request.metadata,
            blocked: request.blocked,
            expires_at,
            previous_hash: None,
            previous_valid_until: None,
            created_by: caller.actor().to_owned(),
            created_at: now,
            updated_at: now,
        };
        validate(&key, team.as_ref(), user.as_ref(), &caller)?;
        guard_grants(&caller, None, &key.metadata)?;
        let (stored, actor) = (key.clone(), caller.actor().to_owned());
        caller
            .governance
            .with_store(move |store| async move { store.insert_key(&stored, &actor).await })
            .await
            .map_err(store_error)?;
        Ok((StatusCode::CREATED, shown(&key, Some(&secret))))
    })
    .await
}

/// `GET /admin/keys?team_id=&user_id=&after=&limit=`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    answer(state, headers, async |caller| {
        let query = Query::parse(
            query.0.as_deref(),
            &["team_id", "user_id", "after", "limit"],
        )?;
        let mut page = Page {
            team_id: query.text("team_id"),
            user_id: query.text("user_id"),
            after: query.text("after"),
            limit: query
                .number("limit")?
                .map(|limit| u32::try_from(limit.max(1)).unwrap_or(u32::MAX)),
        };
        if caller.principal.role == Role::Member {
            // A member lists its own key.
            let key = read(&caller, &caller.principal.key_id).await?;
            return Ok((StatusCode::OK, json!({"data": [shown(&key, None)]})));
        }
        if let Some(team) = caller.list_scope()? {
            if page.team_id.as_ref().is_some_and(|asked| *asked != team) {
                return Err(forbidden("You may list keys of your own team only"));
            }
            page.team_id = Some(team);
        }
        let keys = caller
            .governance
            .with_store(move |store| async move { store.keys(&page).await })
            .await
            .map_err(store_error)?;
        let data: Vec<Value> = keys.iter().map(|key| shown(key, None)).collect();
        Ok((StatusCode::OK, json!({"data": data})))
    })
    .await
}

/// The key `id`, if the caller may read it (404 otherwise, as for a key that does not exist).
pub(super) async fn read(caller: &Caller, id: &str) -> Result<Key, ApiError> {
    let id = id.to_owned();
    let key = caller
        .governance
        .with_store(move |store| async move { store.key(&id).await })
        .await
        .map_err(store_error)?;
    let own = key.id == caller.principal.key_id;
    if own || caller.reads(key.team_id.as_deref()) {
        Ok(key)
    } else {
        Err(store_error(switchyard_store::StoreError::NotFound("key")))
    }
}

/// `GET /admin/keys/{id}`.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(state, headers, async |caller| {
        let key = read(&caller, &id).await?;
        Ok((StatusCode::OK, shown(&key, None)))
    })
    .await
}

/// Changes the key `id` with `change` as `action`, checking the result; drops the key from
/// every instance's cache. Returns the key after, and what `change` returned.
async fn change<T: Send + 'static>(
    caller: &Caller,
    id: &str,
    action: &'static str,
    change: impl FnOnce(&mut Key) -> Result<T, ApiError> + Send + 'static,
) -> Result<(Key, T), ApiError> {
    let current = read(caller, id).await?;
    if !caller.writes(current.team_id.as_deref()) {
        return Err(forbidden("You may manage keys of your own team only"));
    }
    // Apply the change to a copy first, to check it with the team and user it would have.
    let mut preview = current.clone();
    let output = change(&mut preview)?;
    let (team, user) = owners(
        caller,
        preview.team_id.as_deref(),
        preview.user_id.as_deref(),
    )
    .await?;
    validate(&preview, team.as_ref(), user.as_ref(), caller)?;
    guard_grants(caller, Some(&current.metadata), &preview.metadata)?;
    let (id, actor) = (id.to_owned(), caller.actor().to_owned());
    let (before, after) = caller
        .governance
        .with_store(move |store| async move {
            // The row as it is now, with the checked change: written only if no other change
            // came in between (the copy was made from the same version).
            store
                .update_key(
                    &id,
                    &actor,
                    action,
                    unchanged_since(current.updated_at, preview, |key| key.updated_at, "key"),
                )
                .await
        })
        .await
        .map_err(store_error)?;
    let mut hashes = vec![before.hash.clone()];
    hashes.extend(before.previous_hash.clone());
    caller.governance.changed(Changed::Key(hashes));
    Ok((after, output))
}

/// `PATCH /admin/keys/{id}`.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    answer(state, headers, async |caller| {
        let request: Update = body(&bytes)?;
        if request.team_id.is_some() && caller.principal.role != Role::Admin {
            return Err(forbidden("Only admins move keys between teams"));
        }
        let (key, ()) = change(&caller, &id, "update", move |key| {
            if let Some(alias) = request.alias {
                key.alias = alias;
            }
            if let Some(team_id) = request.team_id {
                key.team_id = team_id;
            }
            if let Some(role) = request.role {
                key.role = role;
            }
            if let Some(models) = request.models {
                key.models = models;
            }
            if let Some(limits) = request.limits {
                key.limits = limits;
            }
            if let Some(tags) = request.tags {
                key.tags = tags;
            }
            if let Some(metadata) = request.metadata {
                key.metadata = metadata;
            }
            if let Some(expires_at) = request.expires_at {
                key.expires_at = expires_at;
            }
            if let Some(blocked) = request.blocked {
                key.blocked = blocked;
            }
            Ok(())
        })
        .await?;
        Ok((StatusCode::OK, shown(&key, None)))
    })
    .await
}

/// `POST /admin/keys/{id}/block`: refused on every instance within a second.
pub async fn block(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    set_blocked(state, headers, id, true).await
}

/// `POST /admin/keys/{id}/unblock`.
pub async fn unblock(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    set_blocked(state, headers, id, false).await
}

async fn set_blocked(state: AppState, headers: HeaderMap, id: String, blocked: bool) -> Response {
    answer(state, headers, async |caller| {
        let action = if blocked { "block" } else { "unblock" };
        let (key, ()) = change(&caller, &id, action, move |key| {
            key.blocked = blocked;
            Ok(())
        })
        .await?;
        Ok((StatusCode::OK, shown(&key, None)))
    })
    .await
}

/// `POST /admin/keys/{id}/rotate` (`{"grace_secs": 3600}`): a new secret, shown once; the old
/// one keeps working for the grace period.
pub async fn rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    answer(state, headers, async |caller| {
        let request: Rotate = if bytes.is_empty() {
            Rotate::default()
        } else {
            body(&bytes)?
        };
        if !request.grace_secs.is_finite() || !(0.0..=30.0 * 86_400.0).contains(&request.grace_secs)
        {
            return Err(ApiError::invalid_request(
                "grace_secs must be between 0 and 2592000 (30 days)",
                Some("grace_secs".to_owned()),
            ));
        }
        let secret = secret::generate().map_err(|_| {
            ApiError::new(
                ErrorKind::Internal,
                Origin::Internal,
                "No randomness for a key",
            )
        })?;
        let (hash, hint) = (secret::hex(&secret::digest(&secret)), secret::hint(&secret));
        let grace_ms = (request.grace_secs * 1000.0) as i64;
        let (key, ()) = change(&caller, &id, "rotate", move |key| {
            let old = std::mem::replace(&mut key.hash, hash);
            key.hint = hint;
            if grace_ms > 0 {
                key.previous_hash = Some(old);
                key.previous_valid_until = Some(now_ms().saturating_add(grace_ms));
            } else {
                key.previous_hash = None;
                key.previous_valid_until = None;
            }
            Ok(())
        })
        .await?;
        Ok((StatusCode::OK, shown(&key, Some(&secret))))
    })
    .await
}

/// `DELETE /admin/keys/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(state, headers, async |caller| {
        let current = read(&caller, &id).await?;
        if !caller.writes(current.team_id.as_deref()) {
            return Err(forbidden("You may manage keys of your own team only"));
        }
        let actor = caller.actor().to_owned();
        let deleted = caller
            .governance
            .with_store(move |store| async move { store.delete_key(&id, &actor).await })
            .await
            .map_err(store_error)?;
        let mut hashes = vec![deleted.hash.clone()];
        hashes.extend(deleted.previous_hash.clone());
        caller.governance.changed(Changed::Key(hashes));
        Ok((StatusCode::OK, json!({"deleted": shown(&deleted, None)})))
    })
    .await
}
