//! Personal data at rest (issue 8, item 6): private SQLite files, no dropped request body left in
//! them, request bodies in `import_requests` on both backends, and the migration from a build
//! that kept them in `imports.request`.

#![cfg(unix)] // file modes
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::borrow::Cow;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::Utc;
use sqlx::migrate::Migrator;
use uuid::Uuid;
use vorgang_core::model::{Environment, ImportRequest};
use vorgang_core::{ImportChange, ImportRecord, ImportStatus, ImportStore};
use vorgang_store::Store;
use vorgang_store::testing::{
    fresh_postgres_database, postgres_admin_url, previous_format_body, request,
};

/// Distinctive personal values, planted in the request body.
const PLANTED: [&str; 4] = [
    "Hildegunde",
    "Zaunkoenigsberger",
    "DE89370400440532013000",
    "hildegunde@zaunkoenig.example",
];

/// The request carrying them. Without warnings: the previous builds' format has none, so a body
/// they stored reads back as exactly this.
fn planted() -> ImportRequest {
    ImportRequest {
        warnings: Vec::new(),
        ..request(serde_json::json!({
            "antragsteller1": {"personendaten": {"vorname": PLANTED[0], "nachname": PLANTED[1]},
                               "kontakt": {"email": PLANTED[3]}},
            "haushalt": {"kontoverbindung": {"iban": PLANTED[2]}},
            // Several KiB, so the body spills into overflow pages (SQLite) and TOAST (PostgreSQL).
            "kommentare": [format!("{} {}", PLANTED[1], "x".repeat(6000))]
        }))
    }
}

/// The body as the builds before migration 0002 stored it in `imports.request`.
fn body() -> serde_json::Value {
    previous_format_body(&planted())
}

/// Stores `next` over `last` as the importer does.
async fn step(imports: &dyn ImportStore, last: &ImportRecord, next: &ImportRecord) -> bool {
    imports
        .transition(last.id, last.status, &ImportChange::between(last, next))
        .await
        .unwrap()
}

fn import() -> ImportRecord {
    ImportRecord::accepted(
        Uuid::new_v4(),
        "client-a",
        Environment::Test,
        None,
        "f".to_owned(),
        planted(),
        Utc::now(),
    )
}

/// `record` moved on to `status`; finished imports drop their body, as the importer does.
fn advanced(record: &ImportRecord, status: ImportStatus) -> ImportRecord {
    let mut next = record.clone();
    next.status = status;
    if status.is_finished() {
        next.request = None;
    }
    next.updated_at = Utc::now();
    next
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("vorgang.db").display())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The planted values found in the files of `dir`, as `(file, value)`.
fn planted_in_files(dir: &Path) -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // A closing connection removes its -wal and -shm files, possibly between the listing
        // and the read: a file that is gone holds nothing.
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => panic!("{}: {error}", path.display()),
        };
        for value in PLANTED {
            if bytes.windows(value.len()).any(|w| w == value.as_bytes()) {
                found.push((
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    value,
                ));
            }
        }
    }
    found
}

#[tokio::test]
async fn sqlite_files_are_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url(dir.path())).await.unwrap();
    store.as_import_store().insert(&import()).await.unwrap();
    for name in ["vorgang.db", "vorgang.db-wal", "vorgang.db-shm"] {
        assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
    }
    store.close().await;
}

#[tokio::test]
async fn sqlite_files_readable_by_others_are_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let store = Store::connect(&url).await.unwrap();
    store.as_import_store().insert(&import()).await.unwrap();
    // A second connection keeps the -wal and -shm files while the first one closes.
    let other = Store::connect(&url).await.unwrap();
    store.close().await;
    for name in ["vorgang.db", "vorgang.db-wal", "vorgang.db-shm"] {
        let path = dir.path().join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let store = Store::connect(&url).await.unwrap();
    for name in ["vorgang.db", "vorgang.db-wal", "vorgang.db-shm"] {
        assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
    }
    other.close().await;
    store.close().await;
}

#[tokio::test]
async fn sqlite_scrub_leaves_no_dropped_body_in_the_files_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url(dir.path())).await.unwrap();
    let imports = store.as_import_store();
    let record = import();
    imports.insert(&record).await.unwrap();
    let sending = advanced(&record, ImportStatus::Sending);
    assert!(step(&*imports, &record, &sending).await);
    let completed = advanced(&sending, ImportStatus::Completed);
    assert!(step(&*imports, &sending, &completed).await);
    assert_eq!(imports.get(record.id).await.unwrap().unwrap().request, None);
    // The WAL still holds the page images of the insert: this is what scrub is for.
    assert!(
        !planted_in_files(dir.path()).is_empty(),
        "the dropped body is still in the WAL before the checkpoint"
    );

    imports.scrub().await.unwrap();
    assert_eq!(planted_in_files(dir.path()), []);
    assert_eq!(
        std::fs::metadata(dir.path().join("vorgang.db-wal"))
            .unwrap()
            .len(),
        0
    );
    // The import itself is intact and the store keeps working.
    assert_eq!(imports.get(record.id).await.unwrap(), Some(completed));
    imports.ping().await.unwrap();
    store.close().await;
    assert_eq!(planted_in_files(dir.path()), []);
}

