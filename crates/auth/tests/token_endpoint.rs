//! `POST /oauth2/token`: client authentication, grant and scope checks, throttling.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::net::IpAddr;

use auth::{OAuthError, TokenRequest};
use i18n::Lang;
use secrecy::{ExposeSecret as _, SecretString};
use support::*;

fn assert_invalid_client(error: &OAuthError) {
    assert_eq!(error.error, "invalid_client");
    assert_eq!(error.status, 401);
    assert_eq!(
        error.www_authenticate.as_deref(),
        Some("Basic realm=\"vorgang\"")
    );
    for lang in Lang::ALL {
        assert_eq!(error.body(lang)["error"], "invalid_client");
    }
}

/// The error's description in both languages, for checks that nothing submitted is echoed.
fn descriptions(error: &OAuthError) -> String {
    Lang::ALL
        .map(|lang| error.description.text(lang).into_owned())
        .join("\n")
}

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::from([198, 51, 100, last]))
}

#[tokio::test]
async fn client_secret_basic_gets_a_token() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    let answer = f
        .request(basic_request(&client.client_id, &secret))
        .await
        .unwrap();
    assert_eq!(answer.token_type, "Bearer");
    assert_eq!(answer.expires_in, 900);
    assert_eq!(answer.scope, IMPORT);
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        json.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["access_token", "token_type", "expires_in", "scope"]
    );
    assert!(!format!("{answer:?}").contains(&answer.access_token));

    let auth = bearer(&answer.access_token);
    let claims = f
        .validator
        .authorize_import(Some(&auth), &f.registry)
        .await
        .unwrap();
    assert_eq!(claims.client_id, client.client_id);
}

#[tokio::test]
async fn client_secret_basic_is_form_urldecoded() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    // `_` and `-` percent-encoded must decode to themselves.
    let id = client.client_id.replace('_', "%5F");
    let secret = secret
        .expose_secret()
        .replace('-', "%2D")
        .replace('_', "%5f");
    let req = TokenRequest {
        authorization: Some(basic(&id, &secret)),
        form: form(&[("grant_type", "client_credentials")]),
        remote_ip: ip(1),
    };
    assert!(f.request(req).await.is_ok());
}

#[tokio::test]
async fn client_secret_post_gets_a_token() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    let answer = f
        .request(post_request(&client.client_id, &secret))
        .await
        .unwrap();
    assert_eq!(answer.scope, IMPORT);
}

#[tokio::test]
async fn both_methods_at_once_are_invalid_request() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    let mut req = post_request(&client.client_id, &secret);
    req.authorization = Some(basic(&client.client_id, secret.expose_secret()));
    let error = f.request(req).await.unwrap_err();
    assert_eq!(error.error, "invalid_request");
    assert_eq!(error.status, 400);

    // Basic plus a different client_id in the form.
    let mut req = basic_request(&client.client_id, &secret);
    req.form.push(("client_id".into(), "drk_other".into()));
    assert_eq!(f.request(req).await.unwrap_err().error, "invalid_request");

    // Basic plus the same client_id in the form is fine (RFC 6749 allows sending it).
    let mut req = basic_request(&client.client_id, &secret);
    req.form
        .push(("client_id".into(), client.client_id.clone()));
    assert!(f.request(req).await.is_ok());
}

#[tokio::test]
async fn wrong_secret_is_invalid_client() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let wrong = SecretString::from("not-the-secret");
    for req in [
        basic_request(&client.client_id, &wrong),
        post_request(&client.client_id, &wrong),
    ] {
        let error = f.request(req).await.unwrap_err();
        assert_invalid_client(&error);
        assert!(!descriptions(&error).contains("not-the-secret"));
        assert!(!descriptions(&error).contains(&client.client_id));
    }
}

#[tokio::test]
async fn unknown_client_is_invalid_client() {
    let f = Fixture::new().await;
    let secret = SecretString::from("whatever");
    for req in [
        basic_request("drk_unknown", &secret),
        post_request("drk_unknown", &secret),
    ] {
        let error = f.request(req).await.unwrap_err();
        assert_invalid_client(&error);
        assert!(!descriptions(&error).contains("drk_unknown"));
    }
}

#[tokio::test]
async fn revoked_client_is_invalid_client() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    f.registry.revoke(&client.client_id).await.unwrap();
    let error = f
        .request(basic_request(&client.client_id, &secret))
        .await
        .unwrap_err();
    assert_invalid_client(&error);
}

