//! Issue 11 (3): every log line of a request carries its request id (and, once known, the
//! client and the import), read from the service's real JSON log lines.
//!
//! A test binary of its own: the subscriber that captures the lines is the process-wide one
//! (the server's workers are threads of their own), which the API tests' `TEST_LOG` helper
//! would otherwise compete for.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

#[allow(dead_code, unused_imports, unused_macros)] // the API tests' helpers, of which this binary uses a few
#[path = "api/helpers.rs"]
mod helpers;
mod support;

use std::sync::OnceLock;

use serde_json::Value;

use crate::helpers::{seed, spawn_app};
use crate::support::Captured;

/// Installs the service's subscriber (at `info`, as deployed, plus the core's debug lines, so
/// that the steps of an import are seen too) writing into one buffer.
fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = vorgang_server::telemetry::subscriber_with_level(
            move || writer.clone(),
            "info,vorgang_core=debug",
        );
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

/// The captured lines, parsed.
fn lines() -> Vec<Value> {
    captured()
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The fields a request's span may have: nothing that identifies a person or a device (no
/// client address, user agent, path or query).
const SPAN_FIELDS: [&str; 7] = [
    "name",
    "method",
    "route",
    "request_id",
    "trace_id",
    "client_id",
    "drkleinrkVorgangsnummer",
];

#[tokio::test]
async fn every_line_of_an_import_carries_its_request_id_client_and_import() {
    captured();
    let app = spawn_app().await;
    let token = app.token().await;
    let request_id = "req-log-4711";
    let response = app
        .http
        .post(format!("{}/vorgang", app.address))
        .bearer_auth(&token)
        .header("X-Request-Id", request_id)
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .json(&seed())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], request_id);
    let body: Value = response.json().await.unwrap();
    let import = body["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned();

    // The request's last line ("request") is written as its answer leaves: poll until it is.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ours = loop {
        let ours: Vec<Value> = lines()
            .into_iter()
            .filter(|line| line["span"]["request_id"] == request_id)
            .collect();
        if ours
            .iter()
            .any(|line| line["fields"]["message"] == "request")
        {
            break ours;
        }
        assert!(std::time::Instant::now() < deadline, "no request line");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    // The lines of this request: the core's, the Europace client's and the request log.
    let messages: Vec<&str> = ours
        .iter()
        .filter_map(|line| line["fields"]["message"].as_str())
        .collect();
    for expected in ["import accepted", "import state stored", "request"] {
        assert!(messages.contains(&expected), "{expected} in {messages:?}");
    }
    // As deployed (`info`), an import writes one line of its own, its outcome, besides the
    // request line: the steps before it are debug (issue 10, the cost of a line per step).
    let info: Vec<(&str, &str)> = ours
        .iter()
        .filter(|line| line["level"] == "INFO" && line["target"] == "vorgang_core::resolver")
        .map(|line| {
            (
                line["fields"]["message"].as_str().unwrap(),
                line["fields"]["to"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(info, [("import state stored", "COMPLETED")], "{ours:?}");
    assert!(
        ours.iter()
            .filter(|line| line["fields"]["message"] == "import accepted")
            .all(|line| line["level"] == "DEBUG"),
        "{ours:?}"
    );
    for line in &ours {
        let span = line["span"].as_object().unwrap();
        for key in span.keys() {
            assert!(
                SPAN_FIELDS.contains(&key.as_str()),
                "span field {key}: {line}"
            );
        }
        assert_eq!(span["name"], "request");
        assert_eq!(span["method"], "POST", "{line}");
        assert_eq!(
            span["trace_id"], "0af7651916cd43dd8448eb211c80319c",
            "{line}"
        );
        // Every line after authentication names the client.
        assert_eq!(span["client_id"], app.client_id.as_str(), "{line}");
    }
    // From the moment the import is stored, every line names it.
    let accepted = ours
        .iter()
        .position(|line| line["fields"]["message"] == "import accepted")
        .unwrap();
    for line in &ours[accepted..] {
        assert_eq!(
            line["span"]["drkleinrkVorgangsnummer"],
            import.as_str(),
            "{line}"
        );
    }
    let request_line = ours.last().unwrap();
    assert_eq!(request_line["fields"]["message"], "request");
    assert_eq!(request_line["span"]["route"], "/vorgang");
    assert_eq!(request_line["fields"]["status"], 201);

    // No line of the service about this import is outside the request's span (the sandbox,
    // standing in for Europace, is another service and logs on its own).
    for line in lines() {
        let text = line.to_string();
        if text.contains(&import)
            && !line["target"]
                .as_str()
                .unwrap_or_default()
                .starts_with("europace_sandbox")
        {
            assert_eq!(line["span"]["request_id"], request_id, "{line}");
        }
    }
}

#[tokio::test]
async fn a_request_without_an_id_logs_the_one_it_is_answered_with() {
    captured();
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/health/live?zqx=erika", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        if let Some(line) = lines()
            .into_iter()
            .find(|line| line["span"]["request_id"] == id.as_str())
        {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "no line with {id}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(line["fields"]["message"], "request");
    assert_eq!(line["span"]["route"], "/health/live");
    assert!(!line.to_string().contains("zqx"), "no query string: {line}");
}

/// Issue 12, point 6: a Tippgeber update is logged by the attributes it changed, never by
/// their values, whether Europace took it or not.
#[tokio::test]
async fn a_tippgeber_update_logs_attribute_names_never_values() {
    captured();
    let app = spawn_app().await;
    let token = app.token().await;
    let planted = [
        "0301-5544-1",
        "0301-5544-2",
        "0301-5544-3",
        "tippo@update.example",
    ];
    let post = |telefon: &str, email: Option<&str>| {
        let mut body = seed();
        body["tippgeber"]["externeMitarbeiternummer"] = serde_json::json!("log-4711");
        body["tippgeber"]["telefon"] = serde_json::json!(telefon);
        if let Some(email) = email {
            body["tippgeber"]["email"] = serde_json::json!(email);
        }
        let app = &app;
        let token = &token;
        async move {
            let response = app.post_vorgang(token, &body).await;
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()
        }
    };
    post(planted[0], None).await;
    let updated = post(planted[1], Some(planted[3])).await;
    app.sandbox_fault(serde_json::json!({"target": "partner_update", "status": 400}))
        .await;
    let refused = post(planted[2], Some(planted[3])).await;
    assert_eq!(
        refused["messages"].as_array().unwrap().last().unwrap(),
        "WARN tippgeber-not-updated"
    );
    let ids = [&updated, &refused].map(|answer| {
        answer["drkleinrkVorgangsnummer"]
            .as_str()
            .unwrap()
            .to_owned()
    });

    // The lines are written before the answers leave; both outcomes are logged.
    let ours: Vec<Value> = lines()
        .into_iter()
        .filter(|line| ids.iter().any(|id| line.to_string().contains(id.as_str())))
        .collect();
    let line_of = |message: &str| {
        ours.iter()
            .find(|line| line["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no line {message:?} in {ours:?}"))
            .clone()
    };
    let done = line_of("Tippgeber updated at Europace");
    assert_eq!(done["fields"]["attributes"], "{\"telefon\", \"email\"}");
    let failed = line_of(
        "Tippgeber could not be updated at Europace; the import goes on with the partner as it is",
    );
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["fields"]["attributes"], "{\"telefon\"}");
    for line in lines() {
        let text = line.to_string();
        for value in planted {
            assert!(!text.contains(value), "{value} logged: {line}");
        }
    }
}
