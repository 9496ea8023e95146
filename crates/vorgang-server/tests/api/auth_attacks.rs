//! Attacks on the bearer-token check of `POST /vorgang` and on `POST /oauth2/token`, each against
//! the real server over HTTP (docs/security.md lists them).
//!
//! Every refused request must answer the RFC 6750 status and `WWW-Authenticate` challenge, and the
//! sandbox must not have received an import. Where a forged token needs the server's real signing
//! key (wrong `iss`/`aud`/`typ`, expired, not yet valid), the test opens the server's database and
//! signs with the same key ring; each such test also shows a correctly made token of the same key
//! being accepted, so that the refusal is caused by the one claim changed.

use crate::support::SendJson as _;
use std::sync::Arc;

use auth::memory::{ManualClock, MemorySigningKeyStore};
use auth::{Clock, IMPORT_SCOPE, KeyRing, KeyRingConfig, SystemClock, TokenIssuer, TokenSettings};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::helpers::{
    Db, TestApp, assert_oauth_error, claims_for, problem, seed, spawn_app, spawn_app_with,
};

const INVALID_TOKEN: &str = "Bearer realm=\"vorgang\", error=\"invalid_token\"";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The decoded header and claims and the raw signature of a compact JWS.
fn split(token: &str) -> (Value, Value, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let header = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
    let claims = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    (header, claims, parts[2].to_owned())
}

/// A compact JWS from a header, claims and a signature, none of them checked.
fn join(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    )
}

/// The server's database.
/// The server's own key ring (same database, same key-encryption key), on `clock`.
async fn server_ring(app: &TestApp, clock: Arc<dyn Clock>) -> Arc<KeyRing> {
    let store = app.store().await;
    let kek = app
        .settings
        .key_encryption_key
        .as_ref()
        .and_then(vorgang_server::settings::decode_kek);
    Arc::new(
        KeyRing::load_or_create(
            store.as_signing_key_store(),
            kek,
            clock,
            KeyRingConfig::default(),
        )
        .await
        .unwrap(),
    )
}

/// The token settings the server uses (issuer = its address, the default audience and times).
fn server_token_settings(app: &TestApp) -> TokenSettings {
    TokenSettings::new(app.address.clone())
}

/// Signs `claims` with the server's real signing key under `header` (its `kid` is set).
async fn sign_with_server_key(ring: &KeyRing, mut header: Header, claims: &Value) -> String {
    let key = ring.signing_key().await;
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding_key()).unwrap()
}

/// `claims` signed with the server's real key as an `at+jwt`.
async fn signed(ring: &KeyRing, claims: &Value) -> String {
    sign_with_server_key(ring, at_jwt_header(), claims).await
}

fn at_jwt_header() -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header
}

/// Claims as our issuer writes them, for the app's client, valid now.
fn valid_claims(app: &TestApp) -> Value {
    let now = Utc::now().timestamp();
    claims_for(app, now, now + 300)
}

async fn sandbox_imports(app: &TestApp) -> Vec<Value> {
    app.sandbox_get("/_sandbox/vorgaenge")
        .await
        .as_array()
        .cloned()
        .expect("/_sandbox/vorgaenge is an array")
}

/// `POST /vorgang` with `token` must answer `status` with the challenge `www_authenticate`, as
/// problem+json, and nothing may reach the sandbox.
async fn assert_refused(app: &TestApp, token: &str, status: u16, www_authenticate: &str) {
    let response = app.post_vorgang(token, &seed()).await;
    assert_eq!(response.status().as_u16(), status, "POST /vorgang");
    assert_eq!(
        response.headers()["www-authenticate"],
        www_authenticate,
        "WWW-Authenticate"
    );
    let body = problem(response, status).await;
    let text = body.to_string();
    assert!(!text.contains(token), "the token is not echoed");
    assert_eq!(
        sandbox_imports(app).await,
        Vec::<Value>::new(),
        "nothing reached the sandbox"
    );
}

/// `assert_refused` with 401 `invalid_token`.
async fn assert_invalid_token(app: &TestApp, token: &str) {
    assert_refused(app, token, 401, INVALID_TOKEN).await;
}

