//! The PostgreSQL adapter, shared by any number of replicas.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};
use uuid::Uuid;
use vorgang_core::StoreError;

use crate::adapter::{impl_store_ports, stale_condition};
use crate::error::{PgTarget, map_migrate, masked_url, postgres_connect};

/// Most connections one store opens.
const MAX_CONNECTIONS: u32 = 10;

/// How long a call waits for a free connection before it fails as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

const INSERT_IMPORT: &str = "INSERT INTO imports (id, client_id, environment, status, \
     idempotency_key, fingerprint, request, tippgeber_externe_partner_id, tippgeber_partner_id, \
     europace_vorgangsnummer, crm_kennung, messages, failure, attempts, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS json), $8, $9, $10, $11, CAST($12 AS json), \
     CAST($13 AS json), $14, $15, $16) \
     ON CONFLICT (client_id, idempotency_key) DO NOTHING";

/// The columns of an import with its request body: from `import_requests`, or from
/// `imports.request` where a build before migration 0002 left it.
macro_rules! select_import {
    () => {
        "SELECT i.id::text AS id, i.client_id, i.environment, i.status, i.idempotency_key, \
         i.fingerprint, COALESCE(i.request, r.body)::text AS request, \
         i.tippgeber_externe_partner_id, i.tippgeber_partner_id, i.europace_vorgangsnummer, \
         i.crm_kennung, i.messages::text AS messages, i.failure::text AS failure, i.attempts, \
         i.created_at, i.updated_at \
         FROM imports i LEFT JOIN import_requests r ON r.import_id = i.id"
    };
}

const SELECT_IMPORT: &str = select_import!();

const SELECT_BY_ID: &str = concat!(select_import!(), " WHERE i.id = $1");

const SELECT_BY_KEY: &str = concat!(
    select_import!(),
    " WHERE i.client_id = $1 AND i.idempotency_key = $2"
);

/// See [`stale_condition`].
const LIST_STALE: &str = concat!(select_import!(), stale_condition!());

const INSERT_BODY: &str =
    "INSERT INTO import_requests (import_id, body) VALUES ($1, CAST($2 AS json))";

/// Writes a body unless the stored one is the same: an unchanged body leaves no dead row
/// version behind (`json` has no equality operator, so the texts are compared).
const UPSERT_BODY: &str = "INSERT INTO import_requests (import_id, body) \
     VALUES ($1, CAST($2 AS json)) ON CONFLICT (import_id) DO UPDATE SET body = excluded.body \
     WHERE import_requests.body::text IS DISTINCT FROM excluded.body::text";

/// The mutable columns of one import, if it is still in state `$10`; `imports.request` is not
/// named, so the body stays where it is (no new TOAST pointer copy is made either). Returns
/// `imports.request` (a body a build before migration 0002 left there, else NULL); no row when
/// the import is gone or moved on.
const TRANSITION_KEEP: &str = "UPDATE imports SET status = $2, tippgeber_partner_id = $3, \
     europace_vorgangsnummer = $4, crm_kennung = $5, messages = CAST($6 AS json), \
     failure = CAST($7 AS json), attempts = $8, updated_at = $9 \
     WHERE id = $1 AND status = $10 RETURNING request::text";

/// [`TRANSITION_KEEP`], also clearing `imports.request` (the body is dropped or written anew).
const TRANSITION_CLEAR: &str = "UPDATE imports SET status = $2, tippgeber_partner_id = $3, \
     europace_vorgangsnummer = $4, crm_kennung = $5, messages = CAST($6 AS json), \
     failure = CAST($7 AS json), attempts = $8, updated_at = $9, request = NULL \
     WHERE id = $1 AND status = $10 RETURNING request::text";

const INSERT_CLIENT: &str = "INSERT INTO clients (client_id, secret_hash, name, email, \
     telefonnummer, organisation, scopes, revoked_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS json), $8, $9)";

