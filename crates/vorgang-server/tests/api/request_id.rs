//! Issue 11 (3, 5): every answer carries `X-Request-Id` (the request's own when it is 1–128
//! visible ASCII characters, else a new one), every problem body names it as `requestId`, a W3C
//! `traceparent` is continued on every Europace call, and a replayed answer says so
//! (`Idempotent-Replayed: true`). docs/reference/http-api.md.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, raw_exchange, seed, spawn_app};

const INCOMING_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const INCOMING_SPAN: &str = "b7ad6b7169203331";

fn request_id(response: &reqwest::Response) -> String {
    let mut values = response.headers().get_all("x-request-id").iter();
    let value = values
        .next()
        .unwrap_or_else(|| panic!("no X-Request-Id on {}", response.status()));
    assert!(values.next().is_none(), "exactly one X-Request-Id");
    value.to_str().unwrap().to_owned()
}

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|id| id.to_string() == text)
}

async fn live(app: &TestApp, id: Option<reqwest::header::HeaderValue>) -> reqwest::Response {
    let mut request = app.http.get(format!("{}/health/live", app.address));
    if let Some(id) = id {
        request = request.header("X-Request-Id", id);
    }
    request.send().await.unwrap()
}

/// `request` (without its blank line) over a fresh connection; the answer's head, lower-case.
async fn raw_head(app: &TestApp, request: &[u8]) -> String {
    let bytes = raw_exchange(&app.address, request).await;
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_valid_request_id_is_echoed_and_anything_else_replaced() {
    let app = spawn_app().await;
    use reqwest::header::HeaderValue;

    for valid in ["a", "req-4711", "!#$%&'*+-.^_`|~{}\"\\", &"x".repeat(128)] {
        let response = live(&app, Some(HeaderValue::from_str(valid).unwrap())).await;
        assert_eq!(response.status(), 200);
        assert_eq!(request_id(&response), valid);
    }

    // None, empty, too long, a blank, a tab, non-ASCII: a new id each time.
    let mut generated = BTreeSet::new();
    let long = "x".repeat(129);
    let replaced: Vec<Option<HeaderValue>> = vec![
        None,
        Some(HeaderValue::from_static("")),
        Some(HeaderValue::from_str(&long).unwrap()),
        Some(HeaderValue::from_static("with space")),
        Some(HeaderValue::from_static("tab\there")),
        Some(HeaderValue::from_bytes(b"umlaut-\xc3\xa4").unwrap()),
    ];
    for sent in replaced {
        let response = live(&app, sent.clone()).await;
        assert_eq!(response.status(), 200, "{sent:?}");
        let id = request_id(&response);
        assert!(is_uuid(&id), "{sent:?} answered with {id}");
        generated.insert(id);
    }
    assert_eq!(generated.len(), 6, "a new id per request");

    // Two ids: which one counts would be a guess; a new one.
    let head = raw_head(
        &app,
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-Id: one\r\nX-Request-Id: two\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    let id = head
        .lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no id in {head}"));
    assert!(is_uuid(id), "{head}");
    // A control character never reaches the service: HTTP parsing refuses the request.
    let head = raw_head(
        &app,
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\x01b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
}

#[tokio::test]
async fn every_problem_body_names_the_request_id_of_its_answer() {
    let app = spawn_app().await;
    let token = app.token().await;
    let send = |request: reqwest::RequestBuilder, id: &'static str| {
        request.header("X-Request-Id", id).send()
    };

    // 404 and 405 (routing), 401 (no token), 422 (validation), 415, 400 (bad query).
    let answers = [
        (
            send(
                app.http.get(format!("{}/zqx-unknown", app.address)),
                "id-404",
            )
            .await,
            404,
            "id-404",
        ),
        (
            send(
                app.http.delete(format!("{}/vorgang", app.address)),
                "id-405",
            )
            .await,
            405,
            "id-405",
        ),
        (
            send(app.http.post(format!("{}/vorgang", app.address)), "id-401").await,
            401,
            "id-401",
        ),
        (
            send(
                app.http
                    .post(format!("{}/vorgang", app.address))
                    .bearer_auth(&token)
                    .json(&json!({"vorgang": {}})),
                "id-422",
            )
            .await,
            422,
            "id-422",
        ),
        (
            send(
                app.http
                    .post(format!("{}/vorgang", app.address))
                    .bearer_auth(&token)
                    .header("Content-Type", "text/plain")
                    .body("x"),
                "id-415",
            )
            .await,
            415,
            "id-415",
        ),
        (
            send(
                app.http
                    .post(format!("{}/vorgang?environment=MOON", app.address))
                    .bearer_auth(&token)
                    .json(&seed()),
                "id-400",
            )
            .await,
            400,
            "id-400",
        ),
    ];
    for (response, status, id) in answers {
        let response = response.unwrap();
        assert_eq!(request_id(&response), id);
        let body = problem(response, status).await;
        assert_eq!(body["requestId"], id, "{body}");
    }

    // Without an id of the client's: the generated one, in header and body alike.
    let response = app
        .http
        .get(format!("{}/zqx-unknown", app.address))
        .send()
        .await
        .unwrap();
    let id = request_id(&response);
    assert!(is_uuid(&id));
    assert_eq!(problem(response, 404).await["requestId"], id.as_str());

    // The token endpoint: the id in the header, the body stays RFC 6749.
    let response = app
        .http
        .post(format!("{}/oauth2/token", app.address))
        .header("X-Request-Id", "id-token")
        .basic_auth(&app.client_id, Some("zqx-wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(request_id(&response), "id-token");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("requestId").is_none(), "{body}");

    // A success carries it too.
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            serde_json::to_vec(&seed()).unwrap(),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    assert!(is_uuid(&request_id(&response)));
}

/// The sandbox's record of the calls made for import `id`, each `(call, traceparent)`.
async fn calls_of(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let trace_id = format!("drkleinrk-{id}");
    app.sandbox_get("/_sandbox/calls")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|call| call["traceId"] == trace_id.as_str())
        .map(|call| {
            (
                call["call"].as_str().unwrap().to_owned(),
                call["traceparent"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `traceparent` as its four parts.
fn parts(traceparent: &str) -> Vec<&str> {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00", "{traceparent}");
    assert_eq!(parts[2].len(), 16, "{traceparent}");
    parts
}

#[tokio::test]
async fn a_traceparent_is_continued_on_every_europace_call_with_a_new_parent_id() {
    let app = spawn_app().await;
    let token = app.token().await;

    let response = app
        .http
        .post(format!("{}/vorgang", app.address))
        .bearer_auth(&token)
        .header(
            "traceparent",
            format!("00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"),
        )
        .json(&seed())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let id = body["drkleinrkVorgangsnummer"].as_str().unwrap();
    let calls = calls_of(&app, id).await;
    let kinds: BTreeSet<&str> = calls.iter().map(|(call, _)| call.as_str()).collect();
    for kind in ["auth", "partner_lookup", "partner_create", "kex"] {
        assert!(kinds.contains(kind), "{kind} in {calls:?}");
    }
    let mut spans = BTreeSet::new();
    for (call, traceparent) in &calls {
        let parts = parts(traceparent);
        assert_eq!(parts[1], INCOMING_TRACE, "{call}: the caller's trace");
        assert_ne!(parts[2], INCOMING_SPAN, "{call}: a parent id of our own");
        assert_eq!(parts[3], "01", "{call}: the sampled flag is kept");
        spans.insert(parts[2].to_owned());
    }
    assert_eq!(spans.len(), calls.len(), "a new parent id per call");

    // Without a traceparent (or with a broken one): a new trace, one for all calls of the
    // request, never the all-zero id.
    for header in [None, Some("00-zz-broken-01")] {
        let mut second = seed();
        second["tippgeber"]["externeMitarbeiternummer"] = json!(format!("{header:?}"));
        let mut request = app
            .http
            .post(format!("{}/vorgang", app.address))
            .bearer_auth(&token)
            .json(&second);
        if let Some(header) = header {
            request = request.header("traceparent", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        let calls = calls_of(&app, body["drkleinrkVorgangsnummer"].as_str().unwrap()).await;
        assert!(calls.len() >= 3, "{calls:?}");
        let traces: BTreeSet<&str> = calls.iter().map(|(_, t)| parts(t)[1]).collect();
        assert_eq!(traces.len(), 1, "one trace: {calls:?}");
        let trace = traces.into_iter().next().unwrap();
        assert_ne!(trace, INCOMING_TRACE);
        assert_ne!(trace, "0".repeat(32));
        assert_eq!(trace.len(), 32);
    }
}

#[tokio::test]
async fn a_replayed_answer_says_so_and_a_fresh_one_does_not() {
    let app = spawn_app().await;
    let token = app.token().await;
    let body = serde_json::to_vec(&seed()).unwrap();
    let first = app.post_bytes(&token, &body, Some("replay-key-1")).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body: Value = first.json().await.unwrap();

    let again = app.post_bytes(&token, &body, Some("replay-key-1")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first_body);

    // Without a key, or with a new one, nothing is a replay.
    let fresh = app.post_bytes(&token, &body, None).await;
    assert_eq!(fresh.status(), 201);
    assert!(fresh.headers().get("idempotent-replayed").is_none());

    // A replayed error answer says so as well (504: the KEX answer was lost).
    app.sandbox_fault(json!({"target": "kex", "status": 0, "after_receive": true}))
        .await;
    let mut doubtful = seed();
    doubtful["tippgeber"]["externeMitarbeiternummer"] = json!("doubt-1");
    let doubtful = serde_json::to_vec(&doubtful).unwrap();
    let lost = app
        .post_bytes(&token, &doubtful, Some("replay-key-2"))
        .await;
    assert_eq!(lost.status(), 504);
    assert!(lost.headers().get("idempotent-replayed").is_none());
    let replayed = app
        .post_bytes(&token, &doubtful, Some("replay-key-2"))
        .await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    let body = problem(replayed, 504).await;
    assert_eq!(body["importStatus"], "IN_DOUBT");
}