/// A side-effect-free proof that `token` is accepted: `GET /vorgang/{unknown id}` passes the
/// bearer check (the same as `POST /vorgang`'s) and answers 404 instead of 401/403.
async fn assert_authorized(app: &TestApp, token: &str) {
    let response = app
        .get_vorgang(token, &uuid::Uuid::new_v4().to_string())
        .await;
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "the token is accepted"
    );
}

/// A POST that must be imported (201).
async fn assert_imported(app: &TestApp, token: &str) {
    let response = app.post_vorgang(token, &seed()).await;
    assert_eq!(response.status(), StatusCode::CREATED, "POST /vorgang");
}

async fn jwks(app: &TestApp) -> Value {
    app.http
        .get(format!("{}/.well-known/jwks.json", app.address))
        .send_json()
        .await
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn token_request(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.oauth_form("/oauth2/token", basic, form).await
}

// ---------------------------------------------------------------------------------------------
// Algorithm attacks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_token_gets_the_bare_challenge_and_a_query_token_is_ignored() {
    let app = spawn_app().await;
    let token = app.token().await;
    let response = app
        .post_vorgang_raw(
            &format!("?access_token={token}"),
            None,
            Some("application/json"),
            serde_json::to_vec(&seed()).unwrap(),
            None,
        )
        .await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"vorgang\""
    );
    problem(response, 401).await;
    assert_eq!(sandbox_imports(&app).await, Vec::<Value>::new());
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = spawn_app().await;
    let (header, claims, _) = split(&app.token().await);
    for alg in ["none", "None", "NONE"] {
        let mut forged = header.clone();
        forged["alg"] = json!(alg);
        // Empty signature, as RFC 7519 §6.1 unsecured JWTs have.
        assert_invalid_token(&app, &join(&forged, &claims, "")).await;
    }
    // Without any alg at all.
    let mut forged = header.clone();
    forged.as_object_mut().unwrap().remove("alg");
    assert_invalid_token(&app, &join(&forged, &claims, "")).await;
}

#[tokio::test]
async fn hs256_signed_with_the_servers_public_key_is_refused() {
    let app = spawn_app().await;
    let token = app.token().await;
    let (_, claims, _) = split(&token);
    let jwks = jwks(&app).await;
    let key = &jwks["keys"][0];
    let x = key["x"].as_str().unwrap();
    let public_key = B64URL.decode(x).unwrap();
    assert_eq!(public_key.len(), 32);
    // Key confusion: the public key as an HMAC secret, raw and as the JWK text.
    for secret in [public_key.as_slice(), x.as_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(key["kid"].as_str().unwrap().to_owned());
        let forged =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
        assert_invalid_token(&app, &forged).await;
    }
    assert_authorized(&app, &token).await;
}

#[tokio::test]
async fn hs256_signed_with_the_client_secret_is_refused() {
    let app = spawn_app().await;
    let token = app.token().await;
    let (header, claims, _) = split(&token);
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let mut forged_header = Header::new(alg);
        forged_header.typ = Some("at+jwt".to_owned());
        forged_header.kid = header["kid"].as_str().map(str::to_owned);
        let forged = jsonwebtoken::encode(
            &forged_header,
            &claims,
            &EncodingKey::from_secret(app.client_secret.as_bytes()),
        )
        .unwrap();
        assert_invalid_token(&app, &forged).await;
    }
}

#[tokio::test]
async fn other_algorithms_on_the_real_signature_are_refused() {
    let app = spawn_app().await;
    let token = app.token().await;
    let (header, claims, signature) = split(&token);
    for alg in ["RS256", "PS256", "ES256", "Ed25519", "eddsa"] {
        let mut forged = header.clone();
        forged["alg"] = json!(alg);
        assert_invalid_token(&app, &join(&forged, &claims, &signature)).await;
    }
    assert_authorized(&app, &token).await;
}

