//! sqlx adapters of the storage ports: [`ImportStore`] (from `vorgang-core`) and
//! [`ClientStore`] and [`SigningKeyStore`] (from `auth`), on SQLite or PostgreSQL.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vorgang_core::StoreError> {
//! let store = vorgang_store::Store::connect("sqlite://vorgang.db?mode=rwc").await?;
//! let imports = store.as_import_store();
//! imports.ping().await?;
//! # Ok(()) }
//! ```
//!
//! [`Store::connect`] picks the backend from the URL scheme and applies the embedded migrations
//! (`migrations/sqlite`, `migrations/postgres`). Both backends pass the same contract test suite
//! (`tests/contract.rs`); their port implementations are one body expanded for each backend
//! (`src/adapter.rs`), only SQL text and connection handling are their own. Test support (a fresh
//! PostgreSQL database per test, a database that refuses writes) is the module `testing`, built
//! only with the cargo feature `testing`, which dev-dependencies enable.
//!
//! Modules, each using only those before it: `error`, `codec` (→ error), `adapter` (→ codec,
//! error), `sqlite` and `postgres` (→ adapter, error), `testing` (→ error).
//!
//! # Schema
//!
//! - `imports`: one row per import, primary key `id`; `UNIQUE (client_id, idempotency_key)`
//!   enforces the idempotency rule in the database, so two replicas cannot both insert an import
//!   for the same key. Listing indexes end in `(created_at, id)`, behind the equality filters of
//!   `ImportStore::list` (none, `status`, `client_id`, both: migration 0003); `(status,
//!   created_at, id)` also serves the resume (`list_stale`: the unfinished imports) and the
//!   purge (migration 0004 dropped `(status, updated_at)`: every state change updates the
//!   indexes holding `status`, so one fewer is one write fewer). Its `request` column is NULL
//!   in rows written by this build (see `import_requests`).
//! - `import_requests`: `import_id` → `body`, the import's request (personal data), written
//!   once with the import and deleted in the transition that drops it (when the import
//!   finishes), or by the purge with its import (SQLite: `ON DELETE CASCADE`; PostgreSQL: in
//!   the purge's statement, its foreign key dropped by migration 0008). A state change that
//!   keeps the body never touches it, so no old copy of it is left behind (dead row versions in
//!   PostgreSQL, page images in SQLite's WAL). See docs/privacy.md.
//! - `heartbeat`: one row, upserted by `ImportStore::ping`.
//! - `tippgeber_partners`: `(environment, externe_partner_id)` → `partner_id` and
//!   `sent_fingerprints` (migration 0006), what was last sent to that partner as
//!   `{"attribute": "fingerprint"}` JSON, `NULL` when nothing is known to be sent
//!   (`vorgang_core::TippgeberMapping`; no readable value, see docs/privacy.md).
//! - `clients`: partner clients, `scopes` as a JSON array.
//! - `signing_keys`: the token issuer's key pairs, private key as stored by `auth`.
//! - `revoked_tokens`: `jti` → client, `expires_at` (the token's `exp`, Unix seconds),
//!   `revoked_at`; purged after `expires_at` (migration 0004).
//! - `revocation_generation`: one counter, increased by trigger whenever a client is revoked
//!   (`clients.revoked_at` changes) or a token is (a `revoked_tokens` row is inserted): the
//!   cheap "anything revoked since?" read of `auth::RevocationCache`.
//!
//! # Stored representation
//!
//! - Timestamps are text, RFC 3339 in UTC with exactly nine fractional digits
//!   (`2025-01-31T12:00:00.123456789Z`): a `DateTime<Utc>` read back equals the one written,
//!   to the nanosecond (PostgreSQL's `timestamptz` would keep only microseconds), and the
//!   fixed width makes text order chronological order (PostgreSQL columns use `COLLATE "C"`).
//! - JSON values (request, messages, failure, scopes) are serialized JSON: `TEXT` in SQLite,
//!   `json` in PostgreSQL (kept as written, key order included).
//! - A request body is `{"format": 2, "request": <ImportRequest>}` (the model's serde form). The
//!   builds before issue 9 wrote format 1, their `StoredRequest` (`vorgang`, `tippgeber` with
//!   `telefon`, `kommentare` merged as sent to Europace, `partner`); it is still read, the
//!   top-level comments recovered by removing the leading `vorgang.kommentare` and the trailing
//!   partner line, so an import accepted before the upgrade is sent as it would have been.
//! - Import ids are `TEXT` (hyphenated) in SQLite and `uuid` in PostgreSQL.
//!
//! # Semantics beyond the port documentation
//!
//! - **Writes.** SQLite: every import write (insert, transition, Tippgeber mapping, heartbeat,
//!   purge) is a job for one writer thread, which runs the jobs that queued up meanwhile in one
//!   transaction, each in its own `SAVEPOINT` (a failing job rolls back only itself), and
//!   commits them with one fsync (group commit); each caller is answered after the commit, and
//!   all of a batch get the error if the commit fails. Clients and signing keys are written
//!   through sqlx. PostgreSQL: inserts (import and body) and transitions that keep or drop the
//!   body queue for a writer that runs what queued up as one statement (`INSERT … SELECT FROM
//!   unnest` and `UPDATE … FROM unnest` as CTEs): one round trip and one commit per batch, up to
//!   two batches at once on connections of its own; a statement the database refuses is run
//!   again write by write, so only the failing write fails. A transition that stores a body anew
//!   (rare) is its own transaction.
//! - `ImportStore::insert` is `INSERT … ON CONFLICT (client_id, idempotency_key) DO NOTHING`,
//!   then reads the conflicting import back (retried if it vanished in between); a duplicate
//!   `id` is [`StoreError::Conflict`].
//! - `ImportStore::insert` and `transition` write the import and its body atomically.
//! - `ImportStore::transition` is `UPDATE … WHERE id = ? AND status = from` of the columns of
//!   `ImportChange` only. Its body instruction: `Keep` does not name `imports.request` (so the
//!   trigger below stays quiet) and writes no body; `Drop` deletes the body (PostgreSQL also
//!   sets `imports.request = NULL` in the same statement); `Store` upserts the body (no write if
//!   unchanged). A body a build before 0002 left in `imports.request` is moved to
//!   `import_requests` by the first transition that keeps it, and cleared by one that drops it.
//! - `ImportStore::list` builds its `WHERE` from the filters that are set, with one lower bound
//!   on `(created_at, id)` (the cursor, or `since` where that is later), so each query is one
//!   range of one index; `list_stale` is one range of `(status, updated_at)` per resumable state.
//! - `ImportStore::ping` upserts the heartbeat row (SQLite: through the writer thread): `Ok`
//!   means a write committed, not merely that the database answers.
//! - `ImportStore::purge_finished_before` deletes SQLite rows 2,000 per job, so imports are not
//!   held up behind one long delete.
//! - `ImportStore::scrub`: SQLite checkpoints and truncates its WAL (also done at close);
//!   PostgreSQL does nothing (autovacuum, see docs/privacy.md).
//! - `list` and `list_clients` order by `created_at`, then id; `list_keys` by `created_at`
//!   descending, listing keys with `retired_at` unset or strictly after `retired_after`.
//! - `revoke_client` keeps the first revocation time of an already revoked client.
//!
//! # Errors
//!
//! sqlx errors map to [`StoreError`]: connection, pool, I/O and other database errors to
//! `Unavailable`, undecodable rows to `Corrupt`, unique violations other than the idempotency
//! key to `Conflict`. The client and key adapters answer [`auth::StoreError`], auth's own type
//! with the same three meanings (auth does not depend on the import use case). Messages are
//! fixed phrases with the error kind or code, never a value from a row (personal data).
//!
//! # Migrations
//!
//! Applied at connect; PostgreSQL serializes concurrent replicas with an advisory lock.
//! Migrations already applied by a newer build are tolerated (rolling upgrades), so every
//! migration must keep the previous build working.
//!
//! `0002_import_requests_heartbeat` only adds: `import_requests` (existing bodies copied, not
//! moved), a trigger and `heartbeat`. A build before it keeps writing bodies to
//! `imports.request`; this build reads `COALESCE(imports.request, import_requests.body)` and
//! moves such a body over at the import's next transition. The trigger `imports_request_dropped`
//! (on an UPDATE that sets `imports.request` to NULL while it held a body, or for a finished
//! import) deletes the `import_requests` row, so an import finished by the previous build keeps
//! no body either.
//!
//! `0003_listing_indexes` only adds indexes (and drops `(status, created_at)`, a prefix of a new
//! one that serves the same queries).
//!
//! `0004_revoked_tokens` only adds: `revoked_tokens`, `revocation_generation` and the triggers
//! that increase the generation (so a client revoked by the previous build's CLI is seen too).
//! `0005_fewer_import_indexes` drops `(status, updated_at)`; the previous build's queries still
//! run (its purge then reads all finished imports of a state: slower, hourly, during a rollout).
//! `0006_tippgeber_sent` only adds the nullable `tippgeber_partners.sent_fingerprints`; the
//! previous build's upsert leaves it as it is, and since a fingerprint includes the partnerId,
//! what it left under a partnerId that build replaced never counts as sent.
//! `0007_delivery_webhooks` adds the delivery columns and the webhook outbox.
//! `0008_import_requests_without_foreign_key` (PostgreSQL only) drops the foreign key of
//! `import_requests`: one referential-integrity query and row lock fewer per import. The previous
//! build's purge deletes only finished imports, whose bodies went when they finished; a body kept
//! past the finish waits for this build's next purge.
//!
//! One limit while two builds run: a replica of the previous build that resumes an *abandoned*
//! import stored by this build cannot read its body (before 0002: no body at all; since issue 9:
//! body format 2) and fails it ("stored request is missing or unreadable"), sending nothing.
//! That needs a new replica to die mid-import during the rollout; keep rollouts short
//! (docs/privacy.md §5, docs/operations.md §6).

