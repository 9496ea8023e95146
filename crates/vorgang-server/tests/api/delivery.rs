//! Issue 13: no lead lost while Europace is down. `Prefer: respond-async` keeps an import Europace
//! cannot take as `QUEUED` (202), the background delivers it once, and the partner's webhook gets
//! one signed event (Standard Webhooks) per outcome; without the header nothing changes.
//!
//! The webhook receiver is a wiremock server on loopback; every mock states how often it must be
//! called (`expect`), checked when the receiver is dropped (and by `verify`).

use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Db, TestApp, seed, spawn_app_with};

/// Upper bound of every wait.
const PATIENCE: Duration = Duration::from_secs(20);

/// An app whose re-delivery waits are short (100 to 400 ms).
async fn app(db: Db) -> TestApp {
    spawn_app_with(db, |settings| {
        settings.delivery.retry_initial_ms = 100;
        settings.delivery.retry_max_ms = 400;
        settings.webhooks.timeout_ms = 1_000;
    })
    .await
}

/// Gives the app's client the webhook `{receiver}/hook` through the CLI; returns the key bytes
/// of the `webhook_secret` it printed.
async fn set_webhook(app: &TestApp, receiver: &MockServer) -> Vec<u8> {
    let url = format!("{}/hook", receiver.uri());
    let lines = app
        .cli(&["clients", "set-webhook", &app.client_id, &url])
        .await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["client_id"], app.client_id.as_str());
    assert_eq!(lines[0].as_object().unwrap().len(), 2, "{}", lines[0]);
    let secret = lines[0]["webhook_secret"].as_str().unwrap();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(key.len(), 32);
    key
}

/// `POST /vorgang` with `Prefer: respond-async`.
async fn post_async(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(format!("{}/vorgang", app.address))
        .bearer_auth(token)
        .header("Prefer", "respond-async")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Asserts the 202 of a queued import; returns its id.
async fn assert_queued(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["preference-applied"], "respond-async");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    assert_eq!(body["importStatus"], "QUEUED");
    let id = body["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/vorgang/{id}"));
    id
}

/// Waits until the receiver got at least `n` requests; returns them all.
async fn received(receiver: &MockServer, n: usize) -> Vec<wiremock::Request> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = receiver.received_requests().await.unwrap();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} webhook calls",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until import `id` is in `status` (`GET /vorgang/{id}`).
async fn wait_for_status(app: &TestApp, token: &str, id: &str, status: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if app.status_of(token, id).await == status {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never became {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Verifies a webhook call as a partner would (Standard Webhooks: HMAC-SHA256 over
/// `{webhook-id}.{webhook-timestamp}.{body}` with the secret's key, `v1,` + base64); returns
/// the webhook-id and the body.
fn verified(request: &wiremock::Request, key: &[u8]) -> (String, Value) {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let id = header("webhook-id");
    let timestamp = header("webhook-timestamp");
    let sent_at: i64 = timestamp.parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - sent_at).abs() < 300,
        "fresh timestamp"
    );
    let body = String::from_utf8(request.body.clone()).unwrap();
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        format!("{id}.{timestamp}.{body}").as_bytes(),
    );
    let expected = format!("v1,{}", STANDARD.encode(tag.as_ref()));
    assert!(
        header("webhook-signature")
            .split(' ')
            .any(|signature| signature == expected),
        "signature does not verify"
    );
    assert_eq!(header("content-type"), "application/json");
    (id, serde_json::from_str(&body).unwrap())
}

/// The event body: its type, the import, no personal data.
fn assert_event(event: &Value, event_type: &str, id: &str, status: &str) {
    assert_eq!(event["type"], event_type, "{event}");
    assert!(chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap()).is_ok());
    let data = event["data"].as_object().unwrap();
    assert_eq!(data["drkleinrkVorgangsnummer"], id);
    assert_eq!(data["status"], status);
    assert_eq!(data["environment"], "TEST");
    for key in data.keys() {
        assert!(
            [
                "drkleinrkVorgangsnummer",
                "status",
                "environment",
                "europaceVorgangsnummer",
                "crmKennung"
            ]
            .contains(&key.as_str()),
            "{key} is not part of an event"
        );
    }
    assert_eq!(event.as_object().unwrap().len(), 3, "{event}");
}

