//! Our authorization server beyond the token endpoint (docs/reference/http-api.md, issue 12 point 5): token
//! introspection (RFC 7662), token revocation (RFC 7009), the metadata document (RFC 8414),
//! `clients add --scope` and revocation that applies to the next request on every replica
//! without a database read per request (issue 10). Real server over HTTP, real databases.

use std::sync::Arc;

use auth::memory::MemorySigningKeyStore;
use auth::{Clock, IMPORT_SCOPE, INTROSPECT_SCOPE, KeyRing, KeyRingConfig, SystemClock};
use chrono::Utc;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use crate::helpers::{
    Db, TestApp, assert_oauth_error, both_backends, claims_for, spawn_app, spawn_app_with,
};

const INVALID_TOKEN: &str = "Bearer realm=\"vorgang\", error=\"invalid_token\"";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A client holding the introspection scope; id and secret.
async fn introspector(app: &TestApp) -> (String, String) {
    app.register_client(&[INTROSPECT_SCOPE]).await
}

/// `POST /oauth2/introspect` as `caller`; asserts 200 with `Cache-Control: no-store` and returns
/// the body.
async fn introspect(app: &TestApp, caller: &(String, String), token: &str) -> Value {
    let response = app
        .oauth_form(
            "/oauth2/introspect",
            Some((&caller.0, &caller.1)),
            &[("token", token)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    response.json().await.unwrap()
}

/// `POST /oauth2/revoke` with the owner's credentials; asserts 200, no-store, empty body.
async fn revoke(app: &TestApp, owner: (&str, &str), token: &str) {
    let response = app
        .oauth_form("/oauth2/revoke", Some(owner), &[("token", token)])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.bytes().await.unwrap().is_empty());
}

/// `GET /vorgang/{unknown}` with `token` at `address`: the status of the bearer check (404 when
/// the token is accepted, 401 when refused) and its `WWW-Authenticate`.
async fn bearer_check(app: &TestApp, address: &str, token: &str) -> (u16, Option<String>) {
    let response = app
        .http
        .get(format!("{address}/vorgang/{}", uuid::Uuid::new_v4()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned()),
    )
}

fn accepted() -> (u16, Option<String>) {
    (404, None)
}

fn refused() -> (u16, Option<String>) {
    (401, Some(INVALID_TOKEN.to_owned()))
}

/// Signs `claims` as an `at+jwt` with `ring`'s current key.
async fn signed(ring: &KeyRing, claims: &Value) -> String {
    let key = ring.signing_key().await;
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding_key()).unwrap()
}

/// The server's own key ring (same database and key-encryption key).
async fn server_ring(app: &TestApp) -> Arc<KeyRing> {
    let kek = app
        .settings
        .key_encryption_key
        .as_ref()
        .and_then(vorgang_server::settings::decode_kek);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Arc::new(
        KeyRing::load_or_create(
            app.store().await.as_signing_key_store(),
            kek,
            clock,
            KeyRingConfig::default(),
        )
        .await
        .unwrap(),
    )
}

/// A second server on the app's database with the app's issuer (a replica behind the same
/// name); its base URL.
async fn replica(app: &TestApp) -> String {
    let mut settings = app.settings.clone();
    settings.issuer = Some(app.address.clone());
    let application = vorgang_server::startup::Application::build(settings)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    address
}

