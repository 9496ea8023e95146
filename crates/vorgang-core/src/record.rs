//! The stored state of one import.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vorgang_model::{Environment, ImportRequest};

/// What the OpenAPI document says about [`ImportStatus`] (for partners, not for this crate).
#[cfg(feature = "openapi")]
const IMPORT_STATUS_DOC: &str = "State of an import: `ACCEPTED` → `PARTNER_READY` → `SENDING` → \
    `IMPORTED` → `COMPLETED` (done: the Europace case and the CRM id exist). `FAILED`: nothing was \
    created at Europace. `IN_DOUBT`: the import was sent but Europace's answer was lost, so the \
    case may exist; our operators resolve it. `QUEUED` (only with `Prefer: respond-async`): Europace \
    could not take it yet and nothing was created; it is delivered in the background.";

/// Where an import stands. Each state is stored before the next step begins.
///
/// ```text
/// ACCEPTED → PARTNER_READY → SENDING → IMPORTED → COMPLETED
///     ↘            ↘            ↘ (answer lost)
///      FAILED       FAILED        IN_DOUBT
///     ↘            ↘            ↘ (Europace unavailable, `Prefer: respond-async`)
///      QUEUED → ACCEPTED (claimed for re-delivery)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(description = IMPORT_STATUS_DOC))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImportStatus {
    /// Validated and stored; the Tippgeber is not yet known at Europace.
    Accepted,
    /// The Tippgeber's partnerId is known; the KEX import has not been sent.
    PartnerReady,
    /// The KEX import is being sent. Found after a restart it becomes `IN_DOUBT`.
    Sending,
    /// Europace created the case; the CRM id is missing.
    Imported,
    /// Done: Europace case and CRM id exist.
    Completed,
    /// Nothing was created at Europace (or an operator decided so).
    Failed,
    /// The KEX import was sent but its answer was lost: an operator must decide.
    InDoubt,
    /// Europace could not take the import (5xx, 429, no connection: nothing was created) and the
    /// partner asked for `Prefer: respond-async`: it waits for re-delivery in the background
    /// ([`ImportRecord::next_attempt_at`]).
    Queued,
}

impl ImportStatus {
    /// All states, in the order of the happy path, then the others.
    pub const ALL: [Self; 8] = [
        Self::Accepted,
        Self::PartnerReady,
        Self::Sending,
        Self::Imported,
        Self::Completed,
        Self::Failed,
        Self::InDoubt,
        Self::Queued,
    ];

    /// The stored and wire name, e.g. `PARTNER_READY`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "ACCEPTED",
            Self::PartnerReady => "PARTNER_READY",
            Self::Sending => "SENDING",
            Self::Imported => "IMPORTED",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::InDoubt => "IN_DOUBT",
            Self::Queued => "QUEUED",
        }
    }

    /// Whether the import is finished (`COMPLETED` or `FAILED`): its request body is dropped and
    /// its record may be purged after the retention period.
    #[must_use]
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    /// Whether Europace's outcome is still to come (`ACCEPTED`, `PARTNER_READY`, `SENDING`):
    /// a partner asking now can only be told to wait. `IMPORTED` is not in progress in this
    /// sense: the case exists, only our CRM id is missing.
    #[must_use]
    pub const fn is_in_progress(self) -> bool {
        matches!(self, Self::Accepted | Self::PartnerReady | Self::Sending)
    }

    /// Whether a background pass drives an import in this state on when its process died
    /// (`ACCEPTED`, `PARTNER_READY`, `IMPORTED`; `SENDING` becomes `IN_DOUBT`). `IN_DOUBT` waits
    /// for an operator, finished imports for nothing: the resume never reads those.
    #[must_use]
    pub const fn is_resumable(self) -> bool {
        matches!(
            self,
            Self::Accepted | Self::PartnerReady | Self::Sending | Self::Imported
        )
    }
}

impl std::fmt::Display for ImportStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status name. Names are matched exactly, as stored and sent (`IN_DOUBT`, not
/// `in_doubt`): the stored text must map to one status only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown import status")]
pub struct ParseStatusError;

impl std::str::FromStr for ImportStatus {
    type Err = ParseStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(ParseStatusError)
    }
}

/// Why an import failed or is in doubt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure; decides the HTTP answer.
    pub kind: FailureKind,
    /// Technical detail for operators (status codes, timeouts); never personal data.
    pub detail: String,
    /// Europace's own messages when it refused the KEX import (`Rejected`), as it sent them:
    /// the 502 answer (and its replay) carries them as `europaceMessages`. They may quote
    /// submitted data, so they are shown only to the client whose import it is and never
    /// logged. Stored inside the failure (absent when empty), so records written before this
    /// field existed still decode.
    #[serde(default, skip_serializing_if = "EuropaceMessages::is_empty")]
    pub europace_messages: EuropaceMessages,
}

impl Failure {
    /// A failure of `kind` without messages from Europace.
    #[must_use]
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            europace_messages: EuropaceMessages::default(),
        }
    }
}

/// Europace's messages about a request it refused, exactly as Europace sent them.
///
/// They may quote what was submitted (a name, an IBAN), so they are personal data: the type's
/// `Debug` shows only how many there are, and the `Display` of the errors carrying them names
/// only the count. Only the partner whose import it is gets to read the text (the 502 answer,
/// `GET /vorgang/{id}`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EuropaceMessages(Vec<String>);

impl EuropaceMessages {
    /// The messages, in Europace's order.
    #[must_use]
    pub fn new(messages: Vec<String>) -> Self {
        Self(messages)
    }

