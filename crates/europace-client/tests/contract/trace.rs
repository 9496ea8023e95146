//! Every exchange continues the caller's W3C trace (`traceparent`: same trace-id, a new span id
//! per exchange, the sampled flag kept) beside `X-TraceId`, and is reported to the observer with
//! its target and outcome.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use europace_client::{CallObserver, CallOutcome, CallTarget, EuropaceClient};
use vorgang_core::model::{Environment, Tippgeber};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    KEX_SCOPE, PARTNER_SCOPE, TRACE, TRACE_ID, client, config, mount, mount_first, mount_token,
    trace,
};

/// The parent id of the caller's `traceparent` in [`trace`]: never sent on (our calls are our
/// own spans).
const CALLER_SPAN: &str = "b7ad6b7169203331";

/// Keeps what the adapters report.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(CallTarget, CallOutcome)>>);

impl CallObserver for Recorder {
    fn observe(&self, target: CallTarget, outcome: CallOutcome, duration: Duration) {
        assert!(duration < Duration::from_secs(10), "{duration:?}");
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((target, outcome));
    }
}

impl Recorder {
    fn seen(&self) -> Vec<(CallTarget, CallOutcome)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A client against `server` whose calls `recorder` observes.
fn observed_client(server: &MockServer) -> (Arc<Recorder>, EuropaceClient) {
    let recorder = Arc::new(Recorder::default());
    let mut config = config(server);
    config.observer = Some(recorder.clone());
    (recorder, client(config))
}

fn tippgeber() -> Tippgeber {
    Tippgeber {
        externe_mitarbeiternummer: "7".into(),
        anrede: None,
        vorname: "Max".into(),
        nachname: "Muster".into(),
        email: None,
        telefon: None,
    }
}

#[tokio::test]
async fn every_exchange_continues_the_trace_with_a_span_of_its_own_and_is_observed() {
    let server = MockServer::start().await;
    mount_token(&server, PARTNER_SCOPE, "tok-p", 3600, 1).await;
    mount_token(&server, KEX_SCOPE, "tok-k", 3600, 1).await;
    Mock::given(method("GET"))
        .and(path("/v2/partners"))
        .and(header("X-TraceId", TRACE))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "total": 0, "partners": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount(
        &server,
        "POST",
        "/v2/partner/TGP01/untergeordnete",
        ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "partnerId": "NEW01", "parent": {"partnerId": "TGP01"}
        })),
        1,
    )
    .await;
    mount(
        &server,
        "POST",
        "/vorgang",
        ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "vorgangsnummer": "AB1234", "messages": []
        })),
        1,
    )
    .await;
    let (recorder, client) = observed_client(&server);

    let found = client
        .partner_directory()
        .find_by_externe_partner_id("client-7", &trace())
        .await;
    assert_eq!(found, Ok(Vec::new()));
    let created = client
        .partner_directory()
        .create_tippgeber("TGP01", "client-7", &tippgeber(), &trace())
        .await;
    assert_eq!(created.as_deref(), Ok("NEW01"));
    let imported = client
        .kex_importer()
        .import(
            Environment::Test,
            &vorgang_core::KexBody::from_value(&serde_json::json!({})).unwrap(),
            &trace(),
        )
        .await;
    assert!(imported.is_ok(), "{imported:?}");

    let received = server.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 5, "two tokens, lookup, creation, import");
    let mut spans = Vec::new();
    for request in &received {
        assert_eq!(
            request
                .headers
                .get("x-traceid")
                .and_then(|v| v.to_str().ok()),
            Some(TRACE)
        );
        let traceparent = request
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no traceparent on {}", request.url));
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], TRACE_ID, "the caller's trace continues");
        assert_eq!(parts[3], "01", "the caller's sampled flag is kept");
        assert_eq!(parts[2].len(), 16);
        assert_ne!(parts[2], CALLER_SPAN, "a span id of our own");
        assert_ne!(parts[2], "0000000000000000");
        spans.push(parts[2].to_owned());
    }
    spans.sort();
    spans.dedup();
    assert_eq!(spans.len(), received.len(), "a new span id per exchange");

    let seen = recorder.seen();
    for expected in [
        (CallTarget::Token, CallOutcome::Ok),
        (CallTarget::PartnerLookup, CallOutcome::Ok),
        (CallTarget::PartnerCreate, CallOutcome::Ok),
        (CallTarget::Kex, CallOutcome::Ok),
    ] {
        assert!(seen.contains(&expected), "{expected:?} in {seen:?}");
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

#[tokio::test]
async fn failed_and_unreadable_exchanges_are_observed_by_their_outcome() {
    let server = MockServer::start().await;
    mount_token(&server, PARTNER_SCOPE, "tok-p", 3600, 1).await;
    mount_token(&server, KEX_SCOPE, "tok-k", 3600, 1).await;
    // The lookup fails once (retried), then answers; the creation names a foreign parent.
    mount_first(&server, "GET", "/v2/partners", ResponseTemplate::new(503)).await;
    mount(
        &server,
        "GET",
        "/v2/partners",
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "total": 0, "partners": []
        })),
        1,
    )
    .await;
    mount(
        &server,
        "POST",
        "/v2/partner/TGP01/untergeordnete",
        ResponseTemplate::new(205).set_body_json(serde_json::json!({
            "partnerId": "OLD01", "parent": {"partnerId": "TGT01"}
        })),
        1,
    )
    .await;
    // The import answers 400 once, then 201 with a body that names no case.
    mount_first(&server, "POST", "/vorgang", ResponseTemplate::new(400)).await;
    mount(
        &server,
        "POST",
        "/vorgang",
        ResponseTemplate::new(201).set_body_string("not json"),
        1,
    )
    .await;
    let (recorder, client) = observed_client(&server);

    let partners = client.partner_directory();
    assert!(
        partners
            .find_by_externe_partner_id("client-7", &trace())
            .await
            .is_ok()
    );
    assert!(
        partners
            .create_tippgeber("TGP01", "client-7", &tippgeber(), &trace())
            .await
            .is_err()
    );
    let kex = client.kex_importer();
    for _ in 0..2 {
        assert!(
            kex.import(
                Environment::Test,
                &vorgang_core::KexBody::from_value(&serde_json::json!({})).unwrap(),
                &trace()
            )
            .await
            .is_err()
        );
    }

    assert_eq!(
        recorder.seen(),
        [
            (CallTarget::Token, CallOutcome::Ok),
            (CallTarget::PartnerLookup, CallOutcome::Unavailable),
            (CallTarget::PartnerLookup, CallOutcome::Ok),
            (CallTarget::PartnerCreate, CallOutcome::Protocol),
            (CallTarget::Token, CallOutcome::Ok),
            (CallTarget::Kex, CallOutcome::Rejected),
            (CallTarget::Kex, CallOutcome::Protocol),
        ]
    );
}

