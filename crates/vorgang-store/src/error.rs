//! Mapping of sqlx errors to [`StoreError`], and of those to [`auth::StoreError`].
//!
//! The messages are fixed phrases naming the operation and the kind of failure (SQLSTATE or
//! SQLite result code, I/O error kind, constraint name), never the database's own message or a
//! value: those may quote row data, which is personal data.
//!
//! Connecting is the exception that names more: an operator reads these at start, so they say
//! what is wrong and how to fix it ([`sqlite_open`], [`postgres_connect`]), naming the file,
//! host, port, database and user from the URL the operator configured (never its password, see
//! [`masked_url`]). Nothing there comes from a row.

use std::path::Path;

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

/// `url` with the password of its authority (`scheme://user:password@host…`) replaced by
/// `********`, for messages naming the database the operator configured.
pub(crate) fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The last `@` ends the credentials (a password may contain `@` unencoded).
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials
                .split_once(':')
                .map_or(credentials, |(user, _)| user);
            if credentials.contains(':') {
                format!("{scheme}://{user}:********@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

/// Why a SQLite database at `path` (from `url`) could not be opened, with the fix. `create`:
/// whether the URL asks for a missing file to be created (`mode=rwc`).
pub(crate) fn sqlite_open(path: &Path, url: &str, create: bool, err: &sqlx::Error) -> StoreError {
    const CONTEXT: &str = "open SQLite database";
    let path_text = path.display();
    match err {
        // SQLITE_CANTOPEN (14): the file is missing and may not be created, or it or its
        // directory is not accessible.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("14") => {
            if !create && !path.exists() {
                let separator = if url.contains('?') { '&' } else { '?' };
                StoreError::Unavailable(format!(
                    "{CONTEXT}: the file {path_text} does not exist (code 14); to create it, add \
                     mode=rwc to database_url: {url}{separator}mode=rwc"
                ))
            } else {
                StoreError::Unavailable(format!(
                    "{CONTEXT}: cannot open {path_text} (code 14); check that this user may read \
                     and write the file and its directory"
                ))
            }
        }
        _ => map_sqlx(CONTEXT, err),
    }
}

/// Why the SQLite file at `path` could not be created (`mode=rwc`), with the fix.
pub(crate) fn sqlite_create(path: &Path, err: &std::io::Error) -> StoreError {
    let cause = match err.kind() {
        std::io::ErrorKind::NotFound => "its directory does not exist; create it first",
        std::io::ErrorKind::PermissionDenied => {
            "permission denied; this user must be allowed to write its directory"
        }
        std::io::ErrorKind::ReadOnlyFilesystem => "the file system is read-only",
        _ => "I/O error",
    };
    StoreError::Unavailable(format!(
        "create SQLite database file {}: {cause} ({:?})",
        path.display(),
        err.kind()
    ))
}

/// What the operator configured for PostgreSQL, for [`postgres_connect`]'s messages.
pub(crate) struct PgTarget<'a> {
    /// The whole URL, password masked ([`masked_url`]).
    pub(crate) url: String,
    /// Host (or socket directory) and port.
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    /// The user connecting.
    pub(crate) user: &'a str,
    /// The database asked for (the user's name when the URL names none).
    pub(crate) database: &'a str,
}

/// Why connecting to PostgreSQL failed, with the fix: a missing database (3D000), a refused
/// password (28P01) or user (28000), a refused or unanswered connection.
pub(crate) fn postgres_connect(target: &PgTarget<'_>, err: &sqlx::Error) -> StoreError {
    let PgTarget {
        url,
        host,
        port,
        user,
        database,
    } = target;
    let context = format!("connect to PostgreSQL ({url})");
    let code = match err {
        sqlx::Error::Database(db) => db.code().map(std::borrow::Cow::into_owned),
        _ => None,
    };
    let message = match (code.as_deref(), err) {
        (Some("3D000"), _) => format!(
            "database \"{database}\" does not exist (code 3D000); create it (e.g. `createdb -h \
             {host} -p {port} {database}`) or correct the database name in database_url"
        ),
        (Some("28P01"), _) => format!(
            "password authentication failed for user \"{user}\" (code 28P01); correct the user \
             and password in database_url"
        ),
        (Some("28000"), _) => format!(
            "authentication failed for user \"{user}\" (code 28000): the role does not exist \
             or pg_hba.conf admits no such connection; correct the user in database_url or \
             create the role"
        ),
        (_, sqlx::Error::Io(io)) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!(
                "connection refused at {host}:{port}; is PostgreSQL running and listening \
                 there? check host and port in database_url"
            )
        }
        (_, sqlx::Error::Io(io)) => {
            format!("cannot reach {host}:{port} ({io}); check host and port in database_url")
        }
        _ => return prefixed(&context, map_sqlx("", err)),
    };
    StoreError::Unavailable(format!("{context}: {message}"))
}

/// `error` (made with an empty context) under `context`.
fn prefixed(context: &str, error: StoreError) -> StoreError {
    let put = |message: String| format!("{context}{message}");
    match error {
        StoreError::Unavailable(message) => StoreError::Unavailable(put(message)),
        StoreError::Corrupt(message) => StoreError::Corrupt(put(message)),
        StoreError::Conflict(message) => StoreError::Conflict(put(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database error with only a SQLSTATE, as PostgreSQL sends it.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl std::fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the server's own message, never shown")
        }
    }

    impl std::error::Error for Sqlstate {}

    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            "the server's own message, never shown"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    #[test]
    fn a_wrong_password_is_named_with_the_user() {
        // (28P01 cannot be provoked on the trust-only test server: mapped here.)
        let target = PgTarget {
            url: masked_url("postgres://vorgang:wrong@db:5432/vorgang"),
            host: "db",
            port: 5432,
            user: "vorgang",
            database: "vorgang",
        };
        let error = sqlx::Error::Database(Box::new(Sqlstate("28P01")));
        let text = postgres_connect(&target, &error).to_string();
        assert!(
            text.contains("password authentication failed for user \"vorgang\""),
            "{text}"
        );
        assert!(text.contains("vorgang:********@db:5432"), "{text}");
        assert!(
            !text.contains("wrong") && !text.contains("never shown"),
            "{text}"
        );
        // An unknown code keeps the code and no server text.
        let error = sqlx::Error::Database(Box::new(Sqlstate("53300")));
        let text = postgres_connect(&target, &error).to_string();
        assert!(text.ends_with("database error (code 53300)"), "{text}");
    }

    #[test]
    fn passwords_are_masked_and_nothing_else_changes() {
        for (url, masked) in [
            (
                "postgres://vorgang:s3cret@db.example:5432/vorgang?sslmode=require",
                "postgres://vorgang:********@db.example:5432/vorgang?sslmode=require",
            ),
            (
                "postgresql://u:p@ss@host/db",
                "postgresql://u:********@host/db",
            ),
            ("postgres://u@host/db", "postgres://u@host/db"),
            ("postgres://host/db", "postgres://host/db"),
            ("sqlite://v.db?mode=rwc", "sqlite://v.db?mode=rwc"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(masked_url(url), masked);
        }
    }
}
