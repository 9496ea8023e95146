//! The token cache: request shape, caching, expiry, single flight, retries.

use std::sync::Arc;
use std::time::Duration;

use europace_client::Impersonation;
use tokio::task::JoinSet;
use vorgang_core::EuropaceError;
use vorgang_core::model::Environment;
use wiremock::matchers::{basic_auth, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    self, CLIENT_ID, FormIs, KEX_SCOPE, PARTNER_SCOPE, SECRET, ScopeIs, TRACE, client, config,
    kex_token, mount_token, mount_token_answer, token_answer, trace,
};

async fn mount_kex_created(server: &MockServer, times: u64) {
    Mock::given(method("POST"))
        .and(path("/vorgang"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"vorgangsnummer": "AB1234"})),
        )
        .expect(times)
        .named("kex")
        .mount(server)
        .await;
}

#[tokio::test]
async fn token_request_has_the_documented_shape() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .and(basic_auth(CLIENT_ID, SECRET))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("X-TraceId", TRACE))
        .and(FormIs(vec![
            ("grant_type", "client_credentials"),
            ("scope", KEX_SCOPE),
        ]))
        .respond_with(token_answer("tok-1", 3600))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(config(&server));

    let token = client
        .kex_api()
        .tokens()
        .token(&trace())
        .await
        .expect("token");

    assert_eq!(token.expose_secret(), "tok-1");
    assert!(!format!("{token:?}").contains("tok-1"));
}

#[tokio::test]
async fn impersonation_sends_subject_and_actor() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .and(FormIs(vec![
            ("grant_type", "client_credentials"),
            ("scope", PARTNER_SCOPE),
            ("subject", "ABC12"),
            ("actor", "XYZ54"),
        ]))
        .respond_with(token_answer("tok-1", 3600))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.impersonation = Some(Impersonation {
        subject: "ABC12".into(),
        actor: "XYZ54".into(),
    });

    let token = client(config).partner_api().tokens().token(&trace()).await;

    assert!(token.is_ok());
}

#[tokio::test]
async fn token_is_cached_across_calls() {
    let server = MockServer::start().await;
    mount_token(&server, KEX_SCOPE, "tok-1", 3600, 1).await;
    mount_kex_created(&server, 2).await;
    let importer = client(config(&server)).kex_importer();
    let body =
        vorgang_core::KexBody::from_value(&serde_json::json!({"a": 1})).expect("serialisable");

    for _ in 0..2 {
        let imported = importer.import(Environment::Test, &body, &trace()).await;
        assert!(imported.is_ok(), "{imported:?}");
    }
}

#[tokio::test]
async fn kex_and_partner_scopes_use_separate_tokens() {
    let server = MockServer::start().await;
    mount_token(&server, KEX_SCOPE, "tok-kex", 3600, 1).await;
    mount_token(&server, PARTNER_SCOPE, "tok-partner", 3600, 1).await;
    let client = client(config(&server));

    let kex = client
        .kex_api()
        .tokens()
        .token(&trace())
        .await
        .expect("kex token");
    let partner = client
        .partner_api()
        .tokens()
        .token(&trace())
        .await
        .expect("partner token");

    assert_eq!(kex.expose_secret(), "tok-kex");
    assert_eq!(partner.expose_secret(), "tok-partner");
}

#[tokio::test]
async fn token_without_lifetime_left_is_fetched_again() {
    let server = MockServer::start().await;
    mount_token(&server, KEX_SCOPE, "tok-1", 0, 2).await;
    let tokens = client(config(&server)).kex_api().tokens().clone();

    for _ in 0..2 {
        assert!(tokens.token(&trace()).await.is_ok());
    }
}

#[tokio::test]
async fn token_is_refreshed_shortly_before_expiry() {
    let server = MockServer::start().await;
    // 1 s lifetime: reused at once, replaced after 0.9 s (10 % margin).
    mount_token(&server, KEX_SCOPE, "tok-1", 1, 2).await;
    let tokens = client(config(&server)).kex_api().tokens().clone();

    assert!(tokens.token(&trace()).await.is_ok());
    assert!(tokens.token(&trace()).await.is_ok());
    tokio::time::sleep(Duration::from_millis(950)).await;
    assert!(tokens.token(&trace()).await.is_ok());
}

