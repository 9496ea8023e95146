//! The port implementations both backends share, written once.
//!
//! SQLite and PostgreSQL differ in their SQL (placeholders aside: casts to and from `json`, how
//! ids are typed) and in how they are connected, not in what a port method does: bind the
//! parameters, run one statement or one transaction, map the rows and the errors. So the
//! methods are one body, [`impl_store_ports!`], expanded once per backend with its concrete
//! sqlx types. (A generic impl over `sqlx::Database` would need an executor and an encode bound
//! for every parameter type on every method; the expansion keeps the code as it reads.)
//!
//! The statements that are the same text on both backends live here, with `$n` placeholders
//! (sqlx's SQLite driver reads `$n` as `?n`); each backend module defines the others under the
//! names listed at [`impl_store_ports!`].

/// The `WHERE` and order of `ImportStore::list_stale` after a backend's import `SELECT`: the
/// states the resume drives on, last changed at or before `$1`, oldest change first. Read
/// through `imports_status_created_at_id`, one range per state: what it reads is the unfinished
/// imports (few: those in flight and those abandoned), never the finished ones; they are
/// filtered by `updated_at` and sorted in memory (migration 0004 dropped the index on
/// `(status, updated_at)`, one index less to update on every state change).
macro_rules! stale_condition {
    () => {
        " WHERE i.status IN ('ACCEPTED', 'PARTNER_READY', 'SENDING', 'IMPORTED') \
         AND i.updated_at <= $1 ORDER BY i.updated_at, i.id"
    };
}

pub(crate) use stale_condition;

/// Refreshes the readiness row: `ImportStore::ping`.
pub(crate) const HEARTBEAT: &str = "INSERT INTO heartbeat (id, beat_at) VALUES (1, $1) \
     ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at";

pub(crate) const DELETE_BODY: &str = "DELETE FROM import_requests WHERE import_id = $1";

/// Clears a body a build before migration 0002 left in `imports.request`; its trigger then
/// deletes the copy the migration made, and the caller writes the body to `import_requests`.
pub(crate) const CLEAR_LEGACY_BODY: &str =
    "UPDATE imports SET request = NULL WHERE id = $1 AND request IS NOT NULL";

/// `ImportStore::count_by_status`: one range of an index that starts with `status`
/// (`imports_status_created_at_id`, `imports_status_updated_at`), answered from the index alone.
pub(crate) const COUNT_BY_STATUS: &str = "SELECT count(*) FROM imports WHERE status = $1";

/// A Tippgeber's mapping (`TippgeberRow`); the fingerprints as text on both backends.
pub(crate) const SELECT_TIPPGEBER: &str = "SELECT partner_id, \
     CAST(sent_fingerprints AS TEXT) AS sent_fingerprints FROM tippgeber_partners \
     WHERE environment = $1 AND externe_partner_id = $2";

/// The delivery bookkeeping of an import (a rare change, in the transaction of its transition).
pub(crate) const SET_DELIVERY: &str =
    "UPDATE imports SET notify = $1, next_attempt_at = $2 WHERE id = $3";

/// A webhook event, in the transaction of the state change causing it: only when the client has
/// a webhook then (a client without one gets no events, and the outbox holds none for it).
pub(crate) const INSERT_EVENT: &str = "INSERT INTO webhook_outbox (id, import_id, client_id, \
     event_type, payload, created_at, next_attempt_at, attempts) \
     SELECT $1, $2, $3, $4, $5, $6, $6, 0 \
     WHERE EXISTS (SELECT 1 FROM clients WHERE client_id = $3 AND webhook_url IS NOT NULL)";

pub(crate) const SET_WEBHOOK: &str = "UPDATE clients SET webhook_url = $1, webhook_secret = $2, \
     webhook_secret_encrypted = $3 WHERE client_id = $4";

pub(crate) const SELECT_WEBHOOK: &str = "SELECT webhook_url, webhook_secret, \
     webhook_secret_encrypted FROM clients WHERE client_id = $1";

pub(crate) const REMOVE_EVENT: &str = "DELETE FROM webhook_outbox WHERE id = $1";

pub(crate) const RETRY_EVENT: &str = "UPDATE webhook_outbox SET next_attempt_at = $2 WHERE id = $1";

pub(crate) const COUNT_EVENTS: &str = "SELECT count(*) FROM webhook_outbox";

