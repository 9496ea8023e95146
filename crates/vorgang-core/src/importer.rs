//! The import use case: one Vorgang from validated request to Europace case and CRM id.
//!
//! [`Importer`] is the only door to imports for the HTTP layer: it accepts requests
//! ([`Importer::submit`]), answers a client about its own imports
//! ([`Importer::get_for_client`], [`Importer::list_for_client`]), tells whether the store takes
//! writes ([`Importer::ready`]) and drives abandoned imports on ([`Importer::resume_stale`]).
//! Operator decisions and maintenance live in its [`Resolver`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use uuid::Uuid;
use vorgang_model::{Environment, ImportRequest, Tippgeber};

use crate::delivery::DeliveryPolicy;
use crate::error::ImportError;
use crate::kex::KexBody;
use crate::ports::{
    Clock, CrmIds, EuropaceError, IdGenerator, ImportStore, InsertOutcome, KexImporter,
    PartnerDirectory, StoreError, TraceId,
};
use crate::query::{ImportPage, ImportQuery};
use crate::record::{EuropaceMessages, Failure, FailureKind, ImportRecord, ImportStatus};
use crate::resolver::{Resolution, Resolver, Step};
use crate::tippgeber::{TIPPGEBER_NOT_UPDATED, TippgeberMapping, TippgeberUpdate};
use crate::trace::TraceContext;

/// Longest [`Importer::submit`] waits for the outcome of an import that another writer took over
/// while this request was driving it (see [`Importer::outcome`]).
pub const TAKEOVER_WAIT: Duration = Duration::from_secs(30);

/// How often [`Importer::outcome`] looks at the stored import while it waits.
const OUTCOME_POLL: Duration = Duration::from_millis(200);

/// Europace partner ids the importer sets on every import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImporterConfig {
    /// partnerId of the Kundenbetreuer set on every import (`kundenbetreuer.partnerId`).
    pub kundenbetreuer_partner_id: String,
    /// Parent partner of Tippgeber created for `PRODUCTION` imports.
    pub tippgeber_parent_id: String,
    /// Parent partner of Tippgeber created for `TEST` imports (Partnermanagement has no test mode).
    pub test_tippgeber_parent_id: String,
}

impl ImporterConfig {
    /// The Tippgeber parent of an environment.
    #[must_use]
    pub fn tippgeber_parent(&self, environment: Environment) -> &str {
        match environment {
            Environment::Production => &self.tippgeber_parent_id,
            Environment::Test => &self.test_tippgeber_parent_id,
        }
    }
}

/// The adapters an [`Importer`] works with.
#[derive(Clone)]
pub struct Ports {
    /// Where imports are stored.
    pub store: Arc<dyn ImportStore>,
    /// Europace Partnermanagement.
    pub partners: Arc<dyn PartnerDirectory>,
    /// Europace KEX Vorgang Import.
    pub kex: Arc<dyn KexImporter>,
    /// Issues CRM ids.
    pub crm: Arc<dyn CrmIds>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Import ids.
    pub ids: Arc<dyn IdGenerator>,
}

/// One validated request to import.
#[derive(Debug, Clone)]
pub struct NewImport<'a> {
    /// The authenticated partner client.
    pub client_id: &'a str,
    /// Europace environment.
    pub environment: Environment,
    /// The client's `Idempotency-Key`, if sent.
    pub idempotency_key: Option<&'a str>,
    /// The raw request body (for the idempotency fingerprint).
    pub raw_body: &'a [u8],
    /// The parsed, validated request.
    pub request: ImportRequest,
    /// The W3C trace of the request (its `traceparent`, or a new trace the caller started):
    /// every Europace call made while [`Importer::submit`] drives this import continues it.
    /// `None`: the import's calls get a trace derived from its id ([`TraceContext::for_import`]).
    pub trace: Option<TraceContext>,
    /// The partner sent `Prefer: respond-async`: if Europace cannot take the import now (nothing
    /// created), it is kept `QUEUED` and delivered in the background instead of `FAILED`.
    pub respond_async: bool,
}

/// What [`Importer::submit`] returns: the import as stored, and whether it is the answer to an
/// earlier request with the same `Idempotency-Key` (nothing was done for this one).
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// The import as last stored; its [`ImportStatus`] tells the outcome.
    pub record: ImportRecord,
    /// `true` when this request repeated an idempotency key and got the earlier import back as
    /// it stood (an HTTP layer says so, e.g. `Idempotent-Replayed: true`); `false` when this
    /// request drove the import, a retry of one Europace could not take included.
    pub replayed: bool,
}