#[tokio::test]
async fn concurrent_imports_share_one_token_request() {
    let server = MockServer::start().await;
    mount_token_answer(
        &server,
        token_answer("tok-1", 3600).set_delay(Duration::from_millis(300)),
        1,
    )
    .await;
    mount_kex_created(&server, 100).await;
    let importer = client(config(&server)).kex_importer();
    let body = Arc::new(
        vorgang_core::KexBody::from_value(&serde_json::json!({"a": 1})).expect("serialisable"),
    );

    let mut tasks = JoinSet::new();
    for _ in 0..100 {
        let importer = Arc::clone(&importer);
        let body = Arc::clone(&body);
        tasks.spawn(async move { importer.import(Environment::Test, &body, &trace()).await });
    }
    let results = tasks.join_all().await;

    assert_eq!(results.len(), 100);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[tokio::test]
async fn concurrent_callers_share_a_failed_refresh() {
    let server = MockServer::start().await;
    mount_token_answer(
        &server,
        ResponseTemplate::new(400).set_delay(Duration::from_millis(500)),
        1,
    )
    .await;
    let tokens = client(config(&server)).kex_api().tokens().clone();

    let mut tasks = JoinSet::new();
    for _ in 0..10 {
        let tokens = tokens.clone();
        tasks.spawn(async move { tokens.token(&trace()).await.map(|_| ()) });
    }
    let results = tasks.join_all().await;

    assert!(
        results
            .iter()
            .all(|r| *r == Err(EuropaceError::rejected(400))),
        "{results:?}"
    );
}

#[tokio::test]
async fn token_5xx_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .expect(2)
        .named("token 500")
        .mount(&server)
        .await;
    mount_token(&server, KEX_SCOPE, "tok-1", 3600, 1).await;

    let token = kex_token(&server).await;

    assert_eq!(token.expect("token after retries").expose_secret(), "tok-1");
}

#[tokio::test]
async fn token_gives_up_after_max_attempts() {
    let server = MockServer::start().await;
    mount_token_answer(
        &server,
        ResponseTemplate::new(503).insert_header("Retry-After", "0"),
        3,
    )
    .await;

    let token = kex_token(&server).await;

    assert_eq!(
        token.map(|_| ()),
        Err(EuropaceError::Unavailable {
            reason: "token endpoint answered 503".into(),
            retry_after: Some(Duration::ZERO),
        })
    );
}

#[tokio::test]
async fn token_401_is_rejected_without_retry() {
    let server = MockServer::start().await;
    mount_token_answer(
        &server,
        ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client",
            "error_description": "Client authentication failed"
        })),
        1,
    )
    .await;

    let token = kex_token(&server).await;

    assert_eq!(token.map(|_| ()), Err(EuropaceError::rejected(401)));
}

#[tokio::test]
async fn token_type_is_compared_case_insensitively() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .and(ScopeIs(KEX_SCOPE))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "tok-1", "token_type": "bEaReR", "expires_in": 3600
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .and(ScopeIs(PARTNER_SCOPE))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "tok-2", "token_type": "mac", "expires_in": 3600
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(config(&server));

    assert!(client.kex_api().tokens().token(&trace()).await.is_ok());
    assert!(matches!(
        client.partner_api().tokens().token(&trace()).await,
        Err(EuropaceError::Protocol { .. })
    ));
}

#[tokio::test]
async fn unreachable_token_endpoint_is_unavailable() {
    let server = MockServer::start().await;
    let mut config = config(&server);
    config.auth_url = support::closed_port_url("/auth/token").await;

    let token = client(config).kex_api().tokens().token(&trace()).await;

    assert!(
        matches!(token, Err(EuropaceError::Unavailable { .. })),
        "{token:?}"
    );
}

#[tokio::test]
async fn a_numeric_string_expires_in_is_a_lifetime() {
    let server = MockServer::start().await;
    mount_token_answer(
        &server,
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "tok-1", "token_type": "Bearer", "expires_in": "3600"
        })),
        1,
    )
    .await;
    let tokens = client(config(&server)).kex_api().tokens().clone();

    for _ in 0..3 {
        assert_eq!(
            tokens.token(&trace()).await.expect("token").expose_secret(),
            "tok-1"
        );
    }
}

#[tokio::test]
async fn a_token_answer_that_is_not_json_is_a_protocol_error() {
    let server = MockServer::start().await;
    mount_token_answer(
        &server,
        ResponseTemplate::new(200)
            .insert_header("Content-Type", "text/html")
            .set_body_string(r#"{"access_token":"tok-1","token_type":"Bearer"}"#),
        1,
    )
    .await;

    let token = kex_token(&server).await;

    assert!(
        matches!(token, Err(EuropaceError::Protocol { .. })),
        "{token:?}"
    );
}

#[tokio::test]
async fn an_rfc_6749_error_answer_is_rejected_with_its_status() {
    let server = MockServer::start().await;
    mount_token_answer(
        &server,
        ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": "invalid_scope",
            "error_description": "scope not granted"
        })),
        1,
    )
    .await;

    let token = client(config(&server))
        .partner_api()
        .tokens()
        .token(&trace())
        .await;

    assert_eq!(token.map(|_| ()), Err(EuropaceError::rejected(400)));
}
