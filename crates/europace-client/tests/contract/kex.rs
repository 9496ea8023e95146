//! The KEX import: request shape, answer parsing, and the never-resend rules.

use std::time::Duration;

use vorgang_core::model::Environment;
use vorgang_core::{EuropaceError, KexBody, KexImported};
use wiremock::matchers::{
    bearer_token, body_json, body_string_contains, header, method, path, query_param,
    query_param_is_missing,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEX_SCOPE, RawPeer, TRACE, client, config, mount_token, mount_with, trace};

/// The Vorgang as the use case hands it to the adapter: serialised once.
fn body() -> KexBody {
    KexBody::from_value(&vorgang()).expect("serialisable")
}

fn vorgang() -> serde_json::Value {
    serde_json::from_str(
        r#"{
            "leadquelle": "drkleinrk",
            "eigeneVorgangsnummer": "00000000-0000-0000-0000-000000000001",
            "kundenbetreuer": {"partnerId": "KBT01"},
            "tippgeber": {"partnerId": "NEW01"},
            "finanzbedarf": {"kreditbetrag": 200.01, "laufzeitInMonaten": 24},
            "antragsteller1": {"personendaten": {"vorname": "Erika", "nachname": "Mustermann"}},
            "unbekanntesFeld": {"bleibt": [1, 2.5, "drei", null, true]},
            "kommentare": ["Hallo", "Vertriebsschlüssel: X"]
        }"#,
    )
    .expect("valid JSON")
}

fn created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(serde_json::json!({
        "vorgangsnummer": "AB1234",
        "messages": ["Vorgang angelegt"],
        "antragsteller1": {"id": "x"}
    }))
}

fn kex_mock() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path("/vorgang"))
}

/// A mock Europace with the KEX-scope token `tok-k`, fetched exactly once.
async fn kex_server() -> MockServer {
    let server = MockServer::start().await;
    mount_token(&server, KEX_SCOPE, "tok-k", 3600, 1).await;
    server
}

/// [`import`] against a fresh [`kex_server`] whose KEX endpoint answers `answer` once.
async fn import_answered(
    answer: ResponseTemplate,
    environment: Environment,
) -> Result<KexImported, EuropaceError> {
    let server = kex_server().await;
    mount_with(kex_mock(), &server, answer, 1).await;
    import(&server, environment).await
}

async fn import(
    server: &MockServer,
    environment: Environment,
) -> Result<KexImported, EuropaceError> {
    client(config(server))
        .kex_importer()
        .import(environment, &body(), &trace())
        .await
}

#[tokio::test]
async fn test_import_posts_the_body_unchanged_without_environment() {
    let server = kex_server().await;
    kex_mock()
        .and(query_param_is_missing("environment"))
        .and(bearer_token("tok-k"))
        .and(header("X-TraceId", TRACE))
        .and(header("content-type", "application/json"))
        .and(body_json(vorgang()))
        .and(body_string_contains("200.01"))
        .and(body_string_contains("2.5"))
        .respond_with(created())
        .expect(1)
        .mount(&server)
        .await;

    let imported = import(&server, Environment::Test).await;

    assert_eq!(
        imported,
        Ok(KexImported {
            vorgangsnummer: "AB1234".into(),
            messages: vec!["Vorgang angelegt".into()],
        })
    );
}

#[tokio::test]
async fn production_import_sends_environment_parameter() {
    let server = kex_server().await;
    kex_mock()
        .and(query_param("environment", "PRODUCTION"))
        .and(body_json(vorgang()))
        .respond_with(created())
        .expect(1)
        .mount(&server)
        .await;

    let imported = import(&server, Environment::Production).await;

    assert!(imported.is_ok(), "{imported:?}");
}

