//! The ledger's tables: one record per model call, and daily aggregates per key, team, user,
//! model, tag and overall, written together in one transaction so that a report (which reads
//! only the aggregates) always equals the sum of the records.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::Row;
use switchyard_ledger::Day;

use crate::model::{Daily, Dimension, SpendQuery, SpendRecord};
use crate::{Store, StoreError, from_json, on_pool, plain_text, to_json};

/// The sums kept per aggregate row.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    requests: i64,
    failures: i64,
    prompt: i64,
    completion: i64,
    cache_read: i64,
    cache_write: i64,
    reasoning: i64,
    cost: i64,
}

impl Sums {
    fn add(&mut self, record: &SpendRecord) {
        let tokens = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
        self.requests += 1;
        self.failures += i64::from(record.status >= 400);
        self.prompt += tokens(record.prompt_tokens);
        self.completion += tokens(record.completion_tokens);
        self.cache_read += tokens(record.cache_read_tokens);
        self.cache_write += tokens(record.cache_write_tokens);
        self.reasoning += tokens(record.reasoning_tokens);
        self.cost += record.cost_nanos;
    }
}

/// The aggregate rows a batch of records adds to: (dimension, value, day) → sums, the values
/// borrowed from the records.
fn aggregates<'a>(records: &'a [SpendRecord]) -> BTreeMap<(Dimension, &'a str, Day), Sums> {
    let mut rows: BTreeMap<(Dimension, &'a str, Day), Sums> = BTreeMap::new();
    let mut tags: Vec<&'a str> = Vec::new();
    for record in records {
        let day = Day::of_ms(record.at);
        let mut add = |dimension: Dimension, value: &'a str| {
            rows.entry((dimension, value, day)).or_default().add(record);
        };
        add(Dimension::All, "");
        add(Dimension::Model, &record.model);
        if let Some(key) = &record.key_id {
            add(Dimension::Key, key);
        }
        if let Some(team) = &record.team_id {
            add(Dimension::Team, team);
        }
        if let Some(user) = &record.user_id {
            add(Dimension::User, user);
        }
        tags.clear();
        tags.extend(record.tags.iter().map(String::as_str));
        tags.sort_unstable();
        tags.dedup();
        for tag in &tags {
            add(Dimension::Tag, tag);
        }
    }
    rows
}

/// The columns of a daily aggregate row.
macro_rules! daily_columns {
    () => {
        "dimension, value, day, requests, failures, prompt_tokens, completion_tokens, \
         cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nanos"
    };
}

/// The columns a record fills, in order.
macro_rules! columns {
    () => {
        "request_id, at, key_id, team_id, user_id, model, deployment, kind, tags, prompt_tokens, \
         completion_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, \
         estimated, unpriced, cache_hit, stream, status, attempts, latency_ms, ttft_ms, guards"
    };
}

/// Rows per insert statement: a batch goes as statements of these sizes (largest first), so
/// that each statement's text is one of a few, prepared once per connection and cached,
/// rather than a statement of N rows parsed per batch.
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// The insert of `rows` records (one of [`CHUNKS`]) for `kind`: `$n` parameters for
/// PostgreSQL, `?` for SQLite (whose lookup of numbered parameters by name makes binding a
/// long statement's parameters quadratic).
fn insert_sql(rows: usize, kind: crate::Kind) -> &'static str {
    static TEXTS: std::sync::OnceLock<[Vec<String>; 2]> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        [false, true].map(|numbered| {
            CHUNKS
                .iter()
                .map(|&rows| {
                    let mut sql =
                        concat!("INSERT INTO spend (", columns!(), ") VALUES ").to_owned();
                    let mut n = 1;
                    for row in 0..rows {
                        sql.push_str(if row == 0 { "(" } else { ", (" });
                        for column in 0..COLUMNS {
                            if column > 0 {
                                sql.push_str(", ");
                            }
                            if numbered {
                                sql.push('$');
                                sql.push_str(&n.to_string());
                            } else {
                                sql.push('?');
                            }
                            n += 1;
                        }
                        sql.push(')');
                    }
                    sql
                })
                .collect()
        })
    });
    let dialect = match kind {
        crate::Kind::Sqlite => 0,
        crate::Kind::Postgres => 1,
    };
    let index = CHUNKS
        .iter()
        .position(|&size| size == rows)
        .unwrap_or(CHUNKS.len() - 1);
    &texts[dialect][index]
}

/// The number of columns in [`columns!`].
const COLUMNS: usize = 24;

/// The raw-records query with `filters` (column names from the code, values bound).
fn records_sql(filters: &[(&str, &str)]) -> String {
    let mut sql = String::from(
        "SELECT seq, request_id, at, key_id, team_id, user_id, model, deployment, kind, tags, \
         prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, \
         reasoning_tokens, cost_nanos, estimated, unpriced, cache_hit, stream, status, attempts, \
         latency_ms, ttft_ms, guards FROM spend WHERE seq > $1 AND at >= $2 AND at < $3",
    );
    for (n, (column, _)) in filters.iter().enumerate() {
        sql.push_str(&format!(" AND {column} = ${}", n + 4));
    }
    sql.push_str(&format!(" ORDER BY seq LIMIT ${}", filters.len() + 4));
    sql
}

