//! `ImportStore::ping` proves that a write commits (issue 8, item 12): it fails while every
//! write fails, although the database still answers reads.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use vorgang_core::{ImportQuery, StoreError};
use vorgang_store::Store;
use vorgang_store::testing::{block_writes, fresh_postgres_database, postgres_admin_url};

/// Blocks writes, checks that reads still work and `ping` fails, releases, and waits (with a
/// deadline) for `ping` to succeed again.
async fn ping_follows_blocked_writes(store: &Store, database_url: &str) {
    let imports = store.as_import_store();
    imports.ping().await.unwrap();

    let block = block_writes(database_url).await.unwrap();
    // Reads work (a terminated PostgreSQL session is replaced by the pool on the next use):
    // the old `SELECT 1` ping answered UP here.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(err) = imports.list(&ImportQuery::all()).await {
        assert!(Instant::now() < deadline, "reads keep failing: {err}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = imports.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("heartbeat"), "{err}");

    block.release().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(err) = imports.ping().await {
        assert!(Instant::now() < deadline, "ping keeps failing: {err}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ping_fails_while_writes_fail() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
    let store = Store::connect(&url).await.unwrap();
    ping_follows_blocked_writes(&store, &url).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ping_fails_while_writes_fail() {
    let database = fresh_postgres_database(&postgres_admin_url())
        .await
        .unwrap();
    let store = Store::connect(database.url()).await.unwrap();
    ping_follows_blocked_writes(&store, database.url()).await;
    store.close().await;
    database.drop_database().await.unwrap();
}
