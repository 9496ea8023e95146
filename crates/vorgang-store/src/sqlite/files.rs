//! The SQLite files on disk: created `0600`, tightened to `0600` if others may read them.
//!
//! SQLite creates a database's `-wal` and `-shm` files with the mode of the database file, so the
//! database file is the one to get right. sqlx would create a missing file with the default mode
//! (`0644` under the usual umask): it is created here first, empty, which SQLite opens as a new
//! database. An existing file that others may read is tightened rather than refused: refusing
//! would turn a permissions slip into an outage, and the warning tells the operator that the data
//! was exposed.

use std::path::Path;

use vorgang_core::StoreError;

/// Prepares the files of the database at `path`: creates it `0600` if missing and `create`
/// (`mode=rwc`), and tightens it and its `-wal` and `-shm` files to `0600` if others may read
/// them (warning either way).
///
/// # Errors
///
/// [`StoreError::Unavailable`] if the missing file cannot be created.
pub(super) fn prepare(path: &Path, create: bool) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        unix::prepare(path, create)
    }
    #[cfg(not(unix))]
    {
        // No Unix modes: the directory's access control list decides.
        let _ = (path, create);
        Ok(())
    }
}

#[cfg(unix)]
mod unix {
    use std::ffi::OsString;
    use std::fs::{self, OpenOptions, Permissions};
    use std::io::ErrorKind;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    use vorgang_core::StoreError;

    /// Owner read and write, nothing for group and others.
    const PRIVATE: u32 = 0o600;

    /// The database file and the two files SQLite keeps next to it in WAL mode.
    const SUFFIXES: [&str; 3] = ["", "-wal", "-shm"];

    pub(super) fn prepare(path: &Path, create: bool) -> Result<(), StoreError> {
        if create {
            // `create_new` never touches an existing file, also when another process creates it
            // between our check and SQLite's open.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(PRIVATE)
                .open(path)
            {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
                Err(err) => return Err(crate::error::sqlite_create(path, &err)),
            }
        }
        for suffix in SUFFIXES {
            let mut name = OsString::from(path.as_os_str());
            name.push(suffix);
            tighten(Path::new(&name), suffix);
        }
        Ok(())
    }

    /// Sets `path` to `0600` if group or others have any permission on it.
    fn tighten(path: &Path, suffix: &str) {
        let Ok(metadata) = fs::metadata(path) else {
            return; // absent (a -wal or -shm file between runs): SQLite creates it from the db's mode
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return;
        }
        let file = if suffix.is_empty() {
            "database"
        } else {
            suffix
        };
        let was = format!("{mode:04o}");
        match fs::set_permissions(path, Permissions::from_mode(PRIVATE)) {
            Ok(()) => tracing::warn!(
                file,
                was,
                "SQLite file was accessible to other users; permissions set to 0600"
            ),
            Err(err) => tracing::warn!(
                file,
                was,
                error = ?err.kind(),
                "SQLite file is accessible to other users and its permissions could not be set to 0600: the personal data in it is exposed"
            ),
        }
    }
}
