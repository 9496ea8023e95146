//! Test support: a fresh, empty PostgreSQL database per test, so tests run in parallel.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vorgang_core::StoreError> {
//! use vorgang_store::testing::{fresh_postgres_database, postgres_admin_url};
//!
//! let database = fresh_postgres_database(&postgres_admin_url()).await?;
//! let store = vorgang_store::Store::connect(database.url()).await?;
//! // … the test …
//! store.close().await;
//! database.drop_database().await?;
//! # Ok(()) }
//! ```
//!
//! The admin URL must name a role that may `CREATE DATABASE`. A database not dropped explicitly
//! (e.g. because the test panicked) is dropped when its [`PostgresTestDatabase`] is dropped.
//!
//! [`block_writes`] makes every write to a test database fail while reads keep working (the
//! situation of a full disk), e.g. to test the readiness check.
//!
//! [`count_by_status_plan`] shows how the database answers a count of imports per state.
//!
//! [`request`] builds a request with every part set, for tests of what the store keeps;
//! [`previous_format_body`] and [`overwrite_body`] store a body as the build before issue 9
//! wrote it, for tests of imports that were in flight across the upgrade.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use uuid::Uuid;
use vorgang_core::model::{
    Anrede, CustomEntry, CustomValue, ImportRequest, PartnerDaten, Tippgeber,
};
use vorgang_core::{ImportStatus, StoreError};

use crate::adapter::COUNT_BY_STATUS;
use crate::error::map_sqlx;

/// The admin URL used when `VORGANG_TEST_POSTGRES_URL` is not set: the local test server.
pub const DEFAULT_POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The environment variable overriding [`DEFAULT_POSTGRES_ADMIN_URL`].
pub const POSTGRES_ADMIN_URL_VAR: &str = "VORGANG_TEST_POSTGRES_URL";

/// The admin URL for test databases: `$VORGANG_TEST_POSTGRES_URL`, else
/// [`DEFAULT_POSTGRES_ADMIN_URL`].
#[must_use]
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_ADMIN_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_ADMIN_URL.to_owned())
}

/// A database created by [`fresh_postgres_database`]; dropped (with its connections) by
/// [`PostgresTestDatabase::drop_database`] or, failing that, when this value is dropped.
#[derive(Debug)]
pub struct PostgresTestDatabase {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

/// Creates an empty database `vorgang_test_<uuid>` on the server of `admin_url` and returns it;
/// its [`url`](PostgresTestDatabase::url) is `admin_url` with the database name replaced.
///
/// # Errors
///
/// [`StoreError::Unavailable`] if the server cannot be reached or refuses `CREATE DATABASE`.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<PostgresTestDatabase, StoreError> {
    const CONTEXT: &str = "create test database";
    let name = format!("vorgang_test_{}", Uuid::new_v4().simple());
    let mut admin = connect_admin(CONTEXT, admin_url).await?;
    // The name is ours (letters, digits, underscores): safe to splice into the statement.
    let created = sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .map_err(|err| map_sqlx(CONTEXT, &err));
    let _ = admin.close().await;
    created?;
    Ok(PostgresTestDatabase {
        admin_url: admin_url.to_owned(),
        url: with_database(admin_url, &name),
        name,
        dropped: false,
    })
}

impl PostgresTestDatabase {
    /// The URL of the new database (pass it to [`crate::Store::connect`]).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now, terminating any connections still open to it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the server cannot be reached or refuses.
    pub async fn drop_database(mut self) -> Result<(), StoreError> {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for PostgresTestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Best effort, on a thread of its own: this may run inside (or outside) any runtime.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropper = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = runtime.block_on(drop_database(&admin_url, &name));
            }
        });
        let _ = dropper.join();
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    const CONTEXT: &str = "drop test database";
    let mut admin = connect_admin(CONTEXT, admin_url).await?;
    // The name was made by `fresh_postgres_database`: safe to splice into the statement.
    let dropped = sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .map_err(|err| map_sqlx(CONTEXT, &err));
    let _ = admin.close().await;
    dropped.map(|_| ())
}

async fn connect_admin(context: &'static str, admin_url: &str) -> Result<PgConnection, StoreError> {
    let options = PgConnectOptions::from_str(admin_url)
        .map_err(|err| map_sqlx(context, &err))?
        .disable_statement_logging();
    PgConnection::connect_with(&options)
        .await
        .map_err(|err| map_sqlx(context, &err))
}

/// Writes to a database blocked by [`block_writes`], until [`WriteBlock::release`].
#[derive(Debug)]
pub struct WriteBlock {
    inner: Blocker,
}

#[derive(Debug)]
enum Blocker {
    /// A connection holding SQLite's write lock in an open transaction.
    Sqlite(SqliteConnection),
    /// A connection to the database that made it read-only for new sessions.
    Postgres { admin: PgConnection, name: String },
}

