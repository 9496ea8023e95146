//! Connecting: URL schemes, file creation, repeated migrations.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use chrono::Utc;
use sqlx::Connection;
use uuid::Uuid;
use vorgang_core::model::Environment;
use vorgang_core::{ImportQuery, ImportRecord, ImportStatus, InsertOutcome, StoreError};
use vorgang_store::Store;
use vorgang_store::testing::{fresh_postgres_database, postgres_admin_url, request};

fn import() -> ImportRecord {
    let now = Utc::now();
    ImportRecord {
        id: Uuid::new_v4(),
        client_id: "client-a".to_owned(),
        environment: Environment::Production,
        status: ImportStatus::Accepted,
        idempotency_key: Some("key".to_owned()),
        fingerprint: "f".to_owned(),
        request: Some(request(serde_json::json!({"b": 1, "a": 2}))),
        tippgeber_externe_partner_id: "client-a-1".to_owned(),
        tippgeber_partner_id: None,
        europace_vorgangsnummer: None,
        crm_kennung: None,
        messages: Vec::new(),
        failure: None,
        attempts: 1,
        created_at: now,
        updated_at: now,
        notify: false,
        next_attempt_at: None,
    }
}

#[tokio::test]
async fn sqlite_file_survives_reconnect_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
    let record = import();

    let first = Store::connect(&url).await.unwrap();
    let second = Store::connect(&url).await.unwrap();
    assert_eq!(
        first.as_import_store().insert(&record).await.unwrap(),
        InsertOutcome::Inserted
    );
    // Both stores see the same file, and the key is unique across them.
    assert_eq!(
        second.as_import_store().get(record.id).await.unwrap(),
        Some(record.clone())
    );
    let mut again = import();
    again.id = Uuid::new_v4();
    assert_eq!(
        second.as_import_store().insert(&again).await.unwrap(),
        InsertOutcome::IdempotencyKeyExists(Box::new(record.clone()))
    );
    first.close().await;
    second.close().await;

    let third = Store::connect(&url).await.unwrap();
    assert_eq!(
        third
            .as_import_store()
            .list(&ImportQuery::all())
            .await
            .unwrap(),
        vec![record]
    );
    third.close().await;
}

#[tokio::test]
async fn sqlite_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    store.as_import_store().insert(&import()).await.unwrap();
    assert!(dir.path().join("v.db-wal").exists());
    store.close().await;
}

#[tokio::test]
async fn sqlite_missing_file_is_created_only_with_mode_rwc() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    let err = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!path.exists());

    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    assert!(path.exists());
    store.as_import_store().ping().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let imports = store.as_import_store();
    let record = import();
    assert_eq!(
        imports.insert(&record).await.unwrap(),
        InsertOutcome::Inserted
    );
    assert_eq!(imports.get(record.id).await.unwrap(), Some(record.clone()));
    // Written by the writer thread, read by the sqlx connection: one database (issue 10).
    let mut done = record.clone();
    done.status = ImportStatus::Completed;
    done.request = None;
    assert!(
        imports
            .transition(
                record.id,
                ImportStatus::Accepted,
                &vorgang_core::ImportChange::between(&record, &done)
            )
            .await
            .unwrap()
    );
    assert_eq!(imports.get(record.id).await.unwrap(), Some(done));
    imports.ping().await.unwrap();
    // Each `sqlite::memory:` is a database of its own.
    let other = Store::connect("sqlite::memory:").await.unwrap();
    assert_eq!(other.as_import_store().get(record.id).await.unwrap(), None);
    other.close().await;
    store.close().await;
}

#[tokio::test]
async fn unsupported_scheme_is_an_error_without_the_url() {
    for url in ["mysql://user:s3cret@localhost/db", "vorgang.db", ""] {
        let err = Store::connect(url).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("s3cret"));
    }
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_without_the_password() {
    let started = std::time::Instant::now();
    let err = Store::connect("postgres://user:s3cret@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"));
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// The message of a refused connect, which must not contain `secret`.
async fn refusal(url: &str, secret: &str) -> String {
    let err = Store::connect(url).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let text = err.to_string();
    assert!(!format!("{text} {err:?}").contains(secret), "{text}");
    text
}

