//! Virtual keys: looked up by the hash of their secret on the request path (one indexed read,
//! the current or, within its grace period, the previous secret), managed by the admin API.

use sqlx::{AssertSqlSafe, Row};

use crate::changes::record;

use crate::{
    Key, Page, Store, StoreError, conflict, from_json, now_ms, on_pool, plain_text, role_of,
    to_json,
};

/// The columns of a key, in the order `key_from!` reads them.
macro_rules! columns {
    () => {
        "id, hash, hint, alias, team_id, user_id, role, models, limits, tags, metadata, \
         blocked, expires_at, previous_hash, previous_valid_until, created_by, created_at, \
         updated_at"
    };
}

/// A key from a row of `columns!()` (compiled once per database).
macro_rules! key_from {
    ($row:expr) => {{
        let row = $row;
        let role: String = row.try_get("role")?;
        let models: String = row.try_get("models")?;
        let limits: String = row.try_get("limits")?;
        let tags: String = row.try_get("tags")?;
        let metadata: String = row.try_get("metadata")?;
        Key {
            id: row.try_get("id")?,
            hash: row.try_get("hash")?,
            hint: row.try_get("hint")?,
            alias: row.try_get("alias")?,
            team_id: row.try_get("team_id")?,
            user_id: row.try_get("user_id")?,
            role: role_of(&role)?,
            models: from_json("models", &models)?,
            limits: from_json("limits", &limits)?,
            tags: from_json("tags", &tags)?,
            metadata: from_json("metadata", &metadata)?,
            blocked: row.try_get("blocked")?,
            expires_at: row.try_get("expires_at")?,
            previous_hash: row.try_get("previous_hash")?,
            previous_valid_until: row.try_get("previous_valid_until")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Store {
    /// The key whose secret hashes to `hash`: its current secret, or its previous one while
    /// that is still within its grace period at `now` (Unix milliseconds). Blocked and expired
    /// keys are returned as they are; the caller decides.
    pub async fn key_by_hash(&self, hash: &str, now: i64) -> Result<Option<Key>, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            let row = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM api_keys WHERE hash = $1 \
                 UNION ALL SELECT ",
                columns!(),
                " FROM api_keys WHERE previous_hash = $1 AND previous_valid_until > $2"
            ))
            .bind(hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(key_from!(&row)),
                None => None,
            })
        })
    }

    /// The key with id `id`.
    pub async fn key(&self, id: &str) -> Result<Key, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            let row = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM api_keys WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NotFound("key"))?;
            Ok(key_from!(&row))
        })
    }

    /// Keys in creation order, filtered and paged by `page`.
    pub async fn keys(&self, page: &Page) -> Result<Vec<Key>, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM api_keys \
                 WHERE (CAST($1 AS TEXT) IS NULL OR team_id = $1) \
                   AND (CAST($2 AS TEXT) IS NULL OR user_id = $2) \
                   AND (CAST($3 AS TEXT) IS NULL OR (created_at, id) > \
                        (SELECT created_at, id FROM api_keys WHERE id = $3)) \
                 ORDER BY created_at, id LIMIT $4"
            ))
            .bind(page.team_id.as_deref())
            .bind(page.user_id.as_deref())
            .bind(page.after.as_deref())
            .bind(page.size())
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| Ok(key_from!(row)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// Stores a new key, and the change, made by `actor`.
    pub async fn insert_key(&self, key: &Key, actor: &str) -> Result<(), StoreError> {
        key.check()?;
        plain_text([Some(actor)])?;
        on_pool!(self, |pool, begin, _lock| {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(concat!(
                "INSERT INTO api_keys (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17, $18)"
            ))
            .bind(&key.id)
            .bind(&key.hash)
            .bind(&key.hint)
            .bind(key.alias.as_deref())
            .bind(key.team_id.as_deref())
            .bind(key.user_id.as_deref())
            .bind(key.role.as_str())
            .bind(to_json(&key.models))
            .bind(to_json(&key.limits))
            .bind(to_json(&key.tags))
            .bind(to_json(&key.metadata))
            .bind(key.blocked)
            .bind(key.expires_at)
            .bind(key.previous_hash.as_deref())
            .bind(key.previous_valid_until)
            .bind(&key.created_by)
            .bind(key.created_at)
            .bind(key.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|error| conflict(error, "key"))?;
            record!(
                &mut *tx,
                actor,
                "create",
                "key",
                &key.id,
                None::<&Key>,
                Some(key)
            );
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes the key `id` with `change` (which may refuse), and records the change as
    /// `action` by `actor`, in one transaction. Returns the key before and after.
    pub async fn update_key(
        &self,
        id: &str,
        actor: &str,
        action: &str,
        change: impl FnOnce(&mut Key) -> Result<(), StoreError>,
    ) -> Result<(Key, Key), StoreError> {
        plain_text([Some(actor), Some(action)])?;
        on_pool!(self, |pool, begin, lock| {
            let mut tx = pool.begin_with(begin).await?;
            let row = sqlx::query(AssertSqlSafe(format!(
                concat!("SELECT ", columns!(), " FROM api_keys WHERE id = $1{}"),
                lock
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("key"))?;
            let before = key_from!(&row);
            let mut after = before.clone();
            change(&mut after)?;
            after.id = before.id.clone();
            after.check()?;
            after.updated_at = now_ms().max(before.updated_at + 1);
            sqlx::query(
                "UPDATE api_keys SET hash = $2, hint = $3, alias = $4, team_id = $5, \
                 user_id = $6, role = $7, models = $8, limits = $9, tags = $10, metadata = $11, \
                 blocked = $12, expires_at = $13, previous_hash = $14, \
                 previous_valid_until = $15, updated_at = $16 WHERE id = $1",
            )
            .bind(&after.id)
            .bind(&after.hash)
            .bind(&after.hint)
            .bind(after.alias.as_deref())
            .bind(after.team_id.as_deref())
            .bind(after.user_id.as_deref())
            .bind(after.role.as_str())
            .bind(to_json(&after.models))
            .bind(to_json(&after.limits))
            .bind(to_json(&after.tags))
            .bind(to_json(&after.metadata))
            .bind(after.blocked)
            .bind(after.expires_at)
            .bind(after.previous_hash.as_deref())
            .bind(after.previous_valid_until)
            .bind(after.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|error| conflict(error, "key"))?;
            record!(
                &mut *tx,
                actor,
                action,
                "key",
                id,
                Some(&before),
                Some(&after)
            );
            tx.commit().await?;
            Ok((before, after))
        })
    }

    /// Deletes the key `id`, recording the change by `actor`. Returns what it was.
    pub async fn delete_key(&self, id: &str, actor: &str) -> Result<Key, StoreError> {
        on_pool!(self, |pool, begin, lock| {
            let mut tx = pool.begin_with(begin).await?;
            let row = sqlx::query(AssertSqlSafe(format!(
                concat!("SELECT ", columns!(), " FROM api_keys WHERE id = $1{}"),
                lock
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("key"))?;
            let before = key_from!(&row);
            sqlx::query("DELETE FROM api_keys WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            record!(
                &mut *tx,
                actor,
                "delete",
                "key",
                id,
                Some(&before),
                None::<&Key>
            );
            tx.commit().await?;
            Ok(before)
        })
    }
}

impl Key {
    /// Refuses what the store cannot hold.
    fn check(&self) -> Result<(), StoreError> {
        plain_text([
            Some(self.id.as_str()),
            Some(&self.hash),
            Some(&self.hint),
            self.alias.as_deref(),
            self.team_id.as_deref(),
            self.user_id.as_deref(),
            self.previous_hash.as_deref(),
            Some(&self.created_by),
        ])
    }
}
