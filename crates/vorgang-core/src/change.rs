//! One state change of a stored import, as the store receives it.
//!
//! An import changes a handful of small columns at every step (status, ids from Europace,
//! messages, failure, attempts, time) and its request body only twice: written with the import,
//! dropped when it finishes (or stored again when an import that failed for lack of Europace is
//! retried). [`ImportChange`] says exactly that, so a store writes what changed instead of the
//! whole row, and never rewrites the body (personal data) on a step that keeps it.

use chrono::{DateTime, Utc};
use vorgang_model::ImportRequest;

use crate::record::{Failure, ImportRecord, ImportStatus};
use crate::webhook::WebhookEvent;

/// The delivery bookkeeping of an import, written only by the changes that change it (queueing,
/// the first answer being `202` or `504`): the common steps leave these columns alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryChange {
    /// [`ImportRecord::notify`].
    pub notify: bool,
    /// [`ImportRecord::next_attempt_at`].
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl DeliveryChange {
    /// The bookkeeping of `new`, if it differs from `old`'s.
    #[must_use]
    pub fn between(old: &ImportRecord, new: &ImportRecord) -> Option<Self> {
        (old.notify != new.notify || old.next_attempt_at != new.next_attempt_at).then_some(Self {
            notify: new.notify,
            next_attempt_at: new.next_attempt_at,
        })
    }

    /// Applies it to a record in memory.
    pub const fn apply_to(self, record: &mut ImportRecord) {
        record.notify = self.notify;
        record.next_attempt_at = self.next_attempt_at;
    }
}

/// What happens to an import's stored request body in a state change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodyChange<'a> {
    /// The body stays as stored (or absent, if none is stored): no write.
    Keep,
    /// The body is deleted: the import finished, its personal data goes.
    Drop,
    /// The body is stored (replacing any stored one): a retry after Europace was unavailable
    /// brings the request back to an import whose body was dropped when it failed.
    Store(&'a ImportRequest),
}

/// The new values of the mutable columns of one import, applied by
/// [`ImportStore::transition`](crate::ImportStore::transition) if the import is still in the
/// expected state.
///
/// Everything else of an [`ImportRecord`] (id, client, environment, idempotency key and
/// fingerprint, the Tippgeber's `externePartnerId`, `created_at`) is fixed when the import is
/// accepted and never changes. Build one with [`ImportChange::between`], so the rule of what
/// changed lives in one place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImportChange<'a> {
    /// The new state.
    pub status: ImportStatus,
    /// The Tippgeber's Europace partnerId.
    pub tippgeber_partner_id: Option<&'a str>,
    /// Europace's Vorgangsnummer.
    pub europace_vorgangsnummer: Option<&'a str>,
    /// The CRM id.
    pub crm_kennung: Option<&'a str>,
    /// All messages (Europace's, then ours).
    pub messages: &'a [String],
    /// Why it failed or is in doubt.
    pub failure: Option<&'a Failure>,
    /// Attempts so far.
    pub attempts: u32,
    /// When this change happened.
    pub updated_at: DateTime<Utc>,
    /// What happens to the request body.
    pub body: BodyChange<'a>,
    /// The delivery bookkeeping, when this change changes it (`None`: left as stored).
    pub delivery: Option<DeliveryChange>,
    /// The webhook event this change causes, written to the outbox in the same write (only if
    /// the client has a webhook then).
    pub event: Option<&'a WebhookEvent>,
}

impl<'a> ImportChange<'a> {
    /// The change that turns the stored `old` into `new` (the same import, one step later).
    ///
    /// The body is kept when `new` carries the same request as `old` (the common step), dropped
    /// when `new` has none but `old` had one, and stored when `new` brings a request `old` did
    /// not have (or a different one). A body that is already absent is kept absent, so a store
    /// does not delete what is not there.
    #[must_use]
    pub fn between(old: &ImportRecord, new: &'a ImportRecord) -> Self {
        debug_assert_eq!(old.id, new.id, "a change concerns one import");
        let body = match (&old.request, &new.request) {
            (Some(_), None) => BodyChange::Drop,
            (None, None) => BodyChange::Keep,
            (Some(before), Some(after)) if before == after => BodyChange::Keep,
            (_, Some(after)) => BodyChange::Store(after),
        };
        Self {
            delivery: DeliveryChange::between(old, new),
            ..Self::of(new, body)
        }
    }

    /// The same change, also writing `event` to the outbox.
    #[must_use]
    pub const fn with_event(mut self, event: Option<&'a WebhookEvent>) -> Self {
        self.event = event;
        self
    }

    /// The change that stores `new` (the same import, one step later) and does `body` with the
    /// stored request body, for a caller that knows what happens to the body (and need not
    /// compare two copies of it to find out).
    #[must_use]
    pub fn of(new: &'a ImportRecord, body: BodyChange<'a>) -> Self {
        Self {
            status: new.status,
            tippgeber_partner_id: new.tippgeber_partner_id.as_deref(),
            europace_vorgangsnummer: new.europace_vorgangsnummer.as_deref(),
            crm_kennung: new.crm_kennung.as_deref(),
            messages: &new.messages,
            failure: new.failure.as_ref(),
            attempts: new.attempts,
            updated_at: new.updated_at,
            body,
            delivery: None,
            event: None,
        }
    }

    /// Applies the change to a record in memory, as a store applies it to its row (for
    /// in-memory stores and test doubles).
    pub fn apply_to(&self, record: &mut ImportRecord) {
        record.status = self.status;
        record.tippgeber_partner_id = self.tippgeber_partner_id.map(str::to_owned);
        record.europace_vorgangsnummer = self.europace_vorgangsnummer.map(str::to_owned);
        record.crm_kennung = self.crm_kennung.map(str::to_owned);
        record.messages = self.messages.to_vec();
        record.failure = self.failure.cloned();
        record.attempts = self.attempts;
        record.updated_at = self.updated_at;
        match self.body {
            BodyChange::Keep => {}
            BodyChange::Drop => record.request = None,
            BodyChange::Store(request) => record.request = Some(request.clone()),
        }
        if let Some(delivery) = self.delivery {
            delivery.apply_to(record);
        }
    }
}
