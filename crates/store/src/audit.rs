//! The audit log's tables: records (canonical JSON, each a leaf of the Merkle tree), the
//! tree's perfect subtrees, its head, signed checkpoints and the keys that signed them.
//!
//! Appending is one transaction with the head locked (SQLite's write transaction; PostgreSQL's
//! `FOR UPDATE`), so instances sharing a database append to one tree in turn: read the head
//! and the frontier, give each record the next seq, write the records and every node they
//! complete, move the head. A checkpoint is signed only for a head that has committed, so every
//! record it covers is durable first. Admin changes, already written in the transaction of the
//! change itself, are folded into the log in order, each exactly once: the head remembers the
//! last one folded.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;
use switchyard_audit::{Frontier, Hash, Node, Record, merkle};

use crate::{Kind, Store, StoreError, on_pool, plain_text};

/// A record to append (its seq is given when it is appended).
#[derive(Debug)]
pub struct AuditEntry {
    /// When it happened, Unix milliseconds.
    pub at: i64,
    /// `call` or `admin`.
    pub event: &'static str,
    /// The team concerned (for exports by tenant).
    pub team_id: Option<String>,
    /// The key concerned.
    pub key_id: Option<String>,
    /// The record, written as canonical JSON with its `seq` when appended.
    pub body: Box<dyn Record>,
}

/// Admin changes to fold into the log, read after the head's last one.
#[derive(Debug)]
pub struct AdminBatch {
    /// The last change folded before these (the head's `changes_seq` when they were read).
    pub after: i64,
    /// The last change among these.
    pub through: i64,
    /// Their records, in order.
    pub entries: Vec<AuditEntry>,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its place in the log, from 0.
    pub seq: u64,
    /// When it happened.
    pub at: i64,
    /// `call` or `admin`.
    pub event: String,
    /// The team concerned.
    pub team_id: Option<String>,
    /// The key concerned.
    pub key_id: Option<String>,
    /// The record as hashed: canonical JSON.
    pub body: String,
}

/// The tree's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    /// Records in the log.
    pub size: u64,
    /// The tree's root.
    pub root: Hash,
    /// The last admin change folded in.
    pub changes_seq: i64,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree's size.
    pub size: u64,
    /// When it was signed.
    pub at: i64,
    /// The tree's root.
    pub root: Hash,
    /// The verifier key that signed it.
    pub key: String,
    /// The signed note.
    pub note: String,
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only records after this seq.
    pub after: Option<u64>,
    /// Only records before this seq (a checkpoint's size).
    pub before: Option<u64>,
    /// Only records from this time on.
    pub since: Option<i64>,
    /// Only records before this time.
    pub until: Option<i64>,
    /// Only this team's.
    pub team_id: Option<String>,
    /// Only this key's.
    pub key_id: Option<String>,
    /// Only this event's.
    pub event: Option<String>,
    /// At most this many (1 to 1000).
    pub limit: u32,
}

/// The nodes whose keys are in a JSON array (one bound text, on either database), by kind.
const NODES_SQL: [&str; 2] = [
    "SELECT node, hash FROM audit_nodes WHERE node IN (SELECT value FROM json_each(?))",
    "SELECT node, hash FROM audit_nodes \
     WHERE node IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)",
];

/// A node's key in `audit_nodes`.
fn node_key((level, index): Node) -> i64 {
    ((i64::from(level)) << 56) | (index as i64)
}

fn hash_of(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt {
        column: "hash",
        error: "not 32 bytes".to_owned(),
    })
}

fn seq_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Rows per insert statement (see `spend.rs`): a few statement texts, each prepared once.
const CHUNKS: [usize; 5] = [64, 16, 4, 2, 1];