/// SHA-256 (hex) over the environment and the raw body: the idempotency fingerprint.
///
/// The raw bytes, not the parsed request: a retry is the same request only if it is the same
/// bytes, and re-serialising would make two different bodies (other member order, other number
/// spelling) look alike. The environment is included because the same body sent to `TEST` and
/// to `PRODUCTION` are two different requests.
#[must_use]
pub fn fingerprint(environment: Environment, raw_body: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hasher = Sha256::new();
    hasher.update(environment.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(raw_body);
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Most Tippgeber an [`Importer`] keeps in memory; beyond, it forgets them all and learns them
/// again from the store (a partner organisation has a handful of Tippgeber, so this bounds the
/// memory of a pathological mix, not of normal traffic).
const TIPPGEBER_CACHE_MAX: usize = 10_000;

/// How long an [`Importer`] trusts its copy of a Tippgeber mapping before it reads the store
/// again.
///
/// The partnerId never changes while the partner exists, but what was last sent to it does, and
/// another replica may have sent it: a replica whose copy says "phone A was sent" while another
/// has since sent phone B would take a request with phone A for unchanged and leave Europace at
/// B. Reading the store again after a minute bounds that window (to within a minute of the
/// other replica's update) for one indexed read per Tippgeber and minute.
const TIPPGEBER_CACHE_TTL: Duration = Duration::from_secs(60);

/// A mapping as this process last read or stored it.
#[derive(Debug, Clone)]
struct CachedTippgeber {
    mapping: Arc<TippgeberMapping>,
    learnt: Instant,
}

/// The Tippgeber mappings this process has read from the store or stored itself, per
/// environment and `externePartnerId`, each trusted for [`TIPPGEBER_CACHE_TTL`]: an import of
/// a known Tippgeber whose data did not change since it was last sent is stored directly as
/// `SENDING` (one durable write before the KEX POST instead of three).
///
/// A mapping is the Europace partnerId of `{client_id}-{externeMitarbeiternummer}` under the
/// environment's Tippgeber parent, with the fingerprints of what was last sent to it
/// ([`TippgeberMapping`]). The fingerprints, not the values: the copy holds no more personal data
/// than the store does.
#[derive(Debug, Default)]
struct TippgeberCache(Mutex<HashMap<String, [Option<CachedTippgeber>; 2]>>);

impl TippgeberCache {
    /// The slot of an environment in a key's entry.
    const fn slot(environment: Environment) -> usize {
        match environment {
            Environment::Test => 0,
            Environment::Production => 1,
        }
    }

    /// The mapping, if learnt less than [`TIPPGEBER_CACHE_TTL`] before `now`.
    fn get(
        &self,
        environment: Environment,
        externe_partner_id: &str,
        now: Instant,
    ) -> Option<Arc<TippgeberMapping>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(externe_partner_id)?[Self::slot(environment)]
            .as_ref()
            .filter(|cached| now.saturating_duration_since(cached.learnt) < TIPPGEBER_CACHE_TTL)
            .map(|cached| cached.mapping.clone())
    }

    fn put(
        &self,
        environment: Environment,
        externe_partner_id: &str,
        mapping: Arc<TippgeberMapping>,
        now: Instant,
    ) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= TIPPGEBER_CACHE_MAX && !map.contains_key(externe_partner_id) {
            map.clear();
        }
        map.entry(externe_partner_id.to_owned()).or_default()[Self::slot(environment)] =
            Some(CachedTippgeber {
                mapping,
                learnt: now,
            });
    }
}

/// The outcome of the Tippgeber step: the partnerId for the KEX import, and whether changed
/// data could not be sent to Partnermanagement (then the import carries
/// [`TIPPGEBER_NOT_UPDATED`]).
#[derive(Debug)]
struct TippgeberReady {
    partner_id: String,
    not_updated: bool,
}

/// Records `id` as the field `drkleinrkVorgangsnummer` of the current tracing span: a caller
/// whose request span declares that field gets the import's id on every later log line of the
/// request. Does nothing for a span without the field, or outside any span.
fn name_in_span(id: Uuid) {
    tracing::Span::current().record("drkleinrkVorgangsnummer", tracing::field::display(id));
}

/// The import use case. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Importer {
    config: Arc<ImporterConfig>,
    /// Stores every state change; also the operator's door ([`Importer::resolver`]).
    resolver: Resolver,
    partners: Arc<dyn PartnerDirectory>,
    kex: Arc<dyn KexImporter>,
    ids: Arc<dyn IdGenerator>,
    /// Imports this process is driving right now: [`Importer::resume_stale`] never takes them
    /// over, however long a step takes (Europace timeouts and retries can exceed the stale
    /// window).
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
    /// Tippgeber mappings known to this process.
    tippgeber: Arc<TippgeberCache>,
    /// Re-delivery of queued imports.
    delivery: DeliveryPolicy,
}

/// Marks an import as driven by this process until dropped.
struct InFlight {
    set: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
    id: Uuid,
}

