//! The answer cache through the admin API: what it holds (`GET /admin/cache`), and
//! invalidation (`DELETE /admin/cache?key=…|namespace=…|tag=…|all=true`, with `team=…` to
//! limit it to one team's entries). Admins act on any entry; team admins on their team's only
//! (their deletions are limited to it whatever they ask); viewers read the figures.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use switchyard_store::Role;
use switchyard_types::{ApiError, ErrorKind, Origin};

use super::{Caller, Query, answer, forbidden};
use crate::app::AppState;
use crate::cache::key::Key;
use crate::cache::{Cache, Selector, What};

/// The cache, or a 404 saying it is off.
fn cache(state: &AppState) -> Result<&Cache, ApiError> {
    state.shared.cache.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            Origin::Client,
            "Answers are not cached (cache.enabled: false, and no group sets cache: true)",
        )
        .with_code("cache_disabled")
    })
}

fn unavailable(error: &str) -> ApiError {
    ApiError::new(
        ErrorKind::Unavailable,
        Origin::Internal,
        format!("The cache cannot answer: {error}"),
    )
    .with_code("cache_unavailable")
}

/// `GET /admin/cache`: the backend, entries and bytes.
pub(super) async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer(state.clone(), headers, async move |caller: Caller| {
        if caller.principal.role == Role::Member {
            return Err(forbidden("Members cannot read the cache's figures"));
        }
        let cache = cache(&state)?;
        let stats = cache.stats().await.map_err(|error| unavailable(&error))?;
        Ok((
            StatusCode::OK,
            json!({
                "backend": cache.backend_name(),
                "entries": stats.entries,
                "bytes": stats.bytes,
                "ttl_secs": cache.settings.ttl.as_secs_f64(),
                "max_entry_bytes": cache.settings.max_entry_bytes,
                "single_flight": cache.settings.single_flight,
            }),
        ))
    })
    .await
}

/// `DELETE /admin/cache?…`: drops the entries named; how many.
pub(super) async fn invalidate(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer(state.clone(), headers, async move |caller: Caller| {
        let query = Query::parse(
            query.as_deref(),
            &["key", "namespace", "tag", "all", "team"],
        )?;
        let named: Vec<What> = [
            query
                .text("key")
                .map(|text| {
                    Key::parse(text.trim()).map(What::Key).ok_or_else(|| {
                        ApiError::invalid_request(
                            "`key` must be a cache key as x-switchyard-cache-key shows it (64 hex digits)",
                            Some("key".into()),
                        )
                    })
                })
                .transpose()?,
            query.text("namespace").map(What::Namespace),
            query.text("tag").map(What::Tag),
            query
                .text("all")
                .filter(|all| all == "true")
                .map(|_| What::All),
        ]
        .into_iter()
        .flatten()
        .collect();
        let [what] = <[What; 1]>::try_from(named).map_err(|_| {
            ApiError::invalid_request(
                "Name exactly one of `key`, `namespace`, `tag` or `all=true`",
                None,
            )
        })?;
        let team = query.text("team");
        let team = match caller.principal.role {
            Role::Admin => team,
            Role::TeamAdmin => {
                let own = caller.principal.team_id.clone();
                if own.is_none() || (team.is_some() && team != own) {
                    return Err(forbidden("Team admins may drop only their team's entries"));
                }
                own
            }
            Role::Viewer | Role::Member => {
                return Err(forbidden("Only admins and team admins may drop cached answers"));
            }
        };
        let cache = cache(&state)?;
        let selector = Selector { team, what };
        let removed = cache
            .invalidate(&selector)
            .await
            .map_err(|error| unavailable(&error))?;
        Ok((StatusCode::OK, json!({ "removed": removed })))
    })
    .await
}
