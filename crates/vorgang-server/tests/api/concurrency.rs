//! Parallel requests, against SQLite and PostgreSQL: one `Idempotency-Key` imports once however
//! many requests race for it; different keys all import, without "database is locked".

use std::collections::HashSet;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Db, both_backends, seed, spawn_app_with};

both_backends!(
    twenty_parallel_requests_with_one_key_import_once,
    twenty_parallel_requests_with_different_keys_import_twenty_times,
);

const PARALLEL: usize = 20;

async fn twenty_parallel_requests_with_one_key_import_once(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    // Slow the KEX answer so that the requests overlap while the first one is running.
    app.sandbox_fault(json!({"target": "kex", "delay_ms": 500}))
        .await;
    let body = serde_json::to_vec(&seed()).unwrap();

    let answers = join_all((0..PARALLEL).map(|_| {
        let (app, token, body) = (&app, &token, &body);
        async move {
            let response = app.post_bytes(token, body, Some("same-key")).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    }))
    .await;

    let mut ids = HashSet::new();
    let mut created = 0;
    for (status, body) in &answers {
        match status {
            201 => created += 1,
            // The running import's real state (issue 9; before: an invented "IN_PROGRESS").
            409 => assert!(
                ["ACCEPTED", "PARTNER_READY", "SENDING"]
                    .contains(&body["importStatus"].as_str().unwrap_or_default()),
                "{body}"
            ),
            other => panic!("unexpected answer {other}: {body}"),
        }
        ids.insert(body["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned());
    }
    assert!(
        created >= 1,
        "at least the first request gets its 201: {answers:?}"
    );
    assert_eq!(ids.len(), 1, "every answer names the same import: {ids:?}");
    let id = ids.into_iter().next().unwrap();
    let europace: HashSet<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| &body["europaceVorgangsnummer"])
        .collect();
    assert_eq!(
        europace.len(),
        1,
        "all 201 answers carry one Europace case: {europace:?}"
    );

    assert_eq!(
        app.sandbox_imports().await.len(),
        1,
        "exactly one KEX import"
    );
    assert_eq!(app.sandbox_stats().await["kex"], 1);
    let store = app.store().await;
    let all = store
        .as_import_store()
        .list(&vorgang_core::ImportQuery::all())
        .await
        .unwrap();
    store.close().await;
    assert_eq!(all.len(), 1, "one stored import");
    assert_eq!(all[0].id.to_string(), id);

    // Once finished, the key replays the 201.
    let replay = app.post_bytes(&token, &body, Some("same-key")).await;
    assert_eq!(replay.status(), 201);
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["drkleinrkVorgangsnummer"], id.as_str());
}

async fn twenty_parallel_requests_with_different_keys_import_twenty_times(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    let body = serde_json::to_vec(&seed()).unwrap();

    let answers = join_all((0..PARALLEL).map(|n| {
        let (app, token, body) = (&app, &token, &body);
        async move {
            let key = format!("key-{n}");
            let response = app.post_bytes(token, body, Some(&key)).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    }))
    .await;

    let mut ids = HashSet::new();
    for (status, body) in &answers {
        assert_eq!(
            *status, 201,
            "every import succeeds (no \"database is locked\"): {body}"
        );
        ids.insert(body["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), PARALLEL);
    let imports = app.sandbox_imports().await;
    assert_eq!(imports.len(), PARALLEL);
    let sent: HashSet<&str> = imports
        .iter()
        .map(|v| v["body"]["eigeneVorgangsnummer"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent,
        ids.iter().map(String::as_str).collect(),
        "each import sent once"
    );
    // All twenty share one Tippgeber: created once at Europace (a racing creation answers 205).
    let partners = app.sandbox_get("/_sandbox/partners").await;
    assert_eq!(
        partners.as_array().unwrap().len(),
        4,
        "3 seeded + 1 Tippgeber: {partners}"
    );
}