// ---------------------------------------------------------------------------------------------
// Metadata (RFC 8414)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn metadata_names_our_endpoints_and_what_they_support() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let metadata: Value = response.json().await.unwrap();
    let base = &app.address;
    assert_eq!(
        metadata,
        json!({
            "issuer": base,
            "token_endpoint": format!("{base}/oauth2/token"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "introspection_endpoint": format!("{base}/oauth2/introspect"),
            "revocation_endpoint": format!("{base}/oauth2/revoke"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": [IMPORT_SCOPE, INTROSPECT_SCOPE],
        })
    );
    // The issuer is the `iss` of our tokens, and each endpoint it names answers.
    let caller = introspector(&app).await;
    let token = app.token().await;
    let introspected = introspect(&app, &caller, &token).await;
    assert_eq!(introspected["iss"], metadata["issuer"]);
    let jwks = app
        .http
        .get(metadata["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Introspection (RFC 7662)
// ---------------------------------------------------------------------------------------------

async fn an_active_token_introspects_with_its_claims(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let caller = introspector(&app).await;
    let token = app.token().await;

    let body = introspect(&app, &caller, &token).await;
    let iat = body["iat"].as_i64().unwrap();
    let jti = body["jti"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(jti).is_ok(), "{body}");
    assert!((iat - Utc::now().timestamp()).abs() < 60, "{body}");
    assert_eq!(
        body,
        json!({
            "active": true,
            "scope": IMPORT_SCOPE,
            "client_id": app.client_id,
            "sub": app.client_id,
            "aud": "drkleinrk-api",
            "iss": app.address,
            "exp": iat + 900,
            "iat": iat,
            "jti": jti,
            "token_type": "Bearer",
        })
    );

    // client_secret_post works as at the token endpoint.
    let response = app
        .oauth_form(
            "/oauth2/introspect",
            None,
            &[
                ("token", &token),
                ("token_type_hint", "access_token"),
                ("client_id", &caller.0),
                ("client_secret", &caller.1),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again, body);
}

async fn anything_not_currently_valid_introspects_inactive(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let caller = introspector(&app).await;
    let inactive = json!({"active": false});
    let ring = server_ring(&app).await;
    let now = Utc::now().timestamp();

    // The control: a token made the same way and valid now is active.
    let valid = signed(&ring, &claims_for(&app, now, now + 300)).await;
    assert_eq!(introspect(&app, &caller, &valid).await["active"], true);

    // Garbage of every shape.
    for garbage in ["x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", &"A".repeat(3000)] {
        assert_eq!(
            introspect(&app, &caller, garbage).await,
            inactive,
            "{garbage:.20}"
        );
    }
    // Expired (beyond the 30 s leeway).
    let expired = signed(&ring, &claims_for(&app, now - 900, now - 60)).await;
    assert_eq!(introspect(&app, &caller, &expired).await, inactive);
    // Signed by a key that is not ours.
    let foreign = KeyRing::load_or_create(
        Arc::new(MemorySigningKeyStore::default()),
        None,
        Arc::new(SystemClock),
        KeyRingConfig::default(),
    )
    .await
    .unwrap();
    let forged = signed(&foreign, &claims_for(&app, now, now + 300)).await;
    assert_eq!(introspect(&app, &caller, &forged).await, inactive);
    // Another audience.
    let mut claims = claims_for(&app, now, now + 300);
    claims["aud"] = json!("another-api");
    assert_eq!(
        introspect(&app, &caller, &signed(&ring, &claims).await).await,
        inactive
    );

    // A revoked token, and every token of a revoked client.
    let token = app.token().await;
    let other = app.token().await;
    revoke(&app, (&app.client_id, &app.client_secret), &token).await;
    assert_eq!(introspect(&app, &caller, &token).await, inactive);
    assert_eq!(introspect(&app, &caller, &other).await["active"], true);
    let (_, stdout, _) = app.run_cli(&["clients", "revoke", &app.client_id]).await;
    assert!(stdout.contains("\"revoked\":true"), "{stdout}");
    assert_eq!(introspect(&app, &caller, &other).await, inactive);
    assert_eq!(introspect(&app, &caller, &valid).await, inactive);
}

#[tokio::test]
async fn introspection_needs_an_authenticated_client_with_its_scope() {
    let app = spawn_app().await;
    let token = app.token().await;

    // No client authentication at all.
    let response = app
        .oauth_form("/oauth2/introspect", None, &[("token", &token)])
        .await;
    let headers = assert_oauth_error(response, 401, "invalid_client").await;
    assert_eq!(headers["www-authenticate"], "Basic realm=\"vorgang\"");
    // A wrong secret.
    let (id, _) = introspector(&app).await;
    let response = app
        .oauth_form(
            "/oauth2/introspect",
            Some((&id, "wrong")),
            &[("token", &token)],
        )
        .await;
    assert_oauth_error(response, 401, "invalid_client").await;
    // A client without the scope (the partner itself): 403, its own token told nothing.
    let response = app
        .oauth_form(
            "/oauth2/introspect",
            Some((&app.client_id, &app.client_secret)),
            &[("token", &token)],
        )
        .await;
    let response_text = {
        assert_eq!(response.status(), 403);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.text().await.unwrap()
    };
    let body: Value = serde_json::from_str(&response_text).unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    assert!(!response_text.contains(&app.client_id));
    // A revoked introspector.
    let caller = introspector(&app).await;
    app.run_cli(&["clients", "revoke", &caller.0]).await;
    let response = app
        .oauth_form(
            "/oauth2/introspect",
            Some((&caller.0, &caller.1)),
            &[("token", &token)],
        )
        .await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn introspection_and_revocation_refuse_bad_requests_like_the_token_endpoint() {
    let app = spawn_app().await;
    let caller = introspector(&app).await;
    let token = app.token().await;
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        let basic = Some((caller.0.as_str(), caller.1.as_str()));
        // No token.
        let response = app.oauth_form(path, basic, &[]).await;
        assert_oauth_error(response, 400, "invalid_request").await;
        // A repeated token.
        let response = app
            .oauth_form(path, basic, &[("token", "a"), ("token", "b")])
            .await;
        assert_oauth_error(response, 400, "invalid_request").await;
        // Not a form.
        let response = app
            .http
            .post(format!("{}{path}", app.address))
            .basic_auth(&caller.0, Some(&caller.1))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 400, "invalid_request").await;
        // Over 4 KiB: 413, as JSON.
        let response = app
            .http
            .post(format!("{}{path}", app.address))
            .basic_auth(&caller.0, Some(&caller.1))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={}", "a".repeat(5000)))
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 413, "invalid_request").await;
        // Two Authorization headers.
        let response = app
            .http
            .post(format!("{}{path}", app.address))
            .header("Authorization", "Basic YTpi")
            .header("Authorization", "Basic YzpkCg==")
            .form(&[("token", &token)])
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 400, "invalid_request").await;
        // Basic and client_secret in the form at once.
        let response = app
            .oauth_form(
                path,
                basic,
                &[("token", &token), ("client_secret", &caller.1)],
            )
            .await;
        assert_oauth_error(response, 400, "invalid_request").await;
    }
    // Nothing of it revoked anything.
    assert_eq!(introspect(&app, &caller, &token).await["active"], true);
}

#[tokio::test]
async fn failed_authentications_are_throttled_across_the_three_endpoints() {
    let app = spawn_app().await;
    let (id, secret) = introspector(&app).await;
    // Five failures for this client id, spread over the endpoints that authenticate clients.
    for path in [
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/oauth2/token",
        "/oauth2/introspect",
        "/oauth2/revoke",
    ] {
        let response = app
            .oauth_form(
                path,
                Some((&id, "wrong")),
                &[("token", "x"), ("grant_type", "client_credentials")],
            )
            .await;
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    // Now even the right secret waits.
    let response = app
        .oauth_form(
            "/oauth2/introspect",
            Some((&id, &secret)),
            &[("token", "x")],
        )
        .await;
    let headers = assert_oauth_error(response, 429, "slow_down").await;
    assert!(headers.contains_key("retry-after"));
}

// ---------------------------------------------------------------------------------------------
// Revocation (RFC 7009)
// ---------------------------------------------------------------------------------------------

async fn a_revoked_token_is_refused_at_once_on_every_replica(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let replica = replica(&app).await;
    let token = app.token().await;
    let sibling = app.token().await;
    assert_eq!(bearer_check(&app, &app.address, &token).await, accepted());
    assert_eq!(bearer_check(&app, &replica, &token).await, accepted());

    revoke(&app, (&app.client_id, &app.client_secret), &token).await;

    // The very next request, here and on the other replica.
    assert_eq!(bearer_check(&app, &replica, &token).await, refused());
    assert_eq!(bearer_check(&app, &app.address, &token).await, refused());
    let response = app.post_vorgang(&token, &crate::helpers::seed()).await;
    assert_eq!(response.status(), 401);
    // Only that token: the client's other tokens keep working.
    assert_eq!(bearer_check(&app, &replica, &sibling).await, accepted());
    // Revoking it again is fine.
    revoke(&app, (&app.client_id, &app.client_secret), &token).await;

    // Stored with its exp, to be purged after it.
    let store = app.store().await;
    let revocations = store.as_client_store().revocations(0).await.unwrap();
    assert_eq!(revocations.tokens.len(), 1);
    assert!(revocations.clients.is_empty());
    store.close().await;
}

async fn revocation_answers_200_whatever_the_token_and_revokes_only_own_tokens(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let (other_id, other_secret) = app.register_client(&[]).await;
    let others_token = app.token_for(&other_id, &other_secret).await;

    // Another client's token: 200, nothing happens.
    revoke(&app, (&app.client_id, &app.client_secret), &others_token).await;
    assert_eq!(
        bearer_check(&app, &app.address, &others_token).await,
        accepted()
    );
    // Garbage and expired tokens: 200, nothing stored.
    let ring = server_ring(&app).await;
    let now = Utc::now().timestamp();
    let expired = signed(&ring, &claims_for(&app, now - 900, now - 60)).await;
    for token in ["garbage", "a.b.c", expired.as_str()] {
        revoke(&app, (&app.client_id, &app.client_secret), token).await;
    }
    let store = app.store().await;
    assert!(
        store
            .as_client_store()
            .revocations(0)
            .await
            .unwrap()
            .tokens
            .is_empty()
    );
    store.close().await;
    // The owner may, with client_secret_post too.
    let response = app
        .oauth_form(
            "/oauth2/revoke",
            None,
            &[
                ("token", &others_token),
                ("token_type_hint", "access_token"),
                ("client_id", &other_id),
                ("client_secret", &other_secret),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        bearer_check(&app, &app.address, &others_token).await,
        refused()
    );
    // Without client authentication: 401.
    let response = app
        .oauth_form("/oauth2/revoke", None, &[("token", "x")])
        .await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

// ---------------------------------------------------------------------------------------------
// Client revocation from another process, on every replica
// ---------------------------------------------------------------------------------------------

async fn clients_revoke_from_the_cli_applies_to_the_next_request_on_every_replica(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let replica = replica(&app).await;
    let token = app.token().await;
    // Both replicas have seen the client: its state is in their caches.
    assert_eq!(bearer_check(&app, &app.address, &token).await, accepted());
    assert_eq!(bearer_check(&app, &replica, &token).await, accepted());

    let (code, _, stderr) = app.run_cli(&["clients", "revoke", &app.client_id]).await;
    assert_eq!(code, 0, "{stderr}");

    assert_eq!(bearer_check(&app, &replica, &token).await, refused());
    assert_eq!(bearer_check(&app, &app.address, &token).await, refused());
}

both_backends!(
    an_active_token_introspects_with_its_claims,
    anything_not_currently_valid_introspects_inactive,
    a_revoked_token_is_refused_at_once_on_every_replica,
    revocation_answers_200_whatever_the_token_and_revokes_only_own_tokens,
    clients_revoke_from_the_cli_applies_to_the_next_request_on_every_replica,
);

// ---------------------------------------------------------------------------------------------
// clients add --scope
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn clients_add_grants_the_scopes_given_and_refuses_malformed_ones() {
    let app = spawn_app().await;
    let add = |scopes: &[&'static str]| {
        let mut args = vec![
            "clients",
            "add",
            "--name",
            "Max Muster",
            "--email",
            "max@dienst.example",
            "--telefonnummer",
            "+49 30 1234567",
            "--organisation",
            "Dr. Klein Dienst",
        ];
        for scope in scopes {
            args.extend(["--scope", scope]);
        }
        args
    };
    let (code, stdout, stderr) = app
        .run_cli(&add(&[
            "drkleinrk-api/token:introspect",
            "drkleinrk-api/vorgang:import",
        ]))
        .await;
    assert_eq!(code, 0, "{stderr}");
    let created: Value = serde_json::from_str(stdout.trim()).unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();

    // The client gets both scopes and may introspect.
    let response = app
        .oauth_form(
            "/oauth2/token",
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let token: Value = response.json().await.unwrap();
    assert_eq!(
        token["scope"],
        "drkleinrk-api/token:introspect drkleinrk-api/vorgang:import"
    );
    let partner_token = app.token().await;
    assert_eq!(
        introspect(&app, &(id.clone(), secret), &partner_token).await["active"],
        true
    );
    // Listed with its scopes.
    let listed = app.cli(&["clients", "list"]).await;
    let line = listed.iter().find(|c| c["client_id"] == id).unwrap();
    assert_eq!(
        line["scopes"],
        json!([
            "drkleinrk-api/token:introspect",
            "drkleinrk-api/vorgang:import"
        ])
    );

    // Without --scope: the import scope only.
    let (code, stdout, _) = app.run_cli(&add(&[])).await;
    assert_eq!(code, 0);
    let created: Value = serde_json::from_str(stdout.trim()).unwrap();
    let listed = app.cli(&["clients", "list"]).await;
    let line = listed
        .iter()
        .find(|c| c["client_id"] == created["client_id"])
        .unwrap();
    assert_eq!(line["scopes"], json!([IMPORT_SCOPE]));

    // A malformed scope: exit 1, a message naming the option, nothing registered.
    let before = app.cli(&["clients", "list"]).await.len();
    for bad in ["bad\"scope", "back\\slash", "ümlaut"] {
        let (code, stdout, stderr) = app.run_cli(&add(&[bad])).await;
        assert_eq!(code, 1, "{bad:?}: {stdout}");
        assert!(stdout.is_empty(), "{bad:?}");
        assert!(stderr.contains("scope"), "{bad:?}: {stderr}");
    }
    assert_eq!(app.cli(&["clients", "list"]).await.len(), before);
}

#[tokio::test]
async fn clients_add_refuses_bad_contact_data_with_a_clear_message() {
    let app = spawn_app().await;
    let before = app.cli(&["clients", "list"]).await.len();
    let good = [
        ("--name", "Max Muster"),
        ("--email", "max@dienst.example"),
        ("--telefonnummer", "+49 30 1234567"),
        ("--organisation", "Dr. Klein Dienst"),
    ];
    for (option, bad, message) in [
        (
            "--email",
            "not-an-email",
            "invalid --email: not an e-mail address",
        ),
        ("--email", "zqx@", "invalid --email"),
        (
            "--telefonnummer",
            "zqx-phone",
            "invalid --telefonnummer: not a phone number",
        ),
        ("--telefonnummer", "12", "invalid --telefonnummer"),
        ("--name", "   ", "invalid --name"),
        ("--organisation", "", "invalid --organisation"),
    ] {
        let mut args = vec!["clients", "add"];
        for (name, value) in good {
            args.extend([name, if name == option { bad } else { value }]);
        }
        let (code, stdout, stderr) = app.run_cli(&args).await;
        assert_eq!(code, 1, "{option} {bad:?}: {stdout}");
        assert!(stdout.is_empty(), "{option} {bad:?}");
        assert!(stderr.contains(message), "{option} {bad:?}: {stderr}");
        if bad.len() > 3 {
            assert!(!stderr.contains(bad), "the value is not echoed: {stderr}");
        }
    }
    assert_eq!(app.cli(&["clients", "list"]).await.len(), before);
}

#[tokio::test]
async fn a_form_client_id_other_than_the_basic_one_is_refused_alike_everywhere() {
    let app = spawn_app().await;
    let (id, secret) = introspector(&app).await;
    for (path, extra) in [
        ("/oauth2/token", ("grant_type", "client_credentials")),
        ("/oauth2/introspect", ("token", "x")),
        ("/oauth2/revoke", ("token", "x")),
    ] {
        let response = app
            .oauth_form(
                path,
                Some((&id, &secret)),
                &[extra, ("client_id", &app.client_id)],
            )
            .await;
        assert_oauth_error(response, 400, "invalid_request").await;
    }
}