use std::sync::Arc;
use std::time::Duration;

pub use auth::{ClientStore, SigningKeyStore};
pub use vorgang_core::{ImportStore, StoreError, WebhookStore};

mod adapter;
mod codec;
mod error;
mod postgres;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// How long a SQLite connection waits for a lock before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle for at least this long is checked (a round trip) before it is used.
///
/// sqlx checks every connection it hands out by default: one more round trip (PostgreSQL) or
/// worker-thread hop (SQLite) per statement, which under load doubled the round trips of the
/// import path (issue 10). A connection in steady use is known to be good; one that sat idle
/// may have been closed by the server, a proxy or a restart, and is checked and replaced
/// instead of failing the statement it was taken for.
pub(crate) const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// How often `insert` retries when the import holding its idempotency key vanishes between the
/// conflicting insert and reading it back (a concurrent purge or a rolled-back insert).
pub(crate) const INSERT_ATTEMPTS: usize = 3;

/// The error after [`INSERT_ATTEMPTS`] lost races.
pub(crate) fn idempotency_race_lost() -> StoreError {
    StoreError::Unavailable(
        "insert import: the import holding the idempotency key changed concurrently".to_owned(),
    )
}

/// A connected store on one of the supported databases.
///
/// The import use case and the auth service take their ports separately (`as_import_store`,
/// `as_client_store`, `as_signing_key_store`), but all of them must share one set of
/// connections: SQLite allows one writer at a time, and this store's single writer connection
/// is what makes writes queue instead of failing with "database is locked". So build one
/// `Store` per process and hand out its ports.
///
/// Cloning is cheap and shares the connections.
#[derive(Debug, Clone)]
pub enum Store {
    /// A SQLite file (or in-memory database).
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PgStore),
}

