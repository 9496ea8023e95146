//! Unit tests of the import use case with in-memory ports.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use vorgang_core::memory::{HeldPartner, InMemoryEuropace, InMemoryImportStore};
use vorgang_core::{
    BuiltinCrm, Clock, CrmIds, EuropaceError, FailureKind, ImportChange, ImportError, ImportQuery,
    ImportRecord, ImportStatus, ImportStore, Importer, ImporterConfig, NewImport, PartnerDirectory,
    Ports, RandomIds, Resolution, Resolver, Submitted, TIPPGEBER_NOT_UPDATED, TippgeberMapping,
    TippgeberUpdate, TraceContext,
};
use vorgang_model::{
    Anrede, CustomEntry, CustomValue, Environment, ImportRequest, PartnerDaten, Tippgeber,
};

struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct Harness {
    importer: Importer,
    store: Arc<InMemoryImportStore>,
    europace: Arc<InMemoryEuropace>,
    clock: Arc<TestClock>,
}

fn harness() -> Harness {
    let store = Arc::new(InMemoryImportStore::new());
    let europace = Arc::new(InMemoryEuropace::with_partners(&[
        "KBT01", "TGP01", "TGT01",
    ]));
    let clock = Arc::new(TestClock(Mutex::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(),
    )));
    let importer = importer_with(
        store.clone(),
        europace.clone(),
        &europace,
        Arc::new(BuiltinCrm),
        &clock,
    );
    Harness {
        importer,
        store,
        europace,
        clock,
    }
}

/// An importer with the test configuration (`KBT01`, `TGP01`, `TGT01`) over these ports; KEX
/// is `europace`.
fn importer_with(
    store: Arc<dyn ImportStore>,
    partners: Arc<dyn PartnerDirectory>,
    europace: &Arc<InMemoryEuropace>,
    crm: Arc<dyn CrmIds>,
    clock: &Arc<TestClock>,
) -> Importer {
    Importer::new(
        ImporterConfig {
            kundenbetreuer_partner_id: "KBT01".into(),
            tippgeber_parent_id: "TGP01".into(),
            test_tippgeber_parent_id: "TGT01".into(),
        },
        Ports {
            store,
            partners,
            kex: europace.clone(),
            crm,
            clock: clock.clone(),
            ids: Arc::new(RandomIds),
        },
    )
}

/// Asserts that `store` maps the test Tippgeber `key` to `partner_id`, with the data of
/// `sent` as the data last sent; returns the mapping.
async fn assert_mapped(
    store: &dyn ImportStore,
    key: &str,
    partner_id: &str,
    sent: &ImportRequest,
) -> TippgeberMapping {
    let stored = store
        .tippgeber_partner(Environment::Test, key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored,
        TippgeberMapping::created(Environment::Test, key, partner_id, &sent.tippgeber)
    );
    stored
}

/// The operator's resolution "Europace has it as `vorgangsnummer`".
fn imported(vorgangsnummer: &str) -> Resolution {
    Resolution::Imported {
        europace_vorgangsnummer: vorgangsnummer.into(),
    }
}

/// Lets the harness's Europace hold partner `id` under `parent` with this `externePartnerId`.
fn hold_partner(h: &Harness, id: &str, parent: &str, externe_partner_id: &str) {
    h.europace.add_partner(HeldPartner {
        partner_id: id.into(),
        parent_partner_id: Some(parent.into()),
        externe_partner_id: Some(externe_partner_id.into()),
    });
}

fn request(mitarbeiternummer: &str) -> ImportRequest {
    let vorgang = json!({
        "leadquelle": "Bank im Ventil",
        "antragsteller1": {"personendaten": {"vorname": "Max", "nachname": "Mustermann"}},
        "haushalt": {"ausgaben": {"mietausgaben": [{"betragMonatlich": 200.01}]}},
        "kommentare": ["aus dem Vorgang"],
        "finanzbedarf": {"finanzierungswunsch": {"kreditbetrag": 10000, "laufzeitInMonaten": 24}}
    });
    ImportRequest {
        vorgang: vorgang.as_object().unwrap().clone(),
        tippgeber: Tippgeber {
            externe_mitarbeiternummer: mitarbeiternummer.into(),
            vorname: "Erika".into(),
            nachname: "Musterfrau".into(),
            anrede: Some(Anrede::Frau),
            telefon: None,
            email: Some("erika@partner.example".into()),
        },
        kommentare: vec!["oben".into()],
        partner: PartnerDaten {
            vertriebsschluessel: Some("VS1".into()),
            kundennummer: None,
            custom: vec![CustomEntry {
                key: "filialId".into(),
                value: CustomValue::Integer(7),
            }],
        },
        warnings: vec!["WARN unknown-field /vorgang/foo".into()],
    }
}

async fn submit(
    h: &Harness,
    environment: Environment,
    key: Option<&str>,
    body: &[u8],
    mitarbeiternummer: &str,
) -> Result<ImportRecord, ImportError> {
    h.importer
        .submit(NewImport {
            client_id: "client-a",
            environment,
            idempotency_key: key,
            raw_body: body,
            request: request(mitarbeiternummer),
            trace: None,
            respond_async: false,
        })
        .await
        .map(|submitted| submitted.record)
}

/// `submit` of a TEST import with Tippgeber `42`, in the trace `trace`, telling replays apart.
async fn submitted(
    h: &Harness,
    key: Option<&str>,
    body: &[u8],
    trace: Option<TraceContext>,
) -> Result<Submitted, ImportError> {
    h.importer
        .submit(NewImport {
            client_id: "client-a",
            environment: Environment::Test,
            idempotency_key: key,
            raw_body: body,
            request: request("42"),
            trace,
            respond_async: false,
        })
        .await
}

#[tokio::test]
async fn happy_path_completes_and_sends_the_vorgang_unchanged_with_our_fields() {
    let h = harness();
    let record = submit(&h, Environment::Test, None, b"{}", "42")
        .await
        .unwrap();

    assert_eq!(record.status, ImportStatus::Completed);
    assert_eq!(record.europace_vorgangsnummer.as_deref(), Some("KX0001"));
    assert!(record.crm_kennung.as_deref().unwrap().starts_with("DKR-"));
    assert_eq!(
        record.request, None,
        "personal data is dropped once completed"
    );
    assert_eq!(record.messages, vec!["WARN unknown-field /vorgang/foo"]);
    assert_eq!(h.store.get(record.id).await.unwrap().unwrap(), record);

    let imports = h.europace.imports();
    assert_eq!(imports.len(), 1);
    let body = &imports[0].body;
    assert_eq!(imports[0].environment, Environment::Test);
    assert_eq!(body["kundenbetreuer"], json!({"partnerId": "KBT01"}));
    let tippgeber_id = record.tippgeber_partner_id.clone().unwrap();
    assert_eq!(body["tippgeber"], json!({"partnerId": tippgeber_id}));
    assert_eq!(body["eigeneVorgangsnummer"], json!(record.id.to_string()));
    assert_eq!(
        body["haushalt"]["ausgaben"]["mietausgaben"][0]["betragMonatlich"],
        json!(200.01)
    );
    assert_eq!(
        body["antragsteller1"],
        request("42").vorgang["antragsteller1"]
    );
    assert_eq!(
        body["kommentare"],
        json!([
            "aus dem Vorgang",
            "oben",
            "Partnerdaten: Vertriebsschlüssel: VS1; filialId: 7"
        ])
    );
    let partner = h
        .europace
        .partners()
        .into_iter()
        .find(|p| p.partner_id == tippgeber_id)
        .unwrap();
    assert_eq!(partner.parent_partner_id.as_deref(), Some("TGT01"));
    assert_eq!(partner.externe_partner_id.as_deref(), Some("client-a-42"));
}