#[tokio::test]
async fn a_tippgeber_update_continues_the_trace_and_is_observed_per_attempt() {
    let server = MockServer::start().await;
    mount_token(&server, PARTNER_SCOPE, "tok-p", 3600, 1).await;
    Mock::given(method("PATCH"))
        .and(path("/v2/partner/ABC12"))
        .and(header("X-TraceId", TRACE))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/v2/partner/ABC12"))
        .and(header("X-TraceId", TRACE))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "partnerId": "ABC12", "email": "max@neu.example"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (recorder, client) = observed_client(&server);

    let updated = client
        .partner_directory()
        .update_tippgeber(
            "ABC12",
            &vorgang_core::TippgeberUpdate {
                email: Some("max@neu.example".into()),
                ..vorgang_core::TippgeberUpdate::default()
            },
            &trace(),
        )
        .await;

    assert_eq!(updated, Ok(()));
    let received = server.received_requests().await.unwrap();
    let patches: Vec<_> = received
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2);
    for request in patches {
        let traceparent = request
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap();
        assert!(traceparent.contains(TRACE_ID), "{traceparent}");
    }
    assert_eq!(
        recorder.seen(),
        [
            (CallTarget::Token, CallOutcome::Ok),
            (CallTarget::PartnerUpdate, CallOutcome::Unavailable),
            (CallTarget::PartnerUpdate, CallOutcome::Ok),
        ]
    );
}
