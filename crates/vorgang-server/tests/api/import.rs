use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, seed, spawn_app};

fn without_service_fields(body: &Value) -> Value {
    let mut body = body.clone();
    let object = body.as_object_mut().unwrap();
    for field in [
        "kundenbetreuer",
        "tippgeber",
        "eigeneVorgangsnummer",
        "kommentare",
    ] {
        object.remove(field);
    }
    body
}

async fn created(app: &TestApp, response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["drkleinrkVorgangsnummer"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(location, format!("/vorgang/{id}"));
    assert!(body["europaceVorgangsnummer"].is_string());
    assert!(body["crmKennung"].as_str().unwrap().starts_with("DKR-"));
    assert!(body["messages"].is_array());
    let _ = app;
    body
}

#[tokio::test]
async fn the_published_example_is_imported_end_to_end() {
    let app = spawn_app().await;
    let token = app.token().await;
    let seed = seed();
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/x-www-form-urlencoded"),
            serde_json::to_vec(&seed).unwrap(),
            None,
        )
        .await;
    let body = created(&app, response).await;
    let id = body["drkleinrkVorgangsnummer"].as_str().unwrap();

    let vorgaenge = app.sandbox_get("/_sandbox/vorgaenge").await;
    let vorgaenge = vorgaenge.as_array().unwrap();
    assert_eq!(vorgaenge.len(), 1, "exactly one import at Europace");
    let sent = &vorgaenge[0];
    assert_eq!(sent["environment"], "TEST");
    assert_eq!(sent["vorgangsnummer"], body["europaceVorgangsnummer"]);
    assert_eq!(
        without_service_fields(&sent["body"]),
        seed["vorgang"],
        "vorgang data intact"
    );
    assert_eq!(sent["body"]["eigeneVorgangsnummer"], id);
    assert_eq!(sent["body"]["kundenbetreuer"]["partnerId"], "KBT01");
    assert_eq!(
        sent["body"]["kommentare"][0],
        "Max Mustermann hat 3 Kreditkarten."
    );
    let partner_line = sent["body"]["kommentare"][1].as_str().unwrap();
    assert!(partner_line.contains("KOOPERATION_MIT_DRKLEIN-RK"));
    assert!(partner_line.contains("filialId: 123123"));

    let tippgeber_id = sent["body"]["tippgeber"]["partnerId"].as_str().unwrap();
    let partners = app.sandbox_get("/_sandbox/partners").await;
    let tippgeber = partners
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partnerId"] == tippgeber_id)
        .expect("Tippgeber created at Europace");
    assert_eq!(tippgeber["parent"]["partnerId"], "TGT01");
    assert_eq!(
        tippgeber["externePartnerId"],
        format!("{}-078181726-121", app.client_id)
    );

    let view = app.get_vorgang(&token, id).await;
    assert_eq!(view.status(), 200);
    let view: Value = view.json().await.unwrap();
    assert_eq!(view["drkleinrkVorgangsnummer"], id);
    assert_eq!(view["status"], "COMPLETED");
    assert_eq!(view["environment"], "TEST");
    assert_eq!(
        view["europaceVorgangsnummer"],
        body["europaceVorgangsnummer"]
    );
    assert_eq!(view["crmKennung"], body["crmKennung"]);
    assert!(view["createdAt"].is_string());
}

#[tokio::test]
async fn a_second_import_reuses_the_tippgeber_and_production_reaches_the_sandbox_as_production() {
    let app = spawn_app().await;
    let token = app.token().await;
    created(&app, app.post_vorgang(&token, &seed()).await).await;
    created(&app, app.post_vorgang(&token, &seed()).await).await;
    let partners_after_two = app.sandbox_get("/_sandbox/partners").await;
    assert_eq!(
        partners_after_two.as_array().unwrap().len(),
        4,
        "3 seeded + 1 Tippgeber"
    );

    let response = app
        .post_vorgang_raw(
            "?environment=PRODUCTION",
            Some(&token),
            Some("application/json"),
            serde_json::to_vec(&seed()).unwrap(),
            None,
        )
        .await;
    created(&app, response).await;
    let vorgaenge = app.sandbox_get("/_sandbox/vorgaenge").await;
    assert_eq!(vorgaenge[2]["environment"], "PRODUCTION");
    let partners = app.sandbox_get("/_sandbox/partners").await;
    let production_tippgeber = partners
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partnerId"] == vorgaenge[2]["body"]["tippgeber"]["partnerId"])
        .unwrap();
    assert_eq!(production_tippgeber["parent"]["partnerId"], "TGP01");
}

