//! The request fixture corpus of `vorgang-model` (crates/vorgang-model/tests/fixtures), sent byte
//! for byte through the real HTTP server.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helpers::spawn_app;

const SERVICE_FIELDS: [&str; 5] = [
    "kundenbetreuer",
    "tippgeber",
    "bearbeiter",
    "eigeneVorgangsnummer",
    "kommentare",
];

fn fixtures(kind: &str) -> Vec<(String, Vec<u8>, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vorgang-model/tests/fixtures")
        .join(kind);
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".expect.json")
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|path| {
            let body = std::fs::read(&path).unwrap();
            let expect_path = path.with_extension("expect.json");
            let expect: Value =
                serde_json::from_slice(&std::fs::read(&expect_path).unwrap()).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, body, expect)
        })
        .collect()
}

fn without_service_fields(vorgang: &Value) -> Value {
    let mut vorgang = vorgang.clone();
    if let Some(object) = vorgang.as_object_mut() {
        for field in SERVICE_FIELDS {
            object.remove(field);
        }
    }
    vorgang
}

#[tokio::test]
async fn every_fixture_gets_its_expected_answer_over_http() {
    let app = spawn_app().await;
    let token = app.token().await;
    let mut counts = std::collections::BTreeMap::<u64, usize>::new();

    for (name, body, expect) in fixtures("invalid") {
        let status = expect["status"].as_u64().unwrap();
        let response = app
            .post_vorgang_raw("", Some(&token), Some("application/json"), body, None)
            .await;
        assert_eq!(response.status().as_u16() as u64, status, "{name}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{name}"
        );
        let problem: Value = response.json().await.unwrap();
        if status == 422 {
            let pointers: Vec<Value> = problem["errors"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no errors"))
                .iter()
                .map(|e| e["pointer"].clone())
                .collect();
            assert_eq!(Value::Array(pointers), expect["pointers"], "{name}");
        }
        let text = problem.to_string();
        for planted in [
            "GEHEIM",
            "Mustermann",
            "DE98600100700160451700",
            "max.mustermann",
        ] {
            assert!(
                !text.contains(planted),
                "{name}: error body echoes a submitted value"
            );
        }
        *counts.entry(status).or_default() += 1;
    }
    assert_eq!(
        app.sandbox_get("/_sandbox/vorgaenge").await,
        Value::Array(Vec::new()),
        "no invalid request reached Europace"
    );

    let valid = fixtures("valid");
    for (index, (name, body, expect)) in valid.iter().enumerate() {
        let response = app
            .post_vorgang_raw(
                "",
                Some(&token),
                Some("application/json"),
                body.clone(),
                None,
            )
            .await;
        assert_eq!(response.status(), 201, "{name}");
        let answer: Value = response.json().await.unwrap();
        let messages = answer["messages"].as_array().unwrap();
        let warnings = expect["warnings"].as_array().cloned().unwrap_or_default();
        assert!(
            messages.ends_with(&warnings),
            "{name}: messages {messages:?} do not end with {warnings:?}"
        );
        let sent = app.sandbox_get("/_sandbox/vorgaenge").await;
        let sent = &sent[index];
        assert_eq!(
            sent["body"]["eigeneVorgangsnummer"], answer["drkleinrkVorgangsnummer"],
            "{name}"
        );
        let text = String::from_utf8_lossy(body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body));
        let request: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            without_service_fields(&sent["body"]),
            without_service_fields(&request["vorgang"]),
            "{name}: the vorgang reached Europace unchanged"
        );
        *counts.entry(201).or_default() += 1;
    }
    eprintln!("fixtures per status: {counts:?}");
    assert!(counts[&201] >= 20 && counts[&422] >= 40 && counts[&400] >= 10);
}
