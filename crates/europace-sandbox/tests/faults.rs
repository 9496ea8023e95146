//! Fault injection, reset and the call counters.

mod common;

use std::error::Error as _;
use std::time::{Duration, Instant};

use common::{FormExt, SendJson, start, tippgeber, vorgang};
use serde_json::{Value, json};

/// The error chain of a reqwest error, for assertions and failure messages.
fn chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_503_fault_hits_once_then_answers_normally() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "kex", "status": 503, "retry_after_s": 7}))
        .await;

    let response = s.import(&token, None, &vorgang("Max")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string());
    assert!(
        s.sandbox.vorgaenge().is_empty(),
        "an error answer creates nothing"
    );

    let response = s.import(&token, None, &vorgang("Max")).await;
    assert_eq!(response.status(), 201);
    assert_eq!(s.sandbox.vorgaenge().len(), 1);
    s.server.stop().await;
}

#[tokio::test]
async fn without_retry_after_s_there_is_no_retry_after_header() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "partner_lookup", "status": 429}))
        .await;
    let response = s.lookup(&token, "x").await;
    assert_eq!(response.status(), 429);
    assert!(!response.headers().contains_key("retry-after"));
    s.server.stop().await;
}

#[tokio::test]
async fn times_repeats_the_fault() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "partner_create", "status": 500, "times": 2}))
        .await;
    for expected in [500, 500, 201] {
        let response = s.create(&token, "TGP01", &tippgeber("client-1")).await;
        assert_eq!(response.status(), expected);
    }
    s.server.stop().await;
}

#[tokio::test]
async fn a_delay_without_status_delays_the_normal_answer() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "partner_lookup", "delay_ms": 200}))
        .await;
    let started = Instant::now();
    let response = s.lookup(&token, "x").await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(response.status(), 200);

    // Used up: nothing left in the queue.
    let pending: Value = s.get_json("/_sandbox/faults").await;
    assert_eq!(pending, json!([]));
    s.server.stop().await;
}

#[tokio::test]
async fn a_delay_longer_than_the_client_timeout_is_a_client_timeout() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "kex", "delay_ms": 400, "status": 201}))
        .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = impatient
        .post(s.url("/vorgang"))
        .bearer_auth(&token)
        .json(&vorgang("Max"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{}", chain(&err));
    assert!(s.sandbox.vorgaenge().is_empty());
    s.server.stop().await;
}

#[tokio::test]
async fn status_0_drops_the_connection_without_an_answer() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "kex", "status": 0})).await;
    let started = Instant::now();
    let err = s
        .try_import(&token, None, &vorgang("Max"))
        .await
        .expect_err("a dropped connection is an error, not a response");
    assert!(!err.is_timeout(), "{}", chain(&err));
    assert!(err.status().is_none());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        s.sandbox.vorgaenge().is_empty(),
        "dropped before processing"
    );

    // The next call gets a normal answer (on a new connection).
    assert_eq!(s.import(&token, None, &vorgang("Max")).await.status(), 201);
    s.server.stop().await;
}

#[tokio::test]
async fn status_0_drops_token_and_partner_calls_too() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "auth", "status": 0})).await;
    s.fault(json!({"target": "partner", "status": 0, "times": 2}))
        .await;
    let err = s
        .http
        .post(s.url("/auth/token"))
        .basic_auth("client", Some("secret"))
        .form_body(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{}", chain(&err));
    let err = s
        .http
        .get(s.url("/v2/partner/KBT01"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{}", chain(&err));
    let err = s
        .try_create(&token, "TGP01", &tippgeber("client-1"))
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{}", chain(&err));
    assert_eq!(s.sandbox.partners().len(), 3);
    s.server.stop().await;
}

#[tokio::test]
async fn after_receive_records_the_import_but_loses_the_answer() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "kex", "status": 0, "after_receive": true, "delay_ms": 50}))
        .await;
    let err = s
        .try_import(&token, Some("PRODUCTION"), &vorgang("Max"))
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{}", chain(&err));
    let recorded = s.recorded().await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["environment"], "PRODUCTION");
    assert_eq!(recorded[0]["body"], vorgang("Max"));

    s.fault(json!({"target": "kex", "status": 504, "after_receive": true}))
        .await;
    let response = s.import(&token, None, &vorgang("Moritz")).await;
    assert_eq!(response.status(), 504);
    assert_eq!(s.sandbox.vorgaenge().len(), 2);
    assert_eq!(s.sandbox.vorgaenge()[1].body, vorgang("Moritz"));
    s.server.stop().await;
}

