//! Issue 5, "nothing lost, nothing doubled": every Europace fault the sandbox can inject, through
//! the real server, against SQLite and PostgreSQL. For each case: the HTTP answer, the stored
//! state (`GET /vorgang/{id}` and the record in the database) and how many KEX imports reached
//! the sandbox (never more than one per `drkleinrkVorgangsnummer`).
//!
//! The observed outcomes are tabulated in docs/operations.md ("Faults and what they leave behind").

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, both_backends, problem, seed, spawn_app_with};

both_backends!(
    kex_503_once_then_the_same_key_imports_once,
    kex_429_is_503_failed,
    kex_answer_lost_after_receive_is_504_in_doubt_and_never_resent,
    kex_connection_dropped_before_receive_is_504_in_doubt,
    kex_400_is_502_failed,
    kex_401_once_refreshes_the_token_and_imports_once,
    kex_slower_than_our_request_timeout_is_504_in_doubt_recorded_once,
    kex_delayed_before_processing_beyond_our_timeout_is_504_in_doubt,
    partner_lookup_503_once_is_retried,
    partner_503_beyond_retries_is_503_failed_and_creates_nothing,
    partner_create_answer_lost_is_retried_without_a_second_partner,
    token_endpoint_500_twice_is_retried,
    token_endpoint_refusing_our_credentials_is_502_failed,
    europace_refusing_connections_is_503_failed,
);

/// Seeded partners of the sandbox (KBT01, TGP01, TGT01).
const SEEDED_PARTNERS: usize = 3;

fn body() -> Vec<u8> {
    serde_json::to_vec(&seed()).unwrap()
}

/// One answer of `POST /vorgang`: status, body and the `drkleinrkVorgangsnummer` it names.
struct Answer {
    status: u16,
    body: Value,
    id: String,
}

/// Reads an answer and checks its shape: 201 with a `Location`, or problem+json whose
/// `importStatus` matches the status (502/503 `FAILED`, 504 `IN_DOUBT`) and, for 503, `Retry-After`.
async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let body = if status == 201 {
        assert!(
            response.headers().contains_key("location"),
            "201 without Location"
        );
        response.json::<Value>().await.unwrap()
    } else {
        if status == 503 {
            assert!(
                response.headers().contains_key("retry-after"),
                "503 without Retry-After"
            );
        }
        let body = problem(response, status).await;
        let expected = match status {
            502 | 503 => "FAILED",
            504 => "IN_DOUBT",
            other => panic!("unexpected answer {other}: {body}"),
        };
        assert_eq!(
            body["importStatus"], expected,
            "importStatus of a {status}: {body}"
        );
        body
    };
    let id = body["drkleinrkVorgangsnummer"]
        .as_str()
        .unwrap_or_else(|| panic!("answer {status} names no drkleinrkVorgangsnummer: {body}"))
        .to_owned();
    Answer { status, body, id }
}

/// The stored state of `id` as the partner (`GET /vorgang/{id}`) and the database see it, and the
/// KEX imports the sandbox recorded: `imports` for this id and in total (one import per test).
/// The request body (personal data) is kept only while the import is unfinished (`IN_DOUBT`).
async fn assert_stored(app: &TestApp, token: &str, id: &str, state: &str, imports: usize) {
    assert_eq!(app.status_of(token, id).await, state, "GET /vorgang/{id}");
    let record = app.stored(id).await;
    assert_eq!(record.status.as_str(), state, "stored status");
    let finished = matches!(state, "COMPLETED" | "FAILED");
    assert_eq!(
        record.request.is_some(),
        !finished,
        "request body must be dropped exactly when the import is COMPLETED or FAILED ({state})"
    );
    assert_eq!(
        app.sandbox_imports_of(id).await,
        imports,
        "KEX imports of {id} at Europace"
    );
    assert_eq!(
        app.sandbox_imports().await.len(),
        imports,
        "KEX imports at Europace in total"
    );
    assert_eq!(
        app.sandbox.vorgaenge().len(),
        imports,
        "the sandbox's own count"
    );
}

