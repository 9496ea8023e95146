//! The SQLite adapter: one file, WAL mode, one writer connection and a few readers.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use auth::{
    ClientRecord, ClientStore, SigningKeyRecord, SigningKeyStore, StoreError as AuthStoreError,
};
use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;
use vorgang_core::model::Environment;
use vorgang_core::{ImportRecord, ImportStatus, ImportStore, InsertOutcome, StoreError};

use crate::codec::{
    ClientParams, ClientRow, ImportParams, ImportRow, SigningKeyRow, client_records, encode_time,
    import_records, signing_key_records,
};
use crate::error::{for_auth, map_migrate, map_sqlx, map_sqlx_auth};
use crate::{BUSY_TIMEOUT, INSERT_ATTEMPTS, idempotency_race_lost};

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

const SELECT_BY_ID: &str = concat!(select_import!(), " WHERE i.id = ?1");

const SELECT_BY_KEY: &str = concat!(
    select_import!(),
    " WHERE i.client_id = ?1 AND i.idempotency_key = ?2"
);

const INSERT_BODY: &str = "INSERT INTO import_requests (import_id, body) VALUES (?1, ?2)";

/// Writes a body unless the stored one is the same: an unchanged body costs no page write.
const UPSERT_BODY: &str = "INSERT INTO import_requests (import_id, body) VALUES (?1, ?2) \
     ON CONFLICT (import_id) DO UPDATE SET body = excluded.body WHERE body IS NOT excluded.body";

const DELETE_BODY: &str = "DELETE FROM import_requests WHERE import_id = ?1";

const HEARTBEAT: &str = "INSERT INTO heartbeat (id, beat_at) VALUES (1, ?1) \
     ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at";

/// Copies every page of the WAL into the database file, then truncates the WAL to zero bytes.
const CHECKPOINT: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

const UPDATE_IMPORT: &str = "UPDATE imports SET client_id = ?2, environment = ?3, status = ?4, \
     idempotency_key = ?5, fingerprint = ?6, request = ?7, tippgeber_externe_partner_id = ?8, \
     tippgeber_partner_id = ?9, europace_vorgangsnummer = ?10, crm_kennung = ?11, \
     messages = ?12, failure = ?13, attempts = ?14, created_at = ?15, updated_at = ?16 \
     WHERE id = ?1 AND status = ?17";

const LIST_ALL: &str = concat!(select_import!(), " ORDER BY i.created_at, i.id");

const LIST_BY_STATUS: &str = concat!(
    select_import!(),
    " WHERE i.status = ?1 ORDER BY i.created_at, i.id"
);

const PURGE: &str = "DELETE FROM imports WHERE status IN (?1, ?2) AND updated_at < ?3";

const SELECT_TIPPGEBER: &str = "SELECT partner_id FROM tippgeber_partners \
     WHERE environment = ?1 AND externe_partner_id = ?2";

const UPSERT_TIPPGEBER: &str = "INSERT INTO tippgeber_partners \
     (environment, externe_partner_id, partner_id) VALUES (?1, ?2, ?3) \
     ON CONFLICT (environment, externe_partner_id) DO UPDATE SET partner_id = excluded.partner_id";

const INSERT_CLIENT: &str = "INSERT INTO clients (client_id, secret_hash, name, email, \
     telefonnummer, organisation, scopes, revoked_at, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const SELECT_CLIENT: &str = "SELECT * FROM clients WHERE client_id = ?1";

const LIST_CLIENTS: &str = "SELECT * FROM clients ORDER BY created_at, client_id";

const REVOKE_CLIENT: &str =
    "UPDATE clients SET revoked_at = COALESCE(revoked_at, ?1) WHERE client_id = ?2";

const SET_SECRET: &str = "UPDATE clients SET secret_hash = ?1 WHERE client_id = ?2";

const INSERT_KEY: &str = "INSERT INTO signing_keys (kid, algorithm, private_key, encrypted, \
     public_key, created_at, retired_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const LIST_KEYS: &str = "SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > ?1 \
     ORDER BY created_at DESC, kid DESC";

const RETIRE_OTHER_KEYS: &str =
    "UPDATE signing_keys SET retired_at = ?1 WHERE kid <> ?2 AND retired_at IS NULL";