// ---------------------------------------------------------------------------------------------
// Tampering and foreign keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let app = spawn_app().await;
    let token = app.token().await;
    let (header, claims, signature) = split(&token);
    let tampered: [(&str, Value); 4] = [
        ("scope", json!(format!("{IMPORT_SCOPE} admin"))),
        ("exp", json!(claims["exp"].as_i64().unwrap() + 86_400)),
        ("client_id", json!("drk_someoneelse")),
        ("aud", json!(["drkleinrk-api", "other"])),
    ];
    for (claim, value) in tampered {
        let mut forged = claims.clone();
        forged[claim] = value;
        assert_invalid_token(&app, &join(&header, &forged, &signature)).await;
    }
    // The same header and claims re-encoded (e.g. with other whitespace) keep the signature
    // invalid as well: the signature covers the bytes, not the meaning.
    let reencoded = format!(
        "{}.{}.{signature}",
        token.split('.').next().unwrap(),
        B64URL.encode(serde_json::to_string_pretty(&claims).unwrap())
    );
    assert_invalid_token(&app, &reencoded).await;
    assert_authorized(&app, &token).await;
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let app = spawn_app().await;
    let token = app.token().await;
    let (header, claims, signature) = split(&token);
    let mut bytes = B64URL.decode(&signature).unwrap();
    bytes[0] ^= 0x01;
    assert_invalid_token(&app, &join(&header, &claims, &B64URL.encode(&bytes))).await;
    let mut bytes = B64URL.decode(&signature).unwrap();
    bytes[63] ^= 0x80;
    assert_invalid_token(&app, &join(&header, &claims, &B64URL.encode(&bytes))).await;
    // Truncated, empty, and not base64url at all.
    assert_invalid_token(&app, &join(&header, &claims, &signature[..40])).await;
    assert_invalid_token(&app, &join(&header, &claims, "")).await;
    assert_invalid_token(&app, &join(&header, &claims, "AAAA")).await;
    assert_authorized(&app, &token).await;
}

#[tokio::test]
async fn an_unknown_or_missing_kid_is_refused() {
    let app = spawn_app().await;
    let token = app.token().await;
    let (header, claims, signature) = split(&token);
    for kid in [json!("unknown-kid"), json!(""), json!(42), Value::Null] {
        let mut forged = header.clone();
        forged["kid"] = kid;
        assert_invalid_token(&app, &join(&forged, &claims, &signature)).await;
    }
    let mut forged = header.clone();
    forged.as_object_mut().unwrap().remove("kid");
    assert_invalid_token(&app, &join(&forged, &claims, &signature)).await;
    assert_authorized(&app, &token).await;
}

#[tokio::test]
async fn a_token_of_another_instance_is_refused() {
    // Another deployment of the same software: its own (Ed25519) key, the same issuer, audience,
    // client and scope.
    let app = spawn_app().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let other_ring = Arc::new(
        KeyRing::load_or_create(
            Arc::new(MemorySigningKeyStore::default()),
            None,
            clock.clone(),
            KeyRingConfig::default(),
        )
        .await
        .unwrap(),
    );
    let issuer = TokenIssuer::new(other_ring.clone(), clock, server_token_settings(&app));
    let foreign = issuer
        .issue(&app.client_id, &[IMPORT_SCOPE.to_owned()])
        .await
        .unwrap()
        .access_token;
    // Its own kid: unknown here.
    assert_invalid_token(&app, &foreign).await;

    // The other key claiming our kid: the signature does not verify with our key.
    let our_kid = kids(&jwks(&app).await)[0].clone();
    let (mut header, claims, signature) = split(&foreign);
    header["kid"] = json!(our_kid);
    assert_invalid_token(&app, &join(&header, &claims, &signature)).await;
    let mut header = at_jwt_header();
    header.kid = Some(our_kid);
    let resigned = jsonwebtoken::encode(
        &header,
        &valid_claims(&app),
        other_ring.signing_key().await.encoding_key(),
    )
    .unwrap();
    assert_invalid_token(&app, &resigned).await;

    // The attacker's key embedded in the header (`jwk`, `jku`, `x5u`) is never used.
    let other_jwks = other_ring.jwks();
    let (mut header, claims, signature) = split(&resigned);
    header["jwk"] = other_jwks["keys"][0].clone();
    header["jku"] = json!("https://attacker.example/jwks.json");
    header["x5u"] = json!("https://attacker.example/cert.pem");
    assert_invalid_token(&app, &join(&header, &claims, &signature)).await;
}

