//! SQLite: the embedded default. One file in the data folder, in WAL mode (readers never wait
//! for the writer), or memory for tests.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{Options, StoreError};

/// The pool for `options.url` (`sqlite://path`, `sqlite::memory:`); the file and its folder
/// are created when missing.
pub(crate) async fn connect(options: &Options) -> Result<sqlx::SqlitePool, StoreError> {
    let connect = SqliteConnectOptions::from_str(&options.url)?
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(options.acquire_timeout);
    let in_memory = connect.get_filename().as_os_str() == ":memory:"
        || options.url.contains(":memory:")
        || options.url.contains("mode=memory");
    let pool = SqlitePoolOptions::new().acquire_timeout(options.acquire_timeout);
    if in_memory {
        // Every connection to `:memory:` is a database of its own: keep exactly one, forever.
        return Ok(pool
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await?);
    }
    if let Some(folder) = connect.get_filename().parent()
        && !folder.as_os_str().is_empty()
    {
        std::fs::create_dir_all(folder).map_err(sqlx::Error::Io)?;
    }
    // WAL with `synchronous = NORMAL`: a commit is durable once the WAL is synced at the next
    // checkpoint, and never corrupts the database (the SQLite documentation's advice for WAL).
    let connect = connect
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    Ok(pool
        .max_connections(options.max_connections.max(2))
        .connect_with(connect)
        .await?)
}

/// SQLite's migrations.
pub(crate) fn migrator() -> sqlx::migrate::Migrator {
    crate::migrator(&[
        (
            1,
            "keys teams users",
            include_str!("../migrations/sqlite/0001_keys_teams_users.sql"),
        ),
        (
            2,
            "ledger",
            include_str!("../migrations/sqlite/0002_ledger.sql"),
        ),
        (
            3,
            "spend partial indexes",
            include_str!("../migrations/sqlite/0003_spend_partial_indexes.sql"),
        ),
        (
            4,
            "audit",
            include_str!("../migrations/sqlite/0004_audit.sql"),
        ),
        (
            5,
            "spend guards",
            include_str!("../migrations/sqlite/0005_spend_guards.sql"),
        ),
        (
            6,
            "spend detail",
            include_str!("../migrations/sqlite/0006_spend_detail.sql"),
        ),
    ])
}
