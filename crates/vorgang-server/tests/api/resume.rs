//! What a (re)started server does with imports a crashed process left behind, against SQLite and
//! PostgreSQL: stale `ACCEPTED`/`PARTNER_READY` are driven to the end, stale `IMPORTED` gets its
//! CRM id, stale `SENDING` becomes `IN_DOUBT` without a second POST, fresh ones (another replica's
//! work in progress) are left alone; finished imports past `retention_days` are purged.

use std::time::{Duration, Instant};

use serde_json::json;

use chrono::Utc;
use secrecy::ExposeSecret as _;
use serde_json::Value;
use uuid::Uuid;
use vorgang_core::{ImportRecord, ImportStatus, InsertOutcome, fingerprint, kex_body};
use vorgang_model::Environment;
use vorgang_store::testing::{overwrite_body, previous_format_body};

use crate::helpers::{Db, TestApp, both_backends, seed, spawn_app_with};

both_backends!(
    a_restart_resumes_stale_imports_only_and_purges_expired_ones,
    a_request_whose_import_another_replica_takes_over_gets_the_final_answer,
    an_import_stored_by_the_previous_build_is_sent_as_that_build_would_have,
);

/// An import as a crashed server would have left it, last changed `age` ago.
fn left_behind(
    app: &TestApp,
    status: ImportStatus,
    age: chrono::Duration,
    key: &str,
) -> ImportRecord {
    left_behind_with(app, &seed(), status, age, key)
}

/// [`left_behind`] for the request `body`.
fn left_behind_with(
    app: &TestApp,
    body: &Value,
    status: ImportStatus,
    age: chrono::Duration,
    key: &str,
) -> ImportRecord {
    let raw = serde_json::to_vec(body).unwrap();
    let request = vorgang_model::parse_import_request(&raw).unwrap();
    let when = Utc::now() - age;
    ImportRecord {
        id: Uuid::new_v4(),
        client_id: app.client_id.clone(),
        environment: Environment::Test,
        status,
        idempotency_key: Some(key.to_owned()),
        fingerprint: fingerprint(Environment::Test, &raw),
        tippgeber_externe_partner_id: format!(
            "{}-{}",
            app.client_id, request.tippgeber.externe_mitarbeiternummer
        ),
        tippgeber_partner_id: None,
        europace_vorgangsnummer: None,
        crm_kennung: None,
        messages: request.warnings.clone(),
        request: (!status.is_finished()).then_some(request),
        failure: None,
        attempts: 1,
        created_at: when,
        updated_at: when,
        notify: false,
        next_attempt_at: None,
    }
}

