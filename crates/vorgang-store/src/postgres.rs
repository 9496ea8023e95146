//! The PostgreSQL adapter, shared by any number of replicas.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};
use uuid::Uuid;
use vorgang_core::StoreError;

use crate::adapter::{impl_store_ports, stale_condition};
use crate::codec::{BodyParam, ChangeParams, ImportParams};
use crate::error::{PgTarget, map_migrate, map_sqlx, masked_url, postgres_connect};

mod batch;

use batch::Batcher;

/// Most connections one store opens.
const MAX_CONNECTIONS: u32 = 10;

/// How long a call waits for a free connection before it fails as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// An import and its body in one statement (one round trip, one implicit transaction):
/// `$1`…`$15` the columns of `imports` but `request` (which stays NULL: bodies live in
/// `import_requests`), `$16` the body or NULL. Returns 1 when the import was inserted, 0 when
/// its idempotency key was taken (then nothing is written).
const INSERT_IMPORT: &str = "WITH i AS (INSERT INTO imports (id, client_id, environment, \
     status, idempotency_key, fingerprint, request, tippgeber_externe_partner_id, \
     tippgeber_partner_id, europace_vorgangsnummer, crm_kennung, messages, failure, attempts, \
     created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9, $10, CAST($11 AS json), \
     CAST($12 AS json), $13, $14, $15) \
     ON CONFLICT (client_id, idempotency_key) DO NOTHING RETURNING id), \
     b AS (INSERT INTO import_requests (import_id, body) \
     SELECT id, CAST($16 AS json) FROM i WHERE $16 IS NOT NULL) \
     SELECT count(*) FROM i";

