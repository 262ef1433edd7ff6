//! The store suite, run against SQLite (a file and memory) and PostgreSQL (a fresh database per
//! test on the server `SWITCHYARD_TEST_POSTGRES_URL` names; skipped, saying so, without it).

#![expect(
    clippy::unwrap_used,
    reason = "test setup and assertions fail loudly by design"
)]

use std::collections::BTreeMap;

use serde_json::json;
use switchyard_store::{
    Key, Limits, ModelLimits, Options, Page, Role, Store, StoreError, Team, User, new_id, now_ms,
};

/// A store for one test on `backend`, or `None` (with a message) when it is not available.
pub(crate) async fn open(backend: &str) -> Option<(Store, Cleanup)> {
    match backend {
        "sqlite" => {
            let folder = std::env::temp_dir().join(new_id("switchyard-store-test"));
            let url = format!("sqlite://{}", folder.join("data/switchyard.db").display());
            let store = Store::connect(&Options::new(&url)).await.unwrap();
            Some((store, Cleanup::Folder(folder, url)))
        }
        "memory" => {
            let store = Store::connect(&Options::new("sqlite::memory:"))
                .await
                .unwrap();
            Some((store, Cleanup::None))
        }
        _ => {
            let Ok(server) = std::env::var("SWITCHYARD_TEST_POSTGRES_URL") else {
                eprintln!("skipped: SWITCHYARD_TEST_POSTGRES_URL is not set");
                return None;
            };
            let admin = sqlx::PgPool::connect(&server).await.unwrap();
            let name = new_id("sy_test");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
            let (base, _) = server.rsplit_once('/').unwrap();
            let url = format!("{base}/{name}");
            let store = Store::connect(&Options::new(&url)).await.unwrap();
            Some((store, Cleanup::Database(admin, name, url)))
        }
    }
}

/// What a test leaves behind, removed at its end.
pub(crate) enum Cleanup {
    None,
    Folder(std::path::PathBuf, String),
    Database(sqlx::PgPool, String, String),
}

impl Cleanup {
    /// The URL the test's store was opened with (to open it again).
    pub(crate) fn url(&self) -> Option<&str> {
        match self {
            Cleanup::None => None,
            Cleanup::Folder(_, url) | Cleanup::Database(_, _, url) => Some(url),
        }
    }

    pub(crate) async fn run(self, store: Store) {
        store.close().await;
        match self {
            Cleanup::None => {}
            Cleanup::Folder(folder, _) => {
                let _ = std::fs::remove_dir_all(folder);
            }
            Cleanup::Database(admin, name, _) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await
                .unwrap();
                admin.close().await;
            }
        }
    }
}

pub(crate) fn team(name: &str) -> Team {
    let now = now_ms();
    Team {
        id: new_id("team"),
        name: name.to_owned(),
        models: vec!["gpt-*".to_owned()],
        limits: Limits {
            rpm: Some(1000),
            ..Limits::default()
        },
        metadata: serde_json::Map::new(),
        blocked: false,
        created_at: now,
        updated_at: now,
    }
}

fn user(team_id: Option<&str>, email: &str) -> User {
    let now = now_ms();
    User {
        id: new_id("user"),
        email: Some(email.to_owned()),
        team_id: team_id.map(str::to_owned),
        role: Role::Member,
        limits: Limits::default(),
        metadata: serde_json::Map::new(),
        created_at: now,
        updated_at: now,
    }
}