/// Makes every write to the database at `database_url` fail while reads keep working, as on a
/// full disk: for tests of what the service does then (e.g. `GET /health/ready`).
///
/// - SQLite (a file): another connection takes the write lock (`BEGIN IMMEDIATE`) and holds it;
///   every write waits the busy timeout (5 s), then fails with `SQLITE_BUSY`. Readers in WAL
///   mode are not affected.
/// - PostgreSQL: `ALTER DATABASE … SET default_transaction_read_only = on`, then every other
///   session of that database is terminated, so pools reconnect read-only; writes fail with
///   SQLSTATE 25006. Needs a role that may alter the database and terminate its sessions (the
///   test server's `postgres`).
///
/// Dropping the block without [`WriteBlock::release`] releases SQLite's lock but leaves a
/// PostgreSQL database read-only (a test database is dropped anyway).
///
/// # Errors
///
/// [`StoreError::Unavailable`] if the database cannot be reached or refuses.
pub async fn block_writes(database_url: &str) -> Result<WriteBlock, StoreError> {
    const CONTEXT: &str = "block writes";
    let map = |err: sqlx::Error| map_sqlx(CONTEXT, &err);
    let inner = if database_url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(database_url)
            .map_err(map)?
            .create_if_missing(false);
        let mut connection = SqliteConnection::connect_with(&options)
            .await
            .map_err(map)?;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut connection)
            .await
            .map_err(map)?;
        Blocker::Sqlite(connection)
    } else {
        let options = PgConnectOptions::from_str(database_url)
            .map_err(map)?
            .disable_statement_logging();
        let mut admin = PgConnection::connect_with(&options).await.map_err(map)?;
        let name: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut admin)
            .await
            .map_err(map)?;
        alter_and_reconnect(&mut admin, &name, "SET default_transaction_read_only = on").await?;
        Blocker::Postgres { admin, name }
    };
    Ok(WriteBlock { inner })
}

impl WriteBlock {
    /// Lets writes succeed again: SQLite's lock is released; PostgreSQL's database is writable
    /// again and its sessions are terminated once more, so pools reconnect writable.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the database cannot be reached or refuses.
    pub async fn release(self) -> Result<(), StoreError> {
        const CONTEXT: &str = "release blocked writes";
        match self.inner {
            Blocker::Sqlite(mut connection) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut connection)
                    .await
                    .map_err(|err| map_sqlx(CONTEXT, &err))?;
                let _ = connection.close().await;
            }
            Blocker::Postgres { mut admin, name } => {
                alter_and_reconnect(&mut admin, &name, "RESET default_transaction_read_only")
                    .await?;
                let _ = admin.close().await;
            }
        }
        Ok(())
    }
}

/// `ALTER DATABASE name <change>`, then terminates every other session of the database so that
/// new sessions pick up the change.
async fn alter_and_reconnect(
    admin: &mut PgConnection,
    name: &str,
    change: &str,
) -> Result<(), StoreError> {
    const CONTEXT: &str = "alter test database";
    // `name` comes from current_database(); quoted as an identifier.
    let quoted = name.replace('"', "\"\"");
    sqlx::query(AssertSqlSafe(format!(
        "ALTER DATABASE \"{quoted}\" {change}"
    )))
    .execute(&mut *admin)
    .await
    .map_err(|err| map_sqlx(CONTEXT, &err))?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut *admin)
    .await
    .map_err(|err| map_sqlx(CONTEXT, &err))?;
    Ok(())
}

/// A request with this `vorgang` (a JSON object; anything else becomes an empty one) and every
/// other part set: a Tippgeber with all fields, a top-level comment, partner data with each kind
/// of custom value, a warning. Store tests compare what they read back with it.
#[must_use]
pub fn request(vorgang: serde_json::Value) -> ImportRequest {
    ImportRequest {
        vorgang: match vorgang {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        },
        tippgeber: Tippgeber {
            externe_mitarbeiternummer: "42".to_owned(),
            vorname: "Erika".to_owned(),
            nachname: "Musterfrau".to_owned(),
            anrede: Some(Anrede::Frau),
            telefon: Some("+49 30 1234".to_owned()),
            email: Some("erika@partner.example".to_owned()),
        },
        kommentare: vec!["Rückruf ab 17 Uhr".to_owned()],
        partner: PartnerDaten {
            vertriebsschluessel: Some("VS-1".to_owned()),
            kundennummer: Some("K-7".to_owned()),
            custom: vec![
                CustomEntry {
                    key: "filialId".to_owned(),
                    value: CustomValue::Integer(7),
                },
                CustomEntry {
                    key: "rueckruf".to_owned(),
                    value: CustomValue::Boolean(true),
                },
                CustomEntry {
                    key: "termin".to_owned(),
                    value: CustomValue::String("2026-01-10 13:00".to_owned()),
                },
            ],
        },
        warnings: vec!["WARN unknown-field /vorgang/foo".to_owned()],
    }
}