#[tokio::test]
async fn a_second_import_reuses_the_tippgeber_and_production_uses_its_own_parent() {
    let h = harness();
    let first = submit(&h, Environment::Test, None, b"1", "42")
        .await
        .unwrap();
    let second = submit(&h, Environment::Test, None, b"2", "42")
        .await
        .unwrap();
    assert_eq!(first.tippgeber_partner_id, second.tippgeber_partner_id);
    assert_eq!(h.europace.partners().len(), 4, "3 seeded + 1 Tippgeber");

    let prod = submit(&h, Environment::Production, None, b"3", "43")
        .await
        .unwrap();
    assert_eq!(h.europace.imports()[2].environment, Environment::Production);
    let partner = h
        .europace
        .partners()
        .into_iter()
        .find(|p| Some(&p.partner_id) == prod.tippgeber_partner_id.as_ref())
        .unwrap();
    assert_eq!(partner.parent_partner_id.as_deref(), Some("TGP01"));
}

#[tokio::test]
async fn lookup_keeps_only_a_partner_under_the_environments_parent() {
    let h = harness();
    hold_partner(&h, "ELSE1", "OTHER", "client-a-42");
    hold_partner(&h, "MINE1", "TGT01", "client-a-42");
    let record = submit(&h, Environment::Test, None, b"{}", "42")
        .await
        .unwrap();
    assert_eq!(record.tippgeber_partner_id.as_deref(), Some("MINE1"));
    assert_eq!(h.europace.partners().len(), 5, "nothing created");
}

#[tokio::test]
async fn kex_rejection_fails_the_import_and_drops_the_body() {
    let h = harness();
    h.europace.fail_next_kex(EuropaceError::rejected(400));
    let record = submit(&h, Environment::Test, None, b"{}", "42")
        .await
        .unwrap();
    assert_eq!(record.status, ImportStatus::Failed);
    assert_eq!(record.failure.as_ref().unwrap().kind, FailureKind::Rejected);
    assert_eq!(record.request, None);
    assert!(h.europace.imports().is_empty());
}

#[tokio::test]
async fn europaces_reasons_for_a_refusal_are_kept_with_the_failure_and_lead_the_messages() {
    let h = harness();
    let reasons = vec!["PLZ ungültig".to_owned(), "Name Erika doppelt".to_owned()];
    h.europace.fail_next_kex(EuropaceError::Rejected {
        status: 422,
        messages: reasons.clone().into(),
    });
    let record = submit(&h, Environment::Test, Some("k"), b"{}", "42")
        .await
        .unwrap();
    assert_eq!(record.status, ImportStatus::Failed);
    let failure = record.failure.as_ref().unwrap();
    assert_eq!(failure.europace_messages.as_slice(), reasons);
    // The operator's detail names the status and the count, not the text.
    assert_eq!(
        failure.detail,
        "Europace rejected the request with status 422 (2 messages)"
    );
    assert_eq!(record.messages[..2], reasons[..]);
    // The stored import is the one a replay answers from.
    let stored = h.store.get(record.id).await.unwrap().unwrap();
    assert_eq!(stored.failure, record.failure);
    assert_eq!(stored.messages, record.messages);
}

#[tokio::test]
async fn unavailable_europace_fails_and_a_retry_with_the_same_key_completes_under_the_same_id() {
    let h = harness();
    h.europace.fail_next_kex(EuropaceError::Unavailable {
        reason: "503".into(),
        retry_after: None,
    });
    let failed = submit(&h, Environment::Test, Some("k1"), b"body", "42")
        .await
        .unwrap();
    assert_eq!(failed.status, ImportStatus::Failed);
    assert_eq!(
        failed.failure.as_ref().unwrap().kind,
        FailureKind::Unavailable
    );

    let retried = submit(&h, Environment::Test, Some("k1"), b"body", "42")
        .await
        .unwrap();
    assert_eq!(retried.id, failed.id);
    assert_eq!(retried.status, ImportStatus::Completed);
    assert_eq!(retried.attempts, 2);
    assert_eq!(h.europace.imports().len(), 1);

    let replayed = submit(&h, Environment::Test, Some("k1"), b"body", "42")
        .await
        .unwrap();
    assert_eq!(
        replayed, retried,
        "a completed import is replayed as stored"
    );
    assert_eq!(h.europace.imports().len(), 1);
}

/// `Submitted::replayed` tells an answer given for an earlier request (the HTTP layer's
/// `Idempotent-Replayed: true`) from one this request produced, a retry included.
#[tokio::test]
async fn only_an_earlier_import_given_back_counts_as_replayed() {
    let h = harness();
    let first = submitted(&h, Some("k1"), b"body", None).await.unwrap();
    assert!(!first.replayed);
    let again = submitted(&h, Some("k1"), b"body", None).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.record, first.record);
    // Without a key nothing is ever replayed.
    let fresh = submitted(&h, None, b"body", None).await.unwrap();
    assert!(!fresh.replayed);

    // A retry after Europace was unavailable is a new attempt, not a replay; its outcome is.
    h.europace.fail_next_kex(EuropaceError::Unavailable {
        reason: "503".into(),
        retry_after: None,
    });
    let failed = submitted(&h, Some("k2"), b"other", None).await.unwrap();
    assert_eq!(
        (failed.record.status, failed.replayed),
        (ImportStatus::Failed, false)
    );
    let retried = submitted(&h, Some("k2"), b"other", None).await.unwrap();
    assert_eq!(
        (retried.record.status, retried.replayed),
        (ImportStatus::Completed, false)
    );
    let replayed = submitted(&h, Some("k2"), b"other", None).await.unwrap();
    assert!(replayed.replayed);
}

/// Every Europace call of a request continues the request's W3C trace; a later resume (no
/// request) and an import without a trace use the trace of the import's own id.
#[tokio::test]
async fn europace_calls_continue_the_request_trace() {
    let h = harness();
    let trace = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let record = submitted(&h, None, b"a", trace).await.unwrap().record;
    let traces = h.europace.traces();
    assert!(
        traces.len() >= 2,
        "lookup or creation, and the KEX import: {traces:?}"
    );
    for call in &traces {
        assert_eq!(call.context(), &trace.unwrap());
        assert_eq!(call.as_str(), format!("drkleinrk-{}", record.id));
    }

    let other = harness();
    let untraced = submitted(&other, None, b"b", None).await.unwrap().record;
    for call in other.europace.traces() {
        assert_eq!(call.context(), &TraceContext::for_import(untraced.id));
    }
}

#[tokio::test]
async fn partner_unavailable_fails_before_any_kex_call() {
    let h = harness();
    h.europace
        .fail_next_partner_call(EuropaceError::Unavailable {
            reason: "503".into(),
            retry_after: None,
        });
    let record = submit(&h, Environment::Test, None, b"{}", "42")
        .await
        .unwrap();
    assert_eq!(record.status, ImportStatus::Failed);
    assert_eq!(record.failure.unwrap().kind, FailureKind::Unavailable);
    assert!(h.europace.imports().is_empty());
}

