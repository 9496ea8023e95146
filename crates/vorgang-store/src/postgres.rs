//! The PostgreSQL adapter, shared by any number of replicas.

use std::time::Duration;

use async_trait::async_trait;
use auth::{
    ClientRecord, ClientStore, SigningKeyRecord, SigningKeyStore, StoreError as AuthStoreError,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, Postgres};
use sqlx::query::Query;
use uuid::Uuid;
use vorgang_core::model::Environment;
use vorgang_core::{ImportRecord, ImportStatus, ImportStore, InsertOutcome, StoreError};

use crate::codec::{
    ClientParams, ClientRow, ImportParams, ImportRow, SigningKeyRow, client_records, encode_time,
    import_records, signing_key_records,
};
use crate::error::{for_auth, map_migrate, map_sqlx, map_sqlx_auth};
use crate::{INSERT_ATTEMPTS, idempotency_race_lost};

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

const SELECT_BY_ID: &str = concat!(select_import!(), " WHERE i.id = $1");

const SELECT_BY_KEY: &str = concat!(
    select_import!(),
    " WHERE i.client_id = $1 AND i.idempotency_key = $2"
);

const LIST_ALL: &str = concat!(select_import!(), " ORDER BY i.created_at, i.id");

const LIST_BY_STATUS: &str = concat!(
    select_import!(),
    " WHERE i.status = $1 ORDER BY i.created_at, i.id"
);

const INSERT_BODY: &str =
    "INSERT INTO import_requests (import_id, body) VALUES ($1, CAST($2 AS json))";

/// Writes a body unless the stored one is the same: an unchanged body leaves no dead row
/// version behind (`json` has no equality operator, so the texts are compared).
const UPSERT_BODY: &str = "INSERT INTO import_requests (import_id, body) \
     VALUES ($1, CAST($2 AS json)) ON CONFLICT (import_id) DO UPDATE SET body = excluded.body \
     WHERE import_requests.body::text IS DISTINCT FROM excluded.body::text";

const DELETE_BODY: &str = "DELETE FROM import_requests WHERE import_id = $1";

const HEARTBEAT: &str = "INSERT INTO heartbeat (id, beat_at) VALUES (1, $1) \
     ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at";

const UPDATE_IMPORT: &str = "UPDATE imports SET client_id = $2, environment = $3, status = $4, \
     idempotency_key = $5, fingerprint = $6, request = CAST($7 AS json), \
     tippgeber_externe_partner_id = $8, tippgeber_partner_id = $9, \
     europace_vorgangsnummer = $10, crm_kennung = $11, messages = CAST($12 AS json), \
     failure = CAST($13 AS json), attempts = $14, created_at = $15, updated_at = $16 \
     WHERE id = $1 AND status = $17";

const PURGE: &str = "DELETE FROM imports WHERE status IN ($1, $2) AND updated_at < $3";

const SELECT_TIPPGEBER: &str = "SELECT partner_id FROM tippgeber_partners \
     WHERE environment = $1 AND externe_partner_id = $2";

const UPSERT_TIPPGEBER: &str = "INSERT INTO tippgeber_partners \
     (environment, externe_partner_id, partner_id) VALUES ($1, $2, $3) \
     ON CONFLICT (environment, externe_partner_id) DO UPDATE SET partner_id = excluded.partner_id";

const INSERT_CLIENT: &str = "INSERT INTO clients (client_id, secret_hash, name, email, \
     telefonnummer, organisation, scopes, revoked_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS json), $8, $9)";

const SELECT_CLIENT: &str = "SELECT client_id, secret_hash, name, email, telefonnummer, \
     organisation, scopes::text AS scopes, revoked_at, created_at \
     FROM clients WHERE client_id = $1";

const LIST_CLIENTS: &str = "SELECT client_id, secret_hash, name, email, telefonnummer, \
     organisation, scopes::text AS scopes, revoked_at, created_at \
     FROM clients ORDER BY created_at, client_id";

const REVOKE_CLIENT: &str =
    "UPDATE clients SET revoked_at = COALESCE(revoked_at, $1) WHERE client_id = $2";

const SET_SECRET: &str = "UPDATE clients SET secret_hash = $1 WHERE client_id = $2";

const INSERT_KEY: &str = "INSERT INTO signing_keys (kid, algorithm, private_key, encrypted, \
     public_key, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

const LIST_KEYS: &str = "SELECT kid, algorithm, private_key, encrypted, public_key, created_at, \
     retired_at FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 \
     ORDER BY created_at DESC, kid DESC";

const RETIRE_OTHER_KEYS: &str =
    "UPDATE signing_keys SET retired_at = $1 WHERE kid <> $2 AND retired_at IS NULL";

