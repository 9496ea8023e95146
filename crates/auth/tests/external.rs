//! External authorization servers: JWKS and RFC 7662 introspection, against wiremock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use auth::{
    Authorizer, ExternalSettings, IntrospectionValidator, InvalidReason, JwksValidator, TokenError,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::json;
use support::*;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn jwks_settings() -> ExternalSettings {
    ExternalSettings::new(Some(ISSUER.to_owned()), AUDIENCE)
}

async fn jwks_server(f: &Fixture) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(f.keys.jwks()))
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn jwks_validator_accepts_tokens_of_the_remote_keys() {
    let f = Fixture::new().await;
    let server = jwks_server(&f).await;
    let validator = JwksValidator::new(
        format!("{}/jwks", server.uri()),
        jwks_settings(),
        f.clock.clone(),
    )
    .unwrap();
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;

    let claims = validator.validate(&token).await.unwrap();
    assert_eq!(claims.client_id, client.client_id);
    assert_eq!(claims.scope, IMPORT);
    assert_eq!(requests(&server).await, 1);
    validator.validate(&token).await.unwrap();
    assert_eq!(requests(&server).await, 1, "keys are cached");

    let authorizer = Authorizer::Jwks(validator);
    let auth = bearer(&token);
    assert!(authorizer.authorize_import(Some(&auth)).await.is_ok());
    assert_eq!(
        authorizer
            .authorize(Some(&auth), "other:scope")
            .await
            .unwrap_err()
            .status(),
        403
    );
    assert_eq!(
        authorizer.authorize_import(None).await,
        Err(TokenError::Missing)
    );
}

#[tokio::test]
async fn jwks_validator_rejects_symmetric_and_foreign_algorithms() {
    let f = Fixture::new().await;
    // The remote JWKS also offers a symmetric key: it must never be used.
    let mut jwks = f.keys.jwks();
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "kty": "oct", "kid": "hmac", "k": b64(b"shared-secret"), "alg": "HS256" }));
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks.clone()))
        .mount(&server)
        .await;
    let validator = JwksValidator::new(
        format!("{}/jwks", server.uri()),
        jwks_settings(),
        f.clock.clone(),
    )
    .unwrap();
    assert_eq!(
        validator.refresh().await.unwrap(),
        1,
        "the oct key is ignored"
    );

    let claims = f.claims("drk_x");
    for (kid, secret) in [
        ("hmac", b"shared-secret".to_vec()),
        (
            f.kid().as_str(),
            jwks["keys"][0]["x"].as_str().unwrap().as_bytes().to_vec(),
        ),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.to_owned());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(
            validator.validate(&token).await,
            Err(TokenError::Invalid(InvalidReason::Algorithm))
        );
    }
    // An ES256 header for our Ed25519 key: the key fixes the algorithm.
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": f.kid() });
    let token = f.sign_with_our_key(&header, &claims);
    assert_eq!(
        validator.validate(&token).await,
        Err(TokenError::Invalid(InvalidReason::Algorithm))
    );
    // Wrong issuer and audience.
    let mut wrong = claims.clone();
    wrong["iss"] = json!("https://evil.example");
    let token = f.sign_with_our_key(&f.header(), &wrong);
    assert_eq!(
        validator.validate(&token).await,
        Err(TokenError::Invalid(InvalidReason::Issuer))
    );
    let mut wrong = claims.clone();
    wrong["aud"] = json!(["other"]);
    let token = f.sign_with_our_key(&f.header(), &wrong);
    assert_eq!(
        validator.validate(&token).await,
        Err(TokenError::Invalid(InvalidReason::Audience))
    );
    // An audience array containing ours is fine for external tokens.
    let mut list = claims.clone();
    list["aud"] = json!(["other", AUDIENCE]);
    let token = f.sign_with_our_key(&f.header(), &list);
    assert!(validator.validate(&token).await.is_ok());
    // Expired beyond leeway.
    let token = f.sign_with_our_key(&f.header(), &claims);
    f.advance(931);
    assert_eq!(validator.validate(&token).await, Err(TokenError::Expired));
}

#[tokio::test]
async fn jwks_validator_refetches_on_unknown_kid_at_most_every_5_seconds() {
    let f = Fixture::new().await;
    let server = MockServer::start().await;
    let validator = JwksValidator::new(
        format!("{}/jwks", server.uri()),
        jwks_settings(),
        f.clock.clone(),
    )
    .unwrap();
    let mount = |jwks: serde_json::Value| {
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(jwks))
    };
    let first = server.register_as_scoped(mount(f.keys.jwks())).await;
    let (client, _) = f.register(&[]).await;
    assert!(
        validator
            .validate(&f.token_for(&client.client_id, &[IMPORT]).await)
            .await
            .is_ok()
    );
    drop(first);

    // The remote server rotates its key.
    f.keys.rotate().await.unwrap();
    server.register(mount(f.keys.jwks())).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    f.advance(5);
    assert!(
        validator.validate(&token).await.is_ok(),
        "refetched for the new kid"
    );
    let fetches = requests(&server).await;
    assert_eq!(fetches, 2);

    let unknown = f.sign_with_our_key(
        &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "nope" }),
        &f.claims("drk_x"),
    );
    for _ in 0..5 {
        assert_eq!(
            validator.validate(&unknown).await,
            Err(TokenError::Invalid(InvalidReason::UnknownKey))
        );
    }
    assert_eq!(
        requests(&server).await,
        fetches,
        "rate-limited: the fetch for the new kid was just now"
    );
    f.clock.advance(Duration::from_secs(5));
    for _ in 0..5 {
        let _ = validator.validate(&unknown).await;
    }
    assert_eq!(requests(&server).await, fetches + 1);
}

