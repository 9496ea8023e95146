//! The import use case: one Vorgang from validated request to Europace case and CRM id.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vorgang_model::{Environment, ImportRequest, render_partner_line};

use crate::ports::{
    Clock, CrmIds, EuropaceError, IdGenerator, ImportStore, InsertOutcome, KexImporter,
    NewTippgeber, PartnerDirectory, StoreError, TraceId,
};
use crate::record::{Failure, FailureKind, ImportRecord, ImportStatus};

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
}

/// Errors of [`Importer`] that leave no import behind or concern no stored import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The `Idempotency-Key` was used before with another body or environment (HTTP 422).
    #[error("the Idempotency-Key was used with another request")]
    IdempotencyKeyReused,
    /// The import with this `Idempotency-Key` is still running (HTTP 409).
    #[error("an import with this Idempotency-Key is still in progress")]
    InProgress {
        /// The running import.
        id: Uuid,
    },
    /// The store failed before the import was stored: nothing happened (HTTP 503, retry welcome).
    #[error("storage unavailable: {0}")]
    Store(#[from] StoreError),
    /// The import was stored, but a later state could not be stored (the database failed
    /// mid-way). Nothing is lost and nothing may be sent again by the partner: `record` is the
    /// import as last stored, and the background resume drives it on from there
    /// ([`Importer::resume_stale`]; a `SENDING` one becomes `IN_DOUBT`). The answer must name the
    /// import and its state, never "nothing was stored".
    #[error("storage failed after import {} was stored as {}: {source}", .record.id, .record.status)]
    Unfinished {
        /// The import as last stored.
        record: Box<ImportRecord>,
        /// The store's error.
        source: StoreError,
    },
    /// No such import (operator commands).
    #[error("no import with this id")]
    NotFound,
    /// The import is not in a state that allows the operation (operator commands).
    #[error("import is {0}, not IN_DOUBT")]
    WrongState(ImportStatus),
}

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

/// What the importer keeps of a request until the import is finished (personal data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRequest {
    /// The partner's Vorgang, as sent.
    pub vorgang: serde_json::Map<String, serde_json::Value>,
    /// The Tippgeber.
    pub tippgeber: StoredTippgeber,
    /// All comments sent to Europace: `vorgang.kommentare`, then the top-level ones, then the
    /// partner line.
    pub kommentare: Vec<String>,
    /// The partner data as sent (canonical names).
    pub partner: serde_json::Value,
}

/// The Tippgeber as stored with an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTippgeber {
    /// Employee number at the partner.
    pub externe_mitarbeiternummer: String,
    /// First name.
    pub vorname: String,
    /// Last name.
    pub nachname: String,
    /// `HERR` or `FRAU`.
    pub anrede: Option<String>,
    /// Phone.
    pub telefon: Option<String>,
    /// E-mail.
    pub email: Option<String>,
}

