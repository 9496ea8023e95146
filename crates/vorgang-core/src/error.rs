//! The errors of the use cases ([`Importer`](crate::Importer), [`Resolver`](crate::Resolver)).

use uuid::Uuid;

use crate::ports::StoreError;
use crate::record::{ImportRecord, ImportStatus};

/// Errors of [`Importer`](crate::Importer) and [`Resolver`](crate::Resolver) that leave no import
/// behind or concern no stored import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The `Idempotency-Key` was used before with another body or environment (HTTP 422).
    #[error("the Idempotency-Key was used with another request")]
    IdempotencyKeyReused,
    /// The import with this `Idempotency-Key` is still running (HTTP 409).
    #[error("an import with this Idempotency-Key is still in progress ({status})")]
    InProgress {
        /// The running import.
        id: Uuid,
        /// Its state as last read (one of [`ImportStatus::is_in_progress`]), so the answer can
        /// name where it stands.
        status: ImportStatus,
    },
    /// The store failed before the import was stored: nothing happened (HTTP 503, retry welcome).
    #[error("storage unavailable: {0}")]
    Store(#[from] StoreError),
    /// The import was stored, but a later state could not be stored (the database failed
    /// mid-way). Nothing is lost and nothing may be sent again by the partner: `record` is the
    /// import as last stored, and the background resume drives it on from there
    /// ([`Importer::resume_stale`](crate::Importer::resume_stale); a `SENDING` one becomes
    /// `IN_DOUBT`). The answer must name the import and its state, never "nothing was stored".
    #[error("storage failed after import {} was stored as {}: {source}", .record.id, .record.status)]
    Unfinished {
        /// The import as last stored.
        record: Box<ImportRecord>,
        /// The store's error.
        source: StoreError,
    },
    /// No such import, or none of the asking client (reads never reveal another client's
    /// import).
    #[error("no import with this id")]
    NotFound,
    /// The import is not in a state that allows the operation (operator commands).
    #[error("import is {0}, not IN_DOUBT")]
    WrongState(ImportStatus),
}
