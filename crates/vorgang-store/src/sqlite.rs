//! The SQLite adapter: one file, WAL mode, one writer connection and a few readers.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use uuid::Uuid;
use vorgang_core::StoreError;

use crate::BUSY_TIMEOUT;
use crate::adapter::{impl_store_ports, stale_condition};
use crate::error::{map_migrate, map_sqlx, sqlite_open};

mod files;

/// Connections reading in parallel with the writer (WAL readers never block the writer).
const READERS: u32 = 4;

const INSERT_IMPORT: &str = "INSERT INTO imports (id, client_id, environment, status, \
     idempotency_key, fingerprint, request, tippgeber_externe_partner_id, tippgeber_partner_id, \
     europace_vorgangsnummer, crm_kennung, messages, failure, attempts, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
     ON CONFLICT (client_id, idempotency_key) DO NOTHING";

/// The columns of an import with its request body: from `import_requests`, or from
/// `imports.request` where a build before migration 0002 left it.
macro_rules! select_import {
    () => {
        "SELECT i.id, i.client_id, i.environment, i.status, i.idempotency_key, i.fingerprint, \
         COALESCE(i.request, r.body) AS request, i.tippgeber_externe_partner_id, \
         i.tippgeber_partner_id, i.europace_vorgangsnummer, i.crm_kennung, i.messages, \
         i.failure, i.attempts, i.created_at, i.updated_at \
         FROM imports i LEFT JOIN import_requests r ON r.import_id = i.id"
    };
}

const SELECT_IMPORT: &str = select_import!();

const SELECT_BY_ID: &str = concat!(select_import!(), " WHERE i.id = ?1");

const SELECT_BY_KEY: &str = concat!(
    select_import!(),
    " WHERE i.client_id = ?1 AND i.idempotency_key = ?2"
);

/// See [`stale_condition`].
const LIST_STALE: &str = concat!(select_import!(), stale_condition!());

const INSERT_BODY: &str = "INSERT INTO import_requests (import_id, body) VALUES (?1, ?2)";

/// Writes a body unless the stored one is the same: an unchanged body costs no page write.
const UPSERT_BODY: &str = "INSERT INTO import_requests (import_id, body) VALUES (?1, ?2) \
     ON CONFLICT (import_id) DO UPDATE SET body = excluded.body WHERE body IS NOT excluded.body";

/// Copies every page of the WAL into the database file, then truncates the WAL to zero bytes.
const CHECKPOINT: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

/// The mutable columns of one import, if it is still in state `?10`; `imports.request` is not
/// named, so the body stays where it is. Returns `imports.request` (a body a build before
/// migration 0002 left there, else NULL); no row when the import is gone or moved on.
const TRANSITION_KEEP: &str = "UPDATE imports SET status = ?2, tippgeber_partner_id = ?3, \
     europace_vorgangsnummer = ?4, crm_kennung = ?5, messages = ?6, failure = ?7, \
     attempts = ?8, updated_at = ?9 WHERE id = ?1 AND status = ?10 RETURNING request";

/// [`TRANSITION_KEEP`], also clearing `imports.request` (the body is dropped or written anew).
const TRANSITION_CLEAR: &str = "UPDATE imports SET status = ?2, tippgeber_partner_id = ?3, \
     europace_vorgangsnummer = ?4, crm_kennung = ?5, messages = ?6, failure = ?7, \
     attempts = ?8, updated_at = ?9, request = NULL WHERE id = ?1 AND status = ?10 \
     RETURNING request";

const INSERT_CLIENT: &str = "INSERT INTO clients (client_id, secret_hash, name, email, \
     telefonnummer, organisation, scopes, revoked_at, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const SELECT_CLIENT: &str = "SELECT * FROM clients WHERE client_id = ?1";

const LIST_CLIENTS: &str = "SELECT * FROM clients ORDER BY created_at, client_id";