#[tokio::test]
async fn a_lost_kex_answer_leaves_the_import_in_doubt_and_it_is_never_resent() {
    let h = harness();
    h.europace.fail_next_kex(EuropaceError::InDoubt {
        reason: "timeout".into(),
    });
    let record = submit(&h, Environment::Test, Some("k"), b"b", "42")
        .await
        .unwrap();
    assert_eq!(record.status, ImportStatus::InDoubt);
    assert!(record.request.is_some(), "kept until an operator decides");
    let again = submit(&h, Environment::Test, Some("k"), b"b", "42")
        .await
        .unwrap();
    assert_eq!(again.status, ImportStatus::InDoubt);
    h.clock.advance(chrono::Duration::hours(1));
    h.importer
        .resume_stale(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(h.europace.imports().len(), 1, "sent exactly once");
    assert_eq!(
        h.store
            .list(&ImportQuery {
                status: Some(ImportStatus::InDoubt),
                ..ImportQuery::all()
            })
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn same_key_with_another_body_or_environment_is_refused() {
    let h = harness();
    submit(&h, Environment::Test, Some("k"), b"one", "42")
        .await
        .unwrap();
    assert!(matches!(
        submit(&h, Environment::Test, Some("k"), b"two", "42").await,
        Err(ImportError::IdempotencyKeyReused)
    ));
    assert!(matches!(
        submit(&h, Environment::Production, Some("k"), b"one", "42").await,
        Err(ImportError::IdempotencyKeyReused)
    ));
    assert_eq!(h.europace.imports().len(), 1);
}

#[tokio::test]
async fn a_key_still_in_progress_answers_in_progress() {
    let h = harness();
    let record = submit(&h, Environment::Test, Some("k"), b"b", "42")
        .await
        .unwrap();
    let mut running = record.clone();
    running.status = ImportStatus::PartnerReady;
    assert!(step(&*h.store, &record, &running).await);
    assert!(matches!(
        submit(&h, Environment::Test, Some("k"), b"b", "42").await,
        Err(ImportError::InProgress { id, status: ImportStatus::PartnerReady }) if id == record.id
    ));
}

#[tokio::test]
async fn resume_turns_sending_into_in_doubt_and_finishes_accepted_ones() {
    let h = harness();
    let done = submit(&h, Environment::Test, None, b"a", "42")
        .await
        .unwrap();
    // Simulate crashes: one import stopped while SENDING, another right after ACCEPTED.
    let mut sending = done.clone();
    sending.id = uuid::Uuid::new_v4();
    sending.idempotency_key = None;
    sending.status = ImportStatus::Sending;
    sending.request = Some(request("42"));
    h.store.insert(&sending).await.unwrap();
    let mut accepted = sending.clone();
    accepted.id = uuid::Uuid::new_v4();
    accepted.status = ImportStatus::Accepted;
    accepted.europace_vorgangsnummer = None;
    accepted.crm_kennung = None;
    accepted.tippgeber_partner_id = None;
    h.store.insert(&accepted).await.unwrap();

    // Fresh ones are left alone (another replica may be working on them).
    assert!(
        h.importer
            .resume_stale(Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );

    h.clock.advance(chrono::Duration::minutes(5));
    let touched = h
        .importer
        .resume_stale(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(touched.len(), 2);
    let sending = h.store.get(sending.id).await.unwrap().unwrap();
    assert_eq!(sending.status, ImportStatus::InDoubt);
    let accepted = h.store.get(accepted.id).await.unwrap().unwrap();
    assert_eq!(accepted.status, ImportStatus::Completed);
    assert_eq!(
        h.europace.imports().len(),
        2,
        "the SENDING one was not sent again"
    );
}

#[tokio::test]
async fn operator_resolves_in_doubt_imports() {
    let h = harness();
    h.europace.fail_next_kex(EuropaceError::InDoubt {
        reason: "reset".into(),
    });
    h.europace.fail_next_kex(EuropaceError::InDoubt {
        reason: "reset".into(),
    });
    let a = submit(&h, Environment::Test, None, b"a", "42")
        .await
        .unwrap();
    let b = submit(&h, Environment::Test, None, b"b", "42")
        .await
        .unwrap();

    let a = h.importer.resolve(a.id, imported("EP1")).await.unwrap();
    assert_eq!(a.status, ImportStatus::Completed);
    assert_eq!(a.europace_vorgangsnummer.as_deref(), Some("EP1"));
    assert!(a.crm_kennung.is_some());

    let b = h.importer.resolve(b.id, Resolution::Failed).await.unwrap();
    assert_eq!(b.status, ImportStatus::Failed);
    assert_eq!(b.failure.unwrap().kind, FailureKind::Operator);
    assert_eq!(b.request, None);

    assert!(matches!(
        h.importer.resolve(a.id, Resolution::Failed).await,
        Err(ImportError::WrongState(ImportStatus::Completed))
    ));
    assert!(matches!(
        h.importer
            .resolve(uuid::Uuid::new_v4(), Resolution::Failed)
            .await,
        Err(ImportError::NotFound)
    ));
}

#[tokio::test]
async fn purge_removes_only_old_finished_imports() {
    let h = harness();
    h.europace
        .fail_next_kex(EuropaceError::InDoubt { reason: "t".into() });
    let doubt = submit(&h, Environment::Test, None, b"a", "42")
        .await
        .unwrap();
    let done = submit(&h, Environment::Test, None, b"b", "42")
        .await
        .unwrap();
    assert_eq!(
        h.importer
            .resolver()
            .purge_finished(Duration::from_secs(86_400))
            .await
            .unwrap(),
        0
    );
    h.clock.advance(chrono::Duration::days(3));
    assert_eq!(
        h.importer
            .resolver()
            .purge_finished(Duration::from_secs(86_400))
            .await
            .unwrap(),
        1
    );
    assert!(h.store.get(done.id).await.unwrap().is_none());
    assert!(h.store.get(doubt.id).await.unwrap().is_some());
}

#[tokio::test]
async fn crm_kennung_is_stable_per_import() {
    let h = harness();
    let record = submit(&h, Environment::Test, None, b"a", "42")
        .await
        .unwrap();
    let again = BuiltinCrm.crm_kennung(&record).await.unwrap();
    assert_eq!(record.crm_kennung.as_deref(), Some(again.as_str()));
    assert_eq!(again.len(), "DKR-".len() + 8);
}

/// A Partnermanagement that passes every call on to the in-memory Europace, with two hooks:
/// with a `gate`, each lookup notifies its first `Notify` and waits for its second (a step
/// slower than the stale window); every update notes how many KEX imports Europace had
/// received by then.
struct HookedPartners {
    inner: Arc<InMemoryEuropace>,
    gate: Option<(tokio::sync::Notify, tokio::sync::Notify)>,
    kex_imports_at_update: Mutex<Vec<usize>>,
}

impl HookedPartners {
    fn new(inner: &Arc<InMemoryEuropace>, gated: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: inner.clone(),
            gate: gated.then(|| (tokio::sync::Notify::new(), tokio::sync::Notify::new())),
            kex_imports_at_update: Mutex::new(Vec::new()),
        })
    }

    /// The gate of a gated directory: (entered, release).
    fn gate(&self) -> &(tokio::sync::Notify, tokio::sync::Notify) {
        self.gate.as_ref().unwrap()
    }
}

#[async_trait::async_trait]
impl vorgang_core::PartnerDirectory for HookedPartners {
    async fn find_by_externe_partner_id(
        &self,
        externe_partner_id: &str,
        trace: &vorgang_core::TraceId,
    ) -> Result<Vec<vorgang_core::PartnerRecord>, EuropaceError> {
        if let Some((entered, release)) = &self.gate {
            entered.notify_one();
            release.notified().await;
        }
        self.inner
            .find_by_externe_partner_id(externe_partner_id, trace)
            .await
    }

    async fn create_tippgeber(
        &self,
        parent_partner_id: &str,
        externe_partner_id: &str,
        tippgeber: &Tippgeber,
        trace: &vorgang_core::TraceId,
    ) -> Result<String, EuropaceError> {
        self.inner
            .create_tippgeber(parent_partner_id, externe_partner_id, tippgeber, trace)
            .await
    }

    async fn update_tippgeber(
        &self,
        partner_id: &str,
        update: &TippgeberUpdate,
        trace: &vorgang_core::TraceId,
    ) -> Result<(), EuropaceError> {
        self.kex_imports_at_update
            .lock()
            .unwrap()
            .push(self.inner.imports().len());
        self.inner.update_tippgeber(partner_id, update, trace).await
    }
}

#[tokio::test]
async fn resume_never_takes_over_an_import_this_process_is_driving() {
    let h = harness();
    let slow = HookedPartners::new(&h.europace, true);
    let importer = importer_with(
        h.store.clone(),
        slow.clone(),
        &h.europace,
        Arc::new(BuiltinCrm),
        &h.clock,
    );
    let running = {
        let importer = importer.clone();
        tokio::spawn(async move {
            importer
                .submit(NewImport {
                    client_id: "client-a",
                    environment: Environment::Test,
                    idempotency_key: None,
                    raw_body: b"{}",
                    request: request("42"),
                    trace: None,
                    respond_async: false,
                })
                .await
                .map(|submitted| submitted.record)
        })
    };
    slow.gate().0.notified().await;
    // The step outlasts the stale window: still, this process does not take its own import over.
    h.clock.advance(chrono::Duration::hours(1));
    assert!(
        importer
            .resume_stale(Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    slow.gate().1.notify_one();
    let record = running.await.unwrap().unwrap();
    assert_eq!(record.status, ImportStatus::Completed);
    assert_eq!(h.europace.imports().len(), 1);
}

/// An [`ImportStore`] that records every write (`insert SENDING`, `ACCEPTED -> SENDING`,
/// `mapping`) and whose `n`-th write (counting from 1) fails, as a full disk would, until healed.
struct FailingStore {
    inner: InMemoryImportStore,
    writes: Mutex<Vec<String>>,
    fail_at: usize,
    healed: std::sync::atomic::AtomicBool,
}

impl FailingStore {
    fn new(fail_at: usize) -> Self {
        Self {
            inner: InMemoryImportStore::new(),
            writes: Mutex::new(Vec::new()),
            fail_at,
            healed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A store that records and never fails.
    fn recording() -> Self {
        Self::new(usize::MAX)
    }

    fn write(&self, what: String) -> Result<(), vorgang_core::StoreError> {
        let mut writes = self.writes.lock().unwrap();
        writes.push(what);
        if writes.len() >= self.fail_at && !self.healed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(vorgang_core::StoreError::Unavailable("disk full".into()));
        }
        Ok(())
    }

    fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl ImportStore for FailingStore {
    async fn insert(
        &self,
        record: &ImportRecord,
    ) -> Result<vorgang_core::InsertOutcome, vorgang_core::StoreError> {
        self.write(format!("insert {}", record.status))?;
        self.inner.insert(record).await
    }
    async fn transition(
        &self,
        id: uuid::Uuid,
        from: ImportStatus,
        change: &ImportChange<'_>,
    ) -> Result<bool, vorgang_core::StoreError> {
        self.write(format!("{from} -> {}", change.status))?;
        self.inner.transition(id, from, change).await
    }
    async fn get(&self, id: uuid::Uuid) -> Result<Option<ImportRecord>, vorgang_core::StoreError> {
        self.inner.get(id).await
    }
    async fn list(
        &self,
        query: &ImportQuery,
    ) -> Result<Vec<ImportRecord>, vorgang_core::StoreError> {
        self.inner.list(query).await
    }
    async fn list_stale(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ImportRecord>, vorgang_core::StoreError> {
        self.inner.list_stale(cutoff).await
    }
    async fn purge_finished_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, vorgang_core::StoreError> {
        self.inner.purge_finished_before(cutoff).await
    }
    async fn count_by_status(&self, status: ImportStatus) -> Result<u64, vorgang_core::StoreError> {
        self.inner.count_by_status(status).await
    }
    async fn claim_queued(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ImportRecord>, vorgang_core::StoreError> {
        self.inner.claim_queued(now, limit).await
    }
    async fn tippgeber_partner(
        &self,
        environment: Environment,
        externe_partner_id: &str,
    ) -> Result<Option<TippgeberMapping>, vorgang_core::StoreError> {
        self.inner
            .tippgeber_partner(environment, externe_partner_id)
            .await
    }
    async fn save_tippgeber_partner(
        &self,
        environment: Environment,
        externe_partner_id: &str,
        mapping: &TippgeberMapping,
    ) -> Result<(), vorgang_core::StoreError> {
        self.write("mapping".to_owned())?;
        self.inner
            .save_tippgeber_partner(environment, externe_partner_id, mapping)
            .await
    }
    async fn ping(&self) -> Result<(), vorgang_core::StoreError> {
        self.inner.ping().await
    }
}

/// A CRM that has no kennung in process (a remote one): the importer stores `IMPORTED` first.
struct RemoteCrm;

#[async_trait::async_trait]
impl vorgang_core::CrmIds for RemoteCrm {
    async fn crm_kennung(&self, import: &ImportRecord) -> Result<String, vorgang_core::CrmError> {
        Ok(BuiltinCrm::kennung(import.id))
    }
}

/// An importer over `store` and the harness's Europace and clock.
fn importer_over(
    h: &Harness,
    store: Arc<dyn ImportStore>,
    crm: Arc<dyn vorgang_core::CrmIds>,
) -> Importer {
    importer_with(store, h.europace.clone(), &h.europace, crm, &h.clock)
}

async fn submit_to(importer: &Importer, body: &[u8]) -> Result<ImportRecord, ImportError> {
    importer
        .submit(NewImport {
            client_id: "client-a",
            environment: Environment::Test,
            idempotency_key: None,
            raw_body: body,
            request: request("42"),
            trace: None,
            respond_async: false,
        })
        .await
        .map(|submitted| submitted.record)
}

/// Issue 10: only the durable writes the guarantees need (docs/reference/import-states.md). A Tippgeber unknown to the process costs
/// the `ACCEPTED` insert, the mapping, `SENDING` (the partnerId with it: `PARTNER_READY` is not
/// stored) and the outcome; a known one (this process learnt it, or the store has it) is
/// inserted as `SENDING` and completed in one more write. A CRM without an in-process kennung
/// keeps `IMPORTED` durable before asking it.
#[tokio::test]
async fn an_import_writes_only_the_states_the_guarantees_need() {
    let h = harness();
    let store = Arc::new(FailingStore::recording());
    let importer = importer_over(&h, store.clone(), Arc::new(BuiltinCrm));
    let first = submit_to(&importer, b"1").await.unwrap();
    assert_eq!(first.status, ImportStatus::Completed);
    assert_eq!(
        store.writes(),
        [
            "insert ACCEPTED",
            "mapping",
            "ACCEPTED -> SENDING",
            "SENDING -> COMPLETED"
        ]
    );
    let second = submit_to(&importer, b"2").await.unwrap();
    assert_eq!(second.status, ImportStatus::Completed);
    assert_eq!(second.tippgeber_partner_id, first.tippgeber_partner_id);
    assert_eq!(
        store.writes()[4..],
        ["insert SENDING", "SENDING -> COMPLETED"]
    );
    assert_eq!(store.inner.get(second.id).await.unwrap().unwrap(), second);
    assert_eq!(second.request, None, "the body is dropped with the outcome");
    assert_eq!(h.europace.imports().len(), 2);

    // Another process (a restart, a replica) learns the partnerId from the store.
    let restarted = importer_over(&h, store.clone(), Arc::new(BuiltinCrm));
    submit_to(&restarted, b"3").await.unwrap();
    assert_eq!(
        store.writes()[6..],
        ["insert SENDING", "SENDING -> COMPLETED"]
    );

    // A CRM that is not in-process: Europace's outcome is durable before it is asked.
    let remote = importer_over(&h, store.clone(), Arc::new(RemoteCrm));
    let fourth = submit_to(&remote, b"4").await.unwrap();
    assert_eq!(fourth.status, ImportStatus::Completed);
    assert_eq!(
        fourth.crm_kennung.as_deref(),
        Some(BuiltinCrm::kennung(fourth.id).as_str())
    );
    assert_eq!(
        store.writes()[8..],
        [
            "insert SENDING",
            "SENDING -> IMPORTED",
            "IMPORTED -> COMPLETED"
        ]
    );
    // The failure paths write one outcome too.
    h.europace.fail_next_kex(EuropaceError::rejected(400));
    let failed = submit_to(&importer, b"5").await.unwrap();
    assert_eq!(failed.status, ImportStatus::Failed);
    assert_eq!(failed.request, None);
    assert_eq!(
        store.writes()[11..],
        ["insert SENDING", "SENDING -> FAILED"]
    );
}

/// Issue 8 (HIGH 2): for every write of the happy path failing in turn, the error names what is
/// stored; "nothing stored" (`ImportError::Store`) only when the very first write (the insert)
/// failed. Once the store works again, the resume finishes each stored import with at most one
/// KEX import, and one whose outcome was lost after sending is never sent again. For a Tippgeber
/// unknown to the process and for a known one (inserted as `SENDING`: a crash or store failure
/// before the POST leaves it `IN_DOUBT` although nothing was sent, for an operator to resolve).
#[tokio::test]
async fn a_store_failing_on_the_nth_write_never_loses_or_doubles_the_import() {
    // An unknown Tippgeber writes: insert ACCEPTED, the mapping, SENDING, COMPLETED. A known one:
    // insert SENDING, COMPLETED. Per failing write: the state the error reports, the state after
    // the resume, and how many KEX imports reached Europace.
    let unknown = [
        (1, None, None, 0),
        (
            2,
            Some(ImportStatus::Accepted),
            Some(ImportStatus::Completed),
            1,
        ),
        (
            3,
            Some(ImportStatus::Accepted),
            Some(ImportStatus::Completed),
            1,
        ),
        (
            4,
            Some(ImportStatus::Sending),
            Some(ImportStatus::InDoubt),
            1,
        ),
    ];
    let known = [
        (1, None, None, 0),
        (
            2,
            Some(ImportStatus::Sending),
            Some(ImportStatus::InDoubt),
            1,
        ),
    ];
    for (tippgeber_known, cases) in [(false, &unknown[..]), (true, &known[..])] {
        for &(fail_at, reported, resumed, kex_imports) in cases {
            let case = format!("write {fail_at}, Tippgeber known: {tippgeber_known}");
            let h = harness();
            let store = Arc::new(FailingStore::new(fail_at));
            if tippgeber_known {
                // Known with the data last sent: no update, the insert is `SENDING`.
                let mapping = TippgeberMapping::created(
                    Environment::Test,
                    "client-a-42",
                    "TG999",
                    &request("42").tippgeber,
                );
                store
                    .inner
                    .save_tippgeber_partner(Environment::Test, "client-a-42", &mapping)
                    .await
                    .unwrap();
            }
            let importer = importer_over(&h, store.clone(), Arc::new(BuiltinCrm));
            let id = match (submit_to(&importer, b"a").await, reported) {
                (Err(ImportError::Store(_)), None) => {
                    assert!(
                        store
                            .inner
                            .list(&ImportQuery::all())
                            .await
                            .unwrap()
                            .is_empty(),
                        "{case}"
                    );
                    continue;
                }
                (Err(ImportError::Unfinished { record, .. }), Some(status)) => {
                    assert_eq!(record.status, status, "{case}");
                    let stored = store.inner.get(record.id).await.unwrap().unwrap();
                    assert_eq!(stored.status, status, "{case}: reported as stored");
                    record.id
                }
                (other, _) => panic!("{case}: unexpected {other:?}"),
            };

            store
                .healed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            h.clock.advance(chrono::Duration::minutes(5));
            importer
                .resume_stale(Duration::from_secs(60))
                .await
                .unwrap();
            let after = store.inner.get(id).await.unwrap().unwrap();
            assert_eq!(Some(after.status), resumed, "{case}: after the resume");
            assert_eq!(h.europace.imports().len(), kex_imports, "{case}");
        }
    }
}

/// An import of `client_id` as another replica would have stored it, in `status`.
fn stored_import(h: &Harness, client_id: &str, status: ImportStatus) -> ImportRecord {
    let accepted = ImportRecord::accepted(
        uuid::Uuid::new_v4(),
        client_id,
        Environment::Test,
        None,
        "f".into(),
        request("42"),
        h.clock.now(),
    );
    ImportRecord { status, ..accepted }
}

/// Stores `next` over `last` as another writer would.
async fn step(store: &dyn ImportStore, last: &ImportRecord, next: &ImportRecord) -> bool {
    store
        .transition(last.id, last.status, &ImportChange::between(last, next))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_change_keeps_drops_or_stores_the_body_as_the_records_differ() {
    use vorgang_core::BodyChange;
    let h = harness();
    let accepted = stored_import(&h, "client-a", ImportStatus::Accepted);
    let mut ready = accepted.clone();
    ready.status = ImportStatus::PartnerReady;
    ready.tippgeber_partner_id = Some("TG1".into());
    let change = ImportChange::between(&accepted, &ready);
    assert_eq!(
        change.body,
        BodyChange::Keep,
        "an ordinary step keeps the body"
    );
    assert_eq!(change.status, ImportStatus::PartnerReady);
    assert_eq!(change.tippgeber_partner_id, Some("TG1"));

    let mut failed = ready.clone();
    failed.status = ImportStatus::Failed;
    failed.request = None;
    assert_eq!(
        ImportChange::between(&ready, &failed).body,
        BodyChange::Drop,
        "finishing drops it"
    );
    let mut purged_twice = failed.clone();
    purged_twice.attempts = 2;
    assert_eq!(
        ImportChange::between(&failed, &purged_twice).body,
        BodyChange::Keep,
        "no body, nothing to drop"
    );

    let mut retry = failed.clone();
    retry.status = ImportStatus::Accepted;
    retry.request = Some(request("42"));
    let retry_change = ImportChange::between(&failed, &retry);
    assert_eq!(retry_change.body, BodyChange::Store(&request("42")));
    let mut other = ready.clone();
    other.request = Some(request("43"));
    assert_eq!(
        ImportChange::between(&ready, &other).body,
        BodyChange::Store(&request("43")),
        "a different request replaces the stored one"
    );

    // Applied to the old record, a change gives the new one.
    let mut applied = failed.clone();
    retry_change.apply_to(&mut applied);
    assert_eq!(applied, retry);
}

/// Issue 10: the KEX body is written once, straight from the request, and is byte for byte the
/// text `kex_body` gives when serialised: member order (replacements in place, removals filled
/// by the last member), values and comments.
#[test]
fn the_kex_body_text_is_the_serialised_kex_body() {
    let seed =
        vorgang_model::parse_import_request(include_bytes!("../../../examples/seed-request.json"))
            .unwrap();
    let mut shapes = vec![seed, request("42")];
    for vorgang in [
        json!({"tippgeber": null, "bearbeiter": null, "a": 1, "kommentare": []}),
        json!({"bearbeiter": null, "kundenbetreuer": null, "eigeneVorgangsnummer": null, "z": [1.5, "ä\n\"", null, true]}),
        json!({"kommentare": null, "b": {}, "bearbeiter": null}),
        json!({}),
    ] {
        let mut shape = request("42");
        shape.vorgang = vorgang.as_object().unwrap().clone();
        shapes.push(shape.clone());
        shape.kommentare = Vec::new();
        shape.partner = PartnerDaten::default();
        shapes.push(shape);
    }
    let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    for (n, shape) in shapes.iter().enumerate() {
        let text = vorgang_core::KexBody::build(shape, id, "KBT01", "TG1").unwrap();
        let expected =
            serde_json::to_vec(&vorgang_core::kex_body(shape, id, "KBT01", "TG1")).unwrap();
        assert_eq!(
            String::from_utf8(text.as_bytes().to_vec()).unwrap(),
            String::from_utf8(expected).unwrap(),
            "shape {n}"
        );
        assert!(
            !format!("{text:?}").contains("Mustermann"),
            "Debug shows no content"
        );
    }
}

#[tokio::test]
async fn the_kex_body_replaces_null_placeholders_in_place_and_appends_the_rest() {
    let mut req = request("42");
    req.vorgang = json!({"tippgeber": null, "bearbeiter": null, "a": 1, "kommentare": []})
        .as_object()
        .unwrap()
        .clone();
    req.kommentare = Vec::new();
    req.partner = PartnerDaten::default();
    let id = uuid::Uuid::from_u128(7);
    let body = vorgang_core::kex_body(&req, id, "KBT01", "TG1");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // `bearbeiter` and the empty `kommentare` go, each gap taken by the last member (serde_json's
    // `remove` with `preserve_order`); `tippgeber` is replaced where it was sent. This is the
    // order Europace has always received: a refactoring must not change it.
    assert_eq!(
        keys,
        ["tippgeber", "eigeneVorgangsnummer", "a", "kundenbetreuer"]
    );
    assert_eq!(body["tippgeber"], json!({"partnerId": "TG1"}));
    assert_eq!(body["kundenbetreuer"], json!({"partnerId": "KBT01"}));
    assert_eq!(body["eigeneVorgangsnummer"], json!(id.to_string()));
    assert!(body.get("bearbeiter").is_none());
    assert!(body.get("kommentare").is_none(), "no comments: no list");
    assert_eq!(
        vorgang_core::kex_kommentare(&request("42")),
        [
            "aus dem Vorgang",
            "oben",
            "Partnerdaten: Vertriebsschlüssel: VS1; filialId: 7"
        ]
    );
}

#[tokio::test]
async fn outcome_waits_for_the_writer_driving_the_import() {
    let h = harness();
    let accepted = stored_import(&h, "client-a", ImportStatus::Accepted);
    h.store.insert(&accepted).await.unwrap();
    let waiting = {
        let importer = h.importer.clone();
        let id = accepted.id;
        tokio::spawn(async move {
            importer
                .outcome(id, std::time::Instant::now() + Duration::from_secs(20))
                .await
        })
    };
    // Another replica finishes it.
    let mut done = accepted.clone();
    done.status = ImportStatus::Completed;
    done.request = None;
    done.crm_kennung = Some("DKR-X".into());
    assert!(step(&*h.store, &accepted, &done).await);
    assert_eq!(waiting.await.unwrap().unwrap(), done);

    // Past the deadline: the import as stored, still in progress.
    let running = stored_import(&h, "client-a", ImportStatus::Sending);
    h.store.insert(&running).await.unwrap();
    let now = h
        .importer
        .outcome(running.id, std::time::Instant::now())
        .await
        .unwrap();
    assert_eq!(now, running);
    assert!(matches!(
        h.importer
            .outcome(uuid::Uuid::new_v4(), std::time::Instant::now())
            .await,
        Err(ImportError::NotFound)
    ));
}

#[tokio::test]
async fn a_client_reads_only_its_own_imports_a_page_at_a_time() {
    let h = harness();
    let mut mine = Vec::new();
    for n in 0..3 {
        h.clock.advance(chrono::Duration::seconds(1));
        mine.push(
            submit(&h, Environment::Test, None, format!("{n}").as_bytes(), "42")
                .await
                .unwrap(),
        );
    }
    let theirs = h
        .importer
        .submit(NewImport {
            client_id: "client-b",
            environment: Environment::Test,
            idempotency_key: None,
            raw_body: b"b",
            request: request("42"),
            trace: None,
            respond_async: false,
        })
        .await
        .unwrap()
        .record;

    assert_eq!(
        h.importer
            .get_for_client("client-a", mine[0].id)
            .await
            .unwrap(),
        mine[0]
    );
    assert!(matches!(
        h.importer.get_for_client("client-a", theirs.id).await,
        Err(ImportError::NotFound)
    ));

    let query = ImportQuery {
        // Ignored: the importer sets the client.
        client_id: Some("client-b".into()),
        limit: 2,
        ..ImportQuery::all()
    };
    let first = h
        .importer
        .list_for_client("client-a", query.clone())
        .await
        .unwrap();
    assert_eq!(first.items, mine[..2]);
    assert_eq!(first.next, Some(vorgang_core::ImportCursor::of(&mine[1])));
    let second = h
        .importer
        .list_for_client(
            "client-a",
            ImportQuery {
                after: first.next,
                ..query
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items, mine[2..]);
    assert_eq!(second.next, None, "exactly at the end: no further page");
}

#[tokio::test]
async fn the_operator_resolver_needs_no_europace() {
    let h = harness();
    let doubt = stored_import(&h, "client-a", ImportStatus::InDoubt);
    h.store.insert(&doubt).await.unwrap();

    let resolver = Resolver::new(h.store.clone(), Arc::new(BuiltinCrm), h.clock.clone());
    let page = resolver
        .list(ImportQuery {
            status: Some(ImportStatus::InDoubt),
            ..ImportQuery::all()
        })
        .await
        .unwrap();
    assert_eq!(page.items, vec![doubt.clone()]);
    let done = resolver.resolve(doubt.id, imported("EP9")).await.unwrap();
    assert_eq!(done.status, ImportStatus::Completed);
    assert_eq!(done.request, None, "finished: the body is dropped");
    assert_eq!(h.store.get(doubt.id).await.unwrap(), Some(done));
    assert!(h.europace.imports().is_empty(), "nothing sent");
}

/// Issue 10: import ids are UUIDs of version 7, ordered by time, so the stores' primary-key
/// indexes grow at their end.
#[test]
fn import_ids_are_time_ordered_uuids() {
    use vorgang_core::IdGenerator;
    let ids: Vec<uuid::Uuid> = (0..1000).map(|_| RandomIds.new_id()).collect();
    assert!(ids.iter().all(|id| id.get_version_num() == 7));
    let first = ids[0].get_timestamp().unwrap().to_unix();
    let last = ids[999].get_timestamp().unwrap().to_unix();
    assert!(first <= last);
    // Time-ordered across milliseconds (within one, the order of the random bits is not).
    let later = {
        std::thread::sleep(Duration::from_millis(2));
        RandomIds.new_id()
    };
    assert!(ids.iter().all(|id| *id < later));
}

// ---- Issue 12, point 6: the Tippgeber kept current ---------------------------------------------

/// `request(mitarbeiternummer)` with the Tippgeber's phone number set.
fn request_with_phone(mitarbeiternummer: &str, telefon: &str) -> ImportRequest {
    let mut request = request(mitarbeiternummer);
    request.tippgeber.telefon = Some(telefon.to_owned());
    request
}

async fn submit_request(importer: &Importer, request: ImportRequest) -> ImportRecord {
    importer
        .submit(NewImport {
            client_id: "client-a",
            environment: Environment::Test,
            idempotency_key: None,
            raw_body: b"{}",
            request,
            trace: None,
            respond_async: false,
        })
        .await
        .unwrap()
        .record
}

#[tokio::test]
async fn a_changed_phone_is_patched_alone_before_the_import_is_sent() {
    let h = harness();
    let store = Arc::new(FailingStore::recording());
    let partners = HookedPartners::new(&h.europace, false);
    let importer = importer_with(
        store.clone(),
        partners.clone(),
        &h.europace,
        Arc::new(BuiltinCrm),
        &h.clock,
    );
    let first = submit_request(&importer, request_with_phone("42", "030 111")).await;
    assert_eq!(first.status, ImportStatus::Completed);
    let partner_id = first.tippgeber_partner_id.clone().unwrap();
    let writes = store.writes().len();

    let second = submit_request(&importer, request_with_phone("42", "030 222")).await;
    assert_eq!(second.status, ImportStatus::Completed);
    assert_eq!(second.tippgeber_partner_id.as_ref(), Some(&partner_id));
    assert_eq!(
        h.europace.updates(),
        [(
            partner_id.clone(),
            TippgeberUpdate {
                telefon: Some("030 222".into()),
                ..TippgeberUpdate::default()
            }
        )],
        "only the phone, to the Tippgeber's partner"
    );
    assert_eq!(
        *partners.kex_imports_at_update.lock().unwrap(),
        [1],
        "the update before the second import was sent"
    );
    assert_eq!(h.europace.imports().len(), 2);
    assert_eq!(second.messages, ["WARN unknown-field /vorgang/foo"]);
    // Changed data takes the path through `ACCEPTED` (stored before the PATCH leaves) and
    // remembers what was sent with the mapping.
    assert_eq!(
        store.writes()[writes..],
        [
            "insert ACCEPTED",
            "mapping",
            "ACCEPTED -> SENDING",
            "SENDING -> COMPLETED"
        ]
    );
    assert_mapped(
        &store.inner,
        "client-a-42",
        &partner_id,
        &request_with_phone("42", "030 222"),
    )
    .await;

    // The same data again: nothing to update, the short path (`SENDING` at once).
    let writes = store.writes().len();
    submit_request(&importer, request_with_phone("42", "030 222")).await;
    assert_eq!(h.europace.updates().len(), 1);
    assert_eq!(
        store.writes()[writes..],
        ["insert SENDING", "SENDING -> COMPLETED"]
    );
}

#[tokio::test]
async fn unchanged_or_left_out_data_sends_no_update() {
    let h = harness();
    submit_request(&h.importer, request_with_phone("42", "030 111")).await;
    submit_request(&h.importer, request_with_phone("42", "030 111")).await;
    // A request without the phone number does not delete it at Europace.
    let without_phone = submit_request(&h.importer, request("42")).await;
    assert_eq!(without_phone.status, ImportStatus::Completed);
    // Another process (a restart, a replica) reads what was sent from the store.
    let restarted = importer_over(&h, h.store.clone(), Arc::new(BuiltinCrm));
    submit_request(&restarted, request_with_phone("42", "030 111")).await;
    assert_eq!(h.europace.updates(), []);
    assert_eq!(h.europace.imports().len(), 4);
}

#[tokio::test]
async fn a_failed_update_only_warns_and_the_next_import_tries_again() {
    let h = harness();
    let first = submit_request(&h.importer, request_with_phone("42", "030 111")).await;
    let created = h
        .store
        .tippgeber_partner(Environment::Test, "client-a-42")
        .await
        .unwrap();

    h.europace
        .fail_next_partner_update(EuropaceError::Unavailable {
            reason: "503".into(),
            retry_after: None,
        });
    let warned = submit_request(&h.importer, request_with_phone("42", "030 222")).await;
    assert_eq!(warned.status, ImportStatus::Completed, "{warned:?}");
    assert_eq!(
        warned.messages,
        ["WARN unknown-field /vorgang/foo", TIPPGEBER_NOT_UPDATED]
    );
    assert_eq!(TIPPGEBER_NOT_UPDATED, "WARN tippgeber-not-updated");
    assert_eq!(warned.tippgeber_partner_id, first.tippgeber_partner_id);
    assert_eq!(
        h.europace.imports().len(),
        2,
        "the import was sent all the same"
    );
    assert_eq!(h.europace.updates(), []);
    assert_eq!(
        h.store
            .tippgeber_partner(Environment::Test, "client-a-42")
            .await
            .unwrap(),
        created,
        "what was sent is unchanged"
    );

    // Europace refusing the update (a 4xx) is a warning too.
    h.europace
        .fail_next_partner_update(EuropaceError::rejected(403));
    let refused = submit_request(&h.importer, request_with_phone("42", "030 222")).await;
    assert_eq!(refused.status, ImportStatus::Completed);
    assert_eq!(refused.messages.last().unwrap(), TIPPGEBER_NOT_UPDATED);

    // The next import with the new number sends it.
    let third = submit_request(&h.importer, request_with_phone("42", "030 222")).await;
    assert_eq!(third.messages, ["WARN unknown-field /vorgang/foo"]);
    assert_eq!(h.europace.updates().len(), 1);
    assert_eq!(h.europace.imports().len(), 4);
}

#[tokio::test]
async fn a_new_tippgeber_is_created_with_its_data_and_what_was_sent_is_stored() {
    let h = harness();
    let record = submit_request(&h.importer, request_with_phone("7", "030 111")).await;
    let partner_id = record.tippgeber_partner_id.unwrap();
    assert_eq!(
        h.europace.updates(),
        [],
        "created with the data: nothing to update"
    );
    let stored = assert_mapped(
        &*h.store,
        "client-a-7",
        &partner_id,
        &request_with_phone("7", "030 111"),
    )
    .await;
    assert!(!stored.sent.is_empty());
}

#[tokio::test]
async fn a_partner_found_at_europace_or_stored_without_data_is_brought_up_to_date_once() {
    let h = harness();
    // Found by the lookup: what it holds is unknown, everything the partner sent is sent.
    hold_partner(&h, "MINE1", "TGT01", "client-a-42");
    let found = submit_request(&h.importer, request("42")).await;
    assert_eq!(found.tippgeber_partner_id.as_deref(), Some("MINE1"));
    assert_eq!(
        h.europace.updates(),
        [(
            "MINE1".to_owned(),
            TippgeberUpdate::all_of(&request("42").tippgeber)
        )]
    );
    submit_request(&h.importer, request("42")).await;
    assert_eq!(h.europace.updates().len(), 1, "once");

    // A mapping stored by the build before (no data known): the same, once.
    h.store
        .save_tippgeber_partner(
            Environment::Test,
            "client-a-43",
            &TippgeberMapping::found("TG001"),
        )
        .await
        .unwrap();
    hold_partner(&h, "TG001", "TGT01", "client-a-43");
    let legacy = submit_request(&h.importer, request("43")).await;
    assert_eq!(legacy.tippgeber_partner_id.as_deref(), Some("TG001"));
    assert_eq!(h.europace.updates().len(), 2);
    assert_eq!(h.europace.updates()[1].0, "TG001");
    submit_request(&h.importer, request("43")).await;
    assert_eq!(h.europace.updates().len(), 2, "once");
}

/// Two replicas knowing the same Tippgeber: once one has sent a change, the other one's import
/// of the same data sends no second update (the Tippgeber step reads the store, not its copy).
#[tokio::test]
async fn a_change_another_replica_sent_is_not_sent_again() {
    let h = harness();
    let replica = importer_over(&h, h.store.clone(), Arc::new(BuiltinCrm));
    submit_request(&h.importer, request_with_phone("42", "030 111")).await;
    submit_request(&replica, request_with_phone("42", "030 111")).await;

    submit_request(&h.importer, request_with_phone("42", "030 222")).await;
    let other = submit_request(&replica, request_with_phone("42", "030 222")).await;
    assert_eq!(other.status, ImportStatus::Completed);
    assert_eq!(h.europace.updates().len(), 1);
    assert_eq!(h.europace.imports().len(), 4);
}

/// Issue 13: an import with `respond_async`.
async fn submit_async(h: &Harness, mitarbeiternummer: &str) -> ImportRecord {
    h.importer
        .submit(NewImport {
            client_id: "client-a",
            environment: Environment::Test,
            idempotency_key: None,
            raw_body: b"{}",
            request: request(mitarbeiternummer),
            trace: None,
            respond_async: true,
        })
        .await
        .unwrap()
        .record
}

fn unavailable(retry_after: Option<std::time::Duration>) -> EuropaceError {
    EuropaceError::Unavailable {
        reason: "status 503".into(),
        retry_after,
    }
}

fn queue_harness() -> Harness {
    let mut h = harness();
    h.importer = h
        .importer
        .clone()
        .with_delivery(vorgang_core::DeliveryPolicy {
            retry_initial: std::time::Duration::from_secs(10),
            retry_max: std::time::Duration::from_secs(60),
            max_age: std::time::Duration::from_secs(3600),
        });
    h
}

#[tokio::test]
async fn unavailable_europace_queues_an_async_import_and_delivery_completes_it_with_one_event() {
    let h = queue_harness();
    h.europace
        .fail_next_kex(unavailable(Some(std::time::Duration::from_secs(30))));
    let queued = submit_async(&h, "42").await;
    assert_eq!(queued.status, ImportStatus::Queued);
    assert!(queued.notify);
    assert!(queued.request.is_some());
    // Retry-After (30 s) beats the first backoff (10 s).
    assert_eq!(
        queued.next_attempt_at,
        Some(h.clock.now() + chrono::Duration::seconds(30))
    );
    assert!(h.store.events().is_empty(), "the 202 tells the partner");

    // Not due yet: nothing claimed.
    h.clock.advance(chrono::Duration::seconds(29));
    assert!(h.importer.deliver_queued(10).await.unwrap().is_empty());
    h.clock.advance(chrono::Duration::seconds(1));
    let delivered = h.importer.deliver_queued(10).await.unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].status, ImportStatus::Completed);
    assert_eq!(delivered[0].attempts, 2);
    assert_eq!(delivered[0].failure, None);
    assert_eq!(h.europace.imports().len(), 1, "one case");
    let events = h.store.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, vorgang_core::EventType::Completed);
    assert_eq!(events[0].import_id, queued.id);
    assert!(h.importer.deliver_queued(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn without_respond_async_or_when_in_doubt_nothing_is_queued() {
    let h = queue_harness();
    h.europace.fail_next_kex(unavailable(None));
    let failed = submit_request(&h.importer, request("42")).await;
    assert_eq!(failed.status, ImportStatus::Failed);
    assert!(!failed.notify);
    h.europace.fail_next_kex(EuropaceError::InDoubt {
        reason: "timeout".into(),
    });
    let doubt = submit_async(&h, "42").await;
    assert_eq!(
        doubt.status,
        ImportStatus::InDoubt,
        "never queued after a possible send"
    );
    assert!(doubt.notify, "answered 504: its resolution is reported");
    assert!(h.store.events().is_empty());
    // The operator's decision is reported.
    h.importer
        .resolve(doubt.id, Resolution::Failed)
        .await
        .unwrap();
    let events = h.store.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, vorgang_core::EventType::Failed);
}

#[tokio::test]
async fn a_queued_import_that_europace_keeps_refusing_backs_off_then_expires_failed() {
    let h = queue_harness();
    // The partner step is unavailable too: queued before the Tippgeber is known.
    h.europace.fail_next_partner_call(unavailable(None));
    let queued = submit_async(&h, "new-tg").await;
    assert_eq!(queued.status, ImportStatus::Queued);
    assert_eq!(queued.tippgeber_partner_id, None);
    let first_wait = queued.next_attempt_at.unwrap() - h.clock.now();
    assert_eq!(first_wait, chrono::Duration::seconds(10));

    h.clock.advance(first_wait);
    h.europace.fail_next_kex(unavailable(None));
    let again = h.importer.deliver_queued(10).await.unwrap();
    assert_eq!(again[0].status, ImportStatus::Queued);
    let second_wait = again[0].next_attempt_at.unwrap() - h.clock.now();
    assert!(
        (chrono::Duration::seconds(10)..=chrono::Duration::seconds(20)).contains(&second_wait),
        "{second_wait}"
    );

    // Past max age: FAILED without another call, reported.
    h.clock.advance(chrono::Duration::seconds(3600));
    let expired = h.importer.deliver_queued(10).await.unwrap();
    assert_eq!(expired[0].status, ImportStatus::Failed);
    assert_eq!(expired[0].request, None, "body dropped");
    assert_eq!(h.europace.imports().len(), 0, "no case");
    let events = h.store.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, vorgang_core::EventType::Failed);
    assert!(
        !events[0].payload.contains("Musterfrau"),
        "no personal data"
    );
}
