//! Users: people or services that keys belong to, with the highest role their keys may have.

use sqlx::{AssertSqlSafe, Row};

use crate::changes::record;
use crate::{
    Page, Store, StoreError, User, conflict, from_json, now_ms, on_pool, plain_text, role_of,
    to_json,
};

/// The columns of a user, in the order `user_from!` reads them.
macro_rules! columns {
    () => {
        "id, email, team_id, role, limits, metadata, created_at, updated_at"
    };
}

/// A user from a row of `columns!()` (compiled once per database).
macro_rules! user_from {
    ($row:expr) => {{
        let row = $row;
        let role: String = row.try_get("role")?;
        let limits: String = row.try_get("limits")?;
        let metadata: String = row.try_get("metadata")?;
        User {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            team_id: row.try_get("team_id")?,
            role: role_of(&role)?,
            limits: from_json("limits", &limits)?,
            metadata: from_json("metadata", &metadata)?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Store {
    /// The user with id `id`.
    pub async fn user(&self, id: &str) -> Result<User, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            let row = sqlx::query(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound("user"))?;
            Ok(user_from!(&row))
        })
    }

    /// Users in creation order, filtered by team and paged by `page`.
    pub async fn users(&self, page: &Page) -> Result<Vec<User>, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM users \
                 WHERE (CAST($1 AS TEXT) IS NULL OR team_id = $1) \
                   AND (CAST($2 AS TEXT) IS NULL OR (created_at, id) > \
                        (SELECT created_at, id FROM users WHERE id = $2)) \
                 ORDER BY created_at, id LIMIT $3"
            ))
            .bind(page.team_id.as_deref())
            .bind(page.after.as_deref())
            .bind(page.size())
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| Ok(user_from!(row)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// Stores a new user, and the change, made by `actor`.
    pub async fn insert_user(&self, user: &User, actor: &str) -> Result<(), StoreError> {
        user.check()?;
        plain_text([Some(actor)])?;
        on_pool!(self, |pool, begin, _lock| {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(concat!(
                "INSERT INTO users (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(&user.id)
            .bind(user.email.as_deref())
            .bind(user.team_id.as_deref())
            .bind(user.role.as_str())
            .bind(to_json(&user.limits))
            .bind(to_json(&user.metadata))
            .bind(user.created_at)
            .bind(user.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|error| conflict(error, "user email or team"))?;
            record!(
                &mut *tx,
                actor,
                "create",
                "user",
                &user.id,
                None::<&User>,
                Some(user)
            );
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes the user `id` with `change` (which may refuse), and records it as `action` by
    /// `actor`, in one transaction. Returns the user before and after.
    pub async fn update_user(
        &self,
        id: &str,
        actor: &str,
        action: &str,
        change: impl FnOnce(&mut User) -> Result<(), StoreError>,
    ) -> Result<(User, User), StoreError> {
        plain_text([Some(actor), Some(action)])?;
        on_pool!(self, |pool, begin, lock| {
            let mut tx = pool.begin_with(begin).await?;
            let row = sqlx::query(AssertSqlSafe(format!(
                concat!("SELECT ", columns!(), " FROM users WHERE id = $1{}"),
                lock
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
            let before = user_from!(&row);
            let mut after = before.clone();
            change(&mut after)?;
            after.id = before.id.clone();
            after.check()?;
            after.updated_at = now_ms().max(before.updated_at + 1);
            sqlx::query(
                "UPDATE users SET email = $2, team_id = $3, role = $4, limits = $5, \
                 metadata = $6, updated_at = $7 WHERE id = $1",
            )
            .bind(&after.id)
            .bind(after.email.as_deref())
            .bind(after.team_id.as_deref())
            .bind(after.role.as_str())
            .bind(to_json(&after.limits))
            .bind(to_json(&after.metadata))
            .bind(after.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|error| conflict(error, "user email or team"))?;
            record!(
                &mut *tx,
                actor,
                action,
                "user",
                id,
                Some(&before),
                Some(&after)
            );
            tx.commit().await?;
            Ok((before, after))
        })
    }

    /// Deletes the user `id` (refused while it has keys), recording it by `actor`.
    pub async fn delete_user(&self, id: &str, actor: &str) -> Result<User, StoreError> {
        on_pool!(self, |pool, begin, lock| {
            let mut tx = pool.begin_with(begin).await?;
            let row = sqlx::query(AssertSqlSafe(format!(
                concat!("SELECT ", columns!(), " FROM users WHERE id = $1{}"),
                lock
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
            let before = user_from!(&row);
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|error| conflict(error, "user (it still has keys)"))?;
            record!(
                &mut *tx,
                actor,
                "delete",
                "user",
                id,
                Some(&before),
                None::<&User>
            );
            tx.commit().await?;
            Ok(before)
        })
    }
}

impl User {
    /// Refuses what the store cannot hold.
    fn check(&self) -> Result<(), StoreError> {
        plain_text([
            Some(self.id.as_str()),
            self.email.as_deref(),
            self.team_id.as_deref(),
        ])
    }
}