// ---------------------------------------------------------------------------------------------
// Claims, signed with the server's real key
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let app = spawn_app().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ring = server_ring(&app, clock.clone()).await;
    let scopes = [IMPORT_SCOPE.to_owned()];
    let trailing_slash = format!("{}/", app.address);
    for issuer in [
        "https://attacker.example",
        "http://127.0.0.1:1",
        trailing_slash.as_str(),
    ] {
        let settings = TokenSettings {
            issuer: issuer.to_owned(),
            ..server_token_settings(&app)
        };
        let token = TokenIssuer::new(ring.clone(), clock.clone(), settings)
            .issue(&app.client_id, &scopes)
            .await
            .unwrap();
        assert_invalid_token(&app, &token.access_token).await;
    }
    // Control: the same key with the right issuer is accepted.
    let token = TokenIssuer::new(ring, clock, server_token_settings(&app))
        .issue(&app.client_id, &scopes)
        .await
        .unwrap();
    assert_authorized(&app, &token.access_token).await;
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let app = spawn_app().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ring = server_ring(&app, clock.clone()).await;
    for audience in ["other-api", "drkleinrk-api-x", ""] {
        let settings = TokenSettings {
            audience: audience.to_owned(),
            ..server_token_settings(&app)
        };
        let token = TokenIssuer::new(ring.clone(), clock.clone(), settings)
            .issue(&app.client_id, &[IMPORT_SCOPE.to_owned()])
            .await
            .unwrap();
        assert_invalid_token(&app, &token.access_token).await;
    }
    // Missing `aud`.
    let mut claims = valid_claims(&app);
    claims.as_object_mut().unwrap().remove("aud");
    assert_invalid_token(&app, &signed(&ring, &claims).await).await;
    // Control.
    let token = signed(&ring, &valid_claims(&app)).await;
    assert_authorized(&app, &token).await;
}

#[tokio::test]
async fn a_wrong_or_missing_typ_is_refused() {
    let app = spawn_app().await;
    let ring = server_ring(&app, Arc::new(SystemClock)).await;
    let claims = valid_claims(&app);
    // An ID token or any other JWT of the same key must not pass as an access token.
    for typ in [Some("JWT"), Some("jwt"), Some("id_token+jwt"), None] {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = typ.map(str::to_owned);
        assert_invalid_token(&app, &sign_with_server_key(&ring, header, &claims).await).await;
    }
    // A `crit` header the server does not understand.
    let mut header = at_jwt_header();
    header.crit = Some(vec!["exp".to_owned()]);
    assert_invalid_token(&app, &sign_with_server_key(&ring, header, &claims).await).await;
    // Control: `at+jwt` and its media-type form are accepted.
    for typ in ["at+jwt", "application/at+jwt"] {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.to_owned());
        assert_authorized(&app, &sign_with_server_key(&ring, header, &claims).await).await;
    }
}

#[tokio::test]
async fn missing_claims_and_a_subject_other_than_the_client_are_refused() {
    let app = spawn_app().await;
    let ring = server_ring(&app, Arc::new(SystemClock)).await;
    for claim in ["iss", "sub", "client_id", "exp", "iat", "jti", "scope"] {
        let mut claims = valid_claims(&app);
        claims.as_object_mut().unwrap().remove(claim);
        let token = signed(&ring, &claims).await;
        assert_invalid_token(&app, &token).await;
    }
    let mut claims = valid_claims(&app);
    claims["sub"] = json!("drk_someoneelse");
    assert_invalid_token(&app, &signed(&ring, &claims).await).await;
    let mut claims = valid_claims(&app);
    claims["exp"] = json!("tomorrow");
    assert_invalid_token(&app, &signed(&ring, &claims).await).await;
}

