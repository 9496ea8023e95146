//! The SQLite adapter: one file, WAL mode; import writes on one writer thread that commits
//! concurrent writes together ([`writer`]), reads on a few reader connections.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{OptionalExtension as _, params};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use uuid::Uuid;
use vorgang_core::StoreError;

use crate::BUSY_TIMEOUT;
use crate::adapter::{impl_store_ports, stale_condition};
use crate::codec::{BodyParam, ChangeParams, ImportParams};
use crate::error::{map_migrate, map_sqlx, sqlite_open};

mod files;
mod writer;

use writer::{Target, Writer, map_rusqlite};

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
         i.failure, i.attempts, i.created_at, i.updated_at, i.notify, i.next_attempt_at \
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

/// See `ImportStore::claim_queued`: one statement (SQLite writes one at a time), through the
/// partial index `imports_queued_due`.
const CLAIM_QUEUED: &str = "UPDATE imports SET status = 'ACCEPTED', updated_at = $1, \
     next_attempt_at = NULL, failure = NULL, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM imports WHERE status = 'QUEUED' AND next_attempt_at <= $1 \
     ORDER BY next_attempt_at, id LIMIT $2) AND status = 'QUEUED' RETURNING id";

/// See `WebhookStore::claim_events`.
const CLAIM_EVENTS: &str = "UPDATE webhook_outbox SET next_attempt_at = $2, \
     attempts = attempts + 1 WHERE id IN (SELECT id FROM webhook_outbox \
     WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3) \
     RETURNING id, client_id, payload, created_at, attempts";

const INSERT_BODY: &str = "INSERT INTO import_requests (import_id, body) VALUES (?1, ?2)";

/// Writes a body unless the stored one is the same: an unchanged body costs no page write.
const UPSERT_BODY: &str = "INSERT INTO import_requests (import_id, body) VALUES (?1, ?2) \
     ON CONFLICT (import_id) DO UPDATE SET body = excluded.body WHERE body IS NOT excluded.body";

/// A Tippgeber's mapping, replacing the stored one: partnerId and what was last sent to it.
const UPSERT_TIPPGEBER: &str = "INSERT INTO tippgeber_partners \
     (environment, externe_partner_id, partner_id, sent_fingerprints) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (environment, externe_partner_id) DO UPDATE \
     SET partner_id = excluded.partner_id, sent_fingerprints = excluded.sent_fingerprints";

/// The mutable columns of one import, if it is still in state `?10`; `imports.request` is not
/// named, so the body stays where it is. Returns `imports.request` (a body a build before
/// migration 0002 left there, else NULL); no row when the import is gone or moved on.
const TRANSITION_KEEP: &str = "UPDATE imports SET status = ?2, tippgeber_partner_id = ?3, \
     europace_vorgangsnummer = ?4, crm_kennung = ?5, messages = ?6, failure = ?7, \
     attempts = ?8, updated_at = ?9 WHERE id = ?1 AND status = ?10 RETURNING request";

/// Finished imports last changed before `?3`, at most 2,000 per statement (their bodies go by
/// `ON DELETE CASCADE`): a purge of many imports runs as several short writes, so imports
/// waiting for the writer are not held up behind one long delete. The range is one of
/// `imports_status_created_at_id` per state (an import finishes after it was accepted, so
/// `updated_at < ?3` implies `created_at < ?3`).
const PURGE_CHUNK: &str = "DELETE FROM imports WHERE rowid IN (SELECT rowid FROM imports \
     WHERE status IN (?1, ?2) AND created_at < ?3 AND updated_at < ?3 LIMIT 2000)";

/// [`PURGE_CHUNK`]'s `LIMIT`.
const PURGE_CHUNK_ROWS: usize = 2000;

/// Names of in-memory databases opened by this process (each `sqlite::memory:` its own).
static MEMORY_DATABASES: AtomicU64 = AtomicU64::new(0);

const INSERT_CLIENT: &str = "INSERT INTO clients (client_id, secret_hash, name, email, \
     telefonnummer, organisation, scopes, revoked_at, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const SELECT_CLIENT: &str = "SELECT * FROM clients WHERE client_id = ?1";

