//! PostgreSQL: the store several gateway instances share.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{Options, StoreError};

/// The pool for `options.url`.
pub(crate) async fn connect(options: &Options) -> Result<sqlx::PgPool, StoreError> {
    let connect = PgConnectOptions::from_str(&options.url)?.application_name("switchyard");
    Ok(PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await?)
}

/// PostgreSQL's migrations.
pub(crate) fn migrator() -> sqlx::migrate::Migrator {
    crate::migrator(&[
        (
            1,
            "keys teams users",
            include_str!("../migrations/postgres/0001_keys_teams_users.sql"),
        ),
        (
            2,
            "ledger",
            include_str!("../migrations/postgres/0002_ledger.sql"),
        ),
        (
            3,
            "spend partial indexes",
            include_str!("../migrations/postgres/0003_spend_partial_indexes.sql"),
        ),
        (
            4,
            "audit",
            include_str!("../migrations/postgres/0004_audit.sql"),
        ),
        (
            5,
            "spend guards",
            include_str!("../migrations/postgres/0005_spend_guards.sql"),
        ),
        (
            6,
            "spend detail",
            include_str!("../migrations/postgres/0006_spend_detail.sql"),
        ),
    ])
}