#[tokio::test]
async fn missing_or_unsupported_client_authentication_is_invalid_client() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let no_auth = TokenRequest {
        authorization: None,
        form: form(&[("grant_type", "client_credentials")]),
        remote_ip: ip(1),
    };
    assert_invalid_client(&f.request(no_auth).await.unwrap_err());

    let id_only = TokenRequest {
        authorization: None,
        form: form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
        ]),
        remote_ip: ip(1),
    };
    assert_invalid_client(&f.request(id_only).await.unwrap_err());

    for header in [
        "Bearer abc.def.ghi",
        "Basic",
        "Basic %%%",
        "Basic bm9jb2xvbg==",
    ] {
        let req = TokenRequest {
            authorization: Some(header.into()),
            form: form(&[("grant_type", "client_credentials")]),
            remote_ip: ip(1),
        };
        assert_invalid_client(&f.request(req).await.unwrap_err());
    }

    let secret_only = TokenRequest {
        authorization: None,
        form: form(&[("grant_type", "client_credentials"), ("client_secret", "x")]),
        remote_ip: ip(1),
    };
    assert_eq!(
        f.request(secret_only).await.unwrap_err().error,
        "invalid_request"
    );
}

#[tokio::test]
async fn unsupported_grant_type() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    for grant in [
        "password",
        "authorization_code",
        "refresh_token",
        "CLIENT_CREDENTIALS",
    ] {
        let mut req = basic_request(&client.client_id, &secret);
        req.form = form(&[("grant_type", grant)]);
        let error = f.request(req).await.unwrap_err();
        assert_eq!(error.error, "unsupported_grant_type");
        assert_eq!(error.status, 400);
        assert_eq!(
            error.body(Lang::En)["error_description"],
            "only grant_type=client_credentials is supported"
        );
        assert_eq!(
            error.body(Lang::De)["error_description"],
            "nur grant_type=client_credentials wird unterstützt"
        );
    }
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    for fields in [vec![], vec![("grant_type", "")], vec![("scope", IMPORT)]] {
        let mut req = basic_request(&client.client_id, &secret);
        req.form = form(&fields);
        let error = f.request(req).await.unwrap_err();
        assert_eq!(error.error, "invalid_request");
        assert_eq!(error.status, 400);
        assert_eq!(
            error.body(Lang::En)["error_description"],
            "grant_type is missing"
        );
        assert_eq!(
            error.body(Lang::De)["error_description"],
            "grant_type fehlt"
        );
    }
}

#[tokio::test]
async fn scope_subset_is_granted_and_superset_is_invalid_scope() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[IMPORT, "reports:read"]).await;

    let default = f
        .request(basic_request(&client.client_id, &secret))
        .await
        .unwrap();
    assert_eq!(default.scope, format!("{IMPORT} reports:read"));

    let mut req = basic_request(&client.client_id, &secret);
    req.form.push(("scope".into(), "reports:read".into()));
    let subset = f.request(req).await.unwrap();
    assert_eq!(subset.scope, "reports:read");
    let auth = bearer(&subset.access_token);
    assert!(matches!(
        f.validator.authorize_import(Some(&auth), &f.registry).await,
        Err(auth::TokenError::InsufficientScope { .. })
    ));

    let mut req = basic_request(&client.client_id, &secret);
    req.form.push((
        "scope".into(),
        format!("reports:read  {IMPORT} reports:read"),
    ));
    let all = f.request(req).await.unwrap();
    assert_eq!(all.scope, format!("reports:read {IMPORT}"));

    for scope in [
        format!("{IMPORT} admin"),
        "admin".to_owned(),
        "drkleinrk-api".to_owned(),
    ] {
        let mut req = basic_request(&client.client_id, &secret);
        req.form.push(("scope".into(), scope));
        let error = f.request(req).await.unwrap_err();
        assert_eq!(error.error, "invalid_scope");
        assert_eq!(error.status, 400);
        assert!(!descriptions(&error).contains("admin"));
    }

    let mut req = basic_request(&client.client_id, &secret);
    req.form.push(("scope".into(), "bad\"scope".into()));
    assert_eq!(f.request(req).await.unwrap_err().error, "invalid_scope");
}