#[tokio::test]
async fn another_client_cannot_read_an_import() {
    let app = spawn_app().await;
    let token = app.token().await;
    let body = created(&app, app.post_vorgang(&token, &seed()).await).await;
    let id = body["drkleinrkVorgangsnummer"].as_str().unwrap();

    // A second client, registered through the same database.
    let (other_id, other_secret) = app.register_client(&[]).await;
    let other_token = app.token_for(&other_id, &other_secret).await;
    problem(app.get_vorgang(&other_token, id).await, 404).await;
    problem(app.get_vorgang(&token, "not-a-uuid").await, 404).await;
    problem(
        app.get_vorgang(&token, &uuid::Uuid::new_v4().to_string())
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn requests_without_or_with_a_bad_token_are_401() {
    let app = spawn_app().await;
    let response = app
        .post_vorgang_raw("", None, Some("application/json"), b"{}".to_vec(), None)
        .await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"vorgang\""
    );
    problem(response, 401).await;

    let response = app.post_vorgang("not.a.token", &seed()).await;
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    problem(response, 401).await;
    assert_eq!(app.sandbox_get("/_sandbox/vorgaenge").await, json!([]));
}

#[tokio::test]
async fn bad_input_gets_precise_problems_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.token().await;

    let malformed = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            b"{\"vorgang\": ".to_vec(),
            None,
        )
        .await;
    problem(malformed, 400).await;

    let mut big = seed();
    big["kommentare"] = json!(["x".repeat(300 * 1024)]);
    let too_large = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            serde_json::to_vec(&big).unwrap(),
            None,
        )
        .await;
    problem(too_large, 413).await;

    let mut missing = seed();
    missing["vorgang"]["antragsteller1"]["personendaten"]
        .as_object_mut()
        .unwrap()
        .remove("vorname");
    missing["tippgeber"]
        .as_object_mut()
        .unwrap()
        .remove("nachname");
    let invalid = problem(app.post_vorgang(&token, &missing).await, 422).await;
    let pointers: Vec<&str> = invalid["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/vorgang/antragsteller1/personendaten/vorname"),
        "{pointers:?}"
    );
    assert!(pointers.contains(&"/tippgeber/nachname"), "{pointers:?}");
    let text = invalid.to_string();
    for value in [
        "Mustermann",
        "DE98600100700160451700",
        "max.mustermann@partner.de",
    ] {
        assert!(!text.contains(value), "error body echoes a submitted value");
    }

    problem(
        app.post_vorgang_raw(
            "?environment=STAGING",
            Some(&token),
            Some("application/json"),
            serde_json::to_vec(&seed()).unwrap(),
            None,
        )
        .await,
        400,
    )
    .await;
    problem(
        app.post_vorgang_raw(
            "",
            Some(&token),
            Some("text/plain"),
            serde_json::to_vec(&seed()).unwrap(),
            None,
        )
        .await,
        415,
    )
    .await;
    problem(
        app.post_vorgang_raw(
            "",
            Some(&token),
            None,
            serde_json::to_vec(&seed()).unwrap(),
            None,
        )
        .await,
        415,
    )
    .await;

    assert_eq!(app.sandbox_get("/_sandbox/vorgaenge").await, json!([]));
    assert_eq!(
        app.sandbox_get("/_sandbox/partners")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let token = app.token().await;
    let body = serde_json::to_vec(&seed()).unwrap();
    let first = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            body.clone(),
            Some("key-1"),
        )
        .await;
    let first = created(&app, first).await;
    let second = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            body,
            Some("key-1"),
        )
        .await;
    let second = created(&app, second).await;
    assert_eq!(first, second);
    assert_eq!(
        app.sandbox_get("/_sandbox/vorgaenge")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let mut other = seed();
    other["kommentare"] = json!(["anders"]);
    let reused = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            serde_json::to_vec(&other).unwrap(),
            Some("key-1"),
        )
        .await;
    problem(reused, 422).await;
}

#[tokio::test]
async fn europace_unavailable_is_503_and_a_retry_with_the_same_key_imports_once() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "status": 503}))
        .await;
    let body = serde_json::to_vec(&seed()).unwrap();
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            body.clone(),
            Some("k"),
        )
        .await;
    assert!(response.headers().contains_key("retry-after"));
    let failed = problem(response, 503).await;
    assert_eq!(failed["importStatus"], "FAILED");
    let id = failed["drkleinrkVorgangsnummer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.sandbox_get("/_sandbox/vorgaenge").await, json!([]));

    let retried = app
        .post_vorgang_raw("", Some(&token), Some("application/json"), body, Some("k"))
        .await;
    let retried = created(&app, retried).await;
    assert_eq!(retried["drkleinrkVorgangsnummer"], id);
    assert_eq!(
        app.sandbox_get("/_sandbox/vorgaenge")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_lost_kex_answer_is_504_in_doubt_and_never_resent() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "status": 0, "after_receive": true}))
        .await;
    let body = serde_json::to_vec(&seed()).unwrap();
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            body.clone(),
            Some("k"),
        )
        .await;
    let doubt = problem(response, 504).await;
    assert_eq!(doubt["importStatus"], "IN_DOUBT");
    let id = doubt["drkleinrkVorgangsnummer"].as_str().unwrap();
    let view: Value = app.get_vorgang(&token, id).await.json().await.unwrap();
    assert_eq!(view["status"], "IN_DOUBT");

    let again = app
        .post_vorgang_raw("", Some(&token), Some("application/json"), body, Some("k"))
        .await;
    problem(again, 504).await;
    assert_eq!(
        app.sandbox_get("/_sandbox/vorgaenge")
            .await
            .as_array()
            .unwrap()
            .len(),
        1,
        "received once, never re-sent"
    );
}

#[tokio::test]
async fn europace_refusing_our_request_is_502_failed() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "status": 400}))
        .await;
    let failed = problem(app.post_vorgang(&token, &seed()).await, 502).await;
    assert_eq!(failed["importStatus"], "FAILED");
    assert_eq!(app.sandbox_get("/_sandbox/vorgaenge").await, json!([]));
}

#[tokio::test]
async fn transient_token_and_partner_faults_are_retried() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "auth", "status": 500, "times": 2}))
        .await;
    app.sandbox_fault(json!({"target": "partner_lookup", "status": 503}))
        .await;
    created(&app, app.post_vorgang(&token, &seed()).await).await;
    assert_eq!(
        app.sandbox_get("/_sandbox/vorgaenge")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
