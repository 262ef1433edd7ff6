//! Teams: the models their keys may use and the limits they share.

use sqlx::{AssertSqlSafe, Row};

use crate::changes::record;
use crate::{
    Page, Store, StoreError, Team, conflict, from_json, now_ms, on_pool, plain_text, to_json,
};

/// The columns of a team, in the order `team_from!` reads them.
macro_rules! columns {
    () => {
        "id, name, models, limits, metadata, blocked, created_at, updated_at"
    };
}

/// A team from a row of `columns!()` (compiled once per database).
macro_rules! team_from {
    ($row:expr) => {{
        let row = $row;
        let models: String = row.try_get("models")?;
        let limits: String = row.try_get("limits")?;
        let metadata: String = row.try_get("metadata")?;
        Team {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            models: from_json("models", &models)?,
            limits: from_json("limits", &limits)?,
            metadata: from_json("metadata", &metadata)?,
            blocked: row.try_get("blocked")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Store {
    /// The team with id `id`.
    pub async fn team(&self, id: &str) -> Result<Team, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            let row = sqlx::query(concat!("SELECT ", columns!(), " FROM teams WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound("team"))?;
            Ok(team_from!(&row))
        })
    }

    /// Teams in creation order, paged by `page` (its team and user filters do not apply).
    pub async fn teams(&self, page: &Page) -> Result<Vec<Team>, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM teams \
                 WHERE (CAST($1 AS TEXT) IS NULL OR (created_at, id) > \
                        (SELECT created_at, id FROM teams WHERE id = $1)) \
                 ORDER BY created_at, id LIMIT $2"
            ))
            .bind(page.after.as_deref())
            .bind(page.size())
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| Ok(team_from!(row)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// Stores a new team, and the change, made by `actor`.
    pub async fn insert_team(&self, team: &Team, actor: &str) -> Result<(), StoreError> {
        team.check()?;
        plain_text([Some(actor)])?;
        on_pool!(self, |pool, begin, _lock| {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(concat!(
                "INSERT INTO teams (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(&team.id)
            .bind(&team.name)
            .bind(to_json(&team.models))
            .bind(to_json(&team.limits))
            .bind(to_json(&team.metadata))
            .bind(team.blocked)
            .bind(team.created_at)
            .bind(team.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|error| conflict(error, "team name"))?;
            record!(
                &mut *tx,
                actor,
                "create",
                "team",
                &team.id,
                None::<&Team>,
                Some(team)
            );
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes the team `id` with `change` (which may refuse), and records it as `action` by
    /// `actor`, in one transaction. Returns the team before and after.
    pub async fn update_team(
        &self,
        id: &str,
        actor: &str,
        action: &str,
        change: impl FnOnce(&mut Team) -> Result<(), StoreError>,
    ) -> Result<(Team, Team), StoreError> {
        plain_text([Some(actor), Some(action)])?;
        on_pool!(self, |pool, begin, lock| {
            let mut tx = pool.begin_with(begin).await?;
            let row = sqlx::query(AssertSqlSafe(format!(
                concat!("SELECT ", columns!(), " FROM teams WHERE id = $1{}"),
                lock
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("team"))?;
            let before = team_from!(&row);
            let mut after = before.clone();
            change(&mut after)?;
            after.id = before.id.clone();
            after.check()?;
            after.updated_at = now_ms().max(before.updated_at + 1);
            sqlx::query(
                "UPDATE teams SET name = $2, models = $3, limits = $4, metadata = $5, \
                 blocked = $6, updated_at = $7 WHERE id = $1",
            )
            .bind(&after.id)
            .bind(&after.name)
            .bind(to_json(&after.models))
            .bind(to_json(&after.limits))
            .bind(to_json(&after.metadata))
            .bind(after.blocked)
            .bind(after.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|error| conflict(error, "team name"))?;
            record!(
                &mut *tx,
                actor,
                action,
                "team",
                id,
                Some(&before),
                Some(&after)
            );
            tx.commit().await?;
            Ok((before, after))
        })
    }

    /// Deletes the team `id` (refused while it has users or keys), recording it by `actor`.
    pub async fn delete_team(&self, id: &str, actor: &str) -> Result<Team, StoreError> {
        on_pool!(self, |pool, begin, lock| {
            let mut tx = pool.begin_with(begin).await?;
            let row = sqlx::query(AssertSqlSafe(format!(
                concat!("SELECT ", columns!(), " FROM teams WHERE id = $1{}"),
                lock
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("team"))?;
            let before = team_from!(&row);
            sqlx::query("DELETE FROM teams WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|error| conflict(error, "team (it still has users or keys)"))?;
            record!(
                &mut *tx,
                actor,
                "delete",
                "team",
                id,
                Some(&before),
                None::<&Team>
            );
            tx.commit().await?;
            Ok(before)
        })
    }
}

impl Team {
    /// Refuses what the store cannot hold.
    fn check(&self) -> Result<(), StoreError> {
        plain_text([Some(self.id.as_str()), Some(&self.name)])
    }
}
