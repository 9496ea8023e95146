//! Issue 8, items 5 and 13: what a request may not carry (U+0000) and what an answer may not echo
//! (member names that are not identifiers), through the real server on SQLite and PostgreSQL.

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, both_backends, problem, seed, spawn_app_with};

both_backends!(
    nul_anywhere_is_422_with_its_pointer_and_nothing_is_stored_or_sent,
    member_names_are_echoed_only_if_they_are_identifiers,
);

/// Seeded partners of the sandbox (KBT01, TGP01, TGT01).
const SEEDED_PARTNERS: usize = 3;

/// Asserts that the service neither stored an import nor called Europace.
async fn nothing_stored_or_sent(app: &TestApp) {
    let store = app.store().await;
    let stored = store.as_import_store().list(None).await.unwrap();
    store.close().await;
    assert!(stored.is_empty(), "nothing stored: {stored:?}");
    assert!(app.sandbox_imports().await.is_empty(), "nothing imported");
    let partners = app.sandbox_get("/_sandbox/partners").await;
    assert_eq!(partners.as_array().unwrap().len(), SEEDED_PARTNERS);
    let stats = app.sandbox_stats().await;
    for target in ["partner_lookup", "partner_create", "kex"] {
        assert_eq!(stats[target], 0, "{target}: {stats}");
    }
}

/// The pointers of a 422 answer, in order.
fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect()
}

async fn nul_anywhere_is_422_with_its_pointer_and_nothing_is_stored_or_sent(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    let mut body = seed();
    body["vorgang"]["antragsteller1"]["personendaten"]["vorname"] = json!("Erika\u{0}GEHEIM");
    body["vorgang"]["neuesFeld"] = json!(["ok", {"x": "GEHEIM\u{0}"}]);
    body["tippgeber"]["nachname"] = json!("GEHEIM\u{0}");
    body["kommentare"] = json!(["GEHEIM\u{0}"]);
    body["partner"]["kundennummer"] = json!("\u{0}");
    body["partner"]["custom"][1]["value"] = json!("GEHEIM\u{0}");
    // In a member name, planted personal data: named by position.
    body["vorgang"]["haushalt"]["Erika\u{0}Mustermann"] = json!(1);
    let raw = serde_json::to_vec(&body).unwrap();
    assert!(
        String::from_utf8_lossy(&raw).contains("\\u0000"),
        "sent as the JSON escape"
    );

    let response = app.post_bytes(&token, &raw, Some("nul-key")).await;
    let refused = problem(response, 422).await;
    assert_eq!(
        pointers(&refused),
        [
            "/kommentare/0",
            "/partner/custom/1/value",
            "/partner/kundennummer",
            "/tippgeber/nachname",
            "/vorgang/antragsteller1/personendaten/vorname",
            "/vorgang/haushalt/#2",
            "/vorgang/neuesFeld/1/x",
        ]
    );
    let text = refused.to_string();
    for planted in ["GEHEIM", "Erika", "Mustermann", "\\u0000"] {
        assert!(!text.contains(planted), "{planted} echoed: {text}");
    }
    // The same answer again (a 422 is not stored under the key): never a 503 that invites
    // endless retries, never a 201 on one backend only.
    let again = app.post_bytes(&token, &raw, Some("nul-key")).await;
    assert_eq!(problem(again, 422).await["errors"], refused["errors"]);
    nothing_stored_or_sent(&app).await;
}

async fn member_names_are_echoed_only_if_they_are_identifiers(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    let planted = [
        "Erika Mustermann",
        "erika.mustermann@example.org",
        // 65 characters, otherwise an identifier.
        "GEHEIMxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "Straße",
        "GEHEIM~1",
        "GEHEIM/2",
    ];
    assert_eq!(planted[2].len(), 65);
    let secrets = ["Erika", "Mustermann", "GEHEIM", "Straße", "example.org"];

    // 201: unknown members are warnings in `messages`, by position.
    let mut body = seed();
    for name in planted {
        body["vorgang"]["antragsteller1"][name] = json!("x");
        body["tippgeber"][name] = json!("x");
    }
    body["vorgang"]["antragsteller1"]["neues_Feld_64"] = json!("x");
    let response = app.post_vorgang(&token, &body).await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    let messages: Vec<&str> = answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .filter(|m| m.starts_with("WARN unknown-field"))
        .collect();
    // antragsteller1 has 2 members before the planted ones, tippgeber 6.
    let mut expected: Vec<String> = (0..planted.len())
        .map(|n| format!("WARN unknown-field /tippgeber/#{}", 6 + n))
        .chain(
            (0..planted.len())
                .map(|n| format!("WARN unknown-field /vorgang/antragsteller1/#{}", 2 + n)),
        )
        .collect();
    expected.push("WARN unknown-field /vorgang/antragsteller1/neues_Feld_64".to_owned());
    assert_eq!(messages, expected);
    let id = answer["drkleinrkVorgangsnummer"].as_str().unwrap();
    let view = app.get_vorgang(&token, id).await.text().await.unwrap();
    for text in [answer.to_string(), view] {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} echoed: {text}");
        }
    }

    // 422: a violation at a member whose name is not an identifier.
    let mut body = seed();
    body["vorgang"]["erika.mustermann@example.org\u{0}"] = json!(1);
    let response = app.post_vorgang(&token, &body).await;
    let problem_body = problem(response, 422).await;
    assert_eq!(pointers(&problem_body), ["/vorgang/#4"]);

    // 400: a duplicate key inside such a member.
    let raw = br#"{"vorgang": {"Erika Mustermann": {"a": 1, "a": 2}}, "tippgeber": {}}"#;
    let response = app.post_bytes(&token, raw, None).await;
    let malformed = problem(response, 400).await;
    assert!(
        malformed["detail"]
            .as_str()
            .unwrap()
            .starts_with("duplicate key in the object at /vorgang/#0 "),
        "{malformed}"
    );
    for text in [problem_body.to_string(), malformed.to_string()] {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} echoed: {text}");
        }
    }
}