/// The columns of an import with its request body: from `import_requests`, or from
/// `imports.request` where a build before migration 0002 left it.
macro_rules! select_import {
    () => {
        "SELECT i.id::text AS id, i.client_id, i.environment, i.status, i.idempotency_key, \
         i.fingerprint, COALESCE(i.request, r.body)::text AS request, \
         i.tippgeber_externe_partner_id, i.tippgeber_partner_id, i.europace_vorgangsnummer, \
         i.crm_kennung, i.messages::text AS messages, i.failure::text AS failure, i.attempts, \
         i.created_at, i.updated_at, i.notify, i.next_attempt_at \
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

/// See `ImportStore::claim_queued`: the due queued imports through the partial index
/// `imports_queued_due`, each locked or skipped (`SKIP LOCKED`: a replica claiming at the same
/// time takes others), moved to `ACCEPTED` in the same statement.
const CLAIM_QUEUED: &str = "UPDATE imports SET status = 'ACCEPTED', updated_at = $1, \
     next_attempt_at = NULL, failure = NULL, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM imports WHERE status = 'QUEUED' AND next_attempt_at <= $1 \
     ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) AND status = 'QUEUED' \
     RETURNING id::text";

/// See `WebhookStore::claim_events`: leased by moving `next_attempt_at` to the lease's end, each
/// row locked or skipped.
const CLAIM_EVENTS: &str = "UPDATE webhook_outbox SET next_attempt_at = $2, \
     attempts = attempts + 1 WHERE id IN (SELECT id FROM webhook_outbox \
     WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
     AND next_attempt_at <= $1 RETURNING id, client_id, payload, created_at, attempts";

/// Finished imports last changed before `$3`, and their bodies (a finished import may keep its
/// body until purged; `import_requests` has no foreign key to cascade since migration 0008), in
/// one statement; returns the number of imports deleted. One range of
/// `imports_status_created_at_id` per state (an import finishes after it was accepted, so
/// `updated_at < $3` implies `created_at < $3`; the condition on `created_at` bounds the range).
const PURGE: &str = "WITH gone AS (DELETE FROM imports WHERE status IN ($1, $2) \
     AND created_at < $3 AND updated_at < $3 RETURNING id), \
     bodies AS (DELETE FROM import_requests r USING gone WHERE r.import_id = gone.id) \
     SELECT count(*) FROM gone";

/// Writes a body unless the stored one is the same: an unchanged body leaves no dead row
/// version behind (`json` has no equality operator, so the texts are compared).
const UPSERT_BODY: &str = "INSERT INTO import_requests (import_id, body) \
     VALUES ($1, CAST($2 AS json)) ON CONFLICT (import_id) DO UPDATE SET body = excluded.body \
     WHERE import_requests.body::text IS DISTINCT FROM excluded.body::text";

/// The compare-and-set of the transitions below is written `(status = $10) IS TRUE` (the same for
/// a `NOT NULL` column): a condition no index can serve, so the import is always reached by its
/// primary key. With `status = $10` a plan made while the table was small (plans are cached per
/// connection) could reach it through `(status, created_at, id)` instead, whose range for
/// `SENDING` holds an entry for every import updated since the last vacuum: a scan growing
/// with the traffic (issue 10's profile).
///
/// The mutable columns of one import, if it is still in state `$10`; `imports.request` is not
/// named, so the body stays where it is (no new TOAST pointer copy is made either, and the
/// trigger of migration 0002 stays quiet). Returns `imports.request` (a body a build before
/// migration 0002 left there, else NULL); no row when the import is gone or moved on.
const TRANSITION_KEEP: &str = "UPDATE imports SET status = $2, tippgeber_partner_id = $3, \
     europace_vorgangsnummer = $4, crm_kennung = $5, messages = CAST($6 AS json), \
     failure = CAST($7 AS json), attempts = $8, updated_at = $9 \
     WHERE id = $1 AND (status = $10) IS TRUE RETURNING request::text";

/// [`TRANSITION_KEEP`] that also deletes the body, in one statement: the import finishes.
/// Returns `imports.request` like it (then cleared by the caller); no row when the import is
/// gone or moved on.
const TRANSITION_DROP: &str = "WITH u AS (UPDATE imports SET status = $2, \
     tippgeber_partner_id = $3, europace_vorgangsnummer = $4, crm_kennung = $5, \
     messages = CAST($6 AS json), failure = CAST($7 AS json), attempts = $8, updated_at = $9 \
     WHERE id = $1 AND (status = $10) IS TRUE RETURNING id, request::text AS legacy), \
     d AS (DELETE FROM import_requests r USING u WHERE r.import_id = u.id) \
     SELECT legacy FROM u";

/// [`TRANSITION_KEEP`], also clearing `imports.request`: the body is written anew after it (in
/// the same transaction; the trigger has fired by then).
const TRANSITION_CLEAR: &str = "UPDATE imports SET status = $2, tippgeber_partner_id = $3, \
     europace_vorgangsnummer = $4, crm_kennung = $5, messages = CAST($6 AS json), \
     failure = CAST($7 AS json), attempts = $8, updated_at = $9, request = NULL \
     WHERE id = $1 AND (status = $10) IS TRUE RETURNING request::text";

/// A Tippgeber's mapping, replacing the stored one: partnerId and what was last sent to it.
const UPSERT_TIPPGEBER: &str = "INSERT INTO tippgeber_partners \
     (environment, externe_partner_id, partner_id, sent_fingerprints) \
     VALUES ($1, $2, $3, CAST($4 AS json)) \
     ON CONFLICT (environment, externe_partner_id) DO UPDATE \
     SET partner_id = excluded.partner_id, sent_fingerprints = excluded.sent_fingerprints";

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
    /// The batching writer of imports (see the module `batch`).
    writes: Batcher,
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
        let writes = Batcher::start(&options)?;
        Ok(Self { pool, writes })
    }

    /// Closes all connections; later calls fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.writes.close().await;
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
    /// orders concurrent writers). Only the rare paths need one: the common writes are single
    /// statements.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Inserts an import and its body unless its idempotency key is taken: `false` then. In the
    /// writer's next batch.
    async fn insert_row(&self, params: &Arc<ImportParams>) -> Result<bool, StoreError> {
        self.writes.insert(Arc::clone(params)).await
    }

    /// Applies a state change if the import is still in state `from` (see the contract at
    /// `impl_store_ports!`): in the writer's next batch when the body is kept or dropped.
    async fn transition_row(
        &self,
        id: Uuid,
        from: vorgang_core::ImportStatus,
        change: ChangeParams,
    ) -> Result<bool, StoreError> {
        const CONTEXT: &str = "transition import";
        if !change.is_rare() {
            return self.writes.transition(id, from.as_str(), change).await;
        }
        // Rare (a retry after Europace was unavailable, queueing, a webhook event): a
        // transaction, so the change, its body, its bookkeeping and its event commit together
        // (and the trigger that fires on clearing `imports.request` runs before a body is
        // written).
        let map = |err: sqlx::Error| map_sqlx(CONTEXT, &err);
        let mut tx = self.begin_write().await.map_err(map)?;
        let statement = match change.body {
            BodyParam::Keep => TRANSITION_KEEP,
            BodyParam::Drop => TRANSITION_DROP,
            BodyParam::Store(_) => TRANSITION_CLEAR,
        };
        let row: Option<(Option<String>,)> =
            bind_change(sqlx::query_as(statement), id, from.as_str(), &change)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        let Some((legacy,)) = row else {
            tx.rollback().await.map_err(map)?;
            return Ok(false);
        };
        match (&change.body, legacy) {
            (BodyParam::Store(body), _) => {
                sqlx::query(UPSERT_BODY)
                    .bind(id)
                    .bind(body)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            (body, Some(legacy)) => {
                move_legacy_body(&mut tx, id, matches!(body, BodyParam::Keep), legacy)
                    .await
                    .map_err(map)?;
            }
            (_, None) => {}
        }
        if let Some((notify, next_attempt_at)) = &change.delivery {
            sqlx::query(crate::adapter::SET_DELIVERY)
                .bind(notify)
                .bind(next_attempt_at)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        if let Some(event) = &change.event {
            sqlx::query(crate::adapter::INSERT_EVENT)
                .bind(&event.id)
                .bind(event.import_id)
                .bind(&event.client_id)
                .bind(event.event_type)
                .bind(&event.payload)
                .bind(&event.created_at)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    /// Deletes finished imports last changed before `cutoff`.
    async fn purge_rows(&self, cutoff: String) -> Result<u64, StoreError> {
        sqlx::query_scalar::<_, i64>(PURGE)
            .bind(vorgang_core::ImportStatus::Completed.as_str())
            .bind(vorgang_core::ImportStatus::Failed.as_str())
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await
            .map(|purged| u64::try_from(purged).unwrap_or(0))
            .map_err(|err| map_sqlx("purge imports", &err))
    }

    /// Upserts a Tippgeber's mapping.
    async fn save_mapping(
        &self,
        environment: &'static str,
        externe_partner_id: &str,
        partner_id: &str,
        sent: Option<String>,
    ) -> Result<(), StoreError> {
        sqlx::query(UPSERT_TIPPGEBER)
            .bind(environment)
            .bind(externe_partner_id)
            .bind(partner_id)
            .bind(sent)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|err| map_sqlx("save tippgeber partner", &err))
    }

    /// Refreshes the readiness row.
    async fn heartbeat(&self, now: String) -> Result<(), StoreError> {
        sqlx::query(crate::adapter::HEARTBEAT)
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|err| map_sqlx("ping database (heartbeat write)", &err))
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

/// Binds a change's `$1`…`$10` (id, the columns, the expected status) to `query`.
fn bind_change<'q, O>(
    query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    id: Uuid,
    from: &'q str,
    change: &'q ChangeParams,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(id)
        .bind(change.status)
        .bind(&change.tippgeber_partner_id)
        .bind(&change.europace_vorgangsnummer)
        .bind(&change.crm_kennung)
        .bind(&change.messages)
        .bind(&change.failure)
        .bind(change.attempts)
        .bind(&change.updated_at)
        .bind(from)
}

/// One insert on its own (when its batch failed): one statement, its own transaction.
async fn insert_one(pool: &PgPool, params: &ImportParams) -> Result<bool, StoreError> {
    let inserted: i64 = sqlx::query_scalar(INSERT_IMPORT)
        .bind(params.id)
        .bind(&params.client_id)
        .bind(params.environment)
        .bind(params.status)
        .bind(&params.idempotency_key)
        .bind(&params.fingerprint)
        .bind(&params.tippgeber_externe_partner_id)
        .bind(&params.tippgeber_partner_id)
        .bind(&params.europace_vorgangsnummer)
        .bind(&params.crm_kennung)
        .bind(&params.messages)
        .bind(&params.failure)
        .bind(params.attempts)
        .bind(&params.created_at)
        .bind(&params.updated_at)
        .bind(&params.request)
        .fetch_one(pool)
        .await
        .map_err(|err| map_sqlx("insert import", &err))?;
    Ok(inserted == 1)
}

/// One state change that keeps or drops the body on its own (when its batch failed): one
/// statement, its own transaction (a legacy body is moved in a second one).
async fn transition_one(
    pool: &PgPool,
    id: Uuid,
    from: &str,
    change: &ChangeParams,
) -> Result<bool, StoreError> {
    const CONTEXT: &str = "transition import";
    let map = |err: sqlx::Error| map_sqlx(CONTEXT, &err);
    let keep = match change.body {
        BodyParam::Keep => true,
        BodyParam::Drop => false,
        BodyParam::Store(_) => {
            return Err(StoreError::Unavailable(format!(
                "{CONTEXT}: a body to store is not a batched write"
            )));
        }
    };
    let statement = if keep {
        TRANSITION_KEEP
    } else {
        TRANSITION_DROP
    };
    let row: Option<(Option<String>,)> = bind_change(sqlx::query_as(statement), id, from, change)
        .fetch_optional(pool)
        .await
        .map_err(map)?;
    let Some((legacy,)) = row else {
        return Ok(false);
    };
    if let Some(legacy) = legacy {
        // Its own transaction, after the change: if this fails, the body stays in
        // `imports.request` (read from there) and is handled at the next change.
        move_legacy_body_alone(pool, id, keep, legacy).await?;
    }
    Ok(true)
}

/// [`move_legacy_body`] in a transaction of its own.
async fn move_legacy_body_alone(
    pool: &PgPool,
    id: Uuid,
    keep: bool,
    legacy: String,
) -> Result<(), StoreError> {
    let map = |err: sqlx::Error| map_sqlx("move legacy body", &err);
    let mut tx = pool.begin().await.map_err(map)?;
    move_legacy_body(&mut tx, id, keep, legacy)
        .await
        .map_err(map)?;
    tx.commit().await.map_err(map)
}

/// A body a build before migration 0002 left in `imports.request`: cleared there (its trigger
/// deletes the copy in `import_requests`), then written to `import_requests` if it is kept.
async fn move_legacy_body(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    id: Uuid,
    keep: bool,
    legacy: String,
) -> Result<(), sqlx::Error> {
    sqlx::query(crate::adapter::CLEAR_LEGACY_BODY)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if keep {
        sqlx::query(UPSERT_BODY)
            .bind(id)
            .bind(legacy)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl_store_ports!(PgStore, Postgres);