/// The body of `request` as the builds before issue 9 stored it (their `StoredRequest`):
/// `{vorgang, tippgeber: {externeMitarbeiternummer, vorname, nachname, anrede, telefon, email},
/// kommentare, partner}`, with `kommentare` every comment as sent to Europace
/// (`vorgang.kommentare`, the top-level ones, the partner line) and no warnings.
#[must_use]
pub fn previous_format_body(request: &ImportRequest) -> serde_json::Value {
    let tippgeber = &request.tippgeber;
    serde_json::json!({
        "vorgang": request.vorgang,
        "tippgeber": {
            "externeMitarbeiternummer": tippgeber.externe_mitarbeiternummer,
            "vorname": tippgeber.vorname,
            "nachname": tippgeber.nachname,
            "anrede": tippgeber.anrede,
            "telefon": tippgeber.telefon,
            "email": tippgeber.email,
        },
        "kommentare": vorgang_core::kex_kommentare(request),
        "partner": request.partner,
    })
}

/// Replaces the stored request body of import `id` with `body`, as written by hand (e.g. a
/// [`previous_format_body`]), in the database at `database_url`.
///
/// # Errors
///
/// [`StoreError::Unavailable`] if the database cannot be reached or refuses;
/// [`StoreError::Conflict`] if the import has no stored body.
pub async fn overwrite_body(
    database_url: &str,
    id: Uuid,
    body: &serde_json::Value,
) -> Result<(), StoreError> {
    const CONTEXT: &str = "overwrite request body";
    let map = |err: sqlx::Error| map_sqlx(CONTEXT, &err);
    let text = body.to_string();
    let done = if database_url.starts_with("sqlite:") {
        let mut connection = SqliteConnection::connect(database_url).await.map_err(map)?;
        let done = sqlx::query("UPDATE import_requests SET body = $1 WHERE import_id = $2")
            .bind(text)
            .bind(id.to_string())
            .execute(&mut connection)
            .await
            .map_err(map)?;
        let _ = connection.close().await;
        done.rows_affected()
    } else {
        let mut connection = PgConnection::connect(database_url).await.map_err(map)?;
        let done =
            sqlx::query("UPDATE import_requests SET body = CAST($1 AS json) WHERE import_id = $2")
                .bind(text)
                .bind(id)
                .execute(&mut connection)
                .await
                .map_err(map)?;
        let _ = connection.close().await;
        done.rows_affected()
    };
    if done == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("{CONTEXT}: no stored body")))
    }
}

/// The query plan of `ImportStore::count_by_status` for `status` in the database at
/// `database_url`, one line per plan node: PostgreSQL's `EXPLAIN` with sequential and bitmap
/// scans disabled for the session (a tiny test table would be scanned otherwise, which says
/// nothing about a big one), SQLite's `EXPLAIN QUERY PLAN`. Tests assert that the count reads
/// the index alone.
///
/// # Errors
///
/// [`StoreError::Unavailable`] if the database cannot be reached or refuses.
pub async fn count_by_status_plan(
    database_url: &str,
    status: ImportStatus,
) -> Result<String, StoreError> {
    const CONTEXT: &str = "explain count by status";
    let map = |err: sqlx::Error| map_sqlx(CONTEXT, &err);
    let explain = AssertSqlSafe(format!("EXPLAIN {COUNT_BY_STATUS}"));
    let lines: Vec<String> = if database_url.starts_with("sqlite:") {
        let mut connection = SqliteConnection::connect(database_url).await.map_err(map)?;
        let explain = AssertSqlSafe(format!("EXPLAIN QUERY PLAN {COUNT_BY_STATUS}"));
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(explain)
            .bind(status.as_str())
            .fetch_all(&mut connection)
            .await
            .map_err(map)?;
        let _ = connection.close().await;
        rows.into_iter().map(|(_, _, _, detail)| detail).collect()
    } else {
        let mut connection = PgConnection::connect(database_url).await.map_err(map)?;
        for setting in ["SET enable_seqscan = off", "SET enable_bitmapscan = off"] {
            sqlx::query(setting)
                .execute(&mut connection)
                .await
                .map_err(map)?;
        }
        let rows: Vec<String> = sqlx::query_scalar(explain)
            .bind(status.as_str())
            .fetch_all(&mut connection)
            .await
            .map_err(map)?;
        let _ = connection.close().await;
        rows
    };
    Ok(lines.join("\n"))
}

/// `url` with its path (the database name) replaced by `name`, keeping credentials, host and
/// query parameters.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    format!("{scheme}://{authority}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "db1"),
            "postgres://postgres@127.0.0.1:5432/db1"
        );
        assert_eq!(
            with_database("postgresql://u:p@host/test?sslmode=disable", "db1"),
            "postgresql://u:p@host/db1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://host:5432?sslmode=disable", "db1"),
            "postgres://host:5432/db1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://host", "db1"),
            "postgres://host/db1"
        );
    }
}
