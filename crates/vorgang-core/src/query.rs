//! Listing imports a page at a time, oldest first.
//!
//! Every listing (a partner's own imports, the operator's `imports list`) reads the table in one
//! order, `(created_at, id)`, and continues after the last row it returned (a keyset cursor)
//! instead of skipping an offset: a page then costs the same however many imports are stored
//! and however far into the list it is, and imports accepted while someone pages through never
//! shift a page.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::record::{ImportRecord, ImportStatus};

/// Which imports [`ImportStore::list`](crate::ImportStore::list) returns: those matching every
/// filter that is set, after `after`, oldest first by `(created_at, id)`, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportQuery {
    /// Only this client's imports.
    pub client_id: Option<String>,
    /// Only imports in this state.
    pub status: Option<ImportStatus>,
    /// Only imports accepted at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only imports strictly after this position (the last one of the previous page).
    pub after: Option<ImportCursor>,
    /// At most this many imports.
    pub limit: u32,
}

impl ImportQuery {
    /// The page size when the caller names none (`GET /vorgang` without `limit`).
    pub const DEFAULT_LIMIT: u32 = 50;

    /// The first page of all imports, [`Self::DEFAULT_LIMIT`] at a time.
    #[must_use]
    pub const fn all() -> Self {
        Self {
            client_id: None,
            status: None,
            since: None,
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }

    /// Whether `record` passes every filter and lies after the cursor (for in-memory stores).
    #[must_use]
    pub fn matches(&self, record: &ImportRecord) -> bool {
        self.client_id
            .as_deref()
            .is_none_or(|client| record.client_id == client)
            && self.status.is_none_or(|status| record.status == status)
            && self.since.is_none_or(|since| record.created_at >= since)
            && self
                .after
                .is_none_or(|after| ImportCursor::of(record) > after)
    }
}

impl Default for ImportQuery {
    fn default() -> Self {
        Self::all()
    }
}

/// A position in the listing order: the `(created_at, id)` of the last import of a page.
///
/// Ordered as the listing is (time first, the id breaking ties), so "after the cursor" is one
/// comparison an index answers. [`Display`](std::fmt::Display) and [`FromStr`](std::str::FromStr)
/// give a compact text form (`<unix seconds>.<nanoseconds>.<id without hyphens>`) for callers
/// that hand it out, e.g. as the opaque `cursor` of `GET /vorgang`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImportCursor {
    /// When the import was accepted.
    pub created_at: DateTime<Utc>,
    /// The import's id.
    pub id: Uuid,
}

impl ImportCursor {
    /// The position of `record`.
    #[must_use]
    pub const fn of(record: &ImportRecord) -> Self {
        Self {
            created_at: record.created_at,
            id: record.id,
        }
    }
}

impl std::fmt::Display for ImportCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{:09}.{}",
            self.created_at.timestamp(),
            self.created_at.timestamp_subsec_nanos(),
            self.id.simple()
        )
    }
}

/// A cursor text that [`ImportCursor`]'s `Display` did not write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor")]
pub struct ParseCursorError;

impl std::str::FromStr for ImportCursor {
    type Err = ParseCursorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.splitn(3, '.');
        let (Some(secs), Some(nanos), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ParseCursorError);
        };
        let secs: i64 = secs.parse().map_err(|_| ParseCursorError)?;
        let nanos: u32 = nanos.parse().map_err(|_| ParseCursorError)?;
        let created_at = DateTime::from_timestamp(secs, nanos).ok_or(ParseCursorError)?;
        let id = Uuid::try_parse(id).map_err(|_| ParseCursorError)?;
        Ok(Self { created_at, id })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPage {
    /// The imports, oldest first.
    pub items: Vec<ImportRecord>,
    /// Where the next page starts (pass it as [`ImportQuery::after`]); `None` on the last page.
    pub next: Option<ImportCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_as_text_and_order_like_the_listing() {
        let early = ImportCursor {
            created_at: DateTime::from_timestamp(1_750_000_000, 5).unwrap_or_default(),
            id: Uuid::from_u128(2),
        };
        let tie = ImportCursor {
            id: Uuid::from_u128(3),
            ..early
        };
        assert_eq!(early.to_string().parse(), Ok(early));
        assert_eq!(
            early.to_string(),
            "1750000000.000000005.00000000000000000000000000000002"
        );
        assert!(early < tie, "the id breaks ties");
        for bad in ["", "1.2", "x.0.00000000000000000000000000000002", "1.2.zz"] {
            assert_eq!(bad.parse::<ImportCursor>(), Err(ParseCursorError), "{bad}");
        }
    }
}
