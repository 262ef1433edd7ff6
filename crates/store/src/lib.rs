//! Switchyard's store: teams, users, virtual keys, the record of admin changes, the spend
//! ledger and the audit log, in SQLite
//! (the embedded default: one file, WAL) or PostgreSQL, behind one interface. The only crate
//! with SQL.
//!
//! Both databases get the same versioned migrations (`migrations/<database>/NNNN_*.sql`, the
//! same versions and tables; only the dialect differs), applied at start-up and never
//! rewritten: a change to the schema is a new migration. Every query is written once and runs
//! on either pool (`on_pool!`); values are always bound, never spliced into SQL.
//!
//! # Layout
//! - [`model`]: what is stored (teams, users, keys, changes, limits, roles).
//! - `teams`, `users`, `keys`, `changes`: the queries, one file per table.
//! - `spend`: the ledger: a record per call and the daily aggregates, written together.
//! - `audit`: the audit log: records as leaves of a Merkle tree, its nodes, head and signed
//!   checkpoints; appended in turn by every instance, append-only by triggers.
//! - `sqlite`, `postgres`: connecting, and each database's migrations.

pub mod model;

mod audit;
mod changes;
mod keys;
mod postgres;
mod spend;
mod sqlite;
mod teams;
mod users;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::migrate::{Migration, MigrationType, Migrator};

pub use audit::{AdminBatch, AuditEntry, AuditHead, AuditQuery, AuditRecord, StoredCheckpoint};
pub use model::{
    Change, Daily, Dimension, GuardVerdict, Key, Limits, ModelLimits, Page, Role, SpendQuery,
    SpendRecord, SpendRow, Team, User,
};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row has that id.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change conflicts with what is stored (a name taken, a team that still has keys).
    #[error("{0}")]
    Conflict(String),
    /// A value the store cannot hold (text with a NUL character).
    #[error("{0}")]
    Invalid(String),
    /// The database URL is not one the store can open.
    #[error("unsupported database URL: {0}")]
    Url(String),
    /// A stored value could not be read back.
    #[error("stored {column} is not valid: {error}")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// What was wrong.
        error: String,
    },
    /// The store could not answer in time, or is closing.
    #[error("store unavailable: {0}")]
    Unavailable(&'static str),
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The database could not be reached or timed out (as opposed to refusing a change).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Database(
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::Tls(_)
                        | sqlx::Error::WorkerCrashed
                )
        )
    }
}

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SQLite, a file (or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The store. Cheap to clone: the pool is shared.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

/// Notifications on a channel (see [`Store::listen`]).
#[derive(Debug)]
pub struct Listener(sqlx::postgres::PgListener);

impl Listener {
    /// The next notification's payload; `None` when the connection was lost (it is made again
    /// on the next call; notifications sent meanwhile are missed).
    pub async fn recv(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .try_recv()
            .await?
            .map(|notification| notification.payload().to_owned()))
    }
}

/// How a store connects.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlite://path/to/file.db`, `sqlite::memory:`, or `postgres://user@host/db`.
    pub url: String,
    /// Connections in the pool (PostgreSQL; SQLite uses its own count).
    pub max_connections: u32,
    /// How long a query may wait for a connection (and for SQLite's write lock).
    pub acquire_timeout: Duration,
}

