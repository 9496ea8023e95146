//! Partnermanagement: lookup with parent resolution, creation, update, retries.

use std::time::{Duration, Instant};

use europace_client::RetryPolicy;
use vorgang_core::model::{Anrede, Tippgeber};
use vorgang_core::{EuropaceError, PartnerRecord, TippgeberUpdate};
use wiremock::matchers::{bearer_token, body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{PARTNER_SCOPE, TRACE, client, config, mount_token, mount_with, trace};

const EXTERN: &str = "drkleinrk-client-4711";

fn tippgeber() -> Tippgeber {
    Tippgeber {
        externe_mitarbeiternummer: "4711".into(),
        anrede: Some(Anrede::Frau),
        vorname: "Erika".into(),
        nachname: "Mustermann".into(),
        email: Some("erika@example.org".into()),
        telefon: None,
    }
}

fn found(ids: &[&str]) -> ResponseTemplate {
    let partners: Vec<_> = ids
        .iter()
        .map(|id| serde_json::json!({"partnerId": id, "href": format!("https://api.europace.de/v2/partner/{id}")}))
        .collect();
    ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"total": ids.len(), "partners": partners}))
}

fn lookup_mock() -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/v2/partners"))
        .and(query_param("externePartnerId", EXTERN))
}

async fn mount_lookup(server: &MockServer, answer: ResponseTemplate, times: u64) {
    lookup_mock()
        .respond_with(answer)
        .expect(times)
        .named(format!("lookup {times}"))
        .mount(server)
        .await;
}

/// Answers `answer` to the first `times` lookups, each expected.
async fn mount_lookup_first(server: &MockServer, answer: ResponseTemplate, times: u64) {
    lookup_mock()
        .respond_with(answer)
        .up_to_n_times(times)
        .expect(times)
        .named(format!("first {times} lookups"))
        .mount(server)
        .await;
}

async fn mount_details(server: &MockServer, id: &str, parent: Option<&str>) {
    let mut body = serde_json::json!({"partnerId": id, "typ": "PERSON", "vorname": "Erika"});
    if let Some(parent) = parent {
        body["parent"] = serde_json::json!({"partnerId": parent});
    }
    Mock::given(method("GET"))
        .and(path(format!("/v2/partner/{id}")))
        .and(bearer_token("tok-p"))
        .and(header("X-TraceId", TRACE))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .named(format!("details {id}"))
        .mount(server)
        .await;
}

/// A mock Europace with the partner-scope token `tok-p`, fetched exactly once.
async fn partner_server() -> MockServer {
    let server = MockServer::start().await;
    mount_token(&server, PARTNER_SCOPE, "tok-p", 3600, 1).await;
    server
}

/// Creates [`tippgeber`] under `TGP01` with a fresh client against `server`.
async fn create(server: &MockServer) -> Result<String, EuropaceError> {
    client(config(server))
        .partner_directory()
        .create_tippgeber("TGP01", EXTERN, &tippgeber(), &trace())
        .await
}

/// Sends [`phone_update`] for `ABC12` with a fresh client against `server`.
async fn update_phone(server: &MockServer) -> Result<(), EuropaceError> {
    client(config(server))
        .partner_directory()
        .update_tippgeber("ABC12", &phone_update(), &trace())
        .await
}

/// [`create`] against a fresh [`partner_server`] whose creation answers `answer` once.
async fn create_answered(answer: ResponseTemplate) -> Result<String, EuropaceError> {
    let server = partner_server().await;
    mount_with(create_mock(), &server, answer, 1).await;
    create(&server).await
}

/// [`update_phone`] against a fresh [`partner_server`] whose update answers `answer` once.
async fn update_answered(answer: ResponseTemplate) -> Result<(), EuropaceError> {
    let server = partner_server().await;
    mount_with(update_mock(), &server, answer, 1).await;
    update_phone(&server).await
}

