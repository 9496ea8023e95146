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
//! (`tests/contract.rs`).
//!
//! # Schema
//!
//! - `imports`: one row per import, primary key `id`; `UNIQUE (client_id, idempotency_key)`
//!   enforces the idempotency rule in the database, so two replicas cannot both insert an import
//!   for the same key; indexes on `(status, created_at)` and `(status, updated_at)`.
//! - `tippgeber_partners`: `(environment, externe_partner_id)` → `partner_id`.
//! - `clients`: partner clients, `scopes` as a JSON array.
//! - `signing_keys`: the token issuer's key pairs, private key as stored by `auth`.
//!
//! # Stored representation
//!
//! - Timestamps are text, RFC 3339 in UTC with exactly nine fractional digits
//!   (`2025-01-31T12:00:00.123456789Z`): a `DateTime<Utc>` read back equals the one written,
//!   to the nanosecond (PostgreSQL's `timestamptz` would keep only microseconds), and the
//!   fixed width makes text order chronological order (PostgreSQL columns use `COLLATE "C"`).
//! - JSON values (request, messages, failure, scopes) are serialized JSON: `TEXT` in SQLite,
//!   `json` in PostgreSQL (kept as written, key order included).
//! - Import ids are `TEXT` (hyphenated) in SQLite and `uuid` in PostgreSQL.
//!
//! # Semantics beyond the port documentation
//!
//! - `ImportStore::insert` is `INSERT … ON CONFLICT (client_id, idempotency_key) DO NOTHING`,
//!   then reads the conflicting import back (retried if it vanished in between); a duplicate
//!   `id` is [`StoreError::Conflict`].
//! - `ImportStore::update` writes every column but `id` (like the in-memory store replaces the
//!   whole record), `WHERE id = ? AND status = expected`.
//! - `list` and `list_clients` order by `created_at`, then id; `list_keys` by `created_at`
//!   descending, listing keys with `retired_at` unset or strictly after `retired_after`.
//! - `revoke_client` keeps the first revocation time of an already revoked client.
//!
//! # Errors
//!
//! sqlx errors map to [`StoreError`]: connection, pool, I/O and other database errors to
//! `Unavailable`, undecodable rows to `Corrupt`, unique violations other than the idempotency
//! key to `Conflict`. Messages are fixed phrases with the error kind or code, never a value
//! from a row (personal data).
//!
//! # Migrations
//!
//! Applied at connect; PostgreSQL serializes concurrent replicas with an advisory lock.
//! Migrations already applied by a newer build are tolerated (rolling upgrades), so every
//! migration must keep the previous build working.

use std::sync::Arc;
use std::time::Duration;

pub use auth::{ClientStore, SigningKeyStore};
pub use vorgang_core::{ImportStore, StoreError};

mod codec;
mod error;
mod postgres;
mod sqlite;
pub mod testing;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// How long a SQLite connection waits for a lock before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