const SELECT_CLIENT: &str = "SELECT client_id, secret_hash, name, email, telefonnummer, \
     organisation, scopes::text AS scopes, revoked_at, created_at \
     FROM clients WHERE client_id = $1";

const LIST_CLIENTS: &str = "SELECT client_id, secret_hash, name, email, telefonnummer, \
     organisation, scopes::text AS scopes, revoked_at, created_at \
     FROM clients ORDER BY created_at, client_id";

/// [`ImportStore`](crate::ImportStore), [`ClientStore`](crate::ClientStore) and
/// [`SigningKeyStore`](crate::SigningKeyStore) on a PostgreSQL database.
///
/// Safe to share between replicas: the idempotency rule is a unique constraint, status changes
/// are compare-and-set, and migrations take PostgreSQL's advisory lock.
///
/// Request bodies live in `import_requests`, written once and deleted when the import finishes:
/// a deleted row stays in the table file as a dead tuple until (auto)vacuum makes its space
/// reusable, and in WAL segments and backups for their lifetime. The table is small and vacuumed
/// after every 100 deletions (migration 0002); what VACUUM does and does not erase is in
/// docs/privacy.md.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database named by a `postgres://` (or `postgresql://`) URL and applies
    /// the embedded migrations. Opens at most 10 connections; a call waits at most 5 s for one (also while the server is
    /// unreachable).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the URL is invalid or the server cannot be reached or
    /// migrated; [`StoreError::Corrupt`] if the database carries a modified migration. A failed
    /// connection names the cause and the fix (a missing database, a refused user or password, a
    /// refused or unanswered host and port) and the URL with its password masked.
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(database_url).map_err(|_| {
            StoreError::Unavailable(format!(
                "connect to PostgreSQL: database_url is not a valid PostgreSQL URL ({})",
                masked_url(database_url)
            ))
        })?;
        let target = PgTarget {
            url: masked_url(database_url),
            host: options.get_host(),
            port: options.get_port(),
            user: options.get_username(),
            database: options.get_database().unwrap_or(options.get_username()),
        };
        let pool = match PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => pool,
            // The pool retries failed connections until its timeout and then reports only the
            // timeout: one more attempt of our own tells the operator why (refused, unknown
            // host), bounded by the same timeout for a host that never answers.
            Err(sqlx::Error::PoolTimedOut) => {
                let cause = match tokio::time::timeout(
                    ACQUIRE_TIMEOUT,
                    PgConnection::connect_with(&options),
                )
                .await
                {
                    Ok(Ok(connection)) => {
                        let _ = connection.close().await;
                        sqlx::Error::PoolTimedOut
                    }
                    Ok(Err(err)) => err,
                    Err(_) => {
                        return Err(StoreError::Unavailable(format!(
                            "connect to PostgreSQL ({}): no answer from {}:{} within {} s; \
                             check host and port in database_url and the network",
                            target.url,
                            target.host,
                            target.port,
                            ACQUIRE_TIMEOUT.as_secs()
                        )));
                    }
                };
                return Err(postgres_connect(&target, &cause));
            }
            Err(err) => return Err(postgres_connect(&target, &err)),
        };
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|err| map_migrate("migrate PostgreSQL database", &err))?;
        tracing::info!(backend = "postgres", "database ready");
        Ok(Self { pool })
    }

    /// Closes all connections; later calls fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Where writes go: the pool.
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Where reads go: the same pool.
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// A write transaction (READ COMMITTED; the compare-and-set in each statement is what
    /// orders concurrent writers).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Ids are `uuid`.
    const fn id_param(id: Uuid) -> Uuid {
        id
    }

    /// See [`ImportStore::scrub`](crate::ImportStore::scrub): nothing to do, (auto)vacuum reclaims dropped bodies (see
    /// docs/privacy.md).
    #[allow(clippy::unused_async)] // the shared port body awaits it for both backends
    async fn scrub_backend(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl_store_ports!(PgStore, Postgres);