/// [`ImportStore`], [`ClientStore`] and [`SigningKeyStore`] on a SQLite database.
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
/// - [`ImportStore::scrub`] (called periodically by the server) and [`SqliteStore::close`] run
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
        if !in_memory {
            files::prepare(options.get_filename(), creates_missing_file(database_url))?;
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
                .map_err(|err| map_sqlx(CONTEXT, &err))?;
            let reader = SqlitePoolOptions::new()
                .max_connections(READERS)
                .connect_with(options.create_if_missing(false))
                .await
                .map_err(|err| map_sqlx(CONTEXT, &err))?;
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

    /// Checkpoints and truncates the WAL (see [`ImportStore::scrub`]), then closes all
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

    async fn import_by_key(
        &self,
        client_id: &str,
        key: &str,
    ) -> Result<Option<ImportRecord>, StoreError> {
        // Read through the writer: it has just seen the conflicting row.
        sqlx::query_as::<_, ImportRow>(SELECT_BY_KEY)
            .bind(client_id)
            .bind(key)
            .fetch_optional(&self.writer)
            .await
            .map_err(|err| map_sqlx("read import by idempotency key", &err))?
            .map(ImportRow::into_record)
            .transpose()
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

/// Binds `?1`…`?16` / `$1`…`$16`: the columns of `imports` in table order.
fn bind_import<'q>(
    query: Query<'q, Sqlite, SqliteArguments>,
    params: &ImportParams,
) -> Query<'q, Sqlite, SqliteArguments> {
    query
        .bind(params.id.to_string())
        .bind(&params.client_id)
        .bind(params.environment)
        .bind(params.status)
        .bind(&params.idempotency_key)
        .bind(&params.fingerprint)
        // `imports.request` stays NULL: bodies live in `import_requests` (migration 0002).
        // Writing NULL in every UPDATE also moves over a body a previous build left here.
        .bind(None::<String>)
        .bind(&params.tippgeber_externe_partner_id)
        .bind(&params.tippgeber_partner_id)
        .bind(&params.europace_vorgangsnummer)
        .bind(&params.crm_kennung)
        .bind(&params.messages)
        .bind(&params.failure)
        .bind(params.attempts)
        .bind(&params.created_at)
        .bind(&params.updated_at)
}

#[async_trait]
impl ImportStore for SqliteStore {
    async fn insert(&self, record: &ImportRecord) -> Result<InsertOutcome, StoreError> {
        const CONTEXT: &str = "insert import";
        let params = ImportParams::new(CONTEXT, record)?;
        let map = |err: sqlx::Error| map_sqlx(CONTEXT, &err);
        for _ in 0..INSERT_ATTEMPTS {
            // The import and its body commit together. IMMEDIATE takes the write lock at once
            // (waiting up to the busy timeout), as another process may write the same file.
            let mut tx = self
                .writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(map)?;
            let done = bind_import(sqlx::query(INSERT_IMPORT), &params)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            if done.rows_affected() == 1 {
                if let Some(body) = &params.request {
                    sqlx::query(INSERT_BODY)
                        .bind(params.id.to_string())
                        .bind(body)
                        .execute(&mut *tx)
                        .await
                        .map_err(map)?;
                }
                tx.commit().await.map_err(map)?;
                return Ok(InsertOutcome::Inserted);
            }
            // Release the one writer connection before reading through it.
            tx.rollback().await.map_err(map)?;
            let Some(key) = &params.idempotency_key else {
                return Err(StoreError::Conflict(format!("{CONTEXT}: row not stored")));
            };
            if let Some(existing) = self.import_by_key(&params.client_id, key).await? {
                return Ok(InsertOutcome::IdempotencyKeyExists(Box::new(existing)));
            }
            // The conflicting import was deleted in between: try again.
        }
        Err(idempotency_race_lost())
    }

    async fn update(
        &self,
        record: &ImportRecord,
        expected: ImportStatus,
    ) -> Result<bool, StoreError> {
        const CONTEXT: &str = "update import";
        let params = ImportParams::new(CONTEXT, record)?;
        let map = |err: sqlx::Error| map_sqlx(CONTEXT, &err);
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map)?;
        let done = bind_import(sqlx::query(UPDATE_IMPORT), &params)
            .bind(expected.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(map)?;
            return Ok(false);
        }
        let id = params.id.to_string();
        match &params.request {
            Some(body) => sqlx::query(UPSERT_BODY).bind(id).bind(body),
            None => sqlx::query(DELETE_BODY).bind(id),
        }
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn get(&self, id: Uuid) -> Result<Option<ImportRecord>, StoreError> {
        sqlx::query_as::<_, ImportRow>(SELECT_BY_ID)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(|err| map_sqlx("read import", &err))?
            .map(ImportRow::into_record)
            .transpose()
    }

    async fn list(&self, status: Option<ImportStatus>) -> Result<Vec<ImportRecord>, StoreError> {
        let rows = match status {
            Some(status) => {
                sqlx::query_as::<_, ImportRow>(LIST_BY_STATUS)
                    .bind(status.as_str())
                    .fetch_all(&self.reader)
                    .await
            }
            None => {
                sqlx::query_as::<_, ImportRow>(LIST_ALL)
                    .fetch_all(&self.reader)
                    .await
            }
        }
        .map_err(|err| map_sqlx("list imports", &err))?;
        import_records(rows)
    }

