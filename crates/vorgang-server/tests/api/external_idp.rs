//! The real server with an external identity provider (`auth.mode` `jwks` and `introspection`), played by wiremock.

use auth::IMPORT_SCOPE;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use vorgang_server::settings::AuthMode;
use wiremock::matchers::{basic_auth, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Db, TestApp, seed, spawn_app_with};

const IDP_ISSUER: &str = "https://idp.example";
const IDP_KID: &str = "idp-key-1";
const INVALID_TOKEN: &str = "Bearer realm=\"vorgang\", error=\"invalid_token\"";

async fn assert_refused(app: &TestApp, token: &str, status: u16, challenge: &str) {
    let before = app.sandbox_imports().await.len();
    let response = app.post_vorgang(token, &seed()).await;
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["www-authenticate"], challenge);
    assert_eq!(
        app.sandbox_imports().await.len(),
        before,
        "nothing reached the sandbox"
    );
}

/// The IdP: an Ed25519 key pair of its own.
struct Idp {
    encoding_key: EncodingKey,
    jwks: Value,
}

impl Idp {
    fn new() -> Self {
        let pkcs8 = Ed25519KeyPair::generate().unwrap().to_pkcs8().unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = B64URL.encode(pair.public_key().as_ref());
        Self {
            encoding_key: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwks: json!({"keys": [{
                "kty": "OKP", "crv": "Ed25519", "x": x, "kid": IDP_KID, "alg": "EdDSA", "use": "sig"
            }]}),
        }
    }

    /// Claims as the IdP issues them for a client-credentials token, valid now.
    fn claims(&self) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": IDP_ISSUER,
            "aud": "drkleinrk-api",
            "sub": "service-account-partner-1",
            "client_id": "partner-1",
            "scope": format!("profile {IMPORT_SCOPE}"),
            "iat": now,
            "exp": now + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    fn sign(&self, typ: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = typ.map(str::to_owned);
        header.kid = Some(IDP_KID.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding_key).unwrap()
    }
}

async fn jwks_app(idp: &Idp, expected_fetches: u64) -> (TestApp, MockServer) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/realms/partners/protocol/openid-connect/certs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&idp.jwks))
        .expect(expected_fetches)
        .mount(&server)
        .await;
    let jwks_url = format!(
        "{}/realms/partners/protocol/openid-connect/certs",
        server.uri()
    );
    let app = spawn_app_with(Db::Sqlite, |settings| {
        settings.auth.mode = AuthMode::Jwks;
        settings.auth.jwks_url = Some(url::Url::parse(&jwks_url).unwrap());
        settings.auth.issuer = Some(IDP_ISSUER.to_owned());
    })
    .await;
    (app, server)
}

#[tokio::test]
async fn jwks_mode_accepts_the_idps_tokens_and_fetches_its_jwks_once() {
    let idp = Idp::new();
    let (app, server) = jwks_app(&idp, 1).await;

    for _ in 0..2 {
        let token = idp.sign(Some("at+jwt"), &idp.claims());
        let response = app.post_vorgang(&token, &seed()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert!(body["drkleinrkVorgangsnummer"].is_string());
    }
    assert_eq!(app.sandbox_imports().await.len(), 2);

    // The same key, but what the IdP says must be right too (no further JWKS fetch: the kid is
    // known).
    let mut claims = idp.claims();
    claims["iss"] = json!("https://other-idp.example");
    assert_refused(&app, &idp.sign(Some("at+jwt"), &claims), 401, INVALID_TOKEN).await;
    let mut claims = idp.claims();
    claims["aud"] = json!("account");
    assert_refused(&app, &idp.sign(Some("at+jwt"), &claims), 401, INVALID_TOKEN).await;
    let mut claims = idp.claims();
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 3_600);
    assert_refused(&app, &idp.sign(Some("at+jwt"), &claims), 401, INVALID_TOKEN).await;
    // `typ` must be `at+jwt` (ExternalSettings::accept_plain_jwt is off).
    assert_refused(
        &app,
        &idp.sign(Some("JWT"), &idp.claims()),
        401,
        INVALID_TOKEN,
    )
    .await;
    let mut claims = idp.claims();
    claims["scope"] = json!("profile email");
    assert_refused(
        &app,
        &idp.sign(Some("at+jwt"), &claims),
        403,
        "Bearer realm=\"vorgang\", error=\"insufficient_scope\", scope=\"drkleinrk-api/vorgang:import\"",
    )
    .await;

    server.verify().await;
}

