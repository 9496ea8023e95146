//! `POST /auth/token` and the Bearer check of the other endpoints.

mod common;

use std::time::Duration;

use common::{FormExt, SendJson, start, start_with, vorgang};
use europace_sandbox::SandboxConfig;
use serde_json::Value;

#[tokio::test]
async fn issues_a_bearer_token_for_any_basic_credentials() {
    let s = start();
    let response = s
        .http
        .post(s.url("/auth/token"))
        .basic_auth("whoever", Some("whatever"))
        .form_body(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 32);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(
        body["scope"],
        "partner:plakette:lesen partner:plakette:anlegen partner:plakette:schreiben \
         privatkredit:vorgang:schreiben"
    );

    let second = s.token().await;
    assert_ne!(second, token, "tokens are random");
    s.server.stop().await;
}

#[tokio::test]
async fn echoes_requested_scope_and_accepts_impersonation_fields() {
    let s = start();
    let response = s
        .http
        .post(s.url("/auth/token"))
        .basic_auth("client", Some("secret"))
        .form_body(&[
            ("grant_type", "client_credentials"),
            ("scope", "privatkredit:vorgang:schreiben"),
            ("subject", "ABC12"),
            ("actor", "XYZ54"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "privatkredit:vorgang:schreiben");
    s.server.stop().await;
}

#[tokio::test]
async fn expires_in_follows_the_config() {
    let s = start_with(SandboxConfig {
        token_ttl: Duration::from_secs(120),
        ..SandboxConfig::default()
    });
    let body: Value = s
        .http
        .post(s.url("/auth/token"))
        .basic_auth("client", Some("secret"))
        .form_body(&[("grant_type", "client_credentials")])
        .send_json()
        .await;
    assert_eq!(body["expires_in"], 120);
    s.server.stop().await;
}

#[tokio::test]
async fn token_without_basic_credentials_is_401_invalid_client() {
    let s = start();
    for request in [
        s.http.post(s.url("/auth/token")),
        s.http.post(s.url("/auth/token")).bearer_auth("abc"),
        s.http
            .post(s.url("/auth/token"))
            .header("Authorization", "Basic !!!not-base64"),
    ] {
        let response = request
            .form_body(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert!(body["error_description"].is_string());
    }
    s.server.stop().await;
}

#[tokio::test]
async fn token_with_missing_or_wrong_grant_type_is_400() {
    let s = start();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "invalid_request"),
        (&[("scope", "x")], "invalid_request"),
        (&[("grant_type", "code")], "unsupported_grant_type"),
    ];
    for (form, expected) in cases {
        let response = s
            .http
            .post(s.url("/auth/token"))
            .basic_auth("client", Some("secret"))
            .form_body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], expected);
    }
    // Not a form at all.
    let response = s
        .http
        .post(s.url("/auth/token"))
        .basic_auth("client", Some("secret"))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    s.server.stop().await;
}

#[tokio::test]
async fn europace_endpoints_require_a_bearer_token_the_sandbox_issued() {
    let s = start();
    let requests = |auth: Option<&str>| {
        let mut list = vec![
            s.http.get(s.url("/v2/partners?externePartnerId=x")),
            s.http.get(s.url("/v2/partner/KBT01")),
            s.http
                .post(s.url("/v2/partner/TGP01/untergeordnete"))
                .json(&common::tippgeber("x")),
            s.http.post(s.url("/vorgang")).json(&vorgang("Max")),
        ];
        if let Some(auth) = auth {
            list = list
                .into_iter()
                .map(|r| r.header("Authorization", auth))
                .collect();
        }
        list
    };
    for (auth, www) in [
        (None, "Bearer realm=\"europace\""),
        (Some("Bearer not-issued"), "Bearer error=\"invalid_token\""),
        (
            Some("Basic Y2xpZW50OnNlY3JldA=="),
            "Bearer realm=\"europace\"",
        ),
    ] {
        for request in requests(auth) {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{auth:?}");
            assert_eq!(response.headers()["www-authenticate"], www);
            let body: Value = response.json().await.unwrap();
            assert!(body["message"].is_string());
        }
    }
    assert!(s.sandbox.vorgaenge().is_empty());
    assert_eq!(s.sandbox.partners().len(), 3);
    s.server.stop().await;
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let s = start_with(SandboxConfig {
        token_ttl: Duration::from_millis(50),
        ..SandboxConfig::default()
    });
    let token = s.token().await;
    assert_eq!(
        s.http
            .get(s.url("/v2/partner/KBT01"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    let response = s
        .http
        .get(s.url("/v2/partner/KBT01"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    s.server.stop().await;
}

#[tokio::test]
async fn tokens_for_explicit_scopes_only_open_those_endpoints() {
    let s = start();
    let partner_token = s
        .token_with(Some("partner:plakette:lesen partner:plakette:anlegen"))
        .await;
    let kex_token = s.token_with(Some("privatkredit:vorgang:schreiben")).await;

    assert_eq!(s.lookup(&partner_token, "x").await.status(), 200);
    assert_eq!(
        s.create(&partner_token, "TGT01", &common::tippgeber("scoped"))
            .await
            .status(),
        201
    );
    // Updating a partner needs `partner:plakette:schreiben`.
    let phone = serde_json::json!({"telefonnummer": "030 1"});
    let refused = s.update(&partner_token, "KBT01", &phone).await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("partner:plakette:schreiben")
    );
    let writer = s.token_with(Some("partner:plakette:schreiben")).await;
    assert_eq!(s.update(&writer, "KBT01", &phone).await.status(), 200);
    assert_eq!(s.lookup(&writer, "x").await.status(), 403);
    let refused = s.import(&partner_token, None, &vorgang("Max")).await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    assert_eq!(
        s.import(&kex_token, None, &vorgang("Max")).await.status(),
        201
    );
    assert_eq!(s.lookup(&kex_token, "x").await.status(), 403);
    assert_eq!(s.update(&kex_token, "KBT01", &phone).await.status(), 403);
    assert_eq!(
        s.create(&kex_token, "TGT01", &common::tippgeber("other"))
            .await
            .status(),
        403
    );
    s.server.stop().await;
}

#[tokio::test]
async fn scope_check_can_be_switched_off() {
    let s = start_with(SandboxConfig {
        check_scopes: false,
        ..SandboxConfig::default()
    });
    let kex_token = s.token_with(Some("privatkredit:vorgang:schreiben")).await;
    assert_eq!(s.lookup(&kex_token, "x").await.status(), 200);
    s.server.stop().await;
}