/// The receiver's mock: `status` for the next `times` calls (`None`: every call), expected to
/// be called exactly `expect` times.
async fn answer(receiver: &MockServer, status: u16, times: Option<u64>, expect: u64) {
    let mock = Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(status));
    let mock = match times {
        Some(times) => mock.up_to_n_times(times),
        None => mock,
    };
    mock.expect(expect).mount(receiver).await;
}

#[tokio::test]
async fn a_queued_import_is_delivered_once_and_reported_by_one_signed_event() {
    let app = spawn_app_with(Db::Sqlite, |settings| {
        // Long enough to see it QUEUED before the first re-delivery (at least 1 s after the
        // 202: the jitter takes between half and all of the wait), also on a loaded machine.
        settings.delivery.retry_initial_ms = 2_000;
        settings.delivery.retry_max_ms = 2_000;
    })
    .await;
    let receiver = MockServer::start().await;
    answer(&receiver, 200, None, 1).await;
    let key = set_webhook(&app, &receiver).await;
    let token = app.token().await;

    app.sandbox_fault(json!({"target": "kex", "status": 503}))
        .await;
    let id = assert_queued(post_async(&app, &token, &seed()).await).await;
    assert_eq!(app.status_of(&token, &id).await, "QUEUED");
    let stored = app.stored(&id).await;
    assert!(stored.notify);
    assert!(stored.next_attempt_at.is_some());
    assert!(stored.request.is_some(), "kept until delivered");

    let calls = received(&receiver, 1).await;
    let (webhook_id, event) = verified(&calls[0], &key);
    assert!(webhook_id.starts_with("msg_"));
    assert_event(&event, "vorgang.completed", &id, "COMPLETED");
    let view: Value = app.get_vorgang(&token, &id).await.json().await.unwrap();
    assert_eq!(view["status"], "COMPLETED");
    assert_eq!(
        event["data"]["europaceVorgangsnummer"],
        view["europaceVorgangsnummer"]
    );
    assert_eq!(event["data"]["crmKennung"], view["crmKennung"]);
    assert_eq!(app.sandbox_imports_of(&id).await, 1, "exactly one case");
    assert_eq!(app.stored(&id).await.request, None, "body dropped");

    // Nothing more arrives; the metrics tell the story.
    tokio::time::sleep(Duration::from_millis(800)).await;
    receiver.verify().await;
    assert_eq!(app.sandbox_imports_of(&id).await, 1);
    let metrics = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vorgang_deliveries_total{outcome=\"COMPLETED\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vorgang_webhook_deliveries_total{outcome=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vorgang_imports_open{status=\"QUEUED\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("vorgang_webhook_outbox 0"), "{metrics}");
}

#[tokio::test]
async fn without_prefer_an_unavailable_europace_is_503_as_before_and_with_it_success_is_201() {
    let app = app(Db::Sqlite).await;
    let receiver = MockServer::start().await;
    answer(&receiver, 200, None, 0).await;
    set_webhook(&app, &receiver).await;
    let token = app.token().await;

    app.sandbox_fault(json!({"target": "kex", "status": 503}))
        .await;
    let response = app.post_vorgang(&token, &seed()).await;
    assert!(response.headers().get("preference-applied").is_none());
    let problem = crate::helpers::problem(response, 503).await;
    assert_eq!(problem["importStatus"], "FAILED");
    let id = problem["drkleinrkVorgangsnummer"]
        .as_str()
        .unwrap()
        .to_owned();

    // With the header, an import Europace takes at once is the usual 201.
    let response = post_async(&app, &token, &seed()).await;
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("preference-applied").is_none());

    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        app.status_of(&token, &id).await,
        "FAILED",
        "never re-delivered"
    );
    assert_eq!(app.sandbox_imports_of(&id).await, 0);
    receiver.verify().await;
}

