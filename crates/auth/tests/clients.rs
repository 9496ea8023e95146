//! Client registry: registration, listing, revocation, rotation, authentication.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use auth::memory::{ManualClock, MemoryClientStore};
use auth::{AuthError, AuthOutcome, ClientRegistry, NewClient};
use secrecy::ExposeSecret as _;
use support::*;

fn new_client() -> NewClient {
    NewClient {
        name: " Erika Mustermann ".into(),
        email: "erika@example.com".into(),
        telefonnummer: "+49 30 123456".into(),
        organisation: "Vergleichsportal GmbH".into(),
        scopes: vec![],
    }
}

/// A change to [`new_client`] that makes it invalid (or, in the accepted cases, keeps it valid).
type Mutation = fn(&mut NewClient);

/// Registers [`new_client`] changed by `mutate`; asserts it is refused as invalid `field` and
/// returns the error.
async fn refused(f: &Fixture, mutate: Mutation, field: &str) -> AuthError {
    let mut client = new_client();
    mutate(&mut client);
    let error = f.registry.register(client).await.unwrap_err();
    assert!(
        matches!(&error, AuthError::InvalidInput(f) if *f == field),
        "{error}"
    );
    error
}

#[tokio::test]
async fn register_stores_a_hash_and_the_default_scope() {
    let f = Fixture::new().await;
    let (record, secret) = f.registry.register(new_client()).await.unwrap();
    assert!(record.client_id.starts_with("drk_"));
    assert_eq!(record.scopes, [IMPORT]);
    assert_eq!(record.name, "Erika Mustermann", "trimmed");
    assert_eq!(record.created_at.timestamp(), T0);
    assert!(record.secret_hash.starts_with("$argon2id$"));
    assert!(!record.secret_hash.contains(secret.expose_secret()));
    assert_eq!(
        f.registry.list().await.unwrap(),
        std::slice::from_ref(&record)
    );
    assert_eq!(
        f.registry.get(&record.client_id).await.unwrap(),
        Some(record)
    );
}

#[tokio::test]
async fn register_validates_without_echoing_values() {
    let f = Fixture::new().await;
    let cases: [(Mutation, &str); 5] = [
        (|c| c.name = "   ".into(), "name"),
        (|c| c.email = String::new(), "email"),
        (|c| c.telefonnummer = "0\n1".into(), "telefonnummer"),
        (|c| c.organisation = "x".repeat(300), "organisation"),
        (|c| c.scopes = vec!["bad\"scope".into()], "scope"),
    ];
    for (mutate, field) in cases {
        let error = refused(&f, mutate, field).await;
        assert_eq!(error.to_string(), format!("invalid {field}"));
    }
    assert!(f.registry.list().await.unwrap().is_empty());

    let mut client = new_client();
    client.scopes = vec![format!("{IMPORT} reports:read"), IMPORT.into()];
    let (record, _) = f.registry.register(client).await.unwrap();
    assert_eq!(
        record.scopes,
        [IMPORT, "reports:read"],
        "split and deduplicated"
    );
    assert!(!format!("{:?}", new_client()).contains("Erika"));
}

