//! The operator's use case, and the state keeping every writer of imports shares.
//!
//! An operator decides `IN_DOUBT` imports, lists imports and purges old ones. None of that talks
//! to Europace, so a [`Resolver`] holds only the store, the CRM and the clock: the operator CLI
//! builds one without any Europace adapter (and without a test double standing in for one). The
//! [`Importer`](crate::Importer) holds one too and stores every state change through it, so the
//! rules of a state change (compare-and-set, what a change writes, the error after a failed
//! write) exist once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::change::{BodyChange, DeliveryChange, ImportChange};
use crate::error::ImportError;
use crate::ports::{Clock, CrmIds, ImportStore, StoreError};
use crate::query::{ImportCursor, ImportPage, ImportQuery};
use crate::record::{Failure, FailureKind, ImportRecord, ImportStatus};
use crate::webhook::WebhookEvent;

/// An operator's decision on an `IN_DOUBT` import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The case exists at Europace under this Vorgangsnummer: finish the import.
    Imported {
        /// Europace's Vorgangsnummer.
        europace_vorgangsnummer: String,
    },
    /// No case was created: mark the import failed.
    Failed,
}

/// The result of [`Resolver::advance_to`]: the next state was stored, or another writer had
/// changed the import first.
pub(crate) enum Step {
    /// The import as now stored.
    Stored(ImportRecord),
    /// Nothing stored: the import as this writer last knew it (the store holds something newer).
    Overtaken(ImportRecord),
}

/// Operator decisions and maintenance over stored imports: resolve `IN_DOUBT` ones, list, purge,
/// scrub. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    store: Arc<dyn ImportStore>,
    crm: Arc<dyn CrmIds>,
    clock: Arc<dyn Clock>,
}

impl Resolver {
    /// A resolver over these ports.
    #[must_use]
    pub fn new(store: Arc<dyn ImportStore>, crm: Arc<dyn CrmIds>, clock: Arc<dyn Clock>) -> Self {
        Self { store, crm, clock }
    }

    /// Applies an operator's decision to an `IN_DOUBT` import. An import resolved as imported
    /// gets its CRM id and is `COMPLETED`; if the CRM is unavailable it stays `IMPORTED` and a
    /// server's background pass finishes it.
    ///
    /// # Errors
    /// [`ImportError::NotFound`], [`ImportError::WrongState`] if it is not (or no longer)
    /// `IN_DOUBT`, [`ImportError::Store`] if the decision could not be stored,
    /// [`ImportError::Unfinished`] if the decision was stored but the CRM step's state was not.
    pub async fn resolve(
        &self,
        id: Uuid,
        resolution: Resolution,
    ) -> Result<ImportRecord, ImportError> {
        let record = self.current(id).await?;
        if record.status != ImportStatus::InDoubt {
            return Err(ImportError::WrongState(record.status));
        }
        let next = match resolution {
            Resolution::Imported {
                europace_vorgangsnummer,
            } => {
                let mut next = record.clone();
                next.europace_vorgangsnummer = Some(europace_vorgangsnummer);
                self.finish(next, ImportStatus::Imported, None)
            }
            Resolution::Failed => {
                let failure = Failure::new(FailureKind::Operator, "marked failed by an operator");
                self.finish(record.clone(), ImportStatus::Failed, Some(failure))
            }
        };
        if !self.save(&record, &next).await? {
            return Err(ImportError::WrongState(self.current(id).await?.status));
        }
        self.complete(next).await
    }