#[tokio::test]
async fn duplicate_parameters_are_invalid_request() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    for duplicate in ["grant_type", "client_id", "client_secret", "scope"] {
        let mut req = post_request(&client.client_id, &secret);
        req.form.push(("scope".into(), IMPORT.into()));
        let value = req
            .form
            .iter()
            .find(|(name, _)| name == duplicate)
            .unwrap()
            .1
            .clone();
        req.form.push((duplicate.into(), value));
        let error = f.request(req).await.unwrap_err();
        assert_eq!(error.error, "invalid_request", "{duplicate}");
        assert!(!descriptions(&error).contains(secret.expose_secret()));
    }
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    let wrong = SecretString::from("wrong");
    // Different IPs, so that only the client counter trips.
    for i in 0..5 {
        let mut req = basic_request(&client.client_id, &wrong);
        req.remote_ip = ip(i);
        assert_invalid_client(&f.request(req).await.unwrap_err());
    }
    f.advance(10);
    let lookups = f.client_store.lookups();
    let mut req = basic_request(&client.client_id, &secret);
    req.remote_ip = ip(100);
    let error = f.request(req).await.unwrap_err();
    assert_eq!(error.error, "slow_down");
    assert_eq!(error.status, 429);
    assert_eq!(error.retry_after, Some(50));
    assert_eq!(error.body(Lang::De)["error"], "slow_down");
    assert_eq!(
        f.client_store.lookups(),
        lookups,
        "throttled attempts cost nothing"
    );

    f.advance(50);
    let mut req = basic_request(&client.client_id, &secret);
    req.remote_ip = ip(100);
    assert!(
        f.request(req).await.is_ok(),
        "allowed again after the window"
    );
}

#[tokio::test]
async fn failures_from_one_ip_are_throttled_for_any_client_id() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    let attacker = ip(66);
    for i in 0..5 {
        let req = TokenRequest {
            remote_ip: attacker,
            ..basic_request(&format!("drk_guess{i}"), &SecretString::from("x"))
        };
        assert_invalid_client(&f.request(req).await.unwrap_err());
    }
    let req = TokenRequest {
        remote_ip: attacker,
        ..basic_request("drk_guess99", &SecretString::from("x"))
    };
    let error = f.request(req).await.unwrap_err();
    assert_eq!(error.error, "slow_down");
    assert_eq!(error.retry_after, Some(60));

    // Another IP and the real client are not affected.
    let req = TokenRequest {
        remote_ip: ip(67),
        ..basic_request(&client.client_id, &secret)
    };
    assert!(f.request(req).await.is_ok());
}

#[tokio::test]
async fn success_resets_the_client_counter() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    let wrong = SecretString::from("wrong");
    let mut n = 0;
    let mut attempt = |s: &SecretString| {
        n += 1;
        TokenRequest {
            remote_ip: ip(n),
            ..basic_request(&client.client_id, s)
        }
    };
    for _ in 0..4 {
        assert_invalid_client(&f.request(attempt(&wrong)).await.unwrap_err());
    }
    assert!(f.request(attempt(&secret)).await.is_ok());
    for _ in 0..4 {
        assert_invalid_client(&f.request(attempt(&wrong)).await.unwrap_err());
    }
    assert!(f.request(attempt(&secret)).await.is_ok());
}

#[tokio::test]
async fn rotate_makes_the_old_secret_fail_and_keeps_issued_tokens() {
    let f = Fixture::new().await;
    let (client, old) = f.register(&[]).await;
    let token = f
        .request(basic_request(&client.client_id, &old))
        .await
        .unwrap();

    let new = f.registry.rotate(&client.client_id).await.unwrap().unwrap();
    assert_ne!(new.expose_secret(), old.expose_secret());
    assert_invalid_client(
        &f.request(basic_request(&client.client_id, &old))
            .await
            .unwrap_err(),
    );
    assert!(
        f.request(basic_request(&client.client_id, &new))
            .await
            .is_ok()
    );

    let auth = bearer(&token.access_token);
    assert!(
        f.validator
            .authorize_import(Some(&auth), &f.registry)
            .await
            .is_ok()
    );
    assert!(f.registry.rotate("drk_unknown").await.unwrap().is_none());
}

