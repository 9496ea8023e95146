use serde_json::Value;

use crate::helpers::{problem, seed, spawn_app};

#[tokio::test]
async fn client_credentials_give_a_signed_at_jwt_verifiable_by_the_jwks() {
    let app = spawn_app().await;
    let response = app
        .token_response(&[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "drkleinrk-api/vorgang:import");
    let token = body["access_token"].as_str().unwrap();

    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&engine.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], app.address);
    assert_eq!(claims["aud"], "drkleinrk-api");
    assert_eq!(claims["sub"], app.client_id);
    assert_eq!(claims["client_id"], app.client_id);
    for claim in ["iat", "exp", "jti"] {
        assert!(!claims[claim].is_null(), "{claim}");
    }

    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the signing key is published");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert!(key.get("d").is_none(), "no private key material");
}

#[tokio::test]
async fn wrong_credentials_are_invalid_client() {
    let app = spawn_app().await;
    let response = app.token_with_secret("wrong").await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(!body.to_string().contains("wrong"));

    let response = app.token_response(&[("grant_type", "password")]).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");

    let response = app
        .token_response(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
}

#[tokio::test]
async fn a_revoked_clients_token_stops_working_at_once() {
    let app = spawn_app().await;
    let token = app.token().await;
    let auth = app.auth_service().await;
    assert!(auth.revoke_client(&app.client_id).await.unwrap());
    let response = app.post_vorgang(&token, &seed()).await;
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    problem(response, 401).await;
    let response = app
        .token_response(&[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_token_without_the_import_scope_is_403() {
    let app = spawn_app().await;
    let (reader_id, reader_secret) = app.register_client(&["drkleinrk-api/vorgang:read"]).await;
    let token = app.token_for(&reader_id, &reader_secret).await;
    let response = app.post_vorgang(&token, &seed()).await;
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    problem(response, 403).await;
}