async fn a_restart_resumes_stale_imports_only_and_purges_expired_ones(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    // One ordinary import creates the Tippgeber at Europace and stores its partnerId.
    let first = app
        .post_bytes(&token, &serde_json::to_vec(&seed()).unwrap(), None)
        .await;
    assert_eq!(first.status(), 201);
    let tippgeber = app.sandbox_imports().await[0]["body"]["tippgeber"]["partnerId"]
        .as_str()
        .unwrap()
        .to_owned();

    let stale = chrono::Duration::seconds(60);
    let fresh = chrono::Duration::zero();
    let accepted = left_behind(&app, ImportStatus::Accepted, stale, "stale-accepted");
    let mut partner_ready = left_behind(
        &app,
        ImportStatus::PartnerReady,
        stale,
        "stale-partner-ready",
    );
    partner_ready.tippgeber_partner_id = Some(tippgeber.clone());
    let mut sending = left_behind(&app, ImportStatus::Sending, stale, "stale-sending");
    sending.tippgeber_partner_id = Some(tippgeber.clone());
    let mut imported = left_behind(&app, ImportStatus::Imported, stale, "stale-imported");
    imported.tippgeber_partner_id = Some(tippgeber.clone());
    imported.europace_vorgangsnummer = Some("AB1234".into());
    let mut fresh_sending = left_behind(&app, ImportStatus::Sending, fresh, "fresh-sending");
    fresh_sending.tippgeber_partner_id = Some(tippgeber);
    let fresh_accepted = left_behind(&app, ImportStatus::Accepted, fresh, "fresh-accepted");
    let mut expired = left_behind(
        &app,
        ImportStatus::Completed,
        chrono::Duration::days(31),
        "expired",
    );
    expired.europace_vorgangsnummer = Some("XY0001".into());
    expired.crm_kennung = Some("DKR-OLD".into());
    let mut recent = left_behind(
        &app,
        ImportStatus::Completed,
        chrono::Duration::days(1),
        "recent",
    );
    recent.europace_vorgangsnummer = Some("XY0002".into());
    recent.crm_kennung = Some("DKR-RECENT".into());

    let store = app.store().await;
    let imports = store.as_import_store();
    for record in [
        &accepted,
        &partner_ready,
        &sending,
        &imported,
        &fresh_sending,
        &fresh_accepted,
        &expired,
        &recent,
    ] {
        assert!(matches!(
            imports.insert(record).await.unwrap(),
            InsertOutcome::Inserted
        ));
    }

    // The restarted server (or another replica) makes its first pass at start.
    let _replica = app.spawn_replica().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = status(&app, &token, &accepted).await == "COMPLETED"
            && status(&app, &token, &partner_ready).await == "COMPLETED"
            && status(&app, &token, &imported).await == "COMPLETED"
            && status(&app, &token, &sending).await == "IN_DOUBT"
            && imports.get(expired.id).await.unwrap().is_none();
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stale imports were not resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Driven on: sent exactly once, now.
    for record in [&accepted, &partner_ready] {
        assert_eq!(app.sandbox_imports_of(&record.id.to_string()).await, 1);
        assert!(
            imports
                .get(record.id)
                .await
                .unwrap()
                .unwrap()
                .request
                .is_none()
        );
    }
    // IMPORTED: only the CRM step was missing; nothing sent.
    let view = view(&app, &token, &imported).await;
    assert_eq!(view["europaceVorgangsnummer"], "AB1234");
    assert!(view["crmKennung"].as_str().unwrap().starts_with("DKR-"));
    assert_eq!(app.sandbox_imports_of(&imported.id.to_string()).await, 0);
    // SENDING found after a crash: may have reached Europace, so IN_DOUBT and never re-sent.
    assert_eq!(app.sandbox_imports_of(&sending.id.to_string()).await, 0);
    assert!(
        imports
            .get(sending.id)
            .await
            .unwrap()
            .unwrap()
            .request
            .is_some()
    );
    // Fresh imports belong to a live process: untouched.
    assert_eq!(status(&app, &token, &fresh_sending).await, "SENDING");
    assert_eq!(status(&app, &token, &fresh_accepted).await, "ACCEPTED");
    assert_eq!(
        app.sandbox_imports().await.len(),
        3,
        "the first import + the two resumed ones"
    );
    let retry = app
        .post_bytes(
            &token,
            &serde_json::to_vec(&seed()).unwrap(),
            Some("fresh-accepted"),
        )
        .await;
    assert_eq!(retry.status(), 409, "still in progress elsewhere");
    // Retention: the import finished 31 days ago is gone, the one from yesterday still replays.
    assert!(imports.get(expired.id).await.unwrap().is_none());
    let replay = app
        .post_bytes(
            &token,
            &serde_json::to_vec(&seed()).unwrap(),
            Some("recent"),
        )
        .await;
    assert_eq!(replay.status(), 201);
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["drkleinrkVorgangsnummer"], recent.id.to_string());
    assert_eq!(replay["europaceVorgangsnummer"], "XY0002");
    assert_eq!(
        app.sandbox_imports().await.len(),
        3,
        "nothing sent by replays"
    );
    store.close().await;
}

