//! The admin API: keys, teams, users, "who am I", the record of changes, spend reports and
//! the audit log, as JSON over HTTP
//! under `/admin/`. Every route authenticates like a model call (the master key, or a virtual
//! key) and checks the caller's role; every change is written with its record (who, what,
//! before, after) in one transaction, and drops what it touched from every instance's key
//! cache. Errors are OpenAI-shaped, like the rest of the gateway's own errors.
//!
//! Roles: `admin` does everything; `team_admin` manages its own team's keys and users;
//! `viewer` reads (everything, or only its team when it has one); `member` reads itself.
//!
//! # Layout
//! - `keys`, `teams`, `users`: each entity's routes.
//! - `spend`: usage reports (daily aggregates and raw records, JSON or CSV).
//! - `audit`: the audit log's keys, checkpoints, records, proofs and export.
//! - `check`: field validation and the team ceiling on keys.

mod audit;
mod cache;
mod check;
mod keys;
mod spend;
mod teams;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::json;
use switchyard_store::{Role, StoreError};
use switchyard_types::{ApiError, ErrorKind, Origin, WireFormat};

use crate::app::AppState;
use crate::error::reply;
use crate::governance::{Governance, Principal};

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/whoami", get(whoami))
        .route("/admin/audit/keys", get(audit::keys))
        .route(
            "/admin/audit/checkpoint",
            get(audit::latest).post(audit::checkpoint),
        )
        .route("/admin/audit/records", get(audit::records))
        .route("/admin/audit/proof", get(audit::inclusion))
        .route("/admin/audit/consistency", get(audit::consistency))
        .route("/admin/audit/export", get(audit::export))
        .route("/admin/cache", get(cache::stats).delete(cache::invalidate))
        .route("/admin/changes", get(changes))
        .route("/admin/keys", post(keys::create).get(keys::list))
        .route(
            "/admin/keys/{id}",
            get(keys::get).patch(keys::update).delete(keys::delete),
        )
        .route("/admin/keys/{id}/block", post(keys::block))
        .route("/admin/keys/{id}/unblock", post(keys::unblock))
        .route("/admin/keys/{id}/rotate", post(keys::rotate))
        .route("/admin/teams", post(teams::create).get(teams::list))
        .route(
            "/admin/teams/{id}",
            get(teams::get).patch(teams::update).delete(teams::delete),
        )
        .route("/admin/spend", get(spend::daily))
        .route("/admin/spend/records", get(spend::records))
        .route("/admin/users", post(users::create).get(users::list))
        .route(
            "/admin/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
}

/// An authenticated admin request.
pub(crate) struct Caller {
    /// Who is asking.
    pub principal: Arc<Principal>,
    /// The keys and their store.
    pub governance: Arc<Governance>,
}

/// What an admin handler produces: a status and a JSON body, or an error.
pub(crate) type Reply = Result<(StatusCode, serde_json::Value), ApiError>;

impl Caller {
    /// The caller of an admin request with `headers`.
    pub async fn of(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(governance) = &state.shared.governance else {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                Origin::Client,
                "The admin API is off: the gateway serves without keys. Set a master key \
                 (auth.master_key or SWITCHYARD_MASTER_KEY) to turn it on",
            )
            .with_code("admin_api_disabled"));
        };
        let principal = governance.authenticate(headers, WireFormat::OpenAi).await?;
        Ok(Caller {
            principal,
            governance: Arc::clone(governance),
        })
    }

    /// The actor recorded with a change: the key's id (`master` for the master key).
    pub fn actor(&self) -> &str {
        &self.principal.key_id
    }

    /// Whether the caller may read what belongs to `team` (`None`: to no team).
    pub fn reads(&self, team: Option<&str>) -> bool {
        match self.principal.role {
            Role::Admin => true,
            Role::Viewer | Role::TeamAdmin => match &self.principal.team_id {
                None => self.principal.role == Role::Viewer,
                Some(own) => team == Some(own.as_str()),
            },
            Role::Member => false,
        }
    }

    /// Whether the caller may change what belongs to `team`.
    pub fn writes(&self, team: Option<&str>) -> bool {
        match self.principal.role {
            Role::Admin => true,
            Role::TeamAdmin => {
                self.principal.team_id.is_some() && self.principal.team_id.as_deref() == team
            }
            Role::Viewer | Role::Member => false,
        }
    }

    /// The team every list is limited to (`None`: all), or a refusal for callers who may list
    /// nothing.
    pub fn list_scope(&self) -> Result<Option<String>, ApiError> {
        match self.principal.role {
            Role::Admin => Ok(None),
            Role::Viewer if self.principal.team_id.is_none() => Ok(None),
            Role::Viewer | Role::TeamAdmin => match &self.principal.team_id {
                Some(team) => Ok(Some(team.clone())),
                None => Err(forbidden("This key's role needs a team to list anything")),
            },
            Role::Member => Err(forbidden(
                "Members can read only themselves (GET /admin/whoami)",
            )),
        }
    }

    /// Refuses unless the caller is an admin.
    pub fn admin_only(&self) -> Result<(), ApiError> {
        if self.principal.role == Role::Admin {
            Ok(())
        } else {
            Err(forbidden("Only admins may do this"))
        }
    }
}