#[tokio::test]
async fn an_expired_token_is_refused_beyond_the_leeway() {
    let app = spawn_app().await;
    let day_ago = Arc::new(ManualClock::new(Utc::now() - chrono::TimeDelta::days(1)));
    let ring = server_ring(&app, day_ago.clone()).await;
    let token = TokenIssuer::new(ring.clone(), day_ago.clone(), server_token_settings(&app))
        .issue(&app.client_id, &[IMPORT_SCOPE.to_owned()])
        .await
        .unwrap();
    assert_invalid_token(&app, &token.access_token).await;

    // Just past `exp`, beyond the 30 s leeway: refused; within the leeway: accepted.
    let now = Utc::now().timestamp();
    let mut claims = valid_claims(&app);
    claims["iat"] = json!(now - 800);
    claims["exp"] = json!(now - 40);
    assert_invalid_token(&app, &signed(&ring, &claims).await).await;
    claims["exp"] = json!(now - 10);
    assert_authorized(&app, &signed(&ring, &claims).await).await;
}

#[tokio::test]
async fn a_token_living_longer_than_the_ttl_is_refused_even_with_the_real_key() {
    // Regression: a token signed with the key read from the database, with a one-year `exp`,
    // was accepted. Our issuer makes `exp - iat` exactly `token_ttl_s` (900 s).
    let app = spawn_app().await;
    let ring = server_ring(&app, Arc::new(SystemClock)).await;
    let now = Utc::now().timestamp();
    let mut claims = valid_claims(&app);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 365 * 86_400);
    assert_invalid_token(&app, &signed(&ring, &claims).await).await;
    claims["exp"] = json!(now + 901);
    assert_invalid_token(&app, &signed(&ring, &claims).await).await;
    // An `iat` far back does not hide the lifetime behind a near `exp`.
    claims["iat"] = json!(now - 86_400);
    claims["exp"] = json!(now + 60);
    assert_invalid_token(&app, &signed(&ring, &claims).await).await;
    // Control: exactly the TTL, as the server issues, is accepted and imports.
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 900);
    let token = signed(&ring, &claims).await;
    assert_authorized(&app, &token).await;
    assert_imported(&app, &token).await;
}

#[tokio::test]
async fn a_token_from_the_future_is_refused_beyond_the_leeway() {
    let app = spawn_app().await;
    let in_an_hour = Arc::new(ManualClock::new(Utc::now() + chrono::TimeDelta::hours(1)));
    let ring = server_ring(&app, in_an_hour.clone()).await;
    // Issued by a clock an hour ahead: `iat` in the future.
    let token = TokenIssuer::new(ring.clone(), in_an_hour, server_token_settings(&app))
        .issue(&app.client_id, &[IMPORT_SCOPE.to_owned()])
        .await
        .unwrap();
    assert_invalid_token(&app, &token.access_token).await;

    let now = Utc::now().timestamp();
    // `nbf` beyond the leeway.
    let mut claims = valid_claims(&app);
    claims["nbf"] = json!(now + 120);
    assert_invalid_token(&app, &signed(&ring, &claims).await).await;
    // `iat` and `nbf` within the leeway: clock skew is tolerated.
    let mut claims = valid_claims(&app);
    claims["iat"] = json!(now + 10);
    claims["nbf"] = json!(now + 10);
    assert_authorized(&app, &signed(&ring, &claims).await).await;
}

// ---------------------------------------------------------------------------------------------
// Clients: revocation and scope
// ---------------------------------------------------------------------------------------------

async fn a_revoked_clients_token_is_refused_at_once(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    assert_authorized(&app, &token).await;

    // `clients revoke` from another process: the same service on the same database.
    let auth = app.auth_service().await;
    assert!(auth.revoke_client(&app.client_id).await.unwrap());

    // The very next request: no cache to wait out.
    assert_invalid_token(&app, &token).await;
    // Not even a freshly signed token with the real key helps.
    let ring = server_ring(&app, Arc::new(SystemClock)).await;
    let fresh = signed(&ring, &valid_claims(&app)).await;
    assert_invalid_token(&app, &fresh).await;
    // And no new token: invalid_client, as for a wrong secret.
    let response = app
        .token_response(&[("grant_type", "client_credentials")])
        .await;
    let headers = assert_oauth_error(response, 401, "invalid_client").await;
    assert!(headers.contains_key("www-authenticate"));
}

