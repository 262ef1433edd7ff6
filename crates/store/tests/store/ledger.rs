//! The ledger's tables in the store suite: spend records and their daily aggregates, and the
//! migration that brought them.

use switchyard_ledger::Day;
use switchyard_store::{
    Dimension, GuardVerdict, Options, SpendQuery, SpendRecord, Store, StoreError, new_id,
};

use super::{key, open, team};

pub(crate) fn spend(
    key: Option<&str>,
    team: Option<&str>,
    at: i64,
    cost_nanos: i64,
    tags: &[&str],
) -> SpendRecord {
    SpendRecord {
        request_id: new_id("req"),
        at,
        key_id: key.map(str::to_owned),
        team_id: team.map(str::to_owned),
        user_id: None,
        model: "gpt".to_owned(),
        deployment: Some("openai/gpt-4o".to_owned()),
        kind: "chat".to_owned(),
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        prompt_tokens: 100,
        completion_tokens: 20,
        cache_read_tokens: 10,
        reasoning_tokens: 5,
        cost_nanos,
        status: 200,
        attempts: 1,
        latency_ms: 12,
        ttft_ms: Some(3),
        ..SpendRecord::default()
    }
}

/// 2026-12-06T12:00:00Z.
const NOON: i64 = 1_796_558_400_000;
const DAY_MS: i64 = 86_400_000;

pub(crate) async fn spend_records_and_their_daily_aggregates_agree(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let mut failed = spend(Some("k1"), None, NOON + 1, 0, &[]);
    failed.status = 502;
    let mut guarded = spend(Some("k1"), Some("t1"), NOON - DAY_MS, 1_000, &["ci"]);
    guarded.guards = vec![
        GuardVerdict {
            entity: "EMAIL".to_owned(),
            action: "tokenize".to_owned(),
            count: 2,
            detail: None,
        },
        GuardVerdict {
            entity: "PROMPT_INJECTION".to_owned(),
            action: "flag".to_owned(),
            count: 1,
            detail: Some("score 0.93, tier model".to_owned()),
        },
    ];
    let records = vec![
        guarded,
        spend(Some("k1"), Some("t1"), NOON, 2_500, &["ci", "batch", "ci"]),
        spend(Some("k2"), Some("t1"), NOON, 7, &["it's \"quoted\""]),
        spend(None, None, NOON, 40, &[]),
        failed,
    ];
    store.record_spend(&records).await.unwrap();
    let today = Day::of_ms(NOON);
    let yesterday = Day::of_ms(NOON - DAY_MS);
    // Budgets read the aggregates: the key's spend from a day on.
    assert_eq!(
        store
            .spent_since(Dimension::Key, "k1", yesterday)
            .await
            .unwrap(),
        3_500
    );
    assert_eq!(
        store
            .spent_since(Dimension::Key, "k1", today)
            .await
            .unwrap(),
        2_500
    );
    assert_eq!(
        store
            .spent_since(Dimension::Team, "t1", today)
            .await
            .unwrap(),
        2_507
    );
    assert_eq!(
        store
            .spent_since(Dimension::Key, "nobody", yesterday)
            .await
            .unwrap(),
        0
    );
    // A tag counts once per call, however often the call names it.
    let tags = store
        .daily_spend(Dimension::Tag, Some("ci"), yesterday, today)
        .await
        .unwrap();
    assert_eq!(
        tags.iter().map(|row| row.requests).collect::<Vec<_>>(),
        [1, 1]
    );
    let all = store
        .daily_spend(Dimension::All, None, yesterday, today)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].day, "2026-12-06");
    assert_eq!((all[1].requests, all[1].failures), (4, 1));
    assert_eq!(all[1].prompt_tokens, 400);
    assert_eq!(all[1].cost_nanos, 2_547);
    // The aggregates equal the records.
    let raw = store.spend_records(&SpendQuery::default()).await.unwrap();
    assert_eq!(raw.len(), 5);
    assert_eq!(
        raw.iter().map(|record| record.cost_nanos).sum::<i64>(),
        all.iter().map(|row| row.cost_nanos).sum::<i64>()
    );
    let mut first = records[0].clone();
    first.seq = raw[0].seq;
    assert_eq!(raw[0], first, "stored verbatim, guard verdicts included");
    assert!(raw[1].guards.is_empty());
    assert_eq!(raw[2].tags, ["it's \"quoted\""]);
    // Filters and pages.
    let k1 = SpendQuery {
        key_id: Some("k1".to_owned()),
        limit: 2,
        ..SpendQuery::default()
    };
    let page = store.spend_records(&k1).await.unwrap();
    assert_eq!(page.len(), 2);
    let next = store
        .spend_records(&SpendQuery {
            after: page[1].seq,
            ..k1.clone()
        })
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].status, 502);
    let today_only = SpendQuery {
        from_ms: today.start_ms(),
        to_ms: today.next().start_ms(),
        ..SpendQuery::default()
    };
    assert_eq!(store.spend_records(&today_only).await.unwrap().len(), 4);
    // Plain text with NUL is refused before anything is written.
    let mut bad = spend(Some("k1"), None, NOON, 1, &["a\0b"]);
    assert!(matches!(
        store.record_spend(&[bad.clone()]).await,
        Err(StoreError::Invalid(_))
    ));
    bad.tags.clear();
    bad.model = "m\0".to_owned();
    assert!(store.record_spend(&[bad]).await.is_err());
    assert_eq!(
        store
            .spend_records(&SpendQuery::default())
            .await
            .unwrap()
            .len(),
        5
    );
    cleanup.run(store).await;
}