    /// The messages, in Europace's order.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// How many there are (what logs may say about them).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether Europace sent none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<String>> for EuropaceMessages {
    fn from(messages: Vec<String>) -> Self {
        Self(messages)
    }
}

/// Only the count: the text may quote personal data, and `Debug` ends up in panics and logs.
impl std::fmt::Debug for EuropaceMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EuropaceMessages({} messages)", self.0.len())
    }
}

/// The kinds of [`Failure`].
///
/// The kind, not the free-text detail, decides what a partner is told and may do: `Unavailable`
/// is the only `FAILED` import that the same `Idempotency-Key` attempts again (nothing was
/// created and the fault was Europace's); every other one replays its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureKind {
    /// Europace refused our request (answered 502).
    Rejected,
    /// Europace unavailable, nothing created (answered 503; an idempotent retry starts a new attempt).
    Unavailable,
    /// The KEX answer was lost after sending (answered 504).
    InDoubt,
    /// An operator marked the import failed.
    Operator,
}

/// One import as stored.
///
/// Deliberately not `Serialize`: how a record is stored is the store adapter's business (its
/// codec), how it is shown is the caller's (the HTTP views, the CLI lines). One serialised form
/// for both would leak stored details onto the wire or the other way round.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    /// Our Vorgangsnummer (`drkleinrkVorgangsnummer`), also sent as `eigeneVorgangsnummer`.
    pub id: Uuid,
    /// The partner client that sent it.
    pub client_id: String,
    /// Europace environment.
    pub environment: Environment,
    /// Current state.
    pub status: ImportStatus,
    /// The `Idempotency-Key` the client sent, if any (unique per client).
    pub idempotency_key: Option<String>,
    /// SHA-256 (hex) over the environment and the raw request body: tells a retry of the same
    /// request (replayed) from a key reused for another one (refused), see [`crate::fingerprint`].
    pub fingerprint: String,
    /// The validated request (personal data), typed: kept only until the import is finished,
    /// and serialised only by the store.
    pub request: Option<ImportRequest>,
    /// `{client_id}-{externeMitarbeiternummer}`: the Tippgeber's `externePartnerId` at Europace.
    pub tippgeber_externe_partner_id: String,
    /// The Tippgeber's Europace partnerId, once known.
    pub tippgeber_partner_id: Option<String>,
    /// Europace's Vorgangsnummer, once imported.
    pub europace_vorgangsnummer: Option<String>,
    /// CRM id, once completed.
    pub crm_kennung: Option<String>,
    /// Europace's messages, then ours (warnings naming JSON pointers, never values).
    pub messages: Vec<String>,
    /// Why it failed or is in doubt.
    pub failure: Option<Failure>,
    /// How many times the import was attempted (a 503 retried with the same idempotency key adds one).
    pub attempts: u32,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it last changed. The resume takes over only imports unchanged for longer than its
    /// stale window, so a live request (here or on another replica) keeps its import.
    pub updated_at: DateTime<Utc>,
    /// Whether the partner's first answer for this import was `202` (queued) or `504` (in
    /// doubt): from then on every change into `COMPLETED`, `FAILED` or `IN_DOUBT` is reported to
    /// the client's webhook ([`crate::WebhookEvent`]).
    pub notify: bool,
    /// When a `QUEUED` import is next delivered (re-delivery backoff); `None` in other states.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl ImportRecord {
    /// A new import as it is first stored: `ACCEPTED`, first attempt, our warnings as its
    /// messages, the Tippgeber's `externePartnerId` `{client_id}-{externeMitarbeiternummer}`
    /// (Mitarbeiternummern are unique only within one partner), nothing from Europace yet.
    #[must_use]
    pub fn accepted(
        id: Uuid,
        client_id: &str,
        environment: Environment,
        idempotency_key: Option<&str>,
        fingerprint: String,
        request: ImportRequest,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            client_id: client_id.to_owned(),
            environment,
            status: ImportStatus::Accepted,
            idempotency_key: idempotency_key.map(str::to_owned),
            fingerprint,
            tippgeber_externe_partner_id: format!(
                "{client_id}-{}",
                request.tippgeber.externe_mitarbeiternummer
            ),
            tippgeber_partner_id: None,
            europace_vorgangsnummer: None,
            crm_kennung: None,
            messages: request.warnings.clone(),
            request: Some(request),
            failure: None,
            attempts: 1,
            created_at: now,
            updated_at: now,
            notify: false,
            next_attempt_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for status in ImportStatus::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(status.as_str().to_owned())
            );
        }
        assert_eq!("accepted".parse::<ImportStatus>(), Err(ParseStatusError));
    }

    #[test]
    fn europace_messages_are_stored_with_the_failure_but_never_shown_by_debug() {
        let failure = Failure {
            europace_messages: vec!["Name Erika Mustermann unbekannt".to_owned()].into(),
            ..Failure::new(FailureKind::Rejected, "status 400")
        };
        let json = serde_json::to_string(&failure).unwrap();
        let back: Failure = serde_json::from_str(&json).unwrap();
        assert_eq!(back, failure);
        assert!(!format!("{failure:?}").contains("Erika"), "{failure:?}");
        // Without messages the stored form is the old one, and the old one still decodes.
        let plain = Failure::new(FailureKind::Unavailable, "503");
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(json, r#"{"kind":"UNAVAILABLE","detail":"503"}"#);
        assert_eq!(serde_json::from_str::<Failure>(&json).unwrap(), plain);
    }
}
