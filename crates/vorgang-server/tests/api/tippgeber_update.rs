//! Issue 12, point 6: the Tippgeber kept current. Changed Tippgeber data for a known
//! `externeMitarbeiternummer` is sent to Partnermanagement (`PATCH /v2/partner/{id}`, only the
//! changed attributes) before the import; a failed PATCH only warns. Through the real server and
//! the real sandbox, on SQLite and PostgreSQL.

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, both_backends, seed, spawn_app, spawn_app_with};

both_backends!(
    a_changed_phone_reaches_europace_with_exactly_one_patch,
    unchanged_data_sends_no_patch,
    a_failing_patch_only_warns_and_the_import_is_sent,
);

/// The warning of an import whose Tippgeber could not be updated.
const NOT_UPDATED: &str = "WARN tippgeber-not-updated";

/// The seed request with the Tippgeber's phone number set to `telefon`.
fn with_phone(telefon: &str) -> Value {
    let mut body = seed();
    body["tippgeber"]["telefon"] = json!(telefon);
    body
}

/// `POST /vorgang`, asserting 201; the answer's body.
async fn imported(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = app.post_vorgang(token, body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// The sandbox's partners carrying the seed Tippgeber's `externePartnerId`.
async fn tippgeber_partners(app: &TestApp) -> Vec<Value> {
    let externe = format!(
        "{}-{}",
        app.client_id,
        seed()["tippgeber"]["externeMitarbeiternummer"]
            .as_str()
            .unwrap()
    );
    app.sandbox_get("/_sandbox/partners")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["externePartnerId"] == externe.as_str())
        .cloned()
        .collect()
}

fn messages(answer: &Value) -> Vec<&str> {
    answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect()
}

async fn a_changed_phone_reaches_europace_with_exactly_one_patch(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    imported(&app, &token, &with_phone("0612 298 1000")).await;
    let second = imported(&app, &token, &with_phone("0612 298 2000")).await;
    assert!(!messages(&second).contains(&NOT_UPDATED), "{second}");

    let partners = tippgeber_partners(&app).await;
    assert_eq!(partners.len(), 1, "one partner: {partners:?}");
    let partner = &partners[0];
    assert_eq!(partner["telefonnummer"], "0612 298 2000");
    // Only the phone changed: the rest is as created.
    assert_eq!(partner["vorname"], seed()["tippgeber"]["vorname"]);
    assert_eq!(partner["email"], seed()["tippgeber"]["email"]);
    assert_eq!(partner["parent"], json!({"partnerId": "TGT01"}));
    let stats = app.sandbox_stats().await;
    assert_eq!(stats["partner_update"], 1, "{stats}");
    assert_eq!(stats["partner_create"], 1, "{stats}");

    // Both imports went to Europace with that partner.
    let imports = app.sandbox_imports().await;
    assert_eq!(imports.len(), 2);
    for import in &imports {
        assert_eq!(
            import["body"]["tippgeber"],
            json!({"partnerId": partner["partnerId"]})
        );
    }

    // The same number again: nothing to send.
    imported(&app, &token, &with_phone("0612 298 2000")).await;
    assert_eq!(app.sandbox_stats().await["partner_update"], 1);
}

async fn unchanged_data_sends_no_patch(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    for _ in 0..3 {
        let answer = imported(&app, &token, &seed()).await;
        assert!(!messages(&answer).contains(&NOT_UPDATED), "{answer}");
    }
    let stats = app.sandbox_stats().await;
    assert_eq!(stats["partner_update"], 0, "{stats}");
    assert_eq!(stats["partner_create"], 1, "{stats}");
    assert_eq!(stats["kex"], 3, "{stats}");
    assert_eq!(tippgeber_partners(&app).await.len(), 1);
}

async fn a_failing_patch_only_warns_and_the_import_is_sent(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    imported(&app, &token, &with_phone("0612 298 1000")).await;

    // Partnermanagement answers every attempt of the PATCH with 503 (three attempts).
    app.sandbox_fault(json!({"target": "partner_update", "status": 503, "times": 3}))
        .await;
    let warned = imported(&app, &token, &with_phone("0612 298 2000")).await;
    assert_eq!(messages(&warned).last(), Some(&NOT_UPDATED), "{warned}");
    let stats = app.sandbox_stats().await;
    assert_eq!(
        stats["partner_update"], 3,
        "retried, then given up: {stats}"
    );
    assert_eq!(stats["kex"], 2, "the import was sent all the same: {stats}");
    let id = warned["drkleinrkVorgangsnummer"].as_str().unwrap();
    assert_eq!(app.sandbox_imports_of(id).await, 1);
    let view: Value = app.get_vorgang(&token, id).await.json().await.unwrap();
    assert_eq!(view["status"], "COMPLETED");
    assert_eq!(view["messages"], warned["messages"]);
    assert_eq!(
        tippgeber_partners(&app).await[0]["telefonnummer"],
        "0612 298 1000",
        "Europace keeps the old number"
    );

    // Europace back: the next import with the new number sends it, without warning.
    let next = imported(&app, &token, &with_phone("0612 298 2000")).await;
    assert!(!messages(&next).contains(&NOT_UPDATED), "{next}");
    assert_eq!(app.sandbox_stats().await["partner_update"], 4);
    assert_eq!(
        tippgeber_partners(&app).await[0]["telefonnummer"],
        "0612 298 2000"
    );
}

/// What is remembered of a Tippgeber is fingerprints: once its imports finished, none of its
/// values (created with, or changed to) is readable in the database files.
#[cfg(unix)]
#[tokio::test]
async fn no_tippgeber_value_is_left_readable_in_the_database_files() {
    let mut app = spawn_app().await;
    let token = app.token().await;
    let tippgeber = |vorname: &str, telefon: &str, email: &str| {
        let mut body = seed();
        body["tippgeber"]["vorname"] = json!(vorname);
        body["tippgeber"]["telefon"] = json!(telefon);
        body["tippgeber"]["email"] = json!(email);
        body
    };
    let first = ["Tippolinda", "0301-7766-4411", "tippolinda@partner.example"];
    let second = ["Tipparella", "0301-7766-4422", "tipparella@partner.example"];
    imported(&app, &token, &tippgeber(first[0], first[1], first[2])).await;
    imported(&app, &token, &tippgeber(second[0], second[1], second[2])).await;
    let partners = tippgeber_partners(&app).await;
    assert_eq!(
        partners[0]["vorname"], second[0],
        "the update reached Europace"
    );
    assert_eq!(app.sandbox_stats().await["partner_update"], 1);

    let dir = app.data_dir().to_owned();
    app.stop().await;
    let planted: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|v| (*v).to_owned())
        .collect();
    let found = crate::privacy::planted_values_in_files(&dir, &planted);
    assert!(found.is_empty(), "Tippgeber data left on disk: {found:?}");
}