pub(crate) const REVOKE_CLIENT: &str =
    "UPDATE clients SET revoked_at = COALESCE(revoked_at, $1) WHERE client_id = $2";

pub(crate) const SET_SECRET: &str = "UPDATE clients SET secret_hash = $1 WHERE client_id = $2";

/// The revocation generation (migration 0004): increased by trigger with every revocation.
pub(crate) const REVOCATION_GENERATION: &str =
    "SELECT generation FROM revocation_generation WHERE id = 1";

pub(crate) const REVOKED_CLIENTS: &str =
    "SELECT client_id FROM clients WHERE revoked_at IS NOT NULL";

pub(crate) const LIVE_REVOKED_TOKENS: &str =
    "SELECT jti FROM revoked_tokens WHERE expires_at >= $1";

/// A second revocation of the same token keeps the first record (and, inserting nothing, does
/// not increase the generation).
pub(crate) const INSERT_REVOKED_TOKEN: &str = "INSERT INTO revoked_tokens \
     (jti, client_id, expires_at, revoked_at) VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING";

pub(crate) const PURGE_REVOKED_TOKENS: &str = "DELETE FROM revoked_tokens WHERE expires_at < $1";

pub(crate) const INSERT_KEY: &str = "INSERT INTO signing_keys (kid, algorithm, private_key, \
     encrypted, public_key, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(crate) const LIST_KEYS: &str = "SELECT kid, algorithm, private_key, encrypted, public_key, \
     created_at, retired_at FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 \
     ORDER BY created_at DESC, kid DESC";

pub(crate) const RETIRE_OTHER_KEYS: &str =
    "UPDATE signing_keys SET retired_at = $1 WHERE kid <> $2 AND retired_at IS NULL";