#[tokio::test]
async fn europace_refusing_a_queued_import_fails_it_and_reports_vorgang_failed() {
    let app = app(Db::Sqlite).await;
    let receiver = MockServer::start().await;
    answer(&receiver, 204, None, 1).await;
    let key = set_webhook(&app, &receiver).await;
    let token = app.token().await;

    // First unavailable (queued), then refused with a reason.
    app.sandbox_fault(json!({"target": "kex", "status": 503}))
        .await;
    app.sandbox_fault(
        json!({"target": "kex", "status": 400, "body": {"messages": ["PLZ ungültig"]}}),
    )
    .await;
    let id = assert_queued(post_async(&app, &token, &seed()).await).await;

    let calls = received(&receiver, 1).await;
    let (_, event) = verified(&calls[0], &key);
    assert_event(&event, "vorgang.failed", &id, "FAILED");
    assert!(
        !event.to_string().contains("PLZ"),
        "Europace's messages stay out of events"
    );
    assert_eq!(app.status_of(&token, &id).await, "FAILED");
    assert_eq!(app.sandbox_imports_of(&id).await, 0, "no case");
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.verify().await;
}

#[tokio::test]
async fn a_receiver_answering_500_gets_the_same_webhook_id_again() {
    let app = app(Db::Sqlite).await;
    let receiver = MockServer::start().await;
    // First call 500, then 200.
    answer(&receiver, 500, Some(1), 1).await;
    answer(&receiver, 200, None, 1).await;
    let key = set_webhook(&app, &receiver).await;
    let token = app.token().await;

    // 429: Europace overloaded, nothing created: queued as well.
    app.sandbox_fault(json!({"target": "kex", "status": 429}))
        .await;
    let id = assert_queued(post_async(&app, &token, &seed()).await).await;

    let calls = received(&receiver, 2).await;
    let (first_id, first) = verified(&calls[0], &key);
    let (second_id, second) = verified(&calls[1], &key);
    assert_eq!(first_id, second_id, "the same webhook-id on every try");
    assert_eq!(first, second, "the same body");
    assert_event(&second, "vorgang.completed", &id, "COMPLETED");
    tokio::time::sleep(Duration::from_millis(800)).await;
    receiver.verify().await;
    assert_eq!(app.sandbox_imports_of(&id).await, 1);
}

#[tokio::test]
async fn an_in_doubt_import_resolved_by_the_operator_is_reported_completed() {
    let app = app(Db::Sqlite).await;
    let receiver = MockServer::start().await;
    answer(&receiver, 200, None, 1).await;
    let key = set_webhook(&app, &receiver).await;
    let token = app.token().await;

    // The answer is lost after Europace received it: 504, never sent again, never queued.
    app.sandbox_fault(json!({"target": "kex", "status": 0, "after_receive": true}))
        .await;
    let response = post_async(&app, &token, &seed()).await;
    let problem = crate::helpers::problem(response, 504).await;
    let id = problem["drkleinrkVorgangsnummer"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver.received_requests().await.unwrap().is_empty(),
        "the 504 itself told the partner"
    );
    assert_eq!(app.sandbox_imports_of(&id).await, 1);

    let resolved = app
        .cli(&[
            "imports",
            "resolve",
            &id,
            "--europace-vorgangsnummer",
            "OP4711",
        ])
        .await;
    assert_eq!(resolved[0]["status"], "COMPLETED");
    let calls = received(&receiver, 1).await;
    let (_, event) = verified(&calls[0], &key);
    assert_event(&event, "vorgang.completed", &id, "COMPLETED");
    assert_eq!(event["data"]["europaceVorgangsnummer"], "OP4711");
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.verify().await;
    assert_eq!(app.sandbox_imports_of(&id).await, 1, "never sent again");
}