#[tokio::test]
async fn jwks_mode_refuses_tokens_of_our_own_builtin_endpoint() {
    let idp = Idp::new();
    let (app, server) = jwks_app(&idp, 1).await;
    // The builtin token endpoint still answers, but its tokens are not the IdP's.
    let token = app.token().await;
    assert_refused(&app, &token, 401, INVALID_TOKEN).await;
    // A token of another key claiming the IdP's kid.
    let impostor = Idp::new();
    assert_refused(
        &app,
        &impostor.sign(Some("at+jwt"), &impostor.claims()),
        401,
        INVALID_TOKEN,
    )
    .await;
    server.verify().await;
}

async fn introspection_app() -> (TestApp, MockServer) {
    let server = MockServer::start().await;
    let url = format!(
        "{}/realms/partners/protocol/openid-connect/token/introspect",
        server.uri()
    );
    let app = spawn_app_with(Db::Sqlite, |settings| {
        settings.auth.mode = AuthMode::Introspection;
        settings.auth.introspection_url = Some(url::Url::parse(&url).unwrap());
        settings.auth.client_id = Some("vorgang-api".into());
        settings.auth.client_secret = Some(SecretString::from("introspection-secret"));
        settings.auth.issuer = Some(IDP_ISSUER.to_owned());
    })
    .await;
    (app, server)
}

/// A mock of the introspection endpoint answering `answer` for the opaque token `token`,
/// expecting to be asked `times` times, authenticated as our resource server.
async fn introspects(server: &MockServer, token: &str, answer: Value, times: u64) {
    Mock::given(method("POST"))
        .and(path(
            "/realms/partners/protocol/openid-connect/token/introspect",
        ))
        .and(basic_auth("vorgang-api", "introspection-secret"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains(format!("token={token}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn introspection_mode_accepts_active_tokens_and_refuses_inactive_ones() {
    let (app, server) = introspection_app().await;
    let exp = chrono::Utc::now().timestamp() + 300;
    introspects(
        &server,
        "active-opaque-token",
        json!({"active": true, "client_id": "partner-1", "scope": IMPORT_SCOPE, "exp": exp,
               "iss": IDP_ISSUER, "token_type": "Bearer"}),
        2,
    )
    .await;
    introspects(&server, "revoked-opaque-token", json!({"active": false}), 1).await;
    introspects(
        &server,
        "other-scope-token",
        json!({"active": true, "client_id": "partner-1", "scope": "profile", "exp": exp}),
        1,
    )
    .await;
    introspects(
        &server,
        "foreign-issuer-token",
        json!({"active": true, "client_id": "partner-1", "scope": IMPORT_SCOPE, "exp": exp,
               "iss": "https://other-idp.example"}),
        1,
    )
    .await;

    let response = app.post_vorgang("active-opaque-token", &seed()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(app.sandbox_imports().await.len(), 1);
    assert_refused(&app, "revoked-opaque-token", 401, INVALID_TOKEN).await;
    assert_refused(
        &app,
        "other-scope-token",
        403,
        "Bearer realm=\"vorgang\", error=\"insufficient_scope\", scope=\"drkleinrk-api/vorgang:import\"",
    )
    .await;
    assert_refused(&app, "foreign-issuer-token", 401, INVALID_TOKEN).await;
    // No cache: every request asks again (a revocation at the IdP applies at once).
    let response = app.post_vorgang("active-opaque-token", &seed()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    server.verify().await;
}

#[tokio::test]
async fn introspection_mode_unreachable_idp_is_503_not_401() {
    let (app, server) = introspection_app().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let response = app.post_vorgang("some-opaque-token", &seed()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("www-authenticate").is_none());
    assert_eq!(app.sandbox_imports().await.len(), 0);
}