impl Store {
    /// Connects by URL and applies the embedded migrations.
    ///
    /// `sqlite:…` (e.g. the default `sqlite://vorgang.db?mode=rwc`, where `mode=rwc` creates a
    /// missing file; `sqlite::memory:` for a private in-memory database) opens a
    /// [`SqliteStore`]; `postgres://…` or `postgresql://…` a [`PgStore`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] for another scheme, an invalid URL or a database that cannot
    /// be reached or migrated; [`StoreError::Corrupt`] if the database carries a modified
    /// migration. The message never contains the URL (it may hold a password).
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        if database_url.starts_with("sqlite:") {
            SqliteStore::connect(database_url).await.map(Self::Sqlite)
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            PgStore::connect(database_url).await.map(Self::Postgres)
        } else {
            Err(StoreError::Unavailable(
                "unsupported database URL: expected sqlite:… or postgres://…".to_owned(),
            ))
        }
    }

    /// The backend's name: `sqlite` or `postgres`.
    #[must_use]
    pub const fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// This store as the import port.
    #[must_use]
    pub fn as_import_store(&self) -> Arc<dyn ImportStore> {
        match self {
            Self::Sqlite(store) => Arc::new(store.clone()),
            Self::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// This store as the client port.
    #[must_use]
    pub fn as_client_store(&self) -> Arc<dyn ClientStore> {
        match self {
            Self::Sqlite(store) => Arc::new(store.clone()),
            Self::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// This store as the webhook port (clients' webhooks, the event outbox).
    #[must_use]
    pub fn as_webhook_store(&self) -> Arc<dyn WebhookStore> {
        match self {
            Self::Sqlite(store) => Arc::new(store.clone()),
            Self::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// This store as the signing-key port.
    #[must_use]
    pub fn as_signing_key_store(&self) -> Arc<dyn SigningKeyStore> {
        match self {
            Self::Sqlite(store) => Arc::new(store.clone()),
            Self::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Closes all connections (e.g. at shutdown); later calls fail with
    /// [`StoreError::Unavailable`]. Clones and the `as_*` ports share the connections.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Postgres(store) => store.close().await,
        }
    }
}