#[tokio::test]
async fn two_replicas_on_postgres_deliver_each_queued_import_once() {
    let app = app(Db::Postgres).await;
    const IMPORTS: usize = 6;
    let receiver = MockServer::start().await;
    answer(&receiver, 200, None, IMPORTS as u64).await;
    let key = set_webhook(&app, &receiver).await;
    let token = app.token().await;
    let _replica = app.spawn_replica().await;

    // Europace down until every import is queued: a fault for a fixed number of calls would
    // let the replicas' re-deliveries (100 ms after queueing) use it up before the last POST,
    // which would then be imported at once (201 instead of 202).
    app.sandbox_fault(json!({"target": "kex", "status": 503, "times": 1_000}))
        .await;
    let mut ids = Vec::new();
    for _ in 0..IMPORTS {
        ids.push(assert_queued(post_async(&app, &token, &seed()).await).await);
    }
    app.clear_sandbox_faults().await;
    for id in &ids {
        wait_for_status(&app, &token, id, "COMPLETED").await;
    }
    let calls = received(&receiver, IMPORTS).await;
    let mut reported: Vec<String> = calls
        .iter()
        .map(|call| {
            let (_, event) = verified(call, &key);
            assert_eq!(event["type"], "vorgang.completed");
            event["data"]["drkleinrkVorgangsnummer"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    reported.sort();
    ids.sort();
    assert_eq!(reported, ids, "one event per import");
    tokio::time::sleep(Duration::from_millis(800)).await;
    for id in &ids {
        assert_eq!(
            app.sandbox_imports_of(id).await,
            1,
            "{id}: exactly one case"
        );
    }
    receiver.verify().await;
}

#[tokio::test]
async fn webhook_urls_must_be_https_unless_loopback_or_allowed() {
    let app = app(Db::Sqlite).await;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_vorgang-server"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VORGANG_") {
            command.env_remove(name);
        }
    }
    use secrecy::ExposeSecret as _;
    command
        .env(
            "VORGANG_DATABASE_URL",
            app.settings.database_url.expose_secret(),
        )
        .env(
            "VORGANG_KEY_ENCRYPTION_KEY",
            app.settings
                .key_encryption_key
                .as_ref()
                .unwrap()
                .expose_secret(),
        )
        .args([
            "clients",
            "set-webhook",
            &app.client_id,
            "http://partner.example/hook",
        ]);
    let output = command.output().unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no secret printed");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("http:// only for loopback"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // https works, --none removes it (and prints nothing).
    let lines = app
        .cli(&[
            "clients",
            "set-webhook",
            &app.client_id,
            "https://partner.example/hook",
        ])
        .await;
    assert!(
        lines[0]["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert!(
        app.cli(&["clients", "set-webhook", &app.client_id, "--none"])
            .await
            .is_empty()
    );
    let store = app.store().await;
    assert_eq!(
        store
            .as_webhook_store()
            .webhook(&app.client_id)
            .await
            .unwrap(),
        None
    );
    store.close().await;
    // `clients add --webhook-url`: one line with all three, secrets shown once.
    let added = app
        .cli(&[
            "clients",
            "add",
            "--name",
            "Max Partner",
            "--email",
            "max@partner.example",
            "--telefonnummer",
            "030 5678",
            "--organisation",
            "Portal AG",
            "--webhook-url",
            "http://127.0.0.1:9/hook",
        ])
        .await;
    assert_eq!(added.len(), 1);
    let keys: Vec<&String> = added[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["client_id", "client_secret", "webhook_secret"]);
    let listed = app.cli(&["clients", "list"]).await;
    assert!(
        !listed
            .iter()
            .any(|line| line.to_string().contains("whsec_"))
    );
}