/// Implements [`ImportStore`](vorgang_core::ImportStore), [`auth::ClientStore`] and
/// [`auth::SigningKeyStore`] for `$store` on the sqlx database `$db`.
///
/// Reads are one body for both backends. The import writes are each backend's own (SQLite
/// runs them on its writer thread with group commit, PostgreSQL as single statements on the
/// pool), behind inherent methods with one contract:
///
/// - `insert_row(&Arc<ImportParams>) -> Result<bool>`: the import and its body in one
///   transaction, `false` (nothing stored) when its idempotency key is taken;
/// - `transition_row(id, from, ChangeParams) -> Result<bool>`: the columns of the change if the
///   import is still `from`, never naming `imports.request` on the common paths (the trigger of
///   migration 0002 stays quiet); the body as `BodyParam` says (`Keep`: untouched, `Drop`:
///   deleted, `Store`: upserted); a body a build before 0002 left in `imports.request` is moved
///   to `import_requests` (kept) or cleared (dropped);
/// - `purge_rows(cutoff)`, `heartbeat(now)`: the backend's purge (PostgreSQL: `PURGE`, which
///   deletes the purged imports' bodies too; SQLite: `PURGE_CHUNK`, bodies by cascade), `HEARTBEAT`;
/// - `save_mapping(environment, externe, partner, sent)`: the backend's `UPSERT_TIPPGEBER`
///   (PostgreSQL casts the fingerprints to `json`, which SQLite's `CAST` would turn into a
///   number), `sent` as [`encode_sent`](crate::codec::encode_sent) writes it.
///
/// The invoking module also provides `CLAIM_QUEUED` (due queued imports moved to `ACCEPTED`,
/// returning their ids as text) and `CLAIM_EVENTS` (due outbox events leased, returning
/// [`EventRow`](crate::codec::EventRow)), run on `writer()`; the statements `SELECT_IMPORT` (the columns of
/// [`ImportRow`](crate::codec::ImportRow) from `imports i` joined with its body, no `WHERE`),
/// `SELECT_BY_ID`, `SELECT_BY_KEY`, `LIST_STALE`, `INSERT_CLIENT`, `SELECT_CLIENT`,
/// `LIST_CLIENTS`, and the inherent methods `writer()` and `reader()` (the sqlx pools for the
/// client and key writes and for reads), `id_param(Uuid)` (an id as the backend binds it) and
/// `scrub_backend()` (see `ImportStore::scrub`).
macro_rules! impl_store_ports {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Runs one write statement through the writer; how many rows it changed.
            async fn write(
                &self,
                context: &'static str,
                query: sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>,
            ) -> Result<u64, vorgang_core::StoreError> {
                query
                    .execute(self.writer())
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(|err| $crate::error::map_sqlx(context, &err))
            }

            /// The row `query` finds in `pool`, if any, decoded.
            async fn fetch_optional<R, T>(
                pool: &sqlx::Pool<$db>,
                context: &'static str,
                query: sqlx::query::QueryAs<'_, $db, R, <$db as sqlx::Database>::Arguments>,
                decode: fn(R) -> Result<T, vorgang_core::StoreError>,
            ) -> Result<Option<T>, vorgang_core::StoreError>
            where
                R: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
            {
                query
                    .fetch_optional(pool)
                    .await
                    .map_err(|err| $crate::error::map_sqlx(context, &err))?
                    .map(decode)
                    .transpose()
            }

            /// Every row `query` finds in `pool`, decoded.
            async fn fetch_all<R, T>(
                pool: &sqlx::Pool<$db>,
                context: &'static str,
                query: sqlx::query::QueryAs<'_, $db, R, <$db as sqlx::Database>::Arguments>,
                decode: fn(R) -> Result<T, vorgang_core::StoreError>,
            ) -> Result<Vec<T>, vorgang_core::StoreError>
            where
                R: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
            {
                query
                    .fetch_all(pool)
                    .await
                    .map_err(|err| $crate::error::map_sqlx(context, &err))?
                    .into_iter()
                    .map(decode)
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl vorgang_core::ImportStore for $store {
            async fn insert(
                &self,
                record: &vorgang_core::ImportRecord,
            ) -> Result<vorgang_core::InsertOutcome, vorgang_core::StoreError> {
                const CONTEXT: &str = "insert import";
                let params =
                    std::sync::Arc::new($crate::codec::ImportParams::new(CONTEXT, record)?);
                for _ in 0..$crate::INSERT_ATTEMPTS {
                    // The import and its body commit together (`insert_row`). When nothing was
                    // inserted, the conflicting row is committed and visible to a read that
                    // starts now: SQLite's writes are serialized and answered after their
                    // commit, PostgreSQL's ON CONFLICT waits for a concurrent insert of the key
                    // to commit or roll back (READ COMMITTED).
                    if self.insert_row(&params).await? {
                        return Ok(vorgang_core::InsertOutcome::Inserted);
                    }
                    let Some(key) = &params.idempotency_key else {
                        return Err(vorgang_core::StoreError::Conflict(format!(
                            "{CONTEXT}: row not stored"
                        )));
                    };
                    let existing = Self::fetch_optional(
                        self.reader(),
                        "read import by idempotency key",
                        sqlx::query_as(SELECT_BY_KEY)
                            .bind(&params.client_id)
                            .bind(key),
                        $crate::codec::ImportRow::into_record,
                    )
                    .await?;
                    if let Some(existing) = existing {
                        return Ok(vorgang_core::InsertOutcome::IdempotencyKeyExists(Box::new(
                            existing,
                        )));
                    }
                    // The conflicting import was deleted in between: try again.
                }
                Err($crate::idempotency_race_lost())
            }

            async fn transition(
                &self,
                id: uuid::Uuid,
                from: vorgang_core::ImportStatus,
                change: &vorgang_core::ImportChange<'_>,
            ) -> Result<bool, vorgang_core::StoreError> {
                let params = $crate::codec::ChangeParams::new("transition import", change)?;
                self.transition_row(id, from, params).await
            }

            async fn get(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<vorgang_core::ImportRecord>, vorgang_core::StoreError> {
                Self::fetch_optional(
                    self.reader(),
                    "read import",
                    sqlx::query_as(SELECT_BY_ID).bind(Self::id_param(id)),
                    $crate::codec::ImportRow::into_record,
                )
                .await
            }

            async fn list(
                &self,
                query: &vorgang_core::ImportQuery,
            ) -> Result<Vec<vorgang_core::ImportRecord>, vorgang_core::StoreError> {
                // Equality filters first, then the keyset condition on (created_at, id): the
                // shape of the listing indexes (migration 0003), so a page reads its own rows.
                let mut sql = sqlx::QueryBuilder::<$db>::new(SELECT_IMPORT);
                let mut glue = " WHERE ";
                if let Some(client_id) = &query.client_id {
                    sql.push(glue)
                        .push("i.client_id = ")
                        .push_bind(client_id.clone());
                    glue = " AND ";
                }
                if let Some(status) = query.status {
                    sql.push(glue)
                        .push("i.status = ")
                        .push_bind(status.as_str());
                    glue = " AND ";
                }
                // One lower bound on the order, the binding one: rows after a cursor that is
                // itself at or after `since` are all at or after `since`, and when `since` lies
                // after the cursor it alone decides. Two bounds could make the planner start the
                // range at the weaker one and filter its way to the other.
                let binding_cursor = query
                    .after
                    .filter(|after| query.since.is_none_or(|since| after.created_at >= since));
                if let Some(after) = binding_cursor {
                    sql.push(glue)
                        .push("(i.created_at, i.id) > (")
                        .push_bind($crate::codec::encode_time(after.created_at))
                        .push(", ")
                        .push_bind(Self::id_param(after.id))
                        .push(")");
                } else if let Some(since) = query.since {
                    sql.push(glue)
                        .push("i.created_at >= ")
                        .push_bind($crate::codec::encode_time(since));
                }
                sql.push(" ORDER BY i.created_at, i.id LIMIT ")
                    .push_bind(i64::from(query.limit));
                Self::fetch_all(
                    self.reader(),
                    "list imports",
                    sql.build_query_as(),
                    $crate::codec::ImportRow::into_record,
                )
                .await
            }

            async fn list_stale(
                &self,
                cutoff: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<vorgang_core::ImportRecord>, vorgang_core::StoreError> {
                Self::fetch_all(
                    self.reader(),
                    "list stale imports",
                    sqlx::query_as(LIST_STALE).bind($crate::codec::encode_time(cutoff)),
                    $crate::codec::ImportRow::into_record,
                )
                .await
            }

            async fn purge_finished_before(
                &self,
                cutoff: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, vorgang_core::StoreError> {
                self.purge_rows($crate::codec::encode_time(cutoff)).await
            }

            async fn claim_queued(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> Result<Vec<vorgang_core::ImportRecord>, vorgang_core::StoreError> {
                let ids: Vec<String> = sqlx::query_scalar(CLAIM_QUEUED)
                    .bind($crate::codec::encode_time(now))
                    .bind(i64::from(limit))
                    .fetch_all(self.writer())
                    .await
                    .map_err(|err| $crate::error::map_sqlx("claim queued imports", &err))?;
                let mut claimed = Vec::with_capacity(ids.len());
                for id in ids {
                    let id = uuid::Uuid::parse_str(&id)
                        .map_err(|_| $crate::error::corrupt("claim queued imports", "id"))?;
                    // Claimed: only this caller moves it on, so the read is what it claimed.
                    if let Some(record) = vorgang_core::ImportStore::get(self, id).await? {
                        claimed.push(record);
                    }
                }
                Ok(claimed)
            }

            async fn count_by_status(
                &self,
                status: vorgang_core::ImportStatus,
            ) -> Result<u64, vorgang_core::StoreError> {
                let count: i64 = sqlx::query_scalar($crate::adapter::COUNT_BY_STATUS)
                    .bind(status.as_str())
                    .fetch_one(self.reader())
                    .await
                    .map_err(|err| $crate::error::map_sqlx("count imports", &err))?;
                Ok(u64::try_from(count).unwrap_or(0))
            }

            async fn tippgeber_partner(
                &self,
                environment: vorgang_core::model::Environment,
                externe_partner_id: &str,
            ) -> Result<Option<vorgang_core::TippgeberMapping>, vorgang_core::StoreError> {
                Self::fetch_optional(
                    self.reader(),
                    "read tippgeber partner",
                    sqlx::query_as($crate::adapter::SELECT_TIPPGEBER)
                        .bind(environment.as_str())
                        .bind(externe_partner_id),
                    $crate::codec::TippgeberRow::into_mapping,
                )
                .await
            }

            async fn save_tippgeber_partner(
                &self,
                environment: vorgang_core::model::Environment,
                externe_partner_id: &str,
                mapping: &vorgang_core::TippgeberMapping,
            ) -> Result<(), vorgang_core::StoreError> {
                let sent = $crate::codec::encode_sent(&mapping.sent)?;
                self.save_mapping(
                    environment.as_str(),
                    externe_partner_id,
                    &mapping.partner_id,
                    sent,
                )
                .await
            }

            async fn ping(&self) -> Result<(), vorgang_core::StoreError> {
                // A committed write, not `SELECT 1`: a full disk, a read-only database or a
                // write lock held elsewhere fails here although reads still work. One row,
                // updated in place: cheap enough for every probe of every replica. It takes the
                // path of the import writes (SQLite: the writer thread).
                self.heartbeat($crate::codec::encode_time(chrono::Utc::now()))
                    .await
            }

            async fn scrub(&self) -> Result<(), vorgang_core::StoreError> {
                self.scrub_backend().await
            }
        }

        #[async_trait::async_trait]
        impl vorgang_core::WebhookStore for $store {
            async fn set_webhook(
                &self,
                client_id: &str,
                target: Option<&vorgang_core::WebhookTarget>,
            ) -> Result<bool, vorgang_core::StoreError> {
                let query = sqlx::query($crate::adapter::SET_WEBHOOK)
                    .bind(target.map(|t| t.url.clone()))
                    .bind(target.map(|t| t.sealed_secret.clone()))
                    .bind(target.map(|t| t.encrypted))
                    .bind(client_id);
                Ok(self.write("set webhook", query).await? == 1)
            }

            async fn webhook(
                &self,
                client_id: &str,
            ) -> Result<Option<vorgang_core::WebhookTarget>, vorgang_core::StoreError> {
                Ok(Self::fetch_optional(
                    self.reader(),
                    "read webhook",
                    sqlx::query_as($crate::adapter::SELECT_WEBHOOK).bind(client_id),
                    $crate::codec::WebhookRow::into_target,
                )
                .await?
                .flatten())
            }

            async fn claim_events(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> Result<Vec<vorgang_core::PendingEvent>, vorgang_core::StoreError> {
                Self::fetch_all(
                    self.writer(),
                    "claim webhook events",
                    sqlx::query_as(CLAIM_EVENTS)
                        .bind($crate::codec::encode_time(now))
                        .bind($crate::codec::encode_time(lease_until))
                        .bind(i64::from(limit)),
                    $crate::codec::EventRow::into_event,
                )
                .await
            }

            async fn remove_event(&self, id: &str) -> Result<(), vorgang_core::StoreError> {
                let query = sqlx::query($crate::adapter::REMOVE_EVENT).bind(id);
                self.write("remove webhook event", query).await.map(|_| ())
            }

            async fn retry_event(
                &self,
                id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), vorgang_core::StoreError> {
                let query = sqlx::query($crate::adapter::RETRY_EVENT)
                    .bind(id)
                    .bind($crate::codec::encode_time(at));
                self.write("retry webhook event", query).await.map(|_| ())
            }

            async fn count_events(&self) -> Result<u64, vorgang_core::StoreError> {
                let count: i64 = sqlx::query_scalar($crate::adapter::COUNT_EVENTS)
                    .fetch_one(self.reader())
                    .await
                    .map_err(|err| $crate::error::map_sqlx("count webhook events", &err))?;
                Ok(u64::try_from(count).unwrap_or(0))
            }
        }

        #[async_trait::async_trait]
        impl auth::ClientStore for $store {
            async fn insert_client(
                &self,
                client: &auth::ClientRecord,
            ) -> Result<(), auth::StoreError> {
                let params =
                    $crate::codec::ClientParams::new(client).map_err($crate::error::for_auth)?;
                let query = sqlx::query(INSERT_CLIENT)
                    .bind(&client.client_id)
                    .bind(&client.secret_hash)
                    .bind(&client.name)
                    .bind(&client.email)
                    .bind(&client.telefonnummer)
                    .bind(&client.organisation)
                    .bind(&params.scopes)
                    .bind(&params.revoked_at)
                    .bind(&params.created_at);
                self.write("insert client", query)
                    .await
                    .map_err($crate::error::for_auth)?;
                Ok(())
            }

            async fn get_client(
                &self,
                client_id: &str,
            ) -> Result<Option<auth::ClientRecord>, auth::StoreError> {
                Self::fetch_optional(
                    self.reader(),
                    "read client",
                    sqlx::query_as(SELECT_CLIENT).bind(client_id),
                    $crate::codec::ClientRow::into_record,
                )
                .await
                .map_err($crate::error::for_auth)
            }

            async fn list_clients(&self) -> Result<Vec<auth::ClientRecord>, auth::StoreError> {
                Self::fetch_all(
                    self.reader(),
                    "list clients",
                    sqlx::query_as(LIST_CLIENTS),
                    $crate::codec::ClientRow::into_record,
                )
                .await
                .map_err($crate::error::for_auth)
            }

            async fn revoke_client(
                &self,
                client_id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, auth::StoreError> {
                let query = sqlx::query($crate::adapter::REVOKE_CLIENT)
                    .bind($crate::codec::encode_time(at))
                    .bind(client_id);
                Ok(self
                    .write("revoke client", query)
                    .await
                    .map_err($crate::error::for_auth)?
                    == 1)
            }

            async fn set_client_secret_hash(
                &self,
                client_id: &str,
                secret_hash: &str,
            ) -> Result<bool, auth::StoreError> {
                let query = sqlx::query($crate::adapter::SET_SECRET)
                    .bind(secret_hash)
                    .bind(client_id);
                Ok(self
                    .write("set client secret", query)
                    .await
                    .map_err($crate::error::for_auth)?
                    == 1)
            }

            async fn revocation_generation(&self) -> Result<i64, auth::StoreError> {
                sqlx::query_scalar::<_, i64>($crate::adapter::REVOCATION_GENERATION)
                    .fetch_one(self.reader())
                    .await
                    .map_err(|err| {
                        $crate::error::for_auth($crate::error::map_sqlx(
                            "read revocation generation",
                            &err,
                        ))
                    })
            }

            async fn revocations(
                &self,
                live_after: i64,
            ) -> Result<auth::Revocations, auth::StoreError> {
                let map = |context: &'static str| {
                    move |err: sqlx::Error| {
                        $crate::error::for_auth($crate::error::map_sqlx(context, &err))
                    }
                };
                let clients = sqlx::query_scalar::<_, String>($crate::adapter::REVOKED_CLIENTS)
                    .fetch_all(self.reader())
                    .await
                    .map_err(map("list revoked clients"))?;
                let tokens = sqlx::query_scalar::<_, String>($crate::adapter::LIVE_REVOKED_TOKENS)
                    .bind(live_after)
                    .fetch_all(self.reader())
                    .await
                    .map_err(map("list revoked tokens"))?;
                Ok(auth::Revocations { clients, tokens })
            }

            async fn revoke_token(
                &self,
                token: &auth::RevokedToken,
            ) -> Result<(), auth::StoreError> {
                let query = sqlx::query($crate::adapter::INSERT_REVOKED_TOKEN)
                    .bind(&token.jti)
                    .bind(&token.client_id)
                    .bind(token.expires_at)
                    .bind($crate::codec::encode_time(token.revoked_at));
                self.write("revoke token", query)
                    .await
                    .map_err($crate::error::for_auth)?;
                Ok(())
            }

            async fn purge_revoked_tokens(&self, before: i64) -> Result<u64, auth::StoreError> {
                let query = sqlx::query($crate::adapter::PURGE_REVOKED_TOKENS).bind(before);
                self.write("purge revoked tokens", query)
                    .await
                    .map_err($crate::error::for_auth)
            }
        }

        #[async_trait::async_trait]
        impl auth::SigningKeyStore for $store {
            async fn insert_key(
                &self,
                key: &auth::SigningKeyRecord,
            ) -> Result<(), auth::StoreError> {
                let query = sqlx::query($crate::adapter::INSERT_KEY)
                    .bind(&key.kid)
                    .bind(&key.algorithm)
                    .bind(&key.private_key)
                    .bind(key.encrypted)
                    .bind(&key.public_key)
                    .bind($crate::codec::encode_time(key.created_at))
                    .bind(key.retired_at.map($crate::codec::encode_time));
                self.write("insert signing key", query)
                    .await
                    .map_err($crate::error::for_auth)?;
                Ok(())
            }

            async fn list_keys(
                &self,
                retired_after: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<auth::SigningKeyRecord>, auth::StoreError> {
                Self::fetch_all(
                    self.reader(),
                    "list signing keys",
                    sqlx::query_as($crate::adapter::LIST_KEYS)
                        .bind($crate::codec::encode_time(retired_after)),
                    $crate::codec::SigningKeyRow::into_record,
                )
                .await
                .map_err($crate::error::for_auth)
            }

            async fn retire_other_keys(
                &self,
                kid: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), auth::StoreError> {
                let query = sqlx::query($crate::adapter::RETIRE_OTHER_KEYS)
                    .bind($crate::codec::encode_time(at))
                    .bind(kid);
                self.write("retire signing keys", query)
                    .await
                    .map_err($crate::error::for_auth)?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_store_ports;