#[tokio::test]
async fn authenticate_tells_unknown_revoked_and_wrong_secret_apart_only_internally() {
    let f = Fixture::new().await;
    let (record, secret) = f.register(&[]).await;
    let id = record.client_id.as_str();
    let s = secret.expose_secret();

    assert_eq!(
        f.registry.authenticate(id, s).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(f.registry.authenticate(id, "wrong").await.unwrap(), None);
    assert_eq!(
        f.registry.authenticate("drk_nobody", s).await.unwrap(),
        None
    );
    assert_eq!(
        f.registry.check_credentials(id, "wrong").await.unwrap(),
        AuthOutcome::WrongSecret
    );
    assert_eq!(
        f.registry.check_credentials("drk_nobody", s).await.unwrap(),
        AuthOutcome::UnknownClient
    );
    assert!(f.registry.is_active(id).await.unwrap());

    assert!(f.registry.revoke(id).await.unwrap());
    assert!(
        f.registry.revoke(id).await.unwrap(),
        "revoking twice is fine"
    );
    assert!(!f.registry.revoke("drk_nobody").await.unwrap());
    assert_eq!(f.registry.authenticate(id, s).await.unwrap(), None);
    assert_eq!(
        f.registry.check_credentials(id, s).await.unwrap(),
        AuthOutcome::Revoked
    );
    assert!(!f.registry.is_active(id).await.unwrap());
    assert!(!f.registry.is_active("drk_nobody").await.unwrap());

    // Rotating a revoked client does not revive it.
    let new = f.registry.rotate(id).await.unwrap().unwrap();
    assert_eq!(
        f.registry
            .authenticate(id, new.expose_secret())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn store_errors_surface_as_store_errors() {
    let f = Fixture::new().await;
    f.client_store.set_unavailable(true);
    assert!(
        f.registry
            .register(new_client())
            .await
            .unwrap_err()
            .is_unavailable()
    );
    assert!(f.registry.list().await.unwrap_err().is_unavailable());
    assert!(
        f.registry
            .authenticate("drk_x", "y")
            .await
            .unwrap_err()
            .is_unavailable()
    );
    assert!(
        f.registry
            .is_active("drk_x")
            .await
            .unwrap_err()
            .is_unavailable()
    );
}

/// With the production (OWASP) parameters, an unknown client costs about as much as a wrong
/// secret. Loose bound: debug builds and a shared machine make timings noisy.
#[tokio::test]
async fn unknown_client_costs_as_much_as_a_wrong_secret() {
    let registry = ClientRegistry::new(
        Arc::new(MemoryClientStore::default()),
        Arc::new(ManualClock::default()),
    );
    let (record, _) = registry.register(new_client()).await.unwrap();
    assert!(
        record
            .secret_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );

    let start = Instant::now();
    assert_eq!(
        registry
            .authenticate(&record.client_id, "wrong")
            .await
            .unwrap(),
        None
    );
    let wrong_secret = start.elapsed();
    let start = Instant::now();
    assert_eq!(
        registry.authenticate("drk_unknown", "wrong").await.unwrap(),
        None
    );
    let unknown = start.elapsed();
    assert!(
        unknown * 3 >= wrong_secret && wrong_secret * 3 >= unknown,
        "unknown {unknown:?} vs wrong secret {wrong_secret:?}"
    );
}

#[tokio::test]
async fn register_checks_email_and_phone_syntax() {
    let f = Fixture::new().await;
    let refused_cases: [(Mutation, &str); 9] = [
        (|c| c.email = "not-an-email".into(), "email"),
        (|c| c.email = "erika@".into(), "email"),
        (|c| c.email = "@example.com".into(), "email"),
        (|c| c.email = "erika mustermann@example.com".into(), "email"),
        (|c| c.telefonnummer = "call me".into(), "telefonnummer"),
        (|c| c.telefonnummer = "12".into(), "telefonnummer"),
        (
            |c| c.telefonnummer = "++49 30 123456".into(),
            "telefonnummer",
        ),
        (|c| c.telefonnummer = "1".repeat(21), "telefonnummer"),
        (|c| c.organisation = "\t".into(), "organisation"),
    ];
    for (mutate, field) in refused_cases {
        refused(&f, mutate, field).await;
    }
    assert!(f.registry.list().await.unwrap().is_empty());

    let accepted: [Mutation; 5] = [
        |c| c.telefonnummer = "030/123 456-7".into(),
        |c| c.telefonnummer = "(030) 12 34 56".into(),
        |c| c.telefonnummer = " +49.30.123456 ".into(),
        |c| c.email = "erika.mustermann+api@bücher.example".into(),
        |c| c.email = "  erika@example.com  ".into(),
    ];
    for mutate in accepted {
        let mut client = new_client();
        mutate(&mut client);
        let (record, _) = f.registry.register(client).await.unwrap();
        assert_eq!(record.email, record.email.trim(), "stored trimmed");
    }
}