/// [`ImportStore`], [`ClientStore`] and [`SigningKeyStore`] on a PostgreSQL database.
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
    /// migrated; [`StoreError::Corrupt`] if the database carries a modified migration.
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(database_url)
            .await
            .map_err(|err| map_sqlx("connect to PostgreSQL", &err))?;
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

    async fn import_by_key(
        &self,
        client_id: &str,
        key: &str,
    ) -> Result<Option<ImportRecord>, StoreError> {
        sqlx::query_as::<_, ImportRow>(SELECT_BY_KEY)
            .bind(client_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| map_sqlx("read import by idempotency key", &err))?
            .map(ImportRow::into_record)
            .transpose()
    }
}

/// Binds `?1`…`?16` / `$1`…`$16`: the columns of `imports` in table order.
fn bind_import<'q>(
    query: Query<'q, Postgres, PgArguments>,
    params: &ImportParams,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(params.id)
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
impl ImportStore for PgStore {
    async fn insert(&self, record: &ImportRecord) -> Result<InsertOutcome, StoreError> {
        const CONTEXT: &str = "insert import";
        let params = ImportParams::new(CONTEXT, record)?;
        let map = |err: sqlx::Error| map_sqlx(CONTEXT, &err);
        for _ in 0..INSERT_ATTEMPTS {
            // ON CONFLICT waits for a concurrent insert of the same key to commit or roll back,
            // so when nothing was inserted the conflicting row is committed and visible to the
            // next statement (READ COMMITTED). The import and its body commit together.
            let mut tx = self.pool.begin().await.map_err(map)?;
            let done = bind_import(sqlx::query(INSERT_IMPORT), &params)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            if done.rows_affected() == 1 {
                if let Some(body) = &params.request {
                    sqlx::query(INSERT_BODY)
                        .bind(params.id)
                        .bind(body)
                        .execute(&mut *tx)
                        .await
                        .map_err(map)?;
                }
                tx.commit().await.map_err(map)?;
                return Ok(InsertOutcome::Inserted);
            }
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
        let mut tx = self.pool.begin().await.map_err(map)?;
        let done = bind_import(sqlx::query(UPDATE_IMPORT), &params)
            .bind(expected.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(map)?;
            return Ok(false);
        }
        match &params.request {
            Some(body) => sqlx::query(UPSERT_BODY).bind(params.id).bind(body),
            None => sqlx::query(DELETE_BODY).bind(params.id),
        }
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn get(&self, id: Uuid) -> Result<Option<ImportRecord>, StoreError> {
        sqlx::query_as::<_, ImportRow>(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
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
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query_as::<_, ImportRow>(LIST_ALL)
                    .fetch_all(&self.pool)
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
            .execute(&self.pool)
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
            .fetch_optional(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(|err| map_sqlx("save tippgeber partnerId", &err))?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A committed write, not `SELECT 1`: a read-only or full database fails here even though
        // it still answers queries. One row, updated in place (HOT): cheap enough for every
        // probe of every replica.
        sqlx::query(HEARTBEAT)
            .bind(encode_time(Utc::now()))
            .execute(&self.pool)
            .await
            .map_err(|err| map_sqlx("ping database (heartbeat write)", &err))?;
        Ok(())
    }
}

#[async_trait]
impl ClientStore for PgStore {
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
            .execute(&self.pool)
            .await
            .map_err(|err| map_sqlx_auth("insert client", &err))?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, AuthStoreError> {
        sqlx::query_as::<_, ClientRow>(SELECT_CLIENT)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| map_sqlx_auth("read client", &err))?
            .map(ClientRow::into_record)
            .transpose()
            .map_err(for_auth)
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, AuthStoreError> {
        let rows = sqlx::query_as::<_, ClientRow>(LIST_CLIENTS)
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(|err| map_sqlx_auth("set client secret", &err))?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl SigningKeyStore for PgStore {
    async fn insert_key(&self, key: &SigningKeyRecord) -> Result<(), AuthStoreError> {
        sqlx::query(INSERT_KEY)
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.private_key)
            .bind(key.encrypted)
            .bind(&key.public_key)
            .bind(encode_time(key.created_at))
            .bind(key.retired_at.map(encode_time))
            .execute(&self.pool)
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
            .fetch_all(&self.pool)
            .await
            .map_err(|err| map_sqlx_auth("list signing keys", &err))?;
        signing_key_records(rows).map_err(for_auth)
    }

    async fn retire_other_keys(&self, kid: &str, at: DateTime<Utc>) -> Result<(), AuthStoreError> {
        sqlx::query(RETIRE_OTHER_KEYS)
            .bind(encode_time(at))
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(|err| map_sqlx_auth("retire signing keys", &err))?;
        Ok(())
    }
}
