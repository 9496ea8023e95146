//! In-memory port implementations, for tests and for embedding the core without a database or
//! Europace. They behave like the real adapters' contracts, including the idempotency-key rule,
//! compare-and-set transitions and the listing order, but keep nothing across restarts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vorgang_model::{Environment, Tippgeber};

use crate::change::ImportChange;
use crate::kex::KexBody;
use crate::ports::{
    EuropaceError, ImportStore, InsertOutcome, KexImported, KexImporter, PartnerDirectory,
    PartnerRecord, StoreError, TraceId,
};
use crate::query::{ImportCursor, ImportQuery};
use crate::record::{ImportRecord, ImportStatus};
use crate::tippgeber::{TippgeberMapping, TippgeberUpdate};
use crate::webhook::WebhookEvent;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`ImportStore`] in memory.
#[derive(Debug, Default)]
pub struct InMemoryImportStore {
    imports: Mutex<Vec<ImportRecord>>,
    /// Webhook events written with state changes (no clients here: every event is kept).
    events: Mutex<Vec<WebhookEvent>>,
    tippgeber: Mutex<HashMap<(Environment, String), TippgeberMapping>>,
}

impl InMemoryImportStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The webhook events written with state changes so far, oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<WebhookEvent> {
        lock(&self.events).clone()
    }
}

#[async_trait]
impl ImportStore for InMemoryImportStore {
    async fn insert(&self, record: &ImportRecord) -> Result<InsertOutcome, StoreError> {
        let mut imports = lock(&self.imports);
        if let Some(key) = &record.idempotency_key
            && let Some(existing) = imports.iter().find(|r| {
                r.client_id == record.client_id && r.idempotency_key.as_ref() == Some(key)
            })
        {
            return Ok(InsertOutcome::IdempotencyKeyExists(Box::new(
                existing.clone(),
            )));
        }
        if imports.iter().any(|r| r.id == record.id) {
            return Err(StoreError::Conflict("duplicate import id".to_owned()));
        }
        imports.push(record.clone());
        Ok(InsertOutcome::Inserted)
    }