#[tokio::test]
async fn after_receive_on_partner_creation_creates_the_partner_then_205_on_retry() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "partner_create", "status": 0, "after_receive": true}))
        .await;
    assert!(
        s.try_create(&token, "TGP01", &tippgeber("client-1"))
            .await
            .is_err()
    );
    assert_eq!(s.sandbox.partners().len(), 4);
    let response = s.create(&token, "TGP01", &tippgeber("client-1")).await;
    assert_eq!(response.status(), 205);
    s.server.stop().await;
}

#[tokio::test]
async fn faults_queue_first_in_first_out() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "kex", "status": 503})).await;
    s.fault(json!({"target": "kex", "status": 502, "times": 2}))
        .await;
    s.fault(json!({"target": "kex", "status": 429})).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            s.import(&token, None, &vorgang("Max"))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [503, 502, 502, 429, 201]);
    s.server.stop().await;
}

#[tokio::test]
async fn a_partner_fault_applies_to_lookup_and_creation_in_order() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "partner", "status": 503, "times": 2}))
        .await;
    s.fault(json!({"target": "kex", "status": 500})).await;

    // Other targets are untouched.
    assert_eq!(s.token().await.len(), token.len());

    assert_eq!(s.lookup(&token, "client-1").await.status(), 503);
    assert_eq!(
        s.create(&token, "TGP01", &tippgeber("client-1"))
            .await
            .status(),
        503
    );
    assert_eq!(s.lookup(&token, "client-1").await.status(), 200);
    assert_eq!(
        s.create(&token, "TGP01", &tippgeber("client-1"))
            .await
            .status(),
        201
    );
    assert_eq!(s.import(&token, None, &vorgang("Max")).await.status(), 500);
    s.server.stop().await;
}

#[tokio::test]
async fn lookup_and_create_faults_are_separate() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "partner_create", "status": 502}))
        .await;
    s.fault(json!({"target": "partner_lookup", "status": 503}))
        .await;
    // GET /v2/partner/{id} is a lookup too.
    let response = s
        .http
        .get(s.url("/v2/partner/KBT01"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(s.lookup(&token, "x").await.status(), 200);
    assert_eq!(
        s.create(&token, "TGP01", &tippgeber("client-1"))
            .await
            .status(),
        502
    );
    s.server.stop().await;
}

#[tokio::test]
async fn an_auth_fault_answers_an_oauth_error() {
    let s = start();
    s.fault(json!({"target": "auth", "status": 503, "retry_after_s": 2}))
        .await;
    s.fault(json!({"target": "auth", "status": 401})).await;
    let request = || {
        s.http
            .post(s.url("/auth/token"))
            .basic_auth("client", Some("secret"))
            .form_body(&[("grant_type", "client_credentials")])
    };
    let response = request().send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string());
    let response = request().send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(request().send().await.unwrap().status(), 200);
    s.server.stop().await;
}

#[tokio::test]
async fn a_401_fault_on_kex_looks_like_an_expired_token() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "kex", "status": 401})).await;
    let response = s.import(&token, None, &vorgang("Max")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(s.import(&token, None, &vorgang("Max")).await.status(), 201);
    s.server.stop().await;
}

#[tokio::test]
async fn invalid_faults_are_400() {
    let s = start();
    let url = s.url("/_sandbox/faults");
    for raw in [
        "not json",
        "{}",
        r#"{"target": "everything"}"#,
        r#"{"target": "kex", "status": 42}"#,
        r#"{"target": "kex", "status": "503"}"#,
        r#"{"target": "kex", "times": 0}"#,
        r#"{"target": "kex", "delay_ms": -5}"#,
        r#"{"target": "kex", "statuscode": 503}"#,
    ] {
        let response = s
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{raw}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].is_string());
    }
    let pending: Value = s.http.get(&url).send_json().await;
    assert_eq!(pending, json!([]));
    s.server.stop().await;
}