impl Options {
    /// Options for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Runs `$body` with `$pool` bound to whichever pool the store has, and `$lock` to the suffix
/// that locks a row read inside a transaction (PostgreSQL's `FOR UPDATE`; SQLite's write
/// transactions lock the whole database from their start) and `$begin` to the statement that
/// opens a write transaction. The body is compiled once per database.
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $begin:ident, $lock:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => {
                let $begin: &'static str = "BEGIN IMMEDIATE";
                let $lock: &'static str = "";
                let _ = ($begin, $lock);
                $body
            }
            $crate::Backend::Postgres($pool) => {
                let $begin: &'static str = "BEGIN";
                let $lock: &'static str = " FOR UPDATE";
                let _ = ($begin, $lock);
                $body
            }
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Opens the store at `options.url` and brings its schema up to date.
    pub async fn connect(options: &Options) -> Result<Store, StoreError> {
        let url = options.url.as_str();
        let backend = if url.starts_with("sqlite:") {
            let pool = sqlite::connect(options).await?;
            sqlite::migrator().run(&pool).await?;
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = postgres::connect(options).await?;
            postgres::migrator().run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::Url(scheme_of(url)));
        };
        Ok(Store { backend })
    }

    /// The database the store is on.
    pub fn kind(&self) -> Kind {
        match self.backend {
            Backend::Sqlite(_) => Kind::Sqlite,
            Backend::Postgres(_) => Kind::Postgres,
        }
    }

    /// The schema version applied (the newest migration's).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let version: Option<i64> = on_pool!(self, |pool, _begin, _lock| {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await?
        });
        Ok(version.unwrap_or(0))
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Tells every listener of `channel` (other instances on the same PostgreSQL) `payload`
    /// (PostgreSQL's NOTIFY). Nothing on SQLite, whose file one instance holds.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        if let Backend::Postgres(pool) = &self.backend {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Listens on `channel` (PostgreSQL's LISTEN) on a connection of its own; `None` on SQLite.
    pub async fn listen(&self, channel: &str) -> Result<Option<Listener>, StoreError> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(channel).await?;
        Ok(Some(Listener(listener)))
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        on_pool!(self, |pool, _begin, _lock| pool.close().await);
    }
}

/// The part of a URL that names its scheme, never its credentials.
fn scheme_of(url: &str) -> String {
    url.split_once(':')
        .map_or("(no scheme)", |(scheme, _)| scheme)
        .chars()
        .take(32)
        .collect()
}

/// Migrations from `(version, description, sql)`.
fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect(),
    )
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A new id: `prefix`, `_`, 24 hex digits (96 random bits).
pub fn new_id(prefix: &str) -> String {
    let mut rng = fastrand::Rng::new();
    let (high, low) = (rng.u64(..), rng.u32(..));
    format!("{prefix}_{high:016x}{low:08x}")
}

/// A value stored as JSON text.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// JSON text read back.
fn from_json<T: DeserializeOwned>(column: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        column,
        error: error.to_string(),
    })
}

/// A role read back.
fn role_of(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt {
        column: "role",
        error: format!("unknown role {text:?}"),
    })
}

/// Refuses text columns that hold a NUL character: PostgreSQL cannot store one, and SQLite
/// would, so both refuse it alike. (JSON columns hold it escaped, and keep it.)
fn plain_text<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Result<(), StoreError> {
    if values
        .into_iter()
        .flatten()
        .any(|value| value.contains('\0'))
    {
        return Err(StoreError::Invalid(
            "text must not contain NUL characters".to_owned(),
        ));
    }
    Ok(())
}

/// A database error on a write, with uniqueness and reference violations turned into
/// conflicts that say what collided.
fn conflict(error: sqlx::Error, what: &str) -> StoreError {
    if let sqlx::Error::Database(database) = &error {
        if database.is_unique_violation() {
            return StoreError::Conflict(format!("{what}: already taken"));
        }
        // SQLite reports a RESTRICT action as a trigger constraint, with the same message.
        if database.is_foreign_key_violation()
            || database.message().contains("FOREIGN KEY constraint failed")
        {
            return StoreError::Conflict(format!(
                "{what}: refers to something missing, or is still referred to"
            ));
        }
    }
    StoreError::Database(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_distinct() {
        let (a, b) = (new_id("key"), new_id("key"));
        assert!(a.starts_with("key_") && a.len() == 28, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn a_url_error_never_shows_credentials() {
        assert_eq!(scheme_of("mysql://root:hunter2@db/x"), "mysql");
        assert_eq!(scheme_of("hunter2"), "(no scheme)");
    }
}