    async fn transition(
        &self,
        id: Uuid,
        from: ImportStatus,
        change: &ImportChange<'_>,
    ) -> Result<bool, StoreError> {
        let mut imports = lock(&self.imports);
        match imports.iter_mut().find(|r| r.id == id && r.status == from) {
            Some(stored) => {
                change.apply_to(stored);
                if let Some(event) = change.event {
                    lock(&self.events).push(event.clone());
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn get(&self, id: Uuid) -> Result<Option<ImportRecord>, StoreError> {
        Ok(lock(&self.imports).iter().find(|r| r.id == id).cloned())
    }

    async fn list(&self, query: &ImportQuery) -> Result<Vec<ImportRecord>, StoreError> {
        let mut found: Vec<ImportRecord> = lock(&self.imports)
            .iter()
            .filter(|r| query.matches(r))
            .cloned()
            .collect();
        found.sort_by_key(ImportCursor::of);
        found.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        Ok(found)
    }

    async fn list_stale(&self, cutoff: DateTime<Utc>) -> Result<Vec<ImportRecord>, StoreError> {
        let mut stale: Vec<ImportRecord> = lock(&self.imports)
            .iter()
            .filter(|r| r.status.is_resumable() && r.updated_at <= cutoff)
            .cloned()
            .collect();
        stale.sort_by_key(|r| (r.updated_at, r.id));
        Ok(stale)
    }

    async fn claim_queued(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ImportRecord>, StoreError> {
        let mut imports = lock(&self.imports);
        let mut due: Vec<&mut ImportRecord> = imports
            .iter_mut()
            .filter(|r| {
                r.status == ImportStatus::Queued && r.next_attempt_at.is_some_and(|at| at <= now)
            })
            .collect();
        due.sort_by_key(|r| (r.next_attempt_at, r.id));
        Ok(due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|r| {
                r.status = ImportStatus::Accepted;
                r.updated_at = now;
                r.next_attempt_at = None;
                r.failure = None;
                r.attempts = r.attempts.saturating_add(1);
                r.clone()
            })
            .collect())
    }

    async fn count_by_status(&self, status: ImportStatus) -> Result<u64, StoreError> {
        let count = lock(&self.imports)
            .iter()
            .filter(|r| r.status == status)
            .count();
        Ok(u64::try_from(count).unwrap_or(u64::MAX))
    }

    async fn purge_finished_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut imports = lock(&self.imports);
        let before = imports.len();
        imports.retain(|r| !(r.status.is_finished() && r.updated_at < cutoff));
        Ok(u64::try_from(before - imports.len()).unwrap_or(u64::MAX))
    }

    async fn tippgeber_partner(
        &self,
        environment: Environment,
        externe_partner_id: &str,
    ) -> Result<Option<TippgeberMapping>, StoreError> {
        Ok(lock(&self.tippgeber)
            .get(&(environment, externe_partner_id.to_owned()))
            .cloned())
    }

    async fn save_tippgeber_partner(
        &self,
        environment: Environment,
        externe_partner_id: &str,
        mapping: &TippgeberMapping,
    ) -> Result<(), StoreError> {
        lock(&self.tippgeber).insert(
            (environment, externe_partner_id.to_owned()),
            mapping.clone(),
        );
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A partner held by [`InMemoryEuropace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPartner {
    /// Its partnerId.
    pub partner_id: String,
    /// Its parent.
    pub parent_partner_id: Option<String>,
    /// Its `externePartnerId`, if any.
    pub externe_partner_id: Option<String>,
}

/// A KEX import received by [`InMemoryEuropace`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedImport {
    /// The environment it was sent to.
    pub environment: Environment,
    /// The Vorgangsnummer issued.
    pub vorgangsnummer: String,
    /// The body as received.
    pub body: serde_json::Value,
}

#[derive(Debug, Default)]
struct EuropaceState {
    partners: Vec<HeldPartner>,
    imports: Vec<ReceivedImport>,
    kex_faults: VecDeque<EuropaceError>,
    partner_faults: VecDeque<EuropaceError>,
    update_faults: VecDeque<EuropaceError>,
    updates: Vec<(String, TippgeberUpdate)>,
    calls: u64,
    traces: Vec<TraceId>,
}

/// A tiny Europace in memory, implementing [`PartnerDirectory`] and [`KexImporter`], with
/// scripted failures. For unit tests and for embedding the core without network.
#[derive(Debug, Default)]
pub struct InMemoryEuropace {
    state: Mutex<EuropaceState>,
}

impl InMemoryEuropace {
    /// A Europace holding the given partners (e.g. the Kundenbetreuer and Tippgeber parents).
    #[must_use]
    pub fn with_partners(partner_ids: &[&str]) -> Self {
        let europace = Self::default();
        lock(&europace.state).partners = partner_ids
            .iter()
            .map(|id| HeldPartner {
                partner_id: (*id).to_owned(),
                parent_partner_id: None,
                externe_partner_id: None,
            })
            .collect();
        europace
    }

    /// Adds a partner (e.g. one with the same `externePartnerId` under another parent).
    pub fn add_partner(&self, partner: HeldPartner) {
        lock(&self.state).partners.push(partner);
    }

    /// The next KEX import answers this error instead (first in, first out).
    pub fn fail_next_kex(&self, error: EuropaceError) {
        lock(&self.state).kex_faults.push_back(error);
    }

    /// The next partner call (lookup or creation) answers this error instead.
    pub fn fail_next_partner_call(&self, error: EuropaceError) {
        lock(&self.state).partner_faults.push_back(error);
    }

    /// The next partner update (`PATCH`) answers this error instead and changes nothing.
    pub fn fail_next_partner_update(&self, error: EuropaceError) {
        lock(&self.state).update_faults.push_back(error);
    }

    /// The partner updates applied, in arrival order: the partnerId and exactly the attributes
    /// sent.
    #[must_use]
    pub fn updates(&self) -> Vec<(String, TippgeberUpdate)> {
        lock(&self.state).updates.clone()
    }

    /// The KEX imports received (including those whose answer was "lost").
    #[must_use]
    pub fn imports(&self) -> Vec<ReceivedImport> {
        lock(&self.state).imports.clone()
    }

    /// The partners held.
    #[must_use]
    pub fn partners(&self) -> Vec<HeldPartner> {
        lock(&self.state).partners.clone()
    }

    /// The trace id of every call received (lookups, creations, updates, KEX imports), in
    /// arrival order.
    #[must_use]
    pub fn traces(&self) -> Vec<TraceId> {
        lock(&self.state).traces.clone()
    }
}

#[async_trait]
impl PartnerDirectory for InMemoryEuropace {
    async fn find_by_externe_partner_id(
        &self,
        externe_partner_id: &str,
        trace: &TraceId,
    ) -> Result<Vec<PartnerRecord>, EuropaceError> {
        let mut state = lock(&self.state);
        state.traces.push(trace.clone());
        if let Some(error) = state.partner_faults.pop_front() {
            return Err(error);
        }
        Ok(state
            .partners
            .iter()
            .filter(|p| p.externe_partner_id.as_deref() == Some(externe_partner_id))
            .map(|p| PartnerRecord {
                partner_id: p.partner_id.clone(),
                parent_partner_id: p.parent_partner_id.clone(),
            })
            .collect())
    }

    async fn create_tippgeber(
        &self,
        parent_partner_id: &str,
        externe_partner_id: &str,
        _tippgeber: &Tippgeber,
        trace: &TraceId,
    ) -> Result<String, EuropaceError> {
        let mut state = lock(&self.state);
        state.traces.push(trace.clone());
        if let Some(error) = state.partner_faults.pop_front() {
            return Err(error);
        }
        if !state
            .partners
            .iter()
            .any(|p| p.partner_id == parent_partner_id)
        {
            return Err(EuropaceError::rejected(404));
        }
        // Like Europace: an `externePartnerId` that already exists under this parent answers the
        // existing partner (205); under another parent it is a different partner.
        if let Some(existing) = state.partners.iter().find(|p| {
            p.externe_partner_id.as_deref() == Some(externe_partner_id)
                && p.parent_partner_id.as_deref() == Some(parent_partner_id)
        }) {
            return Ok(existing.partner_id.clone());
        }
        state.calls += 1;
        let partner_id = format!("TG{:03}", state.calls);
        state.partners.push(HeldPartner {
            partner_id: partner_id.clone(),
            parent_partner_id: Some(parent_partner_id.to_owned()),
            externe_partner_id: Some(externe_partner_id.to_owned()),
        });
        Ok(partner_id)
    }

    async fn update_tippgeber(
        &self,
        partner_id: &str,
        update: &TippgeberUpdate,
        trace: &TraceId,
    ) -> Result<(), EuropaceError> {
        let mut state = lock(&self.state);
        state.traces.push(trace.clone());
        if let Some(error) = state.update_faults.pop_front() {
            return Err(error);
        }
        if !state.partners.iter().any(|p| p.partner_id == partner_id) {
            return Err(EuropaceError::rejected(404));
        }
        state.updates.push((partner_id.to_owned(), update.clone()));
        Ok(())
    }
}

#[async_trait]
impl KexImporter for InMemoryEuropace {
    async fn import(
        &self,
        environment: Environment,
        body: &KexBody,
        trace: &TraceId,
    ) -> Result<KexImported, EuropaceError> {
        // Europace reads the text; a body that is not JSON would be its 400.
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(body.as_bytes()) else {
            return Err(EuropaceError::rejected(400));
        };
        let mut state = lock(&self.state);
        state.traces.push(trace.clone());
        let fault = state.kex_faults.pop_front();
        if matches!(
            fault,
            Some(EuropaceError::Rejected { .. } | EuropaceError::Unavailable { .. })
        ) {
            return Err(fault.unwrap_or(EuropaceError::rejected(400)));
        }
        let vorgangsnummer = format!("KX{:04}", state.imports.len() + 1);
        state.imports.push(ReceivedImport {
            environment,
            vorgangsnummer: vorgangsnummer.clone(),
            body,
        });
        match fault {
            Some(error) => Err(error),
            None => Ok(KexImported {
                vorgangsnummer,
                messages: Vec::new(),
            }),
        }
    }
}