#[tokio::test]
async fn a_missing_sqlite_file_names_the_path_and_mode_rwc() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    let url = format!("sqlite://{}", path.display());
    let text = refusal(&url, "\u{0}").await;
    assert!(!text.contains("database error (code 14)"), "{text}");
    assert!(
        text.contains(&format!("{} does not exist", path.display())),
        "{text}"
    );
    assert!(text.contains(&format!("{url}?mode=rwc")), "the fix: {text}");

    // Other parameters stay; the fix appends to them.
    let text = refusal(&format!("{url}?cache=shared"), "\u{0}").await;
    assert!(
        text.contains(&format!("{url}?cache=shared&mode=rwc")),
        "{text}"
    );

    // With mode=rwc but no such directory: the directory is named.
    let nested = dir.path().join("no-such-dir").join("v.db");
    let text = refusal(&format!("sqlite://{}?mode=rwc", nested.display()), "\u{0}").await;
    assert!(
        text.contains(&nested.display().to_string()) && text.contains("directory does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_postgres_database_is_named_with_the_fix() {
    let url = postgres_admin_url();
    let missing = format!(
        "{}/zz_missing_{}",
        url.rsplit_once('/').unwrap().0,
        Uuid::new_v4().simple()
    );
    let name = missing.rsplit_once('/').unwrap().1;
    let text = refusal(&missing, "\u{0}").await;
    assert!(!text.contains("database error (code 3D000)"), "{text}");
    assert!(
        text.contains(&format!("database \"{name}\" does not exist")),
        "{text}"
    );
    assert!(text.contains("createdb"), "the fix: {text}");
}

#[tokio::test]
async fn an_unknown_postgres_user_is_named_and_the_password_masked() {
    let admin = postgres_admin_url();
    let (_, after_scheme) = admin.split_once("://").unwrap();
    let host_and_db = after_scheme
        .rsplit_once('@')
        .map_or(after_scheme, |(_, h)| h);
    let url = format!("postgres://zz_no_such_role:s3cret-pw@{host_and_db}");
    let text = refusal(&url, "s3cret-pw").await;
    assert!(!text.contains("database error (code 28000)"), "{text}");
    assert!(
        text.contains("authentication failed for user \"zz_no_such_role\""),
        "{text}"
    );
    assert!(
        text.contains("zz_no_such_role:********@"),
        "masked URL: {text}"
    );
}

#[tokio::test]
async fn a_refused_postgres_connection_names_host_and_port() {
    let text = refusal("postgres://user:s3cret@127.0.0.1:1/db", "s3cret").await;
    assert!(text.contains("connection refused at 127.0.0.1:1"), "{text}");
    assert!(!text.contains("timed out waiting"), "{text}");
}

#[tokio::test]
async fn postgres_migrations_are_idempotent() {
    let database = fresh_postgres_database(&postgres_admin_url())
        .await
        .unwrap();
    let record = import();
    let first = Store::connect(database.url()).await.unwrap();
    first.as_import_store().insert(&record).await.unwrap();
    let second = Store::connect(database.url()).await.unwrap();
    assert_eq!(
        second.as_import_store().get(record.id).await.unwrap(),
        Some(record)
    );
    first.close().await;
    second.close().await;
    database.drop_database().await.unwrap();
}

#[tokio::test]
async fn postgres_concurrent_first_connects_migrate_once() {
    // Two replicas starting at the same time on an empty database.
    let database = fresh_postgres_database(&postgres_admin_url())
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        Store::connect(database.url()),
        Store::connect(database.url())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    a.as_import_store().ping().await.unwrap();
    b.as_import_store().ping().await.unwrap();
    a.close().await;
    b.close().await;
    database.drop_database().await.unwrap();
}

#[tokio::test]
async fn dropped_test_database_is_removed() {
    let admin = postgres_admin_url();
    let database = fresh_postgres_database(&admin).await.unwrap();
    let name = database.name().to_owned();
    let store = Store::connect(database.url()).await.unwrap();
    drop(database); // without drop_database(): the Drop fallback, with a connection still open
    let err = store.as_import_store().ping().await;
    assert!(
        err.is_err(),
        "connections to the dropped database were terminated"
    );

    let mut admin = sqlx::PgConnection::connect(&admin).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// 20 concurrent inserts of one key, spread over two stores on the same database (two
/// replicas, or two processes on one SQLite file): exactly one import is stored.
async fn two_replicas_race_for_one_key(first: &Store, second: &Store) {
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let imports = if n % 2 == 0 { first } else { second }.as_import_store();
            let mut record = import();
            record.idempotency_key = Some("raced".to_owned());
            tokio::spawn(async move { imports.insert(&record).await.unwrap() })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        if task.await.unwrap() == InsertOutcome::Inserted {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1);
    assert_eq!(
        first
            .as_import_store()
            .list(&ImportQuery::all())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_stores_race_for_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
    let first = Store::connect(&url).await.unwrap();
    let second = Store::connect(&url).await.unwrap();
    two_replicas_race_for_one_key(&first, &second).await;
    first.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_replicas_race_for_one_key() {
    let database = fresh_postgres_database(&postgres_admin_url())
        .await
        .unwrap();
    let first = Store::connect(database.url()).await.unwrap();
    let second = Store::connect(database.url()).await.unwrap();
    two_replicas_race_for_one_key(&first, &second).await;
    first.close().await;
    second.close().await;
    database.drop_database().await.unwrap();
}
