//! `ImportStore::count_by_status` is read at every metrics scrape: it must count from an index
//! alone (one range of an index starting with `status`), never read the table's rows, on both
//! backends.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use vorgang_core::ImportStatus;
use vorgang_store::Store;
use vorgang_store::testing::{count_by_status_plan, fresh_postgres_database, postgres_admin_url};

#[tokio::test]
async fn sqlite_counts_from_a_covering_index() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
    let store = Store::connect(&url).await.unwrap();
    let plan = count_by_status_plan(&url, ImportStatus::InDoubt)
        .await
        .unwrap();
    // e.g. `SEARCH imports USING COVERING INDEX imports_status_created_at_id (status=?)`
    assert!(
        plan.contains("USING COVERING INDEX imports_status_") && plan.contains("(status=?)"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN imports"), "{plan}");
    store.close().await;
}

#[tokio::test]
async fn postgres_counts_with_an_index_only_scan() {
    let database = fresh_postgres_database(&postgres_admin_url())
        .await
        .unwrap();
    let store = Store::connect(database.url()).await.unwrap();
    let plan = count_by_status_plan(database.url(), ImportStatus::InDoubt)
        .await
        .unwrap();
    // e.g. `Index Only Scan using imports_status_created_at_id on imports` with `Index Cond:
    // (status = 'IN_DOUBT'::text)`
    assert!(
        plan.contains("Index Only Scan using imports_status_"),
        "{plan}"
    );
    assert!(plan.contains("Index Cond: (status = "), "{plan}");
    store.close().await;
    database.drop_database().await.unwrap();
}
