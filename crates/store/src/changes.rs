//! The record of admin changes: who changed what, and what it was before and after. Written in
//! the same transaction as the change itself, so neither exists without the other.

use sqlx::Row;

use crate::{Change, Store, StoreError, from_json, on_pool};

/// Records a change inside the transaction `$tx` (compiled once per database):
/// `record!(tx, actor, action, target_kind, target_id, before: Option<&T>, after: Option<&T>)`.
macro_rules! record {
    ($tx:expr, $actor:expr, $action:expr, $kind:expr, $id:expr, $before:expr, $after:expr) => {
        sqlx::query(
            "INSERT INTO admin_changes (at, actor, action, target_kind, target_id, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind($crate::now_ms())
        .bind($actor)
        .bind($action)
        .bind($kind)
        .bind($id)
        .bind($before.map($crate::to_json))
        .bind($after.map($crate::to_json))
        .execute($tx)
        .await?
    };
}
pub(crate) use record;

impl Store {
    /// Changes after position `after` (0: from the first), oldest first, at most `limit`
    /// (at most 1000), optionally only those to one target (`kind`, `id`).
    pub async fn changes(
        &self,
        after: i64,
        target: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        let (kind, id) = target.unzip();
        on_pool!(self, |pool, _begin, _lock| {
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target_kind, target_id, before, after \
                 FROM admin_changes WHERE seq > $1 \
                   AND (CAST($2 AS TEXT) IS NULL OR (target_kind = $2 AND target_id = $3)) \
                 ORDER BY seq LIMIT $4",
            )
            .bind(after)
            .bind(kind)
            .bind(id)
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let before: Option<String> = row.try_get("before")?;
                    let after: Option<String> = row.try_get("after")?;
                    Ok(Change {
                        seq: row.try_get("seq")?,
                        at: row.try_get("at")?,
                        actor: row.try_get("actor")?,
                        action: row.try_get("action")?,
                        target_kind: row.try_get("target_kind")?,
                        target_id: row.try_get("target_id")?,
                        before: before.map(|text| from_json("before", &text)).transpose()?,
                        after: after.map(|text| from_json("after", &text)).transpose()?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }
}