#[tokio::test]
async fn store_outage_is_temporarily_unavailable() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    f.client_store.set_unavailable(true);
    let error = f
        .request(basic_request(&client.client_id, &secret))
        .await
        .unwrap_err();
    assert_eq!(error.error, "temporarily_unavailable");
    assert_eq!(error.status, 503);
    assert!(error.retry_after.is_some());
    f.client_store.set_unavailable(false);
    assert!(
        f.request(basic_request(&client.client_id, &secret))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn over_long_credentials_are_rejected_without_lookup() {
    let f = Fixture::new().await;
    let lookups = f.client_store.lookups();
    let long = "x".repeat(10_000);
    let error = f
        .request(post_request(&long, &SecretString::from(long.clone())))
        .await
        .unwrap_err();
    assert_invalid_client(&error);
    assert_eq!(f.client_store.lookups(), lookups);
}

/// Fires `requests` at the endpoint all at once (each on its own task of a multi-threaded
/// runtime) and returns the answers.
async fn all_at_once(
    f: &std::sync::Arc<Fixture>,
    requests: Vec<TokenRequest>,
) -> Vec<Result<auth::TokenResponse, OAuthError>> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let (f, start) = (f.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                f.request(req).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_secrets_for_one_client_are_checked_at_most_five_times() {
    // Regression: the throttle was counted after hashing, so 60 parallel wrong secrets all
    // passed it (60 hashes, 60 × 401, no 429).
    let f = std::sync::Arc::new(Fixture::new().await);
    let (client, secret) = f.register(&[]).await;
    let lookups = f.client_store.lookups();
    let wrong = SecretString::from("wrong");
    // Every attempt from another address: only the client's counter can stop them.
    let requests = (0..60)
        .map(|i| TokenRequest {
            remote_ip: ip(i),
            ..basic_request(&client.client_id, &wrong)
        })
        .collect();
    let answers = all_at_once(&f, requests).await;
    let errors: Vec<OAuthError> = answers.into_iter().map(Result::unwrap_err).collect();
    let checked = errors.iter().filter(|e| e.status == 401).count();
    let throttled: Vec<&OAuthError> = errors.iter().filter(|e| e.status == 429).collect();
    assert!((1..=5).contains(&checked), "{checked} secrets checked");
    assert_eq!(checked + throttled.len(), 60);
    for error in throttled {
        assert_eq!(error.error, "slow_down");
        assert!(error.retry_after.is_some_and(|s| (1..=60).contains(&s)));
    }
    assert_eq!(
        f.client_store.lookups() - lookups,
        checked,
        "a throttled attempt costs no lookup and no hash"
    );

    // The window is full of failures now: even the right secret waits.
    let error = f
        .request(TokenRequest {
            remote_ip: ip(200),
            ..basic_request(&client.client_id, &secret)
        })
        .await
        .unwrap_err();
    assert_eq!(error.error, "slow_down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_from_one_address_are_checked_at_most_five_times() {
    let f = std::sync::Arc::new(Fixture::new().await);
    let (client, secret) = f.register(&[]).await;
    let lookups = f.client_store.lookups();
    let requests = (0..60)
        .map(|i| TokenRequest {
            remote_ip: ip(66),
            ..basic_request(&format!("drk_guess{i}"), &SecretString::from("x"))
        })
        .collect();
    let answers = all_at_once(&f, requests).await;
    let checked = answers
        .iter()
        .filter(|a| a.as_ref().is_err_and(|e| e.status == 401))
        .count();
    let throttled = answers
        .iter()
        .filter(|a| a.as_ref().is_err_and(|e| e.error == "slow_down"))
        .count();
    assert!((1..=5).contains(&checked), "{checked} secrets checked");
    assert_eq!(checked + throttled, 60);
    assert_eq!(f.client_store.lookups() - lookups, checked);
    // Unknown ids leave no entry behind; the real client from elsewhere is not affected.
    assert_eq!(f.endpoint.throttle().tracked(), 1);
    let req = TokenRequest {
        remote_ip: ip(67),
        ..basic_request(&client.client_id, &secret)
    };
    assert!(f.request(req).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_right_secrets_are_not_counted_as_failures() {
    // Attempts in flight hold places, so a burst of right secrets may be told to slow down
    // briefly, but none counts as a failure: afterwards the client has all five places.
    let f = std::sync::Arc::new(Fixture::new().await);
    let (client, secret) = f.register(&[]).await;
    let requests = (0..20)
        .map(|i| TokenRequest {
            remote_ip: ip(i),
            ..basic_request(&client.client_id, &secret)
        })
        .collect();
    let answers = all_at_once(&f, requests).await;
    assert!(answers.iter().any(Result::is_ok));
    for answer in &answers {
        if let Err(error) = answer {
            assert_eq!(error.error, "slow_down");
            assert_eq!(
                error.retry_after,
                Some(1),
                "only places in flight were taken"
            );
        }
    }
    assert_eq!(f.endpoint.throttle().tracked(), 0, "nothing left counted");
    let wrong = SecretString::from("wrong");
    for i in 0..5 {
        let req = TokenRequest {
            remote_ip: ip(100 + i),
            ..basic_request(&client.client_id, &wrong)
        };
        assert_invalid_client(&f.request(req).await.unwrap_err());
    }
}
