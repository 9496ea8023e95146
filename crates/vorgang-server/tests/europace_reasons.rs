//! Issue 12, point 2: when Europace refuses a KEX import, the partner gets Europace's reasons
//! (`europaceMessages` of the 502, its replay, the import's `messages`), on both backends, and
//! the logs keep only the status and the number of messages, never their text.
//!
//! Its own test binary: it installs the service's log subscriber process-wide, writing into a
//! buffer, to read what the server (running on actix worker threads) logged. In the `api`
//! binary a process-wide subscriber would capture every other test's logs as well.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

#[path = "api/helpers.rs"]
#[allow(dead_code)] // the API tests' helpers; this binary uses a few of them
mod helpers;
mod support;

use crate::support::Captured;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, both_backends, problem, seed, spawn_app_with};

both_backends!(a_refusal_carries_europaces_messages_in_the_502_its_replay_and_the_import);

/// Installs the service's own subscriber (JSON lines, its filters) process-wide, once, writing
/// into the returned buffer. Called before any app starts, so `TEST_LOG` cannot take its place.
fn capture() -> Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing::subscriber::set_global_default(vorgang_server::telemetry::subscriber(move || {
            writer.clone()
        }))
        .expect("no other subscriber in this test binary");
        captured
    })
    .clone()
}

/// A name quoted by Europace: personal data that must never reach a log line.
const QUOTED_NAME: &str = "Zqxerika Quasthoff";

fn europace_messages() -> Value {
    json!([
        "Die Postleitzahl des Antragstellers ist ungültig.",
        format!("Antragsteller {QUOTED_NAME}: Geburtsdatum fehlt."),
        "{\"code\":\"KEX-17\"}",
    ])
}

async fn a_refusal_carries_europaces_messages_in_the_502_its_replay_and_the_import(db: Db) {
    let log = capture();
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({
        "target": "kex",
        "status": 400,
        "body": {"messages": europace_messages(), "traceId": "europace-trace"},
    }))
    .await;
    let body = serde_json::to_vec(&seed()).unwrap();

    let first = problem(app.post_bytes(&token, &body, Some("reasons-1")).await, 502).await;
    assert_eq!(
        first["type"],
        "https://api.drkleinservice.de/problems/europace-rejected"
    );
    assert_eq!(first["importStatus"], "FAILED");
    assert_eq!(first["europaceMessages"], europace_messages(), "{first}");
    let id = first["drkleinrkVorgangsnummer"]
        .as_str()
        .unwrap()
        .to_owned();

    // The replay under the same key: the same answer, messages included, nothing sent again.
    let replay = problem(app.post_bytes(&token, &body, Some("reasons-1")).await, 502).await;
    for member in [
        "type",
        "detail",
        "drkleinrkVorgangsnummer",
        "importStatus",
        "europaceMessages",
    ] {
        assert_eq!(replay[member], first[member], "{member}");
    }
    assert_eq!(app.sandbox_stats().await["kex"], 1, "one KEX call");

    // Stored with the import: Europace's messages first in `messages`, then ours.
    let view: Value = app.get_vorgang(&token, &id).await.json().await.unwrap();
    assert_eq!(view["status"], "FAILED");
    let messages = view["messages"].as_array().unwrap();
    assert_eq!(
        messages[..3],
        europace_messages().as_array().unwrap()[..],
        "{view}"
    );
    let listed: Value = app.list_json(&token, "?status=FAILED").await;
    assert_eq!(listed["items"], json!([view]));
    let stored = app.stored(&id).await;
    assert_eq!(
        stored.failure.unwrap().europace_messages.as_slice(),
        europace_messages()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );

    // The logs: the refusal with its status and number of messages, never their text.
    let text = log.text();
    let refusal = text
        .lines()
        .find(|line| line.contains(&id) && line.contains("status 400 (3 messages)"))
        .unwrap_or_else(|| panic!("no log line of the refusal of {id}"));
    assert!(refusal.contains("KEX import failed"), "{refusal}");
    for secret in [QUOTED_NAME, "Zqxerika", "Geburtsdatum fehlt", "KEX-17"] {
        assert!(!text.contains(secret), "{secret} logged");
    }
}

/// A refusal by Partnermanagement (the Tippgeber step) is a 502 too; its messages are not
/// passed on (only the KEX import's are), so the list is empty.
#[tokio::test]
async fn a_partner_refusal_is_502_with_no_europace_messages() {
    let log = capture();
    let app: TestApp = spawn_app_with(Db::Sqlite, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({
        "target": "partner_lookup",
        "status": 403,
        "body": {"message": format!("kein Zugriff auf {QUOTED_NAME}")},
    }))
    .await;
    let answer = problem(app.post_vorgang(&token, &seed()).await, 502).await;
    assert_eq!(answer["europaceMessages"], json!([]));
    assert_eq!(app.sandbox_stats().await["kex"], 0);
    assert!(!log.text().contains("Zqxerika"));
}
