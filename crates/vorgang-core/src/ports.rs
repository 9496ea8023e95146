//! The ports of the import use case: small traits implemented by adapters in other crates.
//!
//! Every port is object safe and used as `Arc<dyn Port>`. Each trait documents its error contract:
//! what an error means for the import and whether the call may be repeated.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vorgang_model::{Environment, Tippgeber};

use crate::change::ImportChange;
use crate::kex::KexBody;
use crate::query::ImportQuery;
use crate::record::{EuropaceMessages, ImportRecord, ImportStatus};
use crate::tippgeber::{TippgeberMapping, TippgeberUpdate};
use crate::trace::TraceContext;
use crate::webhook::{PendingEvent, WebhookTarget};

/// Correlation of one import's Europace calls: the id sent as `X-TraceId` (and written to our
/// logs) and the W3C trace the calls continue (`traceparent`, see [`TraceContext`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceId {
    id: String,
    context: TraceContext,
}

impl TraceId {
    /// A trace id `id` in the trace `context`.
    #[must_use]
    pub fn new(id: impl Into<String>, context: TraceContext) -> Self {
        Self {
            id: id.into(),
            context,
        }
    }

    /// The trace id of an import: `X-TraceId` derived from our Vorgangsnummer, so logs and
    /// Europace support can correlate without any personal data. Its W3C trace is the one of the
    /// request driving the import ([`NewImport::trace`](crate::NewImport::trace), while
    /// [`Importer::submit`](crate::Importer::submit) runs), else one derived from the id
    /// ([`TraceContext::for_import`]).
    #[must_use]
    pub fn for_import(id: Uuid) -> Self {
        Self::new(
            format!("drkleinrk-{id}"),
            TraceContext::current().unwrap_or_else(|| TraceContext::for_import(id)),
        )
    }

    /// The id as sent on the wire (`X-TraceId`).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The W3C trace the calls belong to.
    #[must_use]
    pub const fn context(&self) -> &TraceContext {
        &self.context
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)
    }
}

/// Errors of a storage adapter. Never contains personal data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error; the operation may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Data could not be decoded from the database (a bug, a manual edit, a format this build
    /// does not know) or, in theory, not encoded for it; retrying will not help. Only stores
    /// return it: the use case serialises nothing itself.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A uniqueness rule other than the idempotency key was violated (e.g. a duplicate id).
    #[error("conflict: {0}")]
    Conflict(String),
}

/// Result of [`ImportStore::insert`].
#[derive(Debug, Clone, PartialEq)]
pub enum InsertOutcome {
    /// The record was stored.
    Inserted,
    /// The record carries an idempotency key that this client already used: nothing was stored,
    /// the earlier import is returned.
    IdempotencyKeyExists(Box<ImportRecord>),
}

