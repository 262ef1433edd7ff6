//! The ledger's tables: one record per model call, and daily aggregates per key, team, user,
//! model, tag and overall, written together in one transaction so that a report (which reads
//! only the aggregates) always equals the sum of the records.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::Row;
use switchyard_ledger::Day;

use crate::model::{Daily, Dimension, SpendQuery, SpendRecord, SpendRow};
use crate::{Store, StoreError, from_json, on_pool, plain_text};

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
    fn add(&mut self, record: &SpendRow<'_>) {
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
fn aggregates<'a>(records: &'a [SpendRow<'a>]) -> BTreeMap<(Dimension, &'a str, Day), Sums> {
    let mut rows: BTreeMap<(Dimension, &'a str, Day), Sums> = BTreeMap::new();
    let mut tags: Vec<&'a str> = Vec::new();
    for record in records {
        let day = Day::of_ms(record.at);
        let mut add = |dimension: Dimension, value: &'a str| {
            rows.entry((dimension, value, day)).or_default().add(record);
        };
        add(Dimension::All, "");
        add(Dimension::Model, record.model);
        if let Some(key) = record.key_id {
            add(Dimension::Key, key);
        }
        if let Some(team) = record.team_id {
            add(Dimension::Team, team);
        }
        if let Some(user) = record.user_id {
            add(Dimension::User, user);
        }
        tags.clear();
        tags.extend(record.tags.iter().copied());
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

/// The columns a record fills, in order: what reports filter, page, prune and sum by; the rest
/// of the record is `detail`, one JSON object ([`detail_of`]).
macro_rules! columns {
    () => {
        "at, key_id, team_id, user_id, model, cost_nanos, detail"
    };
}

/// The number of columns in [`columns!`].
const COLUMNS: usize = 7;

/// A record's `detail` as written: every field but those in columns, under its
/// [`SpendRecord`] name, a false, zero, empty or missing one left out (most calls have no
/// cached, reasoning or guard entries); read back as a `SpendRecord` whose missing fields are
/// their defaults. Keys written as they are, numbers by `itoa`, text by serde_json: a record a
/// call, on the writer's one thread.
fn detail_of(record: &SpendRow<'_>) -> String {
    /// `name` (a key and its colon) and `value` as JSON.
    fn json(out: &mut Vec<u8>, name: &str, value: &(impl serde::Serialize + ?Sized)) {
        out.extend_from_slice(name.as_bytes());
        // Into a `Vec`, only a map with non-string keys fails; none is written here.
        let _ = serde_json::to_writer(out, value);
    }
    let mut out = Vec::with_capacity(192);
    json(&mut out, "{\"request_id\":", record.request_id);
    if let Some(deployment) = record.deployment {
        json(&mut out, ",\"deployment\":", deployment);
    }
    json(&mut out, ",\"kind\":", record.kind);
    if !record.tags.is_empty() {
        json(&mut out, ",\"tags\":", &record.tags);
    }
    let number = |out: &mut Vec<u8>, name: &str, value: i64| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    };
    for (name, count) in [
        (",\"prompt_tokens\":", record.prompt_tokens),
        (",\"completion_tokens\":", record.completion_tokens),
        (",\"cache_read_tokens\":", record.cache_read_tokens),
        (",\"cache_write_tokens\":", record.cache_write_tokens),
        (",\"reasoning_tokens\":", record.reasoning_tokens),
    ] {
        if count > 0 {
            number(&mut out, name, i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
    for (flag, text) in [
        (record.estimated, ",\"estimated\":true"),
        (record.unpriced, ",\"unpriced\":true"),
        (record.cache_hit, ",\"cache_hit\":true"),
        (record.stream, ",\"stream\":true"),
    ] {
        if flag {
            out.extend_from_slice(text.as_bytes());
        }
    }
    number(&mut out, ",\"status\":", i64::from(record.status));
    number(&mut out, ",\"attempts\":", i64::from(record.attempts));
    number(&mut out, ",\"latency_ms\":", record.latency_ms);
    if let Some(ttft) = record.ttft_ms {
        number(&mut out, ",\"ttft_ms\":", ttft);
    }
    if !record.guards.is_empty() {
        json(&mut out, ",\"guards\":", &record.guards);
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_else(|_| "{}".to_owned())
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

/// The raw-records query with `filters` (column names from the code, values bound).
fn records_sql(filters: &[(&str, &str)]) -> String {
    let mut sql = String::from(
        "SELECT seq, at, key_id, team_id, user_id, model, cost_nanos, detail FROM spend \
         WHERE seq > $1 AND at >= $2 AND at < $3",
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
        let rows: Vec<SpendRow<'_>> = records.iter().map(SpendRow::from).collect();
        self.record_spend_rows(&rows).await
    }

    /// [`Store::record_spend`] of records whose text is borrowed.
    pub async fn record_spend_rows(&self, records: &[SpendRow<'_>]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        for record in records {
            plain_text(
                [
                    Some(record.request_id),
                    record.key_id,
                    record.team_id,
                    record.user_id,
                    Some(record.model),
                    record.deployment,
                ]
                .into_iter()
                .chain(record.tags.iter().map(|tag| Some(*tag))),
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
                    // Text as `Arc<str>`: the arguments take it as it is (a `&str` would be
                    // copied into a `String`, then boxed).
                    let text = |value: &str| Arc::<str>::from(value);
                    insert = insert
                        .bind(record.at)
                        .bind(record.key_id.map(text))
                        .bind(record.team_id.map(text))
                        .bind(record.user_id.map(text))
                        .bind(text(record.model))
                        .bind(record.cost_nanos)
                        .bind(detail_of(record));
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
                    let detail: String = row.try_get("detail")?;
                    let mut record: SpendRecord = from_json("detail", &detail)?;
                    record.seq = row.try_get("seq")?;
                    record.at = row.try_get("at")?;
                    record.key_id = row.try_get("key_id")?;
                    record.team_id = row.try_get("team_id")?;
                    record.user_id = row.try_get("user_id")?;
                    record.model = row.try_get("model")?;
                    record.cost_nanos = row.try_get("cost_nanos")?;
                    Ok(record)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GuardVerdict;

    /// A record through `detail_of` and back as the store reads it.
    fn round_trip(record: &SpendRecord) -> SpendRecord {
        let text = detail_of(&SpendRow::from(record));
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"))
    }

    #[test]
    fn the_written_detail_is_json_that_reads_back_whole() {
        let record = SpendRecord {
            request_id: "req \"quoted\" \\ back\nline\ttab\r\u{1}\u{1f}\u{7f} é 𝄞".to_owned(),
            deployment: Some("openai/gpt-4o".to_owned()),
            kind: "chat".to_owned(),
            tags: vec!["a,b".to_owned(), "\"x\"".to_owned(), String::new()],
            prompt_tokens: u64::MAX,
            completion_tokens: 20,
            cache_read_tokens: 3,
            cache_write_tokens: 4,
            reasoning_tokens: 5,
            estimated: true,
            unpriced: true,
            cache_hit: true,
            stream: true,
            status: 599,
            attempts: u32::MAX,
            latency_ms: -1,
            ttft_ms: Some(i64::MAX),
            guards: vec![GuardVerdict {
                entity: "EMAIL".to_owned(),
                action: "tokenize".to_owned(),
                count: 2,
                detail: Some("score 0.9".to_owned()),
            }],
            ..SpendRecord::default()
        };
        let detail = round_trip(&record);
        assert_eq!(detail.request_id, record.request_id);
        assert_eq!(detail.deployment, record.deployment);
        assert_eq!(detail.kind, record.kind);
        assert_eq!(detail.tags, record.tags);
        // A count past what the columns hold is kept at their largest.
        assert_eq!(detail.prompt_tokens, i64::MAX as u64);
        assert_eq!(
            (
                detail.completion_tokens,
                detail.cache_read_tokens,
                detail.cache_write_tokens,
                detail.reasoning_tokens
            ),
            (20, 3, 4, 5)
        );
        assert!(detail.estimated && detail.unpriced && detail.cache_hit && detail.stream);
        assert_eq!(
            (
                detail.status,
                detail.attempts,
                detail.latency_ms,
                detail.ttft_ms
            ),
            (599, u32::MAX, -1, Some(i64::MAX))
        );
        assert_eq!(detail.guards, record.guards);
    }

    #[test]
    fn a_plain_call_writes_only_what_it_has() {
        let record = SpendRecord {
            request_id: "req_1".to_owned(),
            kind: "embeddings".to_owned(),
            prompt_tokens: 7,
            status: 200,
            attempts: 1,
            latency_ms: 12,
            ..SpendRecord::default()
        };
        assert_eq!(
            detail_of(&SpendRow::from(&record)),
            r#"{"request_id":"req_1","kind":"embeddings","prompt_tokens":7,"status":200,"attempts":1,"latency_ms":12}"#
        );
        let detail = round_trip(&record);
        assert_eq!(detail.deployment, None);
        assert!(detail.tags.is_empty() && detail.guards.is_empty());
        assert!(!detail.estimated && !detail.stream);
        assert_eq!((detail.completion_tokens, detail.ttft_ms), (0, None));
    }
}
