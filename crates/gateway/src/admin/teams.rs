//! `/admin/teams`: teams, the models their keys may use and the limits over all of them.
//! Admins change teams; team admins and viewers read their own.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_store::{Limits, Page, StoreError, Team, new_id, now_ms};

use super::{Caller, Query, answer, body, check, store_error, unchanged_since};
use crate::app::AppState;
use crate::governance::Changed;

/// The body of `POST /admin/teams`, and of `PATCH` with every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Fields {
    name: Option<String>,
    models: Option<Vec<String>>,
    limits: Option<Limits>,
    metadata: Option<Map<String, Value>>,
    blocked: Option<bool>,
}

impl Fields {
    /// Writes the fields given into `team` and checks the result.
    fn apply(self, team: &mut Team) -> Result<(), switchyard_types::ApiError> {
        if let Some(name) = self.name {
            team.name = name;
        }
        if let Some(models) = self.models {
            team.models = models;
        }
        if let Some(limits) = self.limits {
            team.limits = limits;
        }
        if let Some(metadata) = self.metadata {
            team.metadata = metadata;
        }
        if let Some(blocked) = self.blocked {
            team.blocked = blocked;
        }
        check::label(&team.name, "name")?;
        check::labels(&team.models, "models")?;
        check::limits(&team.limits, "limits")?;
        check::metadata(&team.metadata)
    }
}

/// `POST /admin/teams` (admins).
pub async fn create(State(state): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Response {
    answer(state, headers, async |caller| {
        caller.admin_only()?;
        let fields: Fields = body(&bytes)?;
        if fields.name.is_none() {
            return Err(switchyard_types::ApiError::invalid_request(
                "name: a team needs a name",
                Some("name".to_owned()),
            ));
        }
        let now = now_ms();
        let mut team = Team {
            id: new_id("team"),
            name: String::new(),
            models: Vec::new(),
            limits: Limits::default(),
            metadata: Map::new(),
            blocked: false,
            created_at: now,
            updated_at: now,
        };
        fields.apply(&mut team)?;
        let (stored, actor) = (team.clone(), caller.actor().to_owned());
        caller
            .governance
            .with_store(move |store| async move { store.insert_team(&stored, &actor).await })
            .await
            .map_err(store_error)?;
        Ok((StatusCode::CREATED, json!(team)))
    })
    .await
}

/// `GET /admin/teams?after=&limit=`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    answer(state, headers, async |caller| {
        let query = Query::parse(query.0.as_deref(), &["after", "limit"])?;
        if let Some(own) = caller.list_scope()? {
            let team = read(&caller, &own).await?;
            return Ok((StatusCode::OK, json!({"data": [team]})));
        }
        let page = Page {
            after: query.text("after"),
            limit: query
                .number("limit")?
                .map(|limit| u32::try_from(limit.max(1)).unwrap_or(u32::MAX)),
            ..Page::default()
        };
        let teams = caller
            .governance
            .with_store(move |store| async move { store.teams(&page).await })
            .await
            .map_err(store_error)?;
        Ok((StatusCode::OK, json!({"data": teams})))
    })
    .await
}

/// The team `id`, if the caller may read it (404 otherwise).
async fn read(caller: &Caller, id: &str) -> Result<Team, switchyard_types::ApiError> {
    let in_team = caller.principal.team_id.as_deref() == Some(id);
    if !(in_team || caller.reads(Some(id))) {
        return Err(store_error(StoreError::NotFound("team")));
    }
    let id = id.to_owned();
    caller
        .governance
        .with_store(move |store| async move { store.team(&id).await })
        .await
        .map_err(store_error)
}

/// `GET /admin/teams/{id}`.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(state, headers, async |caller| {
        let team = read(&caller, &id).await?;
        Ok((StatusCode::OK, json!(team)))
    })
    .await
}

/// `PATCH /admin/teams/{id}` (admins): `{"blocked": true}` refuses every key of the team.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    answer(state, headers, async |caller| {
        caller.admin_only()?;
        let fields: Fields = body(&bytes)?;
        // Checked on a copy first: the store's closure can only refuse with a store error.
        let mut preview = read(&caller, &id).await?;
        let version = preview.updated_at;
        fields.apply(&mut preview)?;
        let (team_id, actor) = (id.clone(), caller.actor().to_owned());
        let (_, after) = caller
            .governance
            .with_store(move |store| async move {
                store
                    .update_team(
                        &team_id,
                        &actor,
                        "update",
                        unchanged_since(version, preview, |team| team.updated_at, "team"),
                    )
                    .await
            })
            .await
            .map_err(store_error)?;
        caller.governance.changed(Changed::Team(id));
        Ok((StatusCode::OK, json!(after)))
    })
    .await
}

/// `DELETE /admin/teams/{id}` (admins; refused while the team has users or keys).
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(state, headers, async |caller| {
        caller.admin_only()?;
        let (team_id, actor) = (id.clone(), caller.actor().to_owned());
        let deleted = caller
            .governance
            .with_store(move |store| async move { store.delete_team(&team_id, &actor).await })
            .await
            .map_err(store_error)?;
        caller.governance.changed(Changed::Team(id));
        Ok((StatusCode::OK, json!({"deleted": deleted})))
    })
    .await
}