async fn kex_503_once_then_the_same_key_imports_once(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "status": 503}))
        .await;

    let first = answer(app.post_bytes(&token, &body(), Some("k-503")).await).await;
    assert_eq!(first.status, 503);
    assert_stored(&app, &token, &first.id, "FAILED", 0).await;
    assert_eq!(app.stored(&first.id).await.attempts, 1);

    let retried = answer(app.post_bytes(&token, &body(), Some("k-503")).await).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(
        retried.id, first.id,
        "the retry keeps the drkleinrkVorgangsnummer"
    );
    assert_stored(&app, &token, &first.id, "COMPLETED", 1).await;
    assert_eq!(app.stored(&first.id).await.attempts, 2);

    // A third request with the key replays the 201.
    let replay = answer(app.post_bytes(&token, &body(), Some("k-503")).await).await;
    assert_eq!((replay.status, &replay.body), (201, &retried.body));
    assert_eq!(app.sandbox_imports().await.len(), 1);
    assert_eq!(imports_answered(&app, "FAILED").await, 1);
    assert_eq!(imports_answered(&app, "COMPLETED").await, 2);
}

async fn kex_429_is_503_failed(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "status": 429, "retry_after_s": 1}))
        .await;
    let failed = answer(app.post_bytes(&token, &body(), None).await).await;
    assert_eq!(failed.status, 503);
    assert_stored(&app, &token, &failed.id, "FAILED", 0).await;
    assert_eq!(
        app.sandbox_stats().await["kex"],
        1,
        "a KEX import is never retried by us"
    );
}

async fn kex_answer_lost_after_receive_is_504_in_doubt_and_never_resent(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "status": 0, "after_receive": true}))
        .await;

    let doubt = answer(app.post_bytes(&token, &body(), Some("k-lost")).await).await;
    assert_eq!(doubt.status, 504);
    assert_stored(&app, &token, &doubt.id, "IN_DOUBT", 1).await;

    let again = answer(app.post_bytes(&token, &body(), Some("k-lost")).await).await;
    assert_eq!(
        (again.status, &again.id),
        (504, &doubt.id),
        "replayed, not re-sent"
    );
    assert_stored(&app, &token, &doubt.id, "IN_DOUBT", 1).await;
    assert_eq!(app.sandbox_stats().await["kex"], 1);
    assert_eq!(imports_answered(&app, "IN_DOUBT").await, 2);

    // The operator finds the case at Europace by its eigeneVorgangsnummer and resolves it.
    let number = app.sandbox_imports().await[0]["vorgangsnummer"]
        .as_str()
        .unwrap()
        .to_owned();
    let resolved = app
        .cli(&[
            "imports",
            "resolve",
            &doubt.id,
            "--europace-vorgangsnummer",
            &number,
        ])
        .await;
    assert_eq!(resolved[0]["status"], "COMPLETED");
    assert_stored(&app, &token, &doubt.id, "COMPLETED", 1).await;
    let replay = answer(app.post_bytes(&token, &body(), Some("k-lost")).await).await;
    assert_eq!((replay.status, &replay.id), (201, &doubt.id));
    assert_eq!(replay.body["europaceVorgangsnummer"], number.as_str());
    assert!(
        replay.body["crmKennung"]
            .as_str()
            .unwrap()
            .starts_with("DKR-")
    );
    assert_eq!(
        app.sandbox_stats().await["kex"],
        1,
        "resolving sends nothing"
    );
}

async fn kex_connection_dropped_before_receive_is_504_in_doubt(db: Db) {
    // The connection breaks before Europace processed the import: nothing exists there, but we
    // cannot know that, so the import is IN_DOUBT for an operator to resolve with --failed.
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "status": 0}))
        .await;
    let doubt = answer(app.post_bytes(&token, &body(), Some("k-dropped")).await).await;
    assert_eq!(doubt.status, 504);
    assert_stored(&app, &token, &doubt.id, "IN_DOUBT", 0).await;
    assert_eq!(app.sandbox_stats().await["kex"], 1);

    // The operator finds no case with this eigeneVorgangsnummer at Europace: --failed.
    let listed = app.cli(&["imports", "list", "--status", "IN_DOUBT"]).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["drkleinrkVorgangsnummer"], doubt.id.as_str());
    let resolved = app
        .cli(&["imports", "resolve", &doubt.id, "--failed"])
        .await;
    assert_eq!(resolved[0]["status"], "FAILED");
    assert_stored(&app, &token, &doubt.id, "FAILED", 0).await;
    assert!(
        app.cli(&["imports", "list", "--status", "IN_DOUBT"])
            .await
            .is_empty()
    );
    // Final: the key now replays a 502 (send again with a new key); nothing is sent.
    let replay = answer(app.post_bytes(&token, &body(), Some("k-dropped")).await).await;
    assert_eq!((replay.status, &replay.id), (502, &doubt.id));
    assert_eq!(app.sandbox_stats().await["kex"], 1);
}

