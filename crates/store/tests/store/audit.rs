//! The audit log's tables in the store suite: appends from several writers into one tree,
//! proofs from the stored nodes, admin changes folded once, checkpoints, retention, and the
//! triggers that keep it append-only.

use serde_json::{Map, Value, json};
use switchyard_audit::merkle;
use switchyard_store::{
    AdminBatch, AuditEntry, AuditQuery, Options, Store, StoredCheckpoint, now_ms,
};

use super::{open, team};

pub(crate) fn entry(at: i64, team: Option<&str>, key: Option<&str>, n: u64) -> AuditEntry {
    let mut body = Map::new();
    body.insert("event".into(), json!("call"));
    body.insert("request_id".into(), json!(format!("req-{n}")));
    body.insert("status".into(), json!(200));
    body.insert("model".into(), json!("gpt-4o \u{1F600}"));
    AuditEntry {
        at,
        event: "call",
        team_id: team.map(str::to_owned),
        key_id: key.map(str::to_owned),
        body: Box::new(body),
    }
}

/// Every record, in order.
async fn all_records(store: &Store) -> Vec<switchyard_store::AuditRecord> {
    let mut records = Vec::new();
    loop {
        let page = store
            .audit_records(&AuditQuery {
                after: records
                    .last()
                    .map(|r: &switchyard_store::AuditRecord| r.seq),
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            return records;
        }
        records.extend(page);
    }
}

pub(crate) async fn audit_appends_are_proven_from_the_stored_tree(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let empty = store.audit_head().await.unwrap();
    assert_eq!((empty.size, empty.root), (0, merkle::empty_root()));
    let at = now_ms();
    let mut heads = Vec::new();
    for batch in 0..7u64 {
        let entries: Vec<AuditEntry> = (0..batch * 9 + 1)
            .map(|n| {
                entry(
                    at + n as i64,
                    Some("team-a"),
                    Some(&format!("key-{}", n % 3)),
                    n,
                )
            })
            .collect();
        heads.push(store.audit_append(None, &entries).await.unwrap());
    }
    let head = store.audit_head().await.unwrap();
    assert_eq!(head, *heads.last().unwrap());
    let records = all_records(&store).await;
    assert_eq!(head.size, records.len() as u64);
    assert!(records.iter().enumerate().all(|(i, r)| r.seq == i as u64));
    // Each body is canonical JSON with its own seq, and the tree is the tree of those bodies.
    let leaves: Vec<_> = records
        .iter()
        .map(|r| merkle::leaf_hash(r.body.as_bytes()))
        .collect();
    assert_eq!(merkle::root(&leaves), head.root);
    let first: Value = serde_json::from_str(&records[0].body).unwrap();
    assert_eq!(first["seq"], 0);
    assert_eq!(
        switchyard_audit::canonical(&first).unwrap(),
        records[0].body
    );

    let seqs: Vec<u64> = (0..head.size).collect();
    let proofs = store
        .audit_inclusion_proofs(&seqs, head.size)
        .await
        .unwrap();
    for (seq, proof) in seqs.iter().zip(&proofs) {
        merkle::verify_inclusion(*seq, head.size, &leaves[*seq as usize], proof, &head.root)
            .unwrap();
    }
    for earlier in &heads {
        let proof = store
            .audit_consistency_proof(earlier.size, head.size)
            .await
            .unwrap();
        merkle::verify_consistency(earlier.size, head.size, &proof, &earlier.root, &head.root)
            .unwrap();
    }
    // Filters.
    let by_key = store
        .audit_records(&AuditQuery {
            key_id: Some("key-1".into()),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(!by_key.is_empty() && by_key.iter().all(|r| r.key_id.as_deref() == Some("key-1")));
    let window = store
        .audit_records(&AuditQuery {
            since: Some(at + 3),
            until: Some(at + 5),
            before: Some(10),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        window
            .iter()
            .all(|r| (at + 3..at + 5).contains(&r.at) && r.seq < 10)
    );
    assert!(!window.is_empty());
    cleanup.run(store).await;
}

pub(crate) async fn admin_changes_are_folded_in_once(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    for name in ["one", "two", "three"] {
        store.insert_team(&team(name), "master").await.unwrap();
    }
    let head = store.audit_head().await.unwrap();
    let changes = store.changes(head.changes_seq, None, 100).await.unwrap();
    assert_eq!(changes.len(), 3);
    let batch = || AdminBatch {
        after: head.changes_seq,
        through: changes.last().unwrap().seq,
        entries: changes
            .iter()
            .map(|change| {
                let mut body = Map::new();
                body.insert("event".into(), json!("admin"));
                body.insert("change".into(), json!(change.seq));
                AuditEntry {
                    at: change.at,
                    event: "admin",
                    team_id: None,
                    key_id: None,
                    body: Box::new(body),
                }
            })
            .collect(),
    };
    let calls = vec![entry(now_ms(), None, None, 1)];
    let head = store.audit_append(Some(batch()), &calls).await.unwrap();
    assert_eq!((head.size, head.changes_seq), (4, batch().through));
    // The same changes again (another instance read them too): left out.
    let again = store.audit_append(Some(batch()), &calls).await.unwrap();
    assert_eq!((again.size, again.changes_seq), (5, head.changes_seq));
    let events: Vec<String> = all_records(&store)
        .await
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(events, ["admin", "admin", "admin", "call", "call"]);
    cleanup.run(store).await;
}

pub(crate) async fn concurrent_audit_writers_share_one_tree(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let Some(url) = cleanup.url().map(str::to_owned) else {
        cleanup.run(store).await;
        return;
    };
    // Two stores on one database, as two instances: each appends 20 batches of 10.
    let other = Store::connect(&Options::new(&url)).await.unwrap();
    let write = |store: Store, writer: u64| async move {
        for batch in 0..20u64 {
            let entries: Vec<AuditEntry> = (0..10)
                .map(|n| entry(now_ms(), None, Some(&format!("w{writer}")), batch * 10 + n))
                .collect();
            store.audit_append(None, &entries).await.unwrap();
        }
    };
    tokio::join!(write(store.clone(), 1), write(other.clone(), 2));
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.size, 400);
    let records = all_records(&store).await;
    let leaves: Vec<_> = records
        .iter()
        .map(|r| merkle::leaf_hash(r.body.as_bytes()))
        .collect();
    assert_eq!(records.len(), 400);
    assert_eq!(merkle::root(&leaves), head.root);
    other.close().await;
    cleanup.run(store).await;
}

pub(crate) async fn the_audit_log_is_append_only_but_for_retention(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let Some(url) = cleanup.url().map(str::to_owned) else {
        cleanup.run(store).await;
        return;
    };
    let old = now_ms() - 400 * 86_400_000;
    let mut entries: Vec<AuditEntry> = (0..5).map(|n| entry(old, None, None, n)).collect();
    entries.extend((5..8).map(|n| entry(now_ms(), None, None, n)));
    // One young record among the old: retention stops at it (only a prefix goes).
    entries[3].at = now_ms();
    let head = store.audit_append(None, &entries).await.unwrap();
    let checkpoint = StoredCheckpoint {
        size: head.size,
        at: now_ms(),
        root: head.root,
        key: "audit.test+01020304+AAAA".into(),
        note: "note".into(),
    };
    assert!(store.audit_add_checkpoint(&checkpoint).await.unwrap());
    assert!(!store.audit_add_checkpoint(&checkpoint).await.unwrap());
    assert_eq!(
        store.audit_latest_checkpoint().await.unwrap().as_ref(),
        Some(&checkpoint)
    );
    assert_eq!(store.audit_keys().await.unwrap().len(), 1);
    let (before, within) = store
        .audit_checkpoints_signed(Some(checkpoint.at), None, 10)
        .await
        .unwrap();
    assert_eq!((before, within), (None, vec![checkpoint.clone()]));
    let (before, within) = store
        .audit_checkpoints_signed(Some(checkpoint.at + 1), None, 10)
        .await
        .unwrap();
    assert_eq!((before, within), (Some(checkpoint.clone()), vec![]));

    let refused = [
        "UPDATE audit_log SET body = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "UPDATE audit_nodes SET hash = hash",
        "DELETE FROM audit_nodes",
        "UPDATE audit_checkpoints SET note = 'forged'",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_head SET size = 2",
    ];
    for statement in refused {
        let error = if backend == "postgres" {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let result = sqlx::query(statement).execute(&pool).await;
            for truncate in [
                "TRUNCATE audit_log",
                "TRUNCATE audit_nodes",
                "TRUNCATE audit_head",
            ] {
                assert!(
                    sqlx::query(truncate).execute(&pool).await.is_err(),
                    "{truncate}"
                );
            }
            pool.close().await;
            result.err()
        } else {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let result = sqlx::query(statement).execute(&pool).await;
            pool.close().await;
            result.err()
        };
        assert!(error.is_some(), "{statement} was allowed");
        let error = error.unwrap();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }

    // Retention: the old prefix goes (records 0 to 2), the young record 3 stops it.
    let cutoff = now_ms() - 365 * 86_400_000;
    assert_eq!(store.audit_prune(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.audit_prune(cutoff, 100).await.unwrap(), 1);
    assert_eq!(store.audit_prune(cutoff, 100).await.unwrap(), 0);
    assert_eq!(store.audit_retained_from().await.unwrap(), 3);
    // The tree is whole: later records still prove their inclusion, and it grows on.
    let proof = store.audit_inclusion_proofs(&[6], head.size).await.unwrap();
    let record = &all_records(&store).await[3];
    assert_eq!(record.seq, 6);
    merkle::verify_inclusion(
        6,
        head.size,
        &merkle::leaf_hash(record.body.as_bytes()),
        &proof[0],
        &head.root,
    )
    .unwrap();
    let grown = store
        .audit_append(None, &[entry(now_ms(), None, None, 9)])
        .await
        .unwrap();
    assert_eq!(grown.size, head.size + 1);
    cleanup.run(store).await;
}