#[tokio::test]
async fn unreachable_jwks_is_unavailable() {
    let f = Fixture::new().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let validator = JwksValidator::new(
        format!("{}/jwks", server.uri()),
        jwks_settings(),
        f.clock.clone(),
    )
    .unwrap();
    let token = f.sign_with_our_key(&f.header(), &f.claims("drk_x"));
    let error = validator.validate(&token).await.unwrap_err();
    assert_eq!(error, TokenError::Unavailable);
    assert_eq!(error.status(), 503);
}

fn introspection(server: &MockServer, f: &Fixture) -> IntrospectionValidator {
    IntrospectionValidator::new(
        format!("{}/introspect", server.uri()),
        "vorgang-rs",
        SecretString::from("rs secret"),
        ExternalSettings::new(Some("https://idp.example".into()), AUDIENCE),
        f.clock.clone(),
    )
    .unwrap()
}

#[tokio::test]
async fn introspection_accepts_active_tokens() {
    let f = Fixture::new().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        // "vorgang-rs:rs+secret" (the secret form-urlencoded first, RFC 6749 §2.3.1)
        .and(header(
            "authorization",
            "Basic dm9yZ2FuZy1yczpycytzZWNyZXQ=",
        ))
        .and(body_string_contains("token=opaque-token"))
        .and(body_string_contains("token_type_hint=access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "active": true,
            "client_id": "partner-1",
            "scope": format!("{IMPORT} other"),
            "iss": "https://idp.example",
            "aud": [AUDIENCE],
            "exp": T0 + 60,
            "iat": T0,
        })))
        .mount(&server)
        .await;
    let validator = introspection(&server, &f);
    let claims = validator.validate("opaque-token").await.unwrap();
    assert_eq!(claims.client_id, "partner-1");
    assert!(claims.has_scope(IMPORT));

    let authorizer = Authorizer::Introspection(validator);
    let auth = bearer("opaque-token");
    assert!(authorizer.authorize_import(Some(&auth)).await.is_ok());
    assert!(matches!(
        authorizer.authorize(Some(&auth), "admin").await,
        Err(TokenError::InsufficientScope { .. })
    ));
    f.advance(91);
    assert_eq!(
        authorizer.authorize_import(Some(&auth)).await,
        Err(TokenError::Expired)
    );
}

#[tokio::test]
async fn introspection_rejects_inactive_foreign_and_unreachable() {
    let f = Fixture::new().await;
    let server = MockServer::start().await;
    let answers = [
        (
            "inactive",
            json!({ "active": false }),
            TokenError::Invalid(InvalidReason::Inactive),
        ),
        (
            "foreign-aud",
            json!({ "active": true, "client_id": "p", "aud": "other-api" }),
            TokenError::Invalid(InvalidReason::Audience),
        ),
        (
            "foreign-iss",
            json!({ "active": true, "client_id": "p", "iss": "https://evil.example" }),
            TokenError::Invalid(InvalidReason::Issuer),
        ),
        (
            "no-client",
            json!({ "active": true }),
            TokenError::Invalid(InvalidReason::Claims),
        ),
    ];
    for (token, answer, _) in &answers {
        Mock::given(method("POST"))
            .and(body_string_contains(format!("token={token}&")))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(body_string_contains("token=broken"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let validator = introspection(&server, &f);
    for (token, _, expected) in answers {
        assert_eq!(validator.validate(token).await, Err(expected), "{token}");
    }
    assert_eq!(
        validator.validate("broken").await,
        Err(TokenError::Unavailable)
    );
    assert_eq!(
        validator.validate("").await,
        Err(TokenError::Invalid(InvalidReason::Malformed))
    );
}

#[tokio::test]
async fn builtin_authorizer_checks_revocation() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    let authorizer = Authorizer::Builtin {
        validator: f.validator.clone(),
        registry: f.registry.clone(),
    };
    let auth = bearer(&token);
    assert!(authorizer.authorize_import(Some(&auth)).await.is_ok());
    f.registry.revoke(&client.client_id).await.unwrap();
    assert_eq!(
        authorizer.authorize_import(Some(&auth)).await,
        Err(TokenError::Revoked)
    );
}
