//! The stored request body across the upgrade of issue 9: bodies written by the previous build
//! (its `StoredRequest`, comments merged as sent to Europace) read back as the typed request they
//! were built from, so an import in flight across the upgrade is sent exactly as the previous
//! build would have sent it; a body of neither format is corrupt, and says so without a value.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;
use vorgang_core::model::{ImportRequest, PartnerDaten};
use vorgang_core::{ImportChange, ImportRecord, ImportStatus, ImportStore, StoreError, kex_body};
use vorgang_store::Store;
use vorgang_store::testing::{
    fresh_postgres_database, overwrite_body, postgres_admin_url, previous_format_body, request,
};

fn import(request: ImportRequest) -> ImportRecord {
    let now = Utc::now();
    ImportRecord {
        id: Uuid::new_v4(),
        client_id: "client-a".to_owned(),
        environment: vorgang_core::model::Environment::Test,
        status: ImportStatus::PartnerReady,
        idempotency_key: None,
        fingerprint: "f".to_owned(),
        request: Some(request),
        tippgeber_externe_partner_id: "client-a-42".to_owned(),
        tippgeber_partner_id: Some("TG1".to_owned()),
        europace_vorgangsnummer: None,
        crm_kennung: None,
        messages: vec!["WARN unknown-field /vorgang/foo".to_owned()],
        failure: None,
        attempts: 1,
        created_at: now,
        updated_at: now,
        notify: false,
        next_attempt_at: None,
    }
}

/// The requests to round-trip: every part set; no comments and no partner data anywhere; only
/// the partner line; `vorgang.kommentare` only, with a non-string entry the previous build left
/// out of the merged list.
fn requests() -> Vec<ImportRequest> {
    let full = request(json!({
        "antragsteller1": {"personendaten": {"vorname": "Max", "nachname": "Mustermann"}},
        "kommentare": ["aus dem Vorgang", "zweiter"],
        "finanzbedarf": {"kreditbetrag": 10000.5}
    }));
    let bare = ImportRequest {
        vorgang: json!({"antragsteller1": {}}).as_object().unwrap().clone(),
        kommentare: Vec::new(),
        partner: PartnerDaten::default(),
        ..full.clone()
    };
    let partner_only = ImportRequest {
        kommentare: Vec::new(),
        vorgang: bare.vorgang.clone(),
        ..full.clone()
    };
    let vorgang_only = ImportRequest {
        vorgang: json!({"kommentare": ["eins", null]})
            .as_object()
            .unwrap()
            .clone(),
        ..bare.clone()
    };
    vec![full, bare, partner_only, vorgang_only]
}

/// Stores `next` over `last` as the importer does.
async fn step(imports: &dyn ImportStore, last: &ImportRecord, next: &ImportRecord) -> bool {
    imports
        .transition(last.id, last.status, &ImportChange::between(last, next))
        .await
        .unwrap()
}

async fn previous_format_reads_as_its_request(store: &Store, url: &str) {
    let imports = store.as_import_store();
    for original in requests() {
        let record = import(original.clone());
        imports.insert(&record).await.unwrap();
        overwrite_body(url, record.id, &previous_format_body(&original))
            .await
            .unwrap();

        let read = imports.get(record.id).await.unwrap().unwrap();
        let decoded = read.request.clone().unwrap();
        // The previous format had no warnings (they are in the import's messages).
        let expected = ImportRequest {
            warnings: Vec::new(),
            ..original.clone()
        };
        assert_eq!(decoded, expected);
        assert_eq!(
            kex_body(&decoded, record.id, "KBT01", "TG1"),
            kex_body(&original, record.id, "KBT01", "TG1"),
            "sent as the previous build would have sent it"
        );

        // A step that keeps the body leaves it readable; finishing drops it.
        let mut sending = read.clone();
        sending.status = ImportStatus::Sending;
        assert!(step(&*imports, &read, &sending).await);
        assert_eq!(
            imports.get(record.id).await.unwrap().unwrap().request,
            Some(expected)
        );
        let mut failed = sending.clone();
        failed.status = ImportStatus::Failed;
        failed.request = None;
        assert!(step(&*imports, &sending, &failed).await);
        assert_eq!(imports.get(record.id).await.unwrap().unwrap().request, None);
    }
}

async fn other_bodies_are_corrupt_without_echoing_them(store: &Store, url: &str) {
    let imports = store.as_import_store();
    let original = request(json!({"kommentare": ["Geheimnis"]}));
    let mut previous = previous_format_body(&original);
    let bodies = [
        // Previous format, but the comments are not those its build would have merged.
        {
            previous["kommentare"] = json!(["Geheimnis-anders"]);
            previous.clone()
        },
        // A format this build does not know.
        json!({"format": 3, "request": {"vorgang": {"x": "Geheimnis"}}}),
        json!({"vorgang": {"x": "Geheimnis"}}),
    ];
    for body in bodies {
        let record = import(original.clone());
        imports.insert(&record).await.unwrap();
        overwrite_body(url, record.id, &body).await.unwrap();
        let err = imports.get(record.id).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("Geheimnis"), "{err:?}");
    }
}

async fn both(url: &str) {
    let store = Store::connect(url).await.unwrap();
    previous_format_reads_as_its_request(&store, url).await;
    other_bodies_are_corrupt_without_echoing_them(&store, url).await;
    store.close().await;
}

#[tokio::test]
async fn sqlite_reads_the_previous_body_format() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
    both(&url).await;
}

#[tokio::test]
async fn postgres_reads_the_previous_body_format() {
    let database = fresh_postgres_database(&postgres_admin_url())
        .await
        .unwrap();
    both(database.url()).await;
    database.drop_database().await.unwrap();
}
