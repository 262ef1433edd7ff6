//! `/admin/users`: people and services that keys belong to, each with the highest role their
//! keys may have. Admins manage all; team admins manage their own team's.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_store::{Limits, Page, Role, StoreError, User, new_id, now_ms};
use switchyard_types::ApiError;

use super::{Caller, Query, answer, body, check, forbidden, present, store_error, unchanged_since};
use crate::app::AppState;
use crate::governance::Changed;

/// The body of `POST /admin/users`, and of `PATCH` with every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Fields {
    #[serde(deserialize_with = "present")]
    email: Option<Option<String>>,
    #[serde(deserialize_with = "present")]
    team_id: Option<Option<String>>,
    role: Option<Role>,
    limits: Option<Limits>,
    metadata: Option<Map<String, Value>>,
}

impl Fields {
    /// Writes the fields given into `user` and checks the result for `caller`.
    fn apply(self, user: &mut User, caller: &Caller) -> Result<(), ApiError> {
        if self.team_id.is_some() && caller.principal.role != Role::Admin {
            return Err(forbidden("Only admins move users between teams"));
        }
        if let Some(email) = self.email {
            user.email = email;
        }
        if let Some(team_id) = self.team_id {
            user.team_id = team_id;
        }
        if let Some(role) = self.role {
            user.role = role;
        }
        if let Some(limits) = self.limits {
            user.limits = limits;
        }
        if let Some(metadata) = self.metadata {
            user.metadata = metadata;
        }
        if let Some(email) = &user.email {
            check::label(email, "email")?;
        }
        check::limits(&user.limits, "limits")?;
        check::metadata(&user.metadata)?;
        check::grant(user.role, caller.principal.role, "your own role")?;
        if !caller.writes(user.team_id.as_deref()) {
            return Err(forbidden("You may manage users of your own team only"));
        }
        Ok(())
    }
}

/// `POST /admin/users`.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Response {
    answer(state, headers, async |caller| {
        let mut fields: Fields = body(&bytes)?;
        // A team admin's users are its team's.
        if caller.principal.role == Role::TeamAdmin && fields.team_id.is_none() {
            fields.team_id = Some(caller.principal.team_id.clone());
        }
        let team_id = fields.team_id.clone().flatten();
        let now = now_ms();
        let mut user = User {
            id: new_id("user"),
            email: None,
            team_id: None,
            role: Role::Member,
            limits: Limits::default(),
            metadata: Map::new(),
            created_at: now,
            updated_at: now,
        };
        // A new user's team is set, not moved; `apply` checks the caller may write to it.
        user.team_id = fields.team_id.take().flatten();
        fields.apply(&mut user, &caller)?;
        if let Some(team) = team_id {
            caller
                .governance
                .with_store(move |store| async move { store.team(&team).await })
                .await
                .map_err(|error| match error {
                    StoreError::NotFound(_) => {
                        ApiError::invalid_request("No such team", Some("team_id".to_owned()))
                    }
                    error => store_error(error),
                })?;
        }
        let (stored, actor) = (user.clone(), caller.actor().to_owned());
        caller
            .governance
            .with_store(move |store| async move { store.insert_user(&stored, &actor).await })
            .await
            .map_err(store_error)?;
        Ok((StatusCode::CREATED, json!(user)))
    })
    .await
}

/// `GET /admin/users?team_id=&after=&limit=`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    answer(state, headers, async |caller| {
        let query = Query::parse(query.0.as_deref(), &["team_id", "after", "limit"])?;
        let mut page = Page {
            team_id: query.text("team_id"),
            after: query.text("after"),
            limit: query
                .number("limit")?
                .map(|limit| u32::try_from(limit.max(1)).unwrap_or(u32::MAX)),
            ..Page::default()
        };
        if let Some(team) = caller.list_scope()? {
            if page.team_id.as_ref().is_some_and(|asked| *asked != team) {
                return Err(forbidden("You may list users of your own team only"));
            }
            page.team_id = Some(team);
        }
        let users = caller
            .governance
            .with_store(move |store| async move { store.users(&page).await })
            .await
            .map_err(store_error)?;
        Ok((StatusCode::OK, json!({"data": users})))
    })
    .await
}

/// The user `id`, if the caller may read it (404 otherwise).
pub(super) async fn read(caller: &Caller, id: &str) -> Result<User, ApiError> {
    let user_id = id.to_owned();
    let user = caller
        .governance
        .with_store(move |store| async move { store.user(&user_id).await })
        .await
        .map_err(store_error)?;
    let own = caller.principal.user_id.as_deref() == Some(id);
    if own || caller.reads(user.team_id.as_deref()) {
        Ok(user)
    } else {
        Err(store_error(StoreError::NotFound("user")))
    }
}

/// `GET /admin/users/{id}`.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(state, headers, async |caller| {
        let user = read(&caller, &id).await?;
        Ok((StatusCode::OK, json!(user)))
    })
    .await
}

/// `PATCH /admin/users/{id}`.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    answer(state, headers, async |caller| {
        let fields: Fields = body(&bytes)?;
        let mut preview = read(&caller, &id).await?;
        if !caller.writes(preview.team_id.as_deref()) {
            return Err(forbidden("You may manage users of your own team only"));
        }
        let version = preview.updated_at;
        fields.apply(&mut preview, &caller)?;
        let (user_id, actor) = (id.clone(), caller.actor().to_owned());
        let (_, after) = caller
            .governance
            .with_store(move |store| async move {
                store
                    .update_user(
                        &user_id,
                        &actor,
                        "update",
                        unchanged_since(version, preview, |user| user.updated_at, "user"),
                    )
                    .await
            })
            .await
            .map_err(store_error)?;
        caller.governance.changed(Changed::User(id));
        Ok((StatusCode::OK, json!(after)))
    })
    .await
}

/// `DELETE /admin/users/{id}` (refused while the user has keys).
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(state, headers, async |caller| {
        let current = read(&caller, &id).await?;
        if !caller.writes(current.team_id.as_deref()) {
            return Err(forbidden("You may manage users of your own team only"));
        }
        let (user_id, actor) = (id.clone(), caller.actor().to_owned());
        let deleted = caller
            .governance
            .with_store(move |store| async move { store.delete_user(&user_id, &actor).await })
            .await
            .map_err(store_error)?;
        caller.governance.changed(Changed::User(id));
        Ok((StatusCode::OK, json!({"deleted": deleted})))
    })
    .await
}