#[tokio::test]
async fn queued_faults_can_be_listed_and_cleared() {
    let s = start();
    let token = s.token().await;
    let url = s.url("/_sandbox/faults");
    let answer: Value = s
        .http
        .post(&url)
        .json(&json!({"target": "partner", "status": 503, "times": 3}))
        .send_json()
        .await;
    assert_eq!(
        answer,
        json!({"target": "partner", "status": 503, "delay_ms": 0, "times": 3, "after_receive": false})
    );
    s.fault(json!({"target": "kex"})).await;
    assert_eq!(s.lookup(&token, "x").await.status(), 503);
    let pending: Value = s.http.get(&url).send_json().await;
    assert_eq!(pending.as_array().unwrap().len(), 2);
    assert_eq!(pending[0]["times"], 2);

    let response = s.http.delete(&url).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let pending: Value = s.http.get(&url).send_json().await;
    assert_eq!(pending, json!([]));
    assert_eq!(s.lookup(&token, "x").await.status(), 200);
    s.server.stop().await;
}

#[tokio::test]
async fn reset_forgets_imports_partners_tokens_faults_and_counters() {
    let s = start();
    let token = s.token().await;
    let created: Value = s.created(&token, "TGP01", &tippgeber("client-1")).await;
    assert_eq!(s.import(&token, None, &vorgang("Max")).await.status(), 201);
    s.fault(json!({"target": "kex", "status": 503})).await;

    let response = s.http.post(s.url("/_sandbox/reset")).send().await.unwrap();
    assert_eq!(response.status(), 204);

    assert!(s.sandbox.vorgaenge().is_empty());
    assert!(s.recorded().await.is_empty());
    let ids: Vec<Value> = s
        .sandbox
        .partners()
        .iter()
        .map(|p| p["partnerId"].clone())
        .collect();
    assert_eq!(ids, [json!("KBT01"), json!("TGP01"), json!("TGT01")]);
    assert_eq!(
        s.stats().await,
        json!({"auth": 0, "partner_lookup": 0, "partner_create": 0, "partner_update": 0, "kex": 0})
    );
    // The old token is forgotten.
    let response = s
        .http
        .get(s.url(&format!(
            "/v2/partner/{}",
            created["partnerId"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The fault is gone, the created partner too.
    let token = s.token().await;
    assert_eq!(s.import(&token, None, &vorgang("Max")).await.status(), 201);
    assert_eq!(
        s.lookup(&token, "client-1")
            .await
            .json::<Value>()
            .await
            .unwrap()["total"],
        0
    );
    s.server.stop().await;
}

#[tokio::test]
async fn stats_count_every_request_per_target_including_faulted_and_refused_ones() {
    let s = start();
    assert_eq!(
        s.stats().await,
        json!({"auth": 0, "partner_lookup": 0, "partner_create": 0, "partner_update": 0, "kex": 0})
    );
    let token = s.token().await;
    s.fault(json!({"target": "partner", "status": 503})).await;
    s.fault(json!({"target": "kex", "status": 0})).await;

    let _ = s.lookup(&token, "x").await; // faulted
    let _ = s.lookup(&token, "x").await;
    let _ = s.http.get(s.url("/v2/partner/KBT01")).send().await.unwrap(); // 401, still counted
    let _ = s.create(&token, "TGP01", &tippgeber("client-1")).await;
    let _ = s
        .update(&token, "KBT01", &json!({"telefonnummer": "030 1"}))
        .await;
    let _ = s
        .update(&token, "NOP99", &json!({"telefonnummer": "030 1"}))
        .await; // 404
    let _ = s.try_import(&token, None, &vorgang("Max")).await; // dropped
    let _ = s.import(&token, None, &vorgang("Max")).await;
    let _ = s.import(&token, Some("nope"), &vorgang("Max")).await; // 400

    // Test endpoints are not counted.
    let _ = s.recorded().await;
    assert_eq!(
        s.stats().await,
        json!({"auth": 1, "partner_lookup": 3, "partner_create": 1, "partner_update": 2, "kex": 3})
    );
    s.server.stop().await;
}

#[tokio::test]
async fn status_0_sends_not_a_single_byte() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "kex", "status": 0})).await;
    let body = vorgang("Max").to_string();
    let address = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "POST /vorgang HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .expect("the sandbox closes the connection");
    // EOF or a reset, but never an HTTP answer.
    assert!(
        read.is_err() || received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    s.server.stop().await;
}

#[tokio::test]
async fn a_dropped_connection_is_reported_as_an_incomplete_message() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "kex", "status": 0})).await;
    let err = s
        .try_import(&token, None, &vorgang("Max"))
        .await
        .unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains("connection closed before message completed")
            || text.contains("reset")
            || text.contains("IncompleteMessage"),
        "{text}"
    );
    s.server.stop().await;
}