#[tokio::test]
async fn a_revoked_clients_token_is_refused_at_once_sqlite() {
    a_revoked_clients_token_is_refused_at_once(Db::Sqlite).await;
}

#[tokio::test]
async fn a_revoked_clients_token_is_refused_at_once_postgres() {
    a_revoked_clients_token_is_refused_at_once(Db::Postgres).await;
}

#[tokio::test]
async fn a_token_of_an_unknown_client_is_refused() {
    // A correctly signed token for a client id that is not (or no longer) registered.
    let app = spawn_app().await;
    let ring = server_ring(&app, Arc::new(SystemClock)).await;
    let mut claims = valid_claims(&app);
    claims["sub"] = json!("drk_00000000000000000000000000000000");
    claims["client_id"] = claims["sub"].clone();
    assert_invalid_token(&app, &signed(&ring, &claims).await).await;
}

#[tokio::test]
async fn a_token_with_only_another_scope_is_403_insufficient_scope() {
    let app = spawn_app().await;
    let ring = server_ring(&app, Arc::new(SystemClock)).await;
    let expected = "Bearer realm=\"vorgang\", error=\"insufficient_scope\", scope=\"drkleinrk-api/vorgang:import\"";
    for scope in [
        "drkleinrk-api/vorgang:read",
        "",
        "drkleinrk-api/vorgang:import:x",
        "drkleinrk-api/vorgang:IMPORT",
    ] {
        let mut claims = valid_claims(&app);
        claims["scope"] = json!(scope);
        let token = signed(&ring, &claims).await;
        assert_refused(&app, &token, 403, expected).await;
    }
    // The scope among others is enough.
    let mut claims = valid_claims(&app);
    claims["scope"] = json!(format!("openid {IMPORT_SCOPE}"));
    assert_authorized(&app, &signed(&ring, &claims).await).await;
}

// ---------------------------------------------------------------------------------------------
// Key rotation
// ---------------------------------------------------------------------------------------------