/// Raw SQL against one backend, as a build before migration 0002 would run it.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    /// The previous build's INSERT: the body in `imports.request`.
    async fn legacy_insert(&self, id: Uuid, status: &str) {
        let body = body().to_string();
        let columns = "INSERT INTO imports (id, client_id, environment, status, idempotency_key, \
             fingerprint, request, tippgeber_externe_partner_id, messages, attempts, created_at, \
             updated_at) VALUES ";
        let stamp = "2025-01-01T00:00:00.000000000Z";
        match self {
            Self::Sqlite(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{columns} (?1, 'client-a', 'TEST', ?2, NULL, 'f', ?3, 'client-a-1', '[]', 1, \
                     '{stamp}', '{stamp}')"
                )))
                .bind(id.to_string())
                .bind(status)
                .bind(body)
                .execute(pool)
                .await
                .unwrap();
            }
            Self::Postgres(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{columns} ($1, 'client-a', 'TEST', $2, NULL, 'f', CAST($3 AS json), \
                     'client-a-1', '[]', 1, '{stamp}', '{stamp}')"
                )))
                .bind(id)
                .bind(status)
                .bind(body)
                .execute(pool)
                .await
                .unwrap();
            }
        }
    }

    /// The previous build finishing an import: `request` set to NULL with the new status.
    async fn legacy_finish(&self, id: Uuid, status: &str) {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query("UPDATE imports SET status = ?2, request = NULL WHERE id = ?1")
                    .bind(id.to_string())
                    .bind(status)
                    .execute(pool)
                    .await
                    .unwrap();
            }
            Self::Postgres(pool) => {
                sqlx::query("UPDATE imports SET status = $2, request = NULL WHERE id = $1")
                    .bind(id)
                    .bind(status)
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
    }

    /// Where the body of `id` is stored: (in `imports.request`, in `import_requests`).
    async fn body_places(&self, id: Uuid) -> (bool, bool) {
        let legacy = "SELECT count(*) FROM imports WHERE id = $1 AND request IS NOT NULL";
        let table = "SELECT count(*) FROM import_requests WHERE import_id = $1";
        let mut places = [false; 2];
        for (place, sql) in places.iter_mut().zip([legacy, table]) {
            let count: i64 = match self {
                Self::Sqlite(pool) => sqlx::query_scalar(sql)
                    .bind(id.to_string())
                    .fetch_one(pool)
                    .await
                    .unwrap(),
                Self::Postgres(pool) => sqlx::query_scalar(sql)
                    .bind(id)
                    .fetch_one(pool)
                    .await
                    .unwrap(),
            };
            *place = count == 1;
        }
        (places[0], places[1])
    }

    async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// Only migration 0001: the schema of the build before issue 8.
fn first_migration_only(mut migrator: Migrator) -> Migrator {
    let first: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version == 1)
        .cloned()
        .collect();
    assert_eq!(first.len(), 1);
    migrator.migrations = Cow::Owned(first);
    migrator
}

