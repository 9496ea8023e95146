//! Mapping of sqlx errors to [`StoreError`], and of those to [`auth::StoreError`].
//!
//! The messages are fixed phrases naming the operation and the kind of failure (SQLSTATE or
//! SQLite result code, I/O error kind, constraint name), never the database's own message or a
//! value: those may quote row data, which is personal data.

use sqlx::error::ErrorKind;
use sqlx::migrate::MigrateError;
use vorgang_core::StoreError;

/// Maps a sqlx error of the operation `context` (a fixed phrase such as `"insert import"`).
pub(crate) fn map_sqlx(context: &'static str, err: &sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => {
            let code = db
                .code()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default();
            match db.kind() {
                ErrorKind::UniqueViolation => StoreError::Conflict(format!(
                    "{context}: unique constraint {} violated",
                    db.constraint().unwrap_or("(unnamed)")
                )),
                _ => StoreError::Unavailable(format!("{context}: database error (code {code})")),
            }
        }
        sqlx::Error::Io(io) => {
            StoreError::Unavailable(format!("{context}: I/O error ({:?})", io.kind()))
        }
        sqlx::Error::Tls(_) => StoreError::Unavailable(format!("{context}: TLS error")),
        sqlx::Error::Configuration(_) => {
            StoreError::Unavailable(format!("{context}: invalid database configuration"))
        }
        sqlx::Error::Protocol(_) => {
            StoreError::Unavailable(format!("{context}: database protocol error"))
        }
        sqlx::Error::PoolTimedOut => StoreError::Unavailable(format!(
            "{context}: timed out waiting for a database connection"
        )),
        sqlx::Error::PoolClosed => {
            StoreError::Unavailable(format!("{context}: the connection pool is closed"))
        }
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(format!("{context}: the database worker crashed"))
        }
        sqlx::Error::ColumnDecode { index, .. } => {
            StoreError::Corrupt(format!("{context}: cannot decode column {index}"))
        }
        sqlx::Error::ColumnNotFound(column) => {
            StoreError::Corrupt(format!("{context}: column {column} missing"))
        }
        sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => {
            StoreError::Corrupt(format!("{context}: cannot decode a row"))
        }
        sqlx::Error::RowNotFound => StoreError::Corrupt(format!("{context}: row missing")),
        sqlx::Error::Encode(_) => StoreError::Corrupt(format!("{context}: cannot encode a value")),
        sqlx::Error::Migrate(migrate) => map_migrate(context, migrate),
        _ => StoreError::Unavailable(format!("{context}: database error")),
    }
}

/// Maps an error of the embedded migrations.
pub(crate) fn map_migrate(context: &'static str, err: &MigrateError) -> StoreError {
    match err {
        MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
            map_sqlx(context, inner)
        }
        MigrateError::VersionMissing(version)
        | MigrateError::VersionMismatch(version)
        | MigrateError::VersionNotPresent(version)
        | MigrateError::Dirty(version) => StoreError::Corrupt(format!(
            "{context}: applied migration {version} does not match this build"
        )),
        MigrateError::VersionTooOld(version, _) | MigrateError::VersionTooNew(version, _) => {
            StoreError::Corrupt(format!(
                "{context}: migration {version} is out of order with the applied ones"
            ))
        }
        _ => StoreError::Unavailable(format!("{context}: migrations failed")),
    }
}

/// A stored value of `column` that cannot be read back (fixed phrase, no value).
pub(crate) fn corrupt(context: &'static str, column: &'static str) -> StoreError {
    StoreError::Corrupt(format!("{context}: invalid {column}"))
}

/// The same failure in the words of the auth ports ([`auth::ClientStore`],
/// [`auth::SigningKeyStore`]), which have their own error type with the same three meanings.
///
/// One mapping from sqlx serves both port families: the client and key adapters map as the
/// import adapter does and translate at their edge with this function.
pub(crate) fn for_auth(err: StoreError) -> auth::StoreError {
    match err {
        StoreError::Unavailable(message) => auth::StoreError::Unavailable(message),
        StoreError::Corrupt(message) => auth::StoreError::Corrupt(message),
        StoreError::Conflict(message) => auth::StoreError::Conflict(message),
    }
}