async fn key_rotation_keeps_old_tokens_valid_and_accepts_new_ones(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let before = app.token().await;
    let (old_header, _, _) = split(&before);
    let old_kid = old_header["kid"].as_str().unwrap().to_owned();
    assert_eq!(kids(&jwks(&app).await), vec![old_kid.clone()]);

    // `keys rotate` from another process on the same database.
    let auth = app.auth_service().await;
    let new_kid = auth.rotate_keys().await.unwrap();
    assert_ne!(new_kid, old_kid);

    // A token signed before the rotation keeps working.
    assert_authorized(&app, &before).await;

    // A token signed with the new key (as a replica that already switched signs it): the server
    // does not know the kid yet, reloads the keys from the database, and accepts it.
    let after = auth
        .issuer
        .issue(&app.client_id, &[IMPORT_SCOPE.to_owned()])
        .await
        .unwrap()
        .access_token;
    let (new_header, _, _) = split(&after);
    assert_eq!(new_header["kid"], new_kid);
    assert_authorized(&app, &after).await;
    assert_authorized(&app, &before).await;

    // The JWKS lists both keys, the new signing key first.
    assert_eq!(kids(&jwks(&app).await), vec![new_kid, old_kid]);

    // Both really import.
    assert_imported(&app, &after).await;
    assert_imported(&app, &before).await;
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_and_accepts_new_ones_sqlite() {
    key_rotation_keeps_old_tokens_valid_and_accepts_new_ones(Db::Sqlite).await;
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_and_accepts_new_ones_postgres() {
    key_rotation_keeps_old_tokens_valid_and_accepts_new_ones(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// The token endpoint
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_secret_post_works_with_no_store() {
    let app = spawn_app().await;
    let response = token_request(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], IMPORT_SCOPE);
    assert_imported(&app, body["access_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn both_authentication_methods_at_once_are_invalid_request() {
    let app = spawn_app().await;
    let response = token_request(
        &app,
        Some((&app.client_id, &app.client_secret)),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ],
    )
    .await;
    assert_oauth_error(response, 400, "invalid_request").await;
    // A repeated parameter, too.
    let response = token_request(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", "wrong"),
            ("client_secret", &app.client_secret),
        ],
    )
    .await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn five_wrong_secrets_then_slow_down() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let response = token_request(
            &app,
            Some((&app.client_id, "wrong-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
        let headers = assert_oauth_error(response, 401, "invalid_client").await;
        assert!(headers.contains_key("www-authenticate"));
    }
    // Refused before any check, even with the right secret, and by either method.
    let response = token_request(
        &app,
        Some((&app.client_id, &app.client_secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let headers = assert_oauth_error(response, 429, "slow_down").await;
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let response = token_request(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ],
    )
    .await;
    assert_oauth_error(response, 429, "slow_down").await;
}

#[tokio::test]
async fn guessing_client_ids_from_one_address_is_slowed_down_too() {
    let app = spawn_app().await;
    for n in 0..5 {
        let id = format!("drk_guess{n}");
        let response = token_request(
            &app,
            Some((&id, "secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    let response = token_request(
        &app,
        Some(("drk_guess5", "secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let headers = assert_oauth_error(response, 429, "slow_down").await;
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn an_unknown_client_is_invalid_client_with_a_challenge() {
    let app = spawn_app().await;
    let response = token_request(
        &app,
        Some(("drk_unknown", "whatever-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let headers = assert_oauth_error(response, 401, "invalid_client").await;
    assert_eq!(headers["www-authenticate"], "Basic realm=\"vorgang\"");
    // No credentials at all: the same.
    let response = token_request(&app, None, &[("grant_type", "client_credentials")]).await;
    let headers = assert_oauth_error(response, 401, "invalid_client").await;
    assert_eq!(headers["www-authenticate"], "Basic realm=\"vorgang\"");
    // The known client with a wrong secret answers exactly alike (no client enumeration).
    let response = token_request(
        &app,
        Some((&app.client_id, "whatever-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let known: Value = response.json().await.unwrap();
    let response = token_request(
        &app,
        Some(("drk_unknown2", "whatever-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let unknown: Value = response.json().await.unwrap();
    assert_eq!(known, unknown);
}

#[tokio::test]
async fn a_rotated_secret_stops_working_and_earlier_tokens_stay_valid() {
    let app = spawn_app().await;
    let before = app.token().await;

    let auth = app.auth_service().await;
    let rotated = auth.rotate_client(&app.client_id).await.unwrap().unwrap();
    let new_secret = rotated.client_secret.expose_secret().to_owned();
    assert_ne!(new_secret, app.client_secret);

    let response = app
        .token_response(&[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error(response, 401, "invalid_client").await;

    let response = token_request(
        &app,
        Some((&app.client_id, &new_secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_authorized(&app, body["access_token"].as_str().unwrap()).await;

    // The token issued with the old secret stays valid until it expires.
    assert_imported(&app, &before).await;
}

#[tokio::test]
async fn malformed_and_oversized_tokens_are_refused() {
    let app = spawn_app().await;
    let token = app.token().await;
    let huge = format!("{token}{}", "A".repeat(9_000));
    let doubled_dot = token.replacen('.', "..", 1);
    for bad in [
        "x",
        "a.b",
        "a.b.c.d",
        "....",
        "%%%.%%%.%%%",
        huge.as_str(),
        doubled_dot.as_str(),
    ] {
        let response = app
            .http
            .post(format!("{}/vorgang", app.address))
            .header("Authorization", format!("Bearer {bad}"))
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&seed()).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bad:.20}");
        assert_eq!(response.headers()["www-authenticate"], INVALID_TOKEN);
    }
    // Another scheme is no bearer token at all.
    let response = app
        .http
        .post(format!("{}/vorgang", app.address))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&seed()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"vorgang\""
    );
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sandbox_imports(&app).await, Vec::<Value>::new());
}