/// `INSERT INTO table (columns) VALUES (…), …` for `rows` rows of `width` values.
fn insert_sql(head: &str, width: usize, rows: usize, kind: Kind) -> String {
    let mut sql = head.to_owned();
    let mut n = 1;
    for row in 0..rows {
        sql.push_str(if row == 0 { " VALUES (" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            match kind {
                Kind::Sqlite => sql.push('?'),
                Kind::Postgres => {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
            }
            n += 1;
        }
        sql.push(')');
    }
    sql
}

/// Splits `total` rows into [`CHUNKS`] sizes, largest first.
fn chunks(mut total: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    for size in CHUNKS {
        while total >= size {
            sizes.push(size);
            total -= size;
        }
    }
    sizes
}

/// The frontier's nodes for a tree of `size`, as keys.
fn frontier_keys(size: u64) -> Vec<i64> {
    merkle::subtrees(0, size)
        .into_iter()
        .map(node_key)
        .collect()
}

impl Store {
    /// Appends `entries` (model calls), after the admin changes of `admin` when they are the
    /// next to fold (another instance may have folded them meanwhile: then they are left out,
    /// and the caller reads on from the head). Returns the new head, committed.
    pub async fn audit_append(
        &self,
        admin: Option<AdminBatch>,
        entries: &[AuditEntry],
    ) -> Result<AuditHead, StoreError> {
        for entry in admin.iter().flat_map(|batch| &batch.entries).chain(entries) {
            plain_text([entry.team_id.as_deref(), entry.key_id.as_deref()])?;
        }
        let kind = self.kind();
        on_pool!(self, |pool, begin, lock| {
            let mut connection = pool.acquire().await?;
            if kind == Kind::Sqlite {
                // A checkpoint may cover these records as soon as this commits: make the commit
                // durable against power loss too, not only against the process dying.
                sqlx::query("PRAGMA synchronous = FULL")
                    .execute(&mut *connection)
                    .await?;
            }
            let result = async {
                let mut tx = sqlx::Connection::begin_with(&mut *connection, begin).await?;
                let (size, mut changes_seq): (i64, i64) = sqlx::query_as(if lock.is_empty() {
                    "SELECT size, changes_seq FROM audit_head WHERE id = 1"
                } else {
                    "SELECT size, changes_seq FROM audit_head WHERE id = 1 FOR UPDATE"
                })
                .fetch_one(&mut *tx)
                .await?;
                let size = seq_of(size);
                let keys = frontier_keys(size);
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(NODES_SQL[kind as usize])
                    .bind(serde_json::to_string(&keys).unwrap_or_default())
                    .fetch_all(&mut *tx)
                    .await?;
                let mut found: HashMap<i64, Vec<u8>> = rows.into_iter().collect();
                let hashes = keys
                    .iter()
                    .map(|key| found.remove(key).map(hash_of).transpose())
                    .collect::<Result<Option<Vec<Hash>>, StoreError>>()?;
                let mut frontier = hashes
                    .and_then(|hashes| Frontier::new(size, hashes))
                    .ok_or_else(|| StoreError::Corrupt {
                        column: "audit_nodes",
                        error: format!("the frontier of the tree of {size} is missing"),
                    })?;
                let mut all: Vec<&AuditEntry> = Vec::with_capacity(entries.len());
                if let Some(batch) = &admin
                    && batch.after == changes_seq
                {
                    changes_seq = batch.through;
                    all.extend(&batch.entries);
                }
                all.extend(entries.iter());
                let mut records = Vec::with_capacity(all.len());
                let mut nodes = Vec::with_capacity(all.len() * 2);
                for entry in all {
                    let seq = frontier.size();
                    let body = entry
                        .body
                        .canonical(seq)
                        .map_err(|error| StoreError::Invalid(error.to_string()))?;
                    nodes.extend(frontier.push(merkle::leaf_hash(body.as_bytes())));
                    records.push((db(seq), entry, body));
                }
                let mut rest = records.as_slice();
                for rows in chunks(rest.len()) {
                    let (chunk, after) = rest.split_at(rows);
                    rest = after;
                    let sql = insert_sql(
                        "INSERT INTO audit_log (seq, at, event, team_id, key_id, body)",
                        6,
                        rows,
                        kind,
                    );
                    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (seq, entry, body) in chunk {
                        insert = insert
                            .bind(*seq)
                            .bind(entry.at)
                            .bind(entry.event)
                            .bind(entry.team_id.as_deref())
                            .bind(entry.key_id.as_deref())
                            .bind(body.as_str());
                    }
                    insert.execute(&mut *tx).await?;
                }
                let mut rest = nodes.as_slice();
                for rows in chunks(rest.len()) {
                    let (chunk, after) = rest.split_at(rows);
                    rest = after;
                    let sql = insert_sql("INSERT INTO audit_nodes (node, hash)", 2, rows, kind);
                    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (node, hash) in chunk {
                        insert = insert.bind(node_key(*node)).bind(hash.as_slice());
                    }
                    insert.execute(&mut *tx).await?;
                }
                sqlx::query("UPDATE audit_head SET size = $1, changes_seq = $2 WHERE id = 1")
                    .bind(db(frontier.size()))
                    .bind(changes_seq)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(AuditHead {
                    size: frontier.size(),
                    root: frontier.root(),
                    changes_seq,
                })
            }
            .await;
            if kind == Kind::Sqlite {
                sqlx::query("PRAGMA synchronous = NORMAL")
                    .execute(&mut *connection)
                    .await?;
            }
            result
        })
    }

    /// The head as committed: size, root and the last admin change folded.
    pub async fn audit_head(&self) -> Result<AuditHead, StoreError> {
        let (size, changes_seq): (i64, i64) = on_pool!(self, |pool, _begin, _lock| {
            sqlx::query_as("SELECT size, changes_seq FROM audit_head WHERE id = 1")
                .fetch_one(pool)
                .await?
        });
        let size = seq_of(size);
        let hashes = self.audit_node_hashes(&merkle::subtrees(0, size)).await?;
        Ok(AuditHead {
            size,
            root: merkle::fold(&hashes),
            changes_seq,
        })
    }

    /// The hashes of `nodes`, in order; a node the tree lacks is corruption.
    pub async fn audit_node_hashes(&self, nodes: &[Node]) -> Result<Vec<Hash>, StoreError> {
        let keys: Vec<i64> = nodes.iter().copied().map(node_key).collect();
        let mut found: HashMap<i64, Hash> = HashMap::with_capacity(keys.len());
        for part in keys.chunks(500) {
            let list = serde_json::to_string(part).unwrap_or_default();
            let rows: Vec<(i64, Vec<u8>)> = on_pool!(self, |pool, _begin, _lock| {
                sqlx::query_as(NODES_SQL[self.kind() as usize])
                    .bind(list)
                    .fetch_all(pool)
                    .await?
            });
            for (key, hash) in rows {
                found.insert(key, hash_of(hash)?);
            }
        }
        keys.iter()
            .map(|key| {
                found.get(key).copied().ok_or_else(|| StoreError::Corrupt {
                    column: "audit_nodes",
                    error: format!("node {key:#x} is missing"),
                })
            })
            .collect()
    }

    /// The hashes of leaf ranges (as a proof names them), from the stored subtrees.
    async fn audit_ranges(&self, ranges: &[Vec<(u64, u64)>]) -> Result<Vec<Vec<Hash>>, StoreError> {
        let mut nodes: Vec<Node> = Vec::new();
        let parts: Vec<Vec<Vec<Node>>> = ranges
            .iter()
            .map(|proof| {
                proof
                    .iter()
                    .map(|&(start, end)| {
                        let subtrees = merkle::subtrees(start, end);
                        nodes.extend_from_slice(&subtrees);
                        subtrees
                    })
                    .collect()
            })
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let hashes = self.audit_node_hashes(&nodes).await?;
        let known: BTreeMap<Node, Hash> = nodes.into_iter().zip(hashes).collect();
        Ok(parts
            .iter()
            .map(|proof| {
                proof
                    .iter()
                    .map(|subtrees| {
                        let hashes: Vec<Hash> = subtrees
                            .iter()
                            .filter_map(|node| known.get(node).copied())
                            .collect();
                        merkle::fold(&hashes)
                    })
                    .collect()
            })
            .collect())
    }

    /// Inclusion proofs of records `seqs` in the tree of `size` (one query for all).
    pub async fn audit_inclusion_proofs(
        &self,
        seqs: &[u64],
        size: u64,
    ) -> Result<Vec<Vec<Hash>>, StoreError> {
        let ranges = seqs
            .iter()
            .map(|&seq| merkle::inclusion_ranges(seq, size))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StoreError::Invalid(error.to_string()))?;
        self.audit_ranges(&ranges).await
    }

    /// The proof that the tree of `first` records is a prefix of the tree of `second`.
    pub async fn audit_consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        if first == second {
            return Ok(Vec::new());
        }
        let ranges = merkle::consistency_ranges(first, second)
            .map_err(|error| StoreError::Invalid(error.to_string()))?;
        Ok(self
            .audit_ranges(&[ranges])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// Stores a signed checkpoint (and its key, the first time it signs); false when one of
    /// that size was stored already.
    pub async fn audit_add_checkpoint(
        &self,
        checkpoint: &StoredCheckpoint,
    ) -> Result<bool, StoreError> {
        let inserted = on_pool!(self, |pool, _begin, _lock| {
            sqlx::query(
                "INSERT INTO audit_keys (key, first_used) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&checkpoint.key)
            .bind(checkpoint.at)
            .execute(pool)
            .await?;
            sqlx::query(
                "INSERT INTO audit_checkpoints (size, at, root, key, note) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(db(checkpoint.size))
            .bind(checkpoint.at)
            .bind(checkpoint.root.as_slice())
            .bind(&checkpoint.key)
            .bind(&checkpoint.note)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Checkpoints by size: those of size at least `from` and at most `to`, smallest first,
    /// at most `limit`.
    pub async fn audit_checkpoints(
        &self,
        from: u64,
        to: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = on_pool!(self, |pool, _begin, _lock| {
            sqlx::query(
                "SELECT size, at, root, key, note FROM audit_checkpoints \
                 WHERE size >= $1 AND size <= $2 ORDER BY size LIMIT $3",
            )
            .bind(db(from))
            .bind(db(to))
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| checkpoint_of(&row))
            .collect::<Result<Vec<_>, StoreError>>()?
        });
        Ok(rows)
    }

    /// Checkpoints signed from `since` until before `until` (Unix milliseconds; open ends
    /// when `None`), smallest first, at most `limit`; and the last one signed before `since`.
    pub async fn audit_checkpoints_signed(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        limit: u32,
    ) -> Result<(Option<StoredCheckpoint>, Vec<StoredCheckpoint>), StoreError> {
        let (since, until) = (since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX));
        on_pool!(self, |pool, _begin, _lock| {
            let before = sqlx::query(
                "SELECT size, at, root, key, note FROM audit_checkpoints \
                 WHERE at < $1 ORDER BY at DESC, size DESC LIMIT 1",
            )
            .bind(since)
            .fetch_optional(pool)
            .await?
            .map(|row| checkpoint_of(&row))
            .transpose()?;
            let within = sqlx::query(
                "SELECT size, at, root, key, note FROM audit_checkpoints \
                 WHERE at >= $1 AND at < $2 ORDER BY size LIMIT $3",
            )
            .bind(since)
            .bind(until)
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(pool)
            .await?
            .iter()
            .map(checkpoint_of)
            .collect::<Result<Vec<_>, StoreError>>()?;
            Ok((before, within))
        })
    }

    /// The largest checkpoint, if any.
    pub async fn audit_latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        on_pool!(self, |pool, _begin, _lock| {
            sqlx::query(
                "SELECT size, at, root, key, note FROM audit_checkpoints \
                 ORDER BY size DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
            .map(|row| checkpoint_of(&row))
            .transpose()
        })
    }

    /// Every key that signed a checkpoint here, oldest first.
    pub async fn audit_keys(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, |pool, _begin, _lock| {
            sqlx::query_as("SELECT key, first_used FROM audit_keys ORDER BY first_used, key")
                .fetch_all(pool)
                .await?
        }))
    }

    /// Records by `query`, in seq order.
    pub async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let kind = self.kind();
        let mut sql =
            String::from("SELECT seq, at, event, team_id, key_id, body FROM audit_log WHERE 1 = 1");
        let mut n = 0;
        let mut param = |sql: &mut String, clause: &str| {
            n += 1;
            sql.push_str(" AND ");
            sql.push_str(clause);
            match kind {
                Kind::Sqlite => sql.push('?'),
                Kind::Postgres => {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
            }
        };
        let after = query.after.map(db);
        let before = query.before.map(db);
        if after.is_some() {
            param(&mut sql, "seq > ");
        }
        if before.is_some() {
            param(&mut sql, "seq < ");
        }
        if query.since.is_some() {
            param(&mut sql, "at >= ");
        }
        if query.until.is_some() {
            param(&mut sql, "at < ");
        }
        if query.team_id.is_some() {
            param(&mut sql, "team_id = ");
        }
        if query.key_id.is_some() {
            param(&mut sql, "key_id = ");
        }
        if query.event.is_some() {
            param(&mut sql, "event = ");
        }
        sql.push_str(" ORDER BY seq LIMIT ");
        sql.push_str(&query.limit.clamp(1, 1000).to_string());
        on_pool!(self, |pool, _begin, _lock| {
            let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for value in [after, before, query.since, query.until]
                .into_iter()
                .flatten()
            {
                statement = statement.bind(value);
            }
            for value in [&query.team_id, &query.key_id, &query.event]
                .into_iter()
                .flatten()
            {
                statement = statement.bind(value);
            }
            statement
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(AuditRecord {
                        seq: seq_of(row.try_get("seq")?),
                        at: row.try_get("at")?,
                        event: row.try_get("event")?,
                        team_id: row.try_get("team_id")?,
                        key_id: row.try_get("key_id")?,
                        body: row.try_get("body")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// The first record written at or after `since` and the last written before `until`
    /// (by the time each was written; `None` when there is none).
    pub async fn audit_seq_bounds(
        &self,
        since: i64,
        until: i64,
    ) -> Result<(Option<u64>, Option<u64>), StoreError> {
        let (first, last): (Option<i64>, Option<i64>) = on_pool!(self, |pool, _begin, _lock| {
            let first = sqlx::query_scalar(
                "SELECT seq FROM audit_log WHERE at >= $1 ORDER BY at, seq LIMIT 1",
            )
            .bind(since)
            .fetch_optional(pool)
            .await?;
            let last = sqlx::query_scalar(
                "SELECT seq FROM audit_log WHERE at < $1 ORDER BY at DESC, seq DESC LIMIT 1",
            )
            .bind(until)
            .fetch_optional(pool)
            .await?;
            (first, last)
        });
        Ok((first.map(seq_of), last.map(seq_of)))
    }

    /// The first record still held (0 when none was deleted; the size when none is held).
    pub async fn audit_retained_from(&self) -> Result<u64, StoreError> {
        let (first, size): (Option<i64>, i64) = on_pool!(self, |pool, _begin, _lock| {
            sqlx::query_as(
                "SELECT (SELECT MIN(seq) FROM audit_log), (SELECT size FROM audit_head WHERE id = 1)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(seq_of(first.unwrap_or(size)))
    }

    /// Deletes up to `limit` records older than `before` (Unix milliseconds), oldest first,
    /// only ever from the start of the log; their nodes stay, so later records keep their
    /// proofs. Returns how many went.
    pub async fn audit_prune(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
        let limit = i64::from(limit.max(1));
        let kind = self.kind();
        on_pool!(self, |pool, begin, _lock| {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(match kind {
                Kind::Sqlite => "UPDATE audit_prune_gate SET open = TRUE WHERE id = 1",
                Kind::Postgres => "SET LOCAL switchyard.audit_prune = 'on'",
            })
            .execute(&mut *tx)
            .await?;
            // Only a prefix: the oldest records, up to the first that is still young.
            let deleted = sqlx::query(
                "DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log \
                 WHERE seq < COALESCE((SELECT MIN(seq) FROM audit_log WHERE at >= $1), \
                                      (SELECT size FROM audit_head WHERE id = 1)) \
                 ORDER BY seq LIMIT $2)",
            )
            .bind(before)
            .bind(limit)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if kind == Kind::Sqlite {
                sqlx::query("UPDATE audit_prune_gate SET open = FALSE WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(deleted)
        })
    }
}

fn checkpoint_of<R: Row>(row: &R) -> Result<StoredCheckpoint, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredCheckpoint {
        size: seq_of(row.try_get("size")?),
        at: row.try_get("at")?,
        root: hash_of(row.try_get("root")?)?,
        key: row.try_get("key")?,
        note: row.try_get("note")?,
    })
}