    /// One page of imports matching `query` (see [`ImportQuery`]); [`ImportPage::next`] is set
    /// exactly when more imports follow.
    ///
    /// # Errors
    /// [`ImportError::Store`].
    pub async fn list(&self, query: ImportQuery) -> Result<ImportPage, ImportError> {
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        // One more than asked tells whether a next page exists without a second query.
        let probe = ImportQuery {
            limit: query.limit.saturating_add(1),
            ..query
        };
        let mut items = self.store.list(&probe).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(ImportCursor::of)
        } else {
            None
        };
        Ok(ImportPage { items, next })
    }

    /// How many imports are in `status` now (see [`ImportStore::count_by_status`]), e.g. for a
    /// gauge of the imports waiting for an operator (`IN_DOUBT`).
    ///
    /// # Errors
    /// [`ImportError::Store`].
    pub async fn count_by_status(&self, status: ImportStatus) -> Result<u64, ImportError> {
        Ok(self.store.count_by_status(status).await?)
    }

    /// Deletes finished imports last changed more than `retention` ago. Returns how many.
    ///
    /// Only `COMPLETED` and `FAILED` ones: `IN_DOUBT` imports wait for an operator and
    /// unfinished ones for the resume, however old. A retention below the 24-hour idempotency
    /// window would let a retried request create a second case; the settings refuse one.
    ///
    /// # Errors
    /// [`ImportError::Store`].
    pub async fn purge_finished(&self, retention: Duration) -> Result<u64, ImportError> {
        let cutoff: DateTime<Utc> =
            self.now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        Ok(self.store.purge_finished_before(cutoff).await?)
    }

    /// Makes request bodies the store has dropped unreadable on disk (see
    /// [`ImportStore::scrub`]); for the server's periodic background work.
    ///
    /// # Errors
    /// [`ImportError::Store`].
    pub async fn scrub(&self) -> Result<(), ImportError> {
        Ok(self.store.scrub().await?)
    }

    // --- shared with the Importer -------------------------------------------------------------

    pub(crate) fn store(&self) -> &Arc<dyn ImportStore> {
        &self.store
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// `record` moved to `status` with `failure`, as of now; a finished import drops its
    /// request body (personal data).
    pub(crate) fn finish(
        &self,
        mut record: ImportRecord,
        status: ImportStatus,
        failure: Option<Failure>,
    ) -> ImportRecord {
        record.status = status;
        record.failure = failure;
        if status.is_finished() {
            record.request = None;
        }
        record.updated_at = self.now();
        record
    }

    /// Stores `next` over the stored `last` (compare-and-set on `last.status`). `false` when
    /// another writer changed the import first.
    pub(crate) async fn save(
        &self,
        last: &ImportRecord,
        next: &ImportRecord,
    ) -> Result<bool, StoreError> {
        let event = self.event_for(last, next);
        let change = ImportChange::between(last, next).with_event(event.as_ref());
        let stored = self.store.transition(next.id, last.status, &change).await?;
        if stored {
            tracing::info!(import = %next.id, from = %last.status, to = %next.status, "import state stored");
        } else {
            tracing::warn!(import = %next.id, expected = %last.status, "import changed concurrently; leaving it to the other writer");
        }
        Ok(stored)
    }

    /// Stores the next state of `record` (what `edit` makes of it, as of now; a finished import
    /// drops its request body), compare-and-set on its current status.
    ///
    /// The step path of the importer: the request (the large part of a record, personal data)
    /// is moved, never copied or compared, and the store is told exactly what happens to the
    /// body (kept, or dropped when the import finishes).
    ///
    /// # Errors
    /// A store error: [`ImportError::Unfinished`] carrying `record` as it stays stored.
    pub(crate) async fn advance_to(
        &self,
        mut record: ImportRecord,
        edit: impl FnOnce(&mut ImportRecord),
    ) -> Result<Step, ImportError> {
        let request = record.request.take();
        let mut next = record.clone();
        edit(&mut next);
        next.updated_at = self.now();
        let finished = next.status.is_finished();
        let body = if finished && request.is_some() {
            BodyChange::Drop
        } else {
            BodyChange::Keep
        };
        let event = self.event_for(&record, &next);
        let mut change = ImportChange::of(&next, body).with_event(event.as_ref());
        change.delivery = DeliveryChange::between(&record, &next);
        let stored = self.store.transition(next.id, record.status, &change).await;
        match stored {
            Ok(true) => {
                // One info line per import on the hot path: its outcome. The steps before it
                // (`SENDING`) are debug; each costs a formatted line on every import.
                if next.status.is_in_progress() {
                    tracing::debug!(import = %next.id, from = %record.status, to = %next.status, "import state stored");
                } else {
                    tracing::info!(import = %next.id, from = %record.status, to = %next.status, "import state stored");
                }
                if !finished {
                    next.request = request;
                }
                Ok(Step::Stored(next))
            }
            Ok(false) => {
                tracing::warn!(import = %next.id, expected = %record.status, "import changed concurrently; leaving it to the other writer");
                record.request = request;
                Ok(Step::Overtaken(record))
            }
            Err(source) => {
                record.request = request;
                Err(Self::unfinished(&record, source))
            }
        }
    }

    /// The webhook event of the change from `last` to `next`: one when the partner's first
    /// answer was `202` or `504` (`last.notify`) and the import moves into `COMPLETED`, `FAILED`
    /// or `IN_DOUBT`. The change that sets `notify` (the answer itself) reports nothing: the
    /// partner is being told in that answer.
    fn event_for(&self, last: &ImportRecord, next: &ImportRecord) -> Option<WebhookEvent> {
        if !last.notify || last.status == next.status {
            return None;
        }
        let event = WebhookEvent::of(next, self.now())?;
        tracing::info!(import = %next.id, event = event.event_type.as_str(), webhook_id = %event.id, "webhook event for the state change");
        Some(event)
    }

    /// The CRM id of `record` if the CRM port has it at once ([`CrmIds::kennung_in_process`]).
    pub(crate) fn kennung_in_process(&self, record: &ImportRecord) -> Option<String> {
        self.crm.kennung_in_process(record)
    }

    /// The error for a store failure after `last_stored` was stored: logged once, here.
    pub(crate) fn unfinished(last_stored: &ImportRecord, source: StoreError) -> ImportError {
        tracing::error!(
            import = %last_stored.id,
            status = %last_stored.status,
            error = %source,
            "could not store the next state of an import; it stays as stored and is resumed later"
        );
        ImportError::Unfinished {
            record: Box::new(last_stored.clone()),
            source,
        }
    }

    /// The import as stored now.
    pub(crate) async fn current(&self, id: Uuid) -> Result<ImportRecord, ImportError> {
        self.store.get(id).await?.ok_or(ImportError::NotFound)
    }

    /// The import as stored now; if the store cannot be read, `known` (as last stored by us)
    /// carried by [`ImportError::Unfinished`].
    pub(crate) async fn current_or_unfinished(
        &self,
        known: &ImportRecord,
    ) -> Result<ImportRecord, ImportError> {
        match self.store.get(known.id).await {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(ImportError::NotFound),
            Err(source) => Err(Self::unfinished(known, source)),
        }
    }

    /// The CRM step of an `IMPORTED` import: `COMPLETED` with its CRM id. Any other import, or
    /// one whose CRM id is not available now (it stays `IMPORTED`, resumed later), is returned
    /// as it is. If another writer changed the import first, returns what is stored.
    pub(crate) async fn complete(&self, record: ImportRecord) -> Result<ImportRecord, ImportError> {
        if record.status != ImportStatus::Imported {
            return Ok(record);
        }
        let kennung = match self.crm.crm_kennung(&record).await {
            Ok(kennung) => kennung,
            Err(error) => {
                tracing::warn!(import = %record.id, error = %error, "CRM id not available; import stays IMPORTED");
                return Ok(record);
            }
        };
        let step = self
            .advance_to(record, |next| {
                next.crm_kennung = Some(kennung);
                next.status = ImportStatus::Completed;
                next.failure = None;
            })
            .await?;
        match step {
            Step::Stored(completed) => Ok(completed),
            Step::Overtaken(last) => self.current_or_unfinished(&last).await,
        }
    }
}