impl InFlight {
    /// `None` if this process is already driving the import.
    fn claim(
        set: &Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
        id: Uuid,
    ) -> Option<Self> {
        let inserted = set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id);
        inserted.then(|| Self {
            set: set.clone(),
            id,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Importer {
    /// An importer over these ports.
    #[must_use]
    pub fn new(config: ImporterConfig, ports: Ports) -> Self {
        Self {
            config: Arc::new(config),
            resolver: Resolver::new(ports.store, ports.crm, ports.clock),
            partners: ports.partners,
            kex: ports.kex,
            ids: ports.ids,
            in_flight: Arc::default(),
            tippgeber: Arc::default(),
            delivery: DeliveryPolicy::default(),
        }
    }

    /// The same importer with this re-delivery policy for `QUEUED` imports (default:
    /// [`DeliveryPolicy::default`]).
    #[must_use]
    pub fn with_delivery(mut self, delivery: DeliveryPolicy) -> Self {
        self.delivery = delivery;
        self
    }

    /// The re-delivery policy.
    #[must_use]
    pub const fn delivery(&self) -> &DeliveryPolicy {
        &self.delivery
    }

    /// The operator's use case over the same store, CRM and clock (for the server's background
    /// purge and scrub).
    #[must_use]
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    fn store(&self) -> &Arc<dyn ImportStore> {
        self.resolver.store()
    }

    /// Accepts a validated request, stores it and drives it as far as it goes.
    ///
    /// Returns the stored import; its [`ImportStatus`] tells the outcome (`COMPLETED`, `FAILED`
    /// with a [`Failure`], `IN_DOUBT`). With an idempotency key seen before for the same body, the
    /// earlier import is returned unchanged, except that one that `FAILED` because Europace was
    /// unavailable is attempted again under the same id.
    ///
    /// Durable writes: an import whose Tippgeber this process knows (from an earlier import, or
    /// the store) with the data last sent to Europace is stored directly as `SENDING`, and
    /// Europace's outcome with the CRM id is one more write: two in all. An unknown Tippgeber, or
    /// one whose data changed (its partner is updated before the import is sent), adds the
    /// `ACCEPTED` insert and the mapping.
    /// `PARTNER_READY` and `IMPORTED` are stored only by the paths that need them (an import
    /// stored by an earlier build; a CRM that is not in-process, see
    /// [`CrmIds::kennung_in_process`]).
    ///
    /// If another writer took the import over while this call drove it (another replica's
    /// background pass takes over imports unchanged for longer than its stale window, which a
    /// partner step with retries can exceed), waits up to [`TAKEOVER_WAIT`] for that writer's
    /// outcome ([`Importer::outcome`]): answering "still in progress" would invite a partner
    /// without `Idempotency-Key` to send the lead again and create a second case. Only then may
    /// the import come back unfinished. The wait needs a Tokio runtime.
    ///
    /// # Errors
    /// See [`ImportError`]: nothing was stored for `IdempotencyKeyReused`, `InProgress` and `Store`;
    /// `Unfinished` carries the import as it was stored before the database failed.
    pub async fn submit(&self, new: NewImport<'_>) -> Result<Submitted, ImportError> {
        let trace = new.trace;
        let (record, replayed) = TraceContext::within(trace, self.accept(new)).await?;
        let record = if record.status.is_in_progress() {
            self.settle(record, Instant::now() + TAKEOVER_WAIT).await
        } else {
            record
        };
        Ok(Submitted { record, replayed })
    }

    /// The Tippgeber mapping this process knows for `externe_partner_id` (learnt less than
    /// [`TIPPGEBER_CACHE_TTL`] ago), else the stored one (then remembered).
    ///
    /// # Errors
    /// The store could not be read.
    async fn known_tippgeber(
        &self,
        environment: Environment,
        externe_partner_id: &str,
    ) -> Result<Option<Arc<TippgeberMapping>>, StoreError> {
        let now = Instant::now();
        if let Some(known) = self.tippgeber.get(environment, externe_partner_id, now) {
            return Ok(Some(known));
        }
        let Some(stored) = self
            .store()
            .tippgeber_partner(environment, externe_partner_id)
            .await?
        else {
            return Ok(None);
        };
        let stored = Arc::new(stored);
        self.tippgeber
            .put(environment, externe_partner_id, stored.clone(), now);
        Ok(Some(stored))
    }

    /// Stores the import and drives it; the flag tells whether an earlier import was replayed.
    async fn accept(&self, new: NewImport<'_>) -> Result<(ImportRecord, bool), ImportError> {
        let queue = new.respond_async;
        let mut record = ImportRecord::accepted(
            self.ids.new_id(),
            new.client_id,
            new.environment,
            new.idempotency_key,
            fingerprint(new.environment, new.raw_body),
            new.request,
            self.resolver.now(),
        );
        // Stored before anything is sent; with the Tippgeber known and its data as last sent, the
        // insert itself is the durable `SENDING` that must precede the KEX POST
        // (docs/reference/import-states.md). A crash right after it leaves a `SENDING` import
        // that nothing was sent for: the resume makes it `IN_DOUBT`, for an operator to resolve
        // as failed (docs/operations.md) — never a second POST. Changed data stays `ACCEPTED`:
        // the Tippgeber step updates the partner first, and "stored before anything is sent"
        // holds for that `PATCH` too.
        if let (Some(known), Some(request)) = (
            self.known_tippgeber(record.environment, &record.tippgeber_externe_partner_id)
                .await?,
            &record.request,
        ) && TippgeberUpdate::between(
            record.environment,
            &record.tippgeber_externe_partner_id,
            &known,
            &request.tippgeber,
        )
        .is_empty()
        {
            record.status = ImportStatus::Sending;
            record.tippgeber_partner_id = Some(known.partner_id.clone());
        }
        // Claimed before it is stored: no resume pass of this process can take it over between
        // the insert and its first step. A fresh id is claimed by nobody else.
        let claim = InFlight::claim(&self.in_flight, record.id);
        match self.store().insert(&record).await? {
            InsertOutcome::Inserted => {
                name_in_span(record.id);
                // Debug: the outcome's `import state stored` (info) names the import, the request's
                // span its client; a line per step would cost every import its formatting.
                tracing::debug!(import = %record.id, client = %record.client_id, environment = %record.environment, status = %record.status, "import accepted");
                let _claim = claim;
                Ok((self.drive_stored(record, queue).await?, false))
            }
            InsertOutcome::IdempotencyKeyExists(existing) => {
                drop(claim);
                name_in_span(existing.id);
                self.on_repeated_key(*existing, record, queue).await
            }
        }
    }

    /// The answer to a request repeating an idempotency key, and whether it replays the earlier
    /// import (`false` only when this request retried it).
    async fn on_repeated_key(
        &self,
        existing: ImportRecord,
        attempt: ImportRecord,
        queue: bool,
    ) -> Result<(ImportRecord, bool), ImportError> {
        if existing.fingerprint != attempt.fingerprint {
            return Err(ImportError::IdempotencyKeyReused);
        }
        match existing.status {
            status if status.is_in_progress() => Err(ImportError::InProgress {
                id: existing.id,
                status,
            }),
            ImportStatus::Failed
                if existing
                    .failure
                    .as_ref()
                    .is_some_and(|f| f.kind == FailureKind::Unavailable) =>
            {
                // `attempt` is SENDING when the Tippgeber is known: the retry starts there too.
                let retry = ImportRecord {
                    status: attempt.status,
                    tippgeber_partner_id: attempt
                        .tippgeber_partner_id
                        .or_else(|| existing.tippgeber_partner_id.clone()),
                    request: attempt.request,
                    failure: None,
                    messages: attempt.messages,
                    attempts: existing.attempts.saturating_add(1),
                    updated_at: self.resolver.now(),
                    ..existing.clone()
                };
                let Some(_claim) = InFlight::claim(&self.in_flight, retry.id) else {
                    // This process is retrying it right now: answer by the state it is in.
                    return Ok((self.answer_current(&existing).await?, true));
                };
                // The import exists (FAILED, retryable): a store error here changed nothing, and
                // the answer names the import as it stands.
                match self.resolver.save(&existing, &retry).await {
                    Ok(true) => {
                        tracing::info!(import = %retry.id, attempt = retry.attempts, "retrying import after Europace was unavailable");
                        Ok((self.drive_stored(retry, queue).await?, false))
                    }
                    // A concurrent retry of the same key won: answer as a request arriving now
                    // would be answered, by the state it left.
                    Ok(false) => Ok((self.answer_current(&existing).await?, true)),
                    Err(source) => Err(Resolver::unfinished(&existing, source)),
                }
            }
            _ => Ok((existing, true)),
        }
    }

    /// The answer for a repeated key whose import another writer moved on: the import as stored
    /// now, or [`ImportError::InProgress`] while it runs.
    async fn answer_current(&self, known: &ImportRecord) -> Result<ImportRecord, ImportError> {
        let current = self.resolver.current_or_unfinished(known).await?;
        if current.status.is_in_progress() {
            Err(ImportError::InProgress {
                id: current.id,
                status: current.status,
            })
        } else {
            Ok(current)
        }
    }

    /// Waits until import `id` is out of progress ([`ImportStatus::is_in_progress`]) or
    /// `deadline` passes, and returns it as then stored. For an answer that should carry
    /// Europace's outcome of an import another writer is driving. Polls the store every 200 ms;
    /// needs a Tokio runtime.
    ///
    /// # Errors
    /// [`ImportError::NotFound`] and [`ImportError::Store`] for the first read; a later failing
    /// read ends the wait with the import as last read.
    pub async fn outcome(&self, id: Uuid, deadline: Instant) -> Result<ImportRecord, ImportError> {
        let record = self.resolver.current(id).await?;
        Ok(self.settle(record, deadline).await)
    }

    async fn settle(&self, mut record: ImportRecord, deadline: Instant) -> ImportRecord {
        while record.status.is_in_progress() && Instant::now() < deadline {
            tokio::time::sleep(OUTCOME_POLL).await;
            match self.store().get(record.id).await {
                Ok(Some(current)) => record = current,
                Ok(None) | Err(_) => break,
            }
        }
        record
    }

    /// Import `id` if it belongs to `client_id`. Another client's import is
    /// [`ImportError::NotFound`], exactly like a missing one, so ids cannot be probed.
    ///
    /// # Errors
    /// [`ImportError::NotFound`], [`ImportError::Store`].
    pub async fn get_for_client(
        &self,
        client_id: &str,
        id: Uuid,
    ) -> Result<ImportRecord, ImportError> {
        match self.store().get(id).await? {
            Some(record) if record.client_id == client_id => Ok(record),
            _ => Err(ImportError::NotFound),
        }
    }

    /// One page of `client_id`'s own imports matching `query`, oldest first. The client filter
    /// is set here, whatever `query.client_id` says.
    ///
    /// # Errors
    /// [`ImportError::Store`].
    pub async fn list_for_client(
        &self,
        client_id: &str,
        query: ImportQuery,
    ) -> Result<ImportPage, ImportError> {
        self.resolver
            .list(ImportQuery {
                client_id: Some(client_id.to_owned()),
                ..query
            })
            .await
    }

    /// Whether this replica can take imports: the store commits a write (see
    /// [`ImportStore::ping`]). For the readiness probe.
    ///
    /// # Errors
    /// [`ImportError::Store`] when the write fails.
    pub async fn ready(&self) -> Result<(), ImportError> {
        Ok(self.store().ping().await?)
    }

    /// Drives a stored import through its remaining steps, storing each durable state before the
    /// next step. Returns the import as last stored. If another process changed the import
    /// meanwhile, returns what is stored now without touching it.
    ///
    /// `ACCEPTED` and `PARTNER_READY` imports go on to the Tippgeber step and the KEX import,
    /// `IMPORTED` ones to the CRM step. A `SENDING` import handed in is returned as it is: it may
    /// have reached Europace, and only the call that stored it as `SENDING` sends it.
    ///
    /// # Errors
    /// [`ImportError::Unfinished`] when a state could not be stored: the import stays in its last
    /// stored state (carried by the error) and is resumed later.
    pub async fn advance(&self, record: ImportRecord) -> Result<ImportRecord, ImportError> {
        let Some(_in_flight) = InFlight::claim(&self.in_flight, record.id) else {
            // Already driven by another task of this process: report what is stored.
            return self.resolver.current_or_unfinished(&record).await;
        };
        // A queued import (notified from its 202 on) is queued again while Europace is down.
        let queue = record.notify;
        self.drive(record, queue).await
    }

    /// Drives an import this call has just stored (inserted, or moved to its state by a
    /// compare-and-set), holding its in-flight claim: a `SENDING` one is sent.
    async fn drive_stored(
        &self,
        record: ImportRecord,
        queue: bool,
    ) -> Result<ImportRecord, ImportError> {
        if record.status == ImportStatus::Sending {
            self.send(record, queue).await
        } else {
            self.drive(record, queue).await
        }
    }

    /// The steps after a stored state, the in-flight claim held by the caller. With `queue`, an
    /// import Europace cannot take now is kept `QUEUED` instead of `FAILED`.
    async fn drive(&self, record: ImportRecord, queue: bool) -> Result<ImportRecord, ImportError> {
        let step = match record.status {
            ImportStatus::Accepted => {
                let found = match &record.request {
                    Some(request) => match self.ensure_tippgeber(&record, &request.tippgeber).await
                    {
                        Ok(Ok(ready)) => Ok(ready),
                        Ok(Err(error)) => {
                            tracing::warn!(import = %record.id, error = %error, "Tippgeber step failed");
                            if queue && let Some(retry_after) = Self::unavailable(&error) {
                                return self.requeue(record, &error, retry_after).await;
                            }
                            Err(Self::failure_of(&error))
                        }
                        Err(source) => return Err(Resolver::unfinished(&record, source)),
                    },
                    // Only a manual edit of the database gets here: every import is stored with
                    // its request, dropped only when it finishes. Failed rather than guessed at.
                    None => Err(Failure::new(
                        FailureKind::Rejected,
                        "stored import has no request; nothing was sent",
                    )),
                };
                match found {
                    // `PARTNER_READY` is not stored: the partnerId goes into the row with
                    // `SENDING`, the state the KEX POST needs durable, and so does the warning
                    // of a Tippgeber update that failed.
                    Ok(ready) => {
                        self.resolver
                            .advance_to(record, |next| {
                                next.status = ImportStatus::Sending;
                                next.tippgeber_partner_id = Some(ready.partner_id);
                                if ready.not_updated {
                                    next.messages.push(TIPPGEBER_NOT_UPDATED.to_owned());
                                }
                            })
                            .await?
                    }
                    Err(failure) => {
                        self.resolver
                            .advance_to(record, |next| {
                                next.status = ImportStatus::Failed;
                                next.failure = Some(failure);
                            })
                            .await?
                    }
                }
            }
            // Stored by a build that kept this state durable: on to `SENDING`.
            ImportStatus::PartnerReady => {
                self.resolver
                    .advance_to(record, |next| next.status = ImportStatus::Sending)
                    .await?
            }
            ImportStatus::Imported => return self.resolver.complete(record).await,
            _ => return Ok(record),
        };
        match step {
            Step::Stored(stored) if stored.status == ImportStatus::Sending => {
                self.send(stored, queue).await
            }
            Step::Stored(stored) => Ok(stored),
            // Another writer changed the import: leave it to them, report what is stored.
            Step::Overtaken(last) => self.resolver.current_or_unfinished(&last).await,
        }
    }

    fn failure_of(error: &EuropaceError) -> Failure {
        let kind = match error {
            EuropaceError::Unavailable { .. } => FailureKind::Unavailable,
            EuropaceError::InDoubt { .. } => FailureKind::InDoubt,
            EuropaceError::Rejected { .. } | EuropaceError::Protocol { .. } => {
                FailureKind::Rejected
            }
        };
        let europace_messages = match error {
            EuropaceError::Rejected { messages, .. } => messages.clone(),
            _ => EuropaceMessages::default(),
        };
        Failure {
            europace_messages,
            // The error's text names statuses and counts, never Europace's messages.
            ..Failure::new(kind, error.to_string())
        }
    }

    /// The Tippgeber step (docs/reference/import-states.md, step 2): the Tippgeber's partnerId,
    /// stored from an earlier import, found at Europace under the environment's parent, or
    /// created there; then, if its data differs from what was last sent to that partner, the
    /// changed attributes are sent (`PATCH`). The outer error is our store's (the import stays as
    /// it is), the inner one Europace's finding or creating the partner (the import fails). A
    /// failed update only sets [`TippgeberReady::not_updated`]: the import goes on with the
    /// partner as it is, and the next import of the Tippgeber tries again (what was sent is
    /// remembered only after Europace took it).
    async fn ensure_tippgeber(
        &self,
        record: &ImportRecord,
        tippgeber: &Tippgeber,
    ) -> Result<Result<TippgeberReady, EuropaceError>, StoreError> {
        let environment = record.environment;
        let externe = &record.tippgeber_externe_partner_id;
        let trace = TraceId::for_import(record.id);
        // The store, not this process's copy: another replica may have sent the same change
        // meanwhile (then nothing is left to send), and this step is rare (a new Tippgeber,
        // changed data, a resumed import).
        let stored = self.store().tippgeber_partner(environment, externe).await?;
        let learnt = stored.is_none();
        let mut mapping = match stored {
            Some(mapping) => mapping,
            None => match self.find_or_create(record, tippgeber, &trace).await {
                Ok(mapping) => mapping,
                Err(error) => return Ok(Err(error)),
            },
        };
        let update = TippgeberUpdate::between(environment, externe, &mapping, tippgeber);
        let mut updated = false;
        let mut not_updated = false;
        if !update.is_empty() {
            // `update`'s Debug names the attributes, never their values.
            match self
                .partners
                .update_tippgeber(&mapping.partner_id, &update, &trace)
                .await
            {
                Ok(()) => {
                    tracing::info!(
                        import = %record.id,
                        partner_id = %mapping.partner_id,
                        attributes = ?update,
                        "Tippgeber updated at Europace"
                    );
                    mapping.record_sent(environment, externe, &update);
                    updated = true;
                }
                Err(error) => {
                    tracing::warn!(
                        import = %record.id,
                        partner_id = %mapping.partner_id,
                        attributes = ?update,
                        error = %error,
                        "Tippgeber could not be updated at Europace; the import goes on with the partner as it is"
                    );
                    not_updated = true;
                }
            }
        }
        if learnt || updated {
            self.store()
                .save_tippgeber_partner(environment, externe, &mapping)
                .await?;
        }
        let partner_id = mapping.partner_id.clone();
        self.tippgeber
            .put(environment, externe, Arc::new(mapping), Instant::now());
        Ok(Ok(TippgeberReady {
            partner_id,
            not_updated,
        }))
    }

    /// The Tippgeber's partner at Europace: the one found under the environment's parent (what
    /// it holds is unknown, so everything counts as changed), else a new one created with the
    /// request's data (which is then what was sent).
    async fn find_or_create(
        &self,
        record: &ImportRecord,
        tippgeber: &Tippgeber,
        trace: &TraceId,
    ) -> Result<TippgeberMapping, EuropaceError> {
        let externe = &record.tippgeber_externe_partner_id;
        let parent = self.config.tippgeber_parent(record.environment);
        let found = self
            .partners
            .find_by_externe_partner_id(externe, trace)
            .await?
            .into_iter()
            .find(|p| p.parent_partner_id.as_deref() == Some(parent));
        if let Some(found) = found {
            return Ok(TippgeberMapping::found(found.partner_id));
        }
        let partner_id = self
            .partners
            .create_tippgeber(parent, externe, tippgeber, trace)
            .await?;
        Ok(TippgeberMapping::created(
            record.environment,
            externe,
            partner_id,
            tippgeber,
        ))
    }

    /// Sends an import this call has stored as `SENDING` and stores the outcome: `COMPLETED`
    /// with Europace's Vorgangsnummer and the CRM id in one write when the CRM id is at hand
    /// ([`CrmIds::kennung_in_process`]), else `IMPORTED` and then the CRM step; `FAILED` or
    /// `IN_DOUBT` when Europace failed.
    async fn send(&self, sending: ImportRecord, queue: bool) -> Result<ImportRecord, ImportError> {
        let body = match (&sending.request, &sending.tippgeber_partner_id) {
            (Some(request), Some(partner_id)) => KexBody::build(
                request,
                sending.id,
                &self.config.kundenbetreuer_partner_id,
                partner_id,
            )
            .map_err(|_| "KEX body could not be written"),
            // Only a manual edit of the database gets here (see `drive`).
            _ => Err("stored import has no request or Tippgeber partnerId"),
        };
        let body = match body {
            Ok(body) => body,
            Err(detail) => {
                tracing::error!(import = %sending.id, detail, "import failed before sending");
                let failure =
                    Failure::new(FailureKind::Rejected, format!("{detail}; nothing was sent"));
                return self
                    .finish_sent(sending, ImportStatus::Failed, |next| {
                        next.failure = Some(failure);
                    })
                    .await;
            }
        };
        let trace = TraceId::for_import(sending.id);
        let outcome = self.kex.import(sending.environment, &body, &trace).await;
        drop(body);
        match outcome {
            Ok(imported) => {
                let kennung = self.resolver.kennung_in_process(&sending);
                let status = if kennung.is_some() {
                    ImportStatus::Completed
                } else {
                    ImportStatus::Imported
                };
                self.finish_sent(sending, status, |next| {
                    europace_first(next, imported.messages);
                    next.europace_vorgangsnummer = Some(imported.vorgangsnummer);
                    next.crm_kennung = kennung;
                })
                .await
            }
            Err(error) => {
                tracing::warn!(import = %sending.id, error = %error, "KEX import failed");
                // Unavailable: Europace created nothing (its contract), so the import may wait
                // for another attempt. InDoubt never does (below).
                if queue && let Some(retry_after) = Self::unavailable(&error) {
                    return self.requeue(sending, &error, retry_after).await;
                }
                let status = match error {
                    EuropaceError::InDoubt { .. } | EuropaceError::Protocol { .. } => {
                        ImportStatus::InDoubt
                    }
                    EuropaceError::Rejected { .. } | EuropaceError::Unavailable { .. } => {
                        ImportStatus::Failed
                    }
                };
                let mut failure = Self::failure_of(&error);
                if status == ImportStatus::InDoubt {
                    failure.kind = FailureKind::InDoubt;
                }
                self.finish_sent(sending, status, |next| {
                    // An import in doubt is answered 504 (or was answered 202 before): from
                    // now on its outcome (an operator's decision) goes to the webhook.
                    if status == ImportStatus::InDoubt {
                        next.notify = true;
                    }
                    // Europace's reasons for a refusal are the import's messages too, before
                    // ours, as Europace's messages come first in a 201 (`GET /vorgang/{id}`).
                    europace_first(next, failure.europace_messages.as_slice().to_vec());
                    next.failure = Some(failure);
                })
                .await
            }
        }
    }

    /// `Some(Retry-After)` when `error` proves that Europace created nothing and may take the
    /// import later (5xx, 429, no connection).
    fn unavailable(error: &EuropaceError) -> Option<Option<Duration>> {
        match error {
            EuropaceError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Keeps `record` (`ACCEPTED` or `SENDING`, nothing created at Europace) as `QUEUED` for
    /// re-delivery after the backoff of its attempts, or `FAILED` once it is older than
    /// [`DeliveryPolicy::max_age`]. The partner is told by webhook from now on (`notify`).
    async fn requeue(
        &self,
        record: ImportRecord,
        error: &EuropaceError,
        retry_after: Option<Duration>,
    ) -> Result<ImportRecord, ImportError> {
        let now = self.resolver.now();
        let failure = Self::failure_of(error);
        let age = (now - record.created_at).to_std().unwrap_or_default();
        let wait = self.delivery.backoff(record.attempts, retry_after);
        let next_attempt = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        let expires = record.created_at
            + chrono::Duration::from_std(self.delivery.max_age).unwrap_or(chrono::Duration::MAX);
        let (status, next_attempt_at) = if age >= self.delivery.max_age || next_attempt > expires {
            tracing::warn!(import = %record.id, attempts = record.attempts, "queued import expires (delivery.max_age_s): FAILED");
            (ImportStatus::Failed, None)
        } else {
            tracing::info!(import = %record.id, attempts = record.attempts, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "Europace unavailable: import queued for re-delivery");
            (ImportStatus::Queued, Some(next_attempt))
        };
        let step = self
            .resolver
            .advance_to(record, |next| {
                next.status = status;
                next.failure = Some(failure);
                next.notify = true;
                next.next_attempt_at = next_attempt_at;
            })
            .await?;
        match step {
            Step::Stored(stored) => Ok(stored),
            Step::Overtaken(last) => self.resolver.current_or_unfinished(&last).await,
        }
    }

    /// Claims the `QUEUED` imports due now (at most `limit`, exclusive across replicas, see
    /// [`ImportStore::claim_queued`]) and delivers each: those older than
    /// [`DeliveryPolicy::max_age`] become `FAILED`, the others are driven on like a new import
    /// (`COMPLETED`, `FAILED` if Europace refuses, `IN_DOUBT` if its answer is lost, or `QUEUED`
    /// again while it is unavailable). Returns the imports as they ended. For the server's
    /// background task.
    ///
    /// # Errors
    /// [`ImportError::Store`] if nothing could be claimed; a failure of one import is logged and
    /// leaves it to the resume.
    pub async fn deliver_queued(&self, limit: u32) -> Result<Vec<ImportRecord>, ImportError> {
        let now = self.resolver.now();
        let claimed = self.store().claim_queued(now, limit).await?;
        // All at once: a batch takes one Europace round trip, not one per import, and each is in
        // flight here (never taken over by this process's resume) from its start.
        let mut running = tokio::task::JoinSet::new();
        for record in claimed {
            let importer = self.clone();
            running.spawn(async move { importer.deliver_one(record, now).await });
        }
        let mut delivered = Vec::with_capacity(running.len());
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok(Ok(record)) => delivered.push(record),
                Ok(Err(error)) => {
                    tracing::error!(error = %error, "could not deliver a queued import");
                }
                // A panic in a step: the import stays as last stored, for the resume.
                Err(error) => tracing::error!(error = %error, "a delivery task failed"),
            }
        }
        Ok(delivered)
    }

    /// Delivers one claimed import (see [`Importer::deliver_queued`]).
    async fn deliver_one(
        &self,
        record: ImportRecord,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<ImportRecord, ImportError> {
        let age = (now - record.created_at).to_std().unwrap_or_default();
        if age >= self.delivery.max_age {
            let failure = Failure::new(
                FailureKind::Unavailable,
                "queued longer than delivery.max_age_s; nothing was created",
            );
            let failed = self
                .resolver
                .finish(record.clone(), ImportStatus::Failed, Some(failure));
            return match self.resolver.save(&record, &failed).await {
                Ok(_) => self.resolver.current(record.id).await,
                Err(source) => Err(Resolver::unfinished(&record, source)),
            };
        }
        tracing::info!(import = %record.id, attempt = record.attempts, "re-delivering queued import");
        self.advance(record).await
    }

    /// Stores the outcome of a `SENDING` import (`status`, plus `edit`), then runs the CRM step
    /// if it is `IMPORTED`. A store error leaves the import `SENDING`: the resume makes it
    /// `IN_DOUBT`, never sending it again.
    async fn finish_sent(
        &self,
        sending: ImportRecord,
        status: ImportStatus,
        edit: impl FnOnce(&mut ImportRecord),
    ) -> Result<ImportRecord, ImportError> {
        let step = self
            .resolver
            .advance_to(sending, |next| {
                next.status = status;
                edit(next);
            })
            .await?;
        match step {
            Step::Stored(stored) if stored.status == ImportStatus::Imported => {
                self.resolver.complete(stored).await
            }
            Step::Stored(stored) => Ok(stored),
            Step::Overtaken(last) => self.resolver.current_or_unfinished(&last).await,
        }
    }

    /// Resumes imports a crash left behind, if they were last changed before `stale_after` ago:
    /// `ACCEPTED` and `PARTNER_READY` ones are driven on, `IMPORTED` ones get their CRM id, and
    /// `SENDING` ones become `IN_DOUBT` (their KEX import may have reached Europace).
    /// Returns the imports touched, as they ended.
    ///
    /// Reads only the stale unfinished imports ([`ImportStore::list_stale`]), never the finished
    /// ones, so a pass costs what there is to resume. `SENDING` ones go first: they need no
    /// Europace call and should show as `IN_DOUBT` as early as possible.
    ///
    /// # Errors
    /// [`ImportError::Store`] if the store cannot be read.
    pub async fn resume_stale(
        &self,
        stale_after: Duration,
    ) -> Result<Vec<ImportRecord>, ImportError> {
        let cutoff = self.resolver.now()
            - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::zero());
        let mut stale = self.store().list_stale(cutoff).await?;
        // Stable: within each state, oldest change first as listed.
        stale.sort_by_key(|record| match record.status {
            ImportStatus::Sending => 0,
            ImportStatus::Accepted => 1,
            ImportStatus::PartnerReady => 2,
            _ => 3,
        });
        let mut touched = Vec::new();
        for record in stale {
            if self.is_in_flight(record.id) {
                continue;
            }
            let result = if record.status == ImportStatus::Sending {
                let failure = Failure::new(FailureKind::InDoubt, "found SENDING after a restart");
                let doubt =
                    self.resolver
                        .finish(record.clone(), ImportStatus::InDoubt, Some(failure));
                match self.resolver.save(&record, &doubt).await {
                    Ok(_) => self.resolver.current(doubt.id).await,
                    Err(e) => Err(ImportError::Store(e)),
                }
            } else {
                self.advance(record).await
            };
            match result {
                Ok(record) => touched.push(record),
                Err(error) => tracing::error!(error = %error, "could not resume an import"),
            }
        }
        Ok(touched)
    }

    fn is_in_flight(&self, id: Uuid) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&id)
    }

    /// Applies an operator's decision to an `IN_DOUBT` import: [`Resolver::resolve`].
    ///
    /// # Errors
    /// As [`Resolver::resolve`].
    pub async fn resolve(
        &self,
        id: Uuid,
        resolution: Resolution,
    ) -> Result<ImportRecord, ImportError> {
        self.resolver.resolve(id, resolution).await
    }
}

/// Puts Europace's messages before the import's own (the order of every answer that carries
/// both: Europace's first).
fn europace_first(record: &mut ImportRecord, europace: Vec<String>) {
    if europace.is_empty() {
        return;
    }
    let ours = std::mem::replace(&mut record.messages, europace);
    record.messages.extend(ours);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_mapping_is_trusted_for_a_minute_per_environment() {
        let cache = TippgeberCache::default();
        let learnt = Instant::now();
        let mapping = Arc::new(TippgeberMapping::found("TG1"));
        cache.put(Environment::Test, "c-1", mapping.clone(), learnt);
        let later = |by: Duration| learnt + by;
        assert_eq!(
            cache.get(Environment::Test, "c-1", later(Duration::from_secs(59))),
            Some(mapping)
        );
        assert_eq!(cache.get(Environment::Production, "c-1", learnt), None);
        assert_eq!(cache.get(Environment::Test, "c-2", learnt), None);
        assert_eq!(
            cache.get(Environment::Test, "c-1", later(TIPPGEBER_CACHE_TTL)),
            None,
            "read from the store again after the TTL"
        );
    }
}