impl Store {
    /// Writes `records` and adds them to the daily aggregates, all in one transaction.
    pub async fn record_spend(&self, records: &[SpendRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        for record in records {
            plain_text(
                [
                    Some(record.request_id.as_str()),
                    record.key_id.as_deref(),
                    record.team_id.as_deref(),
                    record.user_id.as_deref(),
                    Some(record.model.as_str()),
                    record.deployment.as_deref(),
                ]
                .into_iter()
                .chain(record.tags.iter().map(|tag| Some(tag.as_str()))),
            )?;
        }
        let rows = aggregates(records);
        let kind = self.kind();
        on_pool!(self, |pool, begin, _lock| {
            let mut tx = pool.begin_with(begin).await?;
            let mut rest = records;
            while !rest.is_empty() {
                let size = CHUNKS
                    .iter()
                    .copied()
                    .find(|&size| size <= rest.len())
                    .unwrap_or(1);
                let (chunk, after) = rest.split_at(size);
                rest = after;
                let mut insert = sqlx::query(insert_sql(size, kind));
                for record in chunk {
                    let tokens = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
                    // Text as `Arc<str>`: the arguments take it as it is (a `&str` would be
                    // copied into a `String`, then boxed).
                    let text = |value: &str| Arc::<str>::from(value);
                    insert = insert
                        .bind(text(&record.request_id))
                        .bind(record.at)
                        .bind(record.key_id.as_deref().map(text))
                        .bind(record.team_id.as_deref().map(text))
                        .bind(record.user_id.as_deref().map(text))
                        .bind(text(&record.model))
                        .bind(record.deployment.as_deref().map(text))
                        .bind(text(&record.kind))
                        .bind(to_json(&record.tags))
                        .bind(tokens(record.prompt_tokens))
                        .bind(tokens(record.completion_tokens))
                        .bind(tokens(record.cache_read_tokens))
                        .bind(tokens(record.cache_write_tokens))
                        .bind(tokens(record.reasoning_tokens))
                        .bind(record.cost_nanos)
                        .bind(record.estimated)
                        .bind(record.unpriced)
                        .bind(record.cache_hit)
                        .bind(record.stream)
                        .bind(i32::from(record.status))
                        .bind(i32::try_from(record.attempts).unwrap_or(i32::MAX))
                        .bind(record.latency_ms)
                        .bind(record.ttft_ms)
                        .bind(if record.guards.is_empty() {
                            String::new()
                        } else {
                            to_json(&record.guards)
                        });
                }
                insert.execute(&mut *tx).await?;
            }
            for ((dimension, value, day), sums) in &rows {
                let day = day.to_string();
                sqlx::query(
                    "INSERT INTO spend_daily (dimension, value, day, requests, failures, \
                     prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, \
                     reasoning_tokens, cost_nanos) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (dimension, value, day) DO UPDATE SET \
                     requests = spend_daily.requests + excluded.requests, \
                     failures = spend_daily.failures + excluded.failures, \
                     prompt_tokens = spend_daily.prompt_tokens + excluded.prompt_tokens, \
                     completion_tokens = spend_daily.completion_tokens + excluded.completion_tokens, \
                     cache_read_tokens = spend_daily.cache_read_tokens + excluded.cache_read_tokens, \
                     cache_write_tokens = spend_daily.cache_write_tokens + excluded.cache_write_tokens, \
                     reasoning_tokens = spend_daily.reasoning_tokens + excluded.reasoning_tokens, \
                     cost_nanos = spend_daily.cost_nanos + excluded.cost_nanos",
                )
                .bind(dimension.as_str())
                .bind(value)
                .bind(day)
                .bind(sums.requests)
                .bind(sums.failures)
                .bind(sums.prompt)
                .bind(sums.completion)
                .bind(sums.cache_read)
                .bind(sums.cache_write)
                .bind(sums.reasoning)
                .bind(sums.cost)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// What `value` of `dimension` spent from day `since` on, in nano-dollars (a budget's
    /// spend in its period), from the daily aggregates.
    pub async fn spent_since(
        &self,
        dimension: Dimension,
        value: &str,
        since: Day,
    ) -> Result<i64, StoreError> {
        let since = since.max(Day::from_days(0)).to_string();
        on_pool!(self, |pool, _begin, _lock| {
            let spent: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(SUM(cost_nanos) AS BIGINT) FROM spend_daily \
                 WHERE dimension = $1 AND value = $2 AND day >= $3",
            )
            .bind(dimension.as_str())
            .bind(value)
            .bind(since)
            .fetch_one(pool)
            .await?;
            Ok(spent.unwrap_or(0))
        })
    }

    /// The daily aggregates of `dimension` from day `from` to day `to` (both included),
    /// optionally of one value, by day then value.
    pub async fn daily_spend(
        &self,
        dimension: Dimension,
        value: Option<&str>,
        from: Day,
        to: Day,
    ) -> Result<Vec<Daily>, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            // One value: a range of the primary key (dimension, value, day); every value: a
            // range of the index by day.
            let rows = match value {
                Some(value) => {
                    sqlx::query(concat!(
                        "SELECT ",
                        daily_columns!(),
                        " FROM spend_daily WHERE dimension = $1 AND value = $2 \
                         AND day >= $3 AND day <= $4 ORDER BY day LIMIT 100000"
                    ))
                    .bind(dimension.as_str())
                    .bind(value)
                    .bind(from.to_string())
                    .bind(to.to_string())
                    .fetch_all(pool)
                    .await?
                }
                None => {
                    sqlx::query(concat!(
                        "SELECT ",
                        daily_columns!(),
                        " FROM spend_daily WHERE day >= $1 AND day <= $2 AND dimension = $3 \
                         ORDER BY day, value LIMIT 100000"
                    ))
                    .bind(from.to_string())
                    .bind(to.to_string())
                    .bind(dimension.as_str())
                    .fetch_all(pool)
                    .await?
                }
            };
            rows.iter()
                .map(|row| {
                    let count = |name: &str| -> Result<u64, sqlx::Error> {
                        Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
                    };
                    Ok(Daily {
                        dimension,
                        value: row.try_get("value")?,
                        day: row.try_get("day")?,
                        requests: count("requests")?,
                        failures: count("failures")?,
                        prompt_tokens: count("prompt_tokens")?,
                        completion_tokens: count("completion_tokens")?,
                        cache_read_tokens: count("cache_read_tokens")?,
                        cache_write_tokens: count("cache_write_tokens")?,
                        reasoning_tokens: count("reasoning_tokens")?,
                        cost_nanos: row.try_get("cost_nanos")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// Raw records, oldest first, after position `query.after`, filtered by `query`.
    pub async fn spend_records(&self, query: &SpendQuery) -> Result<Vec<SpendRecord>, StoreError> {
        // Only the filters given, each an equality the indexes serve (an `$n IS NULL OR …`
        // form would keep the planner from them).
        let filters: Vec<(&str, &str)> = [
            ("key_id", &query.key_id),
            ("team_id", &query.team_id),
            ("user_id", &query.user_id),
            ("model", &query.model),
        ]
        .into_iter()
        .filter_map(|(column, value)| value.as_deref().map(|value| (column, value)))
        .collect();
        on_pool!(self, |pool, _begin, _lock| {
            let mut select = sqlx::query(sqlx::AssertSqlSafe(records_sql(&filters)))
                .bind(query.after)
                .bind(query.from_ms)
                .bind(query.to_ms);
            for (_, value) in &filters {
                select = select.bind(*value);
            }
            let rows = select
                .bind(i64::from(query.limit.clamp(1, 10_000)))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let count = |name: &str| -> Result<u64, sqlx::Error> {
                        Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
                    };
                    let tags: String = row.try_get("tags")?;
                    let status: i32 = row.try_get("status")?;
                    let attempts: i32 = row.try_get("attempts")?;
                    Ok(SpendRecord {
                        seq: row.try_get("seq")?,
                        request_id: row.try_get("request_id")?,
                        at: row.try_get("at")?,
                        key_id: row.try_get("key_id")?,
                        team_id: row.try_get("team_id")?,
                        user_id: row.try_get("user_id")?,
                        model: row.try_get("model")?,
                        deployment: row.try_get("deployment")?,
                        kind: row.try_get("kind")?,
                        tags: from_json("tags", &tags)?,
                        prompt_tokens: count("prompt_tokens")?,
                        completion_tokens: count("completion_tokens")?,
                        cache_read_tokens: count("cache_read_tokens")?,
                        cache_write_tokens: count("cache_write_tokens")?,
                        reasoning_tokens: count("reasoning_tokens")?,
                        cost_nanos: row.try_get("cost_nanos")?,
                        estimated: row.try_get("estimated")?,
                        unpriced: row.try_get("unpriced")?,
                        cache_hit: row.try_get("cache_hit")?,
                        stream: row.try_get("stream")?,
                        status: u16::try_from(status).unwrap_or(0),
                        attempts: u32::try_from(attempts).unwrap_or(0),
                        latency_ms: row.try_get("latency_ms")?,
                        ttft_ms: row.try_get("ttft_ms")?,
                        guards: match row.try_get::<String, _>("guards")?.as_str() {
                            "" => Vec::new(),
                            text => from_json("guards", text)?,
                        },
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// Deletes up to `batch` raw records older than `before_ms` (the aggregates stay); returns
    /// how many went. Small batches keep each transaction, and the locks it holds, short.
    pub async fn prune_spend(&self, before_ms: i64, batch: u32) -> Result<u64, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            let done = sqlx::query(
                "DELETE FROM spend WHERE seq IN \
                 (SELECT seq FROM spend WHERE at < $1 ORDER BY at, seq LIMIT $2)",
            )
            .bind(before_ms)
            .bind(i64::from(batch.max(1)))
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