fn create_mock() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/v2/partner/TGP01/untergeordnete"))
        .and(bearer_token("tok-p"))
        .and(header("X-TraceId", TRACE))
        .and(header("content-type", "application/json"))
        .and(body_json(serde_json::json!({
            "typ": "PERSON",
            "anrede": "FRAU",
            "vorname": "Erika",
            "nachname": "Mustermann",
            "email": "erika@example.org",
            "externePartnerId": EXTERN
        })))
}

#[tokio::test]
async fn lookup_sends_query_bearer_and_trace_and_resolves_parents() {
    let server = partner_server().await;
    Mock::given(method("GET"))
        .and(path("/v2/partners"))
        .and(query_param("externePartnerId", EXTERN))
        .and(bearer_token("tok-p"))
        .and(header("X-TraceId", TRACE))
        .respond_with(found(&["AAA11", "BBB22", "CCC33"]))
        .expect(1)
        .mount(&server)
        .await;
    mount_details(&server, "AAA11", Some("OTHER")).await;
    mount_details(&server, "BBB22", Some("TGP01")).await;
    mount_details(&server, "CCC33", None).await;
    let directory = client(config(&server)).partner_directory();

    let records = directory
        .find_by_externe_partner_id(EXTERN, &trace())
        .await
        .expect("lookup");

    assert_eq!(
        records,
        vec![
            PartnerRecord {
                partner_id: "AAA11".into(),
                parent_partner_id: Some("OTHER".into())
            },
            PartnerRecord {
                partner_id: "BBB22".into(),
                parent_partner_id: Some("TGP01".into())
            },
            PartnerRecord {
                partner_id: "CCC33".into(),
                parent_partner_id: None
            },
        ]
    );
}

#[tokio::test]
async fn lookup_without_hits_is_empty() {
    let server = partner_server().await;
    mount_lookup(&server, found(&[]), 1).await;

    let records = client(config(&server))
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert_eq!(records, Ok(vec![]));
}