async fn kex_400_is_502_failed(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "status": 400}))
        .await;
    let failed = answer(app.post_bytes(&token, &body(), Some("k-400")).await).await;
    assert_eq!(failed.status, 502);
    assert_stored(&app, &token, &failed.id, "FAILED", 0).await;

    // A 502 is final: the same key replays it without calling Europace again.
    let again = answer(app.post_bytes(&token, &body(), Some("k-400")).await).await;
    assert_eq!((again.status, &again.id), (502, &failed.id));
    assert_eq!(app.sandbox_stats().await["kex"], 1);
}

async fn kex_401_once_refreshes_the_token_and_imports_once(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "status": 401}))
        .await;
    let created = answer(app.post_bytes(&token, &body(), None).await).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_stored(&app, &token, &created.id, "COMPLETED", 1).await;
    assert_eq!(
        app.sandbox_stats().await["kex"],
        2,
        "sent once more after the 401"
    );
}

async fn kex_slower_than_our_request_timeout_is_504_in_doubt_recorded_once(db: Db) {
    // Europace creates the case at once but answers after 2 s; we give up after 0.8 s.
    let app = spawn_app_with(db, |settings| {
        settings.europace.connect_timeout_ms = 300;
        settings.europace.request_timeout_ms = 800;
    })
    .await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "delay_ms": 2000, "after_receive": true}))
        .await;
    let started = Instant::now();
    let doubt = answer(app.post_bytes(&token, &body(), None).await).await;
    assert_eq!(doubt.status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "answered before Europace did"
    );
    wait_until_elapsed(started, Duration::from_millis(2300)).await;
    assert_stored(&app, &token, &doubt.id, "IN_DOUBT", 1).await;
    assert_eq!(app.sandbox_stats().await["kex"], 1);
}

async fn kex_delayed_before_processing_beyond_our_timeout_is_504_in_doubt(db: Db) {
    // Europace is slow before it processes the import; we give up after 0.8 s and close the
    // connection, but Europace goes on and creates the case at 2 s: exactly why this is IN_DOUBT
    // and never re-sent.
    let app = spawn_app_with(db, |settings| {
        settings.europace.connect_timeout_ms = 300;
        settings.europace.request_timeout_ms = 800;
    })
    .await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "kex", "delay_ms": 2000}))
        .await;
    let started = Instant::now();
    let doubt = answer(app.post_bytes(&token, &body(), Some("k-slow")).await).await;
    assert_eq!(doubt.status, 504);
    if started.elapsed() < Duration::from_millis(1500) {
        assert_eq!(
            app.sandbox_imports_of(&doubt.id).await,
            0,
            "not yet created at Europace"
        );
    }
    // The sandbox finishes the abandoned request after its delay (actix-web does not cancel a
    // handler whose client went away): the case appears once, later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.sandbox_imports_of(&doubt.id).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the delayed import never reached the sandbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_stored(&app, &token, &doubt.id, "IN_DOUBT", 1).await;
    let again = answer(app.post_bytes(&token, &body(), Some("k-slow")).await).await;
    assert_eq!(
        (again.status, &again.id),
        (504, &doubt.id),
        "replayed, not re-sent"
    );
    assert_eq!(app.sandbox_stats().await["kex"], 1);
    assert_eq!(app.sandbox_imports().await.len(), 1);
}

async fn partner_lookup_503_once_is_retried(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "partner_lookup", "status": 503}))
        .await;
    let created = answer(app.post_bytes(&token, &body(), None).await).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_stored(&app, &token, &created.id, "COMPLETED", 1).await;
    let stats = app.sandbox_stats().await;
    assert_eq!(stats["partner_lookup"], 2, "{stats}");
    assert_eq!(
        app.sandbox_get("/_sandbox/partners")
            .await
            .as_array()
            .unwrap()
            .len(),
        SEEDED_PARTNERS + 1
    );
}