#[tokio::test]
async fn messages_may_be_absent_or_objects() {
    let server = kex_server().await;
    kex_mock()
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "vorgangsnummer": "AB1234",
            "messages": ["text", {"code": "W1", "text": "Hinweis"}]
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_with(
        kex_mock(),
        &server,
        ResponseTemplate::new(201).set_body_json(serde_json::json!({"vorgangsnummer": "CD5678"})),
        1,
    )
    .await;
    let importer = client(config(&server)).kex_importer();

    let first = importer.import(Environment::Test, &body(), &trace()).await;
    let second = importer.import(Environment::Test, &body(), &trace()).await;

    assert_eq!(
        first.map(|i| i.messages),
        Ok(vec![
            "text".into(),
            r#"{"code":"W1","text":"Hinweis"}"#.into()
        ])
    );
    assert_eq!(
        second,
        Ok(KexImported {
            vorgangsnummer: "CD5678".into(),
            messages: vec![]
        })
    );
}

#[tokio::test]
async fn success_without_vorgangsnummer_is_protocol_error() {
    let imported = import_answered(
        ResponseTemplate::new(201).set_body_json(serde_json::json!({"messages": []})),
        Environment::Test,
    )
    .await;

    assert!(
        matches!(imported, Err(EuropaceError::Protocol { .. })),
        "{imported:?}"
    );
}

/// A body that is not JSON carries no messages: still `Rejected`, with none.
#[tokio::test]
async fn rejected_400_is_not_resent_and_not_echoed() {
    let imported = import_answered(
        ResponseTemplate::new(400).set_body_string("vorname Erika ungültig"),
        Environment::Test,
    )
    .await;

    assert_eq!(imported, Err(EuropaceError::rejected(400)));
}