#[tokio::test]
async fn after_receive_without_status_records_then_answers_normally_after_the_delay() {
    let s = start();
    let token = s.token().await;
    s.fault(json!({"target": "kex", "after_receive": true, "delay_ms": 150}))
        .await;
    let started = Instant::now();
    let response = s.import(&token, None, &vorgang("Max")).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["vorgangsnummer"],
        json!(s.sandbox.vorgaenge()[0].vorgangsnummer)
    );
    s.server.stop().await;
}

#[tokio::test]
async fn calls_record_the_correlation_headers_of_every_request() {
    let s = start();
    let token = s.token().await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let _ = s
        .http
        .get(s.url("/v2/partners?externePartnerId=x"))
        .bearer_auth(&token)
        .header("X-TraceId", "drkleinrk-1")
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    s.fault(json!({"target": "kex", "status": 503})).await;
    let _ = s.try_import(&token, None, &vorgang("Max")).await; // faulted, still recorded

    let calls: Value = s.get_json("/_sandbox/calls").await;
    assert_eq!(
        calls,
        json!([
            {"call": "auth", "traceId": null, "traceparent": null},
            {"call": "partner_lookup", "traceId": "drkleinrk-1", "traceparent": traceparent},
            {"call": "kex", "traceId": null, "traceparent": null},
        ])
    );
    s.server.stop().await;
}

#[tokio::test]
async fn partner_update_faults_hit_only_updates_and_partner_faults_hit_updates_too() {
    let s = start();
    let token = s.token().await;
    let phone = json!({"telefonnummer": "030 999"});
    s.fault(json!({"target": "partner_update", "status": 503, "times": 2}))
        .await;
    assert_eq!(s.lookup(&token, "x").await.status(), 200);
    assert_eq!(
        s.create(&token, "TGP01", &tippgeber("client-1"))
            .await
            .status(),
        201
    );
    assert_eq!(s.update(&token, "KBT01", &phone).await.status(), 503);
    assert_eq!(s.update(&token, "KBT01", &phone).await.status(), 503);
    // Nothing changed by a faulted update.
    let kbt = |s: &common::Running| {
        s.sandbox
            .partners()
            .into_iter()
            .find(|p| p["partnerId"] == "KBT01")
            .unwrap()
    };
    assert_eq!(kbt(&s)["telefonnummer"], "030 0000000");

    // `partner` covers lookup, creation and update, first in, first out.
    s.fault(json!({"target": "partner", "status": 502, "times": 2}))
        .await;
    assert_eq!(s.update(&token, "KBT01", &phone).await.status(), 502);
    assert_eq!(s.lookup(&token, "x").await.status(), 502);
    assert_eq!(s.update(&token, "KBT01", &phone).await.status(), 200);
    assert_eq!(kbt(&s)["telefonnummer"], "030 999");

    // After receive: the update is applied, only the answer is lost.
    s.fault(json!({"target": "partner_update", "status": 0, "after_receive": true}))
        .await;
    let lost = s
        .http
        .patch(s.url("/v2/partner/KBT01"))
        .bearer_auth(&token)
        .json(&json!({"telefonnummer": "030 777"}))
        .send()
        .await;
    assert!(lost.is_err(), "{lost:?}");
    assert_eq!(kbt(&s)["telefonnummer"], "030 777");
    assert_eq!(s.stats().await["partner_update"], 5);
    s.server.stop().await;
}