#[tokio::test]
async fn hit_we_may_not_see_has_no_parent() {
    let server = partner_server().await;
    mount_lookup(&server, found(&["FOR01"]), 1).await;
    Mock::given(method("GET"))
        .and(path("/v2/partner/FOR01"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;

    let records = client(config(&server))
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert_eq!(
        records,
        Ok(vec![PartnerRecord {
            partner_id: "FOR01".into(),
            parent_partner_id: None
        }])
    );
}

#[tokio::test]
async fn lookup_503_is_retried() {
    let server = partner_server().await;
    mount_lookup_first(&server, ResponseTemplate::new(503), 1).await;
    mount_lookup(&server, found(&[]), 1).await;

    let records = client(config(&server))
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert_eq!(records, Ok(vec![]));
}

#[tokio::test]
async fn lookup_429_honours_retry_after() {
    let server = partner_server().await;
    mount_lookup_first(
        &server,
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
        1,
    )
    .await;
    mount_lookup(&server, found(&[]), 1).await;
    let mut config = config(&server);
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_secs(5),
    };
    let started = Instant::now();

    let records = client(config)
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert_eq!(records, Ok(vec![]));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_is_capped_at_max_delay() {
    let server = partner_server().await;
    mount_lookup_first(
        &server,
        ResponseTemplate::new(503).insert_header("Retry-After", "3600"),
        1,
    )
    .await;
    mount_lookup(&server, found(&[]), 1).await;
    let started = Instant::now();

    let records = client(config(&server))
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert_eq!(records, Ok(vec![]));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn lookup_gives_up_after_max_attempts_with_retry_after() {
    let server = partner_server().await;
    mount_lookup(
        &server,
        ResponseTemplate::new(503).insert_header("Retry-After", "0"),
        3,
    )
    .await;

    let records = client(config(&server))
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert_eq!(
        records,
        Err(EuropaceError::Unavailable {
            reason: "partner lookup answered 503".into(),
            retry_after: Some(Duration::ZERO)
        })
    );
}

#[tokio::test]
async fn lookup_403_is_rejected_without_retry() {
    let server = partner_server().await;
    mount_lookup(&server, ResponseTemplate::new(403), 1).await;

    let records = client(config(&server))
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert_eq!(records, Err(EuropaceError::rejected(403)));
}

#[tokio::test]
async fn lookup_401_refreshes_the_token_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .respond_with(crate::support::token_answer("tok-old", 3600))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_token(&server, PARTNER_SCOPE, "tok-new", 3600, 1).await;
    lookup_mock()
        .and(bearer_token("tok-old"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    lookup_mock()
        .and(bearer_token("tok-new"))
        .respond_with(found(&[]))
        .expect(1)
        .mount(&server)
        .await;

    let records = client(config(&server))
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert_eq!(records, Ok(vec![]));
}

#[tokio::test]
async fn lookup_unreadable_answer_is_protocol_error() {
    let server = partner_server().await;
    mount_lookup(
        &server,
        ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
        1,
    )
    .await;

    let records = client(config(&server))
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert!(
        matches!(records, Err(EuropaceError::Protocol { .. })),
        "{records:?}"
    );
}

#[tokio::test]
async fn create_201_returns_the_new_partner_id() {
    let partner_id = create_answered(
        ResponseTemplate::new(201)
            .insert_header("Location", "https://api.europace.de/v2/partner/WRONG")
            .set_body_json(serde_json::json!({
                "partnerId": "NEW01",
                "typ": "PERSON",
                "parent": {"partnerId": "TGP01"},
                "externePartnerId": EXTERN
            })),
    )
    .await;

    assert_eq!(partner_id.as_deref(), Ok("NEW01"));
}

#[tokio::test]
async fn create_205_returns_the_existing_partner_id() {
    let partner_id = create_answered(
        ResponseTemplate::new(205)
            .insert_header("Location", "/v2/partner/OLD01")
            .set_body_json(serde_json::json!({
                "partnerId": "OLD01",
                "parent": {"partnerId": "TGP01"}
            })),
    )
    .await;

    assert_eq!(partner_id.as_deref(), Ok("OLD01"));
}

#[tokio::test]
async fn create_without_body_falls_back_to_location() {
    let partner_id =
        create_answered(ResponseTemplate::new(205).insert_header("Location", "/v2/partner/OLD02"))
            .await;

    assert_eq!(partner_id.as_deref(), Ok("OLD02"));
}

#[tokio::test]
async fn create_without_any_partner_id_is_protocol_error() {
    let partner_id = create_answered(
        ResponseTemplate::new(201).set_body_json(serde_json::json!({"typ": "PERSON"})),
    )
    .await;

    assert!(
        matches!(partner_id, Err(EuropaceError::Protocol { .. })),
        "{partner_id:?}"
    );
}

#[tokio::test]
async fn create_answering_a_partner_under_another_parent_is_refused() {
    let partner_id = create_answered(
        ResponseTemplate::new(205)
            .insert_header("Location", "/v2/partner/TST01")
            .set_body_json(serde_json::json!({
                "partnerId": "TST01",
                "parent": {"partnerId": "TGT01"}
            })),
    )
    .await;

    assert!(
        matches!(partner_id, Err(EuropaceError::Protocol { .. })),
        "{partner_id:?}"
    );
}

#[tokio::test]
async fn create_503_is_retried() {
    let server = partner_server().await;
    create_mock()
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_with(
        create_mock(),
        &server,
        ResponseTemplate::new(201).set_body_json(serde_json::json!({"partnerId": "NEW01"})),
        1,
    )
    .await;

    let partner_id = create(&server).await;

    assert_eq!(partner_id.as_deref(), Ok("NEW01"));
}

#[tokio::test]
async fn create_400_is_rejected_without_retry() {
    let partner_id =
        create_answered(ResponseTemplate::new(400).set_body_string("vorname Erika invalid")).await;

    assert_eq!(partner_id, Err(EuropaceError::rejected(400)));
    assert!(!format!("{partner_id:?}").contains("Erika"));
}

#[tokio::test]
async fn unreachable_partner_api_is_unavailable_after_retries() {
    let server = partner_server().await;
    let mut config = config(&server);
    config.partner_url = crate::support::closed_port_url("/").await;

    let records = client(config)
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert!(
        matches!(records, Err(EuropaceError::Unavailable { .. })),
        "{records:?}"
    );
}

#[tokio::test]
async fn partner_timeout_is_retried_and_never_in_doubt() {
    let server = partner_server().await;
    mount_lookup(&server, found(&[]).set_delay(Duration::from_millis(800)), 2).await;
    let mut config = config(&server);
    config.request_timeout = Duration::from_millis(300);
    config.retry.max_attempts = 2;

    let records = client(config)
        .partner_directory()
        .find_by_externe_partner_id(EXTERN, &trace())
        .await;

    assert!(
        matches!(records, Err(EuropaceError::Unavailable { .. })),
        "{records:?}"
    );
}

// ---- update (PATCH /v2/partner/{id}) -------------------------------------------------------------

fn phone_update() -> TippgeberUpdate {
    TippgeberUpdate {
        telefon: Some("030 2222".into()),
        ..TippgeberUpdate::default()
    }
}

/// The PATCH of `phone_update()` to partner `ABC12`, exactly as Partnermanagement expects it.
fn update_mock() -> wiremock::MockBuilder {
    Mock::given(method("PATCH"))
        .and(path("/v2/partner/ABC12"))
        .and(bearer_token("tok-p"))
        .and(header("X-TraceId", TRACE))
        .and(header("content-type", "application/json"))
        .and(body_json(serde_json::json!({"telefonnummer": "030 2222"})))
}

/// Europace's 200: the whole partner, the new phone number included.
fn updated_partner() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "partnerId": "ABC12",
        "typ": "PERSON",
        "vorname": "Erika",
        "nachname": "Mustermann",
        "telefonnummer": "030 2222",
        "parent": {"partnerId": "TGP01"}
    }))
}