#[tokio::test]
async fn rejected_400_carries_europaces_messages_but_never_shows_them() {
    let server = kex_server().await;
    let sent = vec![
        "Die Postleitzahl 99999 ist ungültig.".to_owned(),
        "Antragsteller Erika Mustermann: Geburtsdatum fehlt.".to_owned(),
    ];
    mount_with(
        kex_mock(),
        &server,
        ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "messages": sent,
            "traceId": TRACE,
        })),
        1,
    )
    .await;

    let imported = import(&server, Environment::Test).await;

    let Err(error) = imported else {
        panic!("not rejected: {imported:?}");
    };
    assert_eq!(
        error,
        EuropaceError::Rejected {
            status: 400,
            messages: sent.into(),
        }
    );
    // What logs and panics may show: the status and the number of messages, never their text.
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(shown.contains("400") && shown.contains('2'), "{shown}");
        assert!(
            !shown.contains("Erika") && !shown.contains("99999"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn rejected_422_with_a_single_message_as_the_partner_api_sends_it() {
    let imported = import_answered(
        ResponseTemplate::new(422).set_body_json(serde_json::json!({
            "message": "Es wurde keine gültige Kundenbetreuer-Partner-ID angegeben",
            "traceId": TRACE,
        })),
        Environment::Test,
    )
    .await;

    assert_eq!(
        imported,
        Err(EuropaceError::Rejected {
            status: 422,
            messages: vec!["Es wurde keine gültige Kundenbetreuer-Partner-ID angegeben".into()]
                .into(),
        })
    );
}

#[tokio::test]
async fn rejected_with_a_json_body_without_messages_has_none() {
    let imported = import_answered(
        ResponseTemplate::new(409).set_body_json(serde_json::json!({"status": 409})),
        Environment::Test,
    )
    .await;

    assert_eq!(imported, Err(EuropaceError::rejected(409)));
}

#[tokio::test]
async fn unavailable_503_is_not_resent() {
    let imported = import_answered(
        ResponseTemplate::new(503).insert_header("Retry-After", "7"),
        Environment::Test,
    )
    .await;

    assert_eq!(
        imported,
        Err(EuropaceError::Unavailable {
            reason: "KEX import answered 503".into(),
            retry_after: Some(Duration::from_secs(7)),
        })
    );
}

#[tokio::test]
async fn throttled_429_is_not_resent() {
    let server = kex_server().await;
    mount_with(kex_mock(), &server, ResponseTemplate::new(429), 1).await;

    let imported = import(&server, Environment::Test).await;

    assert!(
        matches!(
            imported,
            Err(EuropaceError::Unavailable {
                retry_after: None,
                ..
            })
        ),
        "{imported:?}"
    );
}

#[tokio::test]
async fn unauthorized_refreshes_the_token_and_resends_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .respond_with(crate::support::token_answer("tok-old", 3600))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_token(&server, KEX_SCOPE, "tok-new", 3600, 1).await;
    kex_mock()
        .and(bearer_token("tok-old"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    kex_mock()
        .and(bearer_token("tok-new"))
        .and(body_json(vorgang()))
        .respond_with(created())
        .expect(1)
        .mount(&server)
        .await;

    let imported = import(&server, Environment::Test).await;

    assert_eq!(imported.map(|i| i.vorgangsnummer), Ok("AB1234".into()));
}

#[tokio::test]
async fn second_unauthorized_is_rejected() {
    let server = MockServer::start().await;
    mount_token(&server, KEX_SCOPE, "tok-k", 3600, 2).await;
    // Messages of a 401 are about our token, not the partner's import: not passed on.
    mount_with(
        kex_mock(),
        &server,
        ResponseTemplate::new(401)
            .set_body_json(serde_json::json!({"messages": ["token expired"]})),
        2,
    )
    .await;

    let imported = import(&server, Environment::Test).await;

    assert_eq!(imported, Err(EuropaceError::rejected(401)));
}

#[tokio::test]
async fn answer_slower_than_request_timeout_is_in_doubt() {
    let server = kex_server().await;
    mount_with(
        kex_mock(),
        &server,
        created().set_delay(Duration::from_millis(1500)),
        1,
    )
    .await;
    let mut config = config(&server);
    config.connect_timeout = Duration::from_millis(200);
    config.request_timeout = Duration::from_millis(300);

    let imported = client(config)
        .kex_importer()
        .import(Environment::Test, &body(), &trace())
        .await;

    assert_eq!(
        imported,
        Err(EuropaceError::InDoubt {
            reason: "KEX import timed out after sending".into()
        })
    );
}

#[tokio::test]
async fn refused_connection_is_unavailable() {
    let server = kex_server().await;
    let mut config = config(&server);
    config.kex_url = crate::support::closed_port_url("/vorgang").await;

    let imported = client(config)
        .kex_importer()
        .import(Environment::Test, &body(), &trace())
        .await;

    assert_eq!(
        imported,
        Err(EuropaceError::Unavailable {
            reason: "KEX import: connect failed; nothing was sent".into(),
            retry_after: None
        })
    );
}

#[tokio::test]
async fn connection_closed_after_sending_is_in_doubt() {
    let server = kex_server().await;
    let peer = RawPeer::start(b"", "/vorgang").await;
    let mut config = config(&server);
    config.kex_url = peer.url.clone();

    let imported = client(config)
        .kex_importer()
        .import(Environment::Test, &body(), &trace())
        .await;

    assert_eq!(
        imported,
        Err(EuropaceError::InDoubt {
            reason: "KEX import connection lost after sending".into()
        })
    );
    assert_eq!(peer.requests(), 1);
}

#[tokio::test]
async fn success_answer_cut_off_is_in_doubt() {
    let server = kex_server().await;
    let peer = RawPeer::start(
        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{\"vorgangsnummer\":\"AB",
        "/vorgang",
    )
    .await;
    let mut config = config(&server);
    config.kex_url = peer.url.clone();

    let imported = client(config)
        .kex_importer()
        .import(Environment::Test, &body(), &trace())
        .await;

    assert_eq!(
        imported,
        Err(EuropaceError::InDoubt {
            reason: "KEX import answer lost while reading: body transfer failed".into()
        })
    );
    assert_eq!(peer.requests(), 1);
}

#[tokio::test]
async fn token_failure_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    mount_with(kex_mock(), &server, created(), 0).await;

    let imported = import(&server, Environment::Test).await;

    assert!(
        matches!(imported, Err(EuropaceError::Unavailable { .. })),
        "{imported:?}"
    );
}

#[tokio::test]
async fn unusable_token_answer_sends_nothing_and_is_not_in_doubt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string("not json"))
        .expect(1)
        .mount(&server)
        .await;
    mount_with(kex_mock(), &server, created(), 0).await;

    let imported = import(&server, Environment::Test).await;

    assert!(
        matches!(imported, Err(EuropaceError::Unavailable { .. })),
        "{imported:?}"
    );
}