const LIST_CLIENTS: &str = "SELECT * FROM clients ORDER BY created_at, client_id";

/// [`ImportStore`](crate::ImportStore), [`ClientStore`](crate::ClientStore) and
/// [`SigningKeyStore`](crate::SigningKeyStore) on a SQLite database.
///
/// SQLite serializes writes. The import writes (inserts, state changes, the Tippgeber mapping,
/// the readiness heartbeat, the purge) go to one writer thread that commits the writes of
/// concurrent imports in one transaction, one fsync for all (group commit, see the module
/// `writer`); a caller is answered once its write is durable. The rarer writes of partner
/// clients and signing keys (and the migrations) use a pool of exactly one sqlx connection;
/// the two writers take turns on SQLite's write lock. Reads use a small pool and, in WAL mode,
/// never wait for a writer. An in-memory database (`sqlite::memory:`) lives in SQLite's `memdb`
/// VFS, shared by the writer thread and one sqlx connection, kept for the life of the store.
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
    imports: Writer,
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
        let in_memory = is_in_memory(database_url);
        let (options, target) = if in_memory {
            // SQLite's own in-memory databases are private to one connection; a `memdb`
            // database whose name starts with `/` is shared by the connections of the process
            // that name it, with SQLite's usual locking, for as long as one is open.
            let name = format!(
                "/vorgang-memory-{}-{}",
                std::process::id(),
                MEMORY_DATABASES.fetch_add(1, Ordering::Relaxed)
            );
            let options = SqliteConnectOptions::new()
                .filename(&name)
                .vfs("memdb")
                .create_if_missing(true);
            (options, Target::Memory(name))
        } else {
            let options = SqliteConnectOptions::from_str(database_url)
                .map_err(|err| map_sqlx(CONTEXT, &err))?;
            files::prepare(options.get_filename(), creates_missing_file(database_url))?;
            let path = options.get_filename().to_owned();
            (options, Target::File(path))
        };
        let options = options
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full)
            // Dropped request bodies are overwritten with zeros, not left in free space.
            .pragma("secure_delete", "ON")
            // Sorts of rows with request bodies stay in memory, never in a temporary file.
            .pragma("temp_store", "MEMORY");

        let (writer, reader) = if in_memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(|err| map_sqlx(CONTEXT, &err))?;
            (pool.clone(), pool)
        } else {
            // The writer connects first (creating the file if asked to) and switches it to WAL,
            // which is persistent: readers open an existing WAL database and need no lock for it.
            // Names the file and the fix (e.g. `?mode=rwc`) instead of SQLite's bare result code.
            let path = options.get_filename().to_owned();
            let create = creates_missing_file(database_url);
            let open_failed = |err: sqlx::Error| sqlite_open(&path, database_url, create, &err);
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone().journal_mode(SqliteJournalMode::Wal))
                .await
                .map_err(open_failed)?;
            let reader = SqlitePoolOptions::new()
                .max_connections(READERS)
                // See `PING_IF_IDLE_FOR`.
                .test_before_acquire(false)
                .before_acquire(|connection, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= crate::PING_IF_IDLE_FOR {
                            sqlx::Connection::ping(connection).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options.create_if_missing(false))
                .await
                .map_err(open_failed)?;
            (writer, reader)
        };

        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.set_ignore_missing(true);
        migrator
            .run(&writer)
            .await
            .map_err(|err| map_migrate("migrate SQLite database", &err))?;
        // Opened once the schema is in place: its statements are prepared against it.
        let imports = Writer::start(&target, "FULL")?;
        tracing::info!(backend = "sqlite", "database ready");
        Ok(Self {
            writer,
            reader,
            imports,
        })
    }

    /// Checkpoints and truncates the WAL (see [`ImportStore::scrub`](crate::ImportStore::scrub)), then closes all
    /// connections; later calls fail with [`StoreError::Unavailable`].
    ///
    /// The writer thread runs the writes queued before, checkpoints and closes its connection
    /// first. SQLite also checkpoints and deletes the WAL when its last connection closes; the
    /// explicit checkpoint covers another process still holding the database open.
    pub async fn close(&self) {
        self.imports.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Where the sqlx writes (clients, signing keys) go: the one sqlx writer connection.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Where reads go: the reader connections (WAL readers never wait for the writer).
    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Ids are stored as hyphenated text.
    fn id_param(id: Uuid) -> String {
        id.to_string()
    }

    /// See [`ImportStore::scrub`](crate::ImportStore::scrub): checkpoint and truncate the WAL
    /// (between two batches of the writer).
    async fn scrub_backend(&self) -> Result<(), StoreError> {
        if self.imports.is_closed() {
            return Err(StoreError::Unavailable(
                "checkpoint WAL: the store is closed".to_owned(),
            ));
        }
        self.imports.checkpoint().await
    }

    /// Inserts an import and its body unless its idempotency key is taken: `false` then.
    async fn insert_row(&self, params: &Arc<ImportParams>) -> Result<bool, StoreError> {
        const CONTEXT: &str = "insert import";
        let params = Arc::clone(params);
        self.imports
            .write(CONTEXT, move |connection| {
                let map = |err: rusqlite::Error| map_rusqlite(CONTEXT, &err);
                let id = Self::id_param(params.id);
                let inserted = connection
                    .prepare_cached(INSERT_IMPORT)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            id,
                            params.client_id,
                            params.environment,
                            params.status,
                            params.idempotency_key,
                            params.fingerprint,
                            // `imports.request` stays NULL: bodies live in `import_requests`.
                            None::<&str>,
                            params.tippgeber_externe_partner_id,
                            params.tippgeber_partner_id,
                            params.europace_vorgangsnummer,
                            params.crm_kennung,
                            params.messages,
                            params.failure,
                            params.attempts,
                            params.created_at,
                            params.updated_at,
                        ])
                    })
                    .map_err(map)?;
                if inserted == 0 {
                    return Ok(false);
                }
                if let Some(body) = &params.request {
                    execute(connection, INSERT_BODY, params![id, body], CONTEXT)?;
                }
                Ok(true)
            })
            .await
    }

    /// Applies a state change if the import is still in state `from`; see `transition` in the
    /// `adapter` module for what happens to the body.
    async fn transition_row(
        &self,
        id: Uuid,
        from: vorgang_core::ImportStatus,
        change: ChangeParams,
    ) -> Result<bool, StoreError> {
        const CONTEXT: &str = "transition import";
        self.imports
            .write(CONTEXT, move |connection| {
                let id = Self::id_param(id);
                // Never names `imports.request`, so the trigger of migration 0002 stays quiet;
                // returns a body a build before 0002 left there.
                let legacy: Option<Option<String>> = connection
                    .prepare_cached(TRANSITION_KEEP)
                    .and_then(|mut statement| {
                        statement
                            .query_row(
                                params![
                                    id,
                                    change.status,
                                    change.tippgeber_partner_id,
                                    change.europace_vorgangsnummer,
                                    change.crm_kennung,
                                    change.messages,
                                    change.failure,
                                    change.attempts,
                                    change.updated_at,
                                    from.as_str(),
                                ],
                                |row| row.get(0),
                            )
                            .optional()
                    })
                    .map_err(|err| map_rusqlite(CONTEXT, &err))?;
                let Some(legacy) = legacy else {
                    return Ok(false);
                };
                match (change.body, legacy) {
                    (BodyParam::Keep, None) => {}
                    // Kept, but still where the previous build put it: move it over.
                    (BodyParam::Keep, Some(legacy)) => {
                        execute(
                            connection,
                            crate::adapter::CLEAR_LEGACY_BODY,
                            [&id],
                            CONTEXT,
                        )?;
                        execute(connection, UPSERT_BODY, params![id, legacy], CONTEXT)?;
                    }
                    (BodyParam::Drop, legacy) => {
                        execute(connection, crate::adapter::DELETE_BODY, [&id], CONTEXT)?;
                        if legacy.is_some() {
                            execute(
                                connection,
                                crate::adapter::CLEAR_LEGACY_BODY,
                                [&id],
                                CONTEXT,
                            )?;
                        }
                    }
                    (BodyParam::Store(body), legacy) => {
                        // Clearing a legacy body first: its trigger deletes the row that
                        // the upsert then writes.
                        if legacy.is_some() {
                            execute(
                                connection,
                                crate::adapter::CLEAR_LEGACY_BODY,
                                [&id],
                                CONTEXT,
                            )?;
                        }
                        execute(connection, UPSERT_BODY, params![id, body], CONTEXT)?;
                    }
                }
                // In the same job (one savepoint of the batch): the change, its bookkeeping and
                // its event commit together or not at all.
                if let Some((notify, next_attempt_at)) = &change.delivery {
                    execute(
                        connection,
                        crate::adapter::SET_DELIVERY,
                        params![notify, next_attempt_at, id],
                        CONTEXT,
                    )?;
                }
                if let Some(event) = &change.event {
                    execute(
                        connection,
                        crate::adapter::INSERT_EVENT,
                        params![
                            event.id,
                            Self::id_param(event.import_id),
                            event.client_id,
                            event.event_type,
                            event.payload,
                            event.created_at,
                        ],
                        CONTEXT,
                    )?;
                }
                Ok(true)
            })
            .await
    }

    /// Deletes finished imports last changed before `cutoff`, a chunk per write.
    async fn purge_rows(&self, cutoff: String) -> Result<u64, StoreError> {
        const CONTEXT: &str = "purge imports";
        let cutoff = Arc::new(cutoff);
        let mut total: u64 = 0;
        loop {
            let cutoff = Arc::clone(&cutoff);
            let deleted = self
                .imports
                .write(CONTEXT, move |connection| {
                    execute(
                        connection,
                        PURGE_CHUNK,
                        params![
                            vorgang_core::ImportStatus::Completed.as_str(),
                            vorgang_core::ImportStatus::Failed.as_str(),
                            cutoff.as_str(),
                        ],
                        CONTEXT,
                    )
                })
                .await?;
            total = total.saturating_add(u64::try_from(deleted).unwrap_or(u64::MAX));
            if deleted < PURGE_CHUNK_ROWS {
                return Ok(total);
            }
        }
    }

    /// Upserts a Tippgeber's mapping.
    async fn save_mapping(
        &self,
        environment: &'static str,
        externe_partner_id: &str,
        partner_id: &str,
        sent: Option<String>,
    ) -> Result<(), StoreError> {
        const CONTEXT: &str = "save tippgeber partner";
        let (externe_partner_id, partner_id) =
            (externe_partner_id.to_owned(), partner_id.to_owned());
        self.imports
            .write(CONTEXT, move |connection| {
                execute(
                    connection,
                    UPSERT_TIPPGEBER,
                    params![environment, externe_partner_id, partner_id, sent],
                    CONTEXT,
                )
                .map(|_| ())
            })
            .await
    }

    /// Refreshes the readiness row through the writer thread: `Ok` means a write committed there.
    async fn heartbeat(&self, now: String) -> Result<(), StoreError> {
        const CONTEXT: &str = "ping database (heartbeat write)";
        self.imports
            .write(CONTEXT, move |connection| {
                execute(connection, crate::adapter::HEARTBEAT, [&now], CONTEXT).map(|_| ())
            })
            .await
    }
}

/// Runs one statement of the writer thread (prepared once, cached); how many rows it changed.
///
/// The shared statements of the `adapter` module use `$n` placeholders; SQLite numbers such
/// named parameters in order of first appearance, and in each of them `$1`, `$2`, … first
/// appear in that order, so binding by position binds `$n` to the n-th value.
fn execute(
    connection: &rusqlite::Connection,
    sql: &str,
    values: impl rusqlite::Params,
    context: &'static str,
) -> Result<usize, StoreError> {
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute(values))
        .map_err(|err| map_rusqlite(context, &err))
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