#[tokio::test]
async fn update_patches_only_the_changed_attributes_in_europaces_names() {
    let server = partner_server().await;
    mount_with(update_mock(), &server, updated_partner(), 1).await;
    Mock::given(method("PATCH"))
        .and(path("/v2/partner/ABC12"))
        .and(body_json(serde_json::json!({
            "anrede": "HERR",
            "nachname": "Musterfrau",
            "email": "erika@neu.example"
        })))
        .respond_with(updated_partner())
        .expect(1)
        .mount(&server)
        .await;
    let directory = client(config(&server)).partner_directory();

    let phone = directory
        .update_tippgeber("ABC12", &phone_update(), &trace())
        .await;
    let several = directory
        .update_tippgeber(
            "ABC12",
            &TippgeberUpdate {
                anrede: Some(Anrede::Herr),
                nachname: Some("Musterfrau".into()),
                email: Some("erika@neu.example".into()),
                ..TippgeberUpdate::default()
            },
            &trace(),
        )
        .await;

    assert_eq!(phone, Ok(()));
    assert_eq!(several, Ok(()));
}

#[tokio::test]
async fn update_5xx_is_retried_then_unavailable() {
    let server = partner_server().await;
    update_mock()
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .named("three attempts")
        .mount(&server)
        .await;

    let updated = update_phone(&server).await;

    assert!(
        matches!(updated, Err(EuropaceError::Unavailable { .. })),
        "{updated:?}"
    );
}

#[tokio::test]
async fn update_503_once_is_retried() {
    let server = partner_server().await;
    update_mock()
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_with(update_mock(), &server, updated_partner(), 1).await;

    let updated = update_phone(&server).await;

    assert_eq!(updated, Ok(()));
}

#[tokio::test]
async fn update_4xx_is_rejected_without_retry() {
    for status in [400, 403, 404] {
        let updated = update_answered(ResponseTemplate::new(status).set_body_json(
            serde_json::json!({
                "message": "Enum literal für 'anrede' muss FRAU oder HERR sein.: 030 2222",
                "traceId": "t"
            }),
        ))
        .await;

        assert_eq!(updated, Err(EuropaceError::rejected(status)));
        assert!(!format!("{updated:?}").contains("030 2222"));
    }
}