/// [`ImportStore`](crate::ImportStore), [`ClientStore`](crate::ClientStore) and
/// [`SigningKeyStore`](crate::SigningKeyStore) on a SQLite database.
///
/// SQLite serializes writes, so all writes go through a pool of exactly one connection (waiting
/// for it instead of failing with "database is locked"); reads use a small second pool and, in
/// WAL mode, never wait for the writer. An in-memory database (`sqlite::memory:`) uses one
/// connection for everything, kept open for the life of the store.
///
/// # Personal data on disk
///
/// The request bodies of imports hold personal data until the import finishes. So that a
/// dropped body does not stay readable in the files:
///
/// - the database file (and so the `-wal` and `-shm` files, which SQLite creates with the
///   database file's mode) is created `0600`; an existing one readable by others is tightened to
///   `0600` with a warning;
/// - `secure_delete` is on: SQLite overwrites deleted content (the cell of a dropped body, freed
///   overflow pages) with zeros instead of leaving it in free space;
/// - [`ImportStore::scrub`](crate::ImportStore::scrub) (called periodically by the server) and [`SqliteStore::close`] run
///   `PRAGMA wal_checkpoint(TRUNCATE)`: the WAL keeps the old page images (the body as inserted)
///   until a checkpoint copies the current pages into the database file and truncates it;
/// - `temp_store = MEMORY`: sorts and temporary tables never spill to temporary files.
///
/// Cloning is cheap and shares the connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens the database named by a `sqlite:` URL and applies the embedded migrations.
    ///
    /// `?mode=rwc` creates a missing file (as in the default `sqlite://vorgang.db?mode=rwc`),
    /// with mode `0600`; without it a missing file is an error. An existing database file (or
    /// `-wal`, `-shm` file) that others may read is tightened to `0600`, with a warning; if that
    /// fails (another owner), the warning says so and the store opens anyway. The connections use
    /// WAL journaling, a busy timeout of 5 s, `synchronous = FULL`, enforced foreign keys,
    /// `secure_delete = ON` and `temp_store = MEMORY`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the URL is invalid or the file cannot be opened or
    /// migrated; [`StoreError::Corrupt`] if the database carries migrations this build does not
    /// know how to reconcile (a modified migration).
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        const CONTEXT: &str = "open SQLite database";
        let options = SqliteConnectOptions::from_str(database_url)
            .map_err(|err| map_sqlx(CONTEXT, &err))?
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full)
            // Dropped request bodies are overwritten with zeros, not left in free space.
            .pragma("secure_delete", "ON")
            // Sorts of rows with request bodies stay in memory, never in a temporary file.
            .pragma("temp_store", "MEMORY");

        let in_memory = is_in_memory(database_url);
        let create = creates_missing_file(database_url);
        let path = options.get_filename().to_owned();
        // Names the file and the fix (e.g. `?mode=rwc`) instead of SQLite's bare result code.
        let open_failed = |err: sqlx::Error| sqlite_open(&path, database_url, create, &err);
        if !in_memory {
            files::prepare(&path, create)?;
        }
        let store = if in_memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(|err| map_sqlx(CONTEXT, &err))?;
            Self {
                writer: pool.clone(),
                reader: pool,
            }
        } else {
            // The writer connects first (creating the file if asked to) and switches it to WAL,
            // which is persistent: readers open an existing WAL database and need no lock for it.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone().journal_mode(SqliteJournalMode::Wal))
                .await
                .map_err(open_failed)?;
            let reader = SqlitePoolOptions::new()
                .max_connections(READERS)
                .connect_with(options.create_if_missing(false))
                .await
                .map_err(open_failed)?;
            Self { writer, reader }
        };

        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.set_ignore_missing(true);
        migrator
            .run(&store.writer)
            .await
            .map_err(|err| map_migrate("migrate SQLite database", &err))?;
        tracing::info!(backend = "sqlite", "database ready");
        Ok(store)
    }

    /// Checkpoints and truncates the WAL (see [`ImportStore::scrub`](crate::ImportStore::scrub)), then closes all
    /// connections; later calls fail with [`StoreError::Unavailable`].
    ///
    /// SQLite also checkpoints and deletes the WAL when its last connection closes; the explicit
    /// checkpoint covers another process still holding the database open.
    pub async fn close(&self) {
        if !self.writer.is_closed()
            && let Err(error) = self.checkpoint().await
        {
            tracing::warn!(error = %error, "WAL checkpoint at close failed");
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)` through the writer connection.
    ///
    /// It waits (busy timeout) for readers of old WAL frames and blocks writers while it runs:
    /// through the one writer connection it queues like any write.
    async fn checkpoint(&self) -> Result<(), StoreError> {
        const CONTEXT: &str = "checkpoint WAL";
        // (busy, frames in the WAL, frames checkpointed); busy = 1: readers kept it from
        // completing. An in-memory or non-WAL database answers (0, -1, -1).
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as(CHECKPOINT)
            .fetch_one(&self.writer)
            .await
            .map_err(|err| map_sqlx(CONTEXT, &err))?;
        if busy != 0 {
            return Err(StoreError::Unavailable(format!(
                "{CONTEXT}: readers kept the checkpoint from completing; retried at the next scrub"
            )));
        }
        Ok(())
    }

    /// Where writes go: the one writer connection.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Where reads go: the reader connections (WAL readers never wait for the writer).
    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// A write transaction. IMMEDIATE takes the write lock at once (waiting up to the busy
    /// timeout), as another process may write the same file: a transaction that read first and
    /// wrote later could fail with SQLITE_BUSY halfway instead of waiting.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Ids are stored as hyphenated text.
    fn id_param(id: Uuid) -> String {
        id.to_string()
    }

    /// See [`ImportStore::scrub`](crate::ImportStore::scrub): checkpoint and truncate the WAL.
    async fn scrub_backend(&self) -> Result<(), StoreError> {
        self.checkpoint().await
    }
}

/// Whether a `sqlite:` URL asks for a missing file to be created (`mode=rwc`).
fn creates_missing_file(database_url: &str) -> bool {
    let query = database_url.split_once('?').map_or("", |(_, query)| query);
    query.split('&').any(|pair| pair == "mode=rwc")
}

/// Whether a `sqlite:` URL names an in-memory database.
fn is_in_memory(database_url: &str) -> bool {
    let rest = database_url.strip_prefix("sqlite:").unwrap_or(database_url);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
}

impl_store_ports!(SqliteStore, Sqlite);

#[cfg(test)]
mod tests {
    use super::is_in_memory;

    #[test]
    fn recognises_in_memory_urls() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://:memory:"));
        assert!(is_in_memory("sqlite://shared?mode=memory&cache=shared"));
        assert!(!is_in_memory("sqlite://vorgang.db?mode=rwc"));
        assert!(!is_in_memory("sqlite:///tmp/memory.db"));
    }
}
