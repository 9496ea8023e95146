//! Webhook events: what a partner's webhook is told when an import it was answered `202` or
//! `504` for reaches `COMPLETED`, `FAILED` or `IN_DOUBT`, and what the outbox (the
//! [`WebhookStore`](crate::WebhookStore) port) keeps until they are delivered.
//!
//! An event is written by the store in the same write as the state change that causes it
//! ([`ImportChange::event`](crate::ImportChange::event)), so a change is never stored without its
//! event nor the other way round. A background task (the server's) claims due events
//! ([`WebhookStore::claim_events`](crate::WebhookStore::claim_events)), signs and sends them, and deletes them once delivered.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::record::{ImportRecord, ImportStatus};

/// The kinds of webhook events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The import is `COMPLETED`: the Europace case and the CRM id exist.
    Completed,
    /// The import is `FAILED`: nothing was created at Europace.
    Failed,
    /// The import is `IN_DOUBT`: the case may exist; our operators resolve it.
    InDoubt,
}

impl EventType {
    /// The event reported when an import reaches `status`, if any.
    #[must_use]
    pub const fn for_status(status: ImportStatus) -> Option<Self> {
        match status {
            ImportStatus::Completed => Some(Self::Completed),
            ImportStatus::Failed => Some(Self::Failed),
            ImportStatus::InDoubt => Some(Self::InDoubt),
            _ => None,
        }
    }

    /// The wire name, e.g. `vorgang.completed`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "vorgang.completed",
            Self::Failed => "vorgang.failed",
            Self::InDoubt => "vorgang.in_doubt",
        }
    }
}

/// The `data` of an event body: the import's ids and state, never personal data.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventData<'a> {
    drkleinrk_vorgangsnummer: Uuid,
    status: ImportStatus,
    environment: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    europace_vorgangsnummer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crm_kennung: Option<&'a str>,
}

/// The event body (docs/reference/http-api.md §4 "Webhooks").
#[derive(Serialize)]
struct EventBody<'a> {
    #[serde(rename = "type")]
    event_type: &'static str,
    timestamp: String,
    data: EventData<'a>,
}

/// One webhook event, as written to the outbox with the state change that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The `webhook-id`: the same on every delivery attempt (`msg_` + a UUID).
    pub id: String,
    /// The import it reports.
    pub import_id: Uuid,
    /// The client whose webhook receives it.
    pub client_id: String,
    /// What happened.
    pub event_type: EventType,
    /// The JSON body exactly as sent and signed.
    pub payload: String,
    /// When the event happened (also `timestamp` in the body).
    pub created_at: DateTime<Utc>,
}

impl WebhookEvent {
    /// The event reporting `record` in its current state at `now`, if the state is reported
    /// (`COMPLETED`, `FAILED`, `IN_DOUBT`).
    #[must_use]
    pub fn of(record: &ImportRecord, now: DateTime<Utc>) -> Option<Self> {
        let event_type = EventType::for_status(record.status)?;
        let body = EventBody {
            event_type: event_type.as_str(),
            timestamp: now.to_rfc3339_opts(SecondsFormat::Secs, true),
            data: EventData {
                drkleinrk_vorgangsnummer: record.id,
                status: record.status,
                environment: record.environment.as_str(),
                europace_vorgangsnummer: record.europace_vorgangsnummer.as_deref(),
                crm_kennung: record.crm_kennung.as_deref(),
            },
        };
        // Serialising these plain types cannot fail; an event is skipped rather than a state
        // change refused if it ever did.
        let payload = serde_json::to_string(&body).ok()?;
        Some(Self {
            id: format!("msg_{}", Uuid::now_v7().simple()),
            import_id: record.id,
            client_id: record.client_id.clone(),
            event_type,
            payload,
            created_at: now,
        })
    }
}

/// An event claimed from the outbox for one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    /// The `webhook-id`.
    pub id: String,
    /// The client whose webhook receives it.
    pub client_id: String,
    /// The JSON body as stored.
    pub payload: String,
    /// When the event happened: delivery is given up a while after (24 h).
    pub created_at: DateTime<Utc>,
    /// Delivery attempts so far, this one included.
    pub attempts: u32,
}

/// A client's webhook: its URL and its signing secret, sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// Where events are POSTed.
    pub url: String,
    /// The secret's key bytes (what `whsec_` + base64 encodes), encrypted with the
    /// key-encryption key when `encrypted`.
    pub sealed_secret: Vec<u8>,
    /// Whether `sealed_secret` is encrypted.
    pub encrypted: bool,
}

/// Never the secret.
impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}