/// Persistence of imports and of the Tippgeber partners learnt from Europace.
///
/// Error contract: every method returns [`StoreError::Unavailable`] when the database cannot be
/// reached (the caller answers 503 and changes nothing) and [`StoreError::Corrupt`] when a stored
/// row cannot be decoded. Writes are atomic: after an error nothing of that call was stored.
///
/// Cost contract (database adapters; the in-memory store scans): every method but
/// [`Self::purge_finished_before`], [`Self::list_stale`] and [`Self::count_by_status`] costs the
/// same however many imports are stored (indexes, keyset paging); those three cost what they
/// return, delete or count, never the imports they leave alone.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Stores a new import, with its request body if it has one. If `record.idempotency_key` is
    /// set and the same client already has an import with that key, nothing is stored and that
    /// import is returned instead. This rule is enforced by a database constraint, so two
    /// replicas cannot both insert.
    async fn insert(&self, record: &ImportRecord) -> Result<InsertOutcome, StoreError>;

    /// Applies `change` to import `id` if and only if its stored status is still `from`
    /// (compare-and-set: the status is the import's version). Returns `false`, changing
    /// nothing, when another writer got there first or the import does not exist.
    ///
    /// Writes only what a state change changes: the columns of [`ImportChange`], and the body
    /// only as [`ImportChange::body`] says (`Keep` must not rewrite it). The row and its body
    /// change together or not at all.
    async fn transition(
        &self,
        id: Uuid,
        from: ImportStatus,
        change: &ImportChange<'_>,
    ) -> Result<bool, StoreError>;

    /// The import with this id, if any.
    async fn get(&self, id: Uuid) -> Result<Option<ImportRecord>, StoreError>;

    /// The imports matching `query`, oldest first by `(created_at, id)`, starting after
    /// `query.after`, at most `query.limit` (see [`ImportQuery`]).
    async fn list(&self, query: &ImportQuery) -> Result<Vec<ImportRecord>, StoreError>;

    /// The imports a crashed process may have abandoned: those in a state the resume drives on
    /// ([`ImportStatus::is_resumable`]) last changed at or before `cutoff`, oldest change first
    /// (`updated_at`, then id).
    async fn list_stale(&self, cutoff: DateTime<Utc>) -> Result<Vec<ImportRecord>, StoreError>;

    /// Claims up to `limit` `QUEUED` imports due for re-delivery at `now`
    /// (`next_attempt_at <= now`, oldest due first): in one write each is moved to `ACCEPTED`
    /// (`updated_at = now`, `next_attempt_at` and `failure` cleared, one more attempt) and
    /// returned as stored then.
    ///
    /// Exclusive across replicas: an import is claimed by one caller only (PostgreSQL: `FOR
    /// UPDATE SKIP LOCKED`; SQLite: one writer). A claimed import is driven on like a new one; if
    /// its claimer dies, the resume finds it `ACCEPTED` and stale. Costs what it claims (a
    /// partial index on `next_attempt_at` of the queued imports), never the other imports.
    async fn claim_queued(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ImportRecord>, StoreError>;

    /// How many imports are in `status` now. For gauges read at every metrics scrape: costs
    /// what it counts (one range of an index on `status`, read from the index alone), never the
    /// imports in other states, so counting the unfinished states stays cheap however many
    /// finished imports are stored.
    async fn count_by_status(&self, status: ImportStatus) -> Result<u64, StoreError>;

    /// Deletes imports that finished (`COMPLETED` or `FAILED`) before `cutoff`. Returns how many.
    async fn purge_finished_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The Europace partner stored for a Tippgeber's `externePartnerId` in an environment, with
    /// what was last sent to it ([`TippgeberMapping`]; a mapping stored before migration 0006
    /// reads with an empty [`SentTippgeber`](crate::SentTippgeber)).
    ///
    /// Per environment because Partnermanagement has no test mode: a test-mode Tippgeber is a
    /// different partner (under the test parent) from the production one with the same
    /// `externePartnerId`. A hit spares the import every Partnermanagement call unless the
    /// Tippgeber's data changed.
    async fn tippgeber_partner(
        &self,
        environment: Environment,
        externe_partner_id: &str,
    ) -> Result<Option<TippgeberMapping>, StoreError>;

    /// Remembers the Europace partner of a Tippgeber and what was last sent to it, replacing
    /// what was stored for the key. Storing the same mapping twice is fine.
    ///
    /// Two imports of the same new Tippgeber may run at once and both look it up or create it
    /// (creation of an existing `externePartnerId` answers the existing partner), so both store
    /// the same id: this must be an upsert, never a uniqueness error that fails an import.
    async fn save_tippgeber_partner(
        &self,
        environment: Environment,
        externe_partner_id: &str,
        mapping: &TippgeberMapping,
    ) -> Result<(), StoreError>;

    /// Whether the database takes writes (for `GET /health/ready`): `Ok` only after a small
    /// write has committed, e.g. an upsert of a one-row heartbeat table.
    ///
    /// A database that answers reads but fails every write (full disk, read-only) must fail
    /// here: a replica that cannot store an import must not receive traffic. Called for every
    /// readiness probe, so it must stay cheap (one small write, no scan); it may wait for a
    /// lock as long as any write does. (Before issue 8 it only proved that the database answers
    /// a query.)
    async fn ping(&self) -> Result<(), StoreError>;

    /// Makes data the store has already dropped unreadable on disk as far as the adapter can
    /// (the request bodies of finished imports, personal data), e.g. by checkpointing and
    /// truncating a write-ahead log that still holds old page images. Called periodically by the
    /// server's background work; safe to call at any time, from any replica.
    ///
    /// The default does nothing: for stores that keep nothing on disk, or whose database does
    /// this itself (PostgreSQL: autovacuum, see docs/privacy.md).
    async fn scrub(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl EuropaceError {
    /// [`EuropaceError::Rejected`] with this status and no messages.
    #[must_use]
    pub fn rejected(status: u16) -> Self {
        Self::Rejected {
            status,
            messages: EuropaceMessages::default(),
        }
    }
}

/// A partner found in Europace Partnermanagement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRecord {
    /// Europace partnerId, e.g. `SZY92`.
    pub partner_id: String,
    /// partnerId of the partner it sits under, if Europace told us. The search by
    /// `externePartnerId` is Europace-wide and another organisation may use the same id, so
    /// only a partner under our environment's Tippgeber parent is ours.
    pub parent_partner_id: Option<String>,
}

/// Errors of a Europace call. Never contains personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EuropaceError {
    /// Europace refused our own request with a 4xx (other than 429): our credentials, our
    /// configuration or our request is wrong. Retrying the same request will not help.
    ///
    /// The message names the status and how many messages Europace sent, never their text.
    #[error("Europace rejected the request with status {status} ({} messages)", messages.len())]
    Rejected {
        /// The HTTP status Europace answered.
        status: u16,
        /// Europace's reasons, as it sent them (only the KEX import reads them; empty for the
        /// other calls and for a 401).
        messages: EuropaceMessages,
    },
    /// Europace was unreachable, timed out before our request was sent completely, or answered
    /// 5xx/429. Nothing was created; the call may be repeated later.
    #[error("Europace unavailable: {reason}")]
    Unavailable {
        /// Short technical reason (no personal data).
        reason: String,
        /// Europace's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// Our request was sent but the answer was lost (timeout or reset after sending). Whether
    /// Europace acted on it is unknown. Only [`KexImporter::import`] returns this.
    #[error("Europace answer lost after sending: {reason}")]
    InDoubt {
        /// Short technical reason (no personal data).
        reason: String,
    },
    /// Europace answered successfully but with a body we cannot read. For the KEX import the
    /// case may exist all the same, so the importer treats it as [`Self::InDoubt`]; in the
    /// Tippgeber step, which is safe to repeat, the import fails.
    #[error("unexpected answer from Europace: {reason}")]
    Protocol {
        /// Short technical reason (no personal data).
        reason: String,
    },
}

/// Europace Partnermanagement, as far as Tippgeber are concerned.
///
/// Error contract: every call is safe to repeat (a lookup reads; creating an existing
/// `externePartnerId` answers the existing partner; a `PATCH` of the same attributes leaves the
/// same partner), so an adapter may retry [`EuropaceError::Unavailable`] internally with backoff
/// before returning it. `InDoubt` is never returned.
#[async_trait]
pub trait PartnerDirectory: Send + Sync {
    /// All partners with this `externePartnerId` (Europace-wide), each with its parent. The
    /// caller picks the one under its Tippgeber parent ([`PartnerRecord::parent_partner_id`]):
    /// the adapter does not filter, because Europace's search does not either.
    async fn find_by_externe_partner_id(
        &self,
        externe_partner_id: &str,
        trace: &TraceId,
    ) -> Result<Vec<PartnerRecord>, EuropaceError>;

    /// Creates the Tippgeber as a person under `parent_partner_id`, known to Europace by
    /// `externe_partner_id`, and returns its partnerId (also when Europace reports that the
    /// `externePartnerId` already existed).
    ///
    /// The adapter maps the [`Tippgeber`] to the wire (e.g. `telefon` is Europace's
    /// `telefonnummer`); its `externeMitarbeiternummer` is not sent: it is part of
    /// `externe_partner_id`.
    async fn create_tippgeber(
        &self,
        parent_partner_id: &str,
        externe_partner_id: &str,
        tippgeber: &Tippgeber,
        trace: &TraceId,
    ) -> Result<String, EuropaceError>;

    /// Changes exactly the attributes of `update` of partner `partner_id` (a `PATCH`: every
    /// other attribute stays as it is). The caller sends only what changed and never an empty
    /// update.
    ///
    /// The adapter maps the attributes to the wire as for [`Self::create_tippgeber`]. An error
    /// means the partner may still hold the old values; the import goes on regardless.
    async fn update_tippgeber(
        &self,
        partner_id: &str,
        update: &TippgeberUpdate,
        trace: &TraceId,
    ) -> Result<(), EuropaceError>;
}

/// Europace's answer to a successful KEX import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KexImported {
    /// Europace's Vorgangsnummer of the new case.
    pub vorgangsnummer: String,
    /// Europace's messages, as they came.
    pub messages: Vec<String>,
}