pub(crate) fn key(team_id: Option<&str>, hash: &str) -> Key {
    let now = now_ms();
    Key {
        id: new_id("key"),
        hash: hash.to_owned(),
        hint: "sy-…abcd".to_owned(),
        alias: Some("ci".to_owned()),
        team_id: team_id.map(str::to_owned),
        user_id: None,
        role: Role::Member,
        models: vec!["gpt-4o".to_owned(), "claude-*".to_owned()],
        limits: Limits {
            rpm: Some(100),
            tpm: Some(10_000),
            max_parallel: Some(4),
            models: BTreeMap::from([(
                "gpt-4o".to_owned(),
                ModelLimits {
                    rpm: Some(10),
                    tpm: None,
                },
            )]),
            budget: Some(switchyard_ledger::Budget {
                max_usd: switchyard_ledger::Usd::parse("12.5").unwrap(),
                period: switchyard_ledger::Period::Weekly,
                soft_usd: None,
            }),
        },
        tags: vec!["ci".to_owned()],
        metadata: json!({"owner": "platform"}).as_object().cloned().unwrap(),
        blocked: false,
        expires_at: None,
        previous_hash: None,
        previous_valid_until: None,
        created_by: "master".to_owned(),
        created_at: now,
        updated_at: now,
    }
}

mod audit;
mod ledger;

use audit::*;
use ledger::*;

/// Each scenario, once per database.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test] async fn $name() { super::$name("sqlite").await } )* }
        mod memory { $( #[tokio::test] async fn $name() { super::$name("memory").await } )* }
        mod postgres { $( #[tokio::test] async fn $name() { super::$name("postgres").await } )* }
    };
}

suite!(
    migrations_apply_from_empty_and_once,
    keys_are_found_by_hash_and_by_previous_hash_in_grace,
    every_change_is_recorded_with_before_and_after,
    lists_filter_and_page,
    references_and_names_are_enforced,
    hostile_values_are_stored_verbatim,
    concurrent_updates_lose_nothing,
    spend_records_and_their_daily_aggregates_agree,
    concurrent_spend_writers_lose_nothing,
    old_spend_records_are_pruned_and_aggregates_stay,
    a_database_of_the_previous_version_is_migrated_in_place,
    spend_records_of_the_wide_layout_move_into_detail_whole,
    audit_appends_are_proven_from_the_stored_tree,
    admin_changes_are_folded_in_once,
    concurrent_audit_writers_share_one_tree,
    the_audit_log_is_append_only_but_for_retention,
);

async fn migrations_apply_from_empty_and_once(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    assert_eq!(store.schema_version().await.unwrap(), 6);
    let team = team("platform");
    store.insert_team(&team, "master").await.unwrap();
    if let Some(url) = cleanup.url() {
        // Opening it again applies nothing twice and keeps what is there.
        let again = Store::connect(&Options::new(url)).await.unwrap();
        assert_eq!(again.schema_version().await.unwrap(), 6);
        assert_eq!(again.team(&team.id).await.unwrap(), team);
        again.close().await;
    }
    cleanup.run(store).await;
}

async fn keys_are_found_by_hash_and_by_previous_hash_in_grace(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let stored = key(None, "hash-one");
    store.insert_key(&stored, "master").await.unwrap();
    let now = now_ms();
    assert_eq!(
        store.key_by_hash("hash-one", now).await.unwrap().as_ref(),
        Some(&stored)
    );
    assert_eq!(store.key_by_hash("hash-two", now).await.unwrap(), None);
    assert_eq!(store.key(&stored.id).await.unwrap(), stored);

    // Rotation: the new secret works, the old one until its grace ends.
    let grace_end = now + 60_000;
    let (_, rotated) = store
        .update_key(&stored.id, "master", "rotate", |key| {
            key.previous_hash = Some(std::mem::replace(&mut key.hash, "hash-two".to_owned()));
            key.previous_valid_until = Some(grace_end);
            Ok(())
        })
        .await
        .unwrap();
    let by_new = store.key_by_hash("hash-two", now).await.unwrap().unwrap();
    assert_eq!(by_new.id, stored.id);
    assert_eq!(by_new, rotated);
    let by_old = store.key_by_hash("hash-one", now).await.unwrap().unwrap();
    assert_eq!(by_old.id, stored.id);
    assert_eq!(
        store.key_by_hash("hash-one", grace_end).await.unwrap(),
        None
    );

    // Blocked keys are still found (the caller refuses them, saying why).
    store
        .update_key(&stored.id, "master", "block", |key| {
            key.blocked = true;
            Ok(())
        })
        .await
        .unwrap();
    assert!(
        store
            .key_by_hash("hash-two", now)
            .await
            .unwrap()
            .unwrap()
            .blocked
    );

    let deleted = store.delete_key(&stored.id, "master").await.unwrap();
    assert_eq!(deleted.id, stored.id);
    assert_eq!(store.key_by_hash("hash-two", now).await.unwrap(), None);
    assert!(matches!(
        store.key(&stored.id).await,
        Err(StoreError::NotFound("key"))
    ));
    assert!(matches!(
        store.delete_key(&stored.id, "master").await,
        Err(StoreError::NotFound("key"))
    ));
    cleanup.run(store).await;
}

async fn every_change_is_recorded_with_before_and_after(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let team = team("research");
    store.insert_team(&team, "master").await.unwrap();
    let stored = key(Some(&team.id), "secret-hash");
    store.insert_key(&stored, "key_admin").await.unwrap();
    store
        .update_key(&stored.id, "key_admin", "update", |key| {
            key.alias = Some("renamed".to_owned());
            Ok(())
        })
        .await
        .unwrap();
    // A refused change changes nothing and records nothing.
    let refused = store
        .update_key(&stored.id, "key_admin", "update", |_| {
            Err(StoreError::Conflict("no".to_owned()))
        })
        .await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))));
    store.delete_key(&stored.id, "master").await.unwrap();

    let changes = store.changes(0, None, 100).await.unwrap();
    let summary: Vec<_> = changes
        .iter()
        .map(|change| {
            (
                change.actor.as_str(),
                change.action.as_str(),
                change.target_kind.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("master", "create", "team"),
            ("key_admin", "create", "key"),
            ("key_admin", "update", "key"),
            ("master", "delete", "key"),
        ]
    );
    assert!(changes.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    let update = &changes[2];
    assert_eq!(update.before.as_ref().unwrap()["alias"], "ci");
    assert_eq!(update.after.as_ref().unwrap()["alias"], "renamed");
    assert!(changes[3].after.is_none() && changes[1].before.is_none());
    // The secret's hash is never part of a change.
    let text = serde_json::to_string(&changes).unwrap();
    assert!(!text.contains("secret-hash"), "{text}");

    let only_key = store
        .changes(0, Some(("key", &stored.id)), 100)
        .await
        .unwrap();
    assert_eq!(only_key.len(), 3);
    let later = store.changes(changes[1].seq, None, 1).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].seq, changes[2].seq);
    cleanup.run(store).await;
}