async fn partner_503_beyond_retries_is_503_failed_and_creates_nothing(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "partner", "status": 503, "times": 5}))
        .await;
    let failed = answer(app.post_bytes(&token, &body(), Some("k-partner")).await).await;
    assert_eq!(failed.status, 503);
    assert_stored(&app, &token, &failed.id, "FAILED", 0).await;
    let stats = app.sandbox_stats().await;
    assert_eq!(stats["partner_lookup"], 3, "three attempts: {stats}");
    assert_eq!(stats["partner_create"], 0, "{stats}");
    assert_eq!(stats["kex"], 0, "{stats}");
    assert_eq!(
        app.sandbox_get("/_sandbox/partners")
            .await
            .as_array()
            .unwrap()
            .len(),
        SEEDED_PARTNERS
    );

    // Europace back: the same key is a new attempt under the same number.
    app.clear_sandbox_faults().await;
    let retried = answer(app.post_bytes(&token, &body(), Some("k-partner")).await).await;
    assert_eq!((retried.status, &retried.id), (201, &failed.id));
    assert_stored(&app, &token, &failed.id, "COMPLETED", 1).await;
}

async fn partner_create_answer_lost_is_retried_without_a_second_partner(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "partner_create", "status": 0, "after_receive": true}))
        .await;
    let created = answer(app.post_bytes(&token, &body(), None).await).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_stored(&app, &token, &created.id, "COMPLETED", 1).await;
    let stats = app.sandbox_stats().await;
    assert_eq!(
        stats["partner_create"], 2,
        "created, answer lost, created again (205): {stats}"
    );
    let partners = app.sandbox_get("/_sandbox/partners").await;
    assert_eq!(
        partners.as_array().unwrap().len(),
        SEEDED_PARTNERS + 1,
        "one Tippgeber: {partners}"
    );
    let sent = &app.sandbox_imports().await[0];
    assert_eq!(
        sent["body"]["tippgeber"]["partnerId"],
        partners[SEEDED_PARTNERS]["partnerId"]
    );
}

async fn token_endpoint_500_twice_is_retried(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "auth", "status": 500, "times": 2}))
        .await;
    let created = answer(app.post_bytes(&token, &body(), None).await).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_stored(&app, &token, &created.id, "COMPLETED", 1).await;
}

async fn token_endpoint_refusing_our_credentials_is_502_failed(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "auth", "status": 401, "times": 5}))
        .await;
    let failed = answer(app.post_bytes(&token, &body(), None).await).await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert_stored(&app, &token, &failed.id, "FAILED", 0).await;
    let stats = app.sandbox_stats().await;
    assert_eq!(stats["partner_lookup"], 0, "{stats}");
    assert_eq!(stats["kex"], 0, "{stats}");
}

async fn europace_refusing_connections_is_503_failed(db: Db) {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = spawn_app_with(db, |settings| {
        settings.europace.base_url =
            Some(url::Url::parse(&format!("http://127.0.0.1:{closed_port}")).unwrap());
    })
    .await;
    let token = app.token().await;
    let failed = answer(app.post_bytes(&token, &body(), Some("k-refused")).await).await;
    assert_eq!(failed.status, 503);
    assert_stored(&app, &token, &failed.id, "FAILED", 0).await;
    let stats = app.sandbox_stats().await;
    assert_eq!(stats["auth"], 0, "the app's sandbox was not used: {stats}");
}

/// Waits until `duration` has passed since `started` (a fault's delay must be over before the
/// sandbox's final state is read; there is nothing to poll for an answer that goes nowhere).
async fn wait_until_elapsed(started: Instant, duration: Duration) {
    if let Some(rest) = duration.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
}

/// `vorgang_imports_total{status="…"}` from `GET /metrics` (0 when absent).
async fn imports_answered(app: &TestApp, status: &str) -> u64 {
    let text = app.metrics_text().await;
    let prefix = format!("vorgang_imports_total{{status=\"{status}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |count| count.trim().parse().unwrap())
}