/// The Europace KEX Vorgang Import API.
///
/// Error contract: an import is **never** retried automatically after its request may have reached
/// Europace. [`EuropaceError::Rejected`] and [`EuropaceError::Unavailable`] mean Europace created
/// nothing (an adapter may refresh its token and send once more after a 401);
/// [`EuropaceError::InDoubt`] means the case may exist: the import must not be sent again without
/// an operator's decision.
#[async_trait]
pub trait KexImporter: Send + Sync {
    /// Imports one Vorgang (`body` is the complete KEX request, serialised once by the use case;
    /// sent as it is) into `environment`.
    async fn import(
        &self,
        environment: Environment,
        body: &KexBody,
        trace: &TraceId,
    ) -> Result<KexImported, EuropaceError>;
}

/// Errors of the CRM port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CRM unavailable: {0}")]
pub struct CrmError(pub String);

/// Issues the `crmKennung` of the Finanzierungsberater case.
///
/// Error contract: a [`CrmError`] leaves the import `IMPORTED`; the call is repeated when the
/// import is resumed, so implementations must return the same kennung for the same import.
#[async_trait]
pub trait CrmIds: Send + Sync {
    /// The CRM id for this import.
    async fn crm_kennung(&self, import: &ImportRecord) -> Result<String, CrmError>;