async fn lists_filter_and_page(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let (a, b) = (team("a"), team("b"));
    store.insert_team(&a, "master").await.unwrap();
    store.insert_team(&b, "master").await.unwrap();
    let member = user(Some(&a.id), "dev@example.com");
    store.insert_user(&member, "master").await.unwrap();
    let mut ids = Vec::new();
    for index in 0..5 {
        let mut stored = key(
            Some(if index % 2 == 0 { &a.id } else { &b.id }),
            &format!("h{index}"),
        );
        stored.created_at += index;
        if index == 4 {
            stored.user_id = Some(member.id.clone());
        }
        store.insert_key(&stored, "master").await.unwrap();
        ids.push(stored.id);
    }
    let all = store.keys(&Page::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|key| &key.id).collect::<Vec<_>>(),
        ids.iter().collect::<Vec<_>>()
    );
    let of_a = store
        .keys(&Page {
            team_id: Some(a.id.clone()),
            ..Page::default()
        })
        .await
        .unwrap();
    assert_eq!(of_a.len(), 3);
    let of_user = store
        .keys(&Page {
            user_id: Some(member.id.clone()),
            ..Page::default()
        })
        .await
        .unwrap();
    assert_eq!(of_user.len(), 1);
    assert_eq!(of_user[0].id, ids[4]);

    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .keys(&Page {
                after: after.clone(),
                limit: Some(2),
                ..Page::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|key| key.id.clone());
        paged.extend(page.into_iter().map(|key| key.id));
    }
    assert_eq!(paged, ids);

    assert_eq!(store.teams(&Page::default()).await.unwrap().len(), 2);
    let users_of_b = store
        .users(&Page {
            team_id: Some(b.id.clone()),
            ..Page::default()
        })
        .await
        .unwrap();
    assert!(users_of_b.is_empty());
    assert_eq!(store.user(&member.id).await.unwrap(), member);
    cleanup.run(store).await;
}