/// A database of the previous build with imports in flight, upgraded while the previous build
/// keeps writing (rolling upgrade): bodies stay readable until their import finishes, then none
/// is left in either place, whichever build finishes it.
async fn upgrade_keeps_bodies_until_the_end(raw: &Raw, url: &str) {
    // Before the upgrade: two imports in flight, bodies in imports.request.
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    raw.legacy_insert(a, "ACCEPTED").await;
    raw.legacy_insert(b, "PARTNER_READY").await;

    let store = Store::connect(url).await.unwrap(); // applies 0002
    let imports = store.as_import_store();
    for id in [a, b] {
        assert_eq!(
            imports.get(id).await.unwrap().unwrap().request,
            Some(planted())
        );
        assert_eq!(raw.body_places(id).await, (true, true), "copied, not moved");
    }

    // This build advances `a`: the body moves out of `imports`, then goes with the finish.
    let record_a = imports.get(a).await.unwrap().unwrap();
    let ready = advanced(&record_a, ImportStatus::PartnerReady);
    assert!(step(&*imports, &record_a, &ready).await);
    assert_eq!(raw.body_places(a).await, (false, true));
    assert_eq!(
        imports.get(a).await.unwrap().unwrap().request,
        Some(planted())
    );
    let done = advanced(&ready, ImportStatus::Completed);
    assert!(step(&*imports, &ready, &done).await);
    assert_eq!(raw.body_places(a).await, (false, false));
    assert_eq!(imports.get(a).await.unwrap(), Some(done));

    // The previous build finishes `b`: the trigger drops the copy as well.
    raw.legacy_finish(b, "FAILED").await;
    assert_eq!(raw.body_places(b).await, (false, false));
    assert_eq!(imports.get(b).await.unwrap().unwrap().request, None);

    // The previous build inserts after the upgrade: readable by this build.
    let c = Uuid::new_v4();
    raw.legacy_insert(c, "ACCEPTED").await;
    assert_eq!(
        imports.get(c).await.unwrap().unwrap().request,
        Some(planted())
    );

    // The previous build fails an import of this build (it sees no body): no body survives.
    let d = import();
    imports.insert(&d).await.unwrap();
    assert_eq!(
        raw.body_places(d.id).await,
        (false, true),
        "written once, to import_requests"
    );
    raw.legacy_finish(d.id, "FAILED").await;
    assert_eq!(raw.body_places(d.id).await, (false, false));

    // Purging deletes the bodies with their imports.
    let e = import();
    imports.insert(&e).await.unwrap();
    let e_done = {
        let mut done = e.clone();
        done.status = ImportStatus::Completed;
        done.updated_at = chrono::DateTime::from_timestamp(1, 0).unwrap();
        done
    };
    // A finished import that keeps its body (the port allows it) until it is purged.
    assert!(step(&*imports, &e, &e_done).await);
    assert_eq!(raw.body_places(e.id).await, (false, true));
    assert!(imports.purge_finished_before(Utc::now()).await.unwrap() >= 1);
    assert_eq!(raw.body_places(e.id).await, (false, false));
    store.close().await;
}

#[tokio::test]
async fn sqlite_upgrade_keeps_bodies_until_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&pool)
        .await
        .unwrap();
    first_migration_only(sqlx::migrate!("./migrations/sqlite"))
        .run(&pool)
        .await
        .unwrap();
    let raw = Raw::Sqlite(pool);
    upgrade_keeps_bodies_until_the_end(&raw, &url).await;
    raw.close().await;
}

#[tokio::test]
async fn postgres_upgrade_keeps_bodies_until_the_end() {
    let database = fresh_postgres_database(&postgres_admin_url())
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(database.url()).await.unwrap();
    first_migration_only(sqlx::migrate!("./migrations/postgres"))
        .run(&pool)
        .await
        .unwrap();
    let raw = Raw::Postgres(pool);
    upgrade_keeps_bodies_until_the_end(&raw, database.url()).await;
    raw.close().await;
    database.drop_database().await.unwrap();
}

/// A finished import that kept its body (the port allows it): the purge deletes the body with
/// the import, on SQLite by the foreign key's cascade, on PostgreSQL (no foreign key since
/// migration 0008) in the purge's own statement. No body outlives its import.
async fn purge_deletes_a_kept_body_with_its_import(store: &Store, raw: &Raw) {
    let imports = store.as_import_store();
    let record = import();
    imports.insert(&record).await.unwrap();
    let mut kept = record.clone();
    kept.status = ImportStatus::Completed;
    kept.updated_at = Utc::now();
    assert!(step(&*imports, &record, &kept).await);
    assert_eq!(raw.body_places(record.id).await, (false, true));

    let cutoff = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(imports.purge_finished_before(cutoff).await.unwrap(), 1);
    assert_eq!(imports.get(record.id).await.unwrap(), None);
    assert_eq!(raw.body_places(record.id).await, (false, false));
}

#[tokio::test]
async fn sqlite_purge_deletes_a_kept_body_with_its_import() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let store = Store::connect(&url).await.unwrap();
    let raw = Raw::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
    purge_deletes_a_kept_body_with_its_import(&store, &raw).await;
    raw.close().await;
    store.close().await;
}

#[tokio::test]
async fn postgres_purge_deletes_a_kept_body_with_its_import() {
    let database = fresh_postgres_database(&postgres_admin_url())
        .await
        .unwrap();
    let store = Store::connect(database.url()).await.unwrap();
    let pool = sqlx::PgPool::connect(database.url()).await.unwrap();
    // Migration 0008 dropped the foreign key: nothing would cascade.
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint \
         WHERE conrelid = 'import_requests'::regclass AND contype = 'f'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(keys, 0);
    let raw = Raw::Postgres(pool);
    purge_deletes_a_kept_body_with_its_import(&store, &raw).await;
    raw.close().await;
    store.close().await;
    database.drop_database().await.unwrap();
}
