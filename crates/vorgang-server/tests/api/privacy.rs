//! Issue 8, items 5, 6 and 13: what a request may not carry (U+0000), what an answer may not echo
//! (member names that are not identifiers), and what may not stay on disk (the request bodies of
//! finished imports), through the real server.

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, both_backends, problem, seed, spawn_app, spawn_app_with};

both_backends!(
    nul_anywhere_is_422_with_its_pointer_and_nothing_is_stored_or_sent,
    member_names_are_echoed_only_if_they_are_identifiers,
);

/// Seeded partners of the sandbox (KBT01, TGP01, TGT01).
const SEEDED_PARTNERS: usize = 3;

/// Asserts that the service neither stored an import nor called Europace.
async fn nothing_stored_or_sent(app: &TestApp) {
    let store = app.store().await;
    let stored = store
        .as_import_store()
        .list(&vorgang_core::ImportQuery::all())
        .await
        .unwrap();
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
    let mut app = spawn_app_with(db, |_| {}).await;
    // The English texts are checked (German is the default).
    app.speak("en");
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

/// The seed request with distinctive personal values (all ASCII, so they appear byte for byte
/// in whatever form they were stored: JSON text, a page image, a WAL frame).
fn planted_request(tag: &str, iban: &str) -> (Value, Vec<String>) {
    let vorname = format!("Hildegunde{tag}");
    let nachname = format!("Zaunkoenigsberger{tag}");
    let strasse = format!("Planetenweg{tag}");
    let email = format!("hildegunde.{tag}@zaunkoenig.example");
    let telefon = format!("030-7766{tag}");
    let tipp_vorname = format!("Tippolina{tag}");
    let tipp_nachname = format!("Gebersdottir{tag}");
    let tipp_email = format!("tippolina.{tag}@partner.example");
    let mut body = seed();
    let antragsteller = &mut body["vorgang"]["antragsteller1"];
    antragsteller["personendaten"]["vorname"] = json!(vorname);
    antragsteller["personendaten"]["nachname"] = json!(nachname);
    antragsteller["wohnsituation"]["anschrift"]["strasse"] = json!(strasse);
    antragsteller["kontakt"] = json!({"email": email, "telefonnummer": telefon});
    body["vorgang"]["haushalt"]["kontoverbindung"]["iban"] = json!(iban);
    body["tippgeber"]["vorname"] = json!(tipp_vorname);
    body["tippgeber"]["nachname"] = json!(tipp_nachname);
    body["tippgeber"]["email"] = json!(tipp_email);
    body["kommentare"] = json!([format!("{vorname} {nachname} hat 3 Kreditkarten.")]);
    let planted = vec![
        vorname,
        nachname,
        strasse,
        email,
        telefon,
        iban.to_owned(),
        tipp_vorname,
        tipp_nachname,
        tipp_email,
    ];
    (body, planted)
}

/// Every planted value found in any file of `dir`, as `(file, value)`.
pub fn planted_values_in_files(dir: &std::path::Path, planted: &[String]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // The last connection closing may remove `-wal` and `-shm` just after the listing: a
        // file that is gone holds nothing any more.
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => panic!("{}: {error}", path.display()),
        };
        for value in planted {
            if bytes
                .windows(value.len())
                .any(|window| window == value.as_bytes())
            {
                found.push((
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    value.clone(),
                ));
            }
        }
    }
    found
}

#[cfg(unix)] // file modes
#[tokio::test]
async fn sqlite_files_are_private_and_keep_no_body_of_a_finished_import() {
    use std::os::unix::fs::PermissionsExt;

    let mut app = spawn_app().await;
    let token = app.token().await;

    // One import to COMPLETED.
    let (completed, mut planted) = planted_request("Eins", "DE89370400440532013000");
    let response = app.post_vorgang(&token, &completed).await;
    assert_eq!(response.status(), 201);
    // One import to FAILED: Europace refuses it (KEX 400).
    app.sandbox_fault(json!({"target": "kex", "status": 400}))
        .await;
    let (failed, planted_failed) = planted_request("Zwei", "DE02120300000000202051");
    let response = app.post_vorgang(&token, &failed).await;
    let refused = problem(response, 502).await;
    assert_eq!(refused["importStatus"], "FAILED");
    planted.extend(planted_failed);
    // The values did pass through the service: Europace got the first import.
    let sent = serde_json::to_string(&app.sandbox_imports().await).unwrap();
    assert!(sent.contains("HildegundeEins") && sent.contains("DE89370400440532013000"));

    // While it runs: the database, its WAL and its shared-memory file are the owner's only.
    let dir = app.data_dir().to_owned();
    for name in ["vorgang.db", "vorgang.db-wal", "vorgang.db-shm"] {
        let mode = std::fs::metadata(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }

    app.stop().await;
    let found = planted_values_in_files(&dir, &planted);
    assert!(
        found.is_empty(),
        "personal data of finished imports left on disk: {found:?}"
    );
    // The files still hold the imports themselves (only the bodies are gone).
    let database = std::fs::read(dir.join("vorgang.db")).unwrap();
    assert!(
        database.windows(9).any(|w| w == b"COMPLETED")
            && database.windows(6).any(|w| w == b"FAILED"),
        "the import records are kept"
    );
}