impl StoredRequest {
    /// Builds the stored form of a validated request.
    #[must_use]
    pub fn from_request(request: &ImportRequest) -> Self {
        let mut kommentare: Vec<String> = match request.vorgang.get("kommentare") {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        kommentare.extend(request.kommentare.iter().cloned());
        kommentare.extend(render_partner_line(&request.partner));
        let tippgeber = &request.tippgeber;
        Self {
            vorgang: request.vorgang.clone(),
            tippgeber: StoredTippgeber {
                externe_mitarbeiternummer: tippgeber.externe_mitarbeiternummer.clone(),
                vorname: tippgeber.vorname.clone(),
                nachname: tippgeber.nachname.clone(),
                anrede: tippgeber
                    .anrede
                    .and_then(|a| serde_json::to_value(a).ok())
                    .and_then(|v| v.as_str().map(str::to_owned)),
                telefon: tippgeber.telefon.clone(),
                email: tippgeber.email.clone(),
            },
            kommentare,
            partner: serde_json::to_value(&request.partner).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The KEX import body: the Vorgang unchanged plus the fields only the service sets.
    #[must_use]
    pub fn kex_body(
        &self,
        id: Uuid,
        kundenbetreuer_partner_id: &str,
        tippgeber_partner_id: &str,
    ) -> serde_json::Value {
        let mut body = self.vorgang.clone();
        // Only the service sets these; validation refuses them unless they are `null`, which
        // means absent: never forward such a placeholder.
        if body
            .get("bearbeiter")
            .is_some_and(serde_json::Value::is_null)
        {
            body.remove("bearbeiter");
        }
        body.insert(
            "kundenbetreuer".into(),
            serde_json::json!({ "partnerId": kundenbetreuer_partner_id }),
        );
        body.insert(
            "tippgeber".into(),
            serde_json::json!({ "partnerId": tippgeber_partner_id }),
        );
        body.insert(
            "eigeneVorgangsnummer".into(),
            serde_json::Value::String(id.to_string()),
        );
        if self.kommentare.is_empty() {
            body.remove("kommentare");
        } else {
            body.insert("kommentare".into(), serde_json::json!(self.kommentare));
        }
        serde_json::Value::Object(body)
    }
}

/// SHA-256 (hex) over the environment and the raw body: the idempotency fingerprint.
#[must_use]
pub fn fingerprint(environment: Environment, raw_body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(environment.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(raw_body);
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The import use case. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Importer {
    config: Arc<ImporterConfig>,
    ports: Ports,
    /// Imports this process is driving right now: [`Importer::resume_stale`] never takes them
    /// over, however long a step takes (Europace timeouts and retries can exceed the stale
    /// window).
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
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
            ports,
            in_flight: Arc::default(),
        }
    }

    /// The store this importer writes to.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn ImportStore> {
        &self.ports.store
    }

    /// Accepts a validated request, stores it and drives it as far as it goes.
    ///
    /// Returns the stored import; its [`ImportStatus`] tells the outcome (`COMPLETED`, `FAILED`
    /// with a [`Failure`], `IN_DOUBT`). With an idempotency key seen before for the same body, the
    /// earlier import is returned unchanged, except that one that `FAILED` because Europace was
    /// unavailable is attempted again under the same id.
    ///
    /// # Errors
    /// See [`ImportError`]: nothing was stored for `IdempotencyKeyReused`, `InProgress` and `Store`;
    /// `Unfinished` carries the import as it was stored before the database failed.
    pub async fn submit(&self, new: NewImport<'_>) -> Result<ImportRecord, ImportError> {
        let now = self.ports.clock.now();
        let stored = StoredRequest::from_request(&new.request);
        let request_json = serde_json::to_value(&stored)
            .map_err(|_| StoreError::Corrupt("request could not be serialized".to_owned()))?;
        let record = ImportRecord {
            id: self.ports.ids.new_id(),
            client_id: new.client_id.to_owned(),
            environment: new.environment,
            status: ImportStatus::Accepted,
            idempotency_key: new.idempotency_key.map(str::to_owned),
            fingerprint: fingerprint(new.environment, new.raw_body),
            request: Some(request_json),
            tippgeber_externe_partner_id: format!(
                "{}-{}",
                new.client_id, stored.tippgeber.externe_mitarbeiternummer
            ),
            tippgeber_partner_id: None,
            europace_vorgangsnummer: None,
            crm_kennung: None,
            messages: new.request.warnings.clone(),
            failure: None,
            attempts: 1,
            created_at: now,
            updated_at: now,
        };
        match self.ports.store.insert(&record).await? {
            InsertOutcome::Inserted => {
                tracing::info!(import = %record.id, client = %record.client_id, environment = %record.environment, "import accepted");
                self.advance(record).await
            }
            InsertOutcome::IdempotencyKeyExists(existing) => {
                self.on_repeated_key(*existing, record).await
            }
        }
    }

    async fn on_repeated_key(
        &self,
        existing: ImportRecord,
        attempt: ImportRecord,
    ) -> Result<ImportRecord, ImportError> {
        if existing.fingerprint != attempt.fingerprint {
            return Err(ImportError::IdempotencyKeyReused);
        }
        match existing.status {
            ImportStatus::Accepted | ImportStatus::PartnerReady | ImportStatus::Sending => {
                Err(ImportError::InProgress { id: existing.id })
            }
            ImportStatus::Failed
                if existing
                    .failure
                    .as_ref()
                    .is_some_and(|f| f.kind == FailureKind::Unavailable) =>
            {
                let retry = ImportRecord {
                    status: ImportStatus::Accepted,
                    request: attempt.request,
                    failure: None,
                    messages: attempt.messages,
                    attempts: existing.attempts.saturating_add(1),
                    updated_at: self.ports.clock.now(),
                    ..existing.clone()
                };
                // The import exists (FAILED, retryable): a store error here changed nothing, and
                // the answer names the import as it stands.
                match self.ports.store.update(&retry, ImportStatus::Failed).await {
                    Ok(true) => {
                        tracing::info!(import = %retry.id, attempt = retry.attempts, "retrying import after Europace was unavailable");
                        self.advance(retry).await
                    }
                    Ok(false) => Err(ImportError::InProgress { id: retry.id }),
                    Err(source) => Err(Self::unfinished(&existing, source)),
                }
            }
            _ => Ok(existing),
        }
    }

    /// The error for a store failure after `last_stored` was stored: logged once, here.
    fn unfinished(last_stored: &ImportRecord, source: StoreError) -> ImportError {
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

    /// Drives a stored import through its remaining steps, storing each state before the next.
    /// Returns the import as last stored. If another process changed the import meanwhile, returns
    /// it as that process left it.
    ///
    /// # Errors
    /// [`ImportError::Unfinished`] if a state could not be stored: the import stays in its last
    /// stored state (carried by the error) and is resumed later.
    pub async fn advance(&self, mut record: ImportRecord) -> Result<ImportRecord, ImportError> {
        let Some(_in_flight) = InFlight::claim(&self.in_flight, record.id) else {
            // Already driven by another task of this process: report what is stored.
            return self.current_or_unfinished(&record).await;
        };
        loop {
            let stored = match record.status {
                ImportStatus::Accepted => {
                    let next = self
                        .partner_step(&record)
                        .await
                        .map_err(|source| Self::unfinished(&record, source))?;
                    self.save_after(&record, next).await?
                }
                ImportStatus::PartnerReady => self.kex_step(&record).await?,
                ImportStatus::Imported => {
                    let next = self.crm_step(&record).await;
                    if next.status == ImportStatus::Imported {
                        // CRM unavailable: stays IMPORTED, resumed later.
                        return Ok(next);
                    }
                    self.save_after(&record, next).await?
                }
                _ => return Ok(record),
            };
            match stored {
                Some(next) => record = next,
                // Another writer changed the import: leave it to them, report what is stored.
                None => return self.current_or_unfinished(&record).await,
            }
        }
    }

    /// Stores `next` over `last_stored` (compare-and-set on its status). `None` when another
    /// writer changed the import first.
    async fn save_after(
        &self,
        last_stored: &ImportRecord,
        next: ImportRecord,
    ) -> Result<Option<ImportRecord>, ImportError> {
        match self.save(&next, last_stored.status).await {
            Ok(stored) => Ok(stored.then_some(next)),
            Err(source) => Err(Self::unfinished(last_stored, source)),
        }
    }

    async fn save(
        &self,
        record: &ImportRecord,
        expected: ImportStatus,
    ) -> Result<bool, StoreError> {
        let stored = self.ports.store.update(record, expected).await?;
        if stored {
            tracing::info!(import = %record.id, from = %expected, to = %record.status, "import state stored");
        } else {
            tracing::warn!(import = %record.id, expected = %expected, "import changed concurrently; leaving it to the other writer");
        }
        Ok(stored)
    }

    async fn current(&self, id: Uuid) -> Result<ImportRecord, ImportError> {
        self.ports.store.get(id).await?.ok_or(ImportError::NotFound)
    }

    /// The import as stored now; if the store cannot be read, `known` (as last stored by us)
    /// carried by [`ImportError::Unfinished`].
    async fn current_or_unfinished(
        &self,
        known: &ImportRecord,
    ) -> Result<ImportRecord, ImportError> {
        match self.ports.store.get(known.id).await {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(ImportError::NotFound),
            Err(source) => Err(Self::unfinished(known, source)),
        }
    }

    fn stored_request(record: &ImportRecord) -> Option<StoredRequest> {
        record
            .request
            .as_ref()
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }

    fn finish(
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
        record.updated_at = self.ports.clock.now();
        record
    }

    fn failure_of(error: &EuropaceError) -> Failure {
        let kind = match error {
            EuropaceError::Unavailable { .. } => FailureKind::Unavailable,
            EuropaceError::InDoubt { .. } => FailureKind::InDoubt,
            EuropaceError::Rejected { .. } | EuropaceError::Protocol { .. } => {
                FailureKind::Rejected
            }
        };
        Failure {
            kind,
            detail: error.to_string(),
        }
    }

    /// The Tippgeber step: the next record (`PARTNER_READY`, or `FAILED` when Europace failed).
    ///
    /// # Errors
    /// A store error reading or saving the Tippgeber mapping: the import stays `ACCEPTED`.
    async fn partner_step(&self, record: &ImportRecord) -> Result<ImportRecord, StoreError> {
        let Some(request) = Self::stored_request(record) else {
            let failure = Failure {
                kind: FailureKind::Rejected,
                detail: "stored request is missing or unreadable".to_owned(),
            };
            return Ok(self.finish(record.clone(), ImportStatus::Failed, Some(failure)));
        };
        match self.ensure_tippgeber(record, &request.tippgeber).await? {
            Ok(partner_id) => {
                let mut next = record.clone();
                next.tippgeber_partner_id = Some(partner_id);
                Ok(self.finish(next, ImportStatus::PartnerReady, None))
            }
            Err(error) => {
                tracing::warn!(import = %record.id, error = %error, "Tippgeber step failed");
                let failure = Self::failure_of(&error);
                Ok(self.finish(record.clone(), ImportStatus::Failed, Some(failure)))
            }
        }
    }

    /// The Tippgeber's partnerId: stored from an earlier import, found at Europace under the
    /// environment's parent, or created there. The outer error is our store's (the import stays
    /// as it is), the inner one Europace's (the import fails).
    async fn ensure_tippgeber(
        &self,
        record: &ImportRecord,
        tippgeber: &StoredTippgeber,
    ) -> Result<Result<String, EuropaceError>, StoreError> {
        let externe = &record.tippgeber_externe_partner_id;
        if let Some(known) = self
            .ports
            .store
            .tippgeber_partner_id(record.environment, externe)
            .await?
        {
            return Ok(Ok(known));
        }
        let trace = TraceId::for_import(record.id);
        let parent = self.config.tippgeber_parent(record.environment);
        let found = match self
            .ports
            .partners
            .find_by_externe_partner_id(externe, &trace)
            .await
        {
            Ok(found) => found
                .into_iter()
                .find(|p| p.parent_partner_id.as_deref() == Some(parent)),
            Err(error) => return Ok(Err(error)),
        };
        let partner_id = if let Some(found) = found {
            found.partner_id
        } else {
            let new = NewTippgeber {
                externe_partner_id: externe.clone(),
                anrede: tippgeber.anrede.clone(),
                vorname: tippgeber.vorname.clone(),
                nachname: tippgeber.nachname.clone(),
                email: tippgeber.email.clone(),
                telefonnummer: tippgeber.telefon.clone(),
            };
            match self
                .ports
                .partners
                .create_tippgeber(parent, &new, &trace)
                .await
            {
                Ok(partner_id) => partner_id,
                Err(error) => return Ok(Err(error)),
            }
        };
        self.ports
            .store
            .save_tippgeber_partner_id(record.environment, externe, &partner_id)
            .await?;
        Ok(Ok(partner_id))
    }

    /// Stores `SENDING`, sends the KEX import and stores its outcome. `None` when another writer
    /// changed the import first.
    async fn kex_step(&self, record: &ImportRecord) -> Result<Option<ImportRecord>, ImportError> {
        let (Some(request), Some(tippgeber_partner_id)) = (
            Self::stored_request(record),
            record.tippgeber_partner_id.clone(),
        ) else {
            let failure = Failure {
                kind: FailureKind::Rejected,
                detail: "stored request or Tippgeber partnerId is missing".to_owned(),
            };
            let failed = self.finish(record.clone(), ImportStatus::Failed, Some(failure));
            return self.save_after(record, failed).await;
        };
        let sending = self.finish(record.clone(), ImportStatus::Sending, None);
        let Some(sending) = self.save_after(record, sending).await? else {
            return Ok(None);
        };
        let body = request.kex_body(
            sending.id,
            &self.config.kundenbetreuer_partner_id,
            &tippgeber_partner_id,
        );
        let trace = TraceId::for_import(sending.id);
        let outcome = self
            .ports
            .kex
            .import(sending.environment, &body, &trace)
            .await;
        let next = match outcome {
            Ok(imported) => {
                tracing::info!(import = %sending.id, "KEX import created");
                let mut record = sending.clone();
                let ours = std::mem::take(&mut record.messages);
                record.messages = imported.messages;
                record.messages.extend(ours);
                record.europace_vorgangsnummer = Some(imported.vorgangsnummer);
                self.finish(record, ImportStatus::Imported, None)
            }
            Err(error) => {
                tracing::warn!(import = %sending.id, error = %error, "KEX import failed");
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
                self.finish(sending.clone(), status, Some(failure))
            }
        };
        // A store error here leaves the import SENDING: the resume makes it IN_DOUBT, never
        // sending it again.
        self.save_after(&sending, next).await
    }

    async fn crm_step(&self, record: &ImportRecord) -> ImportRecord {
        match self.ports.crm.crm_kennung(record).await {
            Ok(kennung) => {
                let mut record = record.clone();
                record.crm_kennung = Some(kennung);
                self.finish(record, ImportStatus::Completed, None)
            }
            Err(error) => {
                tracing::warn!(import = %record.id, error = %error, "CRM id not available; import stays IMPORTED");
                record.clone()
            }
        }
    }

    /// Resumes imports a crash left behind, if they were last changed before `stale_after` ago:
    /// `ACCEPTED` and `PARTNER_READY` ones are driven on, `IMPORTED` ones get their CRM id, and
    /// `SENDING` ones become `IN_DOUBT` (their KEX import may have reached Europace).
    /// Returns the imports touched, as they ended.
    ///
    /// # Errors
    /// [`ImportError::Store`] if the store cannot be read.
    pub async fn resume_stale(
        &self,
        stale_after: Duration,
    ) -> Result<Vec<ImportRecord>, ImportError> {
        let cutoff = self.ports.clock.now()
            - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::zero());
        let mut touched = Vec::new();
        for status in [
            ImportStatus::Sending,
            ImportStatus::Accepted,
            ImportStatus::PartnerReady,
            ImportStatus::Imported,
        ] {
            for record in self.ports.store.list(Some(status)).await? {
                if record.updated_at > cutoff || self.is_in_flight(record.id) {
                    continue;
                }
                let result = if status == ImportStatus::Sending {
                    let failure = Failure {
                        kind: FailureKind::InDoubt,
                        detail: "found SENDING after a restart".to_owned(),
                    };
                    let doubt = self.finish(record, ImportStatus::InDoubt, Some(failure));
                    match self.save(&doubt, ImportStatus::Sending).await {
                        Ok(_) => self.current(doubt.id).await,
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
        }
        Ok(touched)
    }

    fn is_in_flight(&self, id: Uuid) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&id)
    }

    /// Applies an operator's decision to an `IN_DOUBT` import.
    ///
    /// # Errors
    /// [`ImportError::NotFound`], [`ImportError::WrongState`] if it is not `IN_DOUBT`,
    /// [`ImportError::Store`].
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
                let mut record = record;
                record.europace_vorgangsnummer = Some(europace_vorgangsnummer);
                self.finish(record, ImportStatus::Imported, None)
            }
            Resolution::Failed => {
                let failure = Failure {
                    kind: FailureKind::Operator,
                    detail: "marked failed by an operator".to_owned(),
                };
                self.finish(record, ImportStatus::Failed, Some(failure))
            }
        };
        if !self.save(&next, ImportStatus::InDoubt).await? {
            return Err(ImportError::WrongState(self.current(id).await?.status));
        }
        self.advance(next).await
    }

    /// Deletes finished imports last changed more than `retention` ago. Returns how many.
    ///
    /// # Errors
    /// [`ImportError::Store`].
    pub async fn purge_finished(&self, retention: Duration) -> Result<u64, ImportError> {
        let cutoff: DateTime<Utc> = self.ports.clock.now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        Ok(self.ports.store.purge_finished_before(cutoff).await?)
    }
}