async fn view(app: &TestApp, token: &str, record: &ImportRecord) -> Value {
    let response = app.get_vorgang(token, &record.id.to_string()).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn status(app: &TestApp, token: &str, record: &ImportRecord) -> String {
    view(app, token, record).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A partner step slower than the stale threshold (Europace's partner API timing out twice) is
/// taken over by another replica's resume pass while the request is still driving it. The
/// replica wins; the request must still get the final answer (it used to get 409 "retry
/// shortly", which a partner without `Idempotency-Key` would follow with a second case).
async fn a_request_whose_import_another_replica_takes_over_gets_the_final_answer(db: Db) {
    // Stale after 2 * (0.3 + 1.5) = 3.6 s.
    let app = spawn_app_with(db, |settings| {
        settings.europace.connect_timeout_ms = 300;
        settings.europace.request_timeout_ms = 1_500;
    })
    .await;
    let token = app.token().await;
    // The request: two lookups time out (~3.2 s), the third answers, the creation takes 1.4 s.
    app.sandbox_fault(json!({"target": "partner_lookup", "delay_ms": 1600, "times": 2}))
        .await;
    app.sandbox_fault(json!({"target": "partner_create", "delay_ms": 1400}))
        .await;
    // The replica, starting at 4 s, finds the import stale, drives it past the request (which
    // is still creating the partner) and sends the KEX import, answered after 0.8 s (well within
    // the 1.5 s request timeout even on a loaded machine: 1.4 s once made it time out, IN_DOUBT).
    app.sandbox_fault(json!({"target": "kex", "delay_ms": 800}))
        .await;
    let body = serde_json::to_vec(&seed()).unwrap();
    let (response, _replica) = tokio::join!(app.post_bytes(&token, &body, None), async {
        tokio::time::sleep(Duration::from_millis(4_000)).await;
        app.spawn_replica().await
    });
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "the final answer, not 409: {answer}");
    let id = answer["drkleinrkVorgangsnummer"].as_str().unwrap();
    assert_eq!(app.status_of(&token, id).await, "COMPLETED");
    let stats = app.sandbox_stats().await;
    assert_eq!(
        stats["partner_create"], 2,
        "both writers drove the partner step: {stats}"
    );
    assert_eq!(stats["kex"], 1, "{stats}");
    assert_eq!(app.sandbox_imports_of(id).await, 1);
    let partners = app.sandbox_get("/_sandbox/partners").await;
    assert_eq!(
        partners.as_array().unwrap().len(),
        4,
        "one Tippgeber: {partners}"
    );
}

/// Issue 9 changed how request bodies are stored. An import the previous build accepted (its
/// body in that build's format, comments merged as sent to Europace) and left behind when it
/// was replaced is resumed by this build and reaches Europace with the body the previous build
/// would have sent: the Vorgang unchanged, and every comment once, in order.
async fn an_import_stored_by_the_previous_build_is_sent_as_that_build_would_have(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    let mut body = seed();
    body["vorgang"]["kommentare"] = json!(["aus dem Vorgang", "zweiter Kommentar"]);
    let record = left_behind_with(
        &app,
        &body,
        ImportStatus::Accepted,
        chrono::Duration::seconds(60),
        "previous-build",
    );
    let request = record.request.clone().unwrap();
    let store = app.store().await;
    store.as_import_store().insert(&record).await.unwrap();
    overwrite_body(
        app.settings.database_url.expose_secret(),
        record.id,
        &previous_format_body(&request),
    )
    .await
    .unwrap();
    store.close().await;

    let _replica = app.spawn_replica().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&app, &token, &record).await != "COMPLETED" {
        assert!(Instant::now() < deadline, "the import was not resumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let sent = app.sandbox_imports().await;
    assert_eq!(sent.len(), 1);
    let stored = app.stored(&record.id.to_string()).await;
    let expected = kex_body(
        &request,
        record.id,
        &app.settings.europace.kundenbetreuer_partner_id,
        stored.tippgeber_partner_id.as_deref().unwrap(),
    );
    assert_eq!(sent[0]["body"], expected);
    assert_eq!(
        sent[0]["body"]["kommentare"],
        json!([
            "aus dem Vorgang",
            "zweiter Kommentar",
            "Max Mustermann hat 3 Kreditkarten.",
            "Partnerdaten: Vertriebsschlüssel: KOOPERATION_MIT_DRKLEIN-RK; Kundennummer: 143251ab; telefonTermin: 2021-01-10 13:00:00; filialId: 123123"
        ])
    );
    assert_eq!(stored.request, None, "finished: the body is gone");
}