pub(crate) async fn concurrent_spend_writers_lose_nothing(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let writers = (0..8).map(|writer| {
        let store = store.clone();
        async move {
            for batch in 0..5 {
                let records: Vec<SpendRecord> = (0..40)
                    .map(|n| {
                        spend(
                            Some(&format!("k{}", n % 3)),
                            Some("t"),
                            NOON + writer * 10 + batch,
                            1_000 + n,
                            &["load"],
                        )
                    })
                    .collect();
                store.record_spend(&records).await.unwrap();
            }
        }
    });
    futures_util::future::join_all(writers).await;
    let raw = store
        .spend_records(&SpendQuery {
            limit: 10_000,
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(raw.len(), 8 * 5 * 40);
    let sum: i64 = raw.iter().map(|record| record.cost_nanos).sum();
    let day = Day::of_ms(NOON);
    assert_eq!(
        store.spent_since(Dimension::Team, "t", day).await.unwrap(),
        sum
    );
    let keys: i64 = futures_util::future::join_all((0..3).map(|n| {
        let store = store.clone();
        async move {
            store
                .spent_since(Dimension::Key, &format!("k{n}"), day)
                .await
                .unwrap()
        }
    }))
    .await
    .into_iter()
    .sum();
    assert_eq!(keys, sum);
    let tag = store
        .daily_spend(Dimension::Tag, Some("load"), day, day)
        .await
        .unwrap();
    assert_eq!(tag[0].requests, 1600);
    cleanup.run(store).await;
}

pub(crate) async fn old_spend_records_are_pruned_and_aggregates_stay(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let old: Vec<SpendRecord> = (0..25)
        .map(|n| spend(Some("k"), None, NOON - 100 * DAY_MS + n, 10, &[]))
        .collect();
    store.record_spend(&old).await.unwrap();
    store
        .record_spend(&[spend(Some("k"), None, NOON, 10, &[])])
        .await
        .unwrap();
    let cutoff = NOON - 90 * DAY_MS;
    assert_eq!(store.prune_spend(cutoff, 10).await.unwrap(), 10);
    assert_eq!(store.prune_spend(cutoff, 10).await.unwrap(), 10);
    assert_eq!(store.prune_spend(cutoff, 10).await.unwrap(), 5);
    assert_eq!(store.prune_spend(cutoff, 10).await.unwrap(), 0);
    assert_eq!(
        store
            .spend_records(&SpendQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
    // What budgets and reports read is untouched.
    let since = Day::of_ms(NOON - 200 * DAY_MS);
    assert_eq!(
        store.spent_since(Dimension::Key, "k", since).await.unwrap(),
        260
    );
    cleanup.run(store).await;
}

/// A database as the version before the ledger left it (0001 only, with teams and keys in it)
/// gets the ledger's migrations at start and keeps everything.
pub(crate) async fn a_database_of_the_previous_version_is_migrated_in_place(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let Some(url) = cleanup.url().map(str::to_owned) else {
        // An in-memory database does not outlive its store.
        cleanup.run(store).await;
        return;
    };
    let team = team("kept");
    store.insert_team(&team, "master").await.unwrap();
    let stored = key(Some(&team.id), "kept-hash");
    store.insert_key(&stored, "master").await.unwrap();
    store.close().await;
    // Back to version 1: the ledger's and the audit log's migrations undone, by hand.
    let mut statements = vec![
        "DROP TABLE spend_daily",
        "DROP TABLE spend",
        "DROP TABLE audit_log",
        "DROP TABLE audit_nodes",
        "DROP TABLE audit_head",
        "DROP TABLE audit_checkpoints",
        "DROP TABLE audit_keys",
    ];
    if backend == "postgres" {
        statements.extend([
            "DROP FUNCTION audit_refuse",
            "DROP FUNCTION audit_log_guard",
            "DROP FUNCTION audit_head_guard",
        ]);
    } else {
        statements.push("DROP TABLE audit_prune_gate");
    }
    statements.push("DELETE FROM _sqlx_migrations WHERE version >= 2");
    for statement in statements {
        if backend == "postgres" {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(statement).execute(&pool).await.unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(statement).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let store = Store::connect(&Options::new(&url)).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 6);
    assert_eq!(store.team(&team.id).await.unwrap(), team);
    assert_eq!(store.key(&stored.id).await.unwrap().hash, "kept-hash");
    store
        .record_spend(&[spend(Some(&stored.id), Some(&team.id), NOON, 5, &[])])
        .await
        .unwrap();
    assert_eq!(
        store
            .spent_since(Dimension::Team, &team.id, Day::of_ms(NOON))
            .await
            .unwrap(),
        5
    );
    cleanup.run(store).await;
}

/// Records written in the wide layout (a column per field, before migration 6) come out of
/// the compact one (`detail`) as they went in, in order, and new records follow them.
pub(crate) async fn spend_records_of_the_wide_layout_move_into_detail_whole(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let Some(url) = cleanup.url().map(str::to_owned) else {
        cleanup.run(store).await;
        return;
    };
    store.close().await;
    let (identity, overriding) = if backend == "postgres" {
        (
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            "OVERRIDING SYSTEM VALUE",
        )
    } else {
        ("INTEGER PRIMARY KEY AUTOINCREMENT", "")
    };
    // The table as migrations 2, 3 and 5 left it, with two records: one with every field
    // set, one with the optional ones empty.
    let statements = [
        "DROP TABLE spend".to_owned(),
        format!(
            "CREATE TABLE spend (seq {identity}, request_id TEXT NOT NULL, at BIGINT NOT NULL, \
             key_id TEXT, team_id TEXT, user_id TEXT, model TEXT NOT NULL, deployment TEXT, \
             kind TEXT NOT NULL, tags TEXT NOT NULL, prompt_tokens BIGINT NOT NULL, \
             completion_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, \
             cache_write_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL, \
             cost_nanos BIGINT NOT NULL, estimated BOOLEAN NOT NULL, unpriced BOOLEAN NOT NULL, \
             cache_hit BOOLEAN NOT NULL, stream BOOLEAN NOT NULL, status INTEGER NOT NULL, \
             attempts INTEGER NOT NULL, latency_ms BIGINT NOT NULL, ttft_ms BIGINT, \
             guards TEXT NOT NULL DEFAULT '')"
        ),
        "CREATE INDEX spend_by_time ON spend (at, seq)".to_owned(),
        format!(
            "INSERT INTO spend (seq, request_id, at, key_id, team_id, user_id, model, deployment, \
             kind, tags, prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, \
             reasoning_tokens, cost_nanos, estimated, unpriced, cache_hit, stream, status, \
             attempts, latency_ms, ttft_ms, guards) {overriding} VALUES \
             (7, 'req_a', {NOON}, 'k1', 't1', 'u1', 'gpt', 'openai/gpt-4o', 'chat', \
              '[\"ci\",\"nightly\"]', 100, 20, 10, 4, 5, 1234, TRUE, TRUE, TRUE, TRUE, 200, 2, \
              12, 3, '[{{\"entity\":\"EMAIL\",\"action\":\"tokenize\",\"count\":2}}]'), \
             (9, 'req_b', {}, NULL, NULL, NULL, 'embed', NULL, 'embeddings', '[]', 0, 0, 0, 0, \
              0, 0, FALSE, FALSE, FALSE, FALSE, 502, 1, 40, NULL, '')",
            NOON + 1
        ),
        "DELETE FROM _sqlx_migrations WHERE version >= 6".to_owned(),
    ];
    // PostgreSQL's sequence moves past the numbers given, as it had when they were drawn
    // (SQLite's follows the largest inserted).
    let statements: Vec<String> = if backend == "postgres" {
        statements
            .into_iter()
            .chain(["SELECT setval(pg_get_serial_sequence('spend', 'seq'), 9)".to_owned()])
            .collect()
    } else {
        statements.into()
    };
    for statement in &statements {
        if backend == "postgres" {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
    let store = Store::connect(&Options::new(&url)).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 6);
    let query = SpendQuery {
        after: 0,
        from_ms: 0,
        to_ms: i64::MAX,
        limit: 10,
        ..SpendQuery::default()
    };
    let full = SpendRecord {
        seq: 7,
        request_id: "req_a".to_owned(),
        at: NOON,
        key_id: Some("k1".to_owned()),
        team_id: Some("t1".to_owned()),
        user_id: Some("u1".to_owned()),
        model: "gpt".to_owned(),
        deployment: Some("openai/gpt-4o".to_owned()),
        kind: "chat".to_owned(),
        tags: vec!["ci".to_owned(), "nightly".to_owned()],
        prompt_tokens: 100,
        completion_tokens: 20,
        cache_read_tokens: 10,
        cache_write_tokens: 4,
        reasoning_tokens: 5,
        cost_nanos: 1234,
        estimated: true,
        unpriced: true,
        cache_hit: true,
        stream: true,
        status: 200,
        attempts: 2,
        latency_ms: 12,
        ttft_ms: Some(3),
        guards: vec![GuardVerdict {
            entity: "EMAIL".to_owned(),
            action: "tokenize".to_owned(),
            count: 2,
            detail: None,
        }],
    };
    let bare = SpendRecord {
        seq: 9,
        request_id: "req_b".to_owned(),
        at: NOON + 1,
        model: "embed".to_owned(),
        kind: "embeddings".to_owned(),
        status: 502,
        attempts: 1,
        latency_ms: 40,
        ..SpendRecord::default()
    };
    assert_eq!(
        store.spend_records(&query).await.unwrap(),
        vec![full.clone(), bare.clone()]
    );
    // The key's index came along: its filter finds its record.
    let by_key = SpendQuery {
        key_id: Some("k1".to_owned()),
        ..query.clone()
    };
    assert_eq!(store.spend_records(&by_key).await.unwrap(), vec![full]);
    // A new record goes after them, and reads back whole.
    let mut next = spend(Some("k2"), None, NOON + 2, 50, &["ci"]);
    store
        .record_spend(std::slice::from_ref(&next))
        .await
        .unwrap();
    let records = store.spend_records(&query).await.unwrap();
    assert_eq!(records.len(), 3);
    assert!(records[2].seq > 9, "{records:?}");
    next.seq = records[2].seq;
    assert_eq!(records[2], next);
    cleanup.run(store).await;
}