    /// The CRM id for this import if it can be had at once, in this process, without any I/O
    /// that could fail or wait (e.g. [`BuiltinCrm`](crate::BuiltinCrm) derives it from the id);
    /// `None` otherwise (the default), and then [`Self::crm_kennung`] is asked.
    ///
    /// With `Some`, the importer stores Europace's outcome and the CRM id in one write
    /// (`SENDING` → `COMPLETED`). With `None` it stores `IMPORTED` first, so a slow or failing
    /// CRM never delays making Europace's answer durable. The same kennung as
    /// [`Self::crm_kennung`] must come back for the same import.
    fn kennung_in_process(&self, import: &ImportRecord) -> Option<String> {
        let _ = import;
        None
    }
}

/// The current time. Infallible.
///
/// A port rather than `Utc::now()` so that what depends on time (which imports are stale
/// enough to resume, which finished ones are past retention, the listing order by
/// `created_at`) can be tested with a clock the test sets, without sleeping.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// Fresh ids for imports. Infallible.
///
/// The id is the `drkleinrkVorgangsnummer`: it is sent to Europace as `eigeneVorgangsnummer` and
/// is how an operator finds an `IN_DOUBT` case there, so it must be unique across replicas
/// without coordination (random UUIDs in production; fixed ones in tests).
pub trait IdGenerator: Send + Sync {
    /// A new, unique id.
    fn new_id(&self) -> Uuid;
}

/// [`Clock`] reading the system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// [`IdGenerator`] issuing UUIDs of version 7: 48 bits of Unix time in milliseconds, then 74
/// random bits (RFC 9562).
///
/// Unguessable like version 4, and ordered by time: consecutive imports' ids sort next to each
/// other, so the stores' primary-key indexes (on `imports` and `import_requests`) grow at their
/// end instead of at a random page each, which keeps the pages an insert dirties few and shared
/// between concurrent imports (issue 10). The time in an id is no secret: `createdAt` says the
/// same.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// The clients' webhooks and the event outbox.
///
/// Error contract as [`ImportStore`]: [`StoreError::Unavailable`] when the
/// database cannot be reached (the caller tries again later), [`StoreError::Corrupt`] for a row
/// that cannot be decoded. Claims are exclusive across replicas: an event claimed by one is not
/// claimed by another until its lease (`lease_until`) has passed.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Sets (`Some`) or removes (`None`) the webhook of `client_id`. `false` when there is no
    /// such client.
    async fn set_webhook(
        &self,
        client_id: &str,
        target: Option<&WebhookTarget>,
    ) -> Result<bool, StoreError>;

    /// The webhook of `client_id`, if it has one.
    async fn webhook(&self, client_id: &str) -> Result<Option<WebhookTarget>, StoreError>;

    /// Claims up to `limit` events due at `now` (oldest due first) for one delivery attempt:
    /// each gets its attempt counted and is not due again before `lease_until`, so no other
    /// replica sends it meanwhile (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    async fn claim_events(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingEvent>, StoreError>;

    /// Removes a delivered (or given-up) event from the outbox.
    async fn remove_event(&self, id: &str) -> Result<(), StoreError>;

    /// Makes an event due again at `at` (the attempt failed).
    async fn retry_event(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// How many events wait in the outbox (for a gauge).
    async fn count_events(&self) -> Result<u64, StoreError>;
}