/// Runs an admin handler and writes its answer.
pub(crate) async fn answer(
    state: AppState,
    headers: HeaderMap,
    handler: impl AsyncFnOnce(Caller) -> Reply,
) -> Response {
    let result = match Caller::of(&state, &headers).await {
        Ok(caller) => handler(caller).await,
        Err(error) => Err(error),
    };
    match result {
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(error) => reply(WireFormat::OpenAi, &error),
    }
}

/// A request body as `T`: 400 naming the field at fault.
pub(crate) fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        ApiError::invalid_request(
            format!("Invalid request body: {}", error.inner()),
            (path != ".").then_some(path),
        )
    })
}

/// For `#[serde(deserialize_with = "present")]` on an `Option<Option<T>>` field of a patch: a
/// field that is present (possibly `null`, which clears it) as `Some`, an absent one as `None`.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize as _;
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A change written only over the version it was checked against: `after` replaces the row
/// if the row's `updated_at` is still `version`, else the write is refused as a conflict.
pub(crate) fn unchanged_since<T: Send + 'static>(
    version: i64,
    after: T,
    updated_at: fn(&T) -> i64,
    what: &'static str,
) -> impl FnOnce(&mut T) -> Result<(), StoreError> + Send + 'static {
    move |row| {
        if updated_at(row) != version {
            return Err(StoreError::Conflict(format!(
                "The {what} changed meanwhile; try again"
            )));
        }
        *row = after;
        Ok(())
    }
}

/// A 403.
pub(crate) fn forbidden(message: &str) -> ApiError {
    ApiError::new(ErrorKind::PermissionDenied, Origin::Client, message).with_code("forbidden")
}

/// A store error as the admin API answers it.
pub(crate) fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(what) => ApiError::new(
            ErrorKind::NotFound,
            Origin::Client,
            format!("No such {what}"),
        )
        .with_code("not_found"),
        StoreError::Conflict(message) => {
            ApiError::new(ErrorKind::Conflict, Origin::Client, message).with_code("conflict")
        }
        StoreError::Invalid(message) => ApiError::invalid_request(message, None),
        error if error.is_unavailable() => ApiError::new(
            ErrorKind::Unavailable,
            Origin::Internal,
            "The store is not answering; try again shortly",
        )
        .with_code("store_unavailable"),
        error => {
            tracing::error!(%error, "Admin store operation failed");
            ApiError::new(ErrorKind::Internal, Origin::Internal, "The store failed")
                .with_code("store_error")
        }
    }
}

/// `GET /admin/whoami`: the caller's key, team, user, role, models and limits.
async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer(state, headers, async |caller| {
        let principal = &caller.principal;
        Ok((
            StatusCode::OK,
            json!({
                "key_id": principal.key_id,
                "alias": principal.alias,
                "team_id": principal.team_id,
                "user_id": principal.user_id,
                "role": principal.role,
                "models": principal.key_models,
                "team_models": principal.team_models,
                "limits": principal.key_limits,
                "team_limits": principal.team_limits,
                "user_limits": principal.user_limits,
                "tags": principal.tags,
                "expires_at": principal.expires_at,
            }),
        ))
    })
    .await
}

/// `GET /admin/changes?after=&limit=&target_kind=&target_id=`: the record of admin changes,
/// oldest first (admins and team-less viewers).
async fn changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: axum::extract::RawQuery,
) -> Response {
    answer(state, headers, async |caller| {
        if caller.list_scope()?.is_some() {
            return Err(forbidden(
                "Only admins and viewers without a team read the change record",
            ));
        }
        let query = Query::parse(
            query.0.as_deref(),
            &["after", "limit", "target_kind", "target_id"],
        )?;
        let after = query.number("after")?.unwrap_or(0);
        let limit = query.number("limit")?.unwrap_or(100);
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let kind = query.text("target_kind");
        let id = query.text("target_id");
        let changes = caller
            .governance
            .with_store(move |store| async move {
                store
                    .changes(after, kind.as_deref().zip(id.as_deref()), limit)
                    .await
            })
            .await
            .map_err(store_error)?;
        Ok((StatusCode::OK, json!({"data": changes})))
    })
    .await
}

/// A query string's parameters.
pub(crate) struct Query(std::collections::HashMap<String, String>);

impl Query {
    /// The parameters of `query`; 400 for any not in `allowed`.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut pairs = std::collections::HashMap::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::invalid_request(
                    format!(
                        "Unknown query parameter `{}` (expected one of: {})",
                        switchyard_types::clip(&name, 64),
                        allowed.join(", ")
                    ),
                    None,
                ));
            }
            pairs.insert(name.into_owned(), value.into_owned());
        }
        Ok(Query(pairs))
    }

    /// The text of parameter `name`.
    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// Parameter `name` as a whole number: 400 if it is not one.
    pub fn number(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.0
            .get(name)
            .map(|value| {
                value.parse().map_err(|_| {
                    ApiError::invalid_request(
                        format!("Query parameter `{name}` must be a whole number"),
                        Some(name.to_owned()),
                    )
                })
            })
            .transpose()
    }
}