    async fn purge_finished_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(PURGE)
            .bind(ImportStatus::Completed.as_str())
            .bind(ImportStatus::Failed.as_str())
            .bind(encode_time(cutoff))
            .execute(&self.writer)
            .await
            .map_err(|err| map_sqlx("purge imports", &err))?;
        Ok(done.rows_affected())
    }

    async fn tippgeber_partner_id(
        &self,
        environment: Environment,
        externe_partner_id: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar::<_, String>(SELECT_TIPPGEBER)
            .bind(environment.as_str())
            .bind(externe_partner_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|err| map_sqlx("read tippgeber partnerId", &err))
    }

    async fn save_tippgeber_partner_id(
        &self,
        environment: Environment,
        externe_partner_id: &str,
        partner_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(UPSERT_TIPPGEBER)
            .bind(environment.as_str())
            .bind(externe_partner_id)
            .bind(partner_id)
            .execute(&self.writer)
            .await
            .map_err(|err| map_sqlx("save tippgeber partnerId", &err))?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A committed write, not `SELECT 1`: a full disk or a held write lock fails here even
        // though reads still work. One row, one page: cheap enough for every probe.
        sqlx::query(HEARTBEAT)
            .bind(encode_time(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(|err| map_sqlx("ping database (heartbeat write)", &err))?;
        Ok(())
    }

    async fn scrub(&self) -> Result<(), StoreError> {
        self.checkpoint().await
    }
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), AuthStoreError> {
        let params = ClientParams::new(client).map_err(for_auth)?;
        sqlx::query(INSERT_CLIENT)
            .bind(&client.client_id)
            .bind(&client.secret_hash)
            .bind(&client.name)
            .bind(&client.email)
            .bind(&client.telefonnummer)
            .bind(&client.organisation)
            .bind(&params.scopes)
            .bind(&params.revoked_at)
            .bind(&params.created_at)
            .execute(&self.writer)
            .await
            .map_err(|err| map_sqlx_auth("insert client", &err))?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, AuthStoreError> {
        sqlx::query_as::<_, ClientRow>(SELECT_CLIENT)
            .bind(client_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|err| map_sqlx_auth("read client", &err))?
            .map(ClientRow::into_record)
            .transpose()
            .map_err(for_auth)
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, AuthStoreError> {
        let rows = sqlx::query_as::<_, ClientRow>(LIST_CLIENTS)
            .fetch_all(&self.reader)
            .await
            .map_err(|err| map_sqlx_auth("list clients", &err))?;
        client_records(rows).map_err(for_auth)
    }

    async fn revoke_client(
        &self,
        client_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, AuthStoreError> {
        let done = sqlx::query(REVOKE_CLIENT)
            .bind(encode_time(at))
            .bind(client_id)
            .execute(&self.writer)
            .await
            .map_err(|err| map_sqlx_auth("revoke client", &err))?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_client_secret_hash(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<bool, AuthStoreError> {
        let done = sqlx::query(SET_SECRET)
            .bind(secret_hash)
            .bind(client_id)
            .execute(&self.writer)
            .await
            .map_err(|err| map_sqlx_auth("set client secret", &err))?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn insert_key(&self, key: &SigningKeyRecord) -> Result<(), AuthStoreError> {
        sqlx::query(INSERT_KEY)
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.private_key)
            .bind(key.encrypted)
            .bind(&key.public_key)
            .bind(encode_time(key.created_at))
            .bind(key.retired_at.map(encode_time))
            .execute(&self.writer)
            .await
            .map_err(|err| map_sqlx_auth("insert signing key", &err))?;
        Ok(())
    }

    async fn list_keys(
        &self,
        retired_after: DateTime<Utc>,
    ) -> Result<Vec<SigningKeyRecord>, AuthStoreError> {
        let rows = sqlx::query_as::<_, SigningKeyRow>(LIST_KEYS)
            .bind(encode_time(retired_after))
            .fetch_all(&self.reader)
            .await
            .map_err(|err| map_sqlx_auth("list signing keys", &err))?;
        signing_key_records(rows).map_err(for_auth)
    }

    async fn retire_other_keys(&self, kid: &str, at: DateTime<Utc>) -> Result<(), AuthStoreError> {
        sqlx::query(RETIRE_OTHER_KEYS)
            .bind(encode_time(at))
            .bind(kid)
            .execute(&self.writer)
            .await
            .map_err(|err| map_sqlx_auth("retire signing keys", &err))?;
        Ok(())
    }
}

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