async fn references_and_names_are_enforced(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let first = team("same");
    store.insert_team(&first, "master").await.unwrap();
    assert!(matches!(
        store.insert_team(&team("same"), "master").await,
        Err(StoreError::Conflict(_))
    ));
    // A key of a team that does not exist.
    assert!(matches!(
        store
            .insert_key(&key(Some("team_missing"), "x"), "master")
            .await,
        Err(StoreError::Conflict(_))
    ));
    // The same secret twice.
    store
        .insert_key(&key(Some(&first.id), "dup"), "master")
        .await
        .unwrap();
    assert!(matches!(
        store.insert_key(&key(None, "dup"), "master").await,
        Err(StoreError::Conflict(_))
    ));
    // A team with keys cannot go; once they are gone it can.
    let refused = store.delete_team(&first.id, "master").await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    for stored in store.keys(&Page::default()).await.unwrap() {
        store.delete_key(&stored.id, "master").await.unwrap();
    }
    store.delete_team(&first.id, "master").await.unwrap();
    assert!(matches!(
        store.team(&first.id).await,
        Err(StoreError::NotFound("team"))
    ));
    // The failed writes recorded nothing.
    let actions: Vec<_> = store
        .changes(0, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|change| change.action)
        .collect();
    assert_eq!(actions, ["create", "create", "delete", "delete"]);
    cleanup.run(store).await;
}

async fn hostile_values_are_stored_verbatim(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let hostile = "x'); DROP TABLE api_keys; --\"\\ ' OR 1=1 -- ☃";
    let mut stored = key(None, hostile);
    stored.alias = Some(hostile.to_owned());
    // NUL: kept inside JSON values, refused alike by both databases in plain text.
    stored.tags = vec![format!("{hostile}\u{0}")];
    stored
        .metadata
        .insert(format!("{hostile}\u{0}"), json!(hostile));
    let mut with_nul = key(None, "other");
    with_nul.alias = Some("a\u{0}b".to_owned());
    assert!(matches!(
        store.insert_key(&with_nul, "master").await,
        Err(StoreError::Invalid(_))
    ));
    stored.models = vec!["%".to_owned(), "_".to_owned()];
    store.insert_key(&stored, hostile).await.unwrap();
    assert_eq!(
        store.key_by_hash(hostile, now_ms()).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store.keys(&Page::default()).await.unwrap(),
        [stored.clone()]
    );
    // LIKE-style wildcards mean nothing to lookups.
    assert_eq!(store.key_by_hash("%", now_ms()).await.unwrap(), None);
    assert_eq!(store.changes(0, None, 10).await.unwrap()[0].actor, hostile);
    cleanup.run(store).await;
}

async fn concurrent_updates_lose_nothing(backend: &str) {
    let Some((store, cleanup)) = open(backend).await else {
        return;
    };
    let stored = key(None, "busy");
    store.insert_key(&stored, "master").await.unwrap();
    let writers = (0..16).map(|index| {
        let store = store.clone();
        let id = stored.id.clone();
        async move {
            store
                .update_key(&id, "master", "update", |key| {
                    key.tags.push(format!("t{index}"));
                    Ok(())
                })
                .await
                .unwrap();
        }
    });
    futures_util::future::join_all(writers).await;
    let tags = store.key(&stored.id).await.unwrap().tags;
    assert_eq!(tags.len(), 17, "{tags:?}");
    assert_eq!(store.changes(0, None, 100).await.unwrap().len(), 17);
    cleanup.run(store).await;
}
